// The familiar operators written as OpExprs. Each is one statement spelling out the framework's
// definition; the parts that take care are the output extents (the frameworks' rounding rules)
// and average pooling's per-position divisor, both of which follow torch exactly.
#include "ir/ops.h"

#include <algorithm>
#include <optional>
#include <cmath>
#include <numeric>

#include "ir/parts.h"

namespace gos::ir {

namespace {

// ---- Validation ---------------------------------------------------------------------------------

void require(bool condition, std::string_view op_name, const std::string& message) {
  if (!condition) throw IrError(std::string(op_name) + ": " + message);
}

void require_positive(std::string_view op_name, std::string_view attribute, int64_t value) {
  require(value > 0, op_name, std::string(attribute) + " (" + std::to_string(value) + ") must be positive");
}

void require_non_negative(std::string_view op_name, std::string_view attribute, int64_t value) {
  require(value >= 0, op_name, std::string(attribute) + " (" + std::to_string(value) + ") must not be negative");
}

void require_divides(std::string_view op_name, int64_t groups, std::string_view attribute, int64_t value) {
  require(value % groups == 0, op_name,
          "groups (" + std::to_string(groups) + ") must divide " + std::string(attribute) + " (" +
              std::to_string(value) + ")");
}

void require_entries(std::string_view op_name, std::string_view attribute, size_t entries, size_t expected) {
  require(entries == expected, op_name,
          std::string(attribute) + " has " + std::to_string(entries) + " entries; expected " +
              std::to_string(expected));
}

// ---- Index bookkeeping --------------------------------------------------------------------------

Affine index(const std::string& name) { return Affine::index(name); }

// Binds a reduction index and returns the subscript that reads along it. A unit extent binds
// nothing and reads at 0, so that a 1x1 kernel or a one-channel group is written without a
// pointless index.
Affine bind_reduction(Statement& statement, const std::string& name, int64_t extent) {
  if (extent == 1) return Affine::constant(0);
  statement.reduction_indices.push_back({name, extent});
  return index(name);
}

Affine bind_output(Statement& statement, const std::string& name, int64_t extent) {
  statement.output_indices.push_back({name, extent});
  return index(name);
}

// Index names for the spatial dimensions: output positions and kernel taps.
struct SpatialNames {
  std::vector<std::string> positions;
  std::vector<std::string> taps;
};

SpatialNames spatial_names(std::string_view op_name, size_t rank) {
  switch (rank) {
    case 1: return {{"l"}, {"r"}};
    case 2: return {{"h", "w"}, {"r", "s"}};
    case 3: return {{"d", "h", "w"}, {"q", "r", "s"}};
  }
  throw IrError(std::string(op_name) + ": " + std::to_string(rank) + " spatial dimensions; expected 1 to 3");
}

// Names for the dimensions of an elementwise operator's tensors, as a reader expects them.
std::vector<std::string> elementwise_names(size_t rank) {
  switch (rank) {
    case 1: return {"i"};
    case 2: return {"n", "c"};
    case 3: return {"n", "c", "l"};
    case 4: return {"n", "c", "h", "w"};
    case 5: return {"n", "c", "d", "h", "w"};
  }
  std::vector<std::string> names;
  for (size_t dim = 0; dim < rank; ++dim) names.push_back("i" + std::to_string(dim));
  return names;
}

std::vector<Affine> plain_subscripts(const std::vector<std::string>& names) {
  std::vector<Affine> subscripts;
  for (const auto& name : names) subscripts.push_back(index(name));
  return subscripts;
}

TensorDecl declare(std::string name, Role role, std::vector<int64_t> shape) {
  return TensorDecl{std::move(name), role, std::move(shape), nullptr};
}

// ---- Sliding windows ----------------------------------------------------------------------------

// One spatial dimension of a convolution or pooling window.
struct WindowDim {
  int64_t input = 1;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_begin = 0;
  int64_t pad_end = 0;
  int64_t output = 1;  // filled in by set_outputs

  int64_t span() const { return dilation * (kernel - 1) + 1; }
  int64_t start(int64_t position) const { return position * stride - pad_begin; }
};

// torch's pooling_output_shape_pad_lr (and ONNX Runtime's): in ceil mode the last window may
// hang past the end padding, but must start inside the input or its begin padding.
int64_t output_extent(const WindowDim& dim, bool ceil_mode) {
  int64_t room = dim.input + dim.pad_begin + dim.pad_end - dim.span();
  if (room < 0) return 0;
  int64_t extent = (ceil_mode ? (room + dim.stride - 1) / dim.stride : room / dim.stride) + 1;
  if (ceil_mode && (extent - 1) * dim.stride >= dim.input + dim.pad_begin) --extent;
  return extent;
}

void validate_window(std::string_view op_name, const WindowDim& dim) {
  require_positive(op_name, "input_size", dim.input);
  require_positive(op_name, "kernel", dim.kernel);
  require_positive(op_name, "stride", dim.stride);
  require_positive(op_name, "dilation", dim.dilation);
  require_non_negative(op_name, "padding", dim.pad_begin);
  require_non_negative(op_name, "padding", dim.pad_end);
}

// Validates each dimension and fills in its output extent.
void set_outputs(std::string_view op_name, std::vector<WindowDim>& dims, bool ceil_mode) {
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    WindowDim& dim = dims[axis];
    validate_window(op_name, dim);
    dim.output = output_extent(dim, ceil_mode);
    require(dim.output > 0, op_name,
            "the output is empty along spatial dimension " + std::to_string(axis) + ": input_size (" +
                std::to_string(dim.input) + ") plus padding (" + std::to_string(dim.pad_begin) + "+" +
                std::to_string(dim.pad_end) + ") is smaller than the dilated kernel (" +
                std::to_string(dim.span()) + ")");
  }
}

// `stride*position + dilation*tap - pad_begin`: the input coordinate a window tap reads.
Affine window_subscript(const WindowDim& dim, const Affine& position, const Affine& tap) {
  return position * dim.stride + tap * dim.dilation - Affine::constant(dim.pad_begin);
}

// Binds a spatial output index and kernel tap per dimension, appending the output subscripts and
// the input reads; returns the tap subscripts (what a convolution weight is indexed by).
std::vector<Affine> bind_windows(Statement& statement, const std::vector<WindowDim>& dims,
                                 const SpatialNames& names, std::vector<Affine>& output_subscripts,
                                 std::vector<Affine>& input_subscripts) {
  std::vector<Affine> taps;
  for (size_t axis = 0; axis < dims.size(); ++axis) {
    Affine position = bind_output(statement, names.positions[axis], dims[axis].output);
    Affine tap = bind_reduction(statement, names.taps[axis], dims[axis].kernel);
    output_subscripts.push_back(position);
    input_subscripts.push_back(window_subscript(dims[axis], position, tap));
    taps.push_back(tap);
  }
  return taps;
}

// ---- Convolution --------------------------------------------------------------------------------

struct ConvGeometry {
  std::string_view name;  // the constructor, for messages
  int64_t batch = 1;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t groups = 1;
  std::vector<WindowDim> spatial;
  bool bias = false;
  Activation activation = Activation::None;
  bool shuffle = false;
};

// Channel subscripts of a (grouped) convolution. With groups the output channel is written
// mixed-radix as (group g, channel k in group) so that the input channel, Cg*g + c, stays affine.
struct ChannelSubscripts {
  Affine output;  // in Y, B and W's first dimension
  Affine input;   // in X
  Affine weight_input;  // W's second dimension (the channel within the group)
};

ChannelSubscripts bind_channels(Statement& statement, const ConvGeometry& conv) {
  if (conv.groups == 1) {
    Affine output = bind_output(statement, "k", conv.out_channels);
    Affine input = bind_reduction(statement, "c", conv.in_channels);
    return {output, input, input};
  }
  const int64_t outputs_per_group = conv.out_channels / conv.groups;
  const int64_t inputs_per_group = conv.in_channels / conv.groups;
  Affine group = bind_output(statement, "g", conv.groups);
  Affine output = group * outputs_per_group;
  if (outputs_per_group > 1) output = output + bind_output(statement, "k", outputs_per_group);
  Affine input_in_group = bind_reduction(statement, "c", inputs_per_group);
  Affine input = conv.shuffle ? group + input_in_group * conv.groups : group * inputs_per_group + input_in_group;
  return {output, input, input_in_group};
}

void validate_conv(ConvGeometry& conv) {
  require_positive(conv.name, "batch", conv.batch);
  require_positive(conv.name, "in_channels", conv.in_channels);
  require_positive(conv.name, "out_channels", conv.out_channels);
  require_positive(conv.name, "groups", conv.groups);
  require_divides(conv.name, conv.groups, "in_channels", conv.in_channels);
  require_divides(conv.name, conv.groups, "out_channels", conv.out_channels);
  set_outputs(conv.name, conv.spatial, /*ceil_mode=*/false);
}

// Y[n,k,h,w] = act(sum{c,r,s} X[n,c,sh*h+dh*r-pt,sw*w+dw*s-pl] * W[k,c,r,s] + B[k]), any spatial rank.
OpExpr convolution(ConvGeometry conv) {
  validate_conv(conv);
  Statement statement;
  statement.output.tensor = "Y";
  statement.activation = conv.activation;
  Affine batch = bind_output(statement, "n", conv.batch);
  ChannelSubscripts channels = bind_channels(statement, conv);
  std::vector<Affine> output_subscripts{batch, channels.output};
  std::vector<Affine> input_subscripts{batch, channels.input};
  std::vector<Affine> weight_subscripts{channels.output, channels.weight_input};
  std::vector<Affine> taps = bind_windows(statement, conv.spatial, spatial_names(conv.name, conv.spatial.size()),
                                          output_subscripts, input_subscripts);
  weight_subscripts.insert(weight_subscripts.end(), taps.begin(), taps.end());
  statement.output.subscripts = output_subscripts;
  statement.factors = {Access{"X", input_subscripts}, Access{"W", weight_subscripts}};

  std::vector<int64_t> input_shape{conv.batch, conv.in_channels};
  std::vector<int64_t> weight_shape{conv.out_channels, conv.in_channels / conv.groups};
  for (const auto& dim : conv.spatial) {
    input_shape.push_back(dim.input);
    weight_shape.push_back(dim.kernel);
  }
  std::vector<TensorDecl> tensors{declare("X", Role::Input, input_shape), declare("W", Role::Param, weight_shape)};
  if (conv.bias) {
    statement.addends.push_back(Access{"B", {channels.output}});
    tensors.push_back(declare("B", Role::Param, {conv.out_channels}));
  }
  return OpExpr::make(std::move(tensors), {std::move(statement)});
}

ConvGeometry conv2d_geometry(std::string_view name, const Conv2dSpec& spec) {
  ConvGeometry conv{name, spec.batch, spec.in_channels, spec.out_channels, spec.groups, {}, spec.bias,
                    spec.activation, spec.shuffle};
  for (size_t axis = 0; axis < 2; ++axis) {
    conv.spatial.push_back({spec.input_size[axis], spec.kernel[axis], spec.stride[axis], spec.dilation[axis],
                            spec.padding[axis], spec.padding[axis + 2]});
  }
  return conv;
}

// ---- Pooling ------------------------------------------------------------------------------------

struct PoolGeometry {
  std::string_view name;
  int64_t batch = 1;
  int64_t channels = 1;
  std::vector<WindowDim> spatial;
};

// An empty attribute vector means the ONNX default (`fallback` in every dimension).
std::vector<int64_t> or_default(const std::vector<int64_t>& values, size_t entries, int64_t fallback) {
  return values.empty() ? std::vector<int64_t>(entries, fallback) : values;
}

PoolGeometry pool_geometry(std::string_view name, const PoolSpec& spec) {
  const size_t rank = spec.input_size.size();
  require(rank == 1 || rank == 2, name, "input_size has " + std::to_string(rank) + " entries; expected 1 or 2");
  require_positive(name, "batch", spec.batch);
  require_positive(name, "channels", spec.channels);
  auto stride = or_default(spec.stride, rank, 1);
  auto dilation = or_default(spec.dilation, rank, 1);
  auto padding = or_default(spec.padding, 2 * rank, 0);
  require_entries(name, "kernel", spec.kernel.size(), rank);
  require_entries(name, "stride", stride.size(), rank);
  require_entries(name, "dilation", dilation.size(), rank);
  require_entries(name, "padding", padding.size(), 2 * rank);

  PoolGeometry pool{name, spec.batch, spec.channels, {}};
  for (size_t axis = 0; axis < rank; ++axis) {
    pool.spatial.push_back({spec.input_size[axis], spec.kernel[axis], stride[axis], dilation[axis], padding[axis],
                            padding[axis + rank]});
  }
  set_outputs(name, pool.spatial, spec.ceil_mode);
  return pool;
}

bool window_touches_input(const WindowDim& dim, int64_t position) {
  for (int64_t tap = 0; tap < dim.kernel; ++tap) {
    int64_t coordinate = dim.start(position) + tap * dim.dilation;
    if (coordinate >= 0 && coordinate < dim.input) return true;
  }
  return false;
}

// A window of padding alone has no maximum and no average (torch gives -inf or 0/0), so such
// attributes are rejected rather than given a made-up value.
void require_windows_touch_input(const PoolGeometry& pool) {
  for (size_t axis = 0; axis < pool.spatial.size(); ++axis) {
    for (int64_t position = 0; position < pool.spatial[axis].output; ++position) {
      require(window_touches_input(pool.spatial[axis], position), pool.name,
              "the window at output position " + std::to_string(position) + " of spatial dimension " +
                  std::to_string(axis) + " reads only padding (reduce padding or dilation)");
    }
  }
}

// Y[n,c,h,w] = reduce{r,s} X[n,c,sh*h+dh*r-pt,sw*w+dw*s-pl], and X's declaration.
std::pair<Statement, TensorDecl> pool_statement(const PoolGeometry& pool, Reduction reduction) {
  Statement statement;
  statement.output.tensor = "Y";
  statement.reduction = reduction;
  Affine batch = bind_output(statement, "n", pool.batch);
  Affine channel = bind_output(statement, "c", pool.channels);
  std::vector<Affine> output_subscripts{batch, channel};
  std::vector<Affine> input_subscripts{batch, channel};
  bind_windows(statement, pool.spatial, spatial_names(pool.name, pool.spatial.size()), output_subscripts,
               input_subscripts);
  statement.output.subscripts = output_subscripts;
  statement.factors = {Access{"X", input_subscripts}};

  std::vector<int64_t> input_shape{pool.batch, pool.channels};
  for (const auto& dim : pool.spatial) input_shape.push_back(dim.input);
  return {std::move(statement), declare("X", Role::Input, input_shape)};
}

// torch's avg_pool divisor along one dimension: the window clipped to the padded input, or to
// the input itself without count_include_pad.
int64_t window_divisor(const WindowDim& dim, int64_t position, bool count_include_pad) {
  int64_t begin = dim.start(position);
  int64_t end = std::min(begin + dim.kernel, dim.input + dim.pad_end);
  if (count_include_pad) return end - begin;
  return std::min(end, dim.input) - std::max<int64_t>(begin, 0);
}

// The divisor of every output position (row-major over the spatial output extents).
std::vector<int64_t> divisor_table(const PoolGeometry& pool, bool count_include_pad) {
  std::vector<int64_t> table{1};
  for (const auto& dim : pool.spatial) {
    std::vector<int64_t> extended;
    for (int64_t outer : table) {
      for (int64_t position = 0; position < dim.output; ++position) {
        extended.push_back(outer * window_divisor(dim, position, count_include_pad));
      }
    }
    table = std::move(extended);
  }
  return table;
}

// ---- Elementwise --------------------------------------------------------------------------------

// Y[...] = act(X[...] + Z[...]) over `shape`, without Z when `residual` is false.
OpExpr elementwise(std::string_view op_name, const std::vector<int64_t>& shape, Activation act, bool residual) {
  for (int64_t extent : shape) require_positive(op_name, "shape", extent);
  Statement statement;
  statement.output.tensor = "Y";
  statement.activation = act;
  std::vector<std::string> names = elementwise_names(shape.size());
  for (size_t dim = 0; dim < shape.size(); ++dim) bind_output(statement, names[dim], shape[dim]);
  statement.output.subscripts = plain_subscripts(names);
  statement.factors = {Access{"X", plain_subscripts(names)}};
  std::vector<TensorDecl> tensors{declare("X", Role::Input, shape)};
  if (residual) {
    statement.addends = {Access{"Z", plain_subscripts(names)}};
    tensors.push_back(declare("Z", Role::Input, shape));
  }
  return OpExpr::make(std::move(tensors), {std::move(statement)});
}

// ---- Batch-norm folding -------------------------------------------------------------------------

// The dimension of W whose subscript is the output's channel subscript (Y's dimension 1), which
// is where the normalisation's per-channel scale applies.
// The last statement's param that carries the output channel (W of a conv or linear layer; W2 of
// a factorised candidate), and its dimension indexed by that channel.
struct ChannelWeight {
  std::string name;
  size_t dim = 0;
};

ChannelWeight channel_weight(const OpExpr& op) {
  const Statement& statement = op.statements().back();
  require(statement.output.subscripts.size() >= 2, "fold_batch_norm", "the output has no channel dimension");
  const Affine& channel = statement.output.subscripts[1];
  std::optional<ChannelWeight> found;
  for (const auto& factor : statement.factors) {
    if (op.tensor(factor.tensor).role != Role::Param) continue;
    for (size_t dim = 0; dim < factor.subscripts.size(); ++dim) {
      if (factor.subscripts[dim] != channel) continue;
      require(!found, "fold_batch_norm", "more than one param is indexed by the output channel");
      found = ChannelWeight{factor.tensor, dim};
    }
  }
  require(found.has_value(), "fold_batch_norm", "no param of the last statement is indexed by the output channel");
  return *found;
}

// A bias must be B[channel] and the only addend: a residual added before the normalisation would
// need scaling too.
void require_only_bias_addend(const OpExpr& op) {
  const Statement& statement = op.statements().back();
  for (const auto& addend : statement.addends) {
    require(addend.tensor == "B" && addend.subscripts.size() == 1 && addend.subscripts[0] == statement.output.subscripts[1],
            "fold_batch_norm", "the last statement adds " + addend.tensor + ", not only a bias B[channel]");
  }
  require(!op.find_tensor("B") || !statement.addends.empty(), "fold_batch_norm", "B is not the last statement's bias");
}

const Tensor& bound_weight(const OpExpr& op, const TensorMap& weights, const std::string& name) {
  auto found = weights.find(name);
  require(found != weights.end(), "fold_batch_norm", "no value given for " + name);
  require(found->second.shape == op.tensor(name).shape, "fold_batch_norm",
          "the value given for " + name + " does not have the operator's shape");
  return found->second;
}

void validate_batch_norm(const BatchNormParams& bn, int64_t channels) {
  using Named = std::pair<std::string_view, const std::vector<float>*>;
  for (const auto& [name, values] : {Named{"gamma", &bn.gamma}, Named{"beta", &bn.beta}, Named{"mean", &bn.mean},
                                     Named{"var", &bn.var}}) {
    require(static_cast<int64_t>(values->size()) == channels, "fold_batch_norm",
            std::string(name) + " has " + std::to_string(values->size()) + " values; the operator has " +
                std::to_string(channels) + " output channels");
  }
  for (float var : bn.var) {
    require(var + bn.epsilon > 0.0f, "fold_batch_norm", "var + epsilon must be positive");
  }
}

// W'[..., k, ...] = W[..., k, ...] * scale[k] along `channel_dim`.
Tensor scale_along(const Tensor& weight, size_t channel_dim, const std::vector<float>& scale) {
  int64_t inner = std::accumulate(weight.shape.begin() + channel_dim + 1, weight.shape.end(), int64_t{1},
                                  std::multiplies<>());
  int64_t channels = weight.shape[channel_dim];
  Tensor scaled = weight;
  for (int64_t element = 0; element < scaled.elements(); ++element) {
    scaled.data[element] *= scale[(element / inner) % channels];
  }
  return scaled;
}

// The operator with a bias addend B[channel] added, declared right after W as the constructors do.
OpExpr with_bias(const OpExpr& op, const std::string& weight, const Affine& channel, int64_t channels) {
  std::vector<TensorDecl> tensors = detail::declared_tensors(op.tensors());
  auto found = std::find_if(tensors.begin(), tensors.end(), [&](const TensorDecl& t) { return t.name == weight; });
  tensors.insert(found + 1, declare("B", Role::Param, {channels}));
  std::vector<Statement> statements = op.statements();
  statements.back().addends.push_back(Access{"B", {channel}});
  return OpExpr::make(std::move(tensors), std::move(statements));
}

}  // namespace

OpExpr conv2d(const Conv2dSpec& spec) { return convolution(conv2d_geometry("conv2d", spec)); }

OpExpr conv1d(const Conv1dSpec& spec) {
  ConvGeometry conv{"conv1d", spec.batch, spec.in_channels, spec.out_channels, spec.groups, {}, spec.bias,
                    spec.activation, spec.shuffle};
  conv.spatial.push_back(
      {spec.input_length, spec.kernel, spec.stride, spec.dilation, spec.padding[0], spec.padding[1]});
  return convolution(conv);
}

OpExpr depthwise_conv2d(Conv2dSpec spec, int64_t multiplier) {
  require_positive("depthwise_conv2d", "multiplier", multiplier);
  require_positive("depthwise_conv2d", "in_channels", spec.in_channels);
  spec.groups = spec.in_channels;
  spec.out_channels = spec.in_channels * multiplier;
  return convolution(conv2d_geometry("depthwise_conv2d", spec));
}

// Y[n,k] = act(sum{c} X[n,c] * W[k,c] + B[k]), with X and W read transposed as stored.
OpExpr linear(const LinearSpec& spec) {
  require_positive("linear", "batch", spec.batch);
  require_positive("linear", "in_features", spec.in_features);
  require_positive("linear", "out_features", spec.out_features);
  Statement statement;
  statement.output.tensor = "Y";
  statement.activation = spec.activation;
  Affine batch = bind_output(statement, "n", spec.batch);
  Affine output = bind_output(statement, "k", spec.out_features);
  Affine input = bind_reduction(statement, "c", spec.in_features);
  statement.output.subscripts = {batch, output};

  Access x{"X", {batch, input}};
  std::vector<int64_t> x_shape{spec.batch, spec.in_features};
  if (spec.trans_a) {
    std::swap(x.subscripts[0], x.subscripts[1]);
    std::swap(x_shape[0], x_shape[1]);
  }
  Access w{"W", {output, input}};
  std::vector<int64_t> w_shape{spec.out_features, spec.in_features};
  if (!spec.trans_b) {
    std::swap(w.subscripts[0], w.subscripts[1]);
    std::swap(w_shape[0], w_shape[1]);
  }
  statement.factors = {x, w};
  std::vector<TensorDecl> tensors{declare("X", Role::Input, x_shape), declare("W", Role::Param, w_shape)};
  if (spec.bias) {
    statement.addends.push_back(Access{"B", {output}});
    tensors.push_back(declare("B", Role::Param, {spec.out_features}));
  }
  return OpExpr::make(std::move(tensors), {std::move(statement)});
}

// Y[b..., m, n] = sum{k} X[b..., m, k] * Z[b..., k, n]  (or * W[k, n]).
OpExpr matmul(const MatMulSpec& spec) {
  for (int64_t extent : spec.batch_dims) require_positive("matmul", "batch_dims", extent);
  require_positive("matmul", "m", spec.m);
  require_positive("matmul", "k", spec.k);
  require_positive("matmul", "n", spec.n);
  require(!(spec.weight_rhs && spec.weight_lhs), "matmul", "weight_rhs and weight_lhs exclude each other");
  require(!spec.bias || spec.weight_lhs || spec.weight_rhs, "matmul", "a bias needs a weight");
  require(!spec.weight_transposed || spec.weight_rhs, "matmul", "weight_transposed needs weight_rhs");
  Statement statement;
  statement.output.tensor = "Y";
  std::vector<Affine> batch;
  for (size_t dim = 0; dim < spec.batch_dims.size(); ++dim) {
    batch.push_back(bind_output(statement, "b" + std::to_string(dim), spec.batch_dims[dim]));
  }
  Affine row = bind_output(statement, "m", spec.m);
  Affine column = bind_output(statement, "n", spec.n);
  Affine inner = bind_reduction(statement, "k", spec.k);

  auto batched = [&](std::vector<Affine> trailing) {
    std::vector<Affine> subscripts = batch;
    subscripts.insert(subscripts.end(), trailing.begin(), trailing.end());
    return subscripts;
  };
  auto batched_shape = [&](int64_t rows, int64_t columns) {
    std::vector<int64_t> shape = spec.batch_dims;
    shape.push_back(rows);
    shape.push_back(columns);
    return shape;
  };
  statement.output.subscripts = batched({row, column});
  if (spec.weight_lhs) {
    statement.factors = {Access{"W", {row, inner}}, Access{"X", batched({inner, column})}};
    std::vector<TensorDecl> tensors{declare("X", Role::Input, batched_shape(spec.k, spec.n)),
                                    declare("W", Role::Param, {spec.m, spec.k})};
    if (spec.bias) {
      statement.addends.push_back(Access{"B", {row}});
      tensors.push_back(declare("B", Role::Param, {spec.m}));
    }
    return OpExpr::make(std::move(tensors), {std::move(statement)});
  }
  std::vector<TensorDecl> tensors{declare("X", Role::Input, batched_shape(spec.m, spec.k))};
  if (spec.weight_rhs) {
    if (spec.weight_transposed) {
      statement.factors = {Access{"X", batched({row, inner})}, Access{"W", {column, inner}}};
      tensors.push_back(declare("W", Role::Param, {spec.n, spec.k}));
    } else {
      statement.factors = {Access{"X", batched({row, inner})}, Access{"W", {inner, column}}};
      tensors.push_back(declare("W", Role::Param, {spec.k, spec.n}));
    }
    if (spec.bias) {
      statement.addends.push_back(Access{"B", {column}});
      tensors.push_back(declare("B", Role::Param, {spec.n}));
    }
  } else {
    statement.factors = {Access{"X", batched({row, inner})}, Access{"Z", batched({inner, column})}};
    tensors.push_back(declare("Z", Role::Input, batched_shape(spec.k, spec.n)));
  }
  return OpExpr::make(std::move(tensors), {std::move(statement)});
}

OpExpr max_pool(const PoolSpec& spec) {
  PoolGeometry pool = pool_geometry("max_pool", spec);
  require_windows_touch_input(pool);
  auto [statement, input] = pool_statement(pool, Reduction::Max);
  return OpExpr::make({input}, {statement});
}

// `mean` when every window divides by the full kernel size; otherwise a sum scaled by a const
// table C of 1/divisor per output position (ceil-mode overhang, excluded padding).
OpExpr average_pool(const PoolSpec& spec) {
  for (int64_t dilation : spec.dilation) {
    require(dilation == 1, "average_pool",
            "dilation (" + std::to_string(dilation) + ") must be 1; only max pooling dilates");
  }
  PoolSpec undilated = spec;
  undilated.dilation.clear();
  PoolGeometry pool = pool_geometry("average_pool", undilated);
  require_windows_touch_input(pool);

  const int64_t window = std::accumulate(spec.kernel.begin(), spec.kernel.end(), int64_t{1}, std::multiplies<>());
  std::vector<int64_t> divisors = divisor_table(pool, spec.count_include_pad);
  bool uniform = std::all_of(divisors.begin(), divisors.end(), [&](int64_t divisor) { return divisor == window; });
  if (uniform) {
    auto [statement, input] = pool_statement(pool, Reduction::Mean);
    return OpExpr::make({input}, {statement});
  }

  auto [statement, input] = pool_statement(pool, Reduction::Sum);
  std::vector<Affine> positions(statement.output.subscripts.begin() + 2, statement.output.subscripts.end());
  statement.factors.push_back(Access{"C", positions});
  std::vector<int64_t> table_shape;
  for (const auto& dim : pool.spatial) table_shape.push_back(dim.output);
  auto reciprocals = std::make_shared<std::vector<float>>();
  for (int64_t divisor : divisors) reciprocals->push_back(1.0f / static_cast<float>(divisor));
  TensorDecl table{"C", Role::Const, table_shape, std::move(reciprocals)};
  return OpExpr::make({input, table}, {statement});
}

// Y[n,c,i,j] = mean{h,w} X[n,c,h,w] with unit output indices i, j for the kept dimensions.
OpExpr global_average_pool(int64_t batch, int64_t channels, std::vector<int64_t> spatial, bool keep_dims) {
  constexpr std::string_view name = "global_average_pool";
  require_positive(name, "batch", batch);
  require_positive(name, "channels", channels);
  for (int64_t extent : spatial) require_positive(name, "spatial", extent);
  const std::vector<std::string> kept_names{"i", "j", "m"};
  SpatialNames names = spatial_names(name, spatial.size());

  Statement statement;
  statement.output.tensor = "Y";
  statement.reduction = Reduction::Mean;
  Affine n = bind_output(statement, "n", batch);
  Affine c = bind_output(statement, "c", channels);
  statement.output.subscripts = {n, c};
  std::vector<Affine> input_subscripts{n, c};
  for (size_t axis = 0; axis < spatial.size(); ++axis) {
    if (keep_dims) statement.output.subscripts.push_back(bind_output(statement, kept_names[axis], 1));
    input_subscripts.push_back(bind_reduction(statement, names.positions[axis], spatial[axis]));
  }
  statement.factors = {Access{"X", input_subscripts}};
  std::vector<int64_t> input_shape{batch, channels};
  input_shape.insert(input_shape.end(), spatial.begin(), spatial.end());
  return OpExpr::make({declare("X", Role::Input, input_shape)}, {statement});
}

OpExpr mean_over_axes(const std::vector<int64_t>& shape, const std::vector<int64_t>& axes, bool keep_dims) {
  constexpr std::string_view name = "mean_over_axes";
  for (int64_t extent : shape) require_positive(name, "extent", extent);
  require(!axes.empty() && std::ranges::is_sorted(axes) && std::ranges::adjacent_find(axes) == axes.end(), name,
          "axes must be given, sorted and distinct");
  require(axes.front() >= 1 && axes.back() < static_cast<int64_t>(shape.size()), name,
          "axes must lie between 1 and the rank - 1 (the batch axis is not reduced)");
  Statement statement;
  statement.output.tensor = "Y";
  statement.reduction = Reduction::Mean;
  std::vector<Affine> input_subscripts;
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    const std::string suffix = std::to_string(axis);
    if (std::ranges::find(axes, static_cast<int64_t>(axis)) == axes.end()) {
      input_subscripts.push_back(bind_output(statement, "d" + suffix, shape[axis]));
      statement.output.subscripts.push_back(input_subscripts.back());
    } else {
      input_subscripts.push_back(bind_reduction(statement, "r" + suffix, shape[axis]));
      if (keep_dims) statement.output.subscripts.push_back(bind_output(statement, "u" + suffix, 1));
    }
  }
  statement.factors = {Access{"X", input_subscripts}};
  return OpExpr::make({declare("X", Role::Input, shape)}, {statement});
}

OpExpr activation(const std::vector<int64_t>& shape, Activation act) {
  return elementwise("activation", shape, act, /*residual=*/false);
}

OpExpr add(const std::vector<int64_t>& shape, Activation act) {
  return elementwise("add", shape, act, /*residual=*/true);
}

// Inference batch norm is y*scale + shift per output channel, with scale = gamma/sqrt(var+eps)
// and shift = beta - mean*scale; scaling W and shifting B gives the same output.
FoldedOp fold_batch_norm(const OpExpr& op, const TensorMap& weights, const BatchNormParams& bn) {
  const Statement& statement = op.statements().back();
  require(statement.activation == Activation::None, "fold_batch_norm",
          "the operator applies " + std::string(to_string(statement.activation)) +
              " before the normalisation; fold the batch norm before fusing the activation");
  require_only_bias_addend(op);
  const ChannelWeight weight = channel_weight(op);
  const int64_t channels = op.tensor(weight.name).shape[weight.dim];
  validate_batch_norm(bn, channels);

  std::vector<float> scale(channels);
  Tensor bias({channels}, 0.0f);
  const bool had_bias = op.find_tensor("B") != nullptr;
  if (had_bias) bias = bound_weight(op, weights, "B");
  for (int64_t k = 0; k < channels; ++k) {
    scale[k] = bn.gamma[k] / std::sqrt(bn.var[k] + bn.epsilon);
    bias.data[k] = (bias.data[k] - bn.mean[k]) * scale[k] + bn.beta[k];
  }

  FoldedOp folded{had_bias ? op : with_bias(op, weight.name, statement.output.subscripts[1], channels), {}};
  folded.weights[weight.name] = scale_along(bound_weight(op, weights, weight.name), weight.dim, scale);
  folded.weights["B"] = std::move(bias);
  return folded;
}

OpExpr without_activation(const OpExpr& op) {
  std::vector<Statement> statements = op.statements();
  statements.back().activation = Activation::None;
  return OpExpr::make(detail::declared_tensors(op.tensors()), std::move(statements));
}

}  // namespace gos::ir
