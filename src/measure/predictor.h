#pragma once
// The public face of the latency predictor: an operator's latency on a backend estimated from
// its instructions, fitted to cached measurements, so that the search can score thousands of
// configurations without timing each.
//
// An operator's time is the sum of its statements' times plus an overhead per extra statement
// (usually negative: statements timed alone each paid a call, the operator pays one). A
// statement's log time is a plane per kind in its log MACs, bytes, weight bytes and elements in
// and out (which carries the trend between the sizes fitted on, where trees alone would give a
// step function), plus gradient-boosted regression trees on what the plane leaves, over features
// read off its recognised kernel: the kind (dense conv, 1x1, depthwise, grouped, linear, matmul,
// pool, shift, elementwise, generic), MACs, bytes in and out, weight bytes, output and input
// elements, MACs per output and per byte, window height, width, taps and dilation, 1-D or 2-D,
// channels in and out and whether they fill 4/8/16-wide vector tiles (XNNPACK's), output
// positions, stride, groups, activation and bias, and for statements no kernel covers, how they
// are written (reduction length, windowed reads, mixed-radix outputs, innermost extent). Trees
// learn the interactions (a dilated or 1x1 depthwise leaves XNNPACK's fast path) that a formula
// in MACs and bytes cannot. Measurements count by how much their runs agreed. The trees are fitted
// on single-statement operators; multi-statement ones fit the overhead. Plain C++.
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::measure {

struct PredictorAccuracy {
  double within_10pct = 0;  // share of operators predicted within +-10% (0..1)
  double within_20pct = 0;
  double rmse_ms = 0;
  double median_abs_error_pct = 0;
  size_t n_ops = 0;
};

struct RegressionTree {
  struct Node {
    int feature = -1;  // -1: a leaf
    double threshold = 0;
    int left = -1, right = -1;
    double value = 0;
  };
  std::vector<Node> nodes;
  double predict(const std::vector<double>& x) const;
};

class LatencyPredictor {
 public:
  // Fits on (operator, measured median ms) pairs; needs some single-statement operators.
  // `trust` (optional, one per operator) weighs the measurements: a noisy one should count less.
  static LatencyPredictor fit(const std::vector<ir::OpExpr>& ops, const std::vector<double>& latency_ms,
                              const std::vector<double>& trust = {});
  static LatencyPredictor from_json(const std::string& json);  // throws MeasureError if malformed
  std::string to_json() const;

  double predict_ms(const ir::OpExpr& op) const;
  double statement_ms(const std::vector<double>& features) const;
  size_t trained_on() const { return trained_on_; }

 private:
  double base_log_ms(const std::vector<double>& features) const;

  std::vector<std::vector<double>> planes_;  // per kind: log time as a plane (see predictor.cpp)
  double learning_rate_ = 0.1;
  std::vector<RegressionTree> trees_;
  double overhead_per_extra_statement_ms_ = 0;
  size_t trained_on_ = 0;
};

// A candidate must save this share of its operator's time to count as faster (the search's bar).
constexpr double kFasterThanItsOperator = 0.95;
// Whether the predictor's figure for `candidate` is sure enough to leave it untimed: not when a
// statement is of a form no kernel covers ("generic": mixer-s's grouped linears), whose held-out
// errors run to 60% either way.
bool screenable(const ir::OpExpr& candidate);
// Whether the search leaves a candidate untimed: it is screenable and the predictor puts it at
// kPredictedSlowerRatio times its operator's predicted time or more. Both are predictions, so a
// predictor fitted on a slower or faster day of the machine screens the same. Held out, this
// screen times 97.5-100% of the candidates that time faster and skips 37-61% of the others
// (`gos latency-model eval`, docs/latency.md).
constexpr double kPredictedSlowerRatio = 1.25;
inline bool left_untimed(bool candidate_screenable, double candidate_predicted_ms, double operator_predicted_ms) {
  return candidate_screenable && candidate_predicted_ms >= kPredictedSlowerRatio * operator_predicted_ms;
}

// The feature vector of each of the operator's statements (see latency_feature_names()).
std::vector<std::vector<double>> latency_features(const ir::OpExpr& op);
const std::vector<std::string>& latency_feature_names();
// The kernel kind the predictor gives a statement ("conv", "conv1x1", "depthwise", ...).
std::string statement_kind(const ir::OpExpr& op, size_t statement);

PredictorAccuracy evaluate(const LatencyPredictor& predictor, const std::vector<ir::OpExpr>& ops,
                           const std::vector<double>& latency_ms);
PredictorAccuracy accuracy_of(const std::vector<double>& predicted_ms, const std::vector<double>& measured_ms);

// Statements fall in one of five folds by a hash of their canonical form. statement_folds has
// bit f set when one of the operator's statements is in fold f: a predictor fitted on operators
// without fold f is checked on operators with it, none of whose fold-f statements it has seen.
constexpr unsigned kHeldOutFolds = 5;
unsigned statement_folds(const ir::OpExpr& op);

// The deterministic held-out fifth, fold 0: the sampled training operators never have a
// statement in it (sampled_operators.h).
bool is_held_out(const ir::OpExpr& op);

// A second fifth, drawn from the operators is_held_out leaves for fitting (by a hash of the whole
// operator's canonical form): other configurations of kernel forms the fit has seen, which is how
// nn-Meter holds out, where is_held_out holds out forms never fitted on.
bool is_in_random_fifth(const ir::OpExpr& op);
// The same draw for an operator already known to be outside fold 0, by its canonical key.
bool draws_random_fifth(const std::string& canonical_key);

}  // namespace gos::measure
