#include "measure/predictor.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "ir/ops.h"
#include "lowering/kernels.h"
#include "measure/measure.h"

namespace gos::measure {
namespace {

// Convolutions and linears of many sizes, and two-statement operators mixing kinds.
std::vector<ir::OpExpr> operators() {
  std::vector<ir::OpExpr> ops;
  for (int64_t channels : {4, 8, 16, 32, 48}) {
    for (int64_t size : {4, 7, 14}) {
      ops.push_back(ir::conv2d({.in_channels = channels, .out_channels = channels, .input_size = {size, size},
                                .kernel = {3, 3}, .padding = {1, 1, 1, 1}}));
      ops.push_back(ir::conv2d({.in_channels = channels, .out_channels = 2 * channels, .input_size = {size, size}}));
      ops.push_back(ir::linear({.in_features = channels * size, .out_features = channels}));
      ops.push_back(ir::parse("T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,0,r,s]; "
                              "Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c,0,0] where n<1, c<" + std::to_string(channels) +
                              ", k<" + std::to_string(channels) + ", h<" + std::to_string(size) + ", w<" +
                              std::to_string(size) + ", r<3, s<3"));
    }
  }
  return ops;
}

// A synthetic time per statement that grows with MACs and differs by kind (depthwise slow per
// MAC), and an operator's time as the sum over its statements plus 0.01 ms per extra statement.
double synthetic_statement_ms(const ir::OpExpr& single) {
  const double macs = static_cast<double>(ir::cost(single).macs) + 1;
  const double per_mac = statement_kind(single, 0) == "depthwise" ? 4e-6 : 1e-6;
  return 0.002 + per_mac * std::pow(macs, 0.9);
}

double synthetic_ms(const ir::OpExpr& op) {
  double total = 0.01 * static_cast<double>(op.statements().size() - 1);
  for (size_t s = 0; s < op.statements().size(); ++s) total += synthetic_statement_ms(lowering::statement_as_op(op, s));
  return total;
}

// The operators and each statement of the multi-statement ones alone, as gos latency-model
// measures them.
std::vector<ir::OpExpr> with_statements(const std::vector<ir::OpExpr>& ops) {
  std::vector<ir::OpExpr> all = ops;
  for (const auto& op : ops) {
    if (op.statements().size() < 2) continue;
    for (size_t s = 0; s < op.statements().size(); ++s) all.push_back(lowering::statement_as_op(op, s));
  }
  return all;
}

TEST(LatencyPredictor, FitsStatementTimesAndTheOverheadOfExtraStatements) {
  auto ops = with_statements(operators());
  std::vector<double> latency;
  for (const auto& op : ops) latency.push_back(synthetic_ms(op));
  auto predictor = LatencyPredictor::fit(ops, latency);
  auto accuracy = evaluate(predictor, ops, latency);
  EXPECT_EQ(accuracy.n_ops, ops.size());
  EXPECT_GE(accuracy.within_10pct, 0.9) << "median error " << accuracy.median_abs_error_pct << "%";
  EXPECT_LT(accuracy.median_abs_error_pct, 5.0);
}

TEST(LatencyPredictor, WrongTimesAreReportedAsErrors) {
  auto ops = with_statements(operators());
  std::vector<double> latency;
  for (const auto& op : ops) latency.push_back(synthetic_ms(op));
  auto predictor = LatencyPredictor::fit(ops, latency);
  for (auto& value : latency) value *= 2;  // every operator twice as slow as fitted
  auto accuracy = evaluate(predictor, ops, latency);
  EXPECT_LT(accuracy.within_20pct, 0.1);
  EXPECT_GT(accuracy.median_abs_error_pct, 40.0);
}

TEST(LatencyPredictor, SurvivesAJsonRoundTrip) {
  auto ops = with_statements(operators());
  std::vector<double> latency;
  for (const auto& op : ops) latency.push_back(synthetic_ms(op));
  auto predictor = LatencyPredictor::fit(ops, latency);
  auto loaded = LatencyPredictor::from_json(predictor.to_json());
  for (const auto& op : ops) EXPECT_DOUBLE_EQ(loaded.predict_ms(op), predictor.predict_ms(op));
  EXPECT_EQ(loaded.trained_on(), ops.size());
  EXPECT_THROW(LatencyPredictor::from_json("{\"weights\": 3}"), MeasureError);
  EXPECT_THROW(LatencyPredictor::fit({}, {}), MeasureError);
}

// Trees alone give a step function of size: an operator between two fitted sizes gets one of
// their times. A kind's plane in log work and bytes carries the trend between them.
TEST(LatencyPredictor, PredictsSizesBetweenThoseItWasFittedOn) {
  auto linear_of = [](int64_t width) { return ir::linear({.in_features = width, .out_features = width}); };
  auto time_of = [](const ir::OpExpr& op) { return 1e-5 * std::pow(static_cast<double>(ir::cost(op).macs), 0.8); };
  std::vector<ir::OpExpr> fitted;
  std::vector<double> latency;
  for (int64_t width = 16; width <= 4096; width *= 2) {
    fitted.push_back(linear_of(width));
    latency.push_back(time_of(fitted.back()));
  }
  auto predictor = LatencyPredictor::fit(fitted, latency);
  for (int64_t width = 23; width <= 2900; width *= 2) {  // about halfway between two fitted widths
    const ir::OpExpr between = linear_of(width);
    EXPECT_NEAR(predictor.predict_ms(between) / time_of(between), 1.0, 0.1) << "width " << width;
  }
}

TEST(LatencyPredictor, StatementsAreClassifiedByKernel) {
  auto ops = operators();
  EXPECT_EQ(statement_kind(ops[0], 0), "conv");
  EXPECT_EQ(statement_kind(ops[1], 0), "conv1x1");
  EXPECT_EQ(statement_kind(ops[2], 0), "linear");
  EXPECT_EQ(statement_kind(ops[3], 0), "depthwise");
  EXPECT_EQ(statement_kind(ops[3], 1), "conv1x1");
}

// The search's screen leaves a candidate untimed only on a clear margin, and never one with a
// statement no kernel covers, where the predictor is least sure.
TEST(LatencyPredictor, TheScreenSkipsOnlyClearlySlowerCandidatesOfKnownKernels) {
  EXPECT_TRUE(left_untimed(true, 1.25, 1.0));
  EXPECT_FALSE(left_untimed(true, 1.2, 1.0));
  EXPECT_FALSE(left_untimed(false, 2.0, 1.0));
  for (const auto& op : operators()) EXPECT_TRUE(screenable(op)) << ir::print(op);
  const ir::OpExpr grouped_shuffled_linear = ir::parse(
      "Y[n,t,8*q+kg] = sum{cg} X[n,t,q+32*cg] * W[8*q+kg,cg] where n<1, t<49, q<32, kg<8, cg<2, in X[1,49,64], param W[256,2]");
  ASSERT_EQ(statement_kind(grouped_shuffled_linear, 0), "generic");
  EXPECT_FALSE(screenable(grouped_shuffled_linear));
}

TEST(LatencyPredictor, AboutAFifthOfOperatorsIsHeldOut) {
  auto ops = operators();
  size_t held_out = std::count_if(ops.begin(), ops.end(), [](const ir::OpExpr& op) { return is_held_out(op); });
  EXPECT_GT(held_out, ops.size() / 10);
  EXPECT_LT(held_out, ops.size() * 3 / 10);
}

// Each statement falls in exactly one of the five folds, so an operator is in as many folds as
// it has statements at most, the held-out fifth is fold 0, and every fold holds some operators.
TEST(LatencyPredictor, EveryStatementFallsInOneOfFiveFolds) {
  auto ops = operators();
  std::vector<size_t> per_fold(kHeldOutFolds);
  for (const auto& op : ops) {
    const unsigned folds = statement_folds(op);
    EXPECT_NE(folds, 0u);
    EXPECT_LT(folds, 1u << kHeldOutFolds);
    EXPECT_LE(static_cast<size_t>(std::popcount(folds)), op.statements().size());
    EXPECT_EQ(is_held_out(op), (folds & 1u) != 0);
    for (unsigned f = 0; f < kHeldOutFolds; ++f) per_fold[f] += (folds >> f) & 1u;
  }
  for (size_t count : per_fold) EXPECT_GT(count, 0u);
}

TEST(LatencyPredictor, AccuracyCountsPredictionsWithinTenAndTwentyPercent) {
  const auto accuracy = accuracy_of({1.05, 0.85, 2.0, 1.0}, {1.0, 1.0, 1.0, 1.0});
  EXPECT_EQ(accuracy.n_ops, 4u);
  EXPECT_DOUBLE_EQ(accuracy.within_10pct, 0.5);
  EXPECT_DOUBLE_EQ(accuracy.within_20pct, 0.75);
  EXPECT_NEAR(accuracy.median_abs_error_pct, 15, 1e-9);
  EXPECT_THROW(accuracy_of({1.0}, {}), MeasureError);
}

TEST(LatencyPredictor, TheRandomFifthIsDrawnFromTheOperatorsNotHeldOut) {
  auto ops = operators();
  for (const auto& op : ops) {
    if (is_in_random_fifth(op)) {
      EXPECT_FALSE(is_held_out(op)) << ir::print(op);
    }
  }
  // Sixty operators: a fifth of those not held out is several.
  size_t in_random_fifth = std::count_if(ops.begin(), ops.end(), [](const ir::OpExpr& op) { return is_in_random_fifth(op); });
  EXPECT_GT(in_random_fifth, 0u);
  EXPECT_LT(in_random_fifth, ops.size() * 3 / 10);
}

TEST(Timing, SummaryIsMedianAndInterpolatedPercentiles) {
  std::vector<double> times;
  for (int i = 10; i >= 0; --i) times.push_back(i);  // 0..10 in any order
  Timing t = summarise(times);
  EXPECT_DOUBLE_EQ(t.median_ms, 5);
  EXPECT_DOUBLE_EQ(t.p10_ms, 1);
  EXPECT_DOUBLE_EQ(t.p90_ms, 9);
  EXPECT_EQ(t.runs, 11);
  EXPECT_DOUBLE_EQ(t.spread(), 8.0 / 5);
  EXPECT_EQ(summarise({}).runs, 0);
}

TEST(Timing, IsNoisyWhenTheMiddleEightyPercentSpanOverAQuarterOfTheMedian) {
  EXPECT_FALSE(summarise({1.0, 1.0, 1.0, 1.0, 1.0}).noisy());
  EXPECT_FALSE(summarise({0.9, 0.95, 1.0, 1.05, 1.1}).noisy());  // spread 0.16
  EXPECT_TRUE(summarise({0.8, 0.9, 1.0, 1.1, 1.3}).noisy());     // spread 0.38
  EXPECT_FALSE(Timing{}.noisy());
}

}  // namespace
}  // namespace gos::measure
