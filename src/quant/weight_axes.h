#pragma once
// Which kernels of an operator have an int8 form, and along which axis each of their weights is
// quantized per channel: the output channel, as the weight is stored (and as the ONNX export
// writes it). Shared by the fake-quantized reference and the checks of the QDQ export.
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::quant {

// Empty when every kernel of `op` has an int8 form; else which one has none, in a few words.
std::string why_not_int8(const ir::OpExpr& op);

struct WeightAxis {
  std::string param;  // the op's param name
  int64_t axis = 0;   // -1: one scale for the whole tensor
};
// The weights of `op`'s convolutions, linear layers and products with a weight.
std::vector<WeightAxis> int8_weight_axes(const ir::OpExpr& op);

// `weights` (the op's params by name) with each of those rounded to its int8 grid, as every int8
// form of the op computes with them.
ir::TensorMap int8_rounded_weights(const ir::OpExpr& op, ir::TensorMap weights);

}  // namespace gos::quant
