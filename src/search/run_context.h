#pragma once
// Internal to gos adapt: what the stages of one run share. The model and options, the run journal
// and the latency cache, the data's task, the budget, progress, the report being filled, and what
// each stage leaves for the next (the layers and their candidates, the front, the timed points).
// Each stage is a free function over this context, in a file of its own (search/stages.h), in the
// order docs/search.md describes them.
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "measure/cache.h"
#include "measure/predictor.h"
#include "search/adapt.h"
#include "search/adapt_task.h"
#include "search/budget_plan.h"
#include "search/candidates.h"
#include "search/evolution.h"
#include "search/journal.h"
#include "util/cpu_load.h"
#include "util/file_lock.h"
#include "util/scratch_folder.h"

namespace gos::search {

using Clock = std::chrono::steady_clock;

// One searched operator and what the stages learn about it.
struct Layer {
  explicit Layer(const graph::Node& operator_node);
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
  std::vector<bool> drop_estimated;         // per selected: estimated from its distilled error, not measured
  bool searched = false;                    // fidelity and sensitivity done within the budget
  // An int8 run's mixed precision: the same operators timed alone as the int8 model runs a layer
  // kept in fp32 (measure::Precision::Fp32InInt8, per `faster`), and the validation loss of the
  // int8 model with this layer alone kept in fp32 (usually below zero).
  double original_fp32_ms = NAN;
  std::vector<double> faster_fp32_ms;
  double fp32_drop = 0;
  // A candidate's time in the precision it runs fastest in (its int8 time in an fp32-only run).
  double fastest_ms(size_t faster_index) const;
};

// An attempt's side-by-side timing and test quality of the original and the adapted model.
struct Verified {
  measure::Timing original, adapted;
  double original_accuracy = 0, adapted_accuracy = 0;
  std::optional<measure::Timing> machine;  // the fixed loop timed right after; absent in older journals
  // An int8 run: `original` is the original's int8 form (post-training quantization) and `adapted`
  // the adapted model's, `original_accuracy` the fp32 original's; these are the other two models,
  // timed in the same side-by-side run.
  struct Fp32Forms {
    measure::Timing original, adapted;
    double original_int8_accuracy = 0, adapted_accuracy = 0;
  };
  std::optional<Fp32Forms> fp32;
};

class RunContext {
 public:
  RunContext(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks);

  // Loads the data (a model that cannot read it leaves nothing behind), then opens the journal and
  // the latency cache, binds the run's settings and starts the report.
  void open();

  // Runs one stage, times it (a resumed run reports the time the stage took when it was done) and
  // says its summary. `journal_key` tells repeated stages (one fine-tune per attempt) apart.
  void stage(const std::string& name, const std::function<void()>& work, const std::string& journal_key = {});
  void progress(const std::string& stage, int64_t done, int64_t total, const std::string& detail = {});

  // ---- the budget: --budget is the run's whole time, across restarts (run_budget.cpp) ----
  bool budgeted() const { return options.budget_seconds > 0; }
  double seconds_spent() const;
  double remaining_seconds() const;  // infinite without a budget
  void record_budget_spent();
  // The time spent by which the search stages (up to sensitivity) should be done: decided once,
  // when first asked, from the unit costs measured then, and journaled; infinite without a budget.
  double search_deadline();
  double search_seconds_left() { return search_deadline() - seconds_spent(); }
  // The cost of a sample through the model in evaluation and of an epoch of fine-tuning of
  // `model`, each timed on a few batches (run_budget.cpp); costs.distill_step_seconds and
  // costs.layer_seconds are kept up to date by the fidelity stage.
  void time_evaluation();
  // `prepare_student`: as fine-tuning will train it (train::TrainOptions), e.g. fake-quantized.
  double time_epoch(const graph::Graph& model, const std::function<void(graph::GraphModule&)>& prepare_student = {});
  // What verifying and exporting an attempt will take: kept back from fine-tuning.
  double after_finetune_seconds();
  UnitCosts costs;
  bool plan_reduced = false;  // the budget plan did less than asked somewhere (its notes say where)
  // Other processes' CPU use since this start of the run, in the report; over half a core, a note
  // says the machine was loaded.
  void note_the_machine_load();
  util::OtherLoad others;

  // ---- distributed runs (--distributed: search/distributed.cpp, docs/distributed.md) ----
  // Rank 0 owns the journal, the report and the files; the other ranks hold copies of its journal
  // in memory and write nothing to the output folder.
  bool distributed() const;
  bool root() const;
  int ranks() const;
  // What rank 0 alone does, timing or deciding (a timing beside other ranks' work would be
  // disturbed): it runs `work`, then the others run `work` on a copy of its journal, which holds
  // every result `work` needs, so that they time and decide nothing. Alone: `work`.
  void on_root_first(const std::string& tag, const std::function<void()>& work);
  // Units of work spread over the ranks, unit i on rank i % ranks: each unit's journal writes
  // reach rank 0's journal as soon as it is done (a rank that dies loses only the unit it was
  // on), and at the end every rank holds rank 0's journal. Alone: each unit in turn.
  void spread(const std::string& tag, size_t units, const std::function<void(size_t)>& work);
  // Rank 0's journal copied to the other ranks: the first time whole, then what it wrote since.
  void share_journal(const std::string& tag);

  // ---- settings ----
  std::string finetune_fingerprint() const;
  double finetune_lr() const;
  std::string finetune_optimizer() const;
  train::Distillation finetune_distillation() const;
  bool was_batch_normalised() const;
  // How fine-tuning trains (on every rank of a distributed run), and how time_epoch probes it.
  train::TrainOptions finetune_training(int epochs, double budget_seconds,
                                        const std::function<void(graph::GraphModule&)>& prepare_student) const;
  bool subsampled() const { return options.subsample > 1; }
  // --narrow: channel groups narrowed before the per-operator search (stage_narrow.cpp); with
  // l1:F, the plain baseline at that fraction, and no per-operator search.
  bool narrowing() const { return !options.narrow.empty(); }
  std::optional<double> uniform_narrowing() const;
  bool operator_search() const { return !uniform_narrowing(); }
  // The search starts from another model than the one given (subsampled or narrowed).
  bool base_changed() const { return subsampled() || !narrowed_groups.empty(); }
  double target_latency_ms() const;
  // Timing pins libtorch to the target's thread count; training and evaluation take the cores
  // other processes leave free (all of them unless --train-threads says otherwise).
  void use_training_threads();
  int training_threads() const { return training_threads_; }
  // --restart: the journal and everything written beside it removed before the run starts.
  void remove_earlier_run() const;
  void say_when_no_predictor_helps();

  // ---- int8 (--precision int8) ----
  bool int8() const { return options.precision == measure::Precision::Int8; }
  // The training samples int8 files are calibrated on (search/int8.h), drawn once.
  const ir::Tensor& int8_calibration();
  // Validation quality on the first `samples`: as the model computes in fp32, or in an int8 run
  // fake-quantized as its int8 form computes (calibrated on the recorded calibration images).
  double validation_quality(const graph::Graph& graph, int64_t samples) const;

  // ---- measurements shared by stages ----
  // Latencies of operators in the run's precision or `precision`: the journal, then the latency
  // cache, then measurement.
  std::vector<double> latencies_ms(const std::vector<measure::OpToMeasure>& ops, const std::string& stage_name,
                                   std::optional<measure::Precision> precision = std::nullopt);
  measure::CacheKey whole_model_cache_scope() const;
  double original_test_quality();
  // The predictor `gos latency-model fit` stored in the cache for this backend, threads and
  // machine, read once; null (the reason in predictor_missing) when there is none.
  const measure::LatencyPredictor* stored_predictor();

  // ---- the search's choices ----
  std::string distilled_key(const Layer& layer, size_t candidate) const;
  // Option 1.. of a layer's choice: its selected (distilled) candidates in order; 0 keeps the
  // original. An int8 run has each option twice: options_per_precision(layer) and up are the same
  // operators kept in fp32 (mixed precision).
  static int options_per_precision(const Layer& layer) { return static_cast<int>(layer.selected.size()) + 1; }
  static int operator_option(const Layer& layer, int option) { return option % options_per_precision(layer); }
  static bool keeps_fp32(const Layer& layer, int option) { return option >= options_per_precision(layer); }
  static const rules::Candidate& candidate_of(const Layer& layer, int option);
  rules::Candidate trained_candidate(const Layer& layer, size_t selected_index) const;
  std::map<std::string, rules::Candidate> choices(const Configuration& configuration) const;
  // The layers a configuration keeps in fp32 (none in an fp32 run).
  std::set<std::string> fp32_layers(const Configuration& configuration) const;
  // The searched model with the configuration's operators put in and its fp32 layers marked.
  graph::Graph configured(const Configuration& configuration) const;
  std::map<std::string, std::string> derivations(const Configuration& configuration) const;
  std::string attempt_key(int front_index) const;
  // Whether the configuration is worth fine-tuning: it replaces a layer, or the search started
  // from a changed model (narrowed or subsampled: faster even with no layer replaced).
  bool changes_model(const Configuration& configuration) const;

  // ---- words for the report ----
  std::string unchangeable_time() const;
  std::string subsample_hint(const std::string& lead) const;
  std::string goal() const;
  std::string missed_goal_advice() const;
  report::ModelSummary model_summary(const graph::Graph& graph, const measure::Timing& timing, double quality) const;

  // ---- what the run works on ----
  const graph::Graph& model;  // as given: the teacher, and what speed and accuracy are compared with
  const graph::Subsampled subsampled_model;  // with --subsample applied, and the nodes it changed
  graph::Graph base = subsampled_model.graph;  // what the search replaces operators of
  void set_base(graph::Graph narrowed) { base = std::move(narrowed); }
  // narrow: the derivation of each narrowed channel group, by group name ("narrow(g:k, 16)").
  std::map<std::string, std::string> narrowed_groups;
  const AdaptOptions& options;
  const AdaptCallbacks& callbacks;
  std::unique_ptr<AdaptTask> task;
  ir::Tensor calibration;  // the training samples whose activations are recorded
  std::optional<util::FileLock> lock;  // OUT/run.lock: one run per output folder
  std::optional<util::ScratchFolder> rank_folder;  // ranks other than 0: their journal's and cache's place
  std::optional<Journal> journal;  // opened once the data is known to be usable
  std::optional<measure::LatencyCache> cache;
  report::AdaptReport report;
  std::string summary;  // the current stage's one-line summary

  // ---- what the stages leave for the next ----
  std::vector<Layer> layers;                     // profile: hottest first
  double operators_ms = 0;                       // profile: every compute operator timed alone
  measure::Timing original_timing;               // profile: the model as given, whole
  measure::Timing base_timing;                   // profile: the searched model, whole
  double original_validation = 0;                // sensitivity
  double base_validation = 0;                    // sensitivity: the searched model's
  std::vector<Configuration> front;              // search: by latency
  std::map<int, double> timed_ratio;             // screen: front index -> whole-model latency over the original's, side by side
  int chosen_front_index = -1;                   // screen: the point fine-tuned first
  std::string why_unchanged;                     // screen: with none, why the original is written as it is
  bool target_within_reach = true;               // screen: some point was estimated under the target
  std::map<int, Verified> verified;              // verify: by front index
  graph::Graph adapted;                          // the model written
  std::optional<std::string> predictor_missing;  // why the cache holds no predictor (stored_predictor)

 private:
  std::optional<measure::LatencyPredictor> predictor_;
  std::optional<ir::Tensor> int8_calibration_;
  Clock::time_point start_;
  double spent_before_ = 0;  // of the budget, by the earlier starts of this run (journaled)
  Clock::time_point budget_recorded_;
  std::optional<double> search_deadline_;
  util::OtherLoad recent_others_;  // since the last choice of training threads
  int training_threads_ = 0;
  int fewest_training_threads_ = 0;  // the fewest chosen in this run (for the report)
  bool journal_shared_ = false;      // a distributed run: the other ranks hold rank 0's journal
};

// ---- small helpers the stages share ----

// A number as text that reads back to the same double: a resumed run must compute exactly what
// an uninterrupted one did (std::to_string keeps six decimals).
std::string exact_text(double value);
double seconds_since(Clock::time_point start);
std::string weights_fingerprint(const graph::Graph& model);
nlohmann::json timing_json(const measure::Timing& timing);
measure::Timing timing_from(const nlohmann::json& j);
// How many layers a configuration replaces (option 0 keeps the original).
int changed_layers(const Configuration& configuration);
// Rows [begin, end) of a batch of recorded inputs.
std::vector<ir::Tensor> rows(const std::vector<ir::Tensor>& tensors, int64_t begin, int64_t end);

}  // namespace gos::search
