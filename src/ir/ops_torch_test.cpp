// Every operator constructor against libtorch's own operator: seeded random specs (small, so the
// naive interpreter stays fast), random inputs and weights, the interpreter's output compared with
// torch's in shape and value. A failure names the kind, case number, seed and spec.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "ir/ops.h"
#include "ir/ops_test_specs.h"

namespace gos::ir {
namespace {

using namespace test_specs;

constexpr int kCasesPerKind = 500;
constexpr double kTolerance = 1e-4;

// ---- torch values -------------------------------------------------------------------------------

torch::Tensor to_torch(const Tensor& tensor) {
  return torch::from_blob(const_cast<float*>(tensor.data.data()), tensor.shape, torch::kFloat).clone();
}

torch::Tensor bound(const TensorMap& bindings, const std::string& name) { return to_torch(bindings.at(name)); }

// An undefined tensor (torch's "none") when the operator has no such tensor.
torch::Tensor bound_if_any(const TensorMap& bindings, const std::string& name) {
  auto found = bindings.find(name);
  return found == bindings.end() ? torch::Tensor() : to_torch(found->second);
}

// ---- torch references ---------------------------------------------------------------------------

torch::Tensor torch_activation(Activation activation, const torch::Tensor& x) {
  switch (activation) {
    case Activation::None: return x;
    case Activation::Relu: return torch::relu(x);
    case Activation::Relu6: return torch::hardtanh(x, 0.0, 6.0);
    case Activation::Sigmoid: return torch::sigmoid(x);
    case Activation::Silu: return torch::silu(x);
    case Activation::HardSwish: return torch::hardswish(x);
    case Activation::HardSigmoid: return torch::hardsigmoid(x);
    case Activation::Gelu: return torch::gelu(x, "none");
    case Activation::Tanh: return torch::tanh(x);
  }
  throw std::logic_error("unknown activation");
}

// torch::constant_pad_nd wants (begin, end) pairs starting from the last dimension; ONNX pads
// list every begin, then every end.
std::vector<int64_t> torch_pad_order(const std::vector<int64_t>& onnx_pads) {
  const size_t rank = onnx_pads.size() / 2;
  std::vector<int64_t> pads;
  for (size_t axis = rank; axis-- > 0;) {
    pads.push_back(onnx_pads[axis]);
    pads.push_back(onnx_pads[axis + rank]);
  }
  return pads;
}

// torch convolutions pad symmetrically, so the input is padded explicitly and convolved unpadded.
// A shuffled grouped convolution (ShuffleNet's channel shuffle) reads group g's c-th channel
// from input channel g + G*c.
torch::Tensor torch_convolution(const TensorMap& bindings, const std::vector<int64_t>& onnx_pads,
                                const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation,
                                int64_t groups, bool shuffle, Activation activation) {
  torch::Tensor x = bound(bindings, "X");
  if (shuffle) {
    const int64_t per_group = x.size(1) / groups;
    std::vector<int64_t> order;
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t c = 0; c < per_group; ++c) order.push_back(g + groups * c);
    }
    x = x.index_select(1, torch::tensor(order));
  }
  x = torch::constant_pad_nd(x, torch_pad_order(onnx_pads), 0.0);
  torch::Tensor w = bound(bindings, "W");
  torch::Tensor b = bound_if_any(bindings, "B");
  std::vector<int64_t> no_padding(stride.size(), 0);
  torch::Tensor y = stride.size() == 1 ? torch::conv1d(x, w, b, stride, no_padding, dilation, groups)
                                       : torch::conv2d(x, w, b, stride, no_padding, dilation, groups);
  return torch_activation(activation, y);
}

torch::Tensor reference(const Conv2dSpec& spec, const TensorMap& bindings) {
  return torch_convolution(bindings, {spec.padding.begin(), spec.padding.end()},
                           {spec.stride.begin(), spec.stride.end()}, {spec.dilation.begin(), spec.dilation.end()},
                           spec.groups, spec.shuffle, spec.activation);
}

torch::Tensor reference(const Conv1dSpec& spec, const TensorMap& bindings) {
  return torch_convolution(bindings, {spec.padding[0], spec.padding[1]}, {spec.stride}, {spec.dilation},
                           spec.groups, spec.shuffle, spec.activation);
}

torch::Tensor reference(const DepthwiseCase& depthwise, const TensorMap& bindings) {
  return reference(depthwise.spec, bindings);
}

// ONNX Gemm: act(op(A) @ op(B) + C), with torch's addmm.
torch::Tensor reference(const LinearSpec& spec, const TensorMap& bindings) {
  torch::Tensor a = bound(bindings, "X");
  torch::Tensor b = bound(bindings, "W");
  if (spec.trans_a) a = a.t();
  if (spec.trans_b) b = b.t();
  torch::Tensor y = spec.bias ? torch::addmm(bound(bindings, "B"), a, b) : torch::mm(a, b);
  return torch_activation(spec.activation, y);
}

torch::Tensor reference(const MatMulSpec& spec, const TensorMap& bindings) {
  if (spec.weight_lhs) {
    torch::Tensor y = torch::matmul(bound(bindings, "W"), bound(bindings, "X"));
    return spec.bias ? y + bound(bindings, "B").reshape({spec.m, 1}) : y;
  }
  if (!spec.weight_rhs) return torch::matmul(bound(bindings, "X"), bound(bindings, "Z"));
  torch::Tensor weight = spec.weight_transposed ? bound(bindings, "W").t() : bound(bindings, "W");
  torch::Tensor y = torch::matmul(bound(bindings, "X"), weight);
  return spec.bias ? y + bound(bindings, "B") : y;
}

bool symmetric(const std::vector<int64_t>& onnx_pads) {
  const size_t rank = onnx_pads.size() / 2;
  return std::equal(onnx_pads.begin(), onnx_pads.begin() + rank, onnx_pads.begin() + rank);
}

std::vector<int64_t> begins(const std::vector<int64_t>& onnx_pads) {
  return {onnx_pads.begin(), onnx_pads.begin() + onnx_pads.size() / 2};
}

// With asymmetric pads the input is padded explicitly, which hides the begin padding from torch's
// ceil-mode rule (the last window must start inside the input or its begin padding); this applies
// the rule with the real begin padding, dropping a last window that starts in the end padding.
torch::Tensor drop_windows_starting_in_end_padding(torch::Tensor y, const PoolSpec& spec) {
  if (!spec.ceil_mode) return y;
  for (size_t axis = 0; axis < spec.input_size.size(); ++axis) {
    int64_t extent = y.size(2 + axis);
    int64_t pad_begin = spec.padding[axis];
    if ((extent - 1) * spec.stride[axis] >= spec.input_size[axis] + pad_begin) {
      y = y.narrow(2 + axis, 0, extent - 1);
    }
  }
  return y;
}

torch::Tensor reference(const MaxPoolCase& pool, const TensorMap& bindings) {
  const PoolSpec& spec = pool.spec;
  torch::Tensor x = bound(bindings, "X");
  std::vector<int64_t> padding = begins(spec.padding);
  if (!symmetric(spec.padding)) {
    x = torch::constant_pad_nd(x, torch_pad_order(spec.padding), -std::numeric_limits<float>::infinity());
    std::fill(padding.begin(), padding.end(), 0);
  }
  torch::Tensor y = spec.input_size.size() == 1
                        ? torch::max_pool1d(x, spec.kernel, spec.stride, padding, spec.dilation, spec.ceil_mode)
                        : torch::max_pool2d(x, spec.kernel, spec.stride, padding, spec.dilation, spec.ceil_mode);
  return symmetric(spec.padding) ? y : drop_windows_starting_in_end_padding(y, spec);
}

torch::Tensor torch_average_pool(const torch::Tensor& x, const PoolSpec& spec, const std::vector<int64_t>& padding,
                                 bool count_include_pad) {
  if (spec.input_size.size() == 1) {
    return torch::avg_pool1d(x, spec.kernel, spec.stride, padding, spec.ceil_mode, count_include_pad);
  }
  return torch::avg_pool2d(x, spec.kernel, spec.stride, padding, spec.ceil_mode, count_include_pad);
}

// Asymmetric pads: the zero-padded input pooled with count_include_pad gives torch's divisor
// clipped at the end padding; without count_include_pad, dividing by the pooled mask of real
// elements turns that into the average over the window's real elements.
torch::Tensor reference(const AveragePoolCase& pool, const TensorMap& bindings) {
  const PoolSpec& spec = pool.spec;
  torch::Tensor x = bound(bindings, "X");
  if (symmetric(spec.padding)) return torch_average_pool(x, spec, begins(spec.padding), spec.count_include_pad);

  std::vector<int64_t> no_padding(spec.input_size.size(), 0);
  auto pool_padded = [&](const torch::Tensor& t) {
    torch::Tensor padded = torch::constant_pad_nd(t, torch_pad_order(spec.padding), 0.0);
    return torch_average_pool(padded, spec, no_padding, /*count_include_pad=*/true);
  };
  torch::Tensor y = pool_padded(x);
  if (!spec.count_include_pad) y = y / pool_padded(torch::ones_like(x));
  return drop_windows_starting_in_end_padding(y, spec);
}

torch::Tensor reference(const GlobalPoolCase& pool, const TensorMap& bindings) {
  std::vector<int64_t> spatial_dims;
  for (size_t axis = 0; axis < pool.spatial.size(); ++axis) spatial_dims.push_back(2 + axis);
  return torch::mean(bound(bindings, "X"), spatial_dims, pool.keep_dims);
}

torch::Tensor reference(const ElementwiseCase& elementwise, const TensorMap& bindings) {
  torch::Tensor x = bound(bindings, "X");
  return torch_activation(elementwise.activation, elementwise.residual ? x + bound(bindings, "Z") : x);
}

// ---- Comparison ---------------------------------------------------------------------------------

struct Comparison {
  Tensor ours;
  torch::Tensor reference;
  std::string notation;  // the operator, for the failure message
};

template <typename Case>
Comparison compare(const Case& test_case, Random& random) {
  OpExpr op = build(test_case);
  TensorMap bindings = random_bindings(op, random);
  return {evaluate(op, bindings), reference(test_case, bindings), print(op)};
}

// The folded operator, fed the folded weights, against torch's eval-mode batch_norm applied to
// the unfolded operator's torch reference.
template <typename BaseSpec>
Comparison compare(const FoldCase<BaseSpec>& fold, Random& random) {
  OpExpr op = build(fold.base);
  TensorMap bindings = random_bindings(op, random);
  FoldedOp folded = fold_batch_norm(op, bindings, fold.bn);
  TensorMap folded_bindings = folded.weights;
  folded_bindings.emplace("X", bindings.at("X"));
  auto vector = [](const std::vector<float>& values) {
    return to_torch(Tensor({static_cast<int64_t>(values.size())}, values));
  };
  torch::Tensor expected =
      torch::batch_norm(reference(fold.base, bindings), vector(fold.bn.gamma), vector(fold.bn.beta),
                        vector(fold.bn.mean), vector(fold.bn.var), /*training=*/false, /*momentum=*/0.1,
                        fold.bn.epsilon, /*cudnn_enabled=*/false);
  return {evaluate(folded.op, folded_bindings), expected, print(folded.op)};
}

// Max abs difference over max(1, max abs of the reference).
::testing::AssertionResult close_to_torch(const Comparison& comparison) {
  torch::Tensor reference = comparison.reference.contiguous();
  if (comparison.ours.shape != reference.sizes().vec()) {
    return ::testing::AssertionFailure() << "shape [" << join(comparison.ours.shape) << "] but torch gives ["
                                         << join(reference.sizes().vec()) << "]\n  op: " << comparison.notation;
  }
  torch::Tensor ours = to_torch(comparison.ours);
  double error = (ours - reference).abs().max().item<double>();
  double scale = std::max(1.0, reference.abs().max().item<double>());
  if (!(error / scale <= kTolerance)) {
    return ::testing::AssertionFailure() << "relative error " << error / scale << " exceeds " << kTolerance
                                         << "\n  op: " << comparison.notation;
  }
  return ::testing::AssertionSuccess();
}

// Runs kCasesPerKind seeded cases of one kind against torch.
template <typename MakeCase>
void check_against_torch(std::string_view kind, uint32_t base_seed, MakeCase make_case) {
  torch::set_num_threads(1);  // tiny tensors: threads cost more than they give
  for_each_case(kind, base_seed, kCasesPerKind, make_case, [](const auto& test_case, Random& random) {
    EXPECT_TRUE(close_to_torch(compare(test_case, random)));
  });
}

TEST(OpsAgainstTorch, Conv2d) { check_against_torch("conv2d", 1'000'000, ignoring_index(random_conv2d)); }
TEST(OpsAgainstTorch, Conv1d) { check_against_torch("conv1d", 2'000'000, ignoring_index(random_conv1d)); }
TEST(OpsAgainstTorch, DepthwiseConv2d) {
  check_against_torch("depthwise_conv2d", 3'000'000, ignoring_index(random_depthwise));
}
TEST(OpsAgainstTorch, Linear) { check_against_torch("linear", 4'000'000, ignoring_index(random_linear)); }
TEST(OpsAgainstTorch, MatMul) { check_against_torch("matmul", 5'000'000, ignoring_index(random_matmul)); }
TEST(OpsAgainstTorch, MaxPool) { check_against_torch("max_pool", 6'000'000, ignoring_index(random_max_pool)); }
TEST(OpsAgainstTorch, AveragePool) {
  check_against_torch("average_pool", 7'000'000, ignoring_index(random_average_pool));
}
TEST(OpsAgainstTorch, GlobalAveragePool) {
  check_against_torch("global_average_pool", 8'000'000, ignoring_index(random_global_pool));
}
TEST(OpsAgainstTorch, Activation) { check_against_torch("activation", 9'000'000, random_activation_case); }
TEST(OpsAgainstTorch, Add) { check_against_torch("add", 10'000'000, random_add_case); }
TEST(OpsAgainstTorch, FoldBatchNormIntoConv) {
  check_against_torch("fold_batch_norm(conv2d)", 11'000'000, ignoring_index(random_fold_conv));
}
TEST(OpsAgainstTorch, FoldBatchNormIntoLinear) {
  check_against_torch("fold_batch_norm(linear)", 12'000'000, ignoring_index(random_fold_linear));
}

}  // namespace
}  // namespace gos::ir
