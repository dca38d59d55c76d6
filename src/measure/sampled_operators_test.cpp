#include "measure/sampled_operators.h"

#include <gtest/gtest.h>

#include <set>

#include "ir/ops.h"

#include "lowering/kernels.h"
#include "measure/predictor.h"

namespace gos::measure {
namespace {

constexpr size_t kCount = 300;

// A depthwise 3x3 and a linear layer, as a model would give them to vary.
std::vector<ir::OpExpr> model_like() {
  return {ir::depthwise_conv2d({.in_channels = 32, .out_channels = 32, .input_size = {14, 14}, .kernel = {3, 3},
                                .padding = {1, 1, 1, 1}, .bias = true}),
          ir::linear({.in_features = 64, .out_features = 10, .bias = true})};
}

TEST(SampledOperators, AreTheSameForTheSameSeedAndDifferForAnother) {
  auto first = sampled_operators(kCount, 7), again = sampled_operators(kCount, 7), other = sampled_operators(kCount, 8);
  ASSERT_EQ(first.size(), kCount);
  ASSERT_EQ(again.size(), kCount);
  size_t same_as_other = 0;
  for (size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(first[i].op.canonical_key(), again[i].op.canonical_key());
    same_as_other += first[i].op.canonical_key() == other[i].op.canonical_key();
  }
  EXPECT_LT(same_as_other, kCount / 10);
}

TEST(SampledOperators, AreDistinctValidOperatorsWithTheirWeights) {
  std::set<std::string> keys;
  for (const auto& [op, weights] : sampled_operators(kCount, 7)) {
    EXPECT_TRUE(keys.insert(op.canonical_key()).second) << ir::print(op);
    EXPECT_EQ(ir::parse(ir::print(op)).canonical_key(), op.canonical_key());
    EXPECT_EQ(lowering::recognise(op).size(), op.statements().size());
    for (const auto& [name, value] : weights) EXPECT_EQ(value.shape, op.tensor(name).shape) << name;
  }
}

TEST(SampledOperators, CoverEveryKernelKindAndTwoStatementCandidates) {
  std::set<std::string> kinds;
  size_t two_statement = 0;
  for (const auto& [op, weights] : sampled_operators(kCount, 7)) {
    for (size_t s = 0; s < op.statements().size(); ++s) kinds.insert(statement_kind(op, s));
    two_statement += op.statements().size() == 2;
  }
  for (const char* kind : {"conv", "conv1x1", "depthwise", "grouped_conv", "linear", "matmul", "pool", "global_pool", "shift",
                           "elementwise"}) {
    EXPECT_TRUE(kinds.contains(kind)) << kind;
  }
  EXPECT_GT(two_statement, kCount / 20);
}

size_t biased_depthwise_3x3(const std::vector<OpToMeasure>& ops) {
  size_t count = 0;
  for (const auto& [op, weights] : ops) {
    if (op.statements().size() != 1 || statement_kind(op, 0) != "depthwise") continue;
    const auto kernel = lowering::recognise(op).at(0);
    count += kernel.conv2d.kernel == std::array<int64_t, 2>{3, 3} && kernel.conv2d.bias;
  }
  return count;
}

TEST(SampledOperators, VaryTheGivenOperatorsSizes) {
  const size_t near_given = biased_depthwise_3x3(sampled_operators(kCount, 7, model_like()));
  const size_t without = biased_depthwise_3x3(sampled_operators(kCount, 7));
  EXPECT_GT(near_given, 2 * without + kCount / 20);
}

TEST(SampledOperators, NeverContainAHeldOutStatement) {
  for (const auto& [op, weights] : sampled_operators(kCount, 7, model_like())) {
    EXPECT_FALSE(is_held_out(op)) << ir::print(op);
    for (size_t s = 0; s < op.statements().size(); ++s) EXPECT_FALSE(is_held_out(lowering::statement_as_op(op, s)));
  }
}

}  // namespace
}  // namespace gos::measure
