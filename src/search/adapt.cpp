// `gos adapt`, stage by stage (see adapt.h and docs/search.md).
#include "search/adapt.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "data/data.h"
#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/compute_threads.h"
#include "lowering/torch_lowering.h"
#include "measure/cache.h"
#include "measure/latency_model.h"
#include "rules/rules.h"
#include "search/adapt_task.h"
#include "search/adapted.h"
#include "search/candidates.h"
#include "search/evolution.h"
#include "search/front_choice.h"
#include "search/journal.h"
#include "train/train.h"
#include "util/stable_hash.h"

namespace gos::search {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr size_t kMaxMeasuredPerLayer = 48;   // candidates timed per layer, spread over their MACs
constexpr double kVerifyReserveSeconds = 30;  // kept back from fine-tuning for verification and export
constexpr double kBudgetRecordSeconds = 5;    // how often the time spent is journaled during a stage
constexpr double kLatencyPredictionMargin = 0.03;  // of the target: how far under it an untimed point is predicted
constexpr double kTimedLatencyMargin = 0.02;  // of the target: how far under it a point timed whole must be (timing noise)
constexpr int kMaxTimedPoints = 12;           // front points timed whole per run (a few seconds each)
constexpr int kOutOfReachTimedPoints = 4;     // plausible points timed whole when none is predicted to reach the target

// How many layers a configuration replaces (option 0 keeps the original).
int changed_layers(const Configuration& configuration) {
  return static_cast<int>(std::count_if(configuration.choice.begin(), configuration.choice.end(), [](int c) { return c != 0; }));
}

// A number as text that reads back to the same double: a resumed run must compute exactly what
// an uninterrupted one did (std::to_string keeps six decimals).
std::string exact_text(double value) { return fmt::format("{}", value); }

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string weights_fingerprint(const graph::Graph& model) {
  std::string bytes;
  for (const auto& node : model.nodes) {
    bytes += node.name;
    if (node.op) bytes += node.op->canonical_key();
    for (const auto& [name, tensor] : node.weights) {
      bytes += name;
      bytes.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * sizeof(float));
    }
  }
  return util::stable_hash_hex(bytes);
}

json timing_json(const measure::Timing& timing) {
  return {{"median_ms", timing.median_ms}, {"p10_ms", timing.p10_ms}, {"p90_ms", timing.p90_ms}, {"runs", timing.runs}};
}

measure::Timing timing_from(const json& j) {
  return {j.at("median_ms").get<double>(), j.at("p10_ms").get<double>(), j.at("p90_ms").get<double>(), j.at("runs").get<int>()};
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

// Rows [begin, end) of a batch of recorded inputs.
std::vector<ir::Tensor> rows(const std::vector<ir::Tensor>& tensors, int64_t begin, int64_t end) {
  std::vector<ir::Tensor> sliced;
  for (const auto& tensor : tensors) {
    const int64_t per_row = tensor.shape[0] > 0 ? tensor.elements() / tensor.shape[0] : 0;
    auto shape = tensor.shape;
    shape[0] = end - begin;
    sliced.emplace_back(shape, std::vector<float>(tensor.data.begin() + begin * per_row, tensor.data.begin() + end * per_row));
  }
  return sliced;
}

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

// At most `count` of the candidates, spread evenly over their MACs (cheapest and costliest kept).
std::vector<rules::Candidate> spread_over_macs(std::vector<rules::Candidate> candidates, size_t count) {
  if (candidates.size() <= count) return candidates;
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return ir::cost(a.op).macs < ir::cost(b.op).macs; });
  std::vector<rules::Candidate> spread;
  for (size_t i = 0; i < count; ++i) spread.push_back(candidates[i * (candidates.size() - 1) / (count - 1)]);
  return spread;
}

// One searched operator and what the stages learn about it.
struct Layer {
  explicit Layer(const graph::Node& operator_node)
      : node(&operator_node), original(rules::original(*operator_node.op, operator_node.weights)) {}
  const graph::Node* node;
  rules::Candidate original;
  double original_ms = 0;
  int derived = 0;                          // candidates the rules gave
  int predicted_slower = 0;                 // of them, left untimed: the latency predictor put them far slower
  std::vector<rules::Candidate> faster;     // measured faster than the original
  std::vector<double> faster_ms;
  std::vector<size_t> selected;             // into `faster`: the ones distilled
  std::vector<Distilled> distilled;         // per selected
  std::vector<double> accuracy_drop;        // per selected: validation points lost with it alone
  bool searched = false;                    // fidelity and sensitivity done within the budget
};

// The model whose operators the search replaces: the given one, or with --subsample N the one
// computing only every Nth position before its global pooling.
graph::Subsampled searched_base(const graph::Graph& model, const AdaptOptions& options) {
  try {
    return graph::subsample_pooled_positions(model, options.subsample);
  } catch (const graph::GraphError& error) {
    throw SearchError(fmt::format("--subsample {}: {}; leave --subsample out for this model", options.subsample, error.what()));
  }
}

class AdaptRun {
 public:
  AdaptRun(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks)
      : model_(model), subsampled_(searched_base(model, options)), options_(options), callbacks_(callbacks), start_(Clock::now()) {}

  AdaptResult run() {
    load_data();  // before the journal: a model that cannot read the data leaves nothing behind
    journal_.emplace(options_.out / "run.sqlite");
    if (auto spent = journal_->text("budget", "spent_seconds")) spent_before_ = std::stod(*spent);
    cache_.emplace(options_.cache.empty() ? measure::default_cache_path() : options_.cache);
    bind_settings();
    report_ = base_report();
    stage("profile", [&] { profile(); });
    stage("candidates", [&] { find_candidates(); });
    stage("fidelity", [&] { fidelity(); });
    stage("sensitivity", [&] { sensitivity(); });
    stage("search", [&] { search(); });
    stage("screen", [&] { choose_first_point(); });
    attempts();
    stage("export", [&] { export_files(); });
    return {report_, adapted_};
  }

 private:
  // ---- settings and bookkeeping ----

  json settings() const {
    json bound{{"model", weights_fingerprint(model_)},
            {"data", options_.data},
            // The cache's name: a journal whose latencies were measured the way an older gos
            // ran the backend is not resumed with them.
            {"backend", measure::cache_name(options_.backend)},
            {"threads", options_.threads},
            {"depth", options_.depth},
            {"rules", options_.rules},
            {"max_layers", options_.max_layers},
            {"candidates_per_layer", options_.candidates_per_layer},
            {"calibration_images", options_.calibration_images},
            {"held_out_images", options_.held_out_images},
            {"distill_steps", options_.distill_steps},
            // max_candidate_error is not bound: it only narrows what the search sees, which is
            // recomputed on resume, and attempts are journaled by configuration.
            {"sensitivity_images", options_.sensitivity_images},
            {"seed", options_.seed}};
    // Recorded only when set, so that runs journaled before it existed resume.
    if (options_.subsample > 1) bound["subsample"] = options_.subsample;
    return bound;
  }

  // The constraint only picks points of the front, and attempts are journaled by configuration:
  // a run resumed with another constraint reuses the search and every attempt it shares. Journals
  // of gos versions that bound it are resumed too, their settings row rewritten without it.
  void bind_settings() {
    const json current = settings();
    if (auto stored = journal_->bound_settings()) {
      json earlier = json::parse(*stored, nullptr, false);
      if (earlier.is_object()) {
        for (const char* unbound : {"speedup", "latency_ms", "max_acc_drop"}) earlier.erase(unbound);
        if (earlier == current) journal_->rebind_settings(current.dump());
      }
    }
    journal_->bind_settings(current.dump());
  }

  // Fine-tuning settings are not bound to the run either: changed, they reuse every search stage and
  // fine-tune again (attempts are journaled under this recipe's fingerprint).
  std::string finetune_fingerprint() const {
    json recipe{{"epochs", options_.finetune_epochs},
                {"lr", finetune_lr()},
                {"optimizer", finetune_optimizer()},
                {"batch_norms", was_batch_normalised() ? "restored" : "none"}};
    // Recorded only when changed, so that runs journaled before it existed keep their attempts.
    if (finetune_distillation().alpha != train::Distillation{}.alpha) recipe["label_weight"] = 1 - finetune_distillation().alpha;
    return util::stable_hash_hex(recipe.dump()).substr(0, 8);
  }

  train::Distillation finetune_distillation() const {
    train::Distillation distillation{.teacher = model_};
    if (options_.finetune_label_weight) distillation.alpha = 1 - *options_.finetune_label_weight;
    return distillation;
  }

  double finetune_lr() const { return options_.finetune_lr.value_or(task_->default_learning_rate()); }
  std::string finetune_optimizer() const { return options_.finetune_optimizer.value_or(task_->default_optimizer()); }

  // Convolutional networks were trained with batch norms (folded since); transformer-style ones
  // (layer norms) were not, and batch statistics over their tokens hurt them.
  bool was_batch_normalised() const {
    return std::none_of(model_.nodes.begin(), model_.nodes.end(),
                        [](const graph::Node& node) { return node.op_type == "LayerNormalization"; });
  }

  // By the configuration, not its place on the front, which a change of the search moves.
  std::string attempt_key(int front_index) const {
    return fmt::format("config{}@{}", util::stable_hash_hex(fmt::format("{}", fmt::join(front_[front_index].choice, ","))).substr(0, 12),
                       finetune_fingerprint());
  }

  report::AdaptReport base_report() const {
    report::AdaptReport r;
    r.model = options_.model_label;
    r.data = options_.data;
    r.target = options_.target;
    r.backend = measure::to_string(options_.backend);
    r.threads = options_.threads;
    r.machine = measure::machine_fingerprint();
    r.seed = options_.seed;
    r.metric = task_->metric();
    r.target_speedup = options_.speedup;
    r.target_latency_ms = options_.latency_ms;
    if (!options_.speedup && !options_.latency_ms) r.target_speedup = 2.5;
    r.max_quality_drop = options_.max_acc_drop;
    return r;
  }

  // `journal_key` tells repeated stages (one fine-tune per attempt) apart in the journal.
  template <typename Work>
  void stage(const std::string& name, Work work, const std::string& journal_key = {}) {
    const auto begin = Clock::now();
    summary_.clear();
    work();
    double seconds = seconds_since(begin);
    // Fine-tuning and verifying repeat per attempt: each repetition is its own stage.
    const auto repeats = std::count_if(report_.stages.begin(), report_.stages.end(), [&](const report::StageTime& done) {
      return done.stage == name || done.stage.starts_with(name + " (attempt ");
    });
    const std::string label = repeats == 0 ? name : fmt::format("{} (attempt {})", name, repeats + 1);
    // A resumed run reports the time the stage took when it was done, not the journal lookup.
    const std::string key = journal_key.empty() ? label : name + "|" + journal_key;
    const auto recorded = journal_->text("stage_seconds", key);
    if (recorded && std::stod(*recorded) >= seconds) {
      seconds = std::stod(*recorded);
    } else {
      journal_->put_text("stage_seconds", key, exact_text(seconds));
    }
    report_.stages.push_back({label, seconds});
    record_budget_spent();
    if (callbacks_.on_stage) callbacks_.on_stage(name, summary_);
  }

  void progress(const std::string& stage, int64_t done, int64_t total, const std::string& detail = {}) {
    // Items are journaled one by one except fine-tuning's batches, which a killed run redoes.
    if (stage != "finetune" && seconds_since(budget_recorded_) > kBudgetRecordSeconds) record_budget_spent();
    if (callbacks_.on_progress) callbacks_.on_progress(stage, done, total, detail);
  }

  // --budget is the run's whole time, across restarts: the journal keeps what the finished work
  // took, so a killed run resumes with what an uninterrupted one would have left (the work lost
  // in the kill is not counted: it is redone), and a finished run rerun ends as it did.
  double seconds_spent() const { return spent_before_ + seconds_since(start_); }

  void record_budget_spent() {
    if (!journal_) return;  // loading the data comes first
    journal_->put_text("budget", "spent_seconds", exact_text(seconds_spent()));
    budget_recorded_ = Clock::now();
  }

  // Timing pins libtorch to the target's thread count; training and evaluation take the machine.
  void use_training_threads() const {
    const int threads = options_.train_threads > 0 ? options_.train_threads : static_cast<int>(std::thread::hardware_concurrency());
    lowering::set_compute_threads(threads);
  }

  double remaining_seconds() const {
    return options_.budget_seconds > 0 ? options_.budget_seconds - seconds_spent() : INFINITY;
  }
  // The search stages may spend half the budget; fine-tuning gets the rest.
  bool search_budget_left() const {
    return options_.budget_seconds <= 0 || seconds_spent() < 0.5 * options_.budget_seconds;
  }

  // ---- latencies: journal, then the latency cache, then measurement ----

  std::vector<double> latencies_ms(const std::vector<measure::OpToMeasure>& ops, const std::string& stage_name) {
    std::vector<double> result(ops.size());
    std::vector<measure::OpToMeasure> missing;
    std::vector<size_t> missing_at;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (auto known = journal_->text("latency", util::stable_hash_hex(ops[i].op.canonical_key()))) {
        result[i] = std::stod(*known);
      } else {
        missing.push_back(ops[i]);
        missing_at.push_back(i);
      }
    }
    if (missing.empty()) return result;
    const measure::BenchOptions bench{.threads = options_.threads, .warmup = 5, .min_runs = 15, .budget_seconds = 0.2};
    auto timings = measure::measure_cached(*cache_, missing, options_.backend, bench, nullptr, [&](size_t done, size_t total) {
      progress(stage_name, static_cast<int64_t>(done), static_cast<int64_t>(total), "timing operators");
    });
    std::set<std::string> written;  // layers of one shape are one operator: journal it once
    for (size_t j = 0; j < missing.size(); ++j) {
      result[missing_at[j]] = timings[j].median_ms;
      const std::string key = util::stable_hash_hex(missing[j].op.canonical_key());
      if (written.insert(key).second) journal_->put_text("latency", key, exact_text(timings[j].median_ms));
    }
    return result;
  }

  // ---- 1. profile ----

  void profile() {
    for (const auto& node : base_.nodes) {
      if (node.is_compute() && rules::why_not_searchable(*node.op).empty()) {
        layers_.emplace_back(node);
      }
    }
    if (layers_.empty()) {
      throw SearchError("the model has no operator the rewrite rules apply to (no convolution, linear or matmul with "
                        "learned weights); gos adapt has nothing to search");
    }
    note_an_unsteady_machine(journaled_machine_reference());
    std::vector<measure::OpToMeasure> ops;
    for (const auto& node : base_.nodes) {
      if (node.is_compute()) ops.push_back({*node.op, node.weights});
    }
    const auto all_ms = latencies_ms(ops, "profile");
    size_t at = 0;
    for (const auto& node : base_.nodes) {
      if (!node.is_compute()) continue;
      operators_ms_ += all_ms[at];
      for (auto& layer : layers_) {
        if (layer.node == &node) layer.original_ms = all_ms[at];
      }
      ++at;
    }
    // Hot operators first: when the budget runs out, the layers that matter most were searched.
    std::stable_sort(layers_.begin(), layers_.end(), [](const Layer& a, const Layer& b) { return a.original_ms > b.original_ms; });
    if (options_.max_layers > 0 && layers_.size() > static_cast<size_t>(options_.max_layers)) {
      report_.notes.push_back(fmt::format("only the {} hottest of {} searchable operators were searched (--max-layers)",
                                          options_.max_layers, layers_.size()));
      layers_.resize(static_cast<size_t>(options_.max_layers), layers_.front());
    }
    original_timing_ = journaled_whole_model_timing("whole_model", model_);
    base_timing_ = subsampled() ? journaled_whole_model_timing("whole_subsampled_model", base_) : original_timing_;
    summary_ = fmt::format("{} operators, {} searchable; whole model {:.3f} ms (operators alone {:.3f} ms)", ops.size(),
                           layers_.size(), original_timing_.median_ms, operators_ms_);
    if (subsampled()) {
      summary_ += fmt::format("; computing 1 position in {} before the pooling: {:.3f} ms, {:.2f}x faster", options_.subsample,
                              base_timing_.median_ms, original_timing_.median_ms / base_timing_.median_ms);
      report_.notes.push_back(fmt::format("--subsample {}: {} compute only the positions the pooling reads ({:.2f}x faster as measured); "
                                          "each layer's original_expr is its subsampled form",
                                          options_.subsample, fmt::join(subsampled_.changed_nodes, ", "),
                                          original_timing_.median_ms / base_timing_.median_ms));
    }
  }

  bool subsampled() const { return options_.subsample > 1; }

  // How steady the machine was when the run began timing (gos bench's fixed loop), journaled so
  // that a resumed run reports what the first start saw.
  measure::Timing journaled_machine_reference() {
    if (auto known = journal_->text("profile", "machine_reference")) return timing_from(json::parse(*known));
    const measure::Timing reference = measure::time_machine_reference();
    journal_->put_text("profile", "machine_reference", timing_json(reference).dump());
    return reference;
  }

  // Operators timed alone on an unsteady machine do not repeat (docs/latency.md), which is how a
  // search comes to rank candidates wrongly; the user should know before reading the result.
  void note_an_unsteady_machine(const measure::Timing& reference) {
    if (!measure::machine_was_unsteady(reference)) return;
    report_.notes.push_back(fmt::format(
        "the machine was unsteady when the run began timing (a fixed arithmetic loop spread {:.0f}%, where a dedicated core "
        "stays under {:.0f}%): operators timed alone now may not repeat, so the search may rank candidates wrongly. The "
        "configurations fine-tuned are timed whole side by side with the original, which holds on such a machine, but "
        "a run on a quiet machine, with a new -o folder and --cache file, may find a faster model",
        100 * reference.spread(), 100 * measure::kUnsteadyMachineSpread));
  }

  measure::Timing journaled_whole_model_timing(const std::string& key, const graph::Graph& graph) {
    if (auto known = journal_->text("profile", key)) return timing_from(json::parse(*known));
    const measure::Timing timing = whole_model_timing(graph);
    journal_->put_text("profile", key, timing_json(timing).dump());
    return timing;
  }

  // Where whole-model timings live in the latency cache: this backend, threads and machine.
  measure::CacheKey whole_model_cache_scope() const {
    return {measure::cache_name(options_.backend), options_.threads, measure::machine_fingerprint(), ""};
  }

  // The original model's latency, kept in the latency cache like every operator's: the same
  // model is never timed twice on one machine, and runs that share a cache see the same figure.
  measure::Timing whole_model_timing(const graph::Graph& graph) {
    const measure::CacheKey scope = whole_model_cache_scope();
    const std::string name = "whole_model:" + weights_fingerprint(graph);
    if (auto cached = cache_->get_blob(name, scope)) return timing_from(json::parse(*cached));
    progress("profile", 0, 0, "timing the whole model");
    const auto timing = measure::bench_model(graph, options_.backend, {.threads = options_.threads});
    cache_->put_blob(name, scope, timing_json(timing).dump());
    return timing;
  }

  // ---- 2. candidates ----

  void find_candidates() {
    const rules::RuleOptions rule_options{.depth = options_.depth, .rules = options_.rules};
    size_t kept = 0, timed = 0, skipped = 0;
    for (size_t l = 0; l < layers_.size(); ++l) {
      Layer& layer = layers_[l];
      progress("candidates", static_cast<int64_t>(l), static_cast<int64_t>(layers_.size()), layer.node->name);
      auto derived = rules::derive_candidates(*layer.node->op, layer.node->weights, rule_options);
      layer.derived = static_cast<int>(derived.size());
      const std::set<std::string> slower = journaled_predicted_slower(layer, derived);
      std::erase_if(derived, [&](const rules::Candidate& c) { return slower.contains(util::stable_hash_hex(c.op.canonical_key())); });
      layer.predicted_slower = static_cast<int>(layer.derived - derived.size());
      // The slots go to the candidates not predicted slower, spread over their MACs.
      const auto candidates = spread_over_macs(std::move(derived), kMaxMeasuredPerLayer);
      std::vector<measure::OpToMeasure> ops;
      for (const auto& c : candidates) ops.push_back({c.op, c.weights});
      const auto ms = latencies_ms(ops, "candidates");
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (ms[i] < measure::kFasterThanItsOperator * layer.original_ms) {
          layer.faster.push_back(candidates[i]);
          layer.faster_ms.push_back(ms[i]);
        }
      }
      timed += candidates.size();
      skipped += static_cast<size_t>(layer.predicted_slower);
      kept += layer.faster.size();
    }
    summary_ = fmt::format("{} candidates timed, {} measured at least 5% faster than their operator", timed, kept);
    if (skipped > 0) {
      summary_ += fmt::format("; {} predicted at least {:.2f}x slower than their operator were not timed", skipped,
                              measure::kPredictedSlowerRatio);
      report_.notes.push_back(fmt::format(
          "{} candidates the latency predictor in the cache put at {:.2f}x their operator's time or more were not timed "
          "(on held-out operators this screen timed 97.5-100% of the candidates that time faster: docs/latency.md)",
          skipped, measure::kPredictedSlowerRatio));
    } else if (predictor_missing_) {
      summary_ += "; every candidate timed (" + *predictor_missing_ + ")";
    }
  }

  // The candidates of `layer` that the stored latency predictor puts at kPredictedSlowerRatio times
  // its operator or more, by the hash of their canonical form. Journaled when first decided, so a
  // resumed run skips the same ones whatever predictor the cache holds by then.
  std::set<std::string> journaled_predicted_slower(const Layer& layer, const std::vector<rules::Candidate>& derived) {
    if (auto known = journal_->text("predicted_slower", layer.node->name)) return json::parse(*known).get<std::set<std::string>>();
    std::set<std::string> slower;
    // A run whose candidates stage an older gos finished timed every candidate: it stays so.
    const bool finished_unscreened = journal_->text("stage_seconds", "candidates").has_value();
    const measure::LatencyPredictor* predictor =
        finished_unscreened || options_.time_every_candidate ? nullptr : stored_predictor();
    if (predictor) {
      const double original_ms = predictor->predict_ms(*layer.node->op);
      for (const auto& c : derived) {
        if (measure::left_untimed(measure::screenable(c.op), predictor->predict_ms(c.op), original_ms)) {
          slower.insert(util::stable_hash_hex(c.op.canonical_key()));
        }
      }
    }
    journal_->put_text("predicted_slower", layer.node->name, json(slower).dump());
    return slower;
  }

  // The predictor `gos latency-model fit` stored in the latency cache for this backend, threads and
  // machine, read once; null (with the reason kept for the stage's summary) when there is none.
  const measure::LatencyPredictor* stored_predictor() {
    if (!predictor_ && !predictor_missing_) {
      try {
        predictor_ = measure::load_predictor(*cache_, options_.backend, options_.threads);
      } catch (const measure::MeasureError& error) {
        predictor_missing_ = error.what();
      }
    }
    return predictor_ ? &*predictor_ : nullptr;
  }

  // ---- data ----

  void load_data() {
    task_ = load_task(options_.data);
    if (model_.inputs.size() != 1) throw SearchError("gos adapt feeds models with one input; this one has " +
                                                     std::to_string(model_.inputs.size()) + " inputs");
    if (model_.inputs[0].shape != task_->sample_shape()) {
      throw SearchError("the model reads " + ir::shape_text(model_.inputs[0].shape) + " but the samples of " + options_.data +
                        " are " + ir::shape_text(task_->sample_shape()));
    }
    calibration_ = task_->calibration_inputs(options_.calibration_images, options_.seed);
  }

  std::vector<ir::Tensor> recorded_inputs(const Layer& layer) {
    if (auto known = journal_->tensors("recorded", layer.node->name)) return as_list(*known);
    auto inputs = record_node_inputs(base_, *layer.node, {calibration_});
    journal_->put_tensors("recorded", layer.node->name, as_map(inputs));
    return inputs;
  }

  // ---- 3. fidelity ----

  // Up to candidates_per_layer of the faster candidates: first the (latency, error) Pareto front
  // by increasing latency, then the lowest-error others.
  std::vector<size_t> select(const Layer& layer, const std::vector<double>& init_error) const {
    std::vector<size_t> by_latency(layer.faster.size());
    std::iota(by_latency.begin(), by_latency.end(), 0);
    std::stable_sort(by_latency.begin(), by_latency.end(), [&](size_t a, size_t b) { return layer.faster_ms[a] < layer.faster_ms[b]; });
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
    const size_t limit = static_cast<size_t>(std::max(1, options_.candidates_per_layer));
    if (chosen.size() > limit) chosen.resize(limit);
    std::sort(chosen.begin(), chosen.end());
    return chosen;
  }

  std::string distilled_key(const Layer& layer, size_t candidate) const {
    return layer.node->name + "|" + util::stable_hash_hex(layer.faster[candidate].op.canonical_key());
  }

  void fidelity() {
    use_training_threads();
    int64_t total = 0, done = 0;
    for (const auto& layer : layers_) total += std::min<int64_t>(layer.faster.size(), options_.candidates_per_layer);
    const int64_t held_out = std::clamp<int64_t>(options_.held_out_images, 1, calibration_.shape[0] - 1);
    const int64_t trained = calibration_.shape[0] - held_out;
    size_t unfaithful = 0;
    bool out_of_budget = false;
    for (auto& layer : layers_) {
      if (layer.faster.empty()) continue;
      // Whether a layer is searched is decided once and journaled, so that a resumed run decides
      // alike and a finished one rerun reads back every layer it searched.
      const bool begun = journal_->text("fidelity_begun", layer.node->name).has_value();
      if (!begun && !search_budget_left()) {
        report_.notes.push_back("the budget ran out before " + layer.node->name + " and the layers after it were searched; they stay as they were");
        out_of_budget = true;
        break;
      }
      if (!begun) journal_->put_text("fidelity_begun", layer.node->name, "1");
      const auto inputs = recorded_inputs(layer);
      const auto train_inputs = rows(inputs, 0, trained), held_out_inputs = rows(inputs, trained, trained + held_out);
      const auto scored = score_candidates(layer.original, layer.faster, held_out_inputs);
      std::vector<double> init_error;
      for (const auto& s : scored) init_error.push_back(s.init_rel_error);
      layer.selected = select(layer, init_error);
      for (size_t candidate : layer.selected) {
        progress("fidelity", done, total, layer.node->name + " " + layer.faster[candidate].derivation_text());
        layer.distilled.push_back(distilled(layer, candidate, train_inputs, held_out_inputs));
        ++done;
      }
      unfaithful += drop_unfaithful(layer);
      layer.searched = true;
    }
    double best_sum = 0;
    int searched = 0;
    for (const auto& layer : layers_) {
      if (layer.distilled.empty()) continue;
      ++searched;
      double best = INFINITY;
      for (const auto& d : layer.distilled) best = std::min(best, d.error_after);
      best_sum += best;
    }
    summary_ = fmt::format("{} candidates distilled over {} layers; mean best error {:.1f}%", done, searched,
                           searched ? 100 * best_sum / searched : 0.0);
    if (out_of_budget && searched == 0) {
      throw SearchError(fmt::format("the budget ran out before any layer was searched ({:.0f} s of {:.0f} s spent, counting the "
                                    "run's earlier starts; the search stages may use half); give a larger --budget",
                                    seconds_spent(), options_.budget_seconds));
    }
    if (unfaithful > 0 && searched == 0) {
      throw SearchError(fmt::format("all {} distilled candidates still miss their operator's output by more than {:.0f}% "
                                    "(--max-candidate-error {}): nothing is left to search; raise it or leave it out",
                                    unfaithful, 100 * *options_.max_candidate_error, *options_.max_candidate_error));
    }
    if (unfaithful > 0) {
      summary_ += fmt::format("; {} left out, their error above {:.0f}%", unfaithful, 100 * *options_.max_candidate_error);
    }
  }

  // Leaves out of the search the distilled candidates that still miss most of their operator's
  // output, when asked to. On tcn-ppg every configuration holding one (a depthwise or per-channel
  // layer with error 0.85-0.93) lost 0.55-1.26 BPM after 100 epochs of fine-tuning; but without
  // them the fastest points drop most layers' windows instead and lose more (docs/ppg.md), so by
  // default none is left out.
  size_t drop_unfaithful(Layer& layer) const {
    if (!options_.max_candidate_error) return 0;
    size_t kept = 0;
    for (size_t s = 0; s < layer.distilled.size(); ++s) {
      if (layer.distilled[s].error_after > *options_.max_candidate_error) continue;
      layer.selected[kept] = layer.selected[s];
      layer.distilled[kept] = layer.distilled[s];
      ++kept;
    }
    const size_t dropped = layer.distilled.size() - kept;
    layer.selected.resize(kept);
    layer.distilled.resize(kept);
    return dropped;
  }

  Distilled distilled(const Layer& layer, size_t candidate, const std::vector<ir::Tensor>& train_inputs,
                      const std::vector<ir::Tensor>& held_out_inputs) {
    const std::string key = distilled_key(layer, candidate);
    if (auto weights = journal_->tensors("distilled", key)) {
      const json errors = json::parse(*journal_->text("distilled_error", key));
      return {*weights, errors.at("before").get<double>(), errors.at("after").get<double>()};
    }
    DistillOptions distill{.steps = options_.distill_steps, .seed = options_.seed};
    Distilled result = distill_candidate(layer.original, layer.faster[candidate], train_inputs, held_out_inputs, distill);
    // The error first: the weights entry is what marks the candidate as done.
    journal_->put_text("distilled_error", key, json{{"before", result.error_before}, {"after", result.error_after}}.dump());
    journal_->put_tensors("distilled", key, result.weights);
    return result;
  }

  // Option 1.. of a layer's choice: its selected (distilled) candidates in order; 0 keeps the original.
  static const rules::Candidate& candidate_of(const Layer& layer, int option) {
    return layer.faster[layer.selected[static_cast<size_t>(option - 1)]];
  }

  rules::Candidate trained_candidate(const Layer& layer, size_t selected_index) const {
    rules::Candidate candidate = candidate_of(layer, static_cast<int>(selected_index) + 1);
    candidate.weights = layer.distilled[selected_index].weights;
    return candidate;
  }

  // ---- 4. sensitivity ----

  double validation_quality(const graph::Graph& graph) const {
    return task_->validation_quality(graph, options_.sensitivity_images);
  }

  void sensitivity() {
    use_training_threads();
    original_validation_ = journaled_validation_quality("original", model_);
    // Each candidate's effect is measured in the model it goes into.
    base_validation_ = subsampled() ? journaled_validation_quality("subsampled", base_) : original_validation_;
    int64_t total = 0, done = 0;
    for (const auto& layer : layers_) total += static_cast<int64_t>(layer.distilled.size());
    bool out_of_budget = false;
    for (auto& layer : layers_) {
      for (size_t s = 0; s < layer.distilled.size() && !out_of_budget; ++s) {
        progress("sensitivity", done++, total, layer.node->name);
        const std::string key = distilled_key(layer, layer.selected[s]);
        double quality = 0;
        if (auto known = journal_->text("sensitivity", key)) {
          quality = std::stod(*known);
        } else if (!search_budget_left()) {
          out_of_budget = true;
          report_.notes.push_back("the budget ran out while measuring sensitivities from " + layer.node->name +
                                  " on; candidates without one were left out of the search");
          break;
        } else {
          quality = validation_quality(replace_operators(base_, {{layer.node->name, trained_candidate(layer, s)}}));
          journal_->put_text("sensitivity", key, exact_text(quality));
        }
        layer.accuracy_drop.push_back(task_->drop(base_validation_, quality));
      }
      // Only candidates with a measured effect take part in the search.
      layer.selected.resize(layer.accuracy_drop.size());
      layer.distilled.resize(layer.accuracy_drop.size(), Distilled{});
    }
    summary_ = fmt::format("{} candidates each put in alone; validation {} {} on {} samples", total, task_->metric_name(),
                           task_->format_quality(original_validation_), task_->validation_size(options_.sensitivity_images));
    if (subsampled()) {
      const std::string subsampling = fmt::format("computing 1 position in {} before the pooling changes validation {} from {} to {} before fine-tuning",
                                                  options_.subsample, task_->metric_name(), task_->format_quality(original_validation_),
                                                  task_->format_quality(base_validation_));
      summary_ += "; " + subsampling;
      report_.notes.push_back(subsampling + " (every candidate's effect is measured from there)");
    }
  }

  double journaled_validation_quality(const std::string& key, const graph::Graph& graph) {
    if (auto known = journal_->text("sensitivity", key)) return std::stod(*known);
    const double quality = validation_quality(graph);
    journal_->put_text("sensitivity", key, exact_text(quality));
    return quality;
  }

  // ---- 5. search ----

  // A candidate's predicted loss: its measured drop (never below zero) plus a small share of its
  // output error, so that among candidates that cost no measurable accuracy the more faithful wins.
  static double predicted_loss(double accuracy_drop, double error_after) {
    return std::max(0.0, accuracy_drop) + 0.1 * error_after;
  }

  void search() {
    SearchProblem problem;
    double searched_ms = 0;
    for (const auto& layer : layers_) {
      std::vector<LayerOption> options{{layer.original_ms, 0}};
      for (size_t s = 0; s < layer.distilled.size(); ++s) {
        options.push_back({layer.faster_ms[layer.selected[s]], predicted_loss(layer.accuracy_drop[s], layer.distilled[s].error_after)});
      }
      problem.layers.push_back(options);
      searched_ms += layer.original_ms;
    }
    // What the model costs beyond the searched operators, as measured: whole model less them.
    problem.fixed_latency_ms = std::max(0.0, base_timing_.median_ms - searched_ms);
    EvolutionOptions evolution{.seed = options_.seed};
    front_ = densified_front(problem, nsga2(problem, evolution, [&](int generation) { progress("search", generation, evolution.generations); }));
    for (const auto& point : front_) {
      report_.front.push_back({point.latency_ms, point.accuracy_loss, changed_layers(point), false});
    }
    summary_ = fmt::format("{} configurations on the front; target {:.3f} ms; predicted {:.3f} to {:.3f} ms", front_.size(),
                           target_latency_ms(), front_.front().latency_ms, front_.back().latency_ms);
  }

  // ---- 5b. screen: time front points whole before fine-tuning one ----

  // Predicted latencies are sums of operators timed alone, 2-11% off the whole model (the demo's
  // point, predicted 3% under the target, measured 6% over it). A configuration's latency does
  // not depend on its weights, so points are timed whole, side by side with the original, before
  // minutes of fine-tuning are spent on one: the most accurate point that meets the target as
  // timed is fine-tuned first.
  void choose_first_point() {
    chosen_front_index_ = -1;
    for (;;) {
      const int best = most_accurate_point_within_target();
      if (best < 0) {
        // None predicted under the target: the fastest points may still time under it whole.
        const int near = fastest_untimed_point_near_target();
        if (near >= 0 && time_whole(near)) continue;
        break;
      }
      if (timed_ratio(best) || !time_whole(best)) {
        chosen_front_index_ = best;
        break;
      }
    }
    target_within_reach_ = chosen_front_index_ >= 0;
    if (!target_within_reach_) chosen_front_index_ = point_for_a_target_out_of_reach();
    if (chosen_front_index_ < 0) {
      summary_ = fmt::format("{} configuration(s) of the front timed whole; none faster than the original", timed_ratio_.size());
      return;
    }
    const auto& chosen = front_[chosen_front_index_];
    const auto ratio = timed_ratio(chosen_front_index_);
    summary_ = fmt::format("{} configuration(s) of the front timed whole; chose {} at predicted loss {:.2f}", timed_ratio_.size(),
                           ratio ? fmt::format("one timed {:.2f}x faster", 1 / *ratio) : fmt::format("{:.3f} ms as predicted", chosen.latency_ms),
                           chosen.accuracy_loss);
  }

  // The most accurate point whose latency, as timed or else as predicted and calibrated by the
  // timed points, is under the target by the margin its estimate needs. An untimed point is timed
  // before it is taken while timing is allowed, so then it needs only a timed point's margin.
  int most_accurate_point_within_target() const {
    const bool can_time = static_cast<int>(timed_ratio_.size()) < kMaxTimedPoints;
    int best = -1;
    for (int i = 0; i < static_cast<int>(front_.size()); ++i) {
      const double margin = timed_ratio(i) || can_time ? kTimedLatencyMargin : kLatencyPredictionMargin;
      if (latency_fraction(i) <= 1 - margin && (best < 0 || front_[i].accuracy_loss < front_[best].accuracy_loss)) best = i;
    }
    return best;
  }

  // The fastest point not yet timed whole whose latency, as predicted and calibrated, is within the
  // prediction's margin over the target (-1 when none): a sum of operators timed alone overstates
  // the whole model by up to 11%, so such a point may meet the target once timed.
  int fastest_untimed_point_near_target() const {
    for (int i = 0; i < static_cast<int>(front_.size()); ++i) {  // front_ is by latency
      if (timed_ratio(i)) continue;
      return latency_fraction(i) <= 1 + kLatencyPredictionMargin ? i : -1;
    }
    return -1;
  }

  // The share of the latency target a point takes: as timed whole when it was, else as predicted,
  // scaled by how far the timed points' predictions were off.
  double latency_fraction(int front_index) const {
    const double original_ms = original_timing_.median_ms;
    const double ratio = timed_ratio(front_index).value_or(front_[front_index].latency_ms / original_ms * prediction_calibration());
    return ratio * original_ms / target_latency_ms();
  }

  std::optional<double> timed_ratio(int front_index) const {
    const auto found = timed_ratio_.find(front_index);
    return found == timed_ratio_.end() ? std::nullopt : std::optional<double>(found->second);
  }

  // The median of timed over predicted latency among the timed points; 1 before any was timed.
  double prediction_calibration() const {
    std::vector<double> factors;
    for (const auto& [index, ratio] : timed_ratio_) {
      factors.push_back(ratio * original_timing_.median_ms / std::max(1e-9, front_[index].latency_ms));
    }
    if (factors.empty()) return 1;
    std::sort(factors.begin(), factors.end());
    const size_t n = factors.size();
    return n % 2 ? factors[n / 2] : 0.5 * (factors[n / 2 - 1] + factors[n / 2]);
  }

  // Times the point's whole model side by side with the original (journal, then the latency cache,
  // then the backend). False when the run has timed as many points as it may.
  bool time_whole(int front_index) {
    if (static_cast<int>(timed_ratio_.size()) >= kMaxTimedPoints) return false;
    const auto chosen = choices(front_[front_index]);
    std::string structure = weights_fingerprint(base_);
    for (const auto& [node, candidate] : chosen) structure += "|" + node + "=" + candidate.op.canonical_key();
    const std::string key = util::stable_hash_hex(structure);
    json timings;
    if (auto known = journal_->text("screen", key)) {
      timings = json::parse(*known);
    } else {
      const measure::CacheKey scope = whole_model_cache_scope();
      const std::string name = "configuration_vs_original:" + key;
      if (auto cached = cache_->get_blob(name, scope)) {
        timings = json::parse(*cached);
      } else {
        // No total: how many points are timed depends on what the timings show.
        progress("screen", 0, 0, fmt::format("timing configuration {} ({} layers replaced) side by side with the original",
                                             timed_ratio_.size() + 1, changed_layers(front_[front_index])));
        const auto [original, adapted] = measure::bench_models_interleaved(model_, replace_operators(base_, chosen), options_.backend,
                                                                           {.threads = options_.threads, .budget_seconds = 1});
        timings = {{"original", timing_json(original)}, {"adapted", timing_json(adapted)}};
        cache_->put_blob(name, scope, timings.dump());
      }
      journal_->put_text("screen", key, timings.dump());
    }
    const double ratio = timing_from(timings.at("adapted")).median_ms / timing_from(timings.at("original")).median_ms;
    timed_ratio_[front_index] = ratio;
    report_.front[static_cast<size_t>(front_index)].measured_speedup = 1 / ratio;
    return true;
  }

  // With no point under the target: the fastest one timed whole (points are timed only when
  // predicted under or near the target, so it is the nearest the run comes), else the fastest one
  // fine-tuning can plausibly recover. -1 when the one found is timed whole no faster than the
  // original: fine-tuning it could only give a slower model. Says which in the report's notes.
  int point_for_a_target_out_of_reach() {
    const auto fastest_timed = std::ranges::min_element(timed_ratio_, {}, [](const auto& timed) { return timed.second; });
    if (fastest_timed != timed_ratio_.end()) {
      if (none_faster(fastest_timed->second)) {
        report_.notes.push_back(fmt::format("no configuration reaches {:.3f} ms ({}); {}", target_latency_ms(), unchangeable_time(),
                                            nothing_faster(fmt::format("{} configurations predicted near it", timed_ratio_.size()),
                                                           fastest_timed->second)));
        return -1;
      }
      report_.notes.push_back(fmt::format("no configuration reaches {:.3f} ms ({}); the fastest timed whole, {:.2f}x faster, was "
                                          "fine-tuned{}",
                                          target_latency_ms(), unchangeable_time(), 1 / fastest_timed->second,
                                          subsample_hint("; consider ")));
      return fastest_timed->first;
    }
    const auto [plausible, timed] = fastest_timed_plausible_point();
    const auto ratio = timed_ratio(plausible);
    const std::string unreached = fmt::format("no configuration is predicted to reach {:.3f} ms (the fastest is {:.3f} ms; {})",
                                              target_latency_ms(), front_[0].latency_ms, unchangeable_time());
    if (ratio && none_faster(*ratio)) {
      report_.notes.push_back(fmt::format("{}; {}", unreached,
                                          nothing_faster(fmt::format("{} fastest points whose predicted loss fine-tuning can "
                                                                     "plausibly recover", timed), *ratio)));
      return -1;
    }
    std::string as_timed;
    if (ratio && *ratio >= 1) {
      as_timed = fmt::format(", timed whole {:.2f}x: of the {} such points timed whole none is faster than the original", 1 / *ratio, timed);
    } else if (ratio) {
      as_timed = fmt::format(", timed whole {:.2f}x faster, the fastest of the {} such points timed", 1 / *ratio, timed);
    }
    report_.notes.push_back(fmt::format("{}; the fastest one whose predicted loss fine-tuning can plausibly recover was fine-tuned "
                                        "({:.3f} ms as predicted, predicted loss {:.2f}{}){}", unreached,
                                        front_[plausible].latency_ms, front_[plausible].accuracy_loss, as_timed,
                                        subsample_hint("; consider ")));
    return plausible;
  }

  // Whether the fastest point timed whole leaves nothing worth fine-tuning: it is no faster than
  // the original. Not with --subsample, whose unchanged layers already differ from the original.
  bool none_faster(double fastest_ratio) const { return fastest_ratio >= 1 && !subsampled(); }

  // `timed` says which points were timed, e.g. "4 configurations predicted near it".
  std::string nothing_faster(const std::string& timed, double fastest_ratio) const {
    return fmt::format("none of the {}, timed whole side by side with the original, is faster (the fastest {:.2f}x), so the "
                       "operators timed alone misled the search (were they timed on a busy or unsteady machine? A new -o folder "
                       "and --cache file time them again). Fine-tuning one could only give a slower model: nothing was fine-tuned, "
                       "and the original is written unchanged",
                       timed, 1 / fastest_ratio);
  }

  // The points fine-tuning can plausibly recover, from the fastest as predicted, timed whole (a
  // few), and the fastest of them as timed, with how many were timed. Predictions are sums of
  // operators timed alone: on an unsteady machine those mislead (mixer-s: a point predicted 1.27x
  // faster timed 0.90x whole), and nothing else checks a point when the target is out of reach.
  std::pair<int, int> fastest_timed_plausible_point() {
    const int first = fastest_plausible_point();
    int fastest = first, timed = 0;
    // Along the front the loss only falls, so every later point is as plausible as the first.
    for (int i = first; i < static_cast<int>(front_.size()) && timed < kOutOfReachTimedPoints; ++i) {
      if (changed_layers(front_[i]) == 0) continue;
      if (!timed_ratio(i) && !time_whole(i)) break;
      ++timed;
      if (!timed_ratio(fastest) || *timed_ratio(i) < *timed_ratio(fastest)) fastest = i;
    }
    return {fastest, timed};
  }

  // Why a target is out of reach: the time no choice of candidates changes, which is the work
  // between the searched operators (whole model less them) and the layers with no candidate.
  std::string unchangeable_time() const {
    double searched_ms = 0, unchangeable_ms = 0;
    for (const auto& layer : layers_) {
      searched_ms += layer.original_ms;
      if (layer.distilled.empty()) unchangeable_ms += layer.original_ms;
    }
    unchangeable_ms += std::max(0.0, base_timing_.median_ms - searched_ms);
    return fmt::format("{:.3f} ms of the model's {:.3f} ms is in what no candidate replaces: operators the rules do not "
                       "apply to, layers without a faster candidate (or that the budget left unsearched) and the work "
                       "between operators",
                       unchangeable_ms, base_timing_.median_ms);
  }

  // A goal out of reach of the rules may be within reach of fewer positions: said when computing
  // every 2nd position the pooling reads would save a fifth of the MACs or more.
  // `lead` starts the sentence, e.g. "; " or " Try ".
  std::string subsample_hint(const std::string& lead) const {
    if (subsampled()) return "";
    try {
      const double halved = static_cast<double>(graph::total_macs(graph::subsample_pooled_positions(model_, 2).graph));
      if (halved > 0.8 * static_cast<double>(graph::total_macs(model_))) return "";
      return fmt::format("{}--subsample 2, which computes {:.0f}% of the model's MACs before the search (docs/search.md)", lead,
                         100 * halved / static_cast<double>(graph::total_macs(model_)));
    } catch (const graph::GraphError&) {
      return "";
    }
  }

  // When the target is out of reach, the fastest point is usually one no fine-tuning recovers
  // (every layer replaced). Measured so far, fine-tuning leaves about half the predicted
  // (before fine-tuning) loss, so the fastest point predicted to lose at most four times the
  // accuracy budget is taken; the most accurate changed point when none is.
  int fastest_plausible_point() const {
    const double plausible = 4 * std::max(options_.max_acc_drop, 0.1);
    int most_accurate_changed = 0;
    for (int i = 0; i < static_cast<int>(front_.size()); ++i) {
      if (changed_layers(front_[i]) == 0) continue;  // the original itself is no answer to a speed target
      if (front_[i].accuracy_loss <= plausible) return i;  // front_ is by latency
      most_accurate_changed = i;
    }
    return most_accurate_changed;
  }

  double target_latency_ms() const {
    if (options_.latency_ms) return *options_.latency_ms;
    return original_timing_.median_ms / options_.speedup.value_or(2.5);
  }

  std::map<std::string, rules::Candidate> choices(const Configuration& configuration) const {
    std::map<std::string, rules::Candidate> chosen;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const int option = configuration.choice[l];
      if (option > 0) chosen.emplace(layers_[l].node->name, trained_candidate(layers_[l], static_cast<size_t>(option - 1)));
    }
    return chosen;
  }

  // ---- 6 and 7. fine-tune and verify, trying further front points when the constraint fails ----

  void attempts() {
    if (chosen_front_index_ < 0) {
      keep_the_original();
      return;
    }
    int index = chosen_front_index_;
    std::set<int> tried;
    for (int attempt = 0; attempt < options_.max_attempts && index >= 0 && !tried.count(index); ++attempt) {
      tried.insert(index);
      graph::Graph adapted;
      stage("finetune", [&] { adapted = finetuned(index); }, attempt_key(index));
      // As recorded when it was done: a fine-tune read back from the journal takes no time.
      last_finetune_seconds_ = report_.stages.back().seconds;
      report::Attempt outcome;
      stage("verify", [&] { outcome = verify(index, adapted); }, attempt_key(index));
      report_.attempts.push_back(outcome);
      if (outcome.meets_constraint || !best_adapted_ || better(outcome, report_.attempts[best_attempt_])) {
        best_attempt_ = report_.attempts.size() - 1;
        best_adapted_ = adapted;
      }
      if (outcome.meets_constraint) break;
      const bool too_slow = !meets_latency(outcome), too_inaccurate = outcome.quality_drop > options_.max_acc_drop;
      // Before choosing the next point, which may time configurations whole.
      if (attempt + 1 >= options_.max_attempts) break;
      if (remaining_seconds() < last_finetune_seconds_ + kVerifyReserveSeconds) {
        report_.notes.push_back("the budget left no time to fine-tune another configuration of the front");
        break;
      }
      const auto [next, calibrated_fit] = next_point(tried);
      if (next < 0 || !worth_another_attempt(too_slow, too_inaccurate, calibrated_fit, target_within_reach_)) {
        report_.attempts.back().outcome += "; no point of the front is predicted to be both faster and more accurate";
        break;
      }
      index = next;
      const auto ratio = timed_ratio(index);
      report_.attempts.back().outcome += fmt::format(
          "; trying a {} point of the front ({}, predicted loss {:.2f}, {:.2f} as the attempts so far calibrate it)",
          front_[index].latency_ms < front_[outcome.front_index].latency_ms ? "faster" : "more accurate",
          ratio ? fmt::format("timed whole {:.2f}x faster", 1 / *ratio) : fmt::format("predicted {:.3f} ms", front_[index].latency_ms),
          front_[index].accuracy_loss, calibrated_loss(attempt_outcomes(), front_[index].accuracy_loss));
    }
    const auto& best = report_.attempts[best_attempt_];
    report_.front[best.front_index].chosen = true;
    adapted_ = *best_adapted_;
    fill_layers(front_[best.front_index]);
    fill_summary(best);
  }

  bool meets_latency(const report::Attempt& attempt) const {
    const auto& verified = verified_.at(attempt.front_index);
    if (options_.latency_ms) return verified.adapted.median_ms <= *options_.latency_ms;
    return attempt.speedup >= options_.speedup.value_or(2.5);
  }

  // Meeting the constraint first; else within the accuracy budget and faster; else the smaller drop.
  bool better(const report::Attempt& a, const report::Attempt& b) const {
    if (a.meets_constraint != b.meets_constraint) return a.meets_constraint;
    const bool a_accurate = a.quality_drop <= options_.max_acc_drop, b_accurate = b.quality_drop <= options_.max_acc_drop;
    if (a_accurate != b_accurate) return a_accurate;
    return a_accurate ? a.speedup > b.speedup : a.quality_drop < b.quality_drop;
  }

  // The attempts so far tell how far off the predicted loss is, and timed points how far off the
  // predicted latency. The next point is the untried changed one whose worse fraction of its
  // limit (latency target, accuracy budget) is smallest, so that neither is bought with the
  // other: scaling only the missed quantity by the last attempt jumped between the ends of the
  // front (vgg11s, tcn-ppg). The point is timed whole before it is taken. Returns the point and
  // that fraction (above 1: no point is predicted to meet both).
  std::pair<int, double> next_point(const std::set<int>& tried) {
    for (;;) {
      const auto [best, fit] = best_calibrated_point(tried);
      if (best < 0 || timed_ratio(best) || !time_whole(best)) return {best, fit};
    }
  }

  std::pair<int, double> best_calibrated_point(const std::set<int>& tried) const {
    const double budget = std::max(options_.max_acc_drop, 1e-6);
    const auto outcomes = attempt_outcomes();
    int best = -1;
    double best_fit = 0;
    for (int i = 0; i < static_cast<int>(front_.size()); ++i) {
      if (tried.count(i) || changed_layers(front_[i]) == 0) continue;
      const double fit = std::max(latency_fraction(i), calibrated_loss(outcomes, front_[i].accuracy_loss) / budget);
      if (best < 0 || fit < best_fit) best = i, best_fit = fit;
    }
    return {best, best_fit};
  }

  std::vector<AttemptOutcome> attempt_outcomes() const {
    std::vector<AttemptOutcome> outcomes;
    for (const auto& attempt : report_.attempts) {
      outcomes.push_back({front_[attempt.front_index].accuracy_loss, attempt.quality_drop});
    }
    return outcomes;
  }

  // What the attempts so far say a point of this predicted loss drops once fine-tuned.
  double calibrated_loss(const std::vector<AttemptOutcome>& outcomes, double predicted) const {
    return calibrated_drop(outcomes, predicted, 0.1 * options_.max_acc_drop);
  }

  graph::Graph finetuned(int front_index) {
    graph::Graph adapted = replace_operators(base_, choices(front_[front_index]));
    const std::string prefix = attempt_key(front_index) + "|";
    bool known = journal_->text("finetune", prefix + "done").has_value();
    if (known) {
      for (auto& node : adapted.nodes) {
        if (auto weights = journal_->tensors("finetune", prefix + node.name)) node.weights = *weights;
        if (auto op = journal_->text("finetune", prefix + node.name + "|op")) node.op = ir::parse(*op);
      }
      summary_ = "fine-tuned weights read from the run journal";
      return adapted;
    }
    use_training_threads();
    const double budget = std::max(0.0, remaining_seconds() - kVerifyReserveSeconds);
    if (budget < 10) throw SearchError("the budget is spent before fine-tuning could start; give a larger --budget");
    train::TrainOptions train_options{.epochs = options_.finetune_epochs,
                                      .optimizer = finetune_optimizer(),
                                      .learning_rate = finetune_lr(),
                                      .seed = options_.seed,
                                      .threads = options_.train_threads,
                                      .distillation = finetune_distillation(),
                                      .budget_seconds = std::isfinite(budget) ? budget : 0,
                                      .restore_batch_norms = was_batch_normalised()};
    train::TrainCallbacks train_callbacks;
    bool diverged = false;
    train_callbacks.on_batch = [&](int64_t done, int64_t total, double loss) {
      diverged = diverged || !std::isfinite(loss);
      // One count over all epochs, so that the ETA is the fine-tuning's, not the epoch's.
      progress("finetune", epoch_ * total + done, options_.finetune_epochs * total,
               fmt::format("epoch {}/{} loss {:.4f}{}", epoch_ + 1, options_.finetune_epochs, loss, last_validation_));
    };
    epoch_ = 0;
    last_validation_.clear();
    train_callbacks.on_epoch = [&](const train::EpochReport& epoch) {
      epoch_ = epoch.epoch;
      last_validation_ = fmt::format("  {} after epoch {}", task_->epoch_validation(epoch), epoch.epoch);
    };
    auto trained = task_->train(adapted, train_options, train_callbacks);
    if (diverged) {
      report_.notes.push_back(fmt::format("fine-tuning diverged (the loss became NaN) at learning rate {}; rerun with a "
                                          "smaller --finetune-lr", finetune_lr()));
    }
    if (trained.stopped_by_budget) report_.notes.push_back("fine-tuning stopped early to stay within the budget");
    // Folding the batch norms back can give a node a bias it did not have: its op is journaled too.
    for (const auto& node : trained.model.nodes) {
      if (!node.weights.empty()) journal_->put_tensors("finetune", prefix + node.name, node.weights);
      if (node.is_compute()) journal_->put_text("finetune", prefix + node.name + "|op", ir::print(*node.op));
    }
    journal_->put_text("finetune", prefix + "done", "1");
    const auto& last = trained.epochs.empty() ? train::EpochReport{} : trained.epochs.back();
    summary_ = fmt::format("{} epoch(s); {}", trained.epochs.size(), task_->epoch_validation(last));
    return trained.model;
  }

  struct Verified {
    measure::Timing original, adapted;
    double original_accuracy = 0, adapted_accuracy = 0;
    std::optional<measure::Timing> machine;  // the fixed loop timed right after; absent in older journals
  };

  // Said in the report, since a speedup timed on an unsteady machine may not repeat.
  std::string unsteady_timing_note(const Verified& v, double speedup) const {
    const std::string machine =
        v.machine ? fmt::format("; a fixed arithmetic loop timed right after spread {:.0f}%, where a dedicated core stays under "
                                "{:.0f}%",
                                100 * v.machine->spread(), 100 * measure::kUnsteadyMachineSpread)
                  : "";
    return fmt::format("attempt {} was timed while the machine was unsteady (p10-p90 spread {:.0f}% for the original, {:.0f}% "
                       "for the adapted model, over {:.0f}%{}): its {:.2f}x may differ by as much in another run; time both "
                       "models again when the machine is quiet (for the model written: gos bench MODEL --against "
                       "OUT/adapted.onnx)",
                       report_.attempts.size() + 1, 100 * v.original.spread(), 100 * v.adapted.spread(),
                       100 * measure::kNoisySpread, machine, speedup);
  }

  report::Attempt verify(int front_index, const graph::Graph& adapted) {
    const std::string key = attempt_key(front_index);
    Verified v;
    if (auto known = journal_->text("verify", key)) {
      const json j = json::parse(*known);
      v = {timing_from(j.at("original")), timing_from(j.at("adapted")), j.at("original_accuracy"), j.at("adapted_accuracy"),
           j.contains("machine") ? std::optional(timing_from(j.at("machine"))) : std::nullopt};
    } else {
      progress("verify", 0, 3, "timing original and adapted side by side");
      std::tie(v.original, v.adapted) = measure::bench_models_interleaved(model_, adapted, options_.backend,
                                                                          {.threads = options_.threads, .budget_seconds = 2});
      v.machine = measure::time_machine_reference();
      use_training_threads();
      progress("verify", 1, 3, "test " + task_->metric_name() + " of the original");
      v.original_accuracy = original_test_quality();
      progress("verify", 2, 3, "test " + task_->metric_name() + " of the adapted model");
      v.adapted_accuracy = task_->test_quality(adapted);
      journal_->put_text("verify", key,
                        json{{"original", timing_json(v.original)}, {"adapted", timing_json(v.adapted)},
                             {"machine", timing_json(*v.machine)}, {"original_accuracy", v.original_accuracy},
                             {"adapted_accuracy", v.adapted_accuracy}}
                            .dump());
    }
    verified_[front_index] = v;
    report::Attempt attempt;
    attempt.front_index = front_index;
    attempt.speedup = v.original.median_ms / v.adapted.median_ms;
    attempt.quality_drop = task_->drop(v.original_accuracy, v.adapted_accuracy);
    const bool accurate = attempt.quality_drop <= options_.max_acc_drop;
    attempt.meets_constraint = accurate && meets_latency(attempt);
    attempt.changes = derivations(front_[front_index]);
    if (v.original.noisy() || v.adapted.noisy()) report_.notes.push_back(unsteady_timing_note(v, attempt.speedup));
    attempt.outcome = fmt::format("{:.2f}x faster ({:.3f} -> {:.3f} ms), {} {} -> {} ({:+.2f} {})", attempt.speedup,
                                  v.original.median_ms, v.adapted.median_ms, task_->metric_name(), task_->format_quality(v.original_accuracy),
                                  task_->format_quality(v.adapted_accuracy), v.adapted_accuracy - v.original_accuracy, task_->drop_unit());
    summary_ = attempt.outcome;
    return attempt;
  }

  std::map<std::string, std::string> derivations(const Configuration& configuration) const {
    std::map<std::string, std::string> changed;
    for (size_t l = 0; l < layers_.size(); ++l) {
      const int option = configuration.choice[l];
      if (option > 0) changed[layers_[l].node->name] = candidate_of(layers_[l], option).derivation_text();
    }
    return changed;
  }

  double original_test_quality() {
    if (auto known = journal_->text("verify", "original_accuracy")) return std::stod(*known);
    const double quality = task_->test_quality(model_);
    journal_->put_text("verify", "original_accuracy", exact_text(quality));
    return quality;
  }

  // ---- the report ----

  void fill_layers(const Configuration& configuration) {
    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      const int option = configuration.choice[l];
      report::LayerChoice choice;
      choice.node = layer.node->name;
      choice.op_type = layer.node->op_type;
      choice.original_expr = ir::print(layer.original.op);
      choice.latency_ms_before = layer.original_ms;
      choice.macs_before = ir::cost(layer.original.op).macs;
      choice.candidates = static_cast<int>(layer.faster.size());
      choice.predicted_slower = layer.predicted_slower;
      double best = INFINITY;
      for (double drop : layer.accuracy_drop) best = std::min(best, drop);
      choice.sensitivity = std::isfinite(best) ? best : 0;
      if (option == 0) {
        choice.chosen_expr = choice.original_expr;
        choice.derivation = "original";
        choice.latency_ms_after = layer.original_ms;
        choice.macs_after = choice.macs_before;
      } else {
        const size_t s = static_cast<size_t>(option - 1);
        const auto& candidate = candidate_of(layer, option);
        choice.kept = false;
        choice.chosen_expr = ir::print(candidate.op);
        choice.derivation = candidate.derivation_text();
        choice.latency_ms_after = layer.faster_ms[layer.selected[s]];
        choice.macs_after = ir::cost(candidate.op).macs;
        choice.fidelity = layer.distilled[s].error_after;
      }
      report_.layers.push_back(choice);
    }
  }

  void fill_summary(const report::Attempt& best) {
    const Verified& v = verified_.at(best.front_index);
    report_.original = model_summary(model_, v.original, v.original_accuracy);
    report_.adapted = model_summary(adapted_, v.adapted, v.adapted_accuracy);
    report_.speedup = best.speedup;
    report_.quality_drop = best.quality_drop;
    report_.constraint_met = best.meets_constraint;
    report_.verdict = fmt::format("{} runs {:.2f}x faster on {} ({:.3f} -> {:.3f} ms) with test {} {} -> {}. ",
                                  options_.model_label, best.speedup, report_.backend, v.original.median_ms, v.adapted.median_ms,
                                  task_->metric_name(), task_->format_quality(v.original_accuracy), task_->format_quality(v.adapted_accuracy)) +
                      (best.meets_constraint ? fmt::format("This meets the goal ({}).", goal())
                                             : fmt::format("This misses the goal ({}); it is the closest configuration found.{}", goal(),
                                                           missed_goal_advice()));
  }

  // No configuration timed faster whole: the result is the original, unchanged (speedup 1 and no
  // loss by construction, not measured again), so that a run that found nothing loses nothing.
  void keep_the_original() {
    use_training_threads();
    adapted_ = model_;
    fill_layers(Configuration{std::vector<int>(layers_.size(), 0)});
    report_.original = model_summary(model_, original_timing_, original_test_quality());
    report_.adapted = report_.original;
    report_.speedup = 1;
    report_.quality_drop = 0;
    report_.constraint_met = false;
    report_.verdict = fmt::format("{} is written unchanged: no configuration of faster candidates timed faster than it whole, so "
                                  "nothing was fine-tuned (see the notes). This misses the goal ({}).{}",
                                  options_.model_label, goal(), missed_goal_advice());
  }

  report::ModelSummary model_summary(const graph::Graph& graph, const measure::Timing& timing, double quality) const {
    report::ModelSummary s;
    (task_->higher_is_better() ? s.accuracy : s.mae) = quality;
    s.median_ms = timing.median_ms;
    s.p10_ms = timing.p10_ms;
    s.p90_ms = timing.p90_ms;
    s.runs = timing.runs;
    s.macs = graph::total_macs(graph);
    s.params = graph::total_params(graph);
    return s;
  }

  std::string goal() const {
    const std::string speed = options_.latency_ms ? fmt::format("at most {:.3f} ms", *options_.latency_ms)
                                                  : fmt::format("at least {:.2f}x faster", options_.speedup.value_or(2.5));
    return fmt::format("{}, at most {:.2f} {} {}", speed, options_.max_acc_drop, task_->drop_unit(),
                       task_->higher_is_better() ? "lost" : "added");
  }

  std::string missed_goal_advice() const {
    const std::string hint = subsample_hint(" Try ");
    return hint.empty() ? hint : hint + ".";
  }

  // ---- 8. export ----

  void export_files() {
    const auto onnx_path = options_.out / "adapted.onnx";
    const auto script_path = options_.out / "adapted.pt";
    write_atomically(onnx_path, [&](const std::filesystem::path& path) { graph::write_onnx(adapted_, path); });
    check_with_onnx_runtime(onnx_path);
    write_atomically(script_path, [&](const std::filesystem::path& path) { graph::export_torchscript(adapted_, path.string(), true); });
    report_.finished_at = utc_now();
    report::write_report(report_, options_.out);
    summary_ = "wrote " + onnx_path.string() + ", " + script_path.string() + ", report.json and report.html";
  }

  template <typename Write>
  static void write_atomically(const std::filesystem::path& path, Write write) {
    const auto temporary = std::filesystem::path(path.string() + ".partial" + path.extension().string());
    write(temporary);
    std::filesystem::rename(temporary, path);
  }

  // ONNX Runtime must give the adapted model's answers on a few calibration images.
  void check_with_onnx_runtime(const std::filesystem::path& path) {
    const auto images = rows({calibration_}, 0, std::min<int64_t>(8, calibration_.shape[0]));
    ir::TensorMap inputs{{model_.inputs[0].name, images[0]}};
    const ir::TensorMap outputs = graph::run_onnx_runtime(path, inputs);
    torch::NoGradGuard no_grad;
    graph::GraphModule module(adapted_);
    module.eval();
    const torch::Tensor expected = module.forward(lowering::to_torch(images[0]));
    const torch::Tensor actual = lowering::to_torch(outputs.begin()->second);
    const double error = (actual - expected).abs().max().item<double>() / std::max(1e-6, expected.abs().max().item<double>());
    if (error > 1e-3) {
      throw SearchError(fmt::format("ONNX Runtime's answers for {} differ from libtorch's by {:.2g} (relative); the export is wrong",
                                    path.string(), error));
    }
  }

  const graph::Graph& model_;  // as given: the teacher, and what speed and accuracy are compared with
  const graph::Subsampled subsampled_;       // the model with --subsample applied, and the nodes it changed
  const graph::Graph& base_ = subsampled_.graph;  // what the search replaces operators of
  const AdaptOptions& options_;
  const AdaptCallbacks& callbacks_;
  std::optional<Journal> journal_;  // opened once the inputs are known to be usable
  std::optional<measure::LatencyPredictor> predictor_;  // stored_predictor()'s
  std::optional<std::string> predictor_missing_;        // why there is none
  std::optional<measure::LatencyCache> cache_;
  Clock::time_point start_;
  double spent_before_ = 0;  // of the budget, by the earlier starts of this run (journaled)
  Clock::time_point budget_recorded_;
  report::AdaptReport report_;
  std::string summary_;

  std::vector<Layer> layers_;
  double operators_ms_ = 0;
  measure::Timing original_timing_;
  measure::Timing base_timing_;
  std::unique_ptr<AdaptTask> task_;
  ir::Tensor calibration_;
  double original_validation_ = 0;
  double base_validation_ = 0;
  std::vector<Configuration> front_;
  int chosen_front_index_ = -1;
  bool target_within_reach_ = true;  // some point of the front was estimated under the target
  int epoch_ = 0;
  double last_finetune_seconds_ = 0;
  std::string last_validation_;
  std::map<int, Verified> verified_;
  std::map<int, double> timed_ratio_;  // front index -> whole-model latency over the original's, timed side by side
  size_t best_attempt_ = 0;
  std::optional<graph::Graph> best_adapted_;
  graph::Graph adapted_;
};

}  // namespace

void check_options(const AdaptOptions& options) {
  if (options.speedup && options.latency_ms) throw SearchError("give --speedup or --latency-ms, not both");
  if (options.speedup && !(*options.speedup > 1)) throw SearchError("--speedup must be above 1 (it is the wanted ratio of latencies, e.g. 2.5)");
  if (options.latency_ms && !(*options.latency_ms > 0)) throw SearchError("--latency-ms must be a positive number of milliseconds");
  if (!(options.max_acc_drop >= 0)) throw SearchError("--max-acc-drop (or --max-mae-increase) must be zero or more");
  if (options.budget_seconds < 0 || (options.budget_seconds > 0 && options.budget_seconds < 60)) {
    throw SearchError("a budget under a minute cannot fine-tune anything; give at least --budget 5m (or none)");
  }
  if (options.finetune_epochs < 1) throw SearchError("--finetune-epochs must be at least 1");
  if (options.finetune_lr && !(*options.finetune_lr > 0)) throw SearchError("--finetune-lr must be positive");
  if (options.finetune_optimizer && *options.finetune_optimizer != "sgd" && *options.finetune_optimizer != "adamw") {
    throw SearchError("--optimizer must be sgd or adamw, not '" + *options.finetune_optimizer + "'");
  }
  if (options.candidates_per_layer < 1) throw SearchError("--candidates-per-layer must be at least 1");
  if (options.max_candidate_error && !(*options.max_candidate_error > 0)) throw SearchError("--max-candidate-error must be positive (a normalised error; 1 is as far off as a zero output)");
  if (options.subsample < 1) throw SearchError("--subsample must be at least 1 (every position)");
  if (options.depth < 1 || options.depth > 2) throw SearchError("--depth must be 1 or 2");
  if (options.calibration_images < 2 || options.held_out_images < 1 || options.held_out_images >= options.calibration_images) {
    throw SearchError("--calibration-images must exceed --held-out-images, which must be at least 1");
  }
  if (options.max_attempts < 1) throw SearchError("--max-attempts must be at least 1");
  if (options.max_layers < 0) throw SearchError("--max-layers must be zero (all) or more");
  if (options.threads < 1) throw SearchError("--threads must be at least 1 (the target's cores latency is measured with)");
  if (options.train_threads < 0) throw SearchError("--train-threads must be zero (every core) or more");
  if (options.distill_steps < 0) throw SearchError("--distill-steps must be zero (the decomposed weights as they are) or more");
  if (options.sensitivity_images < 1) throw SearchError("--sensitivity-images must be at least 1");
  const auto known = rules::rule_names();
  for (const auto& rule : options.rules) {
    if (std::find(known.begin(), known.end(), rule) == known.end()) {
      std::string names;
      for (const auto& name : known) names += (names.empty() ? "" : ", ") + name;
      throw SearchError("unknown rule '" + rule + "'; the rules are " + names);
    }
  }
}

AdaptResult adapt(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks) {
  check_options(options);
  return AdaptRun(model, options, callbacks).run();
}

double parse_duration(const std::string& text) {
  static const std::regex pattern(R"(^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$)");
  std::smatch match;
  if (text.empty() || !std::regex_match(text, match, pattern) || (!match[1].matched && !match[2].matched && !match[3].matched)) {
    throw SearchError("'" + text + "' is not a duration; write e.g. 30m, 1h30m, 90s or 45 (seconds)");
  }
  double seconds = 0;
  if (match[1].matched) seconds += 3600 * std::stod(match[1].str());
  if (match[2].matched) seconds += 60 * std::stod(match[2].str());
  if (match[3].matched) seconds += std::stod(match[3].str());
  return seconds;
}

}  // namespace gos::search
