// Fitting the latency predictor on the zoo's operators (see latency_model.h).
#include "measure/latency_model.h"

#include <algorithm>
#include <bit>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "lowering/kernels.h"
#include "measure/sampled_operators.h"
#include "rules/rules.h"
#include "zoo/zoo.h"

namespace gos::measure {

namespace {

// A node's first output's elements: what a structural node moves.
int64_t output_elements(const graph::Graph& model, const graph::Node& node) {
  int64_t elements = 1;
  for (int64_t extent : model.shape_of(node.outputs.at(0))) elements *= extent;
  return elements;
}

// The whole-model formula, the one `fit` checks against the zoo and `predict` answers with: every
// compute node predicted, the calls repeated among them taken off, the per-node overhead, and the
// structural nodes at their op type's time per element.
ModelLatencyPrediction predicted_latency(const LatencyPredictor& predictor, const WholeModelOverheads& overheads,
                                         const graph::Graph& model) {
  ModelLatencyPrediction prediction;
  prediction.overheads = overheads;
  for (const auto& node : model.nodes) {
    if (!node.is_compute()) {
      prediction.structural_ms += overheads.structural_ms(model, node);
      continue;
    }
    prediction.node_ms.push_back(predictor.predict_ms(*node.op));
    prediction.operators_ms += prediction.node_ms.back();
  }
  prediction.total_ms = overheads.whole_model_ms(prediction.operators_ms, prediction.node_ms.size(), model.nodes.size()) +
                        prediction.structural_ms;
  return prediction;
}

constexpr const char* kPredictorBlob = "latency_predictor";
constexpr const char* kWholeModelBlob = "latency_whole_model";  // the overheads a whole model adds

CacheKey scope(Backend backend, int threads) { return {cache_name(backend), threads, machine_fingerprint(), ""}; }

// One set of measurements to fit on and one to check against.
struct Split {
  std::vector<ir::OpExpr> train_ops, test_ops;
  std::vector<double> train_ms, test_ms, train_trust;
  void add(bool test, const ir::OpExpr& op, double ms, double trust) {
    (test ? test_ops : train_ops).push_back(op);
    (test ? test_ms : train_ms).push_back(ms);
    if (!test) train_trust.push_back(trust);
  }
};

struct Samples {
  std::vector<ir::OpExpr> all_ops;
  std::vector<double> all_ms, all_trust;
  std::vector<unsigned> folds;  // statement_folds of each
  std::vector<bool> reported;   // a zoo operator or candidate: what the accuracy is reported on
  Split random_configs;         // outside fold 0, a random fifth of it held out (is_in_random_fifth)
  std::vector<double> spreads;  // of every measurement
  size_t swept = 0, sweeps_agreeing = 0;  // measurements of two sweeps or more, and those whose sweeps agreed
};

// How close two timings of the same operator must be to count as repeating: the predictor's
// accuracy is reported at the same tolerance.
constexpr double kRepeatTolerance = 0.10;

// How much a measurement counts in the fit: the less its runs agreed (p10-p90 spread over the
// median), the less, since a median taken while the machine was busy misleads the trees. The floor
// keeps quiet measurements (spreads of a few percent) from counting without bound.
constexpr double kSpreadFloor = 0.05;

double measurement_trust(const Timing& timing) {
  return 1.0 / (kSpreadFloor + timing.spread());
}

Samples cached_samples(const LatencyCache& cache, Backend backend, int threads, const std::set<std::string>& reported) {
  Samples samples;
  for (const auto& m : cache.all(cache_name(backend), threads, machine_fingerprint())) {
    ir::OpExpr op = ir::parse(m.op_text);
    const double trust = measurement_trust(m.timing);
    const unsigned folds = statement_folds(op);
    const std::string key = op.canonical_key();
    if ((folds & 1u) == 0) samples.random_configs.add(draws_random_fifth(key), op, m.timing.median_ms, trust);
    samples.folds.push_back(folds);
    samples.reported.push_back(reported.contains(key));
    samples.all_ops.push_back(std::move(op));
    samples.all_ms.push_back(m.timing.median_ms);
    samples.spreads.push_back(m.timing.spread());
    samples.all_trust.push_back(trust);
    if (m.sweeps >= 2) {
      ++samples.swept;
      samples.sweeps_agreeing += m.swept().sweeps_agree(kRepeatTolerance);
    }
  }
  return samples;
}

graph::Graph zoo_graph(const std::string& name) { return zoo::inference_graph(name, /*seed=*/0); }

// The models' compute operators, which the sampled operators vary.
std::vector<ir::OpExpr> model_operators(const std::vector<std::string>& models) {
  std::vector<ir::OpExpr> ops;
  for (const auto& name : models) {
    for (const auto& node : zoo_graph(name).nodes) {
      if (node.is_compute()) ops.push_back(*node.op);
    }
  }
  return ops;
}

}  // namespace

ZooOperators zoo_operators(const std::vector<std::string>& models, int candidates_per_op) {
  ZooOperators zoo;
  std::set<std::string> seen;
  auto add = [&](const ir::OpExpr& op, const ir::TensorMap& weights) {
    if (seen.insert(op.canonical_key()).second) zoo.ops.push_back({op, weights});
  };
  for (const auto& name : models) {
    const graph::Graph model = zoo_graph(name);
    for (const auto& node : model.nodes) {
      if (!node.is_compute()) continue;
      add(*node.op, node.weights);
      if (candidates_per_op <= 0 || !rules::why_not_searchable(*node.op).empty()) continue;
      auto candidates = rules::derive_candidates(*node.op, node.weights, {.depth = 1});
      const size_t count = std::min<size_t>(candidates.size(), static_cast<size_t>(candidates_per_op));
      for (size_t i = 0; i < count; ++i) {  // evenly spread over the list, which is ordered by MACs
        const auto& candidate = candidates[i * candidates.size() / count];
        add(candidate.op, candidate.weights);
        zoo.original_and_candidate.emplace(node.op->canonical_key(), candidate.op.canonical_key());
        // Each statement alone too: the predictor learns statements and sums them.
        if (candidate.op.statements().size() < 2) continue;
        for (size_t s = 0; s < candidate.op.statements().size(); ++s) {
          ir::OpExpr statement = lowering::statement_as_op(candidate.op, s);
          ir::TensorMap weights;
          for (const auto& param : statement.tensors_with_role(ir::Role::Param)) weights[param.name] = candidate.weights.at(param.name);
          add(statement, weights);
        }
      }
    }
  }
  return zoo;
}

namespace {

std::set<std::string> canonical_keys(const std::vector<OpToMeasure>& ops) {
  std::set<std::string> keys;
  for (const auto& op : ops) keys.insert(op.op.canonical_key());
  return keys;
}

// A reported operator as its fold's predictor, which never saw its statements, predicted it.
struct HeldOutPrediction {
  double measured_ms = 0, predicted_ms = 0;
  bool screenable = false;
};

// How the search's screen (left_untimed) does on held-out predictions: of the candidates
// measured faster than their operator, how many it would time; of the others, how many it skips.
ScreenAccuracy screen_accuracy(const std::set<std::pair<std::string, std::string>>& original_and_candidate,
                               const std::map<std::string, HeldOutPrediction>& held_out) {
  ScreenAccuracy screen;
  for (const auto& [original, candidate] : original_and_candidate) {
    const auto o = held_out.find(original);
    const auto c = held_out.find(candidate);
    if (o == held_out.end() || c == held_out.end()) continue;
    const bool skipped = left_untimed(c->second.screenable, c->second.predicted_ms, o->second.predicted_ms);
    if (c->second.measured_ms < kFasterThanItsOperator * o->second.measured_ms) {
      ++screen.faster;
      screen.faster_kept += !skipped;
    } else {
      ++screen.slower;
      screen.slower_skipped += skipped;
    }
  }
  return screen;
}

// The held-out report on samples already read from the cache. Each fold in turn is held out: a
// predictor fitted on the operators with no statement in it predicts the reported operators with
// one (each operator in its lowest fold), so every zoo operator and candidate is predicted once
// by a predictor that never saw one of its statements.
LatencyModelReport evaluate_samples(const Samples& samples,
                                    const std::set<std::pair<std::string, std::string>>& original_and_candidate,
                                    const LatencyCache& cache, Backend backend, int threads,
                                    const std::function<void(size_t, size_t)>& on_progress) {
  const Split& random = samples.random_configs;
  const bool any_reported = std::ranges::find(samples.reported, true) != samples.reported.end();
  if (!any_reported || samples.all_ops.size() < 16 || random.train_ops.size() < 8 || random.test_ops.empty()) {
    throw MeasureError("the latency cache " + cache.path().string() + " holds " + std::to_string(samples.all_ops.size()) +
                       " operator measurements for " + std::string(to_string(backend)) + " with " + std::to_string(threads) +
                       " thread(s) on this machine; run `gos latency-model fit --backend " + std::string(to_string(backend)) +
                       "` first");
  }
  LatencyModelReport report;
  report.backend = to_string(backend);
  report.machine = machine_fingerprint();
  report.threads = threads;
  std::vector<double> spreads = samples.spreads;
  std::nth_element(spreads.begin(), spreads.begin() + static_cast<std::ptrdiff_t>(spreads.size() / 2), spreads.end());
  report.median_spread = spreads[spreads.size() / 2];
  report.n_swept = samples.swept;
  report.sweeps_within_10pct = static_cast<double>(samples.sweeps_agreeing) / static_cast<double>(samples.swept);
  const size_t steps = kHeldOutFolds + 1;
  std::vector<double> predicted, measured;
  size_t fitted = 0, folds_checked = 0;
  std::map<std::string, HeldOutPrediction> held_out_by_key;
  for (unsigned fold = 0; fold < kHeldOutFolds; ++fold) {
    if (on_progress) on_progress(fold, steps);
    Split split;
    for (size_t i = 0; i < samples.all_ops.size(); ++i) {
      const bool in_fold = (samples.folds[i] >> fold) & 1u;
      if (in_fold && !(samples.reported[i] && static_cast<unsigned>(std::countr_zero(samples.folds[i])) == fold)) continue;
      split.add(in_fold, samples.all_ops[i], samples.all_ms[i], samples.all_trust[i]);
    }
    if (split.test_ops.empty()) continue;
    const LatencyPredictor predictor = LatencyPredictor::fit(split.train_ops, split.train_ms, split.train_trust);
    fitted += split.train_ops.size();
    ++folds_checked;
    for (size_t i = 0; i < split.test_ops.size(); ++i) {
      const auto& op = split.test_ops[i];
      std::string kinds;
      for (size_t s = 0; s < op.statements().size(); ++s) kinds += (kinds.empty() ? "" : " ") + statement_kind(op, s);
      predicted.push_back(predictor.predict_ms(op));
      measured.push_back(split.test_ms[i]);
      report.held_out_ops.push_back({kinds, ir::cost(op).macs, split.test_ms[i], predicted.back(), ir::print(op)});
      held_out_by_key[op.canonical_key()] = {split.test_ms[i], predicted.back(), screenable(op)};
    }
  }
  report.screen = screen_accuracy(original_and_candidate, held_out_by_key);
  report.held_out = accuracy_of(predicted, measured);
  report.n_train = fitted / folds_checked;
  if (on_progress) on_progress(kHeldOutFolds, steps);
  const LatencyPredictor on_random_configs = LatencyPredictor::fit(random.train_ops, random.train_ms, random.train_trust);
  report.random_held_out = evaluate(on_random_configs, random.test_ops, random.test_ms);
  if (on_progress) on_progress(steps, steps);
  return report;
}

}  // namespace

LatencyModelReport evaluate_latency_model(const LatencyCache& cache, Backend backend, int threads,
                                          const std::vector<std::string>& models, int candidates_per_op,
                                          const std::function<void(size_t, size_t)>& on_progress) {
  const ZooOperators zoo = zoo_operators(models, candidates_per_op);
  const Samples samples = cached_samples(cache, backend, threads, canonical_keys(zoo.ops));
  return evaluate_samples(samples, zoo.original_and_candidate, cache, backend, threads, on_progress);
}

LatencyModelReport fit_latency_model(LatencyCache& cache, Backend backend, int threads, const std::vector<std::string>& models,
                                     int candidates_per_op, size_t sampled_count,
                                     const std::function<void(const std::string&, size_t, size_t)>& on_progress) {
  const BenchOptions per_op{.threads = threads, .warmup = 5, .min_runs = 15, .budget_seconds = 0.2};
  ZooOperators zoo = zoo_operators(models, candidates_per_op);
  std::vector<OpToMeasure> ops = std::move(zoo.ops);
  const std::set<std::string> zoo_keys = canonical_keys(ops);
  for (auto& sampled : sampled_operators(sampled_count, kSampledOperatorsSeed, model_operators(models))) {
    if (!zoo_keys.contains(sampled.op.canonical_key())) ops.push_back(std::move(sampled));
  }
  size_t measured = 0;
  measure_cached(cache, ops, backend, per_op, &measured, [&](size_t done, size_t total) {
    if (on_progress) on_progress("time operators", done, total);
  });
  const Samples samples = cached_samples(cache, backend, threads, zoo_keys);  // parsed once for every fit
  LatencyModelReport report = evaluate_samples(samples, zoo.original_and_candidate, cache, backend, threads, [&](size_t done, size_t total) {
    if (on_progress) on_progress("check the predictor", done, total);
  });
  report.newly_measured = measured;
  const LatencyPredictor predictor = LatencyPredictor::fit(samples.all_ops, samples.all_ms, samples.all_trust);
  store_predictor(cache, backend, threads, predictor);

  // Whole models: measured, and predicted by the formula predict uses, with its overheads (per
  // node: data movement and calls; per structural node type: a time per element) fitted over these
  // models.
  std::vector<double> overhead_per_node;
  std::map<std::string, std::vector<double>> structural_rates;  // by op type, ms per output element
  const ir::OpExpr copy = ir::parse("Y[i] = X[i] where i<1");
  report.call_overhead_ms = bench_ops({{copy, {}}}, backend, per_op).at(0).median_ms;
  std::vector<graph::Graph> graphs;
  for (size_t m = 0; m < models.size(); ++m) {
    if (on_progress) on_progress("time whole models", m, models.size());
    graphs.push_back(zoo_graph(models[m]));
    const graph::Graph& model = graphs.back();
    ModelCheck check{models[m]};
    check.measured_ms = bench_model(model, backend, {.threads = threads, .budget_seconds = 1.0}).median_ms;
    std::vector<OpToMeasure> nodes;
    std::vector<const graph::Node*> structural;
    for (const auto& node : model.nodes) {
      if (node.is_compute()) {
        nodes.push_back({*node.op, node.weights});
      } else {
        structural.push_back(&node);
      }
    }
    for (const auto& timing : measure_cached(cache, nodes, backend, per_op)) check.ops_measured_ms += timing.median_ms;
    const std::vector<Timing> structural_timings = measure_nodes_cached(cache, model, structural, backend, per_op);
    for (size_t i = 0; i < structural.size(); ++i) {
      check.ops_measured_ms += structural_timings[i].median_ms;
      const double elements = static_cast<double>(output_elements(model, *structural[i]));
      structural_rates[structural[i]->op_type].push_back(
          std::max(0.0, structural_timings[i].median_ms - report.call_overhead_ms) / std::max(1.0, elements));
    }
    // The measured operators as the whole model runs them: one call between them, not one each.
    const double operators_one_call_ms = WholeModelOverheads{report.call_overhead_ms, 0.0}.whole_model_ms(
        check.ops_measured_ms, nodes.size() + structural.size(), 0);
    overhead_per_node.push_back((check.measured_ms - operators_one_call_ms) / static_cast<double>(model.nodes.size()));
    report.models.push_back(check);
  }
  // The median model's overhead, never negative (operators timed alone can take longer than in the
  // whole model, whose runtime fuses and reuses memory).
  if (!overhead_per_node.empty()) {
    std::sort(overhead_per_node.begin(), overhead_per_node.end());
    report.overhead_per_node_ms = std::max(0.0, overhead_per_node[overhead_per_node.size() / 2]);
  }
  WholeModelOverheads overheads{report.call_overhead_ms, report.overhead_per_node_ms, {}};
  for (auto& [op_type, rates] : structural_rates) {
    std::sort(rates.begin(), rates.end());
    overheads.structural_ms_per_element[op_type] = rates[rates.size() / 2];
  }
  report.structural_ms_per_element = overheads.structural_ms_per_element;
  for (size_t m = 0; m < report.models.size(); ++m) {
    report.models[m].predicted_ms = predicted_latency(predictor, overheads, graphs[m]).total_ms;
  }
  cache.put_blob(kWholeModelBlob, scope(backend, threads),
                 nlohmann::json{{"call_overhead_ms", overheads.call_overhead_ms},
                                {"overhead_per_node_ms", overheads.overhead_per_node_ms},
                                {"structural_ms_per_element", overheads.structural_ms_per_element}}
                     .dump());
  if (on_progress) on_progress("time whole models", models.size(), models.size());
  return report;
}

double WholeModelOverheads::whole_model_ms(double operators_ms, size_t operators, size_t nodes) const {
  const double repeated_calls = call_overhead_ms * static_cast<double>(operators > 0 ? operators - 1 : 0);
  return operators_ms - repeated_calls + overhead_per_node_ms * static_cast<double>(nodes);
}

double WholeModelOverheads::structural_ms(const graph::Graph& model, const graph::Node& node) const {
  auto rate = structural_ms_per_element.find(node.op_type);
  if (rate == structural_ms_per_element.end()) return 0;
  return rate->second * static_cast<double>(output_elements(model, node));
}

namespace {

std::optional<WholeModelOverheads> stored_overheads(const LatencyCache& cache, Backend backend, int threads) {
  const auto blob = cache.get_blob(kWholeModelBlob, scope(backend, threads));
  if (!blob) return std::nullopt;
  try {
    const auto json = nlohmann::json::parse(*blob);
    // A fit before structural nodes were timed has no rates: they count in the per-node overhead.
    return WholeModelOverheads{json.at("call_overhead_ms").get<double>(), json.at("overhead_per_node_ms").get<double>(),
                               json.value("structural_ms_per_element", std::map<std::string, double>{})};
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

ModelLatencyPrediction predict_model_latency(const LatencyCache& cache, Backend backend, int threads, const graph::Graph& model) {
  const LatencyPredictor predictor = load_predictor(cache, backend, threads);
  const auto overheads = stored_overheads(cache, backend, threads);
  if (!overheads) {
    throw MeasureError("the latency predictor in " + cache.path().string() +
                       " has no whole-model overheads (its fit was stopped before timing the whole models, or an older gos "
                       "fitted it); run `gos latency-model fit --backend " + std::string(to_string(backend)) + "` again");
  }
  return predicted_latency(predictor, *overheads, model);
}

void store_predictor(LatencyCache& cache, Backend backend, int threads, const LatencyPredictor& predictor) {
  cache.put_blob(kPredictorBlob, scope(backend, threads), predictor.to_json());
}

LatencyPredictor load_predictor(const LatencyCache& cache, Backend backend, int threads) {
  auto blob = cache.get_blob(kPredictorBlob, scope(backend, threads));
  if (!blob) {
    throw MeasureError("no latency predictor for " + std::string(to_string(backend)) + " with " + std::to_string(threads) +
                       " thread(s) on this machine in " + cache.path().string() + "; run `gos latency-model fit --backend " +
                       std::string(to_string(backend)) + "`");
  }
  return LatencyPredictor::from_json(*blob);
}

}  // namespace gos::measure
