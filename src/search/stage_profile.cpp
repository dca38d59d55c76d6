// Stage 1, profile: how steady the machine is, every compute operator timed alone on the backend,
// the whole model timed, the searchable operators sorted hottest first (docs/search.md).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "search/stages.h"

namespace gos::search {

namespace {

using nlohmann::json;

// How steady the machine was when the run began timing (gos bench's fixed loop), journaled so
// that a resumed run reports what the first start saw.
measure::Timing journaled_machine_reference(RunContext& run) {
  if (auto known = run.journal->text("profile", "machine_reference")) return timing_from(json::parse(*known));
  const measure::Timing reference = measure::time_machine_reference();
  run.journal->put_text("profile", "machine_reference", timing_json(reference).dump());
  return reference;
}

// Operators timed alone on an unsteady machine do not repeat (docs/latency.md), which is how a
// search comes to rank candidates wrongly; the user should know before reading the result.
void note_an_unsteady_machine(RunContext& run, const measure::Timing& reference) {
  if (!measure::machine_was_unsteady(reference)) return;
  run.report.notes.push_back(fmt::format(
      "the machine was unsteady when the run began timing (a fixed arithmetic loop spread {:.0f}%, where a dedicated core "
      "stays under {:.0f}%): operators timed alone now may not repeat, so the search may rank candidates wrongly. The "
      "configurations fine-tuned are timed whole side by side with the original, which holds on such a machine, but "
      "a run on a quiet machine, with a new -o folder and --cache file, may find a faster model",
      100 * reference.spread(), 100 * measure::kUnsteadyMachineSpread));
}

// The model's latency, kept in the latency cache like every operator's: the same model is never
// timed twice on one machine, and runs that share a cache see the same figure.
measure::Timing whole_model_timing(RunContext& run, const graph::Graph& graph) {
  const measure::CacheKey scope = run.whole_model_cache_scope();
  const std::string name = "whole_model:" + weights_fingerprint(graph);
  if (auto cached = run.cache->get_blob(name, scope)) return timing_from(json::parse(*cached));
  run.progress("profile", 0, 0, "timing the whole model");
  const auto timing = measure::bench_model(graph, run.options.backend, {.threads = run.options.threads, .precision = run.options.precision});
  run.cache->put_blob(name, scope, timing_json(timing).dump());
  return timing;
}

}  // namespace

measure::Timing journaled_whole_model_timing(RunContext& run, const std::string& key, const graph::Graph& graph) {
  if (auto known = run.journal->text("profile", key)) return timing_from(json::parse(*known));
  const measure::Timing timing = whole_model_timing(run, graph);
  run.journal->put_text("profile", key, timing_json(timing).dump());
  return timing;
}

void profile(RunContext& run) {
  for (const auto& node : run.base.nodes) {
    if (run.operator_search() && node.is_compute() && rules::why_not_searchable(*node.op).empty()) run.layers.emplace_back(node);
  }
  if (run.layers.empty() && run.operator_search()) {
    throw SearchError("the model has no operator the rewrite rules apply to (no convolution, linear or matmul with "
                      "learned weights); gos adapt has nothing to search");
  }
  note_an_unsteady_machine(run, journaled_machine_reference(run));
  const auto all_ms = run.latencies_ms(measure::operators_of(run.base), "profile");
  size_t at = 0;
  for (const auto& node : run.base.nodes) {
    if (!node.is_compute()) continue;
    run.operators_ms += all_ms[at];
    for (auto& layer : run.layers) {
      if (layer.node == &node) layer.original_ms = all_ms[at];
    }
    ++at;
  }
  if (run.int8()) {
    // Mixed precision: each searched operator may stay fp32, at its fp32 time.
    std::vector<measure::OpToMeasure> searched;
    for (const auto& layer : run.layers) searched.push_back({*layer.node->op, layer.node->weights});
    const auto fp32_ms = run.latencies_ms(searched, "profile", measure::Precision::Fp32InInt8);
    for (size_t l = 0; l < run.layers.size(); ++l) run.layers[l].original_fp32_ms = fp32_ms[l];
  }
  // Hot operators first: when the budget runs out, the layers that matter most were searched.
  std::stable_sort(run.layers.begin(), run.layers.end(), [](const Layer& a, const Layer& b) { return a.original_ms > b.original_ms; });
  if (run.options.max_layers > 0 && run.layers.size() > static_cast<size_t>(run.options.max_layers)) {
    run.report.notes.push_back(fmt::format("only the {} hottest of {} searchable operators were searched (--max-layers)",
                                           run.options.max_layers, run.layers.size()));
    run.layers.resize(static_cast<size_t>(run.options.max_layers), run.layers.front());
  }
  run.original_timing = journaled_whole_model_timing(run, "whole_model", run.model);
  if (run.subsampled() && run.narrowed_groups.empty()) {
    run.base_timing = journaled_whole_model_timing(run, "whole_subsampled_model", run.base);
  } else if (run.base_changed()) {
    run.base_timing = journaled_whole_model_timing(run, "whole_narrowed_model", run.base);
  } else {
    run.base_timing = run.original_timing;
  }
  run.summary = fmt::format("{} operators, {} searchable; whole model {:.3f} ms (operators alone {:.3f} ms)", all_ms.size(),
                            run.layers.size(), run.original_timing.median_ms, run.operators_ms);
  if (!run.narrowed_groups.empty()) {
    const double faster = run.original_timing.median_ms / run.base_timing.median_ms;
    run.summary += fmt::format("; narrowed: {:.3f} ms, {:.2f}x faster", run.base_timing.median_ms, faster);
  }
  if (run.subsampled()) {
    const double faster = run.original_timing.median_ms / run.base_timing.median_ms;
    run.summary += fmt::format("; computing 1 position in {} before the pooling: {:.3f} ms, {:.2f}x faster", run.options.subsample,
                               run.base_timing.median_ms, faster);
    run.report.notes.push_back(fmt::format("--subsample {}: {} compute only the positions the pooling reads ({:.2f}x faster as measured); "
                                           "each layer's original_expr is its subsampled form",
                                           run.options.subsample, fmt::join(run.subsampled_model.changed_nodes, ", "), faster));
  }
}

}  // namespace gos::search
