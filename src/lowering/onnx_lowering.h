#pragma once
// The public face of the ONNX lowering: an operator's instructions as standard ONNX nodes
// (opset 17), appended to a graph under construction.
//
// Each statement is lowered on its own. A statement recognised as a kernel (kernels.h) becomes
// that ONNX operator with its attributes (Conv, Gemm, MatMul, MaxPool, AveragePool,
// GlobalAveragePool/ReduceMean, an activation, Add), followed by its activation (a pool whose
// window no ONNX attribute set states exactly is the rare exception). Anything else is lowered
// generically and exactly: each read becomes a view with one axis per index (Pad and
// Slice for offsets and strides, one Slice per kernel tap for windows, Reshape for mixed-radix
// subscripts), an Einsum multiplies and sums the views, and a max reduction masks out-of-range
// terms with constant tables before ReduceMax.
//
// Batch: when a statement's first output dimension is a plain index that reads only the first
// dimension of its data operands (the batch), every shape the lowering writes leaves that
// dimension free (-1), so the nodes run at any batch size. Other statements are lowered for their
// static shapes only.
#include <string>
#include <vector>

#include "ir/ir.h"
#include "lowering/onnx_builder.h"

namespace gos::lowering {

// The ONNX opset every lowering writes (and the exported models import). 17 is the newest the
// installed ONNX library (1.12) checks; Gelu (opset 20) is therefore written with Erf.
inline constexpr int64_t kOnnxOpset = 17;

// Where an operator's tensors live in the ONNX graph.
struct OnnxBinding {
  std::vector<std::string> inputs;  // value names bound to the op's inputs, in signature order
  std::string output;               // value name the op's output is written to
  ir::TensorMap params;             // values of the op's params (become initializers)
};

struct OnnxLoweringOptions {
  // false: every statement takes the generic path (to test it, or to compare it with the kernels).
  bool recognise_kernels = true;
};

// Appends the nodes that compute `op`. Throws ir::IrError if a param has no value or a statement
// cannot be written in ONNX (more than 52 distinct indices, the limit of Einsum's letters).
void lower_to_onnx(const ir::OpExpr& op, const OnnxBinding& binding, OnnxBuilder& builder,
                   const OnnxLoweringOptions& options = {});

// Appends the nodes that apply `activation` to `value`; returns the activated value.
std::string lower_activation(ir::Activation activation, const std::string& value, OnnxBuilder& builder);

}  // namespace gos::lowering
