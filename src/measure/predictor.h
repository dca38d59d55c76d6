#pragma once
// The public face of the latency predictor: an operator's latency on a backend estimated from
// its instructions, fitted to cached measurements, so that the search can score thousands of
// configurations without timing each.
//
// The model is a sum over the operator's statements: each statement's kernel kind (dense conv,
// 1x1 conv, depthwise, grouped conv, linear, matmul, pooling, shift, elementwise, generic) has
// its own power law t = exp(a) * MACs^b * IO^c * W^d * taps^e * tile^f * positions^g (MACs,
// input+output bytes and weight bytes each plus one unit; window taps; how much the output
// channels overfill 8-wide vector tiles; output positions), fitted by Levenberg-Marquardt on the relative error of the operators'
// summed times. Power laws follow kernels whose efficiency grows with size, which a straight
// line cannot. Plain C++ (plus Eigen in the .cpp).
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

class LatencyPredictor {
 public:
  // Least squares on relative error over (operator, measured median ms) pairs.
  static LatencyPredictor fit(const std::vector<ir::OpExpr>& ops, const std::vector<double>& latency_ms);
  static LatencyPredictor from_json(const std::string& json);  // throws MeasureError if malformed
  std::string to_json() const;

  double predict_ms(const ir::OpExpr& op) const;
  size_t trained_on() const { return trained_on_; }

 private:
  std::vector<double> weights_;
  size_t trained_on_ = 0;
};

// One statement as the predictor sees it: its kind and log features [1, log MACs, log IO, log W,
// log taps, log tile waste, log positions].
struct StatementFeatures {
  size_t kind = 0;
  std::vector<double> z;
};
std::vector<StatementFeatures> latency_features(const ir::OpExpr& op);
const std::vector<std::string>& latency_kinds();
// The kernel kind the predictor gives a statement ("conv", "conv1x1", "depthwise", ...).
std::string statement_kind(const ir::OpExpr& op, size_t statement);

PredictorAccuracy evaluate(const LatencyPredictor& predictor, const std::vector<ir::OpExpr>& ops,
                           const std::vector<double>& latency_ms);

// The deterministic held-out fifth of operators (by a hash of the canonical key): never fitted
// on when accuracy is reported.
bool is_held_out(const ir::OpExpr& op);

}  // namespace gos::measure
