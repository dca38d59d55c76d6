// Whole-graph ONNX export: compute nodes through the ONNX lowering, structural nodes as their ONNX
// operators in opset 17's form, then onnx::checker and shape inference.
#include "graph/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <cmath>
#include <fstream>
#include <set>

#include "lowering/onnx_lowering.h"

namespace gos::graph {

namespace {

using lowering::OnnxBuilder;
using lowering::set_attribute;

constexpr int64_t kIrVersion = 8;  // the newest the installed ONNX library (1.12) checks

// Constant inputs that opset 17 types as int64 (shapes, axes, bounds), by op type.
bool reads_int64(const std::string& op_type, size_t position) {
  static const std::map<std::string, std::set<size_t>> positions{{"Reshape", {1}}, {"Slice", {1, 2, 3, 4}},
                                                                 {"Squeeze", {1}}, {"Unsqueeze", {1}},
                                                                 {"Split", {1}},   {"Pad", {1}},
                                                                 {"Gather", {1}},  {"Resize", {3}}};
  auto found = positions.find(op_type);
  return found != positions.end() && found->second.count(position);
}

// Attributes of older opsets that opset 13 made inputs: op type, attribute, input position.
struct MovedAttribute {
  std::string_view op_type, attribute;
  size_t position;
};
constexpr MovedAttribute kAttributesMovedToInputs[] = {
    {"Squeeze", "axes", 1}, {"Unsqueeze", "axes", 1}, {"Split", "split", 1}, {"Reshape", "shape", 1},
    {"Slice", "starts", 1}, {"Slice", "ends", 2},     {"Slice", "axes", 3},  {"Slice", "steps", 4}};

const MovedAttribute* moved_to_input(const std::string& op_type, const std::string& attribute) {
  for (const auto& moved : kAttributesMovedToInputs) {
    if (moved.op_type == op_type && moved.attribute == attribute) return &moved;
  }
  return nullptr;
}

// Learned state of structural nodes, in ONNX input order after the data input.
const std::vector<std::string>& weight_inputs(const std::string& op_type) {
  static const std::map<std::string, std::vector<std::string>> inputs{
      {"BatchNormalization", {"scale", "B", "mean", "var"}},
      {"LayerNormalization", {"scale", "B"}},
      {"InstanceNormalization", {"scale", "B"}},
      {"PRelu", {"slope"}}};
  static const std::vector<std::string> none;
  auto found = inputs.find(op_type);
  return found == inputs.end() ? none : found->second;
}

std::vector<int64_t> as_int64(const ir::Tensor& tensor) {
  std::vector<int64_t> values;
  for (float value : tensor.data) values.push_back(static_cast<int64_t>(std::llround(value)));
  return values;
}

void set_graph_attribute(onnx::NodeProto& node, const std::string& name, const Attribute& value) {
  std::visit(
      [&](const auto& held) {
        using T = std::decay_t<decltype(held)>;
        if constexpr (std::is_same_v<T, double>) {
          set_attribute(node, name, static_cast<float>(held));
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          set_attribute(node, name, std::vector<float>(held.begin(), held.end()));
        } else if constexpr (std::is_same_v<T, ir::Tensor>) {
          set_attribute(node, name, lowering::to_tensor_proto("", held));
        } else {
          set_attribute(node, name, held);
        }
      },
      value);
}

void set_value_info(onnx::ValueInfoProto& info, const std::string& name, const Shape& shape, bool symbolic_batch) {
  info.set_name(name);
  auto& tensor_type = *info.mutable_type()->mutable_tensor_type();
  tensor_type.set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto& dims = *tensor_type.mutable_shape();
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    if (axis == 0 && symbolic_batch) {
      dims.add_dim()->set_dim_param("N");
    } else {
      dims.add_dim()->set_dim_value(shape[axis]);
    }
  }
}

// ONNX messages span lines ("==> Context: ..."); gos reports one.
std::string one_line(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string collapsed;
  for (char c : text) {
    if (!(c == ' ' && !collapsed.empty() && collapsed.back() == ' ')) collapsed += c;
  }
  return collapsed;
}

class Exporter {
 public:
  Exporter(const Graph& graph, const OnnxExportOptions& options, onnx::GraphProto& proto)
      : graph_(graph), options_(options), builder_(proto) {}

  void run() {
    reserve_graph_names();
    for (const auto& input : graph_.inputs) {
      set_value_info(*builder_.graph().add_input(), input.name, input.shape, options_.symbolic_batch);
    }
    for (const auto& node : graph_.nodes) {
      builder_.set_scope(node.name);
      try {
        node.is_compute() ? add_compute(node) : add_structural(node);
      } catch (const ir::IrError& error) {
        throw GraphError("node '" + node.name + "' (" + node.op_type + ") cannot be written as ONNX: " + error.what());
      }
    }
    for (const auto& output : graph_.outputs) {
      set_value_info(*builder_.graph().add_output(), output.name, graph_.shape_of(output.name), options_.symbolic_batch);
    }
  }

 private:
  // Names the graph already uses must not be handed out to the values the lowering invents.
  void reserve_graph_names() {
    for (const auto& input : graph_.inputs) builder_.reserve(input.name);
    for (const auto& [name, tensor] : graph_.constants) builder_.reserve(name);
    for (const auto& node : graph_.nodes) {
      builder_.reserve(node.name);
      for (const auto& output : node.outputs) builder_.reserve(output);
    }
  }

  // A graph constant as an initializer of the element type its reader needs, written once.
  std::string constant(const std::string& name, bool integer) {
    auto& written = integer ? int64_constants_ : float_constants_;
    if (auto found = written.find(name); found != written.end()) return found->second;
    const ir::Tensor& tensor = graph_.constants.at(name);
    std::string value = name;
    if (integer && tensor.shape.size() == 1) {
      value = builder_.int64_vector(as_int64(tensor));
    } else if (integer) {  // Gather's indices keep their shape
      onnx::TensorProto& proto = *builder_.graph().add_initializer();
      proto.set_name(name);
      proto.set_data_type(onnx::TensorProto_DataType_INT64);
      for (const int64_t dim : tensor.shape) proto.add_dims(dim);
      for (const int64_t element : as_int64(tensor)) proto.add_int64_data(element);
    } else {
      *builder_.graph().add_initializer() = lowering::to_tensor_proto(name, tensor);
    }
    written[name] = value;
    return value;
  }

  std::string input_value(const std::string& op_type, size_t position, const std::string& name) {
    if (name.empty() || !graph_.constants.count(name)) return name;
    return constant(name, reads_int64(op_type, position));
  }

  void add_compute(const Node& node) {
    lowering::OnnxBinding binding{{}, node.outputs.at(0), node.weights};
    for (const auto& input : node.inputs) binding.inputs.push_back(input_value("", 0, input));  // data: float
    lowering::lower_to_onnx(*node.op, binding, builder_, {.recognise_kernels = options_.recognise_kernels});
  }

  void add_structural(const Node& node) {
    std::vector<std::string> inputs;
    for (size_t i = 0; i < node.inputs.size(); ++i) inputs.push_back(input_value(node.op_type, i, node.inputs[i]));
    for (const auto& weight : weight_inputs(node.op_type)) {
      auto found = node.weights.find(weight);
      if (found == node.weights.end()) throw GraphError("node '" + node.name + "' (" + node.op_type + ") has no " + weight);
      inputs.push_back(builder_.float_tensor(weight, found->second));
    }
    std::map<std::string, Attribute> attributes = node.attributes;
    move_attributes_to_inputs(node, attributes, inputs);
    if (node.op_type == "ReduceMean") move_axes_input_to_attribute(node, attributes, inputs);
    while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
    onnx::NodeProto& proto = builder_.node(node.op_type, inputs, node.outputs);
    proto.set_name(node.name);
    for (const auto& [name, value] : attributes) set_graph_attribute(proto, name, value);
  }

  void move_attributes_to_inputs(const Node& node, std::map<std::string, Attribute>& attributes,
                                 std::vector<std::string>& inputs) {
    for (auto it = attributes.begin(); it != attributes.end();) {
      const MovedAttribute* moved = moved_to_input(node.op_type, it->first);
      if (!moved) {
        ++it;
        continue;
      }
      if (inputs.size() <= moved->position) inputs.resize(moved->position + 1);
      inputs[moved->position] = builder_.int64_vector(std::get<std::vector<int64_t>>(it->second));
      it = attributes.erase(it);
    }
  }

  // Opset 18 made ReduceMean's axes an input; opset 17 reads the attribute.
  void move_axes_input_to_attribute(const Node& node, std::map<std::string, Attribute>& attributes,
                                    std::vector<std::string>& inputs) {
    if (node.inputs.size() < 2 || node.inputs[1].empty()) return;
    auto axes = graph_.constants.find(node.inputs[1]);
    if (axes == graph_.constants.end()) {
      throw GraphError("node '" + node.name + "' (ReduceMean) reads its axes from a computed value");
    }
    attributes["axes"] = as_int64(axes->second);
    inputs.resize(1);
  }

  const Graph& graph_;
  const OnnxExportOptions& options_;
  OnnxBuilder builder_;
  std::map<std::string, std::string> float_constants_, int64_constants_;
};

}  // namespace

onnx::ModelProto to_onnx(const Graph& graph, const OnnxExportOptions& options) {
  Graph folded = fold_batch_norms(graph);
  validate(folded);
  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("gos");
  auto& opset = *model.add_opset_import();
  opset.set_domain("");
  opset.set_version(lowering::kOnnxOpset);
  onnx::GraphProto& proto = *model.mutable_graph();
  proto.set_name(graph.name.empty() ? "gos" : graph.name);
  Exporter(folded, options, proto).run();
  return model;
}

void check_onnx(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& error) {
    throw GraphError("the ONNX model fails onnx::checker: " + one_line(error.what()));
  }
  onnx::ModelProto inferred = model;
  try {
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict_mode=*/1));
  } catch (const std::exception& error) {
    throw GraphError("the ONNX model fails ONNX shape inference: " + one_line(error.what()));
  }
}

void write_onnx(const Graph& graph, const std::filesystem::path& path, const OnnxExportOptions& options) {
  onnx::ModelProto model = to_onnx(graph, options);
  check_onnx(model);
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  if (!stream || !model.SerializeToOstream(&stream)) throw GraphError("cannot write " + path.string());
}

}  // namespace gos::graph
