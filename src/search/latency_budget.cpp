// The exact most accurate configuration within a latency budget (see evolution.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "search/evolution.h"

namespace gos::search {

std::optional<Configuration> most_accurate_within(const SearchProblem& problem, double latency_limit_ms, int steps) {
  const double budget_ms = latency_limit_ms - problem.fixed_latency_ms;
  if (budget_ms < 0 || steps <= 0) return std::nullopt;
  const double step_ms = latency_limit_ms / steps;
  const auto budget_steps = static_cast<size_t>(std::floor(budget_ms / step_ms + 1e-9));
  // An option's latency in whole steps, rounded up so that no answer exceeds the limit.
  auto steps_of = [&](const LayerOption& option) { return static_cast<size_t>(std::ceil(option.latency_ms / step_ms - 1e-9)); };
  constexpr double kUnreachable = std::numeric_limits<double>::infinity();
  // least_loss[b]: the smallest loss of the layers so far within b steps of latency.
  std::vector<double> least_loss(budget_steps + 1, 0.0), next(budget_steps + 1);
  std::vector<std::vector<int>> option_at(problem.layers.size(), std::vector<int>(budget_steps + 1, -1));
  for (size_t layer = 0; layer < problem.layers.size(); ++layer) {
    std::fill(next.begin(), next.end(), kUnreachable);
    for (size_t o = 0; o < problem.layers[layer].size(); ++o) {
      const LayerOption& option = problem.layers[layer][o];
      const size_t cost = steps_of(option);
      for (size_t b = cost; b <= budget_steps; ++b) {
        const double loss = least_loss[b - cost] + option.accuracy_loss;
        if (loss < next[b]) {
          next[b] = loss;
          option_at[layer][b] = static_cast<int>(o);
        }
      }
    }
    least_loss.swap(next);
  }
  if (!std::isfinite(least_loss[budget_steps])) return std::nullopt;
  std::vector<int> choice(problem.layers.size());
  size_t b = budget_steps;
  for (size_t layer = problem.layers.size(); layer-- > 0;) {
    choice[layer] = option_at[layer][b];
    b -= steps_of(problem.layers[layer][static_cast<size_t>(choice[layer])]);
  }
  return evaluate(problem, choice);
}

}  // namespace gos::search
