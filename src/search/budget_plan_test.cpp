// The budget plan: a smaller search and fewer epochs when time is short, never a search cut off.
#include "search/budget_plan.h"

#include <gtest/gtest.h>

#include <cmath>

namespace gos::search {
namespace {

const SearchScale kWanted{.candidates_per_layer = 6, .distill_steps = 300, .sensitivity_samples = 2000};
// Roughly resnet20's costs on the 2-core machine: a layer's recording 1 s, a distillation step
// 10 ms, a validation sample 0.5 ms, an epoch 90 s.
const UnitCosts kCosts{.layer_seconds = 1, .distill_step_seconds = 0.01, .evaluation_seconds_per_sample = 5e-4, .epoch_seconds = 90};
const SearchWork kWork{.layer_candidates = std::vector<int>(20, 8), .distilled_unmeasured = 0};

TEST(BudgetPlan, EachRungOfTheLadderCostsLessThanTheOneBeforeAndNoneGoesBelowItsFloor) {
  const auto ladder = scale_ladder(kWanted);
  ASSERT_GE(ladder.size(), 4u);
  EXPECT_EQ(ladder.front(), kWanted);
  for (size_t i = 1; i < ladder.size(); ++i) {
    EXPECT_LT(search_seconds(kWork, ladder[i], kCosts, 20), search_seconds(kWork, ladder[i - 1], kCosts, 20)) << i;
    EXPECT_GE(ladder[i].candidates_per_layer, 2);
    EXPECT_GE(ladder[i].distill_steps, 50);
    EXPECT_GE(ladder[i].sensitivity_samples, 250);
  }
  // Sensitivity samples go first, then steps, then candidates.
  EXPECT_EQ(ladder[1].candidates_per_layer, 6);
  EXPECT_EQ(ladder[1].distill_steps, 300);
  EXPECT_LT(ladder[1].sensitivity_samples, 2000);
  // Settings already at the floor give one rung; none is raised above what was asked.
  const auto small = scale_ladder({.candidates_per_layer = 1, .distill_steps = 20, .sensitivity_samples = 100});
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0], (SearchScale{1, 20, 100}));
}

TEST(BudgetPlan, TheWholeSearchWhenItFitsAndTheLargestRungThatFitsWhenItDoesNot) {
  const double whole = search_seconds(kWork, kWanted, kCosts, 20);
  const SearchPlan roomy = plan_search(kWork, kWanted, kCosts, whole + 1);
  EXPECT_EQ(roomy.scale, kWanted);
  EXPECT_EQ(roomy.layers, 20u);
  EXPECT_NEAR(roomy.seconds, whole, 1e-9);

  const SearchPlan half = plan_search(kWork, kWanted, kCosts, whole / 2);
  EXPECT_EQ(half.layers, 20u);
  EXPECT_LE(half.seconds, whole / 2);
  const auto ladder = scale_ladder(kWanted);
  const auto rung = std::find(ladder.begin(), ladder.end(), half.scale);
  ASSERT_NE(rung, ladder.end());
  ASSERT_NE(rung, ladder.begin());
  EXPECT_GT(search_seconds(kWork, *(rung - 1), kCosts, 20), whole / 2);  // the rung above did not fit
}

TEST(BudgetPlan, WhenEvenTheSmallestSearchDoesNotFitTheHottestLayersAreSearchedFirst) {
  const auto last = scale_ladder(kWanted).back();
  const double five_layers = search_seconds(kWork, last, kCosts, 5);
  const SearchPlan tight = plan_search(kWork, kWanted, kCosts, five_layers + 1e-6);
  EXPECT_EQ(tight.scale, last);
  EXPECT_EQ(tight.layers, 5u);
  EXPECT_EQ(plan_search(kWork, kWanted, kCosts, 0.1).layers, 0u);
  // Effects still to be measured count against the time left.
  SearchWork pending = kWork;
  pending.distilled_unmeasured = 40;
  EXPECT_LT(plan_search(pending, kWanted, kCosts, five_layers + 1e-6).layers, 5u);
}

TEST(BudgetPlan, TheSearchGetsWhatFineTuningLeavesButNeverLessThanItsShare) {
  EXPECT_DOUBLE_EQ(search_allocation(1000, 600), 400);
  EXPECT_DOUBLE_EQ(search_allocation(1000, 900), kSearchShare * 1000);
  EXPECT_TRUE(std::isinf(search_allocation(INFINITY, 600)));
}

TEST(BudgetPlan, SamplesAndEpochsShrinkToFitAndStopAtTheirFloor) {
  // 100 effects of 2000 samples at 0.5 ms: 101 s.
  EXPECT_EQ(sensitivity_samples_that_fit(2000, 100, 5e-4, 101), 2000);
  EXPECT_EQ(sensitivity_samples_that_fit(2000, 100, 5e-4, 60), 1000);
  EXPECT_EQ(sensitivity_samples_that_fit(2000, 100, 5e-4, 20), 250);
  EXPECT_EQ(sensitivity_samples_that_fit(2000, 100, 5e-4, 1), 250);
  EXPECT_EQ(sensitivity_samples_that_fit(100, 100, 5e-4, 1), 100);
  EXPECT_EQ(epochs_that_fit(8, 90, 1000), 8);
  EXPECT_EQ(epochs_that_fit(8, 90, 400), 4);
  EXPECT_EQ(epochs_that_fit(8, 90, 10), 1);
  EXPECT_EQ(epochs_that_fit(8, 90, INFINITY), 8);
}

TEST(BudgetPlan, UnmeasuredEffectsAreEstimatedFromTheDistilledErrorsOfTheMeasuredOnes) {
  // Drops of 0.5 and 1.0 points at errors 0.1 and 0.2: 5 points per unit of error; a negative
  // drop (noise: the candidate helped) counts as none.
  EXPECT_DOUBLE_EQ(drop_per_error({{0.1, 0.5}, {0.2, 1.0}}), 5.0);
  EXPECT_DOUBLE_EQ(drop_per_error({{0.1, 0.5}, {0.2, 1.0}, {0.1, -0.7}}), 0.5 * 0.1 / 0.06 + 1.0 * 0.2 / 0.06);
  EXPECT_EQ(drop_per_error({}), 0);
  EXPECT_EQ(drop_per_error({{0, 0.3}}), 0);
}

}  // namespace
}  // namespace gos::search
