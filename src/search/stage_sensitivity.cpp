// Stage 4, sensitivity: each distilled candidate put into the model alone, its effect on
// validation quality measured (docs/search.md).
#include <fmt/format.h>

#include "search/adapted.h"
#include "search/stages.h"

namespace gos::search {

namespace {

double journaled_validation_quality(RunContext& run, const std::string& key, const graph::Graph& graph) {
  if (auto known = run.journal->text("sensitivity", key)) return std::stod(*known);
  const double quality = run.validation_quality(graph);
  run.journal->put_text("sensitivity", key, exact_text(quality));
  return quality;
}

}  // namespace

void sensitivity(RunContext& run) {
  run.use_training_threads();
  run.original_validation = journaled_validation_quality(run, "original", run.model);
  // Each candidate's effect is measured in the model it goes into.
  run.base_validation = run.subsampled() ? journaled_validation_quality(run, "subsampled", run.base) : run.original_validation;
  int64_t total = 0, done = 0;
  for (const auto& layer : run.layers) total += static_cast<int64_t>(layer.distilled.size());
  bool out_of_budget = false;
  for (auto& layer : run.layers) {
    for (size_t s = 0; s < layer.distilled.size() && !out_of_budget; ++s) {
      run.progress("sensitivity", done++, total, layer.node->name);
      const std::string key = run.distilled_key(layer, layer.selected[s]);
      double quality = 0;
      if (auto known = run.journal->text("sensitivity", key)) {
        quality = std::stod(*known);
      } else if (!run.search_budget_left()) {
        out_of_budget = true;
        run.report.notes.push_back("the budget ran out while measuring sensitivities from " + layer.node->name +
                                   " on; candidates without one were left out of the search");
        break;
      } else {
        quality = run.validation_quality(replace_operators(run.base, {{layer.node->name, run.trained_candidate(layer, s)}}));
        run.journal->put_text("sensitivity", key, exact_text(quality));
      }
      layer.accuracy_drop.push_back(run.task->drop(run.base_validation, quality));
    }
    // Only candidates with a measured effect take part in the search.
    layer.selected.resize(layer.accuracy_drop.size());
    layer.distilled.resize(layer.accuracy_drop.size(), Distilled{});
  }
  const AdaptTask& task = *run.task;
  run.summary = fmt::format("{} candidates each put in alone; validation {} {} on {} samples", total, task.metric_name(),
                            task.format_quality(run.original_validation), task.validation_size(run.options.sensitivity_images));
  if (run.subsampled()) {
    const std::string subsampling =
        fmt::format("computing 1 position in {} before the pooling changes validation {} from {} to {} before fine-tuning",
                    run.options.subsample, task.metric_name(), task.format_quality(run.original_validation),
                    task.format_quality(run.base_validation));
    run.summary += "; " + subsampling;
    run.report.notes.push_back(subsampling + " (every candidate's effect is measured from there)");
  }
}

}  // namespace gos::search
