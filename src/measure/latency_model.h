#pragma once
// The public face of fitting and checking the latency predictor on the zoo: which operators are
// measured (every operator of the zoo models and a spread of their rule candidates), the
// held-out accuracy, and whole-model predictions against measurements.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "graph/graph.h"
#include "measure/cache.h"
#include "measure/predictor.h"

namespace gos::measure {

// Every compute operator of the named zoo models (zoo::inference_graph: batch norms folded,
// activations fused into their producers; distinct operators once)
// and, for each one the rules apply to, up to `candidates_per_op` of its depth-1 candidates
// spread over their MACs; and which operator each of those candidates replaces.
struct ZooOperators {
  std::vector<OpToMeasure> ops;
  std::set<std::pair<std::string, std::string>> original_and_candidate;  // canonical keys
};
ZooOperators zoo_operators(const std::vector<std::string>& models, int candidates_per_op);

struct ModelCheck {
  std::string model;
  double measured_ms = 0;      // the whole model, timed
  double ops_measured_ms = 0;  // its operators and structural nodes timed alone, summed (each with the call overhead)
  double predicted_ms = 0;     // as predict_model_latency predicts it, with the overheads fitted on these models
  double error() const { return measured_ms > 0 ? (predicted_ms - measured_ms) / measured_ms : 0; }
};

struct OpPrediction {
  std::string kinds;  // the predictor's kind of each statement, e.g. "conv conv1x1"
  int64_t macs = 0;
  double measured_ms = 0, predicted_ms = 0;
  std::string instructions;  // the operator in gos's notation (ir::print), shapes included
};

// The search's screen (left_untimed) on held-out predictions of the zoo's candidates against
// their operators' (each distinct pair once).
struct ScreenAccuracy {
  size_t faster = 0;          // candidates measured at least 5% faster than their operator
  size_t faster_kept = 0;     // of them, timed by the screen (not predicted slower)
  size_t slower = 0;          // the other candidates
  size_t slower_skipped = 0;  // of them, predicted slower: not timed
};

struct LatencyModelReport {
  std::string backend, machine;
  int threads = 1;
  PredictorAccuracy held_out;  // each zoo operator predicted with its statements' fold held out
  std::vector<OpPrediction> held_out_ops;
  ScreenAccuracy screen;
  // nn-Meter's protocol: a random fifth of the rest (is_in_random_fifth), fitted on the others, so
  // configurations of forms the fit has seen; comparable with the accuracy nn-Meter reports.
  PredictorAccuracy random_held_out;
  size_t n_train = 0;  // operators fitted on per fold, on average
  size_t newly_measured = 0;
  // Of the measurements fitted and held out: over kNoisySpread, most were taken while the machine
  // was unsteady, and the accuracy above is not what a quiet machine's measurements give.
  double median_spread = 0;
  // Of the measurements of more than one sweep, the share whose sweeps' medians agreed within
  // +-10%: how far single timings repeat on this machine, which bounds the accuracy any predictor
  // can be shown to have on them (NaN when no measurement has two sweeps).
  double sweeps_within_10pct = 0;
  size_t n_swept = 0;
  double overhead_per_node_ms = 0;
  std::map<std::string, double> structural_ms_per_element;  // as WholeModelOverheads has it
  // What timing an operator alone adds beyond the operator: a one-element copy timed alone.
  // Whole-model predictions pay it once, not once per operator.
  double call_overhead_ms = 0;
  std::vector<ModelCheck> models;
};

// The held-out accuracy, on zoo_operators(models, candidates_per_op).ops, of predictors fitted on the
// cached measurements of this backend, threads and machine (nothing is measured): each of the
// five folds of statements held out in turn. Throws MeasureError when the cache has too few.
LatencyModelReport evaluate_latency_model(const LatencyCache& cache, Backend backend, int threads,
                                          const std::vector<std::string>& models, int candidates_per_op,
                                          const std::function<void(size_t, size_t)>& on_progress = {});

// The seed of the sampled training operators, fixed so that every fit samples the same ones.
constexpr uint64_t kSampledOperatorsSeed = 5;

// Measures what the cache lacks among zoo_operators(models, candidates_per_op).ops and
// sampled_operators(sampled_count, kSampledOperatorsSeed) (training only), reports the held-out
// accuracy, checks whole-model predictions for `models`, and stores the predictor fitted on every
// measurement in the cache (load_predictor reads it).
LatencyModelReport fit_latency_model(LatencyCache& cache, Backend backend, int threads, const std::vector<std::string>& models,
                                     int candidates_per_op, size_t sampled_count,
                                     const std::function<void(const std::string&, size_t, size_t)>& on_progress = {});

// Stores `predictor` as the one load_predictor reads for this backend, threads and machine.
void store_predictor(LatencyCache& cache, Backend backend, int threads, const LatencyPredictor& predictor);

// The stored predictor; throws MeasureError saying to run `gos latency-model fit` when none.
LatencyPredictor load_predictor(const LatencyCache& cache, Backend backend, int threads);

// What a whole model adds to its operators' times, as `fit_latency_model` fitted it on the zoo:
// each operator timed alone paid a call the model pays once, and each node (structural ones
// included) moves data.
struct WholeModelOverheads {
  double call_overhead_ms = 0, overhead_per_node_ms = 0;
  // A structural node's time per output element, by op type, without its call: the median over
  // the zoo's nodes of that type timed alone (mixer-s's nine layer normalisations are a third of
  // its time on mobile). A type the zoo lacks counts in the per-node overhead only.
  std::map<std::string, double> structural_ms_per_element;
  double whole_model_ms(double operators_ms, size_t operators, size_t nodes) const;
  double structural_ms(const graph::Graph& model, const graph::Node& node) const;
};

// A model's latency predicted without measuring anything: every compute node's operator by the
// stored predictor, and the whole model with the stored overheads.
struct ModelLatencyPrediction {
  std::vector<double> node_ms;  // per compute node, in the graph's order
  double operators_ms = 0;      // their sum
  double structural_ms = 0;     // the structural nodes, by their op types' times per element
  WholeModelOverheads overheads;
  double total_ms = 0;
};
// Throws MeasureError saying to run `gos latency-model fit` when the cache has no predictor.
ModelLatencyPrediction predict_model_latency(const LatencyCache& cache, Backend backend, int threads, const graph::Graph& model);

}  // namespace gos::measure
