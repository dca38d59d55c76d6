#pragma once
// Shared by the libtorch and TorchScript lowering tests: the hand-written operators that need the
// generic lowering, batch-1 variants of the ops.h random specs, and comparisons with the
// interpreter.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ir/ops_test_specs.h"
#include "lowering/torch_lowering.h"

namespace gos::lowering::test_support {

using namespace ir::test_specs;
using ir::Conv1dSpec;
using ir::Conv2dSpec;
using ir::LinearSpec;
using ir::MatMulSpec;

constexpr double kTolerance = 1e-4;

// Max abs difference over max(1, max abs of the reference), with a message on failure.
inline ::testing::AssertionResult close(const torch::Tensor& ours, const torch::Tensor& reference,
                                        const std::string& context, double tolerance = kTolerance) {
  if (ours.sizes() != reference.sizes()) {
    return ::testing::AssertionFailure() << "shape " << ours.sizes() << " but expected " << reference.sizes() << "\n"
                                         << context;
  }
  double error = (ours - reference).abs().max().item<double>();
  double scale = std::max(1.0, reference.abs().max().item<double>());
  if (!(error / scale <= tolerance)) {
    return ::testing::AssertionFailure() << "relative error " << error / scale << " exceeds " << tolerance << "\n"
                                         << context;
  }
  return ::testing::AssertionSuccess();
}

inline std::vector<torch::Tensor> input_tensors(const TorchOp& lowered, const ir::TensorMap& bindings) {
  std::vector<torch::Tensor> inputs;
  for (const auto& name : lowered.program().inputs) inputs.push_back(to_torch(bindings.at(name)));
  return inputs;
}

inline std::map<std::string, torch::Tensor> param_tensors(const TorchOp& lowered, const ir::TensorMap& bindings) {
  std::map<std::string, torch::Tensor> params;
  for (const auto& name : lowered.program().params) params[name] = to_torch(bindings.at(name));
  return params;
}

// ---- Hand-written operators that only the generic lowering computes ---------------------------------

struct GenericCase {
  std::string name;
  std::string text;      // the notation
  bool batched = true;   // nominal batch 1 in dimension 0 of every input and the output
};

inline std::string one_hot_shift_table() {
  // Channel c shifts by (c mod 3) - 1 rows and ((c / 3) mod 3) - 1 columns.
  std::string values;
  for (int c = 0; c < 4; ++c) {
    for (int r = 0; r < 3; ++r) {
      for (int s = 0; s < 3; ++s) {
        bool hot = r == c % 3 && s == (c / 3) % 3;
        values += std::string(values.empty() ? "" : ", ") + (hot ? "1" : "0");
      }
    }
  }
  return values;
}

inline const std::vector<GenericCase>& generic_cases() {
  static const std::vector<GenericCase> cases{
      {"depthwise separable",
       "T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s];"
       "Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c]) where n<1, c<4, k<5, h<6, w<7, r<3, s<3"},
      {"shift by a one-hot table",
       "Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,r,s] where n<1, c<4, h<5, w<6, r<3, s<3, "
       "const C[4,3,3] = {" + one_hot_shift_table() + "}"},
      {"grouped output with a rank-5 weight",
       "Y[n,4*g+k,h,w] = sum{c,r,s} X[n,2*g+c,h+r-1,w+s-1] * W[g,k,c,r,s] + B[4*g+k] "
       "where n<1, g<3, k<4, c<2, h<5, w<5, r<3, s<3"},
      {"window split into two statements",
       "T[n,p,h,w] = sum{c,s} X[n,c,h,w+s-1] * B[p,c,s];"
       "Y[n,k,h,w] = sum{p,r} T[n,p,h+r-1,w] * A[k,p,r] where n<1, c<3, p<2, k<4, h<6, w<5, r<3, s<3"},
      {"window-split weight product",
       "V[k,c,r,s] = sum{p} A[k,p,r] * B[p,c,s];"
       "Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * V[k,c,r,s] "
       "where n<1, c<3, p<2, k<4, h<5, w<6, r<3, s<3, in X[1,3,5,6]"},
      {"strided and dilated window",
       "Y[n,c,h,w] = sum{r,s} X[n,c,2*h+2*r-2,3*w+s] * D[c,r,s] where n<1, c<3, h<4, w<3, r<3, s<2, in X[1,3,9,9]"},
      {"max over a channel and spatial window",
       "Y[n,c,h,w] = max{q,r,s} X[n,c+q-1,2*h+r-1,2*w+2*s-2] where n<1, c<3, q<2, h<4, w<4, r<3, s<2, in X[1,3,7,8]"},
      {"max over a weighted window",
       "Y[n,c,h] = max{r} X[n,c,h+r-2] * S[c,r] where n<1, c<3, h<6, r<4, in X[1,3,6]"},
      {"channel shuffle",
       "Y[n,3*g+c,h,w] = X[n,2*c+g,h,w] where n<1, g<2, c<3, h<3, w<4"},
      {"reversed read", "Y[n,c,h] = X[n,c,4-h] * S[c] where n<1, c<3, h<5"},
      {"transposed convolution",
       "Y[n,k,h] = sum{c,r} X[n,c,h-r+1] * W[k,c,r] where n<1, k<3, c<2, h<7, r<3, in X[1,2,6]"},
      {"rotated read", "Y[n,i,j] = X[n,i+j,i-j+3] where n<1, i<4, j<4, in X[1,7,7]"},
      {"mean over a padded channel window", "Y[n,c,h] = mean{r} X[n,c+r-1,h] where n<1, c<3, h<5, r<3"},
      {"bias over an index the product lacks", "Y[n,k] = sum{c} X[n,c] + B[k] where n<1, k<3, c<4"},
      {"broadcast to an unread index", "Y[n,k,c] = sigmoid(X[n,c]) where n<1, k<3, c<4"},
      {"sum over an unread index", "Y[n] = sum{c,r} X[n,c] where n<1, c<4, r<3"},
      {"diagonal read", "Y[n,i] = X[n,i,i] * S[i,i] where n<1, i<4"},
      {"dot product into a scalar", "Y[] = sum{i} X[i] * S[] where i<6", false},
  };
  return cases;
}

// ---- ops.h random specs with a nominal batch of 1 in dimension 0 -----------------------------------

inline Conv2dSpec unit_batch(Conv2dSpec spec) { return spec.batch = 1, spec; }
inline Conv1dSpec unit_batch(Conv1dSpec spec) { return spec.batch = 1, spec; }
inline DepthwiseCase unit_batch(DepthwiseCase depthwise) { return depthwise.spec.batch = 1, depthwise; }
inline LinearSpec unit_batch(LinearSpec spec) { return spec.batch = 1, spec.trans_a = false, spec; }
inline MatMulSpec unit_batch(MatMulSpec spec) {
  if (spec.batch_dims.empty()) spec.batch_dims.push_back(1);
  spec.batch_dims[0] = 1;
  return spec;
}
inline MaxPoolCase unit_batch(MaxPoolCase pool) { return pool.spec.batch = 1, pool; }
inline AveragePoolCase unit_batch(AveragePoolCase pool) { return pool.spec.batch = 1, pool; }
inline GlobalPoolCase unit_batch(GlobalPoolCase pool) { return pool.batch = 1, pool; }
inline ElementwiseCase unit_batch(ElementwiseCase elementwise) { return elementwise.shape[0] = 1, elementwise; }

template <typename MakeCase>
auto with_unit_batch(MakeCase make_case) {
  return [make_case](Random& random, int index) { return unit_batch(make_case(random, index)); };
}

}  // namespace gos::lowering::test_support
