// Every constructor's operator is recognised as its own kernel, and recognition never claims a
// statement it does not compute exactly.
#include "lowering/kernels.h"

#include <gtest/gtest.h>

#include "ir/ops_test_specs.h"

namespace gos::lowering {
namespace {

using namespace ir::test_specs;

constexpr int kCases = 150;

template <typename MakeCase>
void expect_recognised_as(std::string_view kind, uint32_t seed, MakeCase make_case, std::vector<KernelKind> allowed) {
  for_each_case(kind, seed, kCases, make_case, [&](const auto& test_case, Random&) {
    ir::OpExpr op = build(test_case);
    auto kernels = recognise(op);
    ASSERT_EQ(kernels.size(), 1u);
    EXPECT_NE(std::find(allowed.begin(), allowed.end(), kernels[0].kind), allowed.end())
        << "recognised as " << to_string(kernels[0].kind) << ": " << ir::print(op);
    EXPECT_EQ(kernels[0].activation, op.statements()[0].activation);
    for (const auto& [role, name] : kernels[0].operands) EXPECT_NE(op.find_tensor(name), nullptr) << role;
  });
}

TEST(Recognise, Conv2dIncludingGroupedStridedDilatedAndAsymmetricPadding) {
  expect_recognised_as("conv2d", 100, ignoring_index(random_conv2d), {KernelKind::Conv});
}

TEST(Recognise, ShuffledGroupedConvIsAConvThatReordersItsInputChannels) {
  ir::Conv2dSpec spec{.in_channels = 4, .out_channels = 6, .input_size = {5, 5}, .kernel = {3, 3}, .groups = 2};
  auto plain = recognise(ir::conv2d(spec));
  ASSERT_EQ(plain.size(), 1u);
  EXPECT_TRUE(conv_input_channel_order(plain[0]).empty());
  spec.shuffle = true;
  auto shuffled = recognise(ir::conv2d(spec));
  ASSERT_EQ(shuffled.size(), 1u);
  EXPECT_EQ(shuffled[0].kind, KernelKind::Conv);
  EXPECT_TRUE(shuffled[0].conv2d.shuffle);
  EXPECT_EQ(conv_input_channel_order(shuffled[0]), (std::vector<int64_t>{0, 2, 1, 3}));
}

TEST(Recognise, Conv1d) { expect_recognised_as("conv1d", 200, ignoring_index(random_conv1d), {KernelKind::Conv}); }

TEST(Recognise, DepthwiseConv) {
  expect_recognised_as("depthwise", 300, ignoring_index(random_depthwise), {KernelKind::Conv});
}

TEST(Recognise, LinearWithTransposes) {
  expect_recognised_as("linear", 400, ignoring_index(random_linear), {KernelKind::Linear});
}

TEST(Recognise, MatMul) {
  expect_recognised_as("matmul", 500, ignoring_index(random_matmul), {KernelKind::MatMul, KernelKind::Linear});
}

// A pool with a window of one is the identity, which is recognised as such.
TEST(Recognise, MaxPool) {
  expect_recognised_as("max_pool", 600, ignoring_index(random_max_pool), {KernelKind::MaxPool, KernelKind::Activation});
}

TEST(Recognise, AveragePoolIncludingDivisorTables) {
  expect_recognised_as("average_pool", 700, ignoring_index(random_average_pool),
                       {KernelKind::AveragePool, KernelKind::Activation});
}

TEST(Recognise, GlobalAveragePool) {
  expect_recognised_as("global_pool", 800, ignoring_index(random_global_pool),
                       {KernelKind::GlobalAveragePool, KernelKind::AveragePool, KernelKind::Activation});
}

TEST(Recognise, ActivationsAndResidualAdds) {
  expect_recognised_as("activation", 900, random_activation_case, {KernelKind::Activation});
  expect_recognised_as("add", 1000, random_add_case, {KernelKind::Add});
}

TEST(Recognise, FoldedBatchNormStaysAKernel) {
  expect_recognised_as("fold conv", 1100, ignoring_index(random_fold_conv), {KernelKind::Conv});
  expect_recognised_as("fold linear", 1200, ignoring_index(random_fold_linear), {KernelKind::Linear});
}

TEST(Recognise, DepthwiseSeparableIsTwoConvKernels) {
  auto op = ir::parse("T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]; Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c])",
                      "n<1, k<8, c<4, h<6, w<6, r<3, s<3, in X[1,4,6,6]");
  auto kernels = recognise(op);
  ASSERT_EQ(kernels.size(), 2u);
  EXPECT_EQ(kernels[0].kind, KernelKind::Generic) << "a depthwise weight D[c,r,s] lacks the conv's [K,1,R,S] layout";
  EXPECT_EQ(kernels[1].kind, KernelKind::Generic) << "a pointwise weight P[k,c] lacks the conv's [K,C,1,1] layout";
  EXPECT_EQ(kernels[1].single.tensors_with_role(ir::Role::Input)[0].name, "T");
  EXPECT_EQ(kernels[1].activation, ir::Activation::Relu);
}

TEST(Recognise, ConvWithConvLayoutWeightsInsideATwoStatementOperator) {
  auto op = ir::parse(
      "T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,0,r,s]; Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c,0,0]",
      "n<1, k<8, c<4, h<6, w<6, r<3, s<3, in X[1,4,6,6], param D[4,1,3,3], param P[8,4,1,1]");
  auto kernels = recognise(op);
  ASSERT_EQ(kernels.size(), 2u);
  EXPECT_EQ(kernels[0].kind, KernelKind::Conv);
  EXPECT_EQ(kernels[0].conv2d.groups, 4);
  EXPECT_EQ(kernels[1].kind, KernelKind::Conv);
  EXPECT_EQ(kernels[1].operands.at("W"), "P");
}

TEST(Recognise, ShiftWithAFixedTableIsGeneric) {
  auto op = ir::parse("Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,r,s]",
                      "n<1, c<2, h<4, w<4, r<3, s<3, in X[1,2,4,4], const C[2,3,3] = {0,0,0,0,1,0,0,0,0, 0,1,0,0,0,0,0,0,0}");
  EXPECT_EQ(recognise(op)[0].kind, KernelKind::Generic);
}

TEST(Recognise, TransposedWeightIsNotMistakenForAConv) {
  auto op = ir::parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,s,r]", "n<1, k<2, c<2, h<4, w<4, r<3, s<2, in X[1,2,5,4]");
  EXPECT_EQ(recognise(op)[0].kind, KernelKind::Generic);
}

}  // namespace
}  // namespace gos::lowering
