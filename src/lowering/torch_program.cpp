// Planning an operator as libtorch calls: each statement's recognised kernel with its attributes,
// or the generic lowering (torch_generic.cpp).
#include <algorithm>
#include <limits>
#include <numeric>
#include <optional>

#include "lowering/torch_program.h"
#include "lowering/torch_program_builder.h"

namespace gos::lowering {

namespace detail {

std::string ProgramBuilder::fresh() { return "$" + std::to_string(next_++); }

std::string ProgramBuilder::call(TorchFn function, std::vector<TorchArg> args) {
  std::string result = fresh();
  program_.calls.push_back({function, std::move(args), result});
  return result;
}

std::string ProgramBuilder::index_table(std::vector<int64_t> positions) {
  std::string name = fresh();
  program_.index_tables.emplace(name, std::move(positions));
  return name;
}

// Renames the last call's result when it computed `value` (it is read nowhere yet); otherwise
// `value` is an existing tensor and an Identity call names it.
void ProgramBuilder::define(const std::string& output, const std::string& value) {
  if (!program_.calls.empty() && program_.calls.back().result == value && value.starts_with('$')) {
    program_.calls.back().result = output;
  } else {
    program_.calls.push_back({TorchFn::Identity, {ValueRef{value}}, output});
  }
}

std::vector<int64_t> torch_pad_order(const std::vector<int64_t>& begins, const std::vector<int64_t>& ends) {
  std::vector<int64_t> pads;
  for (size_t dim = begins.size(); dim-- > 0;) {
    pads.push_back(begins[dim]);
    pads.push_back(ends[dim]);
  }
  return pads;
}

}  // namespace detail

namespace {

using detail::ProgramBuilder;
using detail::value;

std::string operand(const Kernel& kernel, const std::string& role) { return kernel.operands.at(role); }

TorchArg optional_operand(const Kernel& kernel, const std::string& role) {
  auto found = kernel.operands.find(role);
  if (found == kernel.operands.end()) return std::monostate{};
  return ValueRef{found->second};
}

// A convolution's attributes, torch's way round.
struct ConvAttributes {
  std::vector<int64_t> begins, ends, stride, dilation;
  int64_t groups = 0;
};

ConvAttributes conv_attributes(const Kernel& kernel) {
  if (kernel.spatial_rank == 2) {
    const ir::Conv2dSpec& spec = kernel.conv2d;
    return {{spec.padding[0], spec.padding[1]}, {spec.padding[2], spec.padding[3]},
            {spec.stride.begin(), spec.stride.end()}, {spec.dilation.begin(), spec.dilation.end()}, spec.groups};
  }
  const ir::Conv1dSpec& spec = kernel.conv1d;
  return {{spec.padding[0]}, {spec.padding[1]}, {spec.stride}, {spec.dilation}, spec.groups};
}

// The identity permutation of `rank` axes with axes a and b exchanged.
std::vector<int64_t> axes_swapped(size_t rank, size_t a, size_t b) {
  std::vector<int64_t> order(rank);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::swap(order[a], order[b]);
  return order;
}

// A shuffled grouped convolution's geometry: input channels, groups and spatial sizes.
struct ShuffleShape {
  int64_t channels = 0, groups = 1;
  std::vector<int64_t> spatial;
};

// Nothing when the convolution reads its input channels in order.
std::optional<ShuffleShape> shuffle_shape(const Kernel& kernel) {
  if (kernel.spatial_rank == 2) {
    const ir::Conv2dSpec& spec = kernel.conv2d;
    if (!spec.shuffle) return std::nullopt;
    return ShuffleShape{spec.in_channels, spec.groups, {spec.input_size.begin(), spec.input_size.end()}};
  }
  const ir::Conv1dSpec& spec = kernel.conv1d;
  if (!spec.shuffle) return std::nullopt;
  return ShuffleShape{spec.in_channels, spec.groups, {spec.input_length}};
}

// The channels in the order the groups read them (kernels.h, conv_input_channel_order), NCHW:
// the channel axis viewed as [C/G, G] and transposed; the batch is left free.
std::string shuffled_channels_first(const ShuffleShape& shape, const std::string& x, ProgramBuilder& builder) {
  std::vector<int64_t> split{-1, shape.channels / shape.groups, shape.groups}, merged{-1, shape.channels};
  split.insert(split.end(), shape.spatial.begin(), shape.spatial.end());
  merged.insert(merged.end(), shape.spatial.begin(), shape.spatial.end());
  std::string viewed = builder.call(TorchFn::Reshape, {value(x), split});
  std::string shuffled = builder.call(TorchFn::Permute, {value(viewed), axes_swapped(split.size(), 1, 2)});
  return builder.call(TorchFn::Reshape, {value(shuffled), merged});
}

// The same for channels-last memory (the mobile export): with the channels moved last, the one
// copy the transpose needs yields the channels-last tensor the convolution reads.
std::string shuffled_channels_last(const ShuffleShape& shape, const std::string& x, ProgramBuilder& builder) {
  const int64_t rank = 2 + static_cast<int64_t>(shape.spatial.size());
  std::vector<int64_t> to_last{0}, from_last{0, rank - 1};
  for (int64_t dim = 2; dim < rank; ++dim) to_last.push_back(dim), from_last.push_back(dim - 1);
  to_last.push_back(1);
  std::vector<int64_t> merged{-1};
  merged.insert(merged.end(), shape.spatial.begin(), shape.spatial.end());
  std::vector<int64_t> split = merged;
  split.insert(split.end(), {shape.channels / shape.groups, shape.groups});
  merged.push_back(shape.channels);
  std::string viewed = builder.call(TorchFn::Reshape, {value(builder.call(TorchFn::Permute, {value(x), to_last})), split});
  const auto order = axes_swapped(split.size(), static_cast<size_t>(rank - 1), static_cast<size_t>(rank));
  std::string shuffled = builder.call(TorchFn::Reshape, {value(builder.call(TorchFn::Permute, {value(viewed), order})), merged});
  return builder.call(TorchFn::Permute, {value(shuffled), from_last});
}

// torch pads convolutions symmetrically, so asymmetric pads are applied explicitly first. Returns
// the input to convolve (its channels shuffled first if the kernel reads them so) and the
// symmetric padding left to the convolution.
std::pair<std::string, std::vector<int64_t>> padded_input(const Kernel& kernel, const ConvAttributes& conv,
                                                          bool channels_last, ProgramBuilder& builder) {
  std::string x = operand(kernel, "X");
  if (auto shuffle = shuffle_shape(kernel)) {
    x = channels_last ? shuffled_channels_last(*shuffle, x, builder) : shuffled_channels_first(*shuffle, x, builder);
  }
  if (conv.begins == conv.ends) return {x, conv.begins};
  x = builder.call(TorchFn::ConstantPad, {value(x), detail::torch_pad_order(conv.begins, conv.ends), 0.0});
  return {x, std::vector<int64_t>(conv.begins.size(), 0)};
}

std::string plan_conv(const Kernel& kernel, bool channels_last, ProgramBuilder& builder) {
  const ConvAttributes conv = conv_attributes(kernel);
  auto [x, padding] = padded_input(kernel, conv, channels_last, builder);
  TorchFn function = kernel.spatial_rank == 2 ? TorchFn::Conv2d : TorchFn::Conv1d;
  return builder.call(function, {value(x), value(operand(kernel, "W")), optional_operand(kernel, "B"), conv.stride,
                                 padding, conv.dilation, conv.groups});
}

// KernelChoice::RecogniseChannelsLast's 1-D convolution, activation included: applied before
// the squeeze, it stays next to the convolution, where the mobile optimiser fuses it.
std::string plan_conv1d_as_channels_last_2d(const Kernel& kernel, ProgramBuilder& builder) {
  const ConvAttributes conv = conv_attributes(kernel);
  auto [x, padding] = padded_input(kernel, conv, /*channels_last=*/true, builder);
  const int64_t height = 2;
  std::string x4 = builder.call(TorchFn::ChannelsLast, {value(builder.call(TorchFn::Unsqueeze, {value(x), height}))});
  std::string w4 = builder.call(TorchFn::Unsqueeze, {value(operand(kernel, "W")), height});
  std::string y4 = builder.call(TorchFn::Conv2d, {value(x4), value(w4), optional_operand(kernel, "B"),
                                                  std::vector<int64_t>{1, conv.stride[0]}, std::vector<int64_t>{0, padding[0]},
                                                  std::vector<int64_t>{1, conv.dilation[0]}, conv.groups});
  if (kernel.activation != ir::Activation::None) y4 = builder.call(TorchFn::Activation, {value(y4), kernel.activation});
  return builder.call(TorchFn::Squeeze, {value(y4), height});
}

// Gemm: trans_a stores X as [in, batch]; torch's linear wants W as [out, in] (trans_b).
std::string plan_linear(const Kernel& kernel, ProgramBuilder& builder) {
  std::string x = operand(kernel, "X");
  std::string w = operand(kernel, "W");
  if (kernel.linear.trans_a) x = builder.call(TorchFn::Transpose, {value(x)});
  if (!kernel.linear.trans_b) w = builder.call(TorchFn::Transpose, {value(w)});
  return builder.call(TorchFn::Linear, {value(x), value(w), optional_operand(kernel, "B")});
}

std::string plan_matmul(const Kernel& kernel, ProgramBuilder& builder) {
  if (kernel.matmul.weight_lhs) {
    // linear(X^T, W, B)^T rather than W @ X + B: libtorch 1.13's broadcast of a 2-D left operand
    // over a batch trained non-deterministically and worse (mixer-s diverged), and the mobile
    // optimiser prepacks a linear layer for XNNPACK, which it does not do for a matmul.
    const size_t rank = kernel.matmul.batch_dims.size() + 2;
    const std::vector<int64_t> swap_last = axes_swapped(rank, rank - 2, rank - 1);
    std::string x_t = builder.call(TorchFn::Permute, {value(operand(kernel, "X")), swap_last});
    std::string product_t = builder.call(TorchFn::Linear, {value(x_t), value(operand(kernel, "W")), optional_operand(kernel, "B")});
    return builder.call(TorchFn::Permute, {value(product_t), swap_last});
  }
  if (kernel.matmul.weight_rhs) {
    // A linear layer rather than a matmul: the mobile optimiser prepacks it for XNNPACK (a
    // 64->256 channel mixing over 49 tokens: 18 us against 41 us as einsum and add), and after
    // freezing, the transpose of a stored W[k, n] is a constant it folds.
    std::string w = operand(kernel, "W");
    if (!kernel.matmul.weight_transposed) w = builder.call(TorchFn::Transpose, {value(w)});
    return builder.call(TorchFn::Linear, {value(operand(kernel, "X")), value(w), optional_operand(kernel, "B")});
  }
  return builder.call(TorchFn::MatMul, {value(operand(kernel, "X")), value(operand(kernel, "Z"))});
}

// A pool's attributes with ONNX defaults filled in.
struct PoolAttributes {
  std::vector<int64_t> kernel, stride, dilation, begins, ends;
};

PoolAttributes pool_attributes(const ir::PoolSpec& spec) {
  const size_t rank = spec.input_size.size();
  auto or_default = [rank](const std::vector<int64_t>& values, int64_t fallback) {
    return values.empty() ? std::vector<int64_t>(rank, fallback) : values;
  };
  std::vector<int64_t> padding = or_default(spec.padding, 0);
  if (padding.size() == rank) padding.insert(padding.end(), padding.begin(), padding.end());
  return {spec.kernel, or_default(spec.stride, 1), or_default(spec.dilation, 1),
          {padding.begin(), padding.begin() + rank}, {padding.begin() + rank, padding.end()}};
}

// torch pools only pad symmetrically and by at most half the kernel.
bool torch_pads_natively(const PoolAttributes& pool) {
  for (size_t axis = 0; axis < pool.kernel.size(); ++axis) {
    if (pool.begins[axis] != pool.ends[axis] || pool.begins[axis] > pool.kernel[axis] / 2) return false;
  }
  return true;
}

std::string call_pool(ProgramBuilder& builder, bool is_max, const std::string& x, const PoolAttributes& pool,
                      const std::vector<int64_t>& padding, bool ceil_mode, bool count_include_pad) {
  const bool one_d = pool.kernel.size() == 1;
  if (is_max) {
    return builder.call(one_d ? TorchFn::MaxPool1d : TorchFn::MaxPool2d,
                        {value(x), pool.kernel, pool.stride, padding, pool.dilation, ceil_mode});
  }
  return builder.call(one_d ? TorchFn::AvgPool1d : TorchFn::AvgPool2d,
                      {value(x), pool.kernel, pool.stride, padding, ceil_mode, count_include_pad});
}

// Pads torch cannot apply itself are applied explicitly (-inf for max, 0 for average) with enough
// end padding for every window of the statement; the pool then runs unpadded in floor mode and is
// cut to the statement's output extent. Averages are then window sums over the kernel size, which
// the divisor table (or the mean's kernel-size divisor) turns into the statement's averages.
std::string plan_explicitly_padded_pool(const Kernel& kernel, const PoolAttributes& pool, ProgramBuilder& builder) {
  const bool is_max = kernel.kind == KernelKind::MaxPool;
  const auto& spec = kernel.pool;
  const auto& output_shape = kernel.single.output().shape;
  const size_t rank = pool.kernel.size();
  std::vector<int64_t> ends(rank), floor_extents(rank);
  for (size_t axis = 0; axis < rank; ++axis) {
    int64_t span = pool.dilation[axis] * (pool.kernel[axis] - 1) + 1;
    int64_t needed_end = (output_shape[2 + axis] - 1) * pool.stride[axis] + span - spec.input_size[axis] - pool.begins[axis];
    ends[axis] = std::max<int64_t>(0, needed_end);
    floor_extents[axis] = (spec.input_size[axis] + pool.begins[axis] + ends[axis] - span) / pool.stride[axis] + 1;
  }
  const double pad_value = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
  std::string x = builder.call(TorchFn::ConstantPad,
                               {value(operand(kernel, "X")), detail::torch_pad_order(pool.begins, ends), pad_value});
  std::string y = call_pool(builder, is_max, x, pool, std::vector<int64_t>(rank, 0), false, true);
  for (size_t axis = 0; axis < rank; ++axis) {
    if (floor_extents[axis] > output_shape[2 + axis]) {
      y = builder.call(TorchFn::Narrow, {value(y), static_cast<int64_t>(2 + axis), int64_t{0}, output_shape[2 + axis]});
    }
  }
  if (is_max || !kernel.operands.count("C")) return y;
  double window = std::accumulate(pool.kernel.begin(), pool.kernel.end(), 1.0, std::multiplies<>());
  y = builder.call(TorchFn::Scale, {value(y), window});
  return builder.call(TorchFn::Mul, {value(y), value(operand(kernel, "C"))});
}

// Natively padded pools reproduce the statement exactly, divisor tables included: the recognised
// spec builds these very instructions, and ir::ops' pools follow torch's rules (ops_torch_test).
std::string plan_pool(const Kernel& kernel, ProgramBuilder& builder) {
  PoolAttributes pool = pool_attributes(kernel.pool);
  if (!torch_pads_natively(pool)) return plan_explicitly_padded_pool(kernel, pool, builder);
  return call_pool(builder, kernel.kind == KernelKind::MaxPool, operand(kernel, "X"), pool, pool.begins,
                   kernel.pool.ceil_mode, kernel.pool.count_include_pad);
}

std::string plan_global_pool(const Kernel& kernel, ProgramBuilder& builder) {
  const std::string x = operand(kernel, "X");
  std::vector<int64_t> spatial_dims;
  for (size_t dim = 2; dim < kernel.single.tensor(x).shape.size(); ++dim) spatial_dims.push_back(static_cast<int64_t>(dim));
  return builder.call(TorchFn::Mean, {value(x), spatial_dims, kernel.keep_dims});
}

// A shift is a gather from the zero-padded input: one table of flat positions per sample.
std::string plan_shift(const Kernel& kernel, ProgramBuilder& builder) {
  const std::string x = operand(kernel, "X");
  std::string padded = x;
  const auto& conv_padding = kernel.spatial_rank == 2
                                 ? std::vector<int64_t>(kernel.conv2d.padding.begin(), kernel.conv2d.padding.end())
                                 : std::vector<int64_t>(kernel.conv1d.padding.begin(), kernel.conv1d.padding.end());
  const size_t rank = conv_padding.size() / 2;
  std::vector<int64_t> begins(conv_padding.begin(), conv_padding.begin() + static_cast<std::ptrdiff_t>(rank));
  std::vector<int64_t> ends(conv_padding.begin() + static_cast<std::ptrdiff_t>(rank), conv_padding.end());
  if (std::any_of(conv_padding.begin(), conv_padding.end(), [](int64_t pad) { return pad != 0; })) {
    padded = builder.call(TorchFn::ConstantPad, {value(x), detail::torch_pad_order(begins, ends), 0.0});
  }
  std::vector<int64_t> sizes{1};
  for (int64_t size : shift_output_shape(kernel)) sizes.push_back(size);
  RuntimeSizes runtime{sizes, {{0, 0}}, ValueRef{x}};
  std::string table = builder.index_table(shift_gather_positions(kernel));
  return builder.call(TorchFn::GatherPerSample, {value(padded), value(table), runtime});
}

std::string plan_kernel(const ir::OpExpr& op, const Kernel& kernel, bool channels_last, ProgramBuilder& builder) {
  switch (kernel.kind) {
    case KernelKind::Conv: return plan_conv(kernel, channels_last, builder);
    case KernelKind::Linear: return plan_linear(kernel, builder);
    case KernelKind::MatMul: return plan_matmul(kernel, builder);
    case KernelKind::MaxPool:
    case KernelKind::AveragePool: return plan_pool(kernel, builder);
    case KernelKind::GlobalAveragePool: return plan_global_pool(kernel, builder);
    case KernelKind::Activation: return operand(kernel, "X");
    case KernelKind::Add: return builder.call(TorchFn::Add, {value(operand(kernel, "X")), value(operand(kernel, "Z"))});
    case KernelKind::Shift: return plan_shift(kernel, builder);
    case KernelKind::Generic: break;
  }
  return detail::plan_generic_statement(op, op.statements()[kernel.statement], builder);
}

// Every statement lowered generically, with its activation applied after.
std::vector<Kernel> generic_kernels(const ir::OpExpr& op) {
  std::vector<Kernel> kernels = recognise(op);
  for (auto& kernel : kernels) {
    kernel.kind = KernelKind::Generic;
    kernel.activation = op.statements()[kernel.statement].activation;
    kernel.operands.clear();
  }
  return kernels;
}

std::vector<std::string> names_with_role(const ir::OpExpr& op, ir::Role role) {
  std::vector<std::string> names;
  for (const auto& tensor : op.tensors_with_role(role)) names.push_back(tensor.name);
  return names;
}

}  // namespace

TorchProgram plan_torch_program(const ir::OpExpr& op, KernelChoice choice) {
  TorchProgram program;
  program.inputs = names_with_role(op, ir::Role::Input);
  program.params = names_with_role(op, ir::Role::Param);
  program.consts = names_with_role(op, ir::Role::Const);
  ProgramBuilder builder(program);
  for (const Kernel& kernel : choice == KernelChoice::GenericOnly ? generic_kernels(op) : recognise(op)) {
    std::string result;
    if (choice == KernelChoice::RecogniseChannelsLast && kernel.kind == KernelKind::Conv && kernel.spatial_rank == 1) {
      result = plan_conv1d_as_channels_last_2d(kernel, builder);
    } else {
      result = plan_kernel(op, kernel, choice == KernelChoice::RecogniseChannelsLast, builder);
      if (kernel.activation != ir::Activation::None) {
        result = builder.call(TorchFn::Activation, {value(result), kernel.activation});
      }
    }
    builder.define(op.statements()[kernel.statement].output.tensor, result);
    program.statement_kinds.push_back(kernel.kind);
  }
  program.output = op.output().name;
  return program;
}

}  // namespace gos::lowering
