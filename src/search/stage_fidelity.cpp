// Stage 3, fidelity: each searched operator's inputs recorded on calibration samples; its faster
// candidates scored, up to --candidates-per-layer selected and distilled to reproduce it; their
// error on held-out inputs is their fidelity (docs/search.md).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/ranges.h>

#include "search/stages.h"

namespace gos::search {

namespace {

using nlohmann::json;

ir::TensorMap as_map(const std::vector<ir::Tensor>& tensors) {
  ir::TensorMap map;
  for (size_t i = 0; i < tensors.size(); ++i) map[std::to_string(i)] = tensors[i];
  return map;
}

std::vector<ir::Tensor> as_list(const ir::TensorMap& map) {
  std::vector<ir::Tensor> list;
  for (size_t i = 0; i < map.size(); ++i) list.push_back(map.at(std::to_string(i)));
  return list;
}

// Recorded on fewer samples where they would be large (samples_to_record): what the journal
// keeps stays bounded at any input resolution.
std::vector<ir::Tensor> recorded_inputs(RunContext& run, const Layer& layer) {
  if (auto known = run.journal->tensors("recorded", layer.node->name)) return as_list(*known);
  const int64_t count = samples_to_record(run.base, *layer.node, run.calibration.shape[0]);
  const auto samples = count == run.calibration.shape[0] ? run.calibration : rows({run.calibration}, 0, count)[0];
  auto inputs = record_node_inputs(run.base, *layer.node, {samples});
  run.journal->put_tensors("recorded", layer.node->name, as_map(inputs));
  return inputs;
}

// Up to `limit` of the faster candidates: first the (latency, error) Pareto front by increasing
// latency, then the lowest-error others.
std::vector<size_t> select(const Layer& layer, const std::vector<double>& init_error, int limit) {
  std::vector<size_t> by_latency(layer.faster.size());
  std::iota(by_latency.begin(), by_latency.end(), 0);
  std::stable_sort(by_latency.begin(), by_latency.end(), [&](size_t a, size_t b) { return layer.fastest_ms(a) < layer.fastest_ms(b); });
  std::vector<size_t> chosen;
  double best_error = INFINITY;
  for (size_t i : by_latency) {
    if (init_error[i] < best_error) {
      chosen.push_back(i);
      best_error = init_error[i];
    }
  }
  std::vector<size_t> by_error = by_latency;
  std::stable_sort(by_error.begin(), by_error.end(), [&](size_t a, size_t b) { return init_error[a] < init_error[b]; });
  for (size_t i : by_error) {
    if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
  }
  // More than allowed: the first ones, so the fastest of the front before the most faithful others.
  const size_t allowed = static_cast<size_t>(std::max(1, limit));
  if (chosen.size() > allowed) chosen.resize(allowed);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

Distilled distilled(RunContext& run, const Layer& layer, size_t candidate, int steps, const std::vector<ir::Tensor>& train_inputs,
                    const std::vector<ir::Tensor>& held_out_inputs) {
  const std::string key = run.distilled_key(layer, candidate);
  if (auto weights = run.journal->tensors("distilled", key)) {
    const json errors = json::parse(*run.journal->text("distilled_error", key));
    return {*weights, errors.at("before").get<double>(), errors.at("after").get<double>()};
  }
  DistillOptions distill{.steps = steps, .seed = run.options.seed};
  Distilled result = distill_candidate(layer.original, layer.faster[candidate], train_inputs, held_out_inputs, distill);
  run.journal->atomically([&] {
    run.journal->put_text("distilled_error", key, json{{"before", result.error_before}, {"after", result.error_after}}.dump());
    run.journal->put_tensors("distilled", key, result.weights);
  });
  return result;
}

// Leaves out of the search the distilled candidates that still miss most of their operator's
// output, when asked to. On tcn-ppg the configurations holding one lost most after fine-tuning;
// but without them the fastest points drop most layers' windows instead and lose more (figures in
// docs/search.md and docs/ppg.md), so by default none is left out.
size_t drop_unfaithful(const RunContext& run, Layer& layer) {
  if (!run.options.max_candidate_error) return 0;
  size_t kept = 0;
  for (size_t s = 0; s < layer.distilled.size(); ++s) {
    if (layer.distilled[s].error_after > *run.options.max_candidate_error) continue;
    layer.selected[kept] = layer.selected[s];
    layer.distilled[kept] = layer.distilled[s];
    ++kept;
  }
  const size_t dropped = layer.distilled.size() - kept;
  layer.selected.resize(kept);
  layer.distilled.resize(kept);
  return dropped;
}

// This layer's share of the plan: candidates to distil and their steps. Decided when the layer is
// begun and journaled, so that a resumed run keeps it; layers begun by a gos without plans took
// the settings as given.
struct LayerPlan {
  int candidates = 0;
  int steps = 0;
};

std::optional<LayerPlan> journaled_layer_plan(const RunContext& run, const Layer& layer) {
  if (!run.journal->text("fidelity_begun", layer.node->name)) return std::nullopt;
  if (auto known = run.journal->text("plan", layer.node->name)) {
    const json plan = json::parse(*known);
    return LayerPlan{plan.at("candidates").get<int>(), plan.at("steps").get<int>()};
  }
  return LayerPlan{run.options.candidates_per_layer, run.options.distill_steps};
}

// What a distillation step costs here, from one candidate distilled for a few steps and for a few
// more: the difference leaves out what a distillation pays once (the teacher's outputs, setup).
// The plan of the first layer needs it before any candidate is distilled.
double time_distillation_step(const Layer& layer, size_t candidate, const std::vector<ir::Tensor>& train_inputs,
                              const std::vector<ir::Tensor>& held_out_inputs, uint64_t seed) {
  constexpr int kFewSteps = 5, kMoreSteps = 25;
  auto seconds_for = [&](int steps) {
    const auto begin = Clock::now();
    distill_candidate(layer.original, layer.faster[candidate], train_inputs, held_out_inputs, {.steps = steps, .seed = seed});
    return seconds_since(begin);
  };
  const double few = seconds_for(kFewSteps), more = seconds_for(kMoreSteps);
  const double per_step = (more - few) / (kMoreSteps - kFewSteps);
  return per_step > 0 ? per_step : more / kMoreSteps;  // a noisy machine can time the longer one faster
}

// The work left from layer `from` on: each layer's faster candidates, and the distilled
// candidates whose effect is still to be measured.
SearchWork work_from(const RunContext& run, size_t from) {
  SearchWork work;
  for (size_t l = from; l < run.layers.size(); ++l) work.layer_candidates.push_back(static_cast<int>(run.layers[l].faster.size()));
  for (size_t l = 0; l < from; ++l) work.distilled_unmeasured += static_cast<int>(run.layers[l].distilled.size());
  return work;
}

// Running means over the layers and candidates done, which is what the plans of the layers after
// them are made from.
class CostTracker {
 public:
  void layer(double seconds) {
    layer_seconds_ += seconds;
    ++layers_;
  }
  void distillation(double seconds, int steps) {
    distill_seconds_ += seconds;
    steps_ += steps;
  }
  void update(UnitCosts& costs) const {
    if (layers_ > 0) costs.layer_seconds = layer_seconds_ / layers_;
    if (steps_ > 0) costs.distill_step_seconds = distill_seconds_ / steps_;
  }

 private:
  double layer_seconds_ = 0, distill_seconds_ = 0;
  int layers_ = 0;
  int64_t steps_ = 0;
};

// How many layers the budget left time for, as journaled by the start that found out; not for a
// run rerun with another budget, which plans the layers not begun anew.
std::optional<size_t> layers_the_budget_fits(const RunContext& run) {
  const auto known = run.journal->text("plan", "fidelity_layers");
  if (!known) return std::nullopt;
  const json plan = json::parse(*known);
  if (plan.at("budget_seconds").get<double>() != run.options.budget_seconds) return std::nullopt;
  return plan.at("layers").get<size_t>();
}

// A layer's inputs split for distillation, its plan and the candidates it distils.
struct LayerWork {
  std::vector<ir::Tensor> train_inputs, held_out_inputs;
  LayerPlan plan;
  std::vector<size_t> selected;
};

std::pair<std::vector<ir::Tensor>, std::vector<ir::Tensor>> split_inputs(RunContext& run, const Layer& layer) {
  const auto inputs = recorded_inputs(run, layer);
  // The held-out share of the calibration samples, of those this layer's inputs were recorded on.
  const int64_t recorded = inputs.front().shape[0];
  const int64_t held_out = std::clamp<int64_t>(run.options.held_out_images * recorded / run.calibration.shape[0], 1, recorded - 1);
  const int64_t trained = recorded - held_out;
  return {rows(inputs, 0, trained), rows(inputs, trained, trained + held_out)};
}

// Begins layer l (its inputs recorded, its candidates scored, its plan decided and journaled, its
// selection journaled) or reads what a start before did. Nullopt when the budget leaves no time for
// it and the layers after it (journaled too). `seconds_factor`: how many ranks share the work left.
std::optional<LayerWork> begin_layer(RunContext& run, size_t l, CostTracker& tracker, const SearchScale& wanted, int seconds_factor) {
  const AdaptOptions& options = run.options;
  Layer& layer = run.layers[l];
  const auto begin = Clock::now();
  LayerWork work;
  std::tie(work.train_inputs, work.held_out_inputs) = split_inputs(run, layer);
  std::optional<LayerPlan> plan = journaled_layer_plan(run, layer);
  const auto known_selection = run.journal->text("selected", layer.node->name);
  if (plan && known_selection) {
    work.plan = *plan;
    work.selected = json::parse(*known_selection).get<std::vector<size_t>>();
    return work;
  }
  const auto scored = score_candidates(layer.original, layer.faster, work.held_out_inputs);
  std::vector<double> init_error;
  for (const auto& s : scored) init_error.push_back(s.init_rel_error);
  if (!plan) {
    // Whether a layer is searched, and how much, is decided once and journaled, so that a
    // resumed run decides alike and a finished one rerun reads back every layer it searched.
    LayerPlan decided{options.candidates_per_layer, options.distill_steps};
    if (run.budgeted()) {
      tracker.layer(seconds_since(begin));
      if (!(run.costs.distill_step_seconds > 0)) {
        const size_t first = select(layer, init_error, 1).front();
        run.costs.distill_step_seconds = time_distillation_step(layer, first, work.train_inputs, work.held_out_inputs, options.seed);
      }
      tracker.update(run.costs);
      const SearchPlan search = plan_search(work_from(run, l), wanted, run.costs, seconds_factor * run.search_seconds_left());
      if (search.layers == 0) {
        run.journal->put_text("plan", "fidelity_layers", json{{"layers", l}, {"budget_seconds", options.budget_seconds}}.dump());
        return std::nullopt;
      }
      decided = {search.scale.candidates_per_layer, search.scale.distill_steps};
    }
    run.journal->atomically([&] {
      run.journal->put_text("plan", layer.node->name, json{{"candidates", decided.candidates}, {"steps", decided.steps}}.dump());
      run.journal->put_text("fidelity_begun", layer.node->name, "1");
    });
    plan = decided;
  }
  work.plan = *plan;
  work.selected = select(layer, init_error, plan->candidates);
  // The ranks of a distributed run distil what rank 0 selected (scores computed elsewhere can
  // differ in the last bits).
  if (!known_selection) run.journal->put_text("selected", layer.node->name, json(work.selected).dump());
  return work;
}

// A distributed run: rank 0 begins every layer first (inputs, plans, selections), then the
// candidates to distil are spread over the ranks; the loop of fidelity() then reads them all back.
void distil_on_every_rank(RunContext& run, const SearchScale& wanted) {
  run.on_root_first("fidelity plans", [&] {
    CostTracker tracker;
    for (size_t l = 0; l < run.layers.size(); ++l) {
      if (run.layers[l].faster.empty()) continue;
      if (auto fits = layers_the_budget_fits(run); fits && l >= *fits) break;
      if (!run.root() && !run.journal->text("fidelity_begun", run.layers[l].node->name)) break;
      if (!begin_layer(run, l, tracker, wanted, run.ranks())) break;
    }
  });
  struct Unit {
    size_t layer, candidate;
    int steps;
  };
  std::vector<Unit> units;
  for (size_t l = 0; l < run.layers.size(); ++l) {
    const Layer& layer = run.layers[l];
    if (layer.faster.empty() || !run.journal->text("fidelity_begun", layer.node->name)) continue;
    const auto selection = run.journal->text("selected", layer.node->name);
    const auto plan = journaled_layer_plan(run, layer);
    if (!selection || !plan) continue;
    for (size_t candidate : json::parse(*selection).get<std::vector<size_t>>()) {
      if (!run.journal->text("distilled", run.distilled_key(layer, candidate))) units.push_back({l, candidate, plan->steps});
    }
  }
  // A rank's units come in layer order: each layer's recorded inputs are read from the journal
  // once, not once a candidate (up to 64 MiB each at 224x224).
  std::optional<size_t> inputs_of;
  std::pair<std::vector<ir::Tensor>, std::vector<ir::Tensor>> inputs;
  run.spread("fidelity", units.size(), [&](size_t i) {
    const Unit& unit = units[i];
    const Layer& layer = run.layers[unit.layer];
    run.progress("fidelity", static_cast<int64_t>(i), static_cast<int64_t>(units.size()),
                 layer.node->name + " " + layer.faster[unit.candidate].derivation_text());
    if (inputs_of != unit.layer) {
      inputs = split_inputs(run, layer);
      inputs_of = unit.layer;
    }
    distilled(run, layer, unit.candidate, unit.steps, inputs.first, inputs.second);
  });
}

}  // namespace

void fidelity(RunContext& run) {
  const AdaptOptions& options = run.options;
  run.use_training_threads();
  const SearchScale wanted{options.candidates_per_layer, options.distill_steps, options.sensitivity_images};
  if (run.distributed()) distil_on_every_rank(run, wanted);
  int64_t total = 0, done = 0;
  for (const auto& layer : run.layers) total += std::min<int64_t>(layer.faster.size(), options.candidates_per_layer);
  size_t unfaithful = 0;
  bool out_of_budget = false;
  CostTracker tracker;
  std::set<std::pair<int, int>> plans_used;  // (candidates, steps) of the layers searched
  const auto layers_begun = layers_the_budget_fits(run);
  for (size_t l = 0; l < run.layers.size(); ++l) {
    Layer& layer = run.layers[l];
    if (layer.faster.empty()) continue;
    std::optional<LayerWork> work;
    if (!layers_begun || l < *layers_begun) work = begin_layer(run, l, tracker, wanted, 1);
    if (!work) {
      run.report.notes.push_back(fmt::format("the budget left no time to search {} and the {} layers after it (hottest first); they "
                                             "stay as they were",
                                             layer.node->name, run.layers.size() - l - 1));
      out_of_budget = true;
      break;
    }
    plans_used.insert({work->plan.candidates, work->plan.steps});
    layer.selected = work->selected;
    for (size_t candidate : layer.selected) {
      run.progress("fidelity", done, total, layer.node->name + " " + layer.faster[candidate].derivation_text());
      const auto distilling = Clock::now();
      const bool known = run.journal->text("distilled", run.distilled_key(layer, candidate)).has_value();
      layer.distilled.push_back(distilled(run, layer, candidate, work->plan.steps, work->train_inputs, work->held_out_inputs));
      if (!known) tracker.distillation(seconds_since(distilling), work->plan.steps);
      ++done;
    }
    unfaithful += drop_unfaithful(run, layer);
    layer.searched = true;
  }
  double best_sum = 0;
  int searched = 0;
  for (const auto& layer : run.layers) {
    if (layer.distilled.empty()) continue;
    ++searched;
    double best = INFINITY;
    for (const auto& d : layer.distilled) best = std::min(best, d.error_after);
    best_sum += best;
  }
  run.summary = fmt::format("{} candidates distilled over {} layers; mean best error {:.1f}%", done, searched,
                            searched ? 100 * best_sum / searched : 0.0);
  const bool planned_less = std::any_of(plans_used.begin(), plans_used.end(), [&](const auto& used) {
    return used.first < options.candidates_per_layer || used.second < options.distill_steps;
  });
  if (planned_less || out_of_budget) run.plan_reduced = true;
  if (planned_less) {
    std::vector<std::string> used;
    for (const auto& [candidates, steps] : plans_used) used.push_back(fmt::format("{} x {}", candidates, steps));
    const std::string plan = fmt::format("to fit the budget, candidates x distillation steps per layer were {} where {} x {} were asked for",
                                         fmt::join(used, ", "), options.candidates_per_layer, options.distill_steps);
    run.summary += "; " + plan;
    run.report.notes.push_back(plan + " (the plan is made from what the first units of work cost: docs/search.md)");
  }
  if (out_of_budget && searched == 0) {
    throw SearchError(fmt::format("the budget ran out before any layer was searched ({:.0f} s of {:.0f} s spent, counting the "
                                  "run's earlier starts); give a larger --budget",
                                  run.seconds_spent(), options.budget_seconds));
  }
  if (unfaithful > 0 && searched == 0) {
    throw SearchError(fmt::format("all {} distilled candidates still miss their operator's output by more than {:.0f}% "
                                  "(--max-candidate-error {}): nothing is left to search; raise it or leave it out",
                                  unfaithful, 100 * *options.max_candidate_error, *options.max_candidate_error));
  }
  if (unfaithful > 0) {
    run.summary += fmt::format("; {} left out, their error above {:.0f}%", unfaithful, 100 * *options.max_candidate_error);
  }
}

}  // namespace gos::search
