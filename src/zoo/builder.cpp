// The zoo's graph builder and layers.
#include "zoo/builder.h"

#include <charconv>
#include <cmath>
#include <numbers>

#include "ir/ops.h"

namespace gos::zoo::detail {

namespace {

constexpr double kNormEpsilon = 1e-5;

// The ONNX operator an activation node stands for (ReLU6 is exported as Clip(0, 6)).
std::string_view onnx_op_type(ir::Activation act) {
  switch (act) {
    case ir::Activation::None: return "Identity";
    case ir::Activation::Relu: return "Relu";
    case ir::Activation::Relu6: return "Clip";
    case ir::Activation::Sigmoid: return "Sigmoid";
    case ir::Activation::Silu: return "Silu";
    case ir::Activation::HardSwish: return "HardSwish";
    case ir::Activation::HardSigmoid: return "HardSigmoid";
    case ir::Activation::Gelu: return "Gelu";
    case ir::Activation::Tanh: return "Tanh";
  }
  return "Unknown";
}

// The shortest text that reads back as the same float, so a const in the notation is exact.
std::string float_text(float value) {
  char text[32];
  auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

ir::Tensor filled(const Shape& shape, float value) { return ir::Tensor(shape, value); }

}  // namespace

// ---- WeightInit ---------------------------------------------------------------------------------

double WeightInit::uniform() {
  return (static_cast<double>(engine_() >> 11) + 0.5) * 0x1.0p-53;  // never 0, so log() is finite
}

double WeightInit::normal() {
  return std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * std::numbers::pi * uniform());
}

ir::Tensor WeightInit::kaiming_normal(const Shape& shape, int64_t fan_in) {
  ir::Tensor tensor(shape);
  const double std_dev = std::sqrt(2.0 / static_cast<double>(fan_in));
  for (float& value : tensor.data) value = static_cast<float>(std_dev * normal());
  return tensor;
}

// ---- GraphBuilder -------------------------------------------------------------------------------

std::string GraphBuilder::input(const std::string& name, const Shape& shape) {
  graph_.inputs.push_back({name, shape});
  graph_.shapes[name] = shape;
  return name;
}

std::string GraphBuilder::add_node(graph::Node node, const Shape& output_shape) {
  node.outputs = {node.name};
  graph_.shapes[node.name] = output_shape;
  graph_.nodes.push_back(std::move(node));
  return graph_.nodes.back().name;
}

std::string GraphBuilder::compute(const std::string& name, std::string_view op_type, ir::OpExpr op,
                                  std::vector<std::string> inputs) {
  graph::Node node{name, std::string(op_type), std::move(inputs), {}, std::nullopt, {}, {}};
  for (const auto& param : op.tensors_with_role(ir::Role::Param)) {
    node.weights[param.name] = param.name == "B" ? filled(param.shape, 0.0f)
                                                 : init_.kaiming_normal(param.shape, param.elements() / param.shape[0]);
  }
  Shape output_shape = op.output().shape;
  node.op = std::move(op);
  return add_node(std::move(node), output_shape);
}

std::string GraphBuilder::structural(const std::string& name, std::string_view op_type, std::vector<std::string> inputs,
                                     const Shape& output_shape, ir::TensorMap weights,
                                     std::map<std::string, graph::Attribute> attributes) {
  graph::Node node{name, std::string(op_type), std::move(inputs), {}, std::nullopt, std::move(weights),
                   std::move(attributes)};
  return add_node(std::move(node), output_shape);
}

std::string GraphBuilder::constant(const std::string& name, ir::Tensor value) {
  graph_.constants[name] = std::move(value);
  return name;
}

graph::Graph GraphBuilder::finish(const std::string& value) {
  const std::string output_name = "output";
  for (auto& node : graph_.nodes) {
    for (auto& output : node.outputs) {
      if (output == value) output = output_name;
    }
  }
  graph_.shapes[output_name] = graph_.shapes.at(value);
  graph_.shapes.erase(value);
  graph_.outputs = {{output_name, graph_.shapes.at(output_name)}};
  graph::validate(graph_);
  return graph_;
}

// ---- Layers -------------------------------------------------------------------------------------

std::string normalize(GraphBuilder& builder, const std::string& name, const std::string& x, double mean,
                      double std_dev) {
  const Shape& shape = builder.shape(x);
  const std::string extents = "n<" + std::to_string(shape[0]) + ", c<" + std::to_string(shape[1]) + ", h<" +
                              std::to_string(shape[2]) + ", w<" + std::to_string(shape[3]) + ", const C0[] = {" +
                              float_text(static_cast<float>(1.0 / std_dev)) + "}, const C1[] = {" +
                              float_text(static_cast<float>(-mean / std_dev)) + "}";
  return instructions(builder, name, "Normalize", "Y[n,c,h,w] = X[n,c,h,w] * C0[] + C1[]", extents, {x});
}

std::string conv(GraphBuilder& builder, const std::string& name, const std::string& x, const ConvOptions& options) {
  const Shape& shape = builder.shape(x);
  const int64_t pad = options.padding.value_or(options.dilation * (options.kernel - 1) / 2);
  if (shape.size() == 3) {
    ir::Conv1dSpec spec{.batch = shape[0], .in_channels = shape[1], .out_channels = options.out_channels,
                        .input_length = shape[2], .kernel = options.kernel, .stride = options.stride,
                        .padding = {pad, pad}, .dilation = options.dilation, .groups = options.groups,
                        .bias = options.bias};
    return builder.compute(name, "Conv", ir::conv1d(spec), {x});
  }
  ir::Conv2dSpec spec{.batch = shape[0], .in_channels = shape[1], .out_channels = options.out_channels,
                      .input_size = {shape[2], shape[3]}, .kernel = {options.kernel, options.kernel},
                      .stride = {options.stride, options.stride}, .padding = {pad, pad, pad, pad},
                      .dilation = {options.dilation, options.dilation}, .groups = options.groups,
                      .bias = options.bias};
  return builder.compute(name, "Conv", ir::conv2d(spec), {x});
}

std::string batch_norm(GraphBuilder& builder, const std::string& name, const std::string& x) {
  const Shape& shape = builder.shape(x);
  const Shape channels{shape[1]};
  ir::TensorMap weights{{"scale", filled(channels, 1.0f)},
                        {"B", filled(channels, 0.0f)},
                        {"mean", filled(channels, 0.0f)},
                        {"var", filled(channels, 1.0f)}};
  return builder.structural(name, "BatchNormalization", {x}, shape, std::move(weights), {{"epsilon", kNormEpsilon}});
}

std::string activation(GraphBuilder& builder, const std::string& name, const std::string& x, ir::Activation act) {
  return builder.compute(name, onnx_op_type(act), ir::activation(builder.shape(x), act), {x});
}

std::string conv_bn(GraphBuilder& builder, const std::string& prefix, const std::string& x, const ConvOptions& options,
                    ir::Activation act) {
  std::string y = batch_norm(builder, prefix + ".bn", conv(builder, prefix + ".conv", x, options));
  return act == ir::Activation::None ? y : activation(builder, prefix + ".act", y, act);
}

std::string add(GraphBuilder& builder, const std::string& name, const std::string& x, const std::string& z,
                ir::Activation act) {
  return builder.compute(name, "Add", ir::add(builder.shape(x), act), {x, z});
}

std::string max_pool(GraphBuilder& builder, const std::string& name, const std::string& x, bool ceil_mode) {
  const Shape& shape = builder.shape(x);
  ir::PoolSpec spec{.batch = shape[0], .channels = shape[1], .input_size = {shape[2], shape[3]}, .kernel = {2, 2},
                    .stride = {2, 2}, .padding = {}, .dilation = {}, .ceil_mode = ceil_mode};
  return builder.compute(name, "MaxPool", ir::max_pool(spec), {x});
}

std::string flatten(GraphBuilder& builder, const std::string& name, const std::string& x) {
  const Shape& shape = builder.shape(x);
  int64_t features = 1;
  for (size_t dim = 1; dim < shape.size(); ++dim) features *= shape[dim];
  return builder.structural(name, "Flatten", {x}, {shape[0], features}, {}, {{"axis", int64_t{1}}});
}

std::string global_pool(GraphBuilder& builder, const std::string& prefix, const std::string& x) {
  const Shape& shape = builder.shape(x);
  const Shape spatial(shape.begin() + 2, shape.end());
  std::string pooled = builder.compute(prefix + ".pool", "GlobalAveragePool",
                                       ir::global_average_pool(shape[0], shape[1], spatial, /*keep_dims=*/true), {x});
  return flatten(builder, prefix + ".flatten", pooled);
}

std::string linear(GraphBuilder& builder, const std::string& name, const std::string& x, int64_t out_features,
                   ir::Activation act) {
  const Shape& shape = builder.shape(x);
  ir::LinearSpec spec{.batch = shape[0], .in_features = shape[1], .out_features = out_features, .bias = true,
                      .activation = act};
  return builder.compute(name, "Gemm", ir::linear(spec), {x});
}

std::string layer_norm(GraphBuilder& builder, const std::string& name, const std::string& x) {
  const Shape& shape = builder.shape(x);
  const Shape features{shape.back()};
  ir::TensorMap weights{{"scale", filled(features, 1.0f)}, {"B", filled(features, 0.0f)}};
  return builder.structural(name, "LayerNormalization", {x}, shape, std::move(weights),
                            {{"axis", int64_t{-1}}, {"epsilon", kNormEpsilon}});
}

std::string instructions(GraphBuilder& builder, const std::string& name, std::string_view op_type,
                         std::string_view text, std::string_view extents, std::vector<std::string> inputs) {
  return builder.compute(name, op_type, ir::parse(text, extents), std::move(inputs));
}

}  // namespace gos::zoo::detail
