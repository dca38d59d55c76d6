// Kernel recognition by canonical equality with the ir::ops constructors (see kernels.h).
#include "lowering/kernels.h"

#include <algorithm>
#include <functional>
#include <optional>

namespace gos::lowering {

namespace {

using ir::Access;
using ir::OpExpr;
using ir::Role;
using ir::Statement;
using ir::TensorDecl;

// The statement's reads, by role, in order: what attribute extraction looks at.
struct Reads {
  std::vector<const Access*> inputs, params, consts;
};

Reads reads_of(const OpExpr& single, const std::vector<Access>& accesses) {
  Reads reads;
  for (const auto& access : accesses) {
    Role role = single.tensor(access.tensor).role;
    if (role == Role::Input) reads.inputs.push_back(&access);
    if (role == Role::Param) reads.params.push_back(&access);
    if (role == Role::Const) reads.consts.push_back(&access);
  }
  return reads;
}

// One spatial axis read off a windowed subscript `stride*o + dilation*t - pad`.
struct WindowAxis {
  int64_t input = 0, output = 0, kernel = 1, stride = 1, dilation = 1, pad_begin = 0;
};

std::optional<WindowAxis> window_axis(const Statement& statement, const ir::Affine& output_subscript,
                                      const ir::Affine& input_subscript, int64_t input_extent) {
  auto position = output_subscript.plain_index();
  if (!position) return std::nullopt;
  WindowAxis axis;
  axis.input = input_extent;
  axis.output = statement.extent_of(*position);
  axis.pad_begin = -input_subscript.constant_term();
  for (const auto& [name, coefficient] : input_subscript.terms()) {
    if (name == *position) {
      axis.stride = coefficient;
    } else if (std::any_of(statement.reduction_indices.begin(), statement.reduction_indices.end(),
                           [&](const ir::IndexVar& index) { return index.name == name; })) {
      axis.dilation = coefficient;
      axis.kernel = statement.extent_of(name);
    } else {
      return std::nullopt;
    }
  }
  if (axis.stride <= 0 || axis.dilation <= 0 || axis.pad_begin < 0) return std::nullopt;
  return axis;
}

std::optional<std::vector<WindowAxis>> window_axes(const Statement& statement, const Access& input,
                                                   const TensorDecl& input_decl) {
  const size_t rank = input.subscripts.size();
  if (rank < 3 || rank > 4 || statement.output.subscripts.size() != rank) return std::nullopt;
  std::vector<WindowAxis> axes;
  for (size_t dim = 2; dim < rank; ++dim) {
    auto axis = window_axis(statement, statement.output.subscripts[dim], input.subscripts[dim], input_decl.shape[dim]);
    if (!axis) return std::nullopt;
    axes.push_back(*axis);
  }
  return axes;
}

// The smallest end padding that gives `output` positions without ceil mode.
int64_t end_padding(const WindowAxis& axis) {
  int64_t span = axis.dilation * (axis.kernel - 1) + 1;
  return std::max<int64_t>(0, (axis.output - 1) * axis.stride + span - axis.input - axis.pad_begin);
}

std::map<std::string, std::string> operand_names(const OpExpr& kernel_op, const OpExpr& single) {
  std::map<std::string, std::string> by_canonical;
  for (const auto& [name, canonical] : ir::canonical_tensor_names(single)) by_canonical[canonical] = name;
  std::map<std::string, std::string> operands;
  for (const auto& [name, canonical] : ir::canonical_tensor_names(kernel_op)) {
    if (auto found = by_canonical.find(canonical); found != by_canonical.end()) operands[name] = found->second;
  }
  return operands;
}

// Accepts `candidate` if it is exactly the statement (its activation aside).
bool matches(const std::function<OpExpr()>& build, const OpExpr& stripped, Kernel& kernel) {
  try {
    OpExpr candidate = build();
    if (candidate != stripped) return false;
    kernel.operands = operand_names(candidate, stripped);
    return true;
  } catch (const ir::IrError&) {
    return false;  // the attributes read off the statement do not form a valid kernel
  }
}

bool recognise_conv(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  Reads factors = reads_of(stripped, s.factors);
  if (s.reduction != ir::Reduction::Sum || factors.inputs.size() != 1 || factors.params.size() != 1 ||
      s.factors.size() != 2 || s.addends.size() > 1) {
    return false;
  }
  const TensorDecl& x = stripped.tensor(factors.inputs[0]->tensor);
  const TensorDecl& w = stripped.tensor(factors.params[0]->tensor);
  auto axes = window_axes(s, *factors.inputs[0], x);
  if (!axes || w.shape.size() != x.shape.size()) return false;
  const auto& y = stripped.output().shape;
  int64_t channels_per_group = w.shape[1];
  if (channels_per_group <= 0 || x.shape[1] % channels_per_group != 0) return false;
  const bool bias = s.addends.size() == 1;
  const int64_t groups = x.shape[1] / channels_per_group;
  kernel.kind = KernelKind::Conv;
  kernel.spatial_rank = static_cast<int>(axes->size());
  // Shuffled input channels are tried only where they differ from the plain grouping.
  const std::vector<bool> shuffles = groups > 1 && channels_per_group > 1 ? std::vector<bool>{false, true}
                                                                          : std::vector<bool>{false};
  for (bool shuffle : shuffles) {
    if (axes->size() == 2) {
      const WindowAxis &h = (*axes)[0], &wd = (*axes)[1];
      kernel.conv2d = {.batch = x.shape[0], .in_channels = x.shape[1], .out_channels = y[1],
                       .input_size = {h.input, wd.input}, .kernel = {w.shape[2], w.shape[3]},
                       .stride = {h.stride, wd.stride},
                       .padding = {h.pad_begin, wd.pad_begin, end_padding(h), end_padding(wd)},
                       .dilation = {h.dilation, wd.dilation}, .groups = groups, .bias = bias, .shuffle = shuffle};
      if (matches([&] { return ir::conv2d(kernel.conv2d); }, stripped, kernel)) return true;
    } else {
      const WindowAxis& l = (*axes)[0];
      kernel.conv1d = {.batch = x.shape[0], .in_channels = x.shape[1], .out_channels = y[1], .input_length = l.input,
                       .kernel = w.shape[2], .stride = l.stride, .padding = {l.pad_begin, end_padding(l)},
                       .dilation = l.dilation, .groups = groups, .bias = bias, .shuffle = shuffle};
      if (matches([&] { return ir::conv1d(kernel.conv1d); }, stripped, kernel)) return true;
    }
  }
  return false;
}

bool recognise_linear(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  Reads factors = reads_of(stripped, s.factors);
  if (s.reduction != ir::Reduction::Sum || s.factors.size() != 2 || factors.inputs.size() != 1 ||
      factors.params.size() != 1 || s.addends.size() > 1) {
    return false;
  }
  const auto& x = stripped.tensor(factors.inputs[0]->tensor).shape;
  const auto& w = stripped.tensor(factors.params[0]->tensor).shape;
  const auto& y = stripped.output().shape;
  if (x.size() != 2 || w.size() != 2 || y.size() != 2) return false;
  kernel.kind = KernelKind::Linear;
  for (bool trans_a : {false, true}) {
    for (bool trans_b : {true, false}) {
      kernel.linear = {.batch = y[0], .in_features = trans_a ? x[0] : x[1], .out_features = y[1], .trans_a = trans_a,
                       .trans_b = trans_b, .bias = s.addends.size() == 1};
      if (matches([&] { return ir::linear(kernel.linear); }, stripped, kernel)) return true;
    }
  }
  return false;
}

bool recognise_matmul(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  Reads factors = reads_of(stripped, s.factors);
  if (s.reduction != ir::Reduction::Sum || s.factors.size() != 2) return false;
  const bool with_weight = factors.inputs.size() == 1 && factors.params.size() == 1;
  if (!with_weight && factors.inputs.size() != 2) return false;
  if (s.addends.size() > (with_weight ? 1u : 0u)) return false;
  const auto& y = stripped.output().shape;
  const auto& x = stripped.tensor(stripped.tensors_with_role(Role::Input)[0].name).shape;
  if (y.size() < 2 || x.size() != y.size()) return false;
  kernel.kind = KernelKind::MatMul;
  const std::vector<int64_t> batch(y.begin(), y.end() - 2);
  const int64_t m = y[y.size() - 2], n = y.back();
  if (with_weight) {  // the weight on the right (a Linear on N-D data), or on the left with a bias per row
    const bool bias = s.addends.size() == 1;
    for (bool transposed : {true, false}) {
      kernel.matmul = {.batch_dims = batch, .m = m, .k = x.back(), .n = n, .weight_rhs = true,
                       .weight_transposed = transposed, .bias = bias};
      if (matches([&] { return ir::matmul(kernel.matmul); }, stripped, kernel)) return true;
    }
    kernel.matmul = {.batch_dims = batch, .m = m, .k = x[x.size() - 2], .n = n, .weight_lhs = true, .bias = bias};
    return matches([&] { return ir::matmul(kernel.matmul); }, stripped, kernel);
  }
  kernel.matmul = {.batch_dims = batch, .m = m, .k = x.back(), .n = n};
  return matches([&] { return ir::matmul(kernel.matmul); }, stripped, kernel);
}

// Pools: the end padding, ceil mode and count_include_pad are not visible in the instructions
// except through the output extent and the divisor table, so each combination is tried.
bool recognise_pool(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  Reads factors = reads_of(stripped, s.factors);
  const bool is_max = s.reduction == ir::Reduction::Max;
  const bool has_table = factors.consts.size() == 1;
  if (factors.inputs.size() != 1 || !factors.params.empty() || !s.addends.empty() ||
      s.factors.size() != 1 + (has_table ? 1 : 0) || (is_max && has_table)) {
    return false;
  }
  const TensorDecl& x = stripped.tensor(factors.inputs[0]->tensor);
  auto axes = window_axes(s, *factors.inputs[0], x);
  if (!axes) return false;
  kernel.kind = is_max ? KernelKind::MaxPool : KernelKind::AveragePool;
  ir::PoolSpec& pool = kernel.pool;
  pool = {.batch = x.shape[0], .channels = x.shape[1], .input_size = {}, .kernel = {}};
  for (const auto& axis : *axes) {
    pool.input_size.push_back(axis.input);
    pool.kernel.push_back(axis.kernel);
    pool.stride.push_back(axis.stride);
    pool.dilation.push_back(axis.dilation);
  }
  std::vector<int64_t> begins;
  for (const auto& axis : *axes) begins.push_back(axis.pad_begin);
  // End paddings up to kernel span + stride cover every output extent a pool can have.
  std::vector<int64_t> limits;
  for (const auto& axis : *axes) limits.push_back(axis.dilation * (axis.kernel - 1) + axis.stride + 1);
  std::vector<int64_t> ends(axes->size(), 0);
  while (true) {
    pool.padding = begins;
    pool.padding.insert(pool.padding.end(), ends.begin(), ends.end());
    for (bool ceil_mode : {false, true}) {
      pool.ceil_mode = ceil_mode;
      for (bool include_pad : is_max ? std::vector<bool>{false} : std::vector<bool>{false, true}) {
        pool.count_include_pad = include_pad;
        auto build = [&] { return is_max ? ir::max_pool(pool) : ir::average_pool(pool); };
        if (matches(build, stripped, kernel)) return true;
      }
    }
    size_t axis = 0;
    while (axis < ends.size() && ++ends[axis] >= limits[axis]) ends[axis++] = 0;
    if (axis == ends.size()) return false;
  }
}

bool recognise_global_pool(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  if (s.reduction != ir::Reduction::Mean || s.factors.size() != 1 || !s.addends.empty()) return false;
  const TensorDecl& x = stripped.tensor(s.factors[0].tensor);
  if (x.role != Role::Input || x.shape.size() < 3) return false;
  kernel.kind = KernelKind::GlobalAveragePool;
  std::vector<int64_t> spatial(x.shape.begin() + 2, x.shape.end());
  for (bool keep : {true, false}) {
    kernel.keep_dims = keep;
    if (matches([&] { return ir::global_average_pool(x.shape[0], x.shape[1], spatial, keep); }, stripped, kernel)) {
      return true;
    }
  }
  return false;
}

bool recognise_elementwise(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  if (!s.reduction_indices.empty() || s.factors.size() != 1 || s.addends.size() > 1) return false;
  const auto& shape = stripped.output().shape;
  if (s.addends.empty()) {
    kernel.kind = KernelKind::Activation;
    return matches([&] { return ir::activation(shape, ir::Activation::None); }, stripped, kernel);
  }
  kernel.kind = KernelKind::Add;
  return matches([&] { return ir::add(shape, ir::Activation::None); }, stripped, kernel);
}

// A depthwise window over a fixed table that is one-hot per channel (what the shift rule writes):
// matched as a conv whose weight is the table, then the table is checked.
bool recognise_shift(const OpExpr& stripped, Kernel& kernel) {
  const Statement& s = stripped.statements()[0];
  Reads factors = reads_of(stripped, s.factors);
  if (factors.consts.size() != 1 || factors.inputs.size() != 1 || !s.addends.empty()) return false;
  const TensorDecl table = stripped.tensor(factors.consts[0]->tensor);
  std::vector<TensorDecl> declared;
  for (TensorDecl tensor : stripped.tensors()) {
    if (tensor.role == Role::Const) tensor = {tensor.name, Role::Param, tensor.shape, nullptr};
    if (tensor.role == Role::Input || tensor.role == Role::Param) declared.push_back(tensor);
  }
  if (!recognise_conv(OpExpr::make(std::move(declared), stripped.statements()), kernel)) return false;
  const ConvChannels conv = conv_channels(kernel);
  const int64_t channels = conv.in;
  if (conv.groups != channels || conv.out != channels || table.shape[0] != channels) return false;
  const int64_t window = table.elements() / channels;
  kernel.shift_taps.clear();
  for (int64_t channel = 0; channel < channels; ++channel) {
    int64_t hot = -1;
    for (int64_t tap = 0; tap < window; ++tap) {
      float value = (*table.values)[static_cast<size_t>(channel * window + tap)];
      if (value == 1.0f && hot < 0) {
        hot = tap;
      } else if (value != 0.0f) {
        return false;
      }
    }
    if (hot < 0) return false;
    kernel.shift_taps.push_back(hot);
  }
  kernel.kind = KernelKind::Shift;
  return true;
}

}  // namespace

std::string_view to_string(KernelKind kind) {
  switch (kind) {
    case KernelKind::Conv: return "conv";
    case KernelKind::Linear: return "linear";
    case KernelKind::MatMul: return "matmul";
    case KernelKind::MaxPool: return "max_pool";
    case KernelKind::AveragePool: return "average_pool";
    case KernelKind::GlobalAveragePool: return "global_average_pool";
    case KernelKind::Activation: return "activation";
    case KernelKind::Add: return "add";
    case KernelKind::Shift: return "shift";
    case KernelKind::Generic: return "generic";
  }
  return "?";
}

namespace {

// One spatial axis of a shift kernel's geometry.
struct ShiftAxis {
  int64_t input, output, kernel, stride, dilation, pad_begin, pad_end;
  int64_t padded() const { return input + pad_begin + pad_end; }
};

std::vector<ShiftAxis> shift_axes(const Kernel& kernel) {
  if (kernel.spatial_rank == 2) {
    const ir::Conv2dSpec& c = kernel.conv2d;
    std::vector<ShiftAxis> axes;
    for (size_t d = 0; d < 2; ++d) {
      int64_t span = c.dilation[d] * (c.kernel[d] - 1) + 1;
      int64_t output = (c.input_size[d] + c.padding[d] + c.padding[d + 2] - span) / c.stride[d] + 1;
      axes.push_back({c.input_size[d], output, c.kernel[d], c.stride[d], c.dilation[d], c.padding[d], c.padding[d + 2]});
    }
    return axes;
  }
  const ir::Conv1dSpec& c = kernel.conv1d;
  int64_t span = c.dilation * (c.kernel - 1) + 1;
  int64_t output = (c.input_length + c.padding[0] + c.padding[1] - span) / c.stride + 1;
  return {{c.input_length, output, c.kernel, c.stride, c.dilation, c.padding[0], c.padding[1]}};
}

int64_t shift_channels(const Kernel& kernel) { return conv_channels(kernel).in; }

}  // namespace

std::vector<int64_t> shift_padded_shape(const Kernel& kernel) {
  std::vector<int64_t> shape{shift_channels(kernel)};
  for (const auto& axis : shift_axes(kernel)) shape.push_back(axis.padded());
  return shape;
}

std::vector<int64_t> shift_output_shape(const Kernel& kernel) {
  std::vector<int64_t> shape{shift_channels(kernel)};
  for (const auto& axis : shift_axes(kernel)) shape.push_back(axis.output);
  return shape;
}

std::vector<int64_t> shift_gather_positions(const Kernel& kernel) {
  const auto axes = shift_axes(kernel);
  const auto padded = shift_padded_shape(kernel);
  std::vector<int64_t> positions;
  for (int64_t channel = 0; channel < shift_channels(kernel); ++channel) {
    // The hot tap, unravelled over the window's axes (the last fastest).
    std::vector<int64_t> tap(axes.size());
    int64_t rest = kernel.shift_taps.at(static_cast<size_t>(channel));
    for (size_t d = axes.size(); d-- > 0;) {
      tap[d] = rest % axes[d].kernel;
      rest /= axes[d].kernel;
    }
    std::vector<int64_t> at(axes.size(), 0);
    while (true) {
      int64_t flat = channel;
      for (size_t d = 0; d < axes.size(); ++d) flat = flat * padded[d + 1] + at[d] * axes[d].stride + tap[d] * axes[d].dilation;
      positions.push_back(flat);
      size_t d = axes.size();
      while (d > 0 && ++at[d - 1] == axes[d - 1].output) at[--d] = 0;
      if (d == 0) break;
    }
  }
  return positions;
}

ir::OpExpr statement_as_op(const ir::OpExpr& op, size_t index) {
  Statement statement = op.statements().at(index);
  std::vector<std::string> read;
  for (const auto* list : {&statement.factors, &statement.addends}) {
    for (const auto& access : *list) {
      if (std::find(read.begin(), read.end(), access.tensor) == read.end()) read.push_back(access.tensor);
    }
  }
  // Genuine inputs keep the operator's signature order; intermediates follow in order of first read.
  std::vector<TensorDecl> declared;
  for (const auto& tensor : op.tensors()) {
    bool is_read = std::find(read.begin(), read.end(), tensor.name) != read.end();
    if (is_read && tensor.role != Role::Intermediate) declared.push_back(tensor);
  }
  for (const auto& name : read) {
    TensorDecl tensor = op.tensor(name);
    if (tensor.role != Role::Intermediate) continue;
    tensor.role = Role::Input;
    declared.push_back(tensor);
  }
  std::stable_partition(declared.begin(), declared.end(), [](const TensorDecl& t) { return t.role == Role::Input; });
  return OpExpr::make(std::move(declared), {std::move(statement)});
}

ConvChannels conv_channels(const Kernel& kernel) {
  if (kernel.spatial_rank == 2) {
    const ir::Conv2dSpec& spec = kernel.conv2d;
    return {spec.in_channels, spec.out_channels, spec.groups, spec.shuffle};
  }
  const ir::Conv1dSpec& spec = kernel.conv1d;
  return {spec.in_channels, spec.out_channels, spec.groups, spec.shuffle};
}

std::vector<int64_t> conv_input_channel_order(const Kernel& kernel) {
  if (kernel.kind != KernelKind::Conv) return {};
  const ConvChannels conv = conv_channels(kernel);
  if (!conv.shuffle) return {};
  const int64_t groups = conv.groups, per_group = conv.in / conv.groups;
  std::vector<int64_t> order;
  for (int64_t group = 0; group < groups; ++group) {
    for (int64_t channel = 0; channel < per_group; ++channel) order.push_back(group + groups * channel);
  }
  return order;
}

std::vector<Kernel> recognise(const ir::OpExpr& op) {
  std::vector<Kernel> kernels;
  for (size_t index = 0; index < op.statements().size(); ++index) {
    Kernel kernel{.statement = index, .single = statement_as_op(op, index)};
    kernel.activation = kernel.single.statements()[0].activation;
    OpExpr stripped = ir::without_activation(kernel.single);
    const std::vector<std::function<bool(const OpExpr&, Kernel&)>> recognisers{
        recognise_elementwise, recognise_conv,        recognise_linear, recognise_matmul,
        recognise_global_pool, recognise_pool, recognise_shift};
    bool found = std::any_of(recognisers.begin(), recognisers.end(),
                             [&](const auto& recogniser) { return recogniser(stripped, kernel); });
    if (!found) {
      kernel.kind = KernelKind::Generic;
      kernel.operands.clear();
    }
    kernels.push_back(std::move(kernel));
  }
  return kernels;
}

}  // namespace gos::lowering
