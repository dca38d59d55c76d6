// Dispatch from ONNX op type to converter, and what every converter shares.
#include "graph/onnx_convert.h"

namespace gos::graph::onnx_import {

namespace {

using ir::shape_text;

const ConverterTable& converters() {
  static const ConverterTable table = [] {
    ConverterTable built;
    add_structural_converters(built);
    add_compute_converters(built);  // overrides the structural ReduceMean where it is a pooling
    add_einsum_converter(built);
    add_conv_transpose_converter(built);
    add_elementwise_converters(built);
    return built;
  }();
  return table;
}

}  // namespace

std::set<std::string> converted_op_types() {
  std::set<std::string> types;
  for (const auto& [op_type, converter] : converters()) types.insert(op_type);
  return types;
}

const ConstValue& NodeContext::constant(int index, const std::string& role) const {
  if (!is_constant(index)) {
    throw Unsupported{"its " + role + " ('" + input(index) + "') is not a constant; gos needs " + role +
                      "s stored in the model"};
  }
  return model_.constants.at(input(index));
}

const Shape& NodeContext::shape(int index) const {
  const Shape* found = model_.find_shape(input(index));
  if (!found) throw Unsupported{"the shape of its input '" + input(index) + "' is not known statically"};
  return *found;
}

const Shape& NodeContext::output_shape() const {
  const Shape* found = proto_.output_size() ? model_.find_shape(proto_.output(0)) : nullptr;
  if (!found) throw Unsupported{"ONNX shape inference gives no static shape for its output"};
  return *found;
}

bool NodeContext::extra_outputs_used() const {
  for (int index = 1; index < proto_.output_size(); ++index) {
    if (!proto_.output(index).empty() && read_values_.count(proto_.output(index))) return true;
  }
  return false;
}

const std::string& NodeContext::use_constant(int index) const {
  const std::string& name = input(index);
  if (!graph_constants_.count(name)) graph_constants_[name] = model_.constants.at(name).to_tensor();
  return name;
}

void NodeContext::add_constant(const std::string& name, ir::Tensor tensor) const {
  graph_constants_[name] = std::move(tensor);
}

Node compute_node(const NodeContext& context, ir::OpExpr op, std::vector<std::string> inputs, ir::TensorMap weights) {
  const auto declared = op.tensors_with_role(ir::Role::Input);
  for (size_t i = 0; i < declared.size() && i < inputs.size(); ++i) {
    if (context.model().find_shape(inputs[i]) && *context.model().find_shape(inputs[i]) != declared[i].shape) {
      throw Unsupported{"its instructions read " + declared[i].name + " as " + shape_text(declared[i].shape) +
                        " but '" + inputs[i] + "' is " + shape_text(*context.model().find_shape(inputs[i]))};
    }
  }
  if (op.output().shape != context.output_shape()) {
    throw Unsupported{"its instructions write " + shape_text(op.output().shape) + " but ONNX infers " +
                      shape_text(context.output_shape())};
  }
  Node node;
  node.name = context.name();
  node.op_type = context.proto().op_type();
  node.inputs = std::move(inputs);
  node.outputs = {context.proto().output(0)};
  node.op = std::move(op);
  node.weights = std::move(weights);
  return node;
}

Node convert_node(const NodeContext& context) {
  const auto& node = context.proto();
  if (!node.domain().empty() && node.domain() != "ai.onnx") {
    throw Unsupported{"it belongs to operator domain '" + node.domain() + "'; gos imports standard ONNX ops"};
  }
  auto converter = converters().find(node.op_type());
  if (converter == converters().end())
    throw Unsupported{"gos has no instructions or structural execution for " + node.op_type()};
  try {
    return converter->second(context);
  } catch (const ir::IrError& error) {
    throw Unsupported{error.what()};
  } catch (const std::out_of_range&) {
    throw Unsupported{"its inputs or attributes are malformed"};
  }
}

std::vector<int64_t> ints_or(const onnx::NodeProto& node, const std::string& name, size_t count, int64_t fallback) {
  return attribute_ints(node, name).value_or(std::vector<int64_t>(count, fallback));
}

bool is_learned(const ConstValue& value) { return value.from_initializer && value.elements() > 1; }

}  // namespace gos::graph::onnx_import
