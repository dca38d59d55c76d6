// Planning gos adapt's budget (see budget_plan.h).
#include "search/budget_plan.h"

#include <algorithm>
#include <cmath>

namespace gos::search {

namespace {

constexpr int kFewestCandidates = 2;
constexpr int kFewestSteps = 50;
constexpr int kFewestSamples = 250;

int at_least(int value, int floor, int wanted) { return std::max(value, std::min(floor, wanted)); }

int fraction_of(int value, int numerator, int denominator) {
  return static_cast<int>(std::ceil(static_cast<double>(value) * numerator / denominator));
}

}  // namespace

std::vector<SearchScale> scale_ladder(const SearchScale& wanted) {
  const int c = wanted.candidates_per_layer, d = wanted.distill_steps, v = wanted.sensitivity_samples;
  const std::vector<SearchScale> rungs{
      {c, d, v},
      {c, d, fraction_of(v, 1, 2)},
      {c, fraction_of(d, 2, 3), fraction_of(v, 1, 2)},
      {fraction_of(c, 2, 3), fraction_of(d, 2, 3), fraction_of(v, 1, 2)},
      {fraction_of(c, 1, 2), fraction_of(d, 1, 2), fraction_of(v, 1, 4)},
      {fraction_of(c, 1, 3), fraction_of(d, 1, 3), fraction_of(v, 1, 4)},
  };
  std::vector<SearchScale> ladder;
  auto add = [&](SearchScale rung) {
    rung.candidates_per_layer = at_least(rung.candidates_per_layer, kFewestCandidates, c);
    rung.distill_steps = at_least(rung.distill_steps, kFewestSteps, d);
    rung.sensitivity_samples = at_least(rung.sensitivity_samples, kFewestSamples, v);
    if (ladder.empty() || !(ladder.back() == rung)) ladder.push_back(rung);
  };
  for (const SearchScale& rung : rungs) add(rung);
  // Then steps and samples halved down to their floors: every hot layer with a few roughly
  // distilled candidates is a better search than fewer layers.
  while (ladder.back().distill_steps > std::min(kFewestSteps, d) || ladder.back().sensitivity_samples > std::min(kFewestSamples, v)) {
    const SearchScale last = ladder.back();
    add({last.candidates_per_layer, last.distill_steps / 2, last.sensitivity_samples / 2});
  }
  return ladder;
}

double search_seconds(const SearchWork& work, const SearchScale& scale, const UnitCosts& costs, size_t layers) {
  double seconds = 0;
  int effects = work.distilled_unmeasured;
  for (size_t l = 0; l < std::min(layers, work.layer_candidates.size()); ++l) {
    const int candidates = std::min(scale.candidates_per_layer, work.layer_candidates[l]);
    if (candidates <= 0) continue;
    seconds += costs.layer_seconds + candidates * scale.distill_steps * costs.distill_step_seconds;
    effects += candidates;
  }
  return seconds + effects * scale.sensitivity_samples * costs.evaluation_seconds_per_sample;
}

SearchPlan plan_search(const SearchWork& work, const SearchScale& wanted, const UnitCosts& costs, double seconds) {
  const auto ladder = scale_ladder(wanted);
  const size_t all = work.layer_candidates.size();
  for (const SearchScale& rung : ladder) {
    const double needed = search_seconds(work, rung, costs, all);
    if (needed <= seconds) return {rung, all, needed};
  }
  SearchPlan plan{ladder.back(), 0, search_seconds(work, ladder.back(), costs, 0)};
  for (size_t layers = 1; layers <= all; ++layers) {
    const double needed = search_seconds(work, ladder.back(), costs, layers);
    if (needed > seconds) break;
    plan.layers = layers;
    plan.seconds = needed;
  }
  return plan;
}

double search_allocation(double seconds_left, double finetune_seconds) {
  if (!std::isfinite(seconds_left)) return seconds_left;
  return std::max(seconds_left - finetune_seconds, kSearchShare * seconds_left);
}

int sensitivity_samples_that_fit(int wanted, int candidates, double evaluation_seconds_per_sample, double seconds) {
  const int fewest = std::min(wanted, kFewestSamples);
  for (int samples = wanted; samples > fewest; samples = std::max(fewest, samples / 2)) {
    if ((candidates + 1) * samples * evaluation_seconds_per_sample <= seconds) return samples;
  }
  return fewest;
}

int epochs_that_fit(int wanted, double epoch_seconds, double seconds) {
  if (!(epoch_seconds > 0) || !std::isfinite(seconds)) return wanted;
  return std::clamp(static_cast<int>(std::floor(seconds / epoch_seconds)), 1, wanted);
}

double drop_per_error(const std::vector<MeasuredEffect>& measured) {
  double products = 0, squares = 0;
  for (const auto& effect : measured) {
    products += effect.distilled_error * std::max(0.0, effect.drop);
    squares += effect.distilled_error * effect.distilled_error;
  }
  return squares > 0 ? products / squares : 0;
}

}  // namespace gos::search
