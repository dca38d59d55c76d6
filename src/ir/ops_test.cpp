// The operator constructors without torch: their exact cost equals the textbook formulas, invalid
// attributes are rejected with messages naming the attribute, and every kind survives the text
// notation (parse(print(e)) == e). Values are checked against torch in ops_torch_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>

#include "ir/ops.h"
#include "ir/ops_test_specs.h"

namespace gos::ir {
namespace {

using namespace test_specs;

constexpr int kCasesPerKind = 40;

// ---- Textbook cost ------------------------------------------------------------------------------

struct TextbookCost {
  int64_t macs = 0;
  int64_t params = 0;
};

// floor((input + pads - dilation*(kernel-1) - 1) / stride) + 1
int64_t conv_output(int64_t input, int64_t kernel, int64_t stride, int64_t dilation, int64_t pads) {
  return (input + pads - dilation * (kernel - 1) - 1) / stride + 1;
}

// N*K*Ho*Wo*(C/G)*R*S MACs and K*(C/G)*R*S (+K bias) params.
TextbookCost textbook_cost(const Conv2dSpec& spec) {
  const int64_t height = conv_output(spec.input_size[0], spec.kernel[0], spec.stride[0], spec.dilation[0],
                                     spec.padding[0] + spec.padding[2]);
  const int64_t width = conv_output(spec.input_size[1], spec.kernel[1], spec.stride[1], spec.dilation[1],
                                    spec.padding[1] + spec.padding[3]);
  const int64_t weights = spec.out_channels * (spec.in_channels / spec.groups) * spec.kernel[0] * spec.kernel[1];
  return {spec.batch * height * width * weights, weights + (spec.bias ? spec.out_channels : 0)};
}

TextbookCost textbook_cost(const Conv1dSpec& spec) {
  const int64_t length =
      conv_output(spec.input_length, spec.kernel, spec.stride, spec.dilation, spec.padding[0] + spec.padding[1]);
  const int64_t weights = spec.out_channels * (spec.in_channels / spec.groups) * spec.kernel;
  return {spec.batch * length * weights, weights + (spec.bias ? spec.out_channels : 0)};
}

// N*(C*m)*Ho*Wo*R*S MACs: each output channel reads one input channel.
TextbookCost textbook_cost(const DepthwiseCase& depthwise) {
  Conv2dSpec grouped = depthwise.spec;
  grouped.groups = grouped.in_channels;
  grouped.out_channels = grouped.in_channels * depthwise.multiplier;
  return textbook_cost(grouped);
}

TextbookCost textbook_cost(const LinearSpec& spec) {
  const int64_t weights = spec.in_features * spec.out_features;
  return {spec.batch * weights, weights + (spec.bias ? spec.out_features : 0)};
}

TextbookCost textbook_cost(const MatMulSpec& spec) {
  const int64_t batch =
      std::accumulate(spec.batch_dims.begin(), spec.batch_dims.end(), int64_t{1}, std::multiplies<>());
  const int64_t weights = spec.weight_rhs || spec.weight_lhs ? spec.k * (spec.weight_rhs ? spec.n : spec.m) : 0;
  return {batch * spec.m * spec.k * spec.n, weights + (spec.bias ? (spec.weight_rhs ? spec.n : spec.m) : 0)};
}

// Pooling, activations and residual adds multiply no learned values and have no params.
TextbookCost textbook_cost(const MaxPoolCase&) { return {}; }
TextbookCost textbook_cost(const AveragePoolCase&) { return {}; }
TextbookCost textbook_cost(const GlobalPoolCase&) { return {}; }
TextbookCost textbook_cost(const ElementwiseCase&) { return {}; }

template <typename MakeCase>
void check_costs(std::string_view kind, uint32_t base_seed, MakeCase make_case) {
  for_each_case(kind, base_seed, kCasesPerKind, make_case, [](const auto& test_case, Random&) {
    Cost actual = cost(build(test_case));
    TextbookCost expected = textbook_cost(test_case);
    EXPECT_EQ(actual.macs, expected.macs);
    EXPECT_EQ(actual.params, expected.params);
  });
}

TEST(OpsCost, Conv2d) { check_costs("conv2d", 101'000, ignoring_index(random_conv2d)); }
TEST(OpsCost, Conv1d) { check_costs("conv1d", 102'000, ignoring_index(random_conv1d)); }
TEST(OpsCost, DepthwiseConv2d) { check_costs("depthwise_conv2d", 103'000, ignoring_index(random_depthwise)); }
TEST(OpsCost, Linear) { check_costs("linear", 104'000, ignoring_index(random_linear)); }
TEST(OpsCost, MatMul) { check_costs("matmul", 105'000, ignoring_index(random_matmul)); }
TEST(OpsCost, MaxPool) { check_costs("max_pool", 106'000, ignoring_index(random_max_pool)); }
TEST(OpsCost, AveragePool) { check_costs("average_pool", 107'000, ignoring_index(random_average_pool)); }
TEST(OpsCost, GlobalAveragePool) {
  check_costs("global_average_pool", 108'000, ignoring_index(random_global_pool));
}
TEST(OpsCost, Activation) { check_costs("activation", 109'000, random_activation_case); }
TEST(OpsCost, Add) { check_costs("add", 110'000, random_add_case); }

// ---- Round trip through the notation ------------------------------------------------------------

template <typename MakeCase>
void check_round_trip(std::string_view kind, uint32_t base_seed, MakeCase make_case) {
  for_each_case(kind, base_seed, kCasesPerKind, make_case, [](const auto& test_case, Random&) {
    OpExpr op = build(test_case);
    std::string text = print(op);
    SCOPED_TRACE("printed: " + text);
    OpExpr parsed = parse(text);
    EXPECT_EQ(parsed, op);
    EXPECT_EQ(print(parsed), text);
  });
}

TEST(OpsRoundTrip, Conv2d) { check_round_trip("conv2d", 201'000, ignoring_index(random_conv2d)); }
TEST(OpsRoundTrip, Conv1d) { check_round_trip("conv1d", 202'000, ignoring_index(random_conv1d)); }
TEST(OpsRoundTrip, DepthwiseConv2d) {
  check_round_trip("depthwise_conv2d", 203'000, ignoring_index(random_depthwise));
}
TEST(OpsRoundTrip, Linear) { check_round_trip("linear", 204'000, ignoring_index(random_linear)); }
TEST(OpsRoundTrip, MatMul) { check_round_trip("matmul", 205'000, ignoring_index(random_matmul)); }
TEST(OpsRoundTrip, MaxPool) { check_round_trip("max_pool", 206'000, ignoring_index(random_max_pool)); }
TEST(OpsRoundTrip, AveragePool) { check_round_trip("average_pool", 207'000, ignoring_index(random_average_pool)); }
TEST(OpsRoundTrip, GlobalAveragePool) {
  check_round_trip("global_average_pool", 208'000, ignoring_index(random_global_pool));
}
TEST(OpsRoundTrip, Activation) { check_round_trip("activation", 209'000, random_activation_case); }
TEST(OpsRoundTrip, Add) { check_round_trip("add", 210'000, random_add_case); }
TEST(OpsRoundTrip, FoldBatchNormIntoConv) {
  check_round_trip("fold_batch_norm(conv2d)", 211'000, ignoring_index(random_fold_conv));
}
TEST(OpsRoundTrip, FoldBatchNormIntoLinear) {
  check_round_trip("fold_batch_norm(linear)", 212'000, ignoring_index(random_fold_linear));
}

// ---- Operator structure -------------------------------------------------------------------------

TEST(Ops, Conv2dIsWrittenAsTheTextbookFormula) {
  Conv2dSpec spec;
  spec.in_channels = 3;
  spec.out_channels = 4;
  spec.input_size = {8, 8};
  spec.kernel = {3, 3};
  spec.stride = {2, 2};
  spec.padding = {1, 1, 1, 1};
  spec.bias = true;
  spec.activation = Activation::Relu;
  EXPECT_EQ(print(conv2d(spec)),
            "Y[n,k,h,w] = relu(sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s] + B[k]) "
            "where n<1, k<4, h<4, w<4, c<3, r<3, s<3, in X[1,3,8,8], param W[4,3,3,3], param B[4]");
}

TEST(Ops, GroupedConvWritesChannelsAsGroupAndChannelInGroup) {
  Conv2dSpec spec{.in_channels = 4, .out_channels = 6, .input_size = {5, 5}, .kernel = {3, 3}, .groups = 2};
  std::string text = print(conv2d(spec));
  EXPECT_NE(text.find("Y[n,3*g+k,h,w]"), std::string::npos) << text;
  EXPECT_NE(text.find("X[n,2*g+c,h+r,w+s]"), std::string::npos) << text;
  EXPECT_NE(text.find("W[3*g+k,c,r,s]"), std::string::npos) << text;
  // Shuffled, group g reads its c-th channel from channel g + G*c.
  spec.shuffle = true;
  text = print(conv2d(spec));
  EXPECT_NE(text.find("X[n,g+2*c,h+r,w+s]"), std::string::npos) << text;
  EXPECT_NE(text.find("W[3*g+k,c,r,s]"), std::string::npos) << text;
}

TEST(Ops, ShuffledGroupedConvIsAGroupedConvOfTheShuffledChannels) {
  Conv2dSpec spec;
  spec.in_channels = 6;
  spec.out_channels = 6;
  spec.groups = 3;
  spec.input_size = {4, 3};
  spec.kernel = {3, 1};
  spec.padding = {1, 0, 1, 0};
  spec.bias = true;
  Tensor x({1, 6, 4, 3}), w({6, 2, 3, 1}), b({6});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = std::sin(0.7f * static_cast<float>(i));
  for (size_t i = 0; i < w.data.size(); ++i) w.data[i] = std::cos(0.3f * static_cast<float>(i));
  b.data = {0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.75f};
  // Group g reads channels g, g+3: the shuffled input holds channels 0, 3, 1, 4, 2, 5 in turn.
  Tensor shuffled = x;
  const std::vector<int64_t> order{0, 3, 1, 4, 2, 5};
  for (int64_t c = 0; c < 6; ++c) {
    std::copy_n(x.data.begin() + order[c] * 12, 12, shuffled.data.begin() + c * 12);
  }
  Conv2dSpec plain = spec;
  spec.shuffle = true;
  EXPECT_EQ(evaluate(conv2d(spec), {{"X", x}, {"W", w}, {"B", b}}).data,
            evaluate(conv2d(plain), {{"X", shuffled}, {"W", w}, {"B", b}}).data);
}

TEST(Ops, UnitKernelAndChannelsNeedNoIndex) {
  Conv2dSpec spec;
  spec.in_channels = 3;
  spec.input_size = {4, 4};
  std::string text = print(depthwise_conv2d(spec));
  EXPECT_EQ(text,
            "Y[n,g,h,w] = X[n,g,h,w] * W[g,0,0,0] where n<1, g<3, h<4, w<4, in X[1,3,4,4], param W[3,1,1,1]");
}

TEST(Ops, AveragePoolUsesMeanWhenEveryWindowIsFull) {
  PoolSpec spec;
  spec.input_size = {6, 6};
  spec.kernel = {2, 2};
  spec.stride = {2, 2};
  OpExpr op = average_pool(spec);
  EXPECT_EQ(op.statements().back().reduction, Reduction::Mean);
  EXPECT_TRUE(op.tensors_with_role(Role::Const).empty());
}

TEST(Ops, AveragePoolExcludingPaddingDividesByAPerPositionTable) {
  PoolSpec spec;
  spec.input_size = {3};
  spec.kernel = {3};
  spec.padding = {1, 1};
  OpExpr op = average_pool(spec);
  ASSERT_EQ(op.tensors_with_role(Role::Const).size(), 1u);
  EXPECT_EQ(*op.tensor("C").values, (std::vector<float>{0.5f, 1.0f / 3.0f, 0.5f}));
}

TEST(Ops, CeilModeDropsALastWindowStartingInTheEndPadding) {
  PoolSpec spec;
  spec.input_size = {5};
  spec.kernel = {2};
  spec.stride = {2};
  spec.padding = {0, 1};
  spec.ceil_mode = true;
  // ceil((5 + 1 - 2) / 2) + 1 = 3 windows, starting at 0, 2, 4: all inside the input.
  EXPECT_EQ(max_pool(spec).output().shape, (std::vector<int64_t>{1, 1, 3}));
  spec.input_size = {4};
  spec.padding = {0, 1};
  spec.kernel = {1};
  // ceil((4 + 1 - 1) / 2) + 1 = 3 windows, but the third starts at 4, in the end padding.
  EXPECT_EQ(max_pool(spec).output().shape, (std::vector<int64_t>{1, 1, 2}));
}

TEST(Ops, GlobalAveragePoolKeepsUnitDimensions) {
  EXPECT_EQ(global_average_pool(2, 3, {4, 5}).output().shape, (std::vector<int64_t>{2, 3, 1, 1}));
  EXPECT_EQ(global_average_pool(2, 3, {4, 5}, false).output().shape, (std::vector<int64_t>{2, 3}));
}

TEST(Ops, MeanOverAxesAveragesThemAndKeepsOrDropsThem) {
  const Tensor x({1, 2, 3}, {1, 2, 3, 5, 6, 7});
  EXPECT_EQ(evaluate(mean_over_axes({1, 2, 3}, {1}, false), {{"X", x}}).data, (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(evaluate(mean_over_axes({1, 2, 3}, {2}, true), {{"X", x}}).data, (std::vector<float>{2, 6}));
  EXPECT_EQ(mean_over_axes({1, 2, 3}, {2}, true).output().shape, (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ(evaluate(mean_over_axes({1, 2, 3}, {1, 2}, false), {{"X", x}}).data, (std::vector<float>{4}));
  EXPECT_EQ(mean_over_axes({2, 3, 4, 5}, {2, 3}, false), global_average_pool(2, 3, {4, 5}, false));
}

TEST(Ops, FoldBatchNormAddsABiasAndRescalesTheOutputChannel) {
  LinearSpec spec;
  spec.in_features = 2;
  spec.out_features = 2;
  spec.trans_b = false;  // W[c,k]: the channel is W's second dimension
  OpExpr op = linear(spec);
  TensorMap weights{{"W", Tensor({2, 2}, {1, 2, 3, 4})}};
  BatchNormParams bn{{2, 8}, {1, 1}, {0.5f, 0}, {1, 4}, 0};  // scale 2 and 4
  FoldedOp folded = fold_batch_norm(op, weights, bn);
  EXPECT_NE(folded.op.find_tensor("B"), nullptr);
  EXPECT_EQ(folded.weights.at("W").data, (std::vector<float>{2, 8, 6, 16}));
  EXPECT_EQ(folded.weights.at("B").data, (std::vector<float>{0, 1}));
}

// A rank-split candidate of a conv: the normalisation rescales the second factor, W2.
TEST(Ops, FoldBatchNormRescalesTheLastStatementsChannelWeight) {
  const OpExpr op = parse(
      "T[n,p,h,w] = sum{c} X[n,c,h,w] * W1[p,c]; Y[n,k,h,w] = sum{p} T[n,p,h,w] * W2[k,p] "
      "where n<1, p<2, h<3, w<3, c<4, k<5, in X[1,4,3,3], param W1[2,4], param W2[5,2]");
  Random random(3);
  TensorMap bindings = random_bindings(op, random);
  const BatchNormParams bn = random_batch_norm(random, 5);
  const FoldedOp folded = fold_batch_norm(op, bindings, bn);
  EXPECT_EQ(folded.weights.count("W1"), 0u);
  const Tensor before = evaluate(op, bindings);
  for (const auto& [name, tensor] : folded.weights) bindings[name] = tensor;
  const Tensor after = evaluate(folded.op, bindings);
  for (size_t i = 0; i < before.data.size(); ++i) {
    const size_t k = (i / 9) % 5;
    const float expected = (before.data[i] - bn.mean[k]) / std::sqrt(bn.var[k] + bn.epsilon) * bn.gamma[k] + bn.beta[k];
    EXPECT_NEAR(after.data[i], expected, 1e-4) << i;
  }
}

TEST(Ops, FoldBatchNormRefusesAResidualAddedBeforeIt) {
  const OpExpr op = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] + Z[n,k] where n<1, k<2, c<3, in X[1,3], in Z[1,2], param W[2,3]");
  Random random(4);
  try {
    fold_batch_norm(op, random_bindings(op, random), random_batch_norm(random, 2));
    ADD_FAILURE() << "folded across a residual";
  } catch (const IrError& error) {
    EXPECT_NE(std::string(error.what()).find("adds Z"), std::string::npos) << error.what();
  }
}

// ---- Invalid attributes -------------------------------------------------------------------------

void expect_error(const std::function<void()>& build_op, const std::string& fragment) {
  try {
    build_op();
    ADD_FAILURE() << "expected an IrError mentioning '" << fragment << "'";
  } catch (const IrError& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

Conv2dSpec small_conv() {
  Conv2dSpec spec;
  spec.in_channels = 8;
  spec.out_channels = 6;
  spec.input_size = {5, 5};
  spec.kernel = {3, 3};
  return spec;
}

PoolSpec small_pool() {
  PoolSpec spec;
  spec.input_size = {5, 5};
  spec.kernel = {3, 3};
  return spec;
}

// `builder` on `spec` after `spoil` breaks one attribute.
template <typename Spec, typename Spoil, typename Builder>
void expect_invalid(Spec spec, Spoil spoil, Builder builder, const std::string& fragment) {
  spoil(spec);
  expect_error([&] { builder(spec); }, fragment);
}

TEST(OpsValidation, ConvolutionAttributes) {
  auto build_conv = [](const Conv2dSpec& spec) { conv2d(spec); };
  expect_invalid(small_conv(), [](auto& s) { s.groups = 3; }, build_conv,
                 "conv2d: groups (3) must divide in_channels (8)");
  expect_invalid(small_conv(), [](auto& s) { s.groups = 4; }, build_conv,
                 "groups (4) must divide out_channels (6)");
  expect_invalid(small_conv(), [](auto& s) { s.groups = 0; }, build_conv, "groups (0) must be positive");
  expect_invalid(small_conv(), [](auto& s) { s.kernel[1] = 0; }, build_conv, "kernel (0)");
  expect_invalid(small_conv(), [](auto& s) { s.stride[0] = 0; }, build_conv, "stride (0)");
  expect_invalid(small_conv(), [](auto& s) { s.dilation[0] = -1; }, build_conv, "dilation (-1)");
  expect_invalid(small_conv(), [](auto& s) { s.padding[3] = -1; }, build_conv, "padding (-1)");
  expect_invalid(small_conv(), [](auto& s) { s.batch = 0; }, build_conv, "batch (0)");
  expect_invalid(small_conv(), [](auto& s) { s.in_channels = 0; }, build_conv, "in_channels (0)");
  expect_invalid(small_conv(), [](auto& s) { s.kernel = {6, 3}; }, build_conv, "output is empty");
  expect_error([] { depthwise_conv2d(small_conv(), 0); }, "depthwise_conv2d: multiplier (0)");
  Conv1dSpec spec_1d;
  spec_1d.in_channels = 4;
  spec_1d.groups = 3;
  expect_error([&] { conv1d(spec_1d); }, "conv1d: groups (3) must divide in_channels (4)");
}

TEST(OpsValidation, DenseAttributes) {
  auto build_linear = [](const LinearSpec& spec) { linear(spec); };
  auto build_matmul = [](const MatMulSpec& spec) { matmul(spec); };
  expect_invalid(LinearSpec{}, [](auto& s) { s.in_features = 0; }, build_linear, "linear: in_features (0)");
  expect_invalid(LinearSpec{}, [](auto& s) { s.out_features = -2; }, build_linear, "out_features (-2)");
  expect_invalid(MatMulSpec{}, [](auto& s) { s.k = 0; }, build_matmul, "matmul: k (0)");
  expect_invalid(MatMulSpec{}, [](auto& s) { s.batch_dims = {2, 0}; }, build_matmul, "batch_dims (0)");
}

TEST(OpsValidation, PoolingAttributes) {
  auto build_max = [](const PoolSpec& spec) { max_pool(spec); };
  auto build_average = [](const PoolSpec& spec) { average_pool(spec); };
  expect_invalid(small_pool(), [](auto& s) { s.kernel = {3}; }, build_max, "kernel has 1 entries; expected 2");
  expect_invalid(small_pool(), [](auto& s) { s.stride = {1, 1, 1}; }, build_max, "stride has 3 entries");
  expect_invalid(small_pool(), [](auto& s) { s.padding = {1, 1}; }, build_max, "padding has 2 entries");
  expect_invalid(small_pool(), [](auto& s) { s.channels = 0; }, build_max, "max_pool: channels (0)");
  expect_invalid(small_pool(), [](auto& s) { s.input_size = {5, 5, 5}; }, build_max, "input_size has 3 entries");
  expect_invalid(small_pool(), [](auto& s) { s.dilation = {2, 1}; }, build_average, "average_pool: dilation (2)");
  // Taps at -1 and 2 of a length-2 input: the only window is all padding.
  PoolSpec padding_only;
  padding_only.input_size = {2};
  padding_only.kernel = {2};
  padding_only.dilation = {3};
  padding_only.padding = {1, 1};
  expect_error([&] { max_pool(padding_only); }, "reads only padding");
  expect_error([] { global_average_pool(1, 0, {3, 3}); }, "global_average_pool: channels (0)");
  expect_error([] { mean_over_axes({2, 3}, {0}, false); }, "the batch axis is not reduced");
  expect_error([] { mean_over_axes({2, 3}, {}, false); }, "axes must be given");
}

TEST(OpsValidation, ElementwiseAttributes) {
  expect_error([] { activation({2, 0}, Activation::Relu); }, "activation: shape (0)");
  expect_error([] { add({-1}); }, "add: shape (-1)");
}

TEST(OpsValidation, FoldBatchNormChecksItsInputs) {
  Conv2dSpec spec = small_conv();
  Random random(1);
  OpExpr op = conv2d(spec);
  TensorMap weights = random_bindings(op, random);
  expect_error([&] { fold_batch_norm(op, weights, random_batch_norm(random, 5)); }, "gamma has 5 values");
  spec.activation = Activation::Relu;
  OpExpr activated = conv2d(spec);
  expect_error([&] { fold_batch_norm(activated, weights, random_batch_norm(random, 6)); }, "applies relu");
  expect_error([&] { fold_batch_norm(op, {}, random_batch_norm(random, 6)); }, "no value given for W");
}

}  // namespace
}  // namespace gos::ir
