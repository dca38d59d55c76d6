#include "search/evolution.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace gos::search
