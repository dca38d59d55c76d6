#include "quant/weight_axes.h"

#include "lowering/kernels.h"
#include "quant/quant.h"

namespace gos::quant {

using lowering::KernelKind;

std::string why_not_int8(const ir::OpExpr& op) {
  for (const auto& kernel : lowering::recognise(op)) {
    if (kernel.kind == KernelKind::Generic) return "no int8 kernel for its einsum (generic lowering)";
    if (kernel.kind == KernelKind::Shift) return "a shift (gather) has no int8 kernel in gos yet";
  }
  return "";
}

std::vector<WeightAxis> int8_weight_axes(const ir::OpExpr& op) {
  std::vector<WeightAxis> axes;
  for (const auto& kernel : lowering::recognise(op)) {
    auto weight = kernel.operands.find("W");
    if (weight == kernel.operands.end()) continue;
    switch (kernel.kind) {
      case KernelKind::Conv:
        axes.push_back({weight->second, 0});  // W[k, c, r(, s)]
        break;
      case KernelKind::Linear:
        axes.push_back({weight->second, kernel.linear.trans_b ? 0 : 1});  // W[k, c] or W[c, k]
        break;
      case KernelKind::MatMul:
        if (kernel.matmul.weight_rhs) {
          axes.push_back({weight->second, kernel.matmul.weight_transposed ? 0 : 1});  // W[n, k] or W[k, n]
        } else if (kernel.matmul.weight_lhs) {
          axes.push_back({weight->second, -1});  // W[m, k] on the left: the runtimes take one scale
        }
        break;
      default:
        break;
    }
  }
  return axes;
}

ir::TensorMap int8_rounded_weights(const ir::OpExpr& op, ir::TensorMap weights) {
  for (const auto& [param, axis] : int8_weight_axes(op)) {
    if (auto found = weights.find(param); found != weights.end()) found->second = int8_rounded(found->second, axis);
  }
  return weights;
}

}  // namespace gos::quant
