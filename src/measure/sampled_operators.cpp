// Kernel configurations sampled for the latency predictor's training (see sampled_operators.h).
#include "measure/sampled_operators.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <set>

#include "ir/ops.h"
#include "lowering/kernels.h"
#include "measure/predictor.h"
#include "rules/rules.h"

namespace gos::measure {

namespace {

// Operators larger than the zoo's largest layers would only slow the sampling down.
constexpr int64_t kMaxMacs = 8'000'000;
constexpr int64_t kMaxElements = 600'000;  // of any one input or output

// Draws by modulo of a 64-bit Mersenne twister rather than std:: distributions, whose results
// differ between standard libraries: the same seed gives the same operators everywhere.
class Draw {
 public:
  explicit Draw(uint64_t seed) : engine_(seed) {}
  int64_t between(int64_t low, int64_t high) {  // inclusive
    return low + static_cast<int64_t>(engine_() % static_cast<uint64_t>(high - low + 1));
  }
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return unit() < p; }
  template <typename T>
  T one_of(const std::vector<T>& values) {
    return values[static_cast<size_t>(between(0, static_cast<int64_t>(values.size()) - 1))];
  }
  // Log-uniform in [low, high], so that small and large sizes are equally represented.
  int64_t log_uniform(int64_t low, int64_t high) {
    const double value = std::exp(std::log(static_cast<double>(low)) +
                                  unit() * (std::log(static_cast<double>(high) + 1) - std::log(static_cast<double>(low))));
    return std::clamp(static_cast<int64_t>(value), low, high);
  }
  uint32_t seed() { return static_cast<uint32_t>(engine_()); }

 private:
  std::mt19937_64 engine_;
};

// Channel counts: mostly multiples of 8 as networks use (and XNNPACK's tiles favour), the rest
// anything, as rank and group choices of the rules produce.
int64_t channels(Draw& draw, int64_t low = 4, int64_t high = 320) {
  const int64_t value = draw.log_uniform(low, high);
  if (value >= 8 && draw.chance(0.6)) return std::max<int64_t>(8, value / 8 * 8);
  return value;
}

// Spatial sizes: the zoo's feature-map sizes half of the time, anything in between otherwise.
int64_t spatial(Draw& draw) {
  if (draw.chance(0.5)) return draw.one_of<int64_t>({2, 4, 7, 8, 14, 16, 28, 32});
  return draw.between(2, 32);
}

ir::Activation conv_activation(Draw& draw) {
  return draw.one_of<ir::Activation>({ir::Activation::None, ir::Activation::None, ir::Activation::Relu, ir::Activation::Relu6});
}

ir::Conv2dSpec conv_spec(Draw& draw, int64_t kernel, int64_t in_channels, int64_t out_channels, int64_t groups) {
  const int64_t size = spatial(draw);
  const int64_t stride = size >= 4 && draw.chance(0.3) ? 2 : 1;
  const int64_t pad = draw.chance(0.8) ? kernel / 2 : 0;
  return {.in_channels = in_channels, .out_channels = out_channels, .input_size = {size, size}, .kernel = {kernel, kernel},
          .stride = {stride, stride}, .padding = {pad, pad, pad, pad}, .groups = groups, .bias = draw.chance(0.8),
          .activation = conv_activation(draw)};
}

ir::OpExpr dense_conv(Draw& draw) {
  const int64_t kernel = draw.one_of<int64_t>({3, 3, 3, 2, 4, 5});
  const int64_t in = draw.chance(0.1) ? draw.one_of<int64_t>({1, 3}) : channels(draw, 4, 256);
  return ir::conv2d(conv_spec(draw, kernel, in, channels(draw, 4, 256), 1));
}

ir::OpExpr pointwise_conv(Draw& draw) { return ir::conv2d(conv_spec(draw, 1, channels(draw), channels(draw), 1)); }

ir::OpExpr depthwise_conv(Draw& draw) {
  const int64_t kernel = draw.one_of<int64_t>({3, 3, 3, 5, 2});
  const int64_t c = channels(draw, 8, 320);
  return ir::depthwise_conv2d(conv_spec(draw, kernel, c, c, c));
}

ir::OpExpr grouped_conv(Draw& draw) {
  const int64_t groups = draw.one_of<int64_t>({2, 4, 8, 16});
  const int64_t kernel = draw.one_of<int64_t>({1, 1, 3});
  const int64_t in_per_group = std::max<int64_t>(1, channels(draw, 1, 128) / groups);
  const int64_t out_per_group = std::max<int64_t>(1, channels(draw, 1, 256) / groups);
  return ir::conv2d(conv_spec(draw, kernel, groups * in_per_group, groups * out_per_group, groups));
}

ir::OpExpr temporal_conv(Draw& draw) {
  const int64_t kernel = draw.one_of<int64_t>({1, 3, 3, 5});
  const int64_t dilation = draw.one_of<int64_t>({1, 1, 2, 4, 8, 16});
  const int64_t pad = dilation * (kernel - 1) / 2;
  const int64_t c = channels(draw, 4, 128);
  const int64_t groups = draw.chance(0.2) ? c : 1;
  return ir::conv1d({.in_channels = c, .out_channels = groups > 1 ? c : channels(draw, 4, 128),
                     .input_length = draw.log_uniform(32, 512), .kernel = kernel, .stride = draw.chance(0.2) ? 2 : 1,
                     .padding = {pad, pad}, .dilation = dilation, .groups = groups, .bias = draw.chance(0.8),
                     .activation = conv_activation(draw)});
}

ir::OpExpr linear(Draw& draw) {
  return ir::linear({.in_features = draw.log_uniform(8, 2048), .out_features = draw.log_uniform(1, 1280),
                     .bias = draw.chance(0.8),
                     .activation = draw.one_of<ir::Activation>({ir::Activation::None, ir::Activation::Relu})});
}

std::string activated(ir::Activation act, const std::string& inner) {
  return act == ir::Activation::None ? inner : std::string(ir::to_string(act)) + "(" + inner + ")";
}

// MLP-Mixer's linear layers on [batch, tokens, channels], written as the zoo writes them.
ir::OpExpr token_linear(Draw& draw) {
  const ir::Activation act = draw.chance(0.5) ? ir::Activation::Gelu : ir::Activation::None;
  return ir::parse("Y[n,u,c] = " + activated(act, "sum{t} X[n,t,c] * W[u,t] + B[u]"),
                   "n<1, u<" + std::to_string(channels(draw, 4, 256)) + ", t<" + std::to_string(draw.between(8, 128)) +
                       ", c<" + std::to_string(channels(draw, 8, 256)));
}

ir::OpExpr channel_linear(Draw& draw) {
  const ir::Activation act = draw.chance(0.5) ? ir::Activation::Gelu : ir::Activation::None;
  return ir::parse("Y[n,t,k] = " + activated(act, "sum{c} X[n,t,c] * W[k,c] + B[k]"),
                   "n<1, t<" + std::to_string(draw.between(8, 128)) + ", k<" + std::to_string(channels(draw, 4, 512)) +
                       ", c<" + std::to_string(channels(draw, 4, 512)));
}

ir::PoolSpec pool_spec(Draw& draw) {
  const int64_t kernel = draw.one_of<int64_t>({2, 2, 3});
  const int64_t stride = draw.chance(0.8) ? 2 : 1;
  const int64_t size = std::max(spatial(draw), kernel);
  return {.channels = channels(draw, 4, 320), .input_size = {size, size}, .kernel = {kernel, kernel}, .stride = {stride, stride}};
}

ir::OpExpr max_pool(Draw& draw) { return ir::max_pool(pool_spec(draw)); }
ir::OpExpr average_pool(Draw& draw) { return ir::average_pool(pool_spec(draw)); }

ir::OpExpr global_pool(Draw& draw) {
  if (draw.chance(0.3)) return ir::global_average_pool(1, channels(draw, 4, 128), {draw.log_uniform(16, 512)});
  const int64_t size = spatial(draw);
  return ir::global_average_pool(1, channels(draw, 4, 1280), {size, size}, draw.chance(0.5));
}

// The shapes activations and residual adds see in the zoo: NCHW, NCL, tokens x channels, features.
std::vector<int64_t> feature_shape(Draw& draw) {
  switch (draw.between(0, 3)) {
    case 0: {
      const int64_t size = spatial(draw);
      return {1, channels(draw), size, size};
    }
    case 1: return {1, channels(draw, 4, 128), draw.log_uniform(32, 512)};
    case 2: return {1, draw.between(8, 128), channels(draw, 8, 512)};
    default: return {1, draw.log_uniform(8, 2048)};
  }
}

ir::OpExpr activation(Draw& draw) {
  return ir::activation(feature_shape(draw), draw.one_of<ir::Activation>({ir::Activation::Relu, ir::Activation::Relu6,
                                                                          ir::Activation::Gelu, ir::Activation::Sigmoid,
                                                                          ir::Activation::HardSwish}));
}

ir::OpExpr residual_add(Draw& draw) {
  return ir::add(feature_shape(draw), draw.chance(0.5) ? ir::Activation::Relu : ir::Activation::None);
}

using Builder = std::function<ir::OpExpr(Draw&)>;

struct Form {
  std::string name;
  Builder build;
  bool candidate = false;  // a rule candidate of the built operator rather than the operator
};

const std::vector<Form>& forms() {
  static const std::vector<Form> list{
      {"conv", dense_conv},
      {"conv1x1", pointwise_conv},
      {"depthwise", depthwise_conv},
      {"grouped_conv", grouped_conv},
      {"conv1d", temporal_conv},
      {"linear", linear},
      {"token_linear", token_linear},
      {"channel_linear", channel_linear},
      {"max_pool", max_pool},
      {"average_pool", average_pool},
      {"global_pool", global_pool},
      {"activation", activation},
      {"add", residual_add},
      {"candidate of conv", dense_conv, true},
      {"candidate of conv1x1", pointwise_conv, true},
      {"candidate of depthwise", depthwise_conv, true},
      {"candidate of conv1d", temporal_conv, true},
      {"candidate of linear", linear, true},
      {"candidate of token_linear", token_linear, true},
      {"candidate of channel_linear", channel_linear, true},
      {"candidate of conv (second)", dense_conv, true},
      {"candidate of conv1x1 (second)", pointwise_conv, true},
  };
  return list;
}

// ---- Around the zoo: a zoo operator's kernel rebuilt with other channels and sizes ----------

// A size scaled by a factor between a quarter and four times, log-uniformly.
int64_t scaled(Draw& draw, int64_t value, int64_t low = 1) {
  const double factor = std::exp((draw.unit() * 2 - 1) * std::log(4.0));
  return std::max<int64_t>(low, static_cast<int64_t>(std::lround(static_cast<double>(value) * factor)));
}

// Channels scaled, keeping a multiple of 8 a multiple of 8 most of the time (as networks do).
int64_t scaled_channels(Draw& draw, int64_t value) {
  const int64_t channels = scaled(draw, value);
  if (value % 8 == 0 && channels >= 8 && draw.chance(0.7)) return channels / 8 * 8;
  return channels;
}

int64_t scaled_spatial(Draw& draw, int64_t value) {
  if (value <= 1) return value;
  return draw.chance(0.5) ? draw.one_of<int64_t>({value / 2, value, 2 * value}) : std::clamp<int64_t>(scaled(draw, value), 2, 64);
}

// Channels scaled around the original's, a depthwise operator kept depthwise (with its channel
// multiplier) and the group count kept; an image input's few channels stay as they are.
template <typename ConvSpec>
void vary_channels(ConvSpec& spec, Draw& draw) {
  if (spec.groups == spec.in_channels && spec.groups > 1) {
    const int64_t multiplier = spec.out_channels / spec.in_channels;
    spec.in_channels = spec.groups = scaled_channels(draw, spec.in_channels);
    spec.out_channels = multiplier * spec.in_channels;
    return;
  }
  if (spec.in_channels > 3) spec.in_channels = spec.groups * scaled_channels(draw, spec.in_channels / spec.groups);
  spec.out_channels = spec.groups * scaled_channels(draw, spec.out_channels / spec.groups);
}

ir::OpExpr varied_conv2d(const lowering::Kernel& kernel, Draw& draw) {
  ir::Conv2dSpec spec = kernel.conv2d;
  spec.activation = kernel.activation;
  const int64_t size = scaled_spatial(draw, spec.input_size[0]);
  spec.input_size = {size, spec.input_size[0] == spec.input_size[1] ? size : scaled_spatial(draw, spec.input_size[1])};
  vary_channels(spec, draw);
  return ir::conv2d(spec);
}

ir::OpExpr varied_conv1d(const lowering::Kernel& kernel, Draw& draw) {
  ir::Conv1dSpec spec = kernel.conv1d;
  spec.activation = kernel.activation;
  spec.input_length = std::max<int64_t>(spec.kernel * spec.dilation, scaled(draw, spec.input_length, 8));
  vary_channels(spec, draw);
  return ir::conv1d(spec);
}

ir::OpExpr varied_linear(const lowering::Kernel& kernel, Draw& draw) {
  ir::LinearSpec spec = kernel.linear;
  spec.activation = kernel.activation;
  spec.in_features = scaled_channels(draw, spec.in_features);
  spec.out_features = scaled_channels(draw, spec.out_features);
  return ir::linear(spec);
}

ir::OpExpr varied_matmul(const lowering::Kernel& kernel, Draw& draw) {
  ir::MatMulSpec spec = kernel.matmul;
  spec.m = scaled_channels(draw, spec.m);
  spec.k = scaled_channels(draw, spec.k);
  spec.n = scaled_channels(draw, spec.n);
  ir::OpExpr op = ir::matmul(spec);
  if (kernel.activation == ir::Activation::None) return op;
  std::vector<ir::Statement> statements = op.statements();
  statements.back().activation = kernel.activation;
  std::vector<ir::TensorDecl> declared;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role != ir::Role::Intermediate && tensor.role != ir::Role::Output) declared.push_back(tensor);
  }
  return ir::OpExpr::make(declared, statements);
}

ir::OpExpr varied_pool(const lowering::Kernel& kernel, Draw& draw) {
  ir::PoolSpec spec = kernel.pool;
  spec.channels = scaled_channels(draw, spec.channels);
  const int64_t size = scaled_spatial(draw, spec.input_size[0]);
  for (auto& extent : spec.input_size) extent = size;
  return kernel.kind == lowering::KernelKind::MaxPool ? ir::max_pool(spec) : ir::average_pool(spec);
}

// Activations, adds and global pools: the same operation on a scaled shape.
std::vector<int64_t> varied_shape(std::vector<int64_t> shape, Draw& draw) {
  if (shape.size() >= 2) shape[1] = scaled_channels(draw, shape[1]);
  if (shape.size() >= 3) {
    const int64_t size = scaled_spatial(draw, shape[2]);
    for (size_t d = 2; d < shape.size(); ++d) shape[d] = shape[d] == shape[2] ? size : scaled_spatial(draw, shape[d]);
  }
  return shape;
}

// The zoo operator's kernel with other channels and sizes, or nothing for kernels it cannot vary.
std::optional<ir::OpExpr> varied(const ir::OpExpr& op, Draw& draw) {
  const auto kernels = lowering::recognise(op);
  if (kernels.size() != 1) return std::nullopt;
  const lowering::Kernel& kernel = kernels[0];
  using lowering::KernelKind;
  switch (kernel.kind) {
    case KernelKind::Conv: return kernel.spatial_rank == 2 ? varied_conv2d(kernel, draw) : varied_conv1d(kernel, draw);
    case KernelKind::Linear: return varied_linear(kernel, draw);
    case KernelKind::MatMul: return varied_matmul(kernel, draw);
    case KernelKind::MaxPool:
    case KernelKind::AveragePool: return varied_pool(kernel, draw);
    case KernelKind::GlobalAveragePool: {
      auto shape = varied_shape(kernel.single.tensors().front().shape, draw);
      return ir::global_average_pool(shape[0], shape[1], std::vector<int64_t>(shape.begin() + 2, shape.end()), kernel.keep_dims);
    }
    case KernelKind::Activation: return ir::activation(varied_shape(kernel.single.output().shape, draw), kernel.activation);
    case KernelKind::Add: return ir::add(varied_shape(kernel.single.output().shape, draw), kernel.activation);
    default: return std::nullopt;
  }
}

bool small_enough(const ir::OpExpr& op) {
  const ir::Cost cost = ir::cost(op);
  return cost.macs <= kMaxMacs && std::max(cost.input_bytes, cost.output_bytes) / 4 <= kMaxElements;
}

ir::TensorMap random_params(const ir::OpExpr& op, Draw& draw) {
  std::mt19937 engine(draw.seed());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ir::TensorMap params;
  for (const auto& tensor : op.tensors_with_role(ir::Role::Param)) {
    ir::Tensor value(tensor.shape);
    for (auto& x : value.data) x = normal(engine);
    params[tensor.name] = std::move(value);
  }
  return params;
}

// One rule applied once to `op`, as the zoo's candidates are (depth 1), keeping only candidates
// cheaper than the operator in MACs or params as derive_candidates does; nothing when no rule applies.
std::optional<rules::Candidate> random_candidate(const ir::OpExpr& op, Draw& draw) {
  const rules::Candidate root = rules::original(op, random_params(op, draw));
  const ir::Cost original_cost = ir::cost(op);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto candidates = rules::apply_rule(draw.one_of(rules::rule_names()), root, 0);
    std::erase_if(candidates, [&](const rules::Candidate& c) {
      const ir::Cost cost = ir::cost(c.op);
      return cost.macs >= original_cost.macs && cost.params >= original_cost.params;
    });
    if (!candidates.empty()) return candidates[static_cast<size_t>(draw.between(0, static_cast<int64_t>(candidates.size()) - 1))];
  }
  return std::nullopt;
}

// The candidate, and each statement of a multi-statement one alone.
std::vector<OpToMeasure> with_statements(const rules::Candidate& candidate) {
  std::vector<OpToMeasure> drawn{{candidate.op, candidate.weights}};
  if (candidate.op.statements().size() < 2) return drawn;
  for (size_t s = 0; s < candidate.op.statements().size(); ++s) {
    ir::OpExpr statement = lowering::statement_as_op(candidate.op, s);
    ir::TensorMap weights;
    for (const auto& param : statement.tensors_with_role(ir::Role::Param)) weights[param.name] = candidate.weights.at(param.name);
    drawn.push_back({std::move(statement), std::move(weights)});
  }
  return drawn;
}

// The operator, or a candidate of it, and each statement of a multi-statement one alone.
std::vector<OpToMeasure> operator_or_candidate(const ir::OpExpr& op, bool candidate_of_it, Draw& draw) {
  if (!small_enough(op)) return {};
  if (!candidate_of_it) return {{op, {}}};
  auto candidate = random_candidate(op, draw);
  if (!candidate) return {};
  return with_statements(*candidate);
}

// One of the operator's depth-1 candidates, drawn from the same list the zoo's are
// (rules::derive_candidates), so that the rules' forms come in the zoo's proportions.
std::vector<OpToMeasure> zoo_like_candidate(const ir::OpExpr& op, Draw& draw) {
  auto candidates = rules::derive_candidates(op, random_params(op, draw), {.depth = 1});
  if (candidates.empty()) return {};
  return with_statements(candidates[static_cast<size_t>(draw.between(0, static_cast<int64_t>(candidates.size()) - 1))]);
}

std::vector<OpToMeasure> draw_form(const Form& form, Draw& draw) {
  try {
    return operator_or_candidate(form.build(draw), form.candidate, draw);
  } catch (const ir::IrError&) {
    return {};  // an impossible combination (a window larger than the padded input): draw again
  }
}

// A zoo operator varied, and more often than not a candidate of the variation, as the zoo's
// candidates are of its operators.
std::vector<OpToMeasure> draw_around(const std::vector<ir::OpExpr>& around, Draw& draw) {
  const ir::OpExpr& base = around[static_cast<size_t>(draw.between(0, static_cast<int64_t>(around.size()) - 1))];
  try {
    auto op = varied(base, draw);
    if (!op) return {};
    if (!small_enough(*op)) return {};
    if (!rules::why_not_searchable(*op).empty() || draw.chance(0.4)) return {{*op, {}}};
    return zoo_like_candidate(*op, draw);
  } catch (const ir::IrError&) {
    return {};
  }
}

}  // namespace

const std::vector<std::string>& sampled_forms() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const auto& form : forms()) list.push_back(form.name);
    return list;
  }();
  return names;
}

std::vector<OpToMeasure> sampled_operators(size_t count, uint64_t seed, const std::vector<ir::OpExpr>& around) {
  Draw draw(seed);
  std::vector<OpToMeasure> ops;
  std::set<std::string> seen;
  // Bounded so that a form whose draws are all excluded cannot loop forever.
  for (size_t attempt = 0; ops.size() < count && attempt < 20 * count + 100; ++attempt) {
    // Alternately around the given operators and from the forms, so both are covered.
    const bool near_given = !around.empty() && attempt % 2 == 0;
    const Form& form = forms()[(around.empty() ? attempt : attempt / 2) % forms().size()];
    for (auto& drawn : near_given ? draw_around(around, draw) : draw_form(form, draw)) {
      if (ops.size() == count) break;
      // A held-out statement must never be fitted on; skipping the held-out fifth of the hash
      // space excludes every held-out zoo statement without knowing which ones they are.
      if (is_held_out(drawn.op) || !seen.insert(drawn.op.canonical_key()).second) continue;
      ops.push_back(std::move(drawn));
    }
  }
  return ops;
}

}  // namespace gos::measure
