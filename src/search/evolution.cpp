// NSGA-II over per-layer choices (see evolution.h).
#include "search/evolution.h"

#include <algorithm>
#include <limits>
#include <random>
#include <set>
#include <stdexcept>

namespace gos::search {

bool dominates(const Configuration& a, const Configuration& b) {
  return a.latency_ms <= b.latency_ms && a.accuracy_loss <= b.accuracy_loss &&
         (a.latency_ms < b.latency_ms || a.accuracy_loss < b.accuracy_loss);
}

Configuration evaluate(const SearchProblem& problem, const std::vector<int>& choice) {
  Configuration c{choice, problem.fixed_latency_ms, 0};
  for (size_t layer = 0; layer < problem.layers.size(); ++layer) {
    const LayerOption& option = problem.layers[layer].at(static_cast<size_t>(choice[layer]));
    c.latency_ms += option.latency_ms;
    c.accuracy_loss += option.accuracy_loss;
  }
  return c;
}

namespace {

// Fronts of non-domination: fronts[0] holds the non-dominated members, and so on.
std::vector<std::vector<size_t>> non_dominated_fronts(const std::vector<Configuration>& members) {
  const size_t n = members.size();
  std::vector<std::vector<size_t>> dominated_by(n);
  std::vector<int> domination_count(n, 0);
  std::vector<std::vector<size_t>> fronts(1);
  for (size_t p = 0; p < n; ++p) {
    for (size_t q = 0; q < n; ++q) {
      if (dominates(members[p], members[q])) dominated_by[p].push_back(q);
      else if (dominates(members[q], members[p])) ++domination_count[p];
    }
    if (domination_count[p] == 0) fronts[0].push_back(p);
  }
  for (size_t f = 0; !fronts[f].empty(); ++f) {
    std::vector<size_t> next;
    for (size_t p : fronts[f]) {
      for (size_t q : dominated_by[p]) {
        if (--domination_count[q] == 0) next.push_back(q);
      }
    }
    fronts.push_back(std::move(next));
  }
  fronts.pop_back();
  return fronts;
}

// Crowding distance within one front: how isolated each member is along both objectives.
std::vector<double> crowding(const std::vector<Configuration>& members, const std::vector<size_t>& front) {
  std::vector<double> distance(front.size(), 0.0);
  for (int objective = 0; objective < 2; ++objective) {
    auto value = [&](size_t i) { return objective == 0 ? members[front[i]].latency_ms : members[front[i]].accuracy_loss; };
    std::vector<size_t> order(front.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return value(a) < value(b); });
    const double range = value(order.back()) - value(order.front());
    distance[order.front()] = distance[order.back()] = std::numeric_limits<double>::infinity();
    if (range <= 0) continue;
    for (size_t i = 1; i + 1 < order.size(); ++i) distance[order[i]] += (value(order[i + 1]) - value(order[i - 1])) / range;
  }
  return distance;
}

struct Ranked {
  std::vector<int> rank;
  std::vector<double> crowding;
};

Ranked rank_members(const std::vector<Configuration>& members) {
  Ranked ranked{std::vector<int>(members.size()), std::vector<double>(members.size())};
  auto fronts = non_dominated_fronts(members);
  for (size_t f = 0; f < fronts.size(); ++f) {
    auto distance = crowding(members, fronts[f]);
    for (size_t i = 0; i < fronts[f].size(); ++i) {
      ranked.rank[fronts[f][i]] = static_cast<int>(f);
      ranked.crowding[fronts[f][i]] = distance[i];
    }
  }
  return ranked;
}

std::vector<Configuration> distinct_front(std::vector<Configuration> members) {
  std::vector<Configuration> front;
  for (const auto& member : members) {
    bool dominated = std::any_of(members.begin(), members.end(), [&](const Configuration& other) { return dominates(other, member); });
    bool duplicate = std::any_of(front.begin(), front.end(), [&](const Configuration& kept) {
      return kept.latency_ms == member.latency_ms && kept.accuracy_loss == member.accuracy_loss;
    });
    if (!dominated && !duplicate) front.push_back(member);
  }
  std::sort(front.begin(), front.end(), [](const Configuration& a, const Configuration& b) { return a.latency_ms < b.latency_ms; });
  return front;
}

}  // namespace

std::vector<Configuration> nsga2(const SearchProblem& problem, const EvolutionOptions& options,
                                 const std::function<void(int)>& on_generation) {
  const size_t layers = problem.layers.size();
  if (layers == 0) return {evaluate(problem, {})};
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double mutation = options.mutation >= 0 ? options.mutation : 1.0 / static_cast<double>(layers);
  auto random_option = [&](size_t layer) {
    return static_cast<int>(std::uniform_int_distribution<size_t>(0, problem.layers[layer].size() - 1)(rng));
  };

  // First population: the original, the fastest option everywhere, and random mixes.
  std::vector<Configuration> population;
  population.push_back(evaluate(problem, std::vector<int>(layers, 0)));
  std::vector<int> fastest(layers);
  for (size_t layer = 0; layer < layers; ++layer) {
    const auto& options_of = problem.layers[layer];
    fastest[layer] = static_cast<int>(std::min_element(options_of.begin(), options_of.end(), [](const auto& a, const auto& b) {
                                        return a.latency_ms < b.latency_ms;
                                      }) - options_of.begin());
  }
  population.push_back(evaluate(problem, fastest));
  while (static_cast<int>(population.size()) < options.population) {
    std::vector<int> choice(layers);
    const double keep = unit(rng);  // from mostly-original to mostly-replaced
    for (size_t layer = 0; layer < layers; ++layer) choice[layer] = unit(rng) < keep ? 0 : random_option(layer);
    population.push_back(evaluate(problem, choice));
  }

  for (int generation = 0; generation < options.generations; ++generation) {
    Ranked ranked = rank_members(population);
    auto better = [&](size_t a, size_t b) {
      if (ranked.rank[a] != ranked.rank[b]) return ranked.rank[a] < ranked.rank[b];
      return ranked.crowding[a] > ranked.crowding[b];
    };
    auto tournament = [&] {
      size_t a = std::uniform_int_distribution<size_t>(0, population.size() - 1)(rng);
      size_t b = std::uniform_int_distribution<size_t>(0, population.size() - 1)(rng);
      return better(a, b) ? a : b;
    };
    std::vector<Configuration> offspring;
    while (offspring.size() < population.size()) {
      std::vector<int> child = population[tournament()].choice;
      if (unit(rng) < options.crossover) {
        const auto& other = population[tournament()].choice;
        for (size_t layer = 0; layer < layers; ++layer) {
          if (unit(rng) < 0.5) child[layer] = other[layer];
        }
      }
      for (size_t layer = 0; layer < layers; ++layer) {
        if (unit(rng) < mutation) child[layer] = random_option(layer);
      }
      offspring.push_back(evaluate(problem, child));
    }
    // Environmental selection: the best fronts of parents and offspring, crowding breaking ties.
    std::vector<Configuration> combined = population;
    combined.insert(combined.end(), offspring.begin(), offspring.end());
    Ranked combined_rank = rank_members(combined);
    std::vector<size_t> order(combined.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      if (combined_rank.rank[a] != combined_rank.rank[b]) return combined_rank.rank[a] < combined_rank.rank[b];
      return combined_rank.crowding[a] > combined_rank.crowding[b];
    });
    population.clear();
    for (size_t i = 0; i < static_cast<size_t>(options.population); ++i) population.push_back(combined[order[i]]);
    if (on_generation) on_generation(generation + 1);
  }
  return distinct_front(population);
}

std::vector<Configuration> exhaustive_front(const SearchProblem& problem) {
  double count = 1;
  for (const auto& layer : problem.layers) count *= static_cast<double>(layer.size());
  if (count > (1 << 20)) throw std::invalid_argument("too many configurations to enumerate");
  std::vector<Configuration> all;
  std::vector<int> choice(problem.layers.size(), 0);
  while (true) {
    all.push_back(evaluate(problem, choice));
    size_t layer = 0;
    while (layer < choice.size() && ++choice[layer] == static_cast<int>(problem.layers[layer].size())) choice[layer++] = 0;
    if (layer == choice.size()) break;
  }
  return distinct_front(std::move(all));
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
  return distinct_front(std::move(front));
}

}  // namespace gos::search
