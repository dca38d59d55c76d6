// Lowering of instructions to ONNX: recognised kernels become their ONNX operators, the rest goes
// through the generic lowering (onnx_generic.cpp).
#include "lowering/onnx_lowering.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "lowering/kernels.h"
#include "lowering/onnx_generic.h"

namespace gos::lowering {

namespace {

using detail::ValueNames;

template <typename T>
std::vector<int64_t> as_ints(const T& values) {
  return std::vector<int64_t>(values.begin(), values.end());
}

// Reads the value bound to one of the kernel's operand roles (X, Z, W, B).
class Operands {
 public:
  Operands(const Kernel& kernel, const ValueNames& values) : kernel_(kernel), values_(values) {}
  bool has(const std::string& role) const { return kernel_.operands.count(role) > 0; }
  const std::string& operator[](const std::string& role) const { return values_.at(kernel_.operands.at(role)); }

 private:
  const Kernel& kernel_;
  const ValueNames& values_;
};

struct ConvAttributes {
  std::vector<int64_t> kernel_shape, strides, pads, dilations;
  int64_t group = 1;
};

ConvAttributes conv_attributes(const Kernel& kernel) {
  if (kernel.spatial_rank == 2) {
    const ir::Conv2dSpec& spec = kernel.conv2d;
    return {as_ints(spec.kernel), as_ints(spec.stride), as_ints(spec.padding), as_ints(spec.dilation), spec.groups};
  }
  const ir::Conv1dSpec& spec = kernel.conv1d;
  return {{spec.kernel}, {spec.stride}, as_ints(spec.padding), {spec.dilation}, spec.groups};
}

std::string lower_conv(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  std::string x = operands["X"];
  if (auto order = conv_input_channel_order(kernel); !order.empty()) {
    x = builder.node_value("Gather", {x, builder.int64_vector(order)});
    set_attribute(builder.last_node(), "axis", int64_t{1});
  }
  std::vector<std::string> inputs{x, operands["W"]};
  if (operands.has("B")) inputs.push_back(operands["B"]);
  std::string value = builder.node_value("Conv", inputs);
  const ConvAttributes attributes = conv_attributes(kernel);
  onnx::NodeProto& node = builder.last_node();
  set_attribute(node, "kernel_shape", attributes.kernel_shape);
  set_attribute(node, "strides", attributes.strides);
  set_attribute(node, "pads", attributes.pads);
  set_attribute(node, "dilations", attributes.dilations);
  set_attribute(node, "group", attributes.group);
  return value;
}

std::string lower_linear(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  std::vector<std::string> inputs{operands["X"], operands["W"]};
  if (operands.has("B")) inputs.push_back(operands["B"]);
  std::string value = builder.node_value("Gemm", inputs);
  set_attribute(builder.last_node(), "transA", int64_t{kernel.linear.trans_a});
  set_attribute(builder.last_node(), "transB", int64_t{kernel.linear.trans_b});
  return value;
}

std::string lower_matmul(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  if (kernel.matmul.weight_lhs) {
    std::string product = builder.node_value("MatMul", {operands["W"], operands["X"]});
    if (!kernel.matmul.bias) return product;
    std::string bias = builder.node_value("Reshape", {operands["B"], builder.int64_vector({kernel.matmul.m, 1})});
    return builder.node_value("Add", {product, bias});
  }
  if (!kernel.matmul.weight_rhs) return builder.node_value("MatMul", {operands["X"], operands["Z"]});
  std::string weight = operands["W"];
  if (kernel.matmul.weight_transposed) weight = builder.node_value("Transpose", {weight});
  std::string product = builder.node_value("MatMul", {operands["X"], weight});
  return kernel.matmul.bias ? builder.node_value("Add", {product, operands["B"]}) : product;
}

// ONNX's attributes for a recognised pool. Floor mode with explicit end padding comes first:
// ONNX 1.12's shape inference lacks torch's rule that drops a ceil-mode window starting past the
// input. Either way ONNX Runtime wants every pad smaller than the kernel, and average pooling
// that counts padding must not see more end padding than the instructions have.
struct OnnxPool {
  std::vector<int64_t> pads;
  bool ceil_mode = false;
};

int64_t pooled_extent(int64_t input, int64_t span, int64_t stride, int64_t pads, bool ceil_mode) {
  const int64_t positions = input + pads - span;
  if (positions < 0) return 0;
  return (ceil_mode ? (positions + stride - 1) / stride : positions / stride) + 1;
}

std::optional<OnnxPool> onnx_pool(const Kernel& kernel) {
  const ir::PoolSpec& pool = kernel.pool;
  const auto& output = kernel.single.output().shape;
  const size_t rank = pool.kernel.size();
  const bool counts_padding = kernel.kind == KernelKind::AveragePool && pool.count_include_pad;
  auto fits = [&](const OnnxPool& candidate) {
    for (size_t axis = 0; axis < rank; ++axis) {
      const int64_t begin = candidate.pads[axis], end = candidate.pads[rank + axis];
      const int64_t span = pool.dilation[axis] * (pool.kernel[axis] - 1) + 1;
      if (begin >= pool.kernel[axis] || end >= pool.kernel[axis]) return false;
      if (counts_padding && end > pool.padding[rank + axis]) return false;
      if (pooled_extent(pool.input_size[axis], span, pool.stride[axis], begin + end, candidate.ceil_mode) !=
          output[2 + axis]) {
        return false;
      }
    }
    return true;
  };
  OnnxPool floor_mode{pool.padding, false};
  for (size_t axis = 0; axis < rank; ++axis) {
    const int64_t span = pool.dilation[axis] * (pool.kernel[axis] - 1) + 1;
    const int64_t reach = (output[2 + axis] - 1) * pool.stride[axis] + span - pool.input_size[axis] - pool.padding[axis];
    floor_mode.pads[rank + axis] = std::max<int64_t>(0, reach);
  }
  if (fits(floor_mode)) return floor_mode;
  OnnxPool ceil_mode{pool.padding, true};
  if (fits(ceil_mode)) return ceil_mode;
  return std::nullopt;
}

std::string lower_pool(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  const ir::PoolSpec& pool = kernel.pool;
  const OnnxPool attributes = onnx_pool(kernel).value();
  const bool is_max = kernel.kind == KernelKind::MaxPool;
  std::string value = builder.node_value(is_max ? "MaxPool" : "AveragePool", {operands["X"]});
  onnx::NodeProto& node = builder.last_node();
  set_attribute(node, "kernel_shape", pool.kernel);
  set_attribute(node, "strides", pool.stride);
  set_attribute(node, "pads", attributes.pads);
  set_attribute(node, "ceil_mode", int64_t{attributes.ceil_mode});
  if (is_max) {
    set_attribute(node, "dilations", pool.dilation);
  } else {
    set_attribute(node, "count_include_pad", int64_t{pool.count_include_pad});
  }
  return value;
}

// Whether ONNX has an operator computing the kernel exactly; if not, it is lowered generically.
bool onnx_expresses(const Kernel& kernel) {
  if (kernel.kind == KernelKind::MaxPool || kernel.kind == KernelKind::AveragePool) return onnx_pool(kernel).has_value();
  return kernel.kind != KernelKind::Generic;
}

std::string lower_global_pool(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  if (kernel.keep_dims) return builder.node_value("GlobalAveragePool", {operands["X"]});
  const size_t rank = kernel.single.tensor(kernel.operands.at("X")).shape.size();
  std::vector<int64_t> spatial_axes;
  for (size_t axis = 2; axis < rank; ++axis) spatial_axes.push_back(static_cast<int64_t>(axis));
  std::string value = builder.node_value("ReduceMean", {operands["X"]});
  set_attribute(builder.last_node(), "axes", spatial_axes);
  set_attribute(builder.last_node(), "keepdims", int64_t{0});
  return value;
}

// A shift gathers from the zero-padded input: Pad, flatten each sample, Gather, reshape.
std::string lower_shift(const Kernel& kernel, const Operands& operands, OnnxBuilder& builder) {
  std::string value = operands["X"];
  const std::vector<int64_t> padding =
      kernel.spatial_rank == 2 ? std::vector<int64_t>(kernel.conv2d.padding.begin(), kernel.conv2d.padding.end())
                               : std::vector<int64_t>(kernel.conv1d.padding.begin(), kernel.conv1d.padding.end());
  if (std::any_of(padding.begin(), padding.end(), [](int64_t pad) { return pad != 0; })) {
    const size_t rank = padding.size() / 2;
    std::vector<int64_t> pads{0, 0};  // ONNX order: every dimension's begin, then every end
    pads.insert(pads.end(), padding.begin(), padding.begin() + static_cast<std::ptrdiff_t>(rank));
    pads.insert(pads.end(), {0, 0});
    pads.insert(pads.end(), padding.begin() + static_cast<std::ptrdiff_t>(rank), padding.end());
    value = builder.node_value("Pad", {value, builder.int64_vector(pads)});
  }
  value = builder.node_value("Reshape", {value, builder.int64_vector({0, -1})});
  value = builder.node_value("Gather", {value, builder.int64_vector(shift_gather_positions(kernel))});
  set_attribute(builder.last_node(), "axis", int64_t{1});
  std::vector<int64_t> shape{0};
  for (int64_t size : shift_output_shape(kernel)) shape.push_back(size);
  return builder.node_value("Reshape", {value, builder.int64_vector(shape)});
}

// The value computing the kernel, before its activation.
std::string lower_kernel(const Kernel& kernel, const ir::OpExpr& op, const ValueNames& values, OnnxBuilder& builder) {
  Operands operands(kernel, values);
  switch (kernel.kind) {
    case KernelKind::Conv: return lower_conv(kernel, operands, builder);
    case KernelKind::Linear: return lower_linear(kernel, operands, builder);
    case KernelKind::MatMul: return lower_matmul(kernel, operands, builder);
    case KernelKind::MaxPool:
    case KernelKind::AveragePool: return lower_pool(kernel, operands, builder);
    case KernelKind::GlobalAveragePool: return lower_global_pool(kernel, operands, builder);
    case KernelKind::Activation: return operands["X"];
    case KernelKind::Add: return builder.node_value("Add", {operands["X"], operands["Z"]});
    case KernelKind::Shift: return lower_shift(kernel, operands, builder);
    case KernelKind::Generic: break;
  }
  return detail::lower_generic_statement(op, op.statements()[kernel.statement], values, builder);
}

// Initializers for the op's params and consts, named after the scope and the tensor.
void add_weights(const ir::OpExpr& op, const OnnxBinding& binding, ValueNames& values, OnnxBuilder& builder) {
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == ir::Role::Const) {
      values[tensor.name] = builder.float_tensor(tensor.name, ir::Tensor(tensor.shape, *tensor.values));
    } else if (tensor.role == ir::Role::Param) {
      auto value = binding.params.find(tensor.name);
      if (value == binding.params.end()) throw ir::IrError("no value for param '" + tensor.name + "'");
      values[tensor.name] = builder.float_tensor(tensor.name, value->second);
    }
  }
}

// Writes the op's result `value` under `name`: renames the node of this op that produced it, or
// copies an input passed through unchanged (whose producer other nodes may read).
void write_as(const std::string& value, const std::string& name, const OnnxBinding& binding, OnnxBuilder& builder) {
  const bool is_input = std::find(binding.inputs.begin(), binding.inputs.end(), value) != binding.inputs.end();
  if (!is_input && builder.rename_last_output(value, name)) return;
  builder.node("Identity", {value}, {name});
}

}  // namespace

std::string lower_activation(ir::Activation activation, const std::string& value, OnnxBuilder& builder) {
  switch (activation) {
    case ir::Activation::None: return value;
    case ir::Activation::Relu: return builder.node_value("Relu", {value});
    case ir::Activation::Relu6:
      return builder.node_value("Clip", {value, builder.float_scalar(0.0f), builder.float_scalar(6.0f)});
    case ir::Activation::Sigmoid: return builder.node_value("Sigmoid", {value});
    case ir::Activation::Silu: return builder.node_value("Mul", {value, builder.node_value("Sigmoid", {value})});
    case ir::Activation::HardSwish: return builder.node_value("HardSwish", {value});
    case ir::Activation::HardSigmoid: {
      std::string result = builder.node_value("HardSigmoid", {value});
      set_attribute(builder.last_node(), "alpha", 1.0f / 6.0f);
      set_attribute(builder.last_node(), "beta", 0.5f);
      return result;
    }
    case ir::Activation::Gelu: {  // 0.5 * x * (1 + erf(x / sqrt 2)): Gelu itself is opset 20
      std::string erf = builder.node_value("Erf", {builder.node_value("Div", {value, builder.float_scalar(std::sqrt(2.0f))})});
      std::string one_plus = builder.node_value("Add", {erf, builder.float_scalar(1.0f)});
      return builder.node_value("Mul", {builder.node_value("Mul", {value, builder.float_scalar(0.5f)}), one_plus});
    }
    case ir::Activation::Tanh: return builder.node_value("Tanh", {value});
  }
  throw ir::IrError("lower_activation: unknown activation");
}

void lower_to_onnx(const ir::OpExpr& op, const OnnxBinding& binding, OnnxBuilder& builder,
                   const OnnxLoweringOptions& options) {
  auto inputs = op.tensors_with_role(ir::Role::Input);
  if (inputs.size() != binding.inputs.size()) {
    throw ir::IrError("the operator takes " + std::to_string(inputs.size()) + " inputs but " +
                      std::to_string(binding.inputs.size()) + " values are bound");
  }
  ValueNames values;
  for (size_t i = 0; i < inputs.size(); ++i) values[inputs[i].name] = binding.inputs[i];
  add_weights(op, binding, values, builder);
  builder.reserve(binding.output);
  for (Kernel kernel : recognise(op)) {
    if (!options.recognise_kernels || !onnx_expresses(kernel)) kernel.kind = KernelKind::Generic;
    const ir::Statement& statement = op.statements()[kernel.statement];
    std::string value = lower_activation(kernel.activation, lower_kernel(kernel, op, values, builder), builder);
    const bool last = kernel.statement + 1 == op.statements().size();
    if (last) {
      write_as(value, binding.output, binding, builder);
    } else {
      values[statement.output.tensor] = value;
    }
  }
}

}  // namespace gos::lowering
