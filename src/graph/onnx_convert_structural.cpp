// Structural nodes: ONNX op type, attributes and constant inputs kept as they are, so that
// execution and export follow the ONNX specification. Normalisations carry their learned state
// as weights; Reshape targets are made batch-independent.
#include "graph/onnx_convert.h"
#include "graph/structural.h"

namespace gos::graph::onnx_import {

namespace {

Attribute convert_attribute(const onnx::AttributeProto& attribute) {
  switch (attribute.type()) {
    case onnx::AttributeProto::INT:
      return attribute.i();
    case onnx::AttributeProto::FLOAT:
      return static_cast<double>(attribute.f());
    case onnx::AttributeProto::STRING:
      return attribute.s();
    case onnx::AttributeProto::INTS:
      return std::vector<int64_t>(attribute.ints().begin(), attribute.ints().end());
    case onnx::AttributeProto::FLOATS:
      return std::vector<double>(attribute.floats().begin(), attribute.floats().end());
    case onnx::AttributeProto::TENSOR:
      return read_tensor(attribute.t(), "attribute " + attribute.name()).to_tensor();
    default:
      throw Unsupported{"its attribute " + attribute.name() + " is a graph or another kind gos does not keep"};
  }
}

Node bare_structural(const NodeContext& context) {
  Node node;
  node.name = context.name();
  node.op_type = context.proto().op_type();
  for (const auto& attribute : context.proto().attribute())
    node.attributes[attribute.name()] = convert_attribute(attribute);
  for (const auto& output : context.proto().output()) node.outputs.push_back(output);
  return node;
}

// Data inputs by name, constant inputs (Reshape's shape, Slice's bounds, ...) as graph constants.
Node with_inputs(const NodeContext& context, Node node) {
  for (int index = 0; index < context.proto().input_size(); ++index) {
    node.inputs.push_back(context.is_constant(index) ? context.use_constant(index) : context.input(index));
  }
  return node;
}

// Normalisations read only the data; their other inputs are learned state, kept as weights.
Node normalisation(const NodeContext& context, const std::vector<std::string>& weight_names) {
  if (context.extra_outputs_used()) throw Unsupported{"it is in training mode (its statistics outputs are read)"};
  Node node = bare_structural(context);
  node.outputs.resize(1);
  node.inputs = {context.input(0)};
  for (size_t i = 0; i < weight_names.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    if (context.has_input(index)) {
      node.weights[weight_names[i]] = context.constant(index, weight_names[i]).to_tensor();
    }
  }
  return node;
}

Node batch_normalization(const NodeContext& context) {
  if (attribute_int(context.proto(), "training_mode", 0) != 0) throw Unsupported{"it is in training mode"};
  return normalisation(context, {"scale", "B", "mean", "var"});
}

Node layer_normalization(const NodeContext& context) {
  Node node = normalisation(context, {"scale", "B"});
  if (!node.weights.count("B")) {
    const ir::Tensor& scale = node.weights.at("scale");
    node.weights["B"] = ir::Tensor(scale.shape, 0.0f);
  }
  return node;
}

Node instance_normalization(const NodeContext& context) { return normalisation(context, {"scale", "B"}); }

// The slope is learned state (a weight), broadcast against the data as numpy broadcasts.
Node prelu(const NodeContext& context) {
  Node node = bare_structural(context);
  node.inputs = {context.input(0)};
  ir::Tensor slope = context.constant(1, "slope").to_tensor();
  // Before opset 7 a 1-D slope was per channel; ONNX's version converter leaves it 1-D, where
  // numpy broadcasting would align it with the last axis instead.
  const Shape& input = context.shape(0);
  if (slope.shape.size() == 1 && input.size() > 2 && slope.shape[0] == input[1] && slope.shape[0] != input.back() && slope.shape[0] > 1) {
    slope.shape = Shape(input.size() - 1, 1);
    slope.shape[0] = input[1];
  }
  node.weights["slope"] = std::move(slope);
  return node;
}

Node gather(const NodeContext& context) {
  if (!context.is_constant(1)) throw Unsupported{"its indices are computed; gos gathers at indices stored in the model"};
  if (context.is_constant(0)) throw Unsupported{"it gathers from a constant at computed positions"};
  return structural_node(context);
}

// Resize in opset 11's form, [X, roi, scales, sizes] with roi unused; Resize-10 and Upsample
// (scales as an input or an attribute) map positions asymmetrically and round down.
Node resize(const NodeContext& context) {
  Node node = bare_structural(context);
  node.op_type = "Resize";
  const bool old_form = context.opset() < 11 || context.proto().op_type() == "Upsample";
  std::string mode = attribute_string(context.proto(), "mode", "nearest");
  if (mode == "bilinear") mode = "linear";
  node.attributes["mode"] = mode;
  auto constant_input = [&](int index, const std::string& role) -> std::string {
    if (!context.has_input(index)) return "";
    if (!context.is_constant(index)) throw Unsupported{"its " + role + " are computed; gos resizes by " + role + " stored in the model"};
    return context.use_constant(index);
  };
  if (old_form) {
    node.attributes["coordinate_transformation_mode"] = std::string("asymmetric");
    node.attributes["nearest_mode"] = std::string("floor");
  }
  if (auto why = detail::resize_unsupported(node)) throw Unsupported{*why};
  std::string scales, sizes;
  if (old_form) {
    if (auto attribute = node.attributes.find("scales"); attribute != node.attributes.end()) {
      const auto values = std::get<std::vector<double>>(attribute->second);
      scales = context.name() + "::scales";
      context.add_constant(scales, ir::Tensor({static_cast<int64_t>(values.size())}, std::vector<float>(values.begin(), values.end())));
      node.attributes.erase(attribute);
    } else {
      scales = constant_input(1, "scales");
    }
  } else {
    scales = constant_input(2, "scales");
    sizes = constant_input(3, "sizes");
  }
  node.inputs = {context.input(0), "", scales, sizes};
  while (node.inputs.back().empty()) node.inputs.pop_back();
  return node;
}

// A target of [1, ...] for an input whose first dimension is the (nominal) batch of 1 is stored
// as [0, ...]: ONNX's "copy this dimension", which keeps working at any batch size.
Node reshape(const NodeContext& context) {
  Node node = with_inputs(context, bare_structural(context));
  const Shape& input = context.shape(0);
  const bool allow_zero = attribute_int(context.proto(), "allowzero", 0) != 0;
  if (!context.is_constant(1) || allow_zero || input.empty() || input[0] != 1) return node;
  ConstValue target = context.constant(1, "shape");
  if (target.elements() == 0 || target.as_int(0) != 1) return node;
  target.values[0] = 0;
  const std::string name = context.input(1) + "::any_batch";
  context.add_constant(name, target.to_tensor());
  node.inputs[1] = name;
  return node;
}

// Before opset 13, Softmax normalised everything from `axis` on as one flattened dimension;
// that is the single-axis softmax of later opsets only when nothing follows the axis.
Node softmax(const NodeContext& context) {
  if (context.opset() < 13) {
    const Shape& input = context.shape(0);
    const int64_t rank = static_cast<int64_t>(input.size());
    int64_t axis = attribute_int(context.proto(), "axis", 1);
    if (axis < 0) axis += rank;
    for (int64_t dim = axis + 1; dim < rank; ++dim) {
      if (input[dim] != 1)
        throw Unsupported{"an opset-11 " + context.proto().op_type() + " over several flattened axes"};
    }
    Node node = with_inputs(context, bare_structural(context));
    node.attributes["axis"] = axis;
    return node;
  }
  return with_inputs(context, bare_structural(context));
}

}  // namespace

Node structural_node(const NodeContext& context) {
  if (!is_structural_op_type(context.proto().op_type())) {
    throw Unsupported{"gos has no instructions or structural execution for " + context.proto().op_type()};
  }
  return with_inputs(context, bare_structural(context));
}

void add_structural_converters(ConverterTable& table) {
  for (const auto& op_type : structural_op_types()) table[op_type] = structural_node;
  table["BatchNormalization"] = batch_normalization;
  table["LayerNormalization"] = layer_normalization;
  table["Reshape"] = reshape;
  table["Softmax"] = softmax;
  table["InstanceNormalization"] = instance_normalization;
  table["PRelu"] = prelu;
  table["Gather"] = gather;
  table["Dropout"] = [](const NodeContext& context) -> Node {  // inference Dropout vanished before conversion
    throw Unsupported{context.extra_outputs_used() ? "its mask output is read" : "it is in training mode (it drops at random)"};
  };
  table["Resize"] = resize;
  table["Upsample"] = resize;
  table["LogSoftmax"] = softmax;
}

}  // namespace gos::graph::onnx_import
