#pragma once
// Reading the search's predictions in the light of the attempts already fine-tuned and verified:
// what a point of the front will likely lose once fine-tuned. Plain C++: it only sees numbers.
#include <vector>

namespace gos::search {

struct AttemptOutcome {
  double predicted_loss = 0;  // the front point's predicted loss (candidates alone, before fine-tuning)
  double measured_drop = 0;   // what the fine-tuned model lost on the test set
};

// The drop a point of `predicted_loss` would show after fine-tuning: linear between the attempts
// around it, scaled from the nearest attempt beyond them. The predicted loss ranks points well
// but overstates the fine-tuned drop many times over, and not by one factor along the front
// (docs/ppg.md), so one ratio does not serve the whole front. A measured drop
// below `floor_drop` scales as `floor_drop` (a drop at or below zero says only "overestimated").
// Of attempts with the same predicted loss, the last counts. No attempts: the prediction itself.
double calibrated_drop(const std::vector<AttemptOutcome>& attempts, double predicted_loss, double floor_drop);

// Whether an attempt that missed the goal is worth following with `next_fit`, the best point the
// calibration offers (the worse of its latency over the target and its drop over the budget; 1
// or less: predicted to meet both). An attempt both too slow and too inaccurate is a dead end
// when no point is predicted to do better on both, unless the target is out of reach of every
// point: then all are too slow, and a more accurate one is still the best the run can give.
bool worth_another_attempt(bool too_slow, bool too_inaccurate, double next_fit, bool target_within_reach);

}  // namespace gos::search
