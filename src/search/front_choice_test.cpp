// calibrated_drop: the attempts so far turn a predicted loss into an expected fine-tuned drop.
#include "search/front_choice.h"

#include <gtest/gtest.h>

namespace gos::search {
namespace {

TEST(CalibratedDrop, WithoutAttemptsIsThePrediction) { EXPECT_DOUBLE_EQ(calibrated_drop({}, 7.5, 0.01), 7.5); }

TEST(CalibratedDrop, IsLinearBetweenTheAttemptsAroundThePoint) {
  const std::vector<AttemptOutcome> attempts{{18, 1.0}, {2, -0.3}, {10, 0.1}};
  EXPECT_DOUBLE_EQ(calibrated_drop(attempts, 6, 0.01), -0.1);
  EXPECT_DOUBLE_EQ(calibrated_drop(attempts, 14, 0.01), 0.55);
  EXPECT_DOUBLE_EQ(calibrated_drop(attempts, 10, 0.01), 0.1);
}

TEST(CalibratedDrop, BeyondTheAttemptsScalesByTheNearestOne) {
  const std::vector<AttemptOutcome> attempts{{4, 0.2}, {20, 2.0}};
  EXPECT_DOUBLE_EQ(calibrated_drop(attempts, 40, 0.01), 4.0);
  EXPECT_DOUBLE_EQ(calibrated_drop(attempts, 2, 0.01), 0.1);
}

TEST(CalibratedDrop, ADropBelowTheFloorScalesAsTheFloor) {
  EXPECT_DOUBLE_EQ(calibrated_drop({{5, -0.3}}, 10, 0.01), 0.02);
  EXPECT_DOUBLE_EQ(calibrated_drop({{5, -0.3}}, 2.5, 0.01), 0.005);
}

TEST(CalibratedDrop, TheLastAttemptAtTheSamePredictionCounts) {
  EXPECT_DOUBLE_EQ(calibrated_drop({{5, 1.0}, {5, 0.5}}, 10, 0.01), 1.0);
}

TEST(CalibratedDrop, AnAttemptPredictedLosslessLeavesThePredictionAsItIs) {
  EXPECT_DOUBLE_EQ(calibrated_drop({{0, 0.4}}, 3, 0.01), 3);
}

TEST(WorthAnotherAttempt, ADeadEndIsBothTooSlowAndTooInaccurateWithNothingPredictedBetter) {
  EXPECT_FALSE(worth_another_attempt(true, true, 1.3, true));
  EXPECT_TRUE(worth_another_attempt(true, true, 0.9, true));   // a point is predicted to meet both
  EXPECT_TRUE(worth_another_attempt(true, false, 1.3, true));  // only too slow: a faster point
  EXPECT_TRUE(worth_another_attempt(false, true, 1.3, true));  // only too inaccurate: a more accurate one
}

TEST(WorthAnotherAttempt, ATargetOutOfReachStillTriesAMoreAccuratePoint) {
  EXPECT_TRUE(worth_another_attempt(true, true, 1.3, false));
}

}  // namespace
}  // namespace gos::search
