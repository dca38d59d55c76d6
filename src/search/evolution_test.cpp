#include "search/evolution.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>

namespace gos::search {
namespace {

// Layers whose options trade latency for accuracy loss the way candidates do: faster, lossier.
SearchProblem random_problem(uint32_t seed, int layers, int options) {
  std::mt19937 engine(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  SearchProblem problem{{}, 0.5};
  for (int l = 0; l < layers; ++l) {
    std::vector<LayerOption> layer{{1.0 + unit(engine), 0.0}};
    for (int o = 1; o < options; ++o) layer.push_back({layer[0].latency_ms * unit(engine), 0.5 * unit(engine)});
    problem.layers.push_back(layer);
  }
  return problem;
}

TEST(Nsga2, FindsTheExactParetoFrontOfSmallProblems) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    SearchProblem problem = random_problem(seed, 6, 5);  // 15,625 configurations
    auto exact = exhaustive_front(problem);
    auto found = nsga2(problem, {.population = 96, .generations = 200, .seed = seed});
    // Every found point is on the exact front, and most of the exact front is found.
    size_t on_front = 0;
    for (const auto& point : found) {
      bool dominated = std::any_of(exact.begin(), exact.end(), [&](const Configuration& e) { return dominates(e, point); });
      EXPECT_FALSE(dominated) << "seed " << seed;
      on_front += !dominated;
    }
    EXPECT_GE(static_cast<double>(found.size()), 0.8 * static_cast<double>(std::min<size_t>(exact.size(), 96)))
        << "seed " << seed << ": " << found.size() << " of " << exact.size();
  }
}

TEST(Nsga2, TheFrontSpansFromTheOriginalToTheFastest) {
  SearchProblem problem = random_problem(9, 20, 8);
  auto front = nsga2(problem);
  ASSERT_GE(front.size(), 10u);
  EXPECT_DOUBLE_EQ(front.back().accuracy_loss, 0.0);  // the original loses nothing and is slowest
  double fastest = problem.fixed_latency_ms;
  for (const auto& layer : problem.layers) {
    fastest += std::min_element(layer.begin(), layer.end(), [](auto& a, auto& b) { return a.latency_ms < b.latency_ms; })->latency_ms;
  }
  EXPECT_NEAR(front.front().latency_ms, fastest, 1e-9);
  for (size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(front[i].latency_ms, front[i - 1].latency_ms);
    EXPECT_LT(front[i].accuracy_loss, front[i - 1].accuracy_loss);
  }
}

TEST(Nsga2, IsRepeatableForASeed) {
  SearchProblem problem = random_problem(3, 12, 6);
  auto a = nsga2(problem, {.seed = 4}), b = nsga2(problem, {.seed = 4});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].choice, b[i].choice);
}

TEST(Nsga2, ObjectivesAreSumsOverLayers) {
  SearchProblem problem{{{{2, 0}, {1, 0.5}}, {{3, 0}, {1, 0.25}}}, 0.5};
  Configuration c = evaluate(problem, {1, 0});
  EXPECT_DOUBLE_EQ(c.latency_ms, 0.5 + 1 + 3);
  EXPECT_DOUBLE_EQ(c.accuracy_loss, 0.5);
  EXPECT_THROW(exhaustive_front(random_problem(1, 21, 2)), std::invalid_argument);
}

// The most accurate of all configurations no slower than the limit, by enumeration.
std::optional<Configuration> enumerated_best_within(const SearchProblem& problem, double limit) {
  std::optional<Configuration> best;
  for (const auto& point : exhaustive_front(problem)) {
    if (point.latency_ms <= limit && (!best || point.accuracy_loss < best->accuracy_loss)) best = point;
  }
  return best;
}

TEST(MostAccurateWithin, FindsTheEnumeratedOptimumUnderEveryLimit) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    SearchProblem problem = random_problem(seed, 6, 5);
    const auto front = exhaustive_front(problem);
    for (const auto& point : front) {
      // Just over a front point's latency, that point (or one as accurate) is the answer.
      const double limit = point.latency_ms * (1 + 1e-3);
      const auto found = most_accurate_within(problem, limit);
      ASSERT_TRUE(found);
      EXPECT_LE(found->latency_ms, limit);
      // Never better than possible; as good as the best a rounding of latencies cannot hide.
      EXPECT_GE(found->accuracy_loss, enumerated_best_within(problem, limit)->accuracy_loss - 1e-12);
      const double rounding = 6.0 / 20000;  // layers over steps, of the limit
      EXPECT_LE(found->accuracy_loss, enumerated_best_within(problem, limit * (1 - rounding))->accuracy_loss + 1e-12)
          << "seed " << seed << " limit " << limit;
    }
    EXPECT_FALSE(most_accurate_within(problem, front.front().latency_ms * 0.99));  // faster than anything
  }
}

TEST(DensifiedFront, AddsExactPointsBetweenASparseFrontsMembers) {
  SearchProblem problem = random_problem(5, 7, 5);
  const auto exact = exhaustive_front(problem);
  const auto sparse = nsga2(problem, {.population = 8, .generations = 20, .seed = 2});
  const auto dense = densified_front(problem, sparse);
  EXPECT_GT(dense.size(), sparse.size() + 10);
  for (size_t i = 0; i < dense.size(); ++i) {
    bool dominated = std::any_of(exact.begin(), exact.end(), [&](const Configuration& e) { return dominates(e, dense[i]); });
    EXPECT_FALSE(dominated) << "point " << i;
    if (i > 0) {
      EXPECT_GT(dense[i].latency_ms, dense[i - 1].latency_ms);
    }
  }
  EXPECT_DOUBLE_EQ(dense.back().accuracy_loss, 0.0);
}

}  // namespace
}  // namespace gos::search
