// What the stages of one `gos adapt` run share (see run_context.h).
#include "search/run_context.h"

#include "search/distributed.h"
#include "search/int8.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "lowering/compute_threads.h"
#include "measure/latency_model.h"
#include "search/adapted.h"
#include "util/interrupt.h"
#include "util/stable_hash.h"
#include "util/writable_folder.h"

namespace gos::search {

namespace {

using nlohmann::json;

constexpr double kBudgetRecordSeconds = 5;  // how often the time spent is journaled during a stage

// The model whose operators the search replaces: the given one, or with --subsample N the one
// computing only every Nth position before its global pooling.
graph::Subsampled searched_base(const graph::Graph& model, const AdaptOptions& options) {
  try {
    return graph::subsample_pooled_positions(model, options.subsample);
  } catch (const graph::GraphError& error) {
    throw SearchError(fmt::format("--subsample {}: {}; leave --subsample out for this model", options.subsample, error.what()));
  }
}

// Everything that changes results.
json bound_settings(const RunContext& run) {
  const AdaptOptions& options = run.options;
  json bound{{"model", weights_fingerprint(run.model)},
             {"data", options.data},
             // The cache's name: a journal whose latencies were measured the way an older gos
             // ran the backend is not resumed with them.
             {"backend", measure::cache_name(options.backend)},
             {"threads", options.threads},
             {"depth", options.depth},
             {"rules", options.rules},
             {"max_layers", options.max_layers},
             {"candidates_per_layer", options.candidates_per_layer},
             {"calibration_images", options.calibration_images},
             {"held_out_images", options.held_out_images},
             {"distill_steps", options.distill_steps},
             // max_candidate_error is not bound: it only narrows what the search sees, which is
             // recomputed on resume, and attempts are journaled by configuration.
             {"sensitivity_images", options.sensitivity_images},
             {"seed", options.seed}};
  // Recorded only when set, so that runs journaled before it existed resume.
  if (options.subsample > 1) bound["subsample"] = options.subsample;
  if (!options.narrow.empty()) bound["narrow"] = options.narrow;
  if (run.int8()) bound["precision"] = "int8";
  const data::InputFormat& input = options.input;
  if (!input.mean.empty()) bound["mean"] = input.mean;
  if (!input.std.empty()) bound["std"] = input.std;
  if (input.resize > 0) bound["resize"] = input.resize;
  if (!options.augment) bound["augment"] = false;
  return bound;
}

// What the ranks of a distributed run must share: what the journal binds, and what picks and
// fine-tunes the result (rank 0 decides those, but a rank launched otherwise was launched wrong).
json launch_settings(const RunContext& run) {
  const AdaptOptions& options = run.options;
  json settings = bound_settings(run);
  settings["speedup"] = options.speedup ? json(*options.speedup) : json();
  settings["latency_ms"] = options.latency_ms ? json(*options.latency_ms) : json();
  settings["max_acc_drop"] = options.max_acc_drop;
  settings["finetune_epochs"] = options.finetune_epochs;
  settings["finetune_lr"] = options.finetune_lr ? json(*options.finetune_lr) : json();
  settings["optimizer"] = options.finetune_optimizer ? json(*options.finetune_optimizer) : json();
  settings["label_weight"] = options.finetune_label_weight ? json(*options.finetune_label_weight) : json();
  settings["max_attempts"] = options.max_attempts;
  settings["budget"] = options.budget_seconds;
  settings["fold_preprocessing"] = options.fold_preprocessing;
  return settings;
}

// The constraint only picks points of the front, and attempts are journaled by configuration:
// a run resumed with another constraint reuses the search and every attempt it shares. Journals
// of gos versions that bound it are resumed too, their settings row rewritten without it.
void bind_settings(const RunContext& run, Journal& journal) {
  const json current = bound_settings(run);
  if (auto stored = journal.bound_settings()) {
    json earlier = json::parse(*stored, nullptr, false);
    if (earlier.is_object()) {
      for (const char* unbound : {"speedup", "latency_ms", "max_acc_drop"}) earlier.erase(unbound);
      if (earlier == current) journal.rebind_settings(current.dump());
    }
  }
  journal.bind_settings(current.dump());
}

// One run per output folder: a second gos adapt on it would write the same journal entries and
// files. The lock is the kernel's, so a run killed in any way leaves none behind.
void take_the_output_folder(RunContext& run) {
  const auto& out = run.options.out;
  std::error_code error;
  std::filesystem::create_directories(out, error);
  if (error) {
    const std::string why = util::why_not_writable(out);
    throw SearchError("cannot create the output folder " + out.string() + ": " + (why.empty() ? error.message() : why) +
                      "; choose another -o folder");
  }
  try {
    run.lock.emplace(out / "run.lock");
  } catch (const std::system_error& failed) {
    const std::string why = util::why_not_writable(out);
    throw SearchError("cannot write in the output folder " + out.string() + ": " + (why.empty() ? failed.code().message() : why) +
                      "; choose another -o folder");
  }
  if (!run.lock->held()) {
    const std::string holder = run.lock->holder().empty() ? "another process" : "another gos (pid " + run.lock->holder() + ")";
    throw SearchError(out.string() + " is in use by " + holder + " adapting a model there; wait for it to finish, or choose another "
                      "-o folder");
  }
}

report::AdaptReport base_report(const RunContext& run) {
  const AdaptOptions& options = run.options;
  report::AdaptReport r;
  r.model = options.model_label;
  r.data = options.data;
  r.target = options.target;
  r.backend = measure::to_string(options.backend);
  r.precision = measure::to_string(options.precision);
  r.threads = options.threads;
  r.machine = measure::machine_fingerprint();
  r.seed = options.seed;
  r.metric = run.task->metric();
  r.target_speedup = options.speedup;
  r.target_latency_ms = options.latency_ms;
  if (!options.speedup && !options.latency_ms) r.target_speedup = 2.5;
  r.max_quality_drop = options.max_acc_drop;
  return r;
}

}  // namespace

Layer::Layer(const graph::Node& operator_node)
    : node(&operator_node), original(rules::original(*operator_node.op, operator_node.weights)) {}

double Layer::fastest_ms(size_t faster_index) const {
  return faster_fp32_ms.empty() ? faster_ms[faster_index] : std::min(faster_ms[faster_index], faster_fp32_ms[faster_index]);
}

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

int changed_layers(const Configuration& configuration) {
  return static_cast<int>(std::count_if(configuration.choice.begin(), configuration.choice.end(), [](int c) { return c != 0; }));
}

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

RunContext::RunContext(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks)
    : model(model), subsampled_model(searched_base(model, options)), options(options), callbacks(callbacks), start_(Clock::now()) {}

void RunContext::open() {
  if (model.inputs.size() != 1) {
    throw SearchError("gos adapt feeds models with one input; this one has " + std::to_string(model.inputs.size()) + " inputs");
  }
  data::DataSpec spec = data::parse_data_spec(options.data);
  spec.input = options.input;
  spec.input.shape = model.inputs[0].shape;
  task = load_task(spec);
  if (model.inputs[0].shape != task->sample_shape()) {
    throw SearchError("the model reads " + ir::shape_text(model.inputs[0].shape) + " but the samples of " + options.data + " are " +
                      ir::shape_text(task->sample_shape()));
  }
  if (model.outputs.size() != 1) {
    throw SearchError("gos adapt scores models with one output; this one has " + std::to_string(model.outputs.size()) + " outputs");
  }
  if (const std::string misfit = task->output_misfit(model.outputs[0].shape); !misfit.empty()) {
    throw SearchError(misfit + " (--data " + options.data + ")");
  }
  calibration = task->calibration_inputs(options.calibration_images, options.seed);
  agree_on_settings(*this, launch_settings(*this));
  if (root()) {
    take_the_output_folder(*this);
    if (options.restart) remove_earlier_run();
    journal.emplace(options.out / "run.sqlite");
    cache.emplace(options.cache.empty() ? measure::default_cache_path() : options.cache);
  } else {
    // The other ranks write nothing to the output folder (rank 0's, perhaps on a shared disk):
    // their journal is replaced by copies of rank 0's, and they time nothing.
    rank_folder.emplace("gos-rank");
    journal.emplace(rank_folder->file("run.sqlite"));
    cache.emplace(rank_folder->file("latency.sqlite"));
  }
  if (auto spent = journal->text("budget", "spent_seconds")) spent_before_ = std::stod(*spent);
  bind_settings(*this, *journal);
  report = base_report(*this);
  say_when_no_predictor_helps();
}

// The first thing a run on a fresh machine says: every candidate will be timed, and what a
// predictor would save. Not when the candidates were timed already (a resumed run).
void RunContext::say_when_no_predictor_helps() {
  if (options.time_every_candidate || journal->text("stage_seconds", "candidates") || stored_predictor() || !callbacks.on_note) return;
  callbacks.on_note(fmt::format(
      "no latency predictor for {} ({} thread{}) in {}: every candidate is timed. `gos latency-model fit --backend {}{}` "
      "(6-10 minutes, once per machine and backend) stores one; with it, gos adapt does not time candidates it predicts "
      "far slower, which took 10% off the candidates stage on resnet20 and 34% on mobilenetv2s (docs/latency.md)",
      measure::to_string(options.backend), options.threads, options.threads == 1 ? "" : "s", cache->path().string(),
      measure::to_string(options.backend), options.cache.empty() ? "" : " --cache " + options.cache.string()));
}

void RunContext::stage(const std::string& name, const std::function<void()>& work, const std::string& journal_key) {
  const auto begin = Clock::now();
  summary.clear();
  work();
  double seconds = seconds_since(begin);
  // Fine-tuning and verifying repeat per attempt: each repetition is its own stage.
  const auto repeats = std::count_if(report.stages.begin(), report.stages.end(), [&](const report::StageTime& done) {
    return done.stage == name || done.stage.starts_with(name + " (attempt ");
  });
  const std::string label = repeats == 0 ? name : fmt::format("{} (attempt {})", name, repeats + 1);
  // A resumed run reports the time the stage took when it was done, not the journal lookup.
  const std::string key = journal_key.empty() ? label : name + "|" + journal_key;
  const auto recorded = journal->text("stage_seconds", key);
  if (recorded && std::stod(*recorded) >= seconds) {
    seconds = std::stod(*recorded);
  } else {
    journal->put_text("stage_seconds", key, exact_text(seconds));
  }
  report.stages.push_back({label, seconds});
  record_budget_spent();
  if (callbacks.on_stage) callbacks.on_stage(name, summary);
}

void RunContext::progress(const std::string& stage, int64_t done, int64_t total, const std::string& detail) {
  // Between units of work: what is finished is journaled whole.
  util::stop_if_interrupted();
  // Items are journaled one by one except fine-tuning's batches, which a killed run redoes.
  if (stage != "finetune" && seconds_since(budget_recorded_) > kBudgetRecordSeconds) record_budget_spent();
  if (callbacks.on_progress) callbacks.on_progress(stage, done, total, detail);
}

// Fine-tuning settings are not bound to the run: changed, they reuse every search stage and
// fine-tune again (attempts are journaled under this recipe's fingerprint).
std::string RunContext::finetune_fingerprint() const {
  json recipe{{"epochs", options.finetune_epochs},
              {"lr", finetune_lr()},
              {"optimizer", finetune_optimizer()},
              {"batch_norms", was_batch_normalised() ? "restored" : "none"}};
  // Recorded only when changed, so that runs journaled before it existed keep their attempts.
  if (finetune_distillation().alpha != train::Distillation{}.alpha) recipe["label_weight"] = 1 - finetune_distillation().alpha;
  return util::stable_hash_hex(recipe.dump()).substr(0, 8);
}

train::Distillation RunContext::finetune_distillation() const {
  train::Distillation distillation{.teacher = model};
  if (options.finetune_label_weight) distillation.alpha = 1 - *options.finetune_label_weight;
  return distillation;
}

train::TrainOptions RunContext::finetune_training(int epochs, double budget_seconds,
                                                  const std::function<void(graph::GraphModule&)>& prepare_student) const {
  return {.epochs = epochs,
          .optimizer = finetune_optimizer(),
          .learning_rate = finetune_lr(),
          .augment = options.augment,
          .seed = options.seed,
          .threads = options.train_threads,
          .distillation = finetune_distillation(),
          .budget_seconds = budget_seconds,
          .restore_batch_norms = was_batch_normalised(),
          .prepare_student = prepare_student,
          .group = options.group};
}

double RunContext::finetune_lr() const { return options.finetune_lr.value_or(task->default_learning_rate()); }
std::string RunContext::finetune_optimizer() const { return options.finetune_optimizer.value_or(task->default_optimizer()); }

// Convolutional networks were trained with batch norms (folded since); transformer-style ones
// (layer norms) were not, and batch statistics over their tokens hurt them.
bool RunContext::was_batch_normalised() const {
  return std::none_of(model.nodes.begin(), model.nodes.end(), [](const graph::Node& node) { return node.op_type == "LayerNormalization"; });
}

std::optional<double> RunContext::uniform_narrowing() const {
  if (!options.narrow.starts_with("l1:")) return std::nullopt;
  return std::stod(options.narrow.substr(3));
}

double RunContext::target_latency_ms() const {
  if (options.latency_ms) return *options.latency_ms;
  return original_timing.median_ms / options.speedup.value_or(2.5);
}

// On a machine another process keeps busy, a libtorch pool with a thread per core waits at every
// step for the thread that shares its core, and trains slower than one thread would (figures in
// docs/train.md). So the pool takes the cores the others leave, measured over the time since the
// last choice (at least a second of it).
void RunContext::use_training_threads() {
  int threads = options.train_threads;
  if (threads <= 0) {
    const int cores = util::machine_cores();
    threads = cores;
    if (training_threads_ > 0 && recent_others_.seconds() < 1) {
      threads = training_threads_;
    } else if (recent_others_.seconds() >= 1) {
      threads = std::clamp(cores - static_cast<int>(std::floor(recent_others_.cores() + 0.5)), 1, cores);
    }
    recent_others_.restart();
  }
  training_threads_ = threads;
  fewest_training_threads_ = fewest_training_threads_ > 0 ? std::min(fewest_training_threads_, threads) : threads;
  lowering::set_compute_threads(threads);
}

void RunContext::remove_earlier_run() const {
  for (const char* name : {"run.sqlite", "run.sqlite-wal", "run.sqlite-shm", "adapted.onnx", "adapted.pt", "report.json", "report.html"}) {
    std::error_code error;
    std::filesystem::remove(options.out / name, error);
    if (error) {
      throw SearchError("--restart: cannot remove " + (options.out / name).string() + " (" + error.message() + "); remove it by hand");
    }
  }
}

std::vector<double> RunContext::latencies_ms(const std::vector<measure::OpToMeasure>& ops, const std::string& stage_name,
                                             std::optional<measure::Precision> precision) {
  const measure::Precision timed_in = precision.value_or(options.precision);
  // The run's own precision keeps the section older journals wrote.
  const std::string section = timed_in == options.precision ? "latency" : "latency_" + std::string(measure::to_string(timed_in));
  std::vector<double> result(ops.size());
  std::vector<measure::OpToMeasure> missing;
  std::vector<size_t> missing_at;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (auto known = journal->text(section, util::stable_hash_hex(ops[i].op.canonical_key()))) {
      result[i] = std::stod(*known);
    } else {
      missing.push_back(ops[i]);
      missing_at.push_back(i);
    }
  }
  if (missing.empty()) return result;
  const measure::BenchOptions bench{.threads = options.threads, .precision = timed_in, .warmup = 5, .min_runs = 15, .budget_seconds = 0.2};
  auto timings = measure::measure_cached(*cache, missing, options.backend, bench, nullptr, [&](size_t done, size_t total) {
    progress(stage_name, static_cast<int64_t>(done), static_cast<int64_t>(total), "timing operators");
  });
  std::set<std::string> written;  // layers of one shape are one operator: journal it once
  for (size_t j = 0; j < missing.size(); ++j) {
    result[missing_at[j]] = timings[j].median_ms;
    const std::string key = util::stable_hash_hex(missing[j].op.canonical_key());
    if (written.insert(key).second) journal->put_text(section, key, exact_text(timings[j].median_ms));
  }
  return result;
}

measure::CacheKey RunContext::whole_model_cache_scope() const {
  return {measure::cache_name(options.backend, options.precision), options.threads, measure::machine_fingerprint(), ""};
}

const ir::Tensor& RunContext::int8_calibration() {
  if (!int8_calibration_) int8_calibration_ = task->calibration_inputs(kInt8CalibrationSamples, options.seed);
  return *int8_calibration_;
}

double RunContext::validation_quality(const graph::Graph& graph, int64_t samples) const {
  if (!int8()) return task->validation_quality(graph, samples);
  return fake_quantized_validation_quality(graph, calibration, *task, samples);
}

double RunContext::original_test_quality() {
  if (auto known = journal->text("verify", "original_accuracy")) return std::stod(*known);
  const double quality = task->test_quality(model);
  journal->put_text("verify", "original_accuracy", exact_text(quality));
  return quality;
}

const measure::LatencyPredictor* RunContext::stored_predictor() {
  if (!predictor_ && !predictor_missing) {
    if (int8()) {
      predictor_missing = "latency predictors are fitted on fp32 timings, and int8 kernels rank operators differently";
      return nullptr;
    }
    try {
      predictor_ = measure::load_predictor(*cache, options.backend, options.threads);
    } catch (const measure::MeasureError& error) {
      predictor_missing = error.what();
    }
  }
  return predictor_ ? &*predictor_ : nullptr;
}

std::string RunContext::distilled_key(const Layer& layer, size_t candidate) const {
  return layer.node->name + "|" + util::stable_hash_hex(layer.faster[candidate].op.canonical_key());
}

const rules::Candidate& RunContext::candidate_of(const Layer& layer, int option) {
  return layer.faster[layer.selected[static_cast<size_t>(operator_option(layer, option) - 1)]];
}

rules::Candidate RunContext::trained_candidate(const Layer& layer, size_t selected_index) const {
  rules::Candidate candidate = candidate_of(layer, static_cast<int>(selected_index) + 1);
  candidate.weights = layer.distilled[selected_index].weights;
  return candidate;
}

std::map<std::string, rules::Candidate> RunContext::choices(const Configuration& configuration) const {
  std::map<std::string, rules::Candidate> chosen;
  for (size_t l = 0; l < layers.size(); ++l) {
    const int option = operator_option(layers[l], configuration.choice[l]);
    if (option > 0) chosen.emplace(layers[l].node->name, trained_candidate(layers[l], static_cast<size_t>(option - 1)));
  }
  return chosen;
}

std::set<std::string> RunContext::fp32_layers(const Configuration& configuration) const {
  std::set<std::string> fp32;
  for (size_t l = 0; l < layers.size(); ++l) {
    if (keeps_fp32(layers[l], configuration.choice[l])) fp32.insert(layers[l].node->name);
  }
  return fp32;
}

graph::Graph RunContext::configured(const Configuration& configuration) const {
  graph::Graph graph = replace_operators(base, choices(configuration));
  const auto fp32 = fp32_layers(configuration);
  for (auto& node : graph.nodes) {
    if (fp32.count(node.name)) quant::keep_in_fp32(node);
  }
  return graph;
}

std::map<std::string, std::string> RunContext::derivations(const Configuration& configuration) const {
  std::map<std::string, std::string> changed = narrowed_groups;
  for (size_t l = 0; l < layers.size(); ++l) {
    const Layer& layer = layers[l];
    const int option = configuration.choice[l];
    const std::string precision = keeps_fp32(layer, option) ? " in fp32" : "";
    if (operator_option(layer, option) > 0) {
      changed[layer.node->name] = candidate_of(layer, option).derivation_text() + precision;
    } else if (!precision.empty()) {
      changed[layer.node->name] = "original" + precision;
    }
  }
  return changed;
}

bool RunContext::changes_model(const Configuration& configuration) const {
  return base_changed() || changed_layers(configuration) > 0;
}

// By the configuration, not its place on the front, which a change of the search moves.
std::string RunContext::attempt_key(int front_index) const {
  return fmt::format("config{}@{}", util::stable_hash_hex(fmt::format("{}", fmt::join(front[front_index].choice, ","))).substr(0, 12),
                     finetune_fingerprint());
}

// Why a target is out of reach: the time no choice of candidates changes, which is the work
// between the searched operators (whole model less them) and the layers with no candidate.
std::string RunContext::unchangeable_time() const {
  double searched_ms = 0, unchangeable_ms = 0;
  for (const auto& layer : layers) {
    searched_ms += layer.original_ms;
    if (layer.distilled.empty()) unchangeable_ms += layer.original_ms;
  }
  unchangeable_ms += std::max(0.0, base_timing.median_ms - searched_ms);
  return fmt::format("{:.3f} ms of the model's {:.3f} ms is in what no candidate replaces: operators the rules do not "
                     "apply to, layers without a faster candidate (or that the budget left unsearched) and the work "
                     "between operators",
                     unchangeable_ms, base_timing.median_ms);
}

// A goal out of reach of the rules may be within reach of fewer positions: said when computing
// every 2nd position the pooling reads would save a fifth of the MACs or more.
// `lead` starts the sentence, e.g. "; " or " Try ".
std::string RunContext::subsample_hint(const std::string& lead) const {
  if (subsampled()) return "";
  try {
    const double halved = static_cast<double>(graph::total_macs(graph::subsample_pooled_positions(model, 2).graph));
    if (halved > 0.8 * static_cast<double>(graph::total_macs(model))) return "";
    return fmt::format("{}--subsample 2, which computes {:.0f}% of the model's MACs before the search (docs/search.md)", lead,
                       100 * halved / static_cast<double>(graph::total_macs(model)));
  } catch (const graph::GraphError&) {
    return "";
  }
}

std::string RunContext::goal() const {
  const std::string speed = options.latency_ms ? fmt::format("at most {:.3f} ms", *options.latency_ms)
                                               : fmt::format("at least {:.2f}x faster", options.speedup.value_or(2.5));
  return fmt::format("{}, at most {:.2f} {} {}", speed, options.max_acc_drop, task->drop_unit(),
                     task->higher_is_better() ? "lost" : "added");
}

std::string RunContext::missed_goal_advice() const {
  const std::string hint = subsample_hint(" Try ");
  return hint.empty() ? hint : hint + ".";
}

report::ModelSummary RunContext::model_summary(const graph::Graph& graph, const measure::Timing& timing, double quality) const {
  report::ModelSummary s;
  (task->higher_is_better() ? s.accuracy : s.mae) = quality;
  s.median_ms = timing.median_ms;
  s.p10_ms = timing.p10_ms;
  s.p90_ms = timing.p90_ms;
  s.runs = timing.runs;
  s.macs = graph::total_macs(graph);
  s.params = graph::total_params(graph);
  return s;
}

}  // namespace gos::search
