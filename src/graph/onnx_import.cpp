// ONNX import, start to end: load and fold the model, recognise decomposed operators, convert
// node by node, then fold batch norms and fuse epilogues on the gos graph.
#include "graph/onnx_import.h"

#include <fstream>
#include <sstream>

#include "graph/onnx_convert.h"

namespace gos::graph {

namespace {

using onnx_import::NodeContext;
using onnx_import::OnnxModel;
using onnx_import::Unsupported;

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw GraphError("cannot open " + path + ": no such file or not readable");
  std::ostringstream bytes;
  bytes << file.rdbuf();
  if (file.bad()) throw GraphError("cannot read " + path);
  return bytes.str();
}

// ONNX node names are optional and need not be unique; gos's are both.
std::vector<std::string> unique_node_names(const OnnxModel& model) {
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (size_t index = 0; index < model.nodes.size(); ++index) {
    const auto& node = model.nodes[index];
    std::string base = node.name().empty() ? node.op_type() + "_" + std::to_string(index) : node.name();
    std::string name = base;
    for (int suffix = 2; !taken.insert(name).second; ++suffix) name = base + "_" + std::to_string(suffix);
    names.push_back(name);
  }
  return names;
}

std::set<std::string> read_values(const OnnxModel& model) {
  std::set<std::string> values(model.outputs.begin(), model.outputs.end());
  for (const auto& node : model.nodes) values.insert(node.input().begin(), node.input().end());
  return values;
}

// A node gos cannot represent keeps its place (so that listings show it) without instructions.
Node placeholder(const onnx::NodeProto& proto, const std::string& name) {
  Node node;
  node.name = name;
  node.op_type = proto.op_type();
  node.inputs.assign(proto.input().begin(), proto.input().end());
  node.outputs.assign(proto.output().begin(), proto.output().end());
  return node;
}

// Why a node fails often lies upstream; say so.
std::string with_upstream_cause(std::string reason, const onnx::NodeProto& proto,
                                const std::map<std::string, std::string>& unsupported_outputs) {
  for (const auto& input : proto.input()) {
    auto cause = unsupported_outputs.find(input);
    if (cause != unsupported_outputs.end())
      return reason + " (its input comes from unsupported node '" + cause->second + "')";
  }
  return reason;
}

void require_output_shapes(const NodeContext& context, const Node& node) {
  for (const auto& output : node.outputs) {
    if (!output.empty() && !context.model().find_shape(output)) {
      throw Unsupported{"ONNX shape inference gives no static shape for its output '" + output + "'"};
    }
  }
}

void record_shapes(const OnnxModel& model, Graph& graph) {
  auto record = [&](const std::string& value) {
    if (const Shape* shape = model.find_shape(value)) graph.shapes[value] = *shape;
  };
  for (const auto& input : graph.inputs) record(input.name);
  for (const auto& node : graph.nodes) {
    for (const auto& value : node.inputs) record(value);
    for (const auto& value : node.outputs) record(value);
  }
  for (const auto& [name, tensor] : graph.constants) graph.shapes[name] = tensor.shape;
}

void convert_nodes(const OnnxModel& model, const ImportOptions& options, ImportResult& result) {
  Graph& graph = result.graph;
  const auto names = unique_node_names(model);
  const auto read = read_values(model);
  std::map<std::string, std::string> unsupported_outputs;  // value -> the unsupported node writing it
  for (size_t index = 0; index < model.nodes.size(); ++index) {
    const auto& proto = model.nodes[index];
    NodeContext context(proto, model, names[index], graph.constants, read);
    try {
      Node node = onnx_import::convert_node(context);
      require_output_shapes(context, node);
      graph.nodes.push_back(std::move(node));
    } catch (const Unsupported& unsupported) {
      UnsupportedNode record{names[index], proto.op_type(), model.opset_of(proto),
                             with_upstream_cause(unsupported.reason, proto, unsupported_outputs)};
      if (!options.allow_unsupported) throw GraphError(record.message());
      for (const auto& output : proto.output()) unsupported_outputs[output] = names[index];
      result.unsupported.push_back(std::move(record));
      graph.nodes.push_back(placeholder(proto, names[index]));
    }
  }
}

}  // namespace

std::string UnsupportedNode::message() const {
  return "node '" + node + "' (op " + op_type + ", opset " + std::to_string(opset) +
         ") is not supported by gos: " + reason;
}

namespace {

// gos reads models as trained and quantizes them itself (gos quantize): an integer model's scales
// are not weights the rules or training could change.
void refuse_quantized(const OnnxModel& model, const std::string& source) {
  static const std::set<std::string> quantized{"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
                                               "QLinearMatMul", "ConvInteger", "MatMulInteger"};
  for (const auto& node : model.nodes) {
    if (!quantized.count(node.op_type())) continue;
    throw GraphError(source + " is already quantized (node '" + node.name() + "' is a " + node.op_type() +
                     "): gos reads the fp32 model as trained and quantizes it itself (gos quantize); give it that one");
  }
}

}  // namespace

ImportResult import_onnx_bytes(const std::string& bytes, const ImportOptions& options, const std::string& source) {
  OnnxModel model = onnx_import::load_model(bytes, source, options.input_shape, options.constant_inputs);
  if (!options.allow_unsupported) refuse_quantized(model, source);
  onnx_import::rewrite_patterns(model);

  ImportResult result;
  result.opset = model.opset;
  result.upgraded_from_opset = model.upgraded_from_opset;
  Graph& graph = result.graph;
  graph.name = model.name;
  graph.inputs = model.inputs;
  convert_nodes(model, options, result);
  for (const auto& output : model.outputs) {
    const Shape* shape = model.find_shape(output);
    graph.outputs.push_back({output, shape ? *shape : Shape{}});
  }
  record_shapes(model, graph);

  graph = fold_batch_norms(graph);
  fuse_epilogues(graph);
  if (result.unsupported.empty()) validate(graph);
  return result;
}

ImportResult import_onnx(const std::string& path, const ImportOptions& options) {
  return import_onnx_bytes(read_file(path), options, path);
}

std::set<std::string> imported_op_types() {
  std::set<std::string> types = onnx_import::converted_op_types();
  types.insert({"Constant", "Identity", "Dropout"});
  return types;
}

OnnxOutline outline_onnx(const std::string& path) {
  onnx::ModelProto proto;
  if (!proto.ParseFromString(read_file(path)) || !proto.has_graph()) throw GraphError(path + ": not an ONNX model");
  OnnxOutline outline;
  std::set<std::string> initializers;
  for (const auto& initializer : proto.graph().initializer()) initializers.insert(initializer.name());
  for (const auto& node : proto.graph().node()) outline.op_types.insert(node.op_type());
  for (const auto& input : proto.graph().input()) {
    if (!initializers.count(input.name())) outline.inputs.push_back(input.name());
  }
  return outline;
}

NamedTensor read_tensor_file(const std::string& path) {
  const std::string bytes = read_file(path);
  onnx::TensorProto proto;
  if (!proto.ParseFromString(bytes) || (proto.dims_size() == 0 && proto.raw_data().empty() && proto.float_data_size() == 0 &&
                                        proto.int64_data_size() == 0 && proto.int32_data_size() == 0 && proto.double_data_size() == 0)) {
    throw GraphError(path + ": not an ONNX TensorProto file");
  }
  return {proto.name(), onnx_import::read_tensor(proto, path).to_tensor()};
}

}  // namespace gos::graph
