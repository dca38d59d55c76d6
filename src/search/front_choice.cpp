// Calibrating the predicted loss by the attempts so far (see front_choice.h).
#include "search/front_choice.h"

#include <algorithm>
#include <iterator>
#include <map>

namespace gos::search {

double calibrated_drop(const std::vector<AttemptOutcome>& attempts, double predicted_loss, double floor_drop) {
  std::map<double, double> measured;  // predicted loss -> measured drop
  for (const auto& attempt : attempts) measured[attempt.predicted_loss] = attempt.measured_drop;
  if (measured.empty()) return predicted_loss;
  auto scaled_from = [&](const std::pair<const double, double>& anchor) {
    if (anchor.first <= 0) return predicted_loss;
    return predicted_loss * std::max(anchor.second, floor_drop) / anchor.first;
  };
  auto above = measured.lower_bound(predicted_loss);
  if (above == measured.end()) return scaled_from(*measured.rbegin());
  if (above == measured.begin()) return scaled_from(*above);
  auto below = std::prev(above);
  const double t = (predicted_loss - below->first) / (above->first - below->first);
  return below->second + t * (above->second - below->second);
}

bool worth_another_attempt(bool too_slow, bool too_inaccurate, double next_fit, bool target_within_reach) {
  return !(too_slow && too_inaccurate && next_fit > 1 && target_within_reach);
}

}  // namespace gos::search
