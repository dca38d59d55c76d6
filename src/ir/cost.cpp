// Exact cost read off the expression: no kernel or hardware model, just counting.
#include <algorithm>

#include "ir/ir.h"

namespace gos::ir {

namespace {

constexpr int64_t kBytesPerElement = 4;  // float32

int64_t iteration_points(const Statement& statement) {
  int64_t points = 1;
  for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (const auto& index : *list) points *= index.extent;
  }
  return points;
}

int64_t output_points(const Statement& statement) {
  int64_t points = 1;
  for (const auto& index : statement.output_indices) points *= index.extent;
  return points;
}

}  // namespace

double Cost::arithmetic_intensity() const {
  return bytes() == 0 ? 0.0 : 2.0 * static_cast<double>(macs) / static_cast<double>(bytes());
}

Cost cost(const OpExpr& op) {
  Cost total;
  for (const auto& statement : op.statements()) {
    // Multiplying by a fixed table (a one-hot shift, a pooling divisor) selects or scales rather than
    // mixes learned values: it is counted among other_ops, not as a MAC.
    auto learned_or_data = std::count_if(statement.factors.begin(), statement.factors.end(), [&](const Access& factor) {
      return op.tensor(factor.tensor).role != Role::Const;
    });
    int64_t fixed = static_cast<int64_t>(statement.factors.size()) - learned_or_data;
    int64_t points = iteration_points(statement);
    int64_t outputs = output_points(statement);
    int64_t multiplies = std::max<int64_t>(0, learned_or_data - 1);
    total.macs += points * multiplies;
    if (multiplies == 0 && !statement.reduction_indices.empty()) total.other_ops += points;
    total.other_ops += points * fixed;
    total.other_ops += outputs * static_cast<int64_t>(statement.addends.size());
    if (statement.activation != Activation::None) total.other_ops += outputs;
    if (statement.reduction == Reduction::Mean && !statement.reduction_indices.empty()) total.other_ops += outputs;
  }
  for (const auto& tensor : op.tensors()) {
    int64_t bytes = tensor.elements() * kBytesPerElement;
    switch (tensor.role) {
      case Role::Input: total.input_bytes += bytes; break;
      case Role::Param: total.params += tensor.elements(); total.weight_bytes += bytes; break;
      case Role::Const: total.weight_bytes += bytes; break;
      case Role::Intermediate: total.intermediate_bytes += 2 * bytes; break;
      case Role::Output: total.output_bytes += bytes; break;
    }
  }
  return total;
}

}  // namespace gos::ir
