// Reading an ONNX file into an OnnxModel: parse, check, make every shape static, fold constants.
// Every failure is a one-line GraphError that says what is wrong with the file.
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "graph/onnx_model.h"

namespace gos::graph::onnx_import {

namespace {

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 17;
// Larger values are not a model gos could run; refusing them keeps element counts from overflowing.
constexpr int64_t kMaxValueElements = int64_t{1} << 34;

// ONNX's messages carry a multi-line context; a GraphError is one line.
std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  auto last = text.find_last_not_of(' ');
  text.erase(last == std::string::npos ? 0 : last + 1);
  std::string squeezed;
  for (char c : text) {
    if (!(c == ' ' && !squeezed.empty() && squeezed.back() == ' ')) squeezed += c;
  }
  return squeezed;
}

onnx::ModelProto parse(const std::string& bytes, const std::string& source) {
  onnx::ModelProto proto;
  if (bytes.empty()) throw GraphError(source + " is empty; expected an ONNX model");
  if (!proto.ParseFromString(bytes)) {
    throw GraphError(source +
                     " is not an ONNX model: its bytes do not parse as an ONNX protobuf (corrupt or truncated file?)");
  }
  if (!proto.has_graph() || proto.graph().node_size() == 0 || proto.ir_version() <= 0) {
    throw GraphError(source +
                     " is not an ONNX model: it has no graph, nodes or IR version (wrong file type or corrupt file?)");
  }
  return proto;
}

// The standard domain's opset, 0 when the model imports none.
int64_t standard_opset(const onnx::ModelProto& proto) {
  for (const auto& entry : proto.opset_import()) {
    if (entry.domain().empty() || entry.domain() == "ai.onnx") return entry.version();
  }
  return 0;
}

// A model exported before opset 11, upgraded by ONNX's own version converter.
onnx::ModelProto upgraded(const onnx::ModelProto& proto, int64_t opset, const std::string& source) {
  try {
    return onnx::version_conversion::ConvertVersion(proto, static_cast<int>(kMinOpset));
  } catch (const std::exception& error) {
    throw GraphError(source + " uses opset " + std::to_string(opset) + " and ONNX's version converter cannot upgrade it to " +
                     std::to_string(kMinOpset) + " (" + one_line(error.what()) + "); export again with opset_version=13, say");
  }
}

std::map<std::string, int64_t> read_opsets(const onnx::ModelProto& proto, const std::string& source) {
  std::map<std::string, int64_t> opsets;
  for (const auto& entry : proto.opset_import()) {
    opsets[entry.domain() == "ai.onnx" ? "" : entry.domain()] = entry.version();
  }
  auto found = opsets.find("");
  if (found == opsets.end()) throw GraphError(source + " does not import the standard ONNX operator set");
  if (found->second < kMinOpset || found->second > kMaxOpset) {
    throw GraphError(source + " uses opset " + std::to_string(found->second) + "; gos imports opset " +
                     std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) +
                     " (export again with opset_version=13, say)");
  }
  return opsets;
}

std::string node_label(const onnx::NodeProto& node, int index) {
  return "node '" + (node.name().empty() ? node.op_type() + "_" + std::to_string(index) : node.name()) + "' (op " +
         node.op_type() + ")";
}

// The checker reports a missing value as a topological-order problem; say what it usually is.
void require_defined_inputs(const onnx::GraphProto& graph, const std::string& source) {
  std::set<std::string> defined;
  for (const auto& input : graph.input()) defined.insert(input.name());
  for (const auto& initializer : graph.initializer()) defined.insert(initializer.name());
  for (int index = 0; index < graph.node_size(); ++index) {
    const auto& node = graph.node(index);
    for (const auto& input : node.input()) {
      if (!input.empty() && !defined.count(input)) {
        throw GraphError(source + ": " + node_label(node, index) + " reads '" + input +
                         "', which no initializer, graph input or earlier node provides (missing initializer?)");
      }
    }
    for (const auto& output : node.output()) defined.insert(output);
  }
  for (const auto& output : graph.output()) {
    if (!defined.count(output.name())) {
      throw GraphError(source + ": graph output '" + output.name() + "' is not produced by any node");
    }
  }
}

// The checker would look for external data relative to the working directory; refuse it first.
void require_self_contained(const onnx::GraphProto& graph, const std::string& source) {
  for (const auto& initializer : graph.initializer()) {
    if (initializer.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) {
      read_tensor(initializer, source + ": initializer '" + initializer.name() + "'");  // throws the message
    }
  }
}

void check(const onnx::ModelProto& proto, const std::string& source) {
  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& error) {
    throw GraphError(source + " is not a valid ONNX model: " + one_line(error.what()));
  }
}

std::string dims_text(const Shape& shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

// Data inputs get static shapes: a dynamic first dimension is the batch and becomes 1 (the
// nominal batch); another dynamic dimension takes the user's --input-shape, or cannot be resolved.
std::vector<Value> make_inputs_static(onnx::GraphProto& graph, const std::string& source, const Shape& input_shape) {
  std::set<std::string> initializers;
  for (const auto& initializer : graph.initializer()) initializers.insert(initializer.name());
  size_t data_inputs = 0;
  for (const auto& input : graph.input()) data_inputs += !initializers.count(input.name());
  if (!input_shape.empty() && data_inputs != 1) {
    throw GraphError(source + " has " + std::to_string(data_inputs) + " data inputs; --input-shape fixes the shape of a model with one");
  }
  std::vector<Value> inputs;
  for (auto& input : *graph.mutable_input()) {
    if (initializers.count(input.name())) continue;
    const std::string what = source + ": input '" + input.name() + "'";
    if (!input.type().has_tensor_type() || !input.type().tensor_type().has_shape()) {
      throw GraphError(what + " has no tensor shape; gos needs static input shapes");
    }
    if (input.type().tensor_type().elem_type() != onnx::TensorProto_DataType_FLOAT) {
      throw GraphError(what + " has element type " + std::to_string(input.type().tensor_type().elem_type()) +
                       "; gos imports models with float inputs");
    }
    Value value{input.name(), {}};
    auto* dims = input.mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim();
    if (!input_shape.empty() && static_cast<size_t>(dims->size()) != input_shape.size()) {
      throw GraphError(what + " has " + std::to_string(dims->size()) + " dimensions; --input-shape " + dims_text(input_shape) + " gives " +
                       std::to_string(input_shape.size()));
    }
    for (int axis = 0; axis < dims->size(); ++axis) {
      auto& dim = (*dims)[axis];
      if (axis == 0 && !input_shape.empty()) {
        dim.set_dim_value(1);  // the nominal batch, whatever the file or the user says
      } else if (!input_shape.empty()) {
        if (dim.has_dim_value() && dim.dim_value() != input_shape[axis]) {
          throw GraphError(what + " has dimension " + std::to_string(axis) + " fixed at " + std::to_string(dim.dim_value()) +
                           "; --input-shape " + dims_text(input_shape) + " says " + std::to_string(input_shape[axis]));
        }
        if (input_shape[axis] <= 0) throw GraphError("--input-shape " + dims_text(input_shape) + ": every dimension must be positive");
        dim.set_dim_value(input_shape[axis]);
      }
      if (!dim.has_dim_value() && axis == 0) dim.set_dim_value(1);
      if (!dim.has_dim_value() || dim.dim_value() <= 0) {
        std::string label = dim.has_dim_param() ? " ('" + dim.dim_param() + "')" : "";
        throw GraphError(what + " has dynamic dimension " + std::to_string(axis) + label +
                         "; fix it with --input-shape (e.g. --input-shape 1,3,224,224), or export with a fixed input size");
      }
      value.shape.push_back(dim.dim_value());
    }
    inputs.push_back(std::move(value));
  }
  if (inputs.empty()) throw GraphError(source + " has no data input");
  return inputs;
}

// Declared shapes are dropped (they may be stale or symbolic) except those of Einsum outputs,
// which ONNX 1.12's inference cannot give and gos's export declares; their symbolic batch becomes
// the nominal batch of 1, like the inputs'.
void keep_only_einsum_shapes(onnx::GraphProto& graph) {
  std::set<std::string> einsum_outputs;
  for (const auto& node : graph.node()) {
    if (node.op_type() == "Einsum" && node.output_size() > 0) einsum_outputs.insert(node.output(0));
  }
  std::vector<onnx::ValueInfoProto> kept;
  for (const auto& info : graph.value_info()) {
    if (!einsum_outputs.count(info.name()) || !info.type().tensor_type().has_shape()) continue;
    kept.push_back(info);
    auto* dims = kept.back().mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim();
    if (!dims->empty() && !(*dims)[0].has_dim_value()) (*dims)[0].set_dim_value(1);
  }
  graph.clear_value_info();
  for (auto& info : kept) *graph.add_value_info() = std::move(info);
}

void infer_shapes(onnx::ModelProto& proto, const std::string& source) {
  keep_only_einsum_shapes(*proto.mutable_graph());
  try {
    onnx::shape_inference::InferShapes(proto, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/false, /*error_mode=*/1));
  } catch (const std::exception& error) {
    throw GraphError(source + ": ONNX shape inference failed: " + one_line(error.what()));
  }
}

// Records the static shapes inference found (values with a dynamic dimension are left out).
void record_value(const onnx::ValueInfoProto& info, OnnxModel& model, const std::string& source) {
  if (!info.type().has_tensor_type()) return;
  const auto& tensor = info.type().tensor_type();
  model.element_types[info.name()] = tensor.elem_type();
  if (!tensor.has_shape()) return;
  Shape shape;
  int64_t elements = 1;
  for (const auto& dim : tensor.shape().dim()) {
    if (!dim.has_dim_value() || dim.dim_value() < 0) return;
    shape.push_back(dim.dim_value());
    if (shape.back() > 0 && elements > kMaxValueElements / shape.back()) {
      throw GraphError(source + ": value '" + info.name() + "' is implausibly large");
    }
    elements *= std::max<int64_t>(shape.back(), 1);
  }
  model.shapes[info.name()] = std::move(shape);
}

void record_shapes(const onnx::GraphProto& graph, OnnxModel& model, const std::string& source) {
  model.shapes.clear();
  for (const auto* list : {&graph.input(), &graph.value_info(), &graph.output()}) {
    for (const auto& info : *list) record_value(info, model, source);
  }
  for (const auto& [name, value] : model.constants) {
    model.shapes[name] = value.shape;
    model.element_types[name] = value.element_type;
  }
}

void read_initializers(const onnx::GraphProto& graph, OnnxModel& model, const std::string& source) {
  for (const auto& initializer : graph.initializer()) {
    ConstValue value = read_tensor(initializer, source + ": initializer '" + initializer.name() + "'");
    value.from_initializer = true;
    model.constants[initializer.name()] = std::move(value);
  }
}

// Hands the folded graph back to ONNX: the remaining nodes, and the folded values they read as
// initializers, so that shape inference sees Reshape targets and the like as constants.
void write_back(const OnnxModel& model, onnx::GraphProto& graph) {
  std::set<std::string> initializers;
  for (const auto& initializer : graph.initializer()) initializers.insert(initializer.name());
  graph.clear_node();
  for (const auto& node : model.nodes) {
    *graph.add_node() = node;
    for (const auto& input : node.input()) {
      auto constant = model.constants.find(input);
      if (constant != model.constants.end() && initializers.insert(input).second) {
        *graph.add_initializer() = write_tensor(constant->second, input);
      }
    }
  }
}

// Before IR version 4 every initializer was also a graph input; PyTorch's old exporter and ONNX's
// version converter (Pad's pads as an initializer) leave some out, which the checker refuses:
// they are listed as inputs.
void list_initializers_as_inputs(onnx::ModelProto& proto) {
  if (proto.ir_version() >= 4) return;
  onnx::GraphProto& graph = *proto.mutable_graph();
  std::set<std::string> inputs;
  for (const auto& input : graph.input()) inputs.insert(input.name());
  for (const auto& initializer : graph.initializer()) {
    if (inputs.count(initializer.name())) continue;
    onnx::ValueInfoProto& input = *graph.add_input();
    input.set_name(initializer.name());
    auto& tensor_type = *input.mutable_type()->mutable_tensor_type();
    tensor_type.set_elem_type(initializer.data_type());
    for (const int64_t dim : initializer.dims()) tensor_type.mutable_shape()->add_dim()->set_dim_value(dim);
  }
}

// Each named graph input becomes an initializer holding the file's tensor (and stays listed as an
// input before IR version 4, where initializers are inputs too).
void make_constant(onnx::ModelProto& proto, const std::map<std::string, std::string>& constant_inputs, const std::string& source) {
  onnx::GraphProto& graph = *proto.mutable_graph();
  for (const auto& [name, path] : constant_inputs) {
    auto* inputs = graph.mutable_input();
    const auto input = std::find_if(inputs->begin(), inputs->end(), [&](const auto& value) { return value.name() == name; });
    if (input == inputs->end()) throw GraphError(source + " has no graph input '" + name + "' to make constant");
    std::ifstream file(path, std::ios::binary);
    onnx::TensorProto tensor;
    if (!file || !tensor.ParseFromIstream(&file)) throw GraphError(path + ": not an ONNX TensorProto file");
    tensor.set_name(name);
    *graph.add_initializer() = std::move(tensor);
    if (proto.ir_version() >= 4) inputs->erase(input);
  }
}

}  // namespace

OnnxModel load_model(const std::string& bytes, const std::string& source, const Shape& input_shape,
                     const std::map<std::string, std::string>& constant_inputs) {
  onnx::ModelProto proto = parse(bytes, source);
  make_constant(proto, constant_inputs, source);
  list_initializers_as_inputs(proto);
  OnnxModel model;
  if (const int64_t opset = standard_opset(proto); opset > 0 && opset < kMinOpset) {
    proto = upgraded(proto, opset, source);
    list_initializers_as_inputs(proto);  // the converter adds initializers (Pad's pads) to IR-3 files too
    model.upgraded_from_opset = opset;
  }
  model.opsets = read_opsets(proto, source);
  model.opset = model.opsets.at("");
  model.name = proto.graph().name();
  require_defined_inputs(proto.graph(), source);
  require_self_contained(proto.graph(), source);
  check(proto, source);
  model.inputs = make_inputs_static(*proto.mutable_graph(), source, input_shape);
  for (const auto& output : proto.graph().output()) model.outputs.push_back(output.name());
  read_initializers(proto.graph(), model, source);
  model.nodes.assign(proto.graph().node().begin(), proto.graph().node().end());

  // Each round folds what the shapes known so far allow; the next inference then knows more.
  for (;;) {
    infer_shapes(proto, source);
    record_shapes(proto.graph(), model, source);
    if (!fold_constants(model)) break;
    write_back(model, *proto.mutable_graph());
  }
  return model;
}

}  // namespace gos::graph::onnx_import
