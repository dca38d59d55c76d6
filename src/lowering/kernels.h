#pragma once
// The public face of kernel recognition, shared by every lowering (libtorch, TorchScript, ONNX):
// which efficient kernel, with which attributes, computes each statement of an operator exactly.
//
// Recognition is by equality, not by heuristics: attributes are read off a statement, the
// matching ir::ops constructor builds that kernel's instructions, and the statement is that
// kernel only if the two canonical forms are equal. So a recognised kernel is always exact, and
// anything unrecognised falls back to the generic lowering (einsum over windowed views).
// Plain C++: no libtorch or ONNX headers.
#include <map>
#include <string>
#include <vector>

#include "ir/ir.h"
#include "ir/ops.h"

namespace gos::lowering {

enum class KernelKind {
  Conv,               // conv (1-D or 2-D; grouped and depthwise included), optional bias
  Linear,             // Gemm: X[n,c] (or X[c,n]) times W[k,c] (or W[c,k]), optional bias
  MatMul,             // batched product of two inputs, or an input times a shared weight
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  Activation,         // Y = act(X)
  Add,                // Y = act(X + Z), same shapes
  Shift,              // a depthwise window whose fixed table is one-hot per channel: a gather, no MACs
  Generic,            // anything else: einsum over windowed views
};
std::string_view to_string(KernelKind kind);

struct Kernel {
  KernelKind kind = KernelKind::Generic;
  size_t statement = 0;  // index of the statement in the operator
  // The statement as an operator of its own: what it reads from earlier statements are its inputs.
  ir::OpExpr single;
  ir::Activation activation = ir::Activation::None;  // applied after the kernel

  // Attributes, for the kinds that use them. Conv: conv2d (2-D) or conv1d (1-D, spatial_rank 1).
  int spatial_rank = 0;
  ir::Conv2dSpec conv2d;
  ir::Conv1dSpec conv1d;
  ir::LinearSpec linear;
  ir::MatMulSpec matmul;
  ir::PoolSpec pool;
  bool keep_dims = true;  // GlobalAveragePool
  // Shift: the conv geometry (conv2d or conv1d, as for Conv) and, per channel, the flat index of
  // its hot tap in the window (row-major over the window's taps).
  std::vector<int64_t> shift_taps;

  // The kernel's operand roles (X, Z, W, B, C as in ir/ops.h) -> tensor names in `single`.
  std::map<std::string, std::string> operands;
};

// Shift: for each output element of one sample (channel, then positions, row-major), its flat
// position in one sample of the input zero-padded by the kernel's padding.
std::vector<int64_t> shift_gather_positions(const Kernel& kernel);
// Shift: the input's padded shape without the batch, and the output's shape without the batch.
std::vector<int64_t> shift_padded_shape(const Kernel& kernel);
std::vector<int64_t> shift_output_shape(const Kernel& kernel);

// A convolution's channels, whichever its spatial rank (kernel.kind == Conv).
struct ConvChannels {
  int64_t in = 0;
  int64_t out = 0;
  int64_t groups = 1;
  bool shuffle = false;  // Conv2dSpec::shuffle
};
ConvChannels conv_channels(const Kernel& kernel);

// Conv with shuffled input channels (Conv2dSpec::shuffle): for each channel of the input as the
// grouped convolution reads it, the input channel it is (group g's c-th channel is g + G*c).
// Empty when the convolution reads its input in order.
std::vector<int64_t> conv_input_channel_order(const Kernel& kernel);

// One kernel per statement, in statement order.
std::vector<Kernel> recognise(const ir::OpExpr& op);

// The statement at `index` as an operator of its own (tensors produced by earlier statements
// become inputs, in order of first read).
ir::OpExpr statement_as_op(const ir::OpExpr& op, size_t index);

}  // namespace gos::lowering
