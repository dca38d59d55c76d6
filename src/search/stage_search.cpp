// Stage 5, search: NSGA-II over one choice per layer (keep the operator, or one of its distilled
// candidates; in an int8 run, each in int8 or in fp32) on predicted latency and predicted loss,
// the front densified by the exact knapsack at every 1% of latency (docs/search.md).
#include <fmt/format.h>

#include <algorithm>

#include "search/stages.h"

namespace gos::search {

namespace {

// A candidate's predicted loss: its measured drop (never below zero) plus a small share of its
// output error, so that among candidates that cost no measurable accuracy the more faithful wins.
double predicted_loss(double accuracy_drop, double error_after) { return std::max(0.0, accuracy_drop) + 0.1 * error_after; }

}  // namespace

void search_front(RunContext& run) {
  SearchProblem problem;
  double searched_ms = 0;
  for (const auto& layer : run.layers) {
    std::vector<LayerOption> options{{layer.original_ms, 0}};
    for (size_t s = 0; s < layer.distilled.size(); ++s) {
      options.push_back({layer.faster_ms[layer.selected[s]], predicted_loss(layer.accuracy_drop[s], layer.distilled[s].error_after)});
    }
    if (run.int8()) {
      // Mixed precision: each option again with the layer kept in fp32 (RunContext::keeps_fp32),
      // at its fp32 time. A candidate's loss there is less what keeping the layer in fp32 gains
      // (a measured loss from it is noise: fp32 is the reference); like every loss, never below
      // zero, so the original in fp32 is taken for speed, or to pay back a candidate's loss.
      const double fp32_gain = std::max(0.0, -layer.fp32_drop);
      options.push_back({layer.original_fp32_ms, 0});
      for (size_t s = 0; s < layer.distilled.size(); ++s) {
        options.push_back({layer.faster_fp32_ms[layer.selected[s]],
                           predicted_loss(layer.accuracy_drop[s] - fp32_gain, layer.distilled[s].error_after)});
      }
    }
    problem.layers.push_back(options);
    searched_ms += layer.original_ms;
  }
  // What the model costs beyond the searched operators, as measured: whole model less them.
  problem.fixed_latency_ms = std::max(0.0, run.base_timing.median_ms - searched_ms);
  EvolutionOptions evolution{.seed = run.options.seed};
  run.front = densified_front(problem, nsga2(problem, evolution, [&](int generation) {
                                run.progress("search", generation, evolution.generations);
                              }));
  for (const auto& point : run.front) {
    run.report.front.push_back({point.latency_ms, point.accuracy_loss, changed_layers(point), false});
  }
  run.summary = fmt::format("{} configurations on the front; target {:.3f} ms; predicted {:.3f} to {:.3f} ms", run.front.size(),
                            run.target_latency_ms(), run.front.front().latency_ms, run.front.back().latency_ms);
}

}  // namespace gos::search
