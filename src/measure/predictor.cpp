// The statement-wise, tree-based latency predictor (see predictor.h).
#include "measure/predictor.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "lowering/kernels.h"
#include "measure/measure.h"

namespace gos::measure {

namespace {

const std::vector<std::string>& kinds() {
  static const std::vector<std::string> names{"conv",   "conv1x1", "depthwise",   "grouped_conv", "linear",     "matmul",
                                              "pool",   "global_pool", "shift", "elementwise",  "generic"};
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

// What a kernel's speed depends on beyond MACs and bytes.
struct KernelShape {
  double taps = 1, in_channels = 0, out_channels = 0, stride = 1, groups = 1, positions = 1;
};

KernelShape shape_of(const lowering::Kernel& kernel) {
  KernelShape shape;
  if (kernel.kind == lowering::KernelKind::Conv || kernel.kind == lowering::KernelKind::Shift) {
    if (kernel.spatial_rank == 2) {
      const auto& c = kernel.conv2d;
      shape = {static_cast<double>(c.kernel[0] * c.kernel[1]), static_cast<double>(c.in_channels),
               static_cast<double>(c.out_channels), static_cast<double>(c.stride[0] * c.stride[1]),
               static_cast<double>(c.groups), 1};
    } else {
      const auto& c = kernel.conv1d;
      shape = {static_cast<double>(c.kernel), static_cast<double>(c.in_channels), static_cast<double>(c.out_channels),
               static_cast<double>(c.stride), static_cast<double>(c.groups), 1};
    }
  } else if (kernel.kind == lowering::KernelKind::Linear) {
    shape.in_channels = static_cast<double>(kernel.linear.in_features);
    shape.out_channels = static_cast<double>(kernel.linear.out_features);
  }
  const auto& output = kernel.single.output().shape;
  for (size_t d = 2; d < output.size(); ++d) shape.positions *= static_cast<double>(output[d]);
  return shape;
}

std::vector<double> features_of(const lowering::Kernel& kernel) {
  std::vector<double> x(kinds().size(), 0.0);
  x[static_cast<size_t>(std::find(kinds().begin(), kinds().end(), kind_of(kernel)) - kinds().begin())] = 1;
  const ir::Cost cost = ir::cost(kernel.single);
  const KernelShape shape = shape_of(kernel);
  const double out_per_group = shape.out_channels / shape.groups;
  const double tile_waste = out_per_group > 0 ? std::ceil(out_per_group / 8) * 8 / out_per_group : 1;
  for (double value : {std::log1p(static_cast<double>(cost.macs + cost.other_ops) / 1e3),
                       std::log1p(static_cast<double>(cost.input_bytes + cost.output_bytes) / 1e3),
                       std::log1p(static_cast<double>(cost.weight_bytes) / 1e3), std::log(shape.taps),
                       std::log1p(shape.in_channels), std::log1p(shape.out_channels), std::log(tile_waste),
                       std::log(shape.positions), std::log(shape.stride), std::log(shape.groups)}) {
    x.push_back(value);
  }
  return x;
}

// ---- Gradient-boosted regression trees (squared loss) ---------------------------------------

constexpr int kTrees = 300;
constexpr int kDepth = 4;
constexpr size_t kMinLeaf = 3;
constexpr double kLearningRate = 0.1;

struct TreeBuilder {
  const std::vector<std::vector<double>>& x;
  const std::vector<double>& residual;
  RegressionTree tree;

  int build(std::vector<size_t> rows, int depth) {
    double mean = 0;
    for (size_t r : rows) mean += residual[r];
    mean /= static_cast<double>(rows.size());
    const int index = static_cast<int>(tree.nodes.size());
    tree.nodes.push_back({-1, 0, -1, -1, mean});
    if (depth == kDepth || rows.size() < 2 * kMinLeaf) return index;
    int best_feature = -1;
    double best_threshold = 0, best_gain = 1e-12;
    const double total = mean * static_cast<double>(rows.size());
    for (size_t f = 0; f < x[rows[0]].size(); ++f) {
      std::sort(rows.begin(), rows.end(), [&](size_t a, size_t b) { return x[a][f] < x[b][f]; });
      double left_sum = 0;
      for (size_t i = 0; i + 1 < rows.size(); ++i) {
        left_sum += residual[rows[i]];
        const size_t left_n = i + 1, right_n = rows.size() - left_n;
        if (left_n < kMinLeaf || right_n < kMinLeaf || x[rows[i]][f] == x[rows[i + 1]][f]) continue;
        const double right_sum = total - left_sum;
        const double gain = left_sum * left_sum / static_cast<double>(left_n) +
                            right_sum * right_sum / static_cast<double>(right_n) - total * total / static_cast<double>(rows.size());
        if (gain > best_gain) {
          best_gain = gain;
          best_feature = static_cast<int>(f);
          best_threshold = (x[rows[i]][f] + x[rows[i + 1]][f]) / 2;
        }
      }
    }
    if (best_feature < 0) return index;
    std::vector<size_t> left, right;
    for (size_t r : rows) (x[r][static_cast<size_t>(best_feature)] <= best_threshold ? left : right).push_back(r);
    tree.nodes[static_cast<size_t>(index)].feature = best_feature;
    tree.nodes[static_cast<size_t>(index)].threshold = best_threshold;
    const int l = build(std::move(left), depth + 1);
    const int r = build(std::move(right), depth + 1);
    tree.nodes[static_cast<size_t>(index)].left = l;
    tree.nodes[static_cast<size_t>(index)].right = r;
    return index;
  }
};

}  // namespace

double RegressionTree::predict(const std::vector<double>& x) const {
  int at = 0;
  while (nodes[static_cast<size_t>(at)].feature >= 0) {
    const Node& node = nodes[static_cast<size_t>(at)];
    at = x[static_cast<size_t>(node.feature)] <= node.threshold ? node.left : node.right;
  }
  return nodes[static_cast<size_t>(at)].value;
}

std::string statement_kind(const ir::OpExpr& op, size_t statement) { return kind_of(lowering::recognise(op).at(statement)); }

const std::vector<std::string>& latency_feature_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const auto& kind : kinds()) list.push_back("kind=" + kind);
    for (const char* name : {"log_kmacs", "log_io_kb", "log_weight_kb", "log_taps", "log_in_channels", "log_out_channels",
                             "log_tile_waste", "log_positions", "log_stride", "log_groups"}) {
      list.push_back(name);
    }
    return list;
  }();
  return names;
}

std::vector<std::vector<double>> latency_features(const ir::OpExpr& op) {
  std::vector<std::vector<double>> statements;
  for (const auto& kernel : lowering::recognise(op)) statements.push_back(features_of(kernel));
  return statements;
}

double LatencyPredictor::statement_ms(const std::vector<double>& features) const {
  double log_ms = base_;
  for (const auto& tree : trees_) log_ms += learning_rate_ * tree.predict(features);
  return std::exp(log_ms);
}

LatencyPredictor LatencyPredictor::fit(const std::vector<ir::OpExpr>& ops, const std::vector<double>& latency_ms) {
  if (ops.size() != latency_ms.size()) throw MeasureError("the latency predictor needs one time per operator");
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  std::vector<std::pair<std::vector<std::vector<double>>, double>> multi;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto features = latency_features(ops[i]);
    if (features.size() == 1) {
      x.push_back(features[0]);
      y.push_back(std::log(std::max(latency_ms[i], 1e-6)));
    } else {
      multi.push_back({std::move(features), latency_ms[i]});
    }
  }
  if (x.size() < 2 * kMinLeaf) {
    throw MeasureError("the latency predictor needs at least " + std::to_string(2 * kMinLeaf) +
                       " measured single-statement operators; it has " + std::to_string(x.size()));
  }
  LatencyPredictor predictor;
  predictor.learning_rate_ = kLearningRate;
  predictor.base_ = std::accumulate(y.begin(), y.end(), 0.0) / static_cast<double>(y.size());
  std::vector<double> current(y.size(), predictor.base_), residual(y.size());
  std::vector<size_t> all(y.size());
  std::iota(all.begin(), all.end(), size_t{0});
  for (int t = 0; t < kTrees; ++t) {
    for (size_t i = 0; i < y.size(); ++i) residual[i] = y[i] - current[i];
    TreeBuilder builder{x, residual, {}};
    builder.build(all, 0);
    for (size_t i = 0; i < y.size(); ++i) current[i] += kLearningRate * builder.tree.predict(x[i]);
    predictor.trees_.push_back(std::move(builder.tree));
  }
  // What a multi-statement operator takes beyond its statements: the median per extra statement.
  std::vector<double> extra;
  for (const auto& [statements, measured] : multi) {
    double sum = 0;
    for (const auto& features : statements) sum += predictor.statement_ms(features);
    extra.push_back((measured - sum) / static_cast<double>(statements.size() - 1));
  }
  if (!extra.empty()) {
    std::nth_element(extra.begin(), extra.begin() + static_cast<std::ptrdiff_t>(extra.size() / 2), extra.end());
    predictor.overhead_per_extra_statement_ms_ = std::max(0.0, extra[extra.size() / 2]);
  }
  predictor.trained_on_ = ops.size();
  return predictor;
}

double LatencyPredictor::predict_ms(const ir::OpExpr& op) const {
  const auto statements = latency_features(op);
  double total = overhead_per_extra_statement_ms_ * static_cast<double>(statements.size() - 1);
  for (const auto& features : statements) total += statement_ms(features);
  return total;
}

std::string LatencyPredictor::to_json() const {
  nlohmann::json trees = nlohmann::json::array();
  for (const auto& tree : trees_) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : tree.nodes) nodes.push_back({n.feature, n.threshold, n.left, n.right, n.value});
    trees.push_back(nodes);
  }
  return nlohmann::json{{"model", "gradient-boosted trees on log statement time"},
                        {"features", latency_feature_names()},
                        {"base", base_},
                        {"learning_rate", learning_rate_},
                        {"overhead_per_extra_statement_ms", overhead_per_extra_statement_ms_},
                        {"trained_on", trained_on_},
                        {"trees", trees}}
      .dump();
}

LatencyPredictor LatencyPredictor::from_json(const std::string& text) {
  try {
    auto json = nlohmann::json::parse(text);
    if (json.at("features").get<std::vector<std::string>>() != latency_feature_names()) {
      throw MeasureError("a stored latency predictor uses other features (run gos latency-model fit again)");
    }
    LatencyPredictor predictor;
    predictor.base_ = json.at("base").get<double>();
    predictor.learning_rate_ = json.at("learning_rate").get<double>();
    predictor.overhead_per_extra_statement_ms_ = json.at("overhead_per_extra_statement_ms").get<double>();
    predictor.trained_on_ = json.at("trained_on").get<size_t>();
    for (const auto& nodes : json.at("trees")) {
      RegressionTree tree;
      for (const auto& n : nodes) {
        tree.nodes.push_back({n.at(0).get<int>(), n.at(1).get<double>(), n.at(2).get<int>(), n.at(3).get<int>(), n.at(4).get<double>()});
      }
      const int size = static_cast<int>(tree.nodes.size());
      for (const auto& node : tree.nodes) {
        if (node.feature >= static_cast<int>(latency_feature_names().size()) || node.left >= size || node.right >= size ||
            (node.feature >= 0 && (node.left < 0 || node.right < 0))) {
          throw MeasureError("a stored latency predictor has a malformed tree (run gos latency-model fit again)");
        }
      }
      predictor.trees_.push_back(std::move(tree));
    }
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

bool is_held_out(const ir::OpExpr& op) {
  for (size_t s = 0; s < op.statements().size(); ++s) {
    if (fnv1a(lowering::statement_as_op(op, s).canonical_key()) % 5 == 0) return true;
  }
  return false;
}

}  // namespace gos::measure
