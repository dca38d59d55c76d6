#pragma once
// Originals the rules are tested on, shared by the rules' own tests and the lowering tests of
// their candidates: Conv1d (dilated, strided), Conv2d (plain, strided and padded, dilated,
// grouped), Linear in both layouts and MatMul with a weight, each with seeded random weights.
#include <random>
#include <string>
#include <vector>

#include "ir/ops.h"
#include "rules/rules.h"

namespace gos::rules::test_ops {

struct Original {
  std::string name;
  ir::OpExpr op;
};

inline std::vector<Original> originals() {
  using ir::Activation;
  return {
      {"conv2d", ir::conv2d({.batch = 2, .in_channels = 4, .out_channels = 6, .input_size = {6, 6}, .kernel = {3, 3},
                             .padding = {1, 1, 1, 1}, .bias = true})},
      {"conv2d_strided", ir::conv2d({.batch = 1, .in_channels = 4, .out_channels = 4, .input_size = {7, 6},
                                     .kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1},
                                     .activation = Activation::Relu})},
      {"conv2d_dilated", ir::conv2d({.batch = 1, .in_channels = 4, .out_channels = 4, .input_size = {7, 7},
                                     .kernel = {3, 3}, .padding = {2, 2, 2, 2}, .dilation = {2, 2}, .bias = true})},
      {"conv2d_grouped", ir::conv2d({.batch = 1, .in_channels = 8, .out_channels = 8, .input_size = {5, 5},
                                     .kernel = {3, 3}, .padding = {1, 1, 1, 1}, .groups = 2, .bias = true})},
      {"conv1d", ir::conv1d({.batch = 2, .in_channels = 4, .out_channels = 6, .input_length = 12, .kernel = 4,
                             .stride = 1, .padding = {3, 0}, .dilation = 2, .bias = true})},
      {"conv1d_strided", ir::conv1d({.batch = 1, .in_channels = 4, .out_channels = 4, .input_length = 13, .kernel = 3,
                                     .stride = 2, .padding = {1, 1}})},
      {"linear", ir::linear({.batch = 3, .in_features = 8, .out_features = 6, .bias = true})},
      {"linear_untransposed", ir::linear({.batch = 3, .in_features = 6, .out_features = 8, .trans_b = false})},
      {"matmul_weight", ir::matmul({.batch_dims = {2}, .m = 3, .k = 6, .n = 4, .weight_rhs = true})},
  };
}

inline ir::Tensor random_tensor(const std::vector<int64_t>& shape, std::mt19937& engine, float stddev = 1.0f) {
  ir::Tensor tensor(shape);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (auto& value : tensor.data) value = normal(engine);
  return tensor;
}

inline ir::TensorMap random_tensors(const ir::OpExpr& op, ir::Role role, uint32_t seed) {
  std::mt19937 engine(seed);
  ir::TensorMap tensors;
  for (const auto& tensor : op.tensors_with_role(role)) tensors[tensor.name] = random_tensor(tensor.shape, engine);
  return tensors;
}

inline ir::TensorMap merged(ir::TensorMap a, const ir::TensorMap& b) {
  a.insert(b.begin(), b.end());
  return a;
}

// ||a - b|| / ||b||.
inline double relative_error(const ir::Tensor& a, const ir::Tensor& b) {
  double difference = 0, reference = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    difference += (a.data[i] - b.data[i]) * double(a.data[i] - b.data[i]);
    reference += b.data[i] * double(b.data[i]);
  }
  return reference == 0 ? std::sqrt(difference) : std::sqrt(difference / reference);
}

}  // namespace gos::rules::test_ops
