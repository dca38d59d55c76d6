#pragma once
// The public face of the configuration search: one choice per layer (keep the original, or one of
// its candidates), two objectives to minimise (latency on the target and predicted accuracy loss),
// and NSGA-II (Deb et al., 2002) to find their Pareto front. Plain C++: it only sees numbers.
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace gos::search {

// One option of one layer: what choosing it adds to each objective. Option 0 is the original.
struct LayerOption {
  double latency_ms = 0;
  double accuracy_loss = 0;
};

struct SearchProblem {
  std::vector<std::vector<LayerOption>> layers;  // every layer has at least its option 0
  double fixed_latency_ms = 0;                   // what the rest of the model costs
};

struct Configuration {
  std::vector<int> choice;  // option index per layer
  double latency_ms = 0;
  double accuracy_loss = 0;
};

// The objectives of a choice (sums over layers, plus the fixed latency).
Configuration evaluate(const SearchProblem& problem, const std::vector<int>& choice);

struct EvolutionOptions {
  int population = 96;
  int generations = 300;
  double crossover = 0.9;  // probability of uniform crossover
  double mutation = -1;    // per-layer mutation probability; < 0: 1 / layers
  uint64_t seed = 1;
};

// NSGA-II: the non-dominated configurations of the final population (plus the original and,
// for each layer count, the extremes seeded into the first population), distinct, by latency.
std::vector<Configuration> nsga2(const SearchProblem& problem, const EvolutionOptions& options = {},
                                 const std::function<void(int generation)>& on_generation = {});

// The exact Pareto front by enumeration, for problems small enough (tests, and a check on tiny
// models); throws std::invalid_argument above 2^20 configurations.
std::vector<Configuration> exhaustive_front(const SearchProblem& problem);

// The most accurate configuration whose latency is at most `latency_limit_ms`. Both objectives
// are sums over layers, so this is a multiple-choice knapsack, solved exactly by dynamic
// programming over the latency budget cut into `steps` (latencies rounded up: the answer never
// exceeds the limit, and misses configurations at most layers/steps of the limit under it).
// nullopt when no configuration is that fast.
std::optional<Configuration> most_accurate_within(const SearchProblem& problem, double latency_limit_ms, int steps = 20000);

// `front` with the most accurate configuration at every `step` (relative) of latency from the
// fastest configuration to the original, kept where no other point dominates it: NSGA-II's
// population spreads over the whole front, and the point that just meets a target may fall
// between two of its members. Distinct and by latency.
std::vector<Configuration> densified_front(const SearchProblem& problem, std::vector<Configuration> front, double step = 0.01);

// Whether `a` is at least as good as `b` in both objectives and better in one.
bool dominates(const Configuration& a, const Configuration& b);

}  // namespace gos::search
