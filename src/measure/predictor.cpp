// The statement-wise latency predictor (see predictor.h).
#include "measure/predictor.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "lowering/kernels.h"
#include "measure/measure.h"

namespace gos::measure {

namespace {

const std::vector<std::string>& kinds() {
  static const std::vector<std::string> names{"conv",   "conv1x1", "depthwise", "grouped_conv", "linear", "matmul",
                                              "pool",   "global_pool", "shift", "elementwise", "generic"};
  return names;
}

bool one_by_one(const lowering::Kernel& kernel) {
  if (kernel.spatial_rank == 2) return kernel.conv2d.kernel[0] == 1 && kernel.conv2d.kernel[1] == 1;
  return kernel.conv1d.kernel == 1;
}

std::string kind_of(const lowering::Kernel& kernel) {
  using lowering::KernelKind;
  switch (kernel.kind) {
    case KernelKind::Conv: {
      const int64_t groups = kernel.spatial_rank == 2 ? kernel.conv2d.groups : kernel.conv1d.groups;
      const int64_t channels = kernel.spatial_rank == 2 ? kernel.conv2d.in_channels : kernel.conv1d.in_channels;
      if (groups > 1 && groups == channels) return "depthwise";
      if (groups > 1) return "grouped_conv";
      return one_by_one(kernel) ? "conv1x1" : "conv";
    }
    case KernelKind::Linear: return "linear";
    case KernelKind::MatMul: return "matmul";
    case KernelKind::MaxPool:
    case KernelKind::AveragePool: return "pool";
    case KernelKind::GlobalAveragePool: return "global_pool";
    case KernelKind::Shift: return "shift";
    case KernelKind::Activation:
    case KernelKind::Add: return "elementwise";
    case KernelKind::Generic: return "generic";
  }
  return "generic";
}

uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

}  // namespace

std::string statement_kind(const ir::OpExpr& op, size_t statement) { return kind_of(lowering::recognise(op).at(statement)); }

const std::vector<std::string>& latency_kinds() { return kinds(); }

namespace {

// What a kernel's speed depends on beyond its MACs and bytes: the window it slides (taps), how
// well its output channels fill 8-wide vector tiles, and how many output positions it computes.
struct Shape {
  double taps = 1, channel_tile_waste = 1, positions = 1;
};

Shape shape_of(const lowering::Kernel& kernel) {
  Shape shape;
  int64_t out_channels = 0;
  if (kernel.kind == lowering::KernelKind::Conv || kernel.kind == lowering::KernelKind::Shift) {
    if (kernel.spatial_rank == 2) {
      shape.taps = static_cast<double>(kernel.conv2d.kernel[0] * kernel.conv2d.kernel[1]);
      out_channels = kernel.conv2d.out_channels / kernel.conv2d.groups;
    } else {
      shape.taps = static_cast<double>(kernel.conv1d.kernel);
      out_channels = kernel.conv1d.out_channels / kernel.conv1d.groups;
    }
  } else if (kernel.kind == lowering::KernelKind::Linear) {
    out_channels = kernel.linear.out_features;
  }
  if (out_channels > 0) shape.channel_tile_waste = static_cast<double>((out_channels + 7) / 8 * 8) / static_cast<double>(out_channels);
  const auto& output = kernel.single.output().shape;
  if (output.size() > 2) {
    for (size_t d = 2; d < output.size(); ++d) shape.positions *= static_cast<double>(output[d]);
  }
  return shape;
}

}  // namespace

std::vector<StatementFeatures> latency_features(const ir::OpExpr& op) {
  std::vector<StatementFeatures> statements;
  for (const auto& kernel : lowering::recognise(op)) {
    const size_t kind = static_cast<size_t>(std::find(kinds().begin(), kinds().end(), kind_of(kernel)) - kinds().begin());
    const ir::Cost cost = ir::cost(kernel.single);
    const Shape shape = shape_of(kernel);
    statements.push_back({kind,
                          {1.0, std::log1p(static_cast<double>(cost.macs + cost.other_ops) / 1e3),
                           std::log1p(static_cast<double>(cost.input_bytes + cost.output_bytes) / 1e3),
                           std::log1p(static_cast<double>(cost.weight_bytes) / 1e3), std::log(shape.taps),
                           std::log(shape.channel_tile_waste), std::log(shape.positions)}});
  }
  return statements;
}

namespace {

constexpr size_t kFeatures = 7;

double statement_ms(const std::vector<double>& theta, const StatementFeatures& s) {
  double exponent = 0;
  for (size_t j = 0; j < kFeatures; ++j) exponent += theta[s.kind * kFeatures + j] * s.z[j];
  return std::exp(std::clamp(exponent, -30.0, 30.0));
}

double op_ms(const std::vector<double>& theta, const std::vector<StatementFeatures>& op) {
  double total = 0;
  for (const auto& s : op) total += statement_ms(theta, s);
  return total;
}

// Start: per kind, a log-linear fit on the single-statement operators of that kind; kinds without
// any start at the median time with no slope.
std::vector<double> initial_theta(const std::vector<std::vector<StatementFeatures>>& ops, const std::vector<double>& y) {
  std::vector<double> theta(kinds().size() * kFeatures, 0.0);
  std::vector<double> sorted = y;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (size_t kind = 0; kind < kinds().size(); ++kind) {
    std::vector<size_t> rows;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].size() == 1 && ops[i][0].kind == kind) rows.push_back(i);
    }
    theta[kind * kFeatures] = std::log(median / 2);
    if (rows.size() < kFeatures + 2) continue;
    Eigen::MatrixXd x(rows.size(), kFeatures);
    Eigen::VectorXd target(rows.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      for (size_t j = 0; j < kFeatures; ++j) x(r, j) = ops[rows[r]][0].z[j];
      target(r) = std::log(y[rows[r]]);
    }
    Eigen::MatrixXd normal = x.transpose() * x;
    normal.diagonal().array() += 1e-3;
    Eigen::VectorXd w = normal.ldlt().solve(x.transpose() * target);
    for (size_t j = 0; j < kFeatures; ++j) theta[kind * kFeatures + j] = w(j);
  }
  return theta;
}

double loss(const std::vector<double>& theta, const std::vector<std::vector<StatementFeatures>>& ops, const std::vector<double>& y,
            double damping_toward_zero) {
  double total = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    double r = (op_ms(theta, ops[i]) - y[i]) / y[i];
    total += r * r;
  }
  for (size_t j = 0; j < theta.size(); ++j) {
    if (j % kFeatures) total += damping_toward_zero * theta[j] * theta[j];
  }
  return total;
}

}  // namespace

LatencyPredictor LatencyPredictor::fit(const std::vector<ir::OpExpr>& ops, const std::vector<double>& latency_ms) {
  if (ops.empty() || ops.size() != latency_ms.size()) throw MeasureError("the latency predictor needs measured operators to fit");
  std::vector<std::vector<StatementFeatures>> features;
  for (const auto& op : ops) features.push_back(latency_features(op));
  std::vector<double> theta = initial_theta(features, latency_ms);
  const size_t n = ops.size(), d = theta.size();
  const double ridge = 1e-4;  // slopes toward zero, for kinds with few operators
  double lambda = 1e-2, current = loss(theta, features, latency_ms, ridge);
  for (int iteration = 0; iteration < 100; ++iteration) {
    Eigen::MatrixXd jacobian = Eigen::MatrixXd::Zero(n, d);
    Eigen::VectorXd residual(n);
    for (size_t i = 0; i < n; ++i) {
      double total = 0;
      for (const auto& s : features[i]) {
        const double t = statement_ms(theta, s);
        total += t;
        for (size_t j = 0; j < kFeatures; ++j) jacobian(i, s.kind * kFeatures + j) += t * s.z[j] / latency_ms[i];
      }
      residual(i) = (total - latency_ms[i]) / latency_ms[i];
    }
    Eigen::MatrixXd normal = jacobian.transpose() * jacobian;
    Eigen::VectorXd gradient = jacobian.transpose() * residual;
    for (size_t j = 0; j < d; ++j) {
      if (j % kFeatures) {
        normal(j, j) += ridge;
        gradient(j) += ridge * theta[j];
      }
    }
    bool improved = false;
    for (int attempt = 0; attempt < 8 && !improved; ++attempt) {
      Eigen::MatrixXd damped = normal;
      damped.diagonal().array() += lambda * (1.0 + normal.diagonal().array());
      Eigen::VectorXd step = damped.ldlt().solve(-gradient);
      std::vector<double> next = theta;
      for (size_t j = 0; j < d; ++j) next[j] += step(j);
      const double candidate = loss(next, features, latency_ms, ridge);
      if (candidate < current) {
        theta = std::move(next);
        improved = current - candidate > 1e-10 * current;
        current = candidate;
        lambda = std::max(lambda / 3, 1e-7);
        if (!improved) break;
        improved = true;
      } else {
        lambda *= 4;
      }
    }
    if (!improved) break;
  }
  LatencyPredictor predictor;
  predictor.weights_ = std::move(theta);
  predictor.trained_on_ = n;
  return predictor;
}

double LatencyPredictor::predict_ms(const ir::OpExpr& op) const { return op_ms(weights_, latency_features(op)); }

std::string LatencyPredictor::to_json() const {
  nlohmann::json weights = nlohmann::json::object();
  for (size_t kind = 0; kind < kinds().size(); ++kind) {
    weights[kinds()[kind]] = std::vector<double>(weights_.begin() + static_cast<std::ptrdiff_t>(kind * kFeatures),
                                                 weights_.begin() + static_cast<std::ptrdiff_t>((kind + 1) * kFeatures));
  }
  return nlohmann::json{{"model", "per-kind power law"}, {"weights", weights}, {"trained_on", trained_on_}}.dump();
}

LatencyPredictor LatencyPredictor::from_json(const std::string& text) {
  try {
    auto json = nlohmann::json::parse(text);
    LatencyPredictor predictor;
    for (const auto& kind : kinds()) {
      auto values = json.at("weights").at(kind).get<std::vector<double>>();
      if (values.size() != kFeatures) throw MeasureError("a stored latency predictor has the wrong shape");
      predictor.weights_.insert(predictor.weights_.end(), values.begin(), values.end());
    }
    predictor.trained_on_ = json.at("trained_on").get<size_t>();
    return predictor;
  } catch (const nlohmann::json::exception& error) {
    throw MeasureError(std::string("a stored latency predictor is malformed (run gos latency-model fit again): ") + error.what());
  }
}

PredictorAccuracy evaluate(const LatencyPredictor& predictor, const std::vector<ir::OpExpr>& ops,
                           const std::vector<double>& latency_ms) {
  PredictorAccuracy accuracy;
  accuracy.n_ops = ops.size();
  if (ops.empty()) return accuracy;
  std::vector<double> relative;
  double squared = 0;
  size_t within_10 = 0, within_20 = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const double predicted = predictor.predict_ms(ops[i]);
    const double error = std::abs(predicted - latency_ms[i]) / latency_ms[i];
    relative.push_back(error);
    within_10 += error <= 0.10;
    within_20 += error <= 0.20;
    squared += (predicted - latency_ms[i]) * (predicted - latency_ms[i]);
  }
  std::sort(relative.begin(), relative.end());
  accuracy.within_10pct = static_cast<double>(within_10) / static_cast<double>(ops.size());
  accuracy.within_20pct = static_cast<double>(within_20) / static_cast<double>(ops.size());
  accuracy.rmse_ms = std::sqrt(squared / static_cast<double>(ops.size()));
  accuracy.median_abs_error_pct = 100 * relative[relative.size() / 2];
  return accuracy;
}

bool is_held_out(const ir::OpExpr& op) { return fnv1a(op.canonical_key()) % 5 == 0; }

}  // namespace gos::measure
