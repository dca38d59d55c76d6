// The exact most accurate configuration within a latency budget, and the front densified with it
// (see evolution.h).
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
  constexpr double kUnreachable = std::numeric_limits<double>::infinity();
  // least_loss[b]: the smallest loss of the layers so far within b steps of latency.
  std::vector<double> least_loss(budget_steps + 1, 0.0), next(budget_steps + 1);
  std::vector<std::vector<int>> option_at(problem.layers.size(), std::vector<int>(budget_steps + 1, -1));
  for (size_t layer = 0; layer < problem.layers.size(); ++layer) {
    std::fill(next.begin(), next.end(), kUnreachable);
    for (size_t o = 0; o < problem.layers[layer].size(); ++o) {
      const LayerOption& option = problem.layers[layer][o];
      const auto cost = static_cast<size_t>(std::ceil(option.latency_ms / step_ms - 1e-9));
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
    b -= static_cast<size_t>(std::ceil(problem.layers[layer][static_cast<size_t>(choice[layer])].latency_ms / step_ms - 1e-9));
  }
  return evaluate(problem, choice);
}

std::vector<Configuration> densified_front(const SearchProblem& problem, std::vector<Configuration> front, double step) {
  if (front.empty() || step <= 0) return front;
  const auto [fastest, slowest] = std::minmax_element(front.begin(), front.end(), [](const Configuration& a, const Configuration& b) {
    return a.latency_ms < b.latency_ms;
  });
  const double high = slowest->latency_ms;
  for (double limit = fastest->latency_ms * (1 + step); limit < high; limit *= 1 + step) {
    if (auto best = most_accurate_within(problem, limit)) front.push_back(*best);
  }
  std::vector<Configuration> kept;
  for (const auto& point : front) {
    const bool dominated = std::any_of(front.begin(), front.end(), [&](const Configuration& other) { return dominates(other, point); });
    const bool duplicate = std::any_of(kept.begin(), kept.end(), [&](const Configuration& other) { return other.choice == point.choice; });
    if (!dominated && !duplicate) kept.push_back(point);
  }
  std::sort(kept.begin(), kept.end(), [](const Configuration& a, const Configuration& b) { return a.latency_ms < b.latency_ms; });
  return kept;
}

}  // namespace gos::search
