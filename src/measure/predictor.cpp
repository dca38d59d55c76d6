// The statement-wise, tree-based latency predictor (see predictor.h).
#include "measure/predictor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <numeric>

#include "lowering/kernels.h"
#include "measure/measure.h"
#include "util/stable_hash.h"

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
      const lowering::ConvChannels conv = lowering::conv_channels(kernel);
      if (conv.groups > 1 && conv.groups == conv.in) return "depthwise";
      if (conv.groups > 1) return "grouped_conv";
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

// What a kernel's speed depends on beyond MACs and bytes: XNNPACK takes square, undilated 2-D
// windows and vector tiles of channels; anything else falls back to slower paths.
struct KernelShape {
  double taps = 1, window_height = 1, window_width = 1, in_channels = 0, out_channels = 0, stride = 1, dilation = 1, groups = 1;
  double positions = 1, spatial_rank = 0, padded = 0;
  double shuffled = 0;  // input channels reordered (a copy) before a grouped convolution
};

KernelShape shape_of(const lowering::Kernel& kernel) {
  KernelShape shape;
  if (kernel.kind == lowering::KernelKind::Conv || kernel.kind == lowering::KernelKind::Shift) {
    if (kernel.spatial_rank == 2) {
      const auto& c = kernel.conv2d;
      shape.window_height = static_cast<double>(c.kernel[0]);
      shape.window_width = static_cast<double>(c.kernel[1]);
      shape.in_channels = static_cast<double>(c.in_channels);
      shape.out_channels = static_cast<double>(c.out_channels);
      shape.stride = static_cast<double>(c.stride[0] * c.stride[1]);
      shape.dilation = static_cast<double>(c.dilation[0] * c.dilation[1]);
      shape.groups = static_cast<double>(c.groups);
      shape.shuffled = c.shuffle;
      shape.padded = std::ranges::any_of(c.padding, [](int64_t p) { return p > 0; });
    } else {
      const auto& c = kernel.conv1d;
      shape.window_width = static_cast<double>(c.kernel);
      shape.in_channels = static_cast<double>(c.in_channels);
      shape.out_channels = static_cast<double>(c.out_channels);
      shape.stride = static_cast<double>(c.stride);
      shape.dilation = static_cast<double>(c.dilation);
      shape.groups = static_cast<double>(c.groups);
      shape.shuffled = c.shuffle;
      shape.padded = c.padding[0] > 0 || c.padding[1] > 0;
    }
    shape.taps = shape.window_height * shape.window_width;
    shape.spatial_rank = kernel.spatial_rank;
  } else if (kernel.kind == lowering::KernelKind::Linear) {
    shape.in_channels = static_cast<double>(kernel.linear.in_features);
    shape.out_channels = static_cast<double>(kernel.linear.out_features);
  } else if (kernel.kind == lowering::KernelKind::MatMul) {
    shape.in_channels = static_cast<double>(kernel.matmul.k);
    shape.out_channels = static_cast<double>(kernel.matmul.weight_lhs ? kernel.matmul.m : kernel.matmul.n);
  }
  const auto& output = kernel.single.output().shape;
  for (size_t d = 2; d < output.size(); ++d) shape.positions *= static_cast<double>(output[d]);
  return shape;
}

// How a statement the kernels do not cover is written, which decides how its einsum runs: the
// reduction's length, windows (subscripts of several indices), and outputs written by a
// mixed-radix channel (groups).
struct StatementShape {
  double reduction_length = 1, windowed_reads = 0, mixed_outputs = 0, indices = 0;
};

StatementShape statement_shape(const ir::Statement& statement) {
  StatementShape shape;
  for (const auto& index : statement.reduction_indices) shape.reduction_length *= static_cast<double>(index.extent);
  for (const auto& factor : statement.factors) {
    for (const auto& subscript : factor.subscripts) shape.windowed_reads += subscript.terms().size() > 1;
  }
  for (const auto& subscript : statement.output.subscripts) shape.mixed_outputs += subscript.terms().size() > 1;
  shape.indices = static_cast<double>(statement.output_indices.size() + statement.reduction_indices.size());
  return shape;
}

// 1 when `channels` fills whole vector tiles of `width` lanes.
double fills_tiles(double channels, double width) { return std::fmod(channels, width) == 0 ? 1 : 0; }

std::vector<double> features_of(const lowering::Kernel& kernel) {
  std::vector<double> x(kinds().size(), 0.0);
  x[static_cast<size_t>(std::find(kinds().begin(), kinds().end(), kind_of(kernel)) - kinds().begin())] = 1;
  const ir::Cost cost = ir::cost(kernel.single);
  const KernelShape shape = shape_of(kernel);
  const ir::Statement& statement = kernel.single.statements().at(0);
  const StatementShape written = statement_shape(statement);
  const double out_per_group = shape.out_channels / shape.groups;
  const double in_per_group = shape.in_channels / shape.groups;
  const double tile_waste = out_per_group > 0 ? std::ceil(out_per_group / 8) * 8 / out_per_group : 1;
  const double output_elements = static_cast<double>(cost.output_bytes) / 4;
  const double input_elements = static_cast<double>(cost.input_bytes) / 4;
  const double macs = static_cast<double>(cost.macs);
  // The output's innermost extent: the vectorised one for layouts the kernels do not know.
  const double innermost = static_cast<double>(kernel.single.output().shape.back());
  for (double value : {std::log1p(static_cast<double>(cost.macs + cost.other_ops) / 1e3),
                       std::log1p(static_cast<double>(cost.input_bytes + cost.output_bytes) / 1e3),
                       std::log1p(static_cast<double>(cost.weight_bytes) / 1e3), std::log(shape.taps),
                       std::log1p(shape.in_channels), std::log1p(shape.out_channels), std::log(tile_waste),
                       std::log(shape.positions), std::log(shape.stride), std::log(shape.groups),
                       std::log1p(output_elements), std::log1p(input_elements), std::log1p(macs / std::max(1.0, output_elements)),
                       std::log1p(macs / std::max(1.0, static_cast<double>(cost.bytes()))),
                       std::log1p(static_cast<double>(cost.other_ops)), std::log(shape.dilation), shape.window_height,
                       shape.window_width, shape.spatial_rank, shape.padded, static_cast<double>(statement.activation),
                       static_cast<double>(statement.addends.size()), fills_tiles(in_per_group, 4), fills_tiles(in_per_group, 8),
                       fills_tiles(out_per_group, 4), fills_tiles(out_per_group, 8), fills_tiles(out_per_group, 16),
                       std::log(written.reduction_length), written.windowed_reads, written.mixed_outputs, written.indices,
                       std::log(innermost), fills_tiles(innermost, 8), fills_tiles(innermost, 16),
                       fills_tiles(written.reduction_length, 8), fills_tiles(written.reduction_length, 16), shape.shuffled}) {
    x.push_back(value);
  }
  return x;
}

// ---- Gradient-boosted regression trees (squared loss) ---------------------------------------

// Deeper trees than a few hundred operators would bear: with thousands of sampled ones they
// learn interactions of kind, channels and sizes (depth 4 underfits them).
constexpr int kTrees = 600;
constexpr int kDepth = 6;
constexpr size_t kMinLeaf = 3;
constexpr double kLearningRate = 0.1;
constexpr double kSharedRidge = 1e-3;
constexpr double kKindRidge = 25.0;  // pulls a kind with few operators towards the shared plane

// Each feature's values sorted once into bins, so that a node's best split comes from per-bin
// sums over its rows instead of sorting its rows by every feature at every node: `gos
// latency-model eval` on 3,031 operators went from 35 s to 6 s with the same trees. A bin holds
// one distinct value, so the splits are the exact ones, unless a feature has more distinct values
// than kMaxBins; then a bin holds its share of the rows.
constexpr size_t kMaxBins = 65535;

struct BinnedFeatures {
  std::vector<std::vector<uint16_t>> bin;  // [feature][row]
  std::vector<std::vector<double>> lowest, highest;  // [feature][bin]: the values a bin holds
};

BinnedFeatures bin_features(const std::vector<std::vector<double>>& x) {
  BinnedFeatures binned;
  const size_t features = x.empty() ? 0 : x[0].size();
  binned.bin.resize(features);
  binned.lowest.resize(features);
  binned.highest.resize(features);
  for (size_t f = 0; f < features; ++f) {
    std::vector<double> sorted;
    for (const auto& row : x) sorted.push_back(row[f]);
    std::sort(sorted.begin(), sorted.end());
    auto& lowest = binned.lowest[f];
    auto& highest = binned.highest[f];
    // A new bin at each distinct value, or, with many of them, once a bin holds its share of rows.
    size_t distinct = 0;
    for (size_t i = 0; i < sorted.size(); ++i) distinct += i == 0 || sorted[i] != sorted[i - 1];
    const bool one_per_value = distinct <= kMaxBins;
    const size_t share = (sorted.size() + kMaxBins - 1) / kMaxBins;
    size_t in_bin = 0;
    for (size_t i = 0; i < sorted.size(); ++i) {
      const bool new_value = i == 0 || sorted[i] != sorted[i - 1];
      if (new_value && (lowest.empty() || one_per_value || in_bin >= share)) {
        lowest.push_back(sorted[i]);
        highest.push_back(sorted[i]);
        in_bin = 0;
      }
      highest.back() = sorted[i];
      ++in_bin;
    }
    binned.bin[f].resize(x.size());
    for (size_t r = 0; r < x.size(); ++r) {
      const auto above = std::upper_bound(lowest.begin(), lowest.end(), x[r][f]);
      binned.bin[f][r] = static_cast<uint16_t>(above - lowest.begin() - 1);
    }
  }
  return binned;
}

struct TreeBuilder {
  const BinnedFeatures& x;
  const std::vector<double>& residual;
  const std::vector<double>& weight;  // how much each measurement is trusted
  RegressionTree tree;

  struct BinSums {
    double sum = 0, weight = 0;
    size_t count = 0;
  };

  // Weighted squared loss: a leaf's value is the weighted mean of its residuals, and a split's
  // gain the reduction in weighted squared error. A split falls between two neighbouring bins
  // that hold rows of this node, halfway between their values.
  int build(const std::vector<size_t>& rows, int depth) {
    double total = 0, total_weight = 0;
    for (size_t r : rows) {
      total += weight[r] * residual[r];
      total_weight += weight[r];
    }
    const int index = static_cast<int>(tree.nodes.size());
    tree.nodes.push_back({-1, 0, -1, -1, total / total_weight});
    if (depth == kDepth || rows.size() < 2 * kMinLeaf) return index;
    int best_feature = -1;
    size_t best_bin = 0;
    double best_threshold = 0, best_gain = 1e-12;
    std::vector<BinSums> sums;
    for (size_t f = 0; f < x.bin.size(); ++f) {
      const auto& bins = x.bin[f];
      sums.assign(x.lowest[f].size(), {});
      for (size_t r : rows) {
        BinSums& into = sums[bins[r]];
        into.sum += weight[r] * residual[r];
        into.weight += weight[r];
        ++into.count;
      }
      double left_sum = 0, left_weight = 0;
      size_t left_n = 0;
      for (size_t b = 0; b < sums.size(); ++b) {
        if (sums[b].count == 0) continue;
        left_sum += sums[b].sum;
        left_weight += sums[b].weight;
        left_n += sums[b].count;
        const size_t right_n = rows.size() - left_n;
        if (right_n == 0) break;
        if (left_n < kMinLeaf || right_n < kMinLeaf) continue;
        const double right_sum = total - left_sum, right_weight = total_weight - left_weight;
        const double gain = left_sum * left_sum / left_weight + right_sum * right_sum / right_weight - total * total / total_weight;
        if (gain > best_gain) {
          size_t next = b + 1;
          while (sums[next].count == 0) ++next;
          best_gain = gain;
          best_feature = static_cast<int>(f);
          best_bin = b;
          best_threshold = (x.highest[f][b] + x.lowest[f][next]) / 2;
        }
      }
    }
    if (best_feature < 0) return index;
    std::vector<size_t> left, right;
    const auto& bins = x.bin[static_cast<size_t>(best_feature)];
    for (size_t r : rows) (bins[r] <= best_bin ? left : right).push_back(r);
    tree.nodes[static_cast<size_t>(index)].feature = best_feature;
    tree.nodes[static_cast<size_t>(index)].threshold = best_threshold;
    const int l = build(left, depth + 1);
    const int r = build(right, depth + 1);
    tree.nodes[static_cast<size_t>(index)].left = l;
    tree.nodes[static_cast<size_t>(index)].right = r;
    return index;
  }
};

// ---- A linear base per kind: log time as a plane in log work, bytes and weights ------------

// Trees give a step function: between the sizes they were fitted on, a time is the nearest
// fitted step's. A kind's time grows smoothly with its work and traffic, so a plane in their logs
// per kind carries that, and the trees fit what is left (tiles, windows, fast paths).
std::vector<double> base_inputs(const std::vector<double>& x) {
  static const std::vector<size_t> planar = [] {
    std::vector<size_t> indices;
    const auto& names = latency_feature_names();
    for (const char* name : {"log_kmacs", "log_io_kb", "log_weight_kb", "log_output_elements", "log_input_elements"}) {
      indices.push_back(static_cast<size_t>(std::ranges::find(names, name) - names.begin()));
    }
    return indices;
  }();
  std::vector<double> inputs{1.0};
  for (size_t index : planar) inputs.push_back(x.at(index));
  return inputs;
}

size_t kind_index(const std::vector<double>& x) {
  return static_cast<size_t>(std::find(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(kinds().size()), 1.0) - x.begin());
}

// Ridge regression by the normal equations (a handful of inputs), shrunk towards `prior`.
std::vector<double> fit_plane(const std::vector<std::vector<double>>& inputs, const std::vector<double>& y,
                              const std::vector<double>& weight, const std::vector<double>& prior, double ridge) {
  const size_t n = prior.size();
  std::vector<std::vector<double>> a(n, std::vector<double>(n + 1, 0.0));
  for (size_t r = 0; r < inputs.size(); ++r) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) a[i][j] += weight[r] * inputs[r][i] * inputs[r][j];
      a[i][n] += weight[r] * inputs[r][i] * y[r];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    a[i][i] += ridge;
    a[i][n] += ridge * prior[i];
  }
  for (size_t c = 0; c < n; ++c) {  // Gauss-Jordan with partial pivoting
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    }
    std::swap(a[c], a[pivot]);
    if (std::abs(a[c][c]) < 1e-12) return prior;
    for (size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double factor = a[r][c] / a[c][c];
      for (size_t k = c; k <= n; ++k) a[r][k] -= factor * a[c][k];
    }
  }
  std::vector<double> plane(n);
  for (size_t i = 0; i < n; ++i) plane[i] = a[i][n] / a[i][i];
  return plane;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

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

bool screenable(const ir::OpExpr& candidate) {
  return std::ranges::none_of(lowering::recognise(candidate), [](const auto& kernel) { return kind_of(kernel) == "generic"; });
}

const std::vector<std::string>& latency_feature_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const auto& kind : kinds()) list.push_back("kind=" + kind);
    for (const char* name : {"log_kmacs", "log_io_kb", "log_weight_kb", "log_taps", "log_in_channels", "log_out_channels",
                             "log_tile_waste", "log_positions", "log_stride", "log_groups", "log_output_elements",
                             "log_input_elements", "log_macs_per_output", "log_macs_per_byte", "log_other_ops", "log_dilation",
                             "window_height", "window_width", "spatial_rank", "padded", "activation", "addends",
                             "in_per_group_fills_4", "in_per_group_fills_8", "out_per_group_fills_4", "out_per_group_fills_8",
                             "out_per_group_fills_16", "log_reduction_length", "windowed_reads", "mixed_radix_outputs",
                             "indices", "log_innermost", "innermost_fills_8", "innermost_fills_16", "reduction_fills_8",
                             "reduction_fills_16", "shuffled"}) {
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

double LatencyPredictor::base_log_ms(const std::vector<double>& features) const {
  return dot(planes_.at(kind_index(features)), base_inputs(features));
}

double LatencyPredictor::statement_ms(const std::vector<double>& features) const {
  double log_ms = base_log_ms(features);
  for (const auto& tree : trees_) log_ms += learning_rate_ * tree.predict(features);
  return std::exp(log_ms);
}

LatencyPredictor LatencyPredictor::fit(const std::vector<ir::OpExpr>& ops, const std::vector<double>& latency_ms,
                                       const std::vector<double>& trust) {
  if (ops.size() != latency_ms.size()) throw MeasureError("the latency predictor needs one time per operator");
  if (!trust.empty() && trust.size() != ops.size()) throw MeasureError("the latency predictor needs one trust per operator");
  std::vector<std::vector<double>> x;
  std::vector<double> y, weight;
  std::vector<std::pair<std::vector<std::vector<double>>, double>> multi;
  for (size_t i = 0; i < ops.size(); ++i) {
    auto features = latency_features(ops[i]);
    if (features.size() == 1) {
      x.push_back(features[0]);
      y.push_back(std::log(std::max(latency_ms[i], 1e-6)));
      weight.push_back(trust.empty() ? 1.0 : trust[i]);
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
  std::vector<std::vector<double>> inputs;
  for (const auto& row : x) inputs.push_back(base_inputs(row));
  std::vector<double> flat(inputs[0].size(), 0.0);  // the weighted mean log time
  flat[0] = std::inner_product(y.begin(), y.end(), weight.begin(), 0.0) / std::accumulate(weight.begin(), weight.end(), 0.0);
  const std::vector<double> shared = fit_plane(inputs, y, weight, flat, kSharedRidge);
  for (size_t k = 0; k < kinds().size(); ++k) {
    std::vector<std::vector<double>> kind_inputs;
    std::vector<double> kind_y, kind_weight;
    for (size_t i = 0; i < x.size(); ++i) {
      if (kind_index(x[i]) != k) continue;
      kind_inputs.push_back(inputs[i]);
      kind_y.push_back(y[i]);
      kind_weight.push_back(weight[i]);
    }
    predictor.planes_.push_back(fit_plane(kind_inputs, kind_y, kind_weight, shared, kKindRidge));
  }
  std::vector<double> current(y.size()), residual(y.size());
  for (size_t i = 0; i < y.size(); ++i) current[i] = predictor.base_log_ms(x[i]);
  std::vector<size_t> all(y.size());
  std::iota(all.begin(), all.end(), size_t{0});
  const BinnedFeatures binned = bin_features(x);
  for (int t = 0; t < kTrees; ++t) {
    for (size_t i = 0; i < y.size(); ++i) residual[i] = y[i] - current[i];
    TreeBuilder builder{binned, residual, weight, {}};
    builder.build(all, 0);
    for (size_t i = 0; i < y.size(); ++i) current[i] += kLearningRate * builder.tree.predict(x[i]);
    predictor.trees_.push_back(std::move(builder.tree));
  }
  // What a multi-statement operator takes beyond its statements: the median per extra statement.
  // Usually negative: each statement timed alone paid a call, the operator pays one.
  std::vector<double> extra;
  for (const auto& [statements, measured] : multi) {
    double sum = 0;
    for (const auto& features : statements) sum += predictor.statement_ms(features);
    extra.push_back((measured - sum) / static_cast<double>(statements.size() - 1));
  }
  if (!extra.empty()) {
    std::nth_element(extra.begin(), extra.begin() + static_cast<std::ptrdiff_t>(extra.size() / 2), extra.end());
    predictor.overhead_per_extra_statement_ms_ = extra[extra.size() / 2];
  }
  predictor.trained_on_ = ops.size();
  return predictor;
}

double LatencyPredictor::predict_ms(const ir::OpExpr& op) const {
  const auto statements = latency_features(op);
  double total = overhead_per_extra_statement_ms_ * static_cast<double>(statements.size() - 1), slowest = 0;
  for (const auto& features : statements) {
    const double ms = statement_ms(features);
    total += ms;
    slowest = std::max(slowest, ms);
  }
  // The operator does at least the work of its slowest statement, and pays the call it paid alone.
  return std::max(total, slowest);
}

std::string LatencyPredictor::to_json() const {
  nlohmann::json trees = nlohmann::json::array();
  for (const auto& tree : trees_) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : tree.nodes) nodes.push_back({n.feature, n.threshold, n.left, n.right, n.value});
    trees.push_back(nodes);
  }
  return nlohmann::json{{"model", "a plane per kind and gradient-boosted trees on log statement time"},
                        {"features", latency_feature_names()},
                        {"planes", planes_},
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
    predictor.planes_ = json.at("planes").get<std::vector<std::vector<double>>>();
    const size_t plane_size = base_inputs(std::vector<double>(latency_feature_names().size(), 0.0)).size();
    if (predictor.planes_.size() != kinds().size() ||
        std::ranges::any_of(predictor.planes_, [&](const auto& plane) { return plane.size() != plane_size; })) {
      throw MeasureError("a stored latency predictor has malformed planes (run gos latency-model fit again)");
    }
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

PredictorAccuracy accuracy_of(const std::vector<double>& predicted_ms, const std::vector<double>& measured_ms) {
  if (predicted_ms.size() != measured_ms.size()) throw MeasureError("accuracy needs one prediction per measurement");
  PredictorAccuracy accuracy;
  accuracy.n_ops = measured_ms.size();
  if (measured_ms.empty()) return accuracy;
  std::vector<double> relative;
  double squared = 0;
  size_t within_10 = 0, within_20 = 0;
  for (size_t i = 0; i < measured_ms.size(); ++i) {
    const double error = std::abs(predicted_ms[i] - measured_ms[i]) / measured_ms[i];
    relative.push_back(error);
    within_10 += error <= 0.10;
    within_20 += error <= 0.20;
    squared += (predicted_ms[i] - measured_ms[i]) * (predicted_ms[i] - measured_ms[i]);
  }
  std::sort(relative.begin(), relative.end());
  accuracy.within_10pct = static_cast<double>(within_10) / static_cast<double>(measured_ms.size());
  accuracy.within_20pct = static_cast<double>(within_20) / static_cast<double>(measured_ms.size());
  accuracy.rmse_ms = std::sqrt(squared / static_cast<double>(measured_ms.size()));
  accuracy.median_abs_error_pct = 100 * relative[relative.size() / 2];
  return accuracy;
}

PredictorAccuracy evaluate(const LatencyPredictor& predictor, const std::vector<ir::OpExpr>& ops,
                           const std::vector<double>& latency_ms) {
  std::vector<double> predicted;
  for (const auto& op : ops) predicted.push_back(predictor.predict_ms(op));
  return accuracy_of(predicted, latency_ms);
}

unsigned statement_folds(const ir::OpExpr& op) {
  unsigned folds = 0;
  for (size_t s = 0; s < op.statements().size(); ++s) {
    folds |= 1u << (util::stable_hash(lowering::statement_as_op(op, s).canonical_key()) % kHeldOutFolds);
  }
  return folds;
}

bool is_held_out(const ir::OpExpr& op) { return (statement_folds(op) & 1u) != 0; }

bool draws_random_fifth(const std::string& canonical_key) {
  return util::stable_hash(canonical_key + "#random-fifth") % 5 == 0;
}

bool is_in_random_fifth(const ir::OpExpr& op) { return !is_held_out(op) && draws_random_fifth(op.canonical_key()); }

}  // namespace gos::measure
