// Stage 4, sensitivity: each distilled candidate put into the model alone, its effect on
// validation quality measured (docs/search.md). Within a budget: on as many validation samples as
// the plan leaves time for, each layer's most faithful candidate first; the effects the time does
// not reach are estimated from the candidates' distilled errors, and the report says so.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "quant/quant.h"
#include "search/adapted.h"
#include "search/stages.h"

namespace gos::search {

namespace {

// Validation samples for the candidates' effects and the original's: decided once and journaled.
// A journal whose original was measured before plans existed was measured on the samples asked for.
int64_t journaled_samples(RunContext& run) {
  if (auto known = run.journal->text("plan", "sensitivity_samples")) return std::stoll(*known);
  int64_t samples = run.options.sensitivity_images;
  if (run.budgeted() && !run.journal->text("sensitivity", "original")) {
    int pending = 0;
    for (const auto& layer : run.layers) pending += static_cast<int>(layer.distilled.size()) + (run.int8() ? 1 : 0);
    if (!(run.costs.evaluation_seconds_per_sample > 0)) run.time_evaluation();
    samples = sensitivity_samples_that_fit(run.options.sensitivity_images, pending, run.costs.evaluation_seconds_per_sample,
                                           run.search_seconds_left());
  }
  run.journal->put_text("plan", "sensitivity_samples", std::to_string(samples));
  return samples;
}

double journaled_quality(RunContext& run, const std::string& key, const graph::Graph& graph, int64_t samples) {
  if (auto known = run.journal->text("sensitivity", key)) return std::stod(*known);
  const double quality = run.validation_quality(graph, samples);
  run.journal->put_text("sensitivity", key, exact_text(quality));
  return quality;
}

// (layer, selected index) in measuring order: every layer's most faithful candidate (hottest layer
// first), then every layer's second, and so on, so that a budget that runs out leaves estimated
// only the less faithful candidates, and the estimate is fitted on every layer.
std::vector<std::pair<size_t, size_t>> measuring_order(const RunContext& run) {
  std::vector<std::vector<size_t>> by_fidelity(run.layers.size());
  size_t longest = 0;
  for (size_t l = 0; l < run.layers.size(); ++l) {
    const Layer& layer = run.layers[l];
    auto& order = by_fidelity[l];
    for (size_t s = 0; s < layer.distilled.size(); ++s) order.push_back(s);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return layer.distilled[a].error_after < layer.distilled[b].error_after; });
    longest = std::max(longest, order.size());
  }
  std::vector<std::pair<size_t, size_t>> order;
  for (size_t rank = 0; rank < longest; ++rank) {
    for (size_t l = 0; l < run.layers.size(); ++l) {
      if (rank < by_fidelity[l].size()) order.push_back({l, by_fidelity[l][rank]});
    }
  }
  return order;
}

// The measured effects, for the estimate of the others.
std::vector<MeasuredEffect> measured_effects(const RunContext& run) {
  std::vector<MeasuredEffect> measured;
  for (const auto& layer : run.layers) {
    for (size_t s = 0; s < layer.accuracy_drop.size(); ++s) {
      if (!layer.drop_estimated[s]) measured.push_back({layer.distilled[s].error_after, layer.accuracy_drop[s]});
    }
  }
  return measured;
}

// An int8 run's mixed precision: each layer kept alone in fp32 in the int8 model, its effect on
// validation quality (a gain is a negative drop). Hottest layer first while the plan leaves time;
// a layer not reached is taken to gain nothing, so the search keeps it fp32 only where that is
// faster. Returns how many were measured.
int fp32_effects(RunContext& run, int64_t samples) {
  int measured = 0;
  for (size_t l = 0; l < run.layers.size(); ++l) {
    Layer& layer = run.layers[l];
    run.progress("sensitivity", static_cast<int64_t>(l), static_cast<int64_t>(run.layers.size()), layer.node->name + " in fp32");
    const std::string key = "fp32|" + layer.node->name;
    if (!run.journal->text("sensitivity", key) && !(run.search_seconds_left() > 0)) continue;
    graph::Graph mixed = run.base;
    for (auto& node : mixed.nodes) {
      if (node.name == layer.node->name) quant::keep_in_fp32(node);
    }
    layer.fp32_drop = run.task->drop(run.base_validation, journaled_quality(run, key, mixed, samples));
    ++measured;
  }
  return measured;
}

// A distributed run: how many candidates' effects are measured, in measuring order: all of them,
// or within a budget each layer's most faithful one and as many more as the ranks' time left
// fits. Decided by rank 0 and journaled, so that every rank spreads the same units.
size_t journaled_effects_to_measure(RunContext& run, int64_t samples, size_t candidates, size_t first_pass) {
  if (auto known = run.journal->text("plan", "sensitivity_effects")) return std::stoull(*known);
  size_t count = candidates;
  if (run.budgeted()) {
    if (!(run.costs.evaluation_seconds_per_sample > 0)) run.time_evaluation();
    const double unit_seconds = run.costs.evaluation_seconds_per_sample * static_cast<double>(run.task->validation_size(samples));
    const double fit = unit_seconds > 0 ? run.ranks() * std::max(0.0, run.search_seconds_left()) / unit_seconds : INFINITY;
    count = std::clamp<size_t>(std::isfinite(fit) ? static_cast<size_t>(fit) : candidates, first_pass, candidates);
  }
  run.journal->put_text("plan", "sensitivity_effects", std::to_string(count));
  return count;
}

// A distributed run: the effects still to be measured (the original's, the searched model's, in
// int8 each layer kept in fp32, the candidates') spread over the ranks; rank 0's loop in
// sensitivity() then reads them back.
void measure_on_every_rank(RunContext& run, int64_t samples, size_t effects) {
  struct Unit {
    std::string key;
    std::function<graph::Graph()> graph;
  };
  std::vector<Unit> units{{"original", [&] { return run.model; }}};
  if (run.subsampled() && run.narrowed_groups.empty()) {
    units.push_back({"subsampled", [&] { return run.base; }});
  } else if (run.base_changed()) {
    units.push_back({"narrowed", [&] { return run.base; }});
  }
  if (run.int8()) {
    for (const auto& layer : run.layers) {
      units.push_back({"fp32|" + layer.node->name, [&run, name = layer.node->name] {
                         graph::Graph mixed = run.base;
                         for (auto& node : mixed.nodes) {
                           if (node.name == name) quant::keep_in_fp32(node);
                         }
                         return mixed;
                       }});
    }
  }
  const auto order = measuring_order(run);
  for (size_t i = 0; i < std::min(effects, order.size()); ++i) {
    const auto [l, s] = order[i];
    const Layer& layer = run.layers[l];
    units.push_back({run.distilled_key(layer, layer.selected[s]),
                     [&run, l = l, s = s] {
                       const Layer& layer = run.layers[l];
                       return replace_operators(run.base, {{layer.node->name, run.trained_candidate(layer, s)}});
                     }});
  }
  std::erase_if(units, [&](const Unit& unit) { return run.journal->text("sensitivity", unit.key).has_value(); });
  run.spread("sensitivity", units.size(), [&](size_t i) {
    run.progress("sensitivity", static_cast<int64_t>(i), static_cast<int64_t>(units.size()), units[i].key);
    journaled_quality(run, units[i].key, units[i].graph(), samples);
  });
}

}  // namespace

void sensitivity(RunContext& run) {
  run.use_training_threads();
  const AdaptTask& task = *run.task;
  int64_t samples = 0;
  size_t effects = 0;
  run.on_root_first("sensitivity plan", [&] {
    samples = journaled_samples(run);
    if (!run.distributed()) return;
    const auto order = measuring_order(run);
    const size_t first_pass = std::count_if(run.layers.begin(), run.layers.end(), [](const Layer& l) { return !l.distilled.empty(); });
    effects = journaled_effects_to_measure(run, samples, order.size(), first_pass);
  });
  if (run.distributed()) measure_on_every_rank(run, samples, effects);
  // The other ranks are done: the search and what follows are rank 0's.
  if (!run.root()) return;
  run.original_validation = journaled_quality(run, "original", run.model, samples);
  // Each candidate's effect is measured in the model it goes into.
  if (run.subsampled() && run.narrowed_groups.empty()) {
    run.base_validation = journaled_quality(run, "subsampled", run.base, samples);
  } else if (run.base_changed()) {
    run.base_validation = journaled_quality(run, "narrowed", run.base, samples);
  } else {
    run.base_validation = run.original_validation;
  }
  for (auto& layer : run.layers) {
    layer.accuracy_drop.assign(layer.distilled.size(), NAN);
    layer.drop_estimated.assign(layer.distilled.size(), true);
  }
  const int fp32_measured = run.int8() ? fp32_effects(run, samples) : 0;
  const auto order = measuring_order(run);
  const size_t first_pass = std::count_if(run.layers.begin(), run.layers.end(), [](const Layer& l) { return !l.distilled.empty(); });
  int64_t done = 0, measured = 0;
  for (const auto& [l, s] : order) {
    Layer& layer = run.layers[l];
    run.progress("sensitivity", done, static_cast<int64_t>(order.size()), layer.node->name);
    const std::string key = run.distilled_key(layer, layer.selected[s]);
    std::optional<double> quality;
    if (auto known = run.journal->text("sensitivity", key)) {
      quality = std::stod(*known);
    } else if (static_cast<size_t>(done) < first_pass || run.search_seconds_left() > 0) {
      // Past the plan's deadline, only the first pass (each layer's most faithful candidate) is
      // still measured: the estimates of the others are fitted on it.
      quality = journaled_quality(run, key, replace_operators(run.base, {{layer.node->name, run.trained_candidate(layer, s)}}), samples);
    }
    if (quality) {
      layer.accuracy_drop[s] = task.drop(run.base_validation, *quality);
      layer.drop_estimated[s] = false;
      ++measured;
    }
    ++done;
  }
  const int64_t estimated = static_cast<int64_t>(order.size()) - measured;
  const double slope = drop_per_error(measured_effects(run));
  for (auto& layer : run.layers) {
    for (size_t s = 0; s < layer.accuracy_drop.size(); ++s) {
      if (layer.drop_estimated[s]) layer.accuracy_drop[s] = slope * layer.distilled[s].error_after;
    }
  }
  run.summary = fmt::format("{} candidates each put in alone; validation {} {} on {} samples", measured, task.metric_name(),
                            task.format_quality(run.original_validation), task.validation_size(samples));
  if (run.int8()) {
    run.summary += fmt::format(" (int8, fake-quantized); {} of {} layers each kept alone in fp32", fp32_measured, run.layers.size());
    if (fp32_measured < static_cast<int>(run.layers.size())) {
      run.plan_reduced = true;
      run.report.notes.push_back(fmt::format("{} of {} layers' effect in fp32 were not measured, to fit the budget: the search keeps "
                                             "them in fp32 only where that is faster",
                                             run.layers.size() - fp32_measured, run.layers.size()));
    }
  }
  const bool fewer_samples = task.validation_size(samples) < task.validation_size(run.options.sensitivity_images);
  if (fewer_samples || estimated > 0) run.plan_reduced = true;
  if (fewer_samples) {
    run.summary += fmt::format(" (of {} asked for, to fit the budget)", run.options.sensitivity_images);
  }
  if (estimated > 0) {
    const std::string estimate =
        fmt::format("{} of {} candidates' effects were estimated, not measured, to fit the budget: {:.2f} {} per 0.1 of distilled "
                    "output error, the slope of the {} measured",
                    estimated, order.size(), 0.1 * slope, task.drop_unit(), measured);
    run.summary += "; " + estimate;
    run.report.notes.push_back(estimate + " (each layer's sensitivity_estimated in the report counts them)");
  }
  if (!run.narrowed_groups.empty()) {
    const std::string narrowing =
        fmt::format("narrowing {} channel groups changes validation {} from {} to {} before fine-tuning", run.narrowed_groups.size(),
                    task.metric_name(), task.format_quality(run.original_validation), task.format_quality(run.base_validation));
    run.summary += "; " + narrowing;
    run.report.notes.push_back(narrowing + " (every candidate's effect is measured from there)");
  }
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
