// Fresh names, nodes and initializers for ONNX graphs (see onnx_builder.h).
#include "lowering/onnx_builder.h"

#include <bit>
#include <cstring>
#include <stdexcept>

namespace gos::lowering {

namespace {

// ONNX raw_data is little-endian; gos copies float buffers as they are in memory.
static_assert(std::endian::native == std::endian::little, "ONNX raw tensor data is written as native little-endian");

std::string scalar_stem(float value) {
  std::string text = std::to_string(value);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return "const_" + text;
}

onnx::AttributeProto& add_attribute(onnx::NodeProto& node, const std::string& name,
                                    onnx::AttributeProto_AttributeType type) {
  onnx::AttributeProto& attribute = *node.add_attribute();
  attribute.set_name(name);
  attribute.set_type(type);
  return attribute;
}

}  // namespace

OnnxBuilder::OnnxBuilder(onnx::GraphProto& graph) : graph_(graph) {
  for (const auto& input : graph.input()) used_.insert(input.name());
  for (const auto& output : graph.output()) used_.insert(output.name());
  for (const auto& initializer : graph.initializer()) used_.insert(initializer.name());
  for (const auto& node : graph.node()) {
    used_.insert(node.name());
    for (const auto& output : node.output()) used_.insert(output);
  }
}

void OnnxBuilder::reserve(const std::string& name) { used_.insert(name); }

std::string OnnxBuilder::fresh(std::string_view stem) {
  std::string base = scope_.empty() ? std::string(stem) : scope_ + "/" + std::string(stem);
  std::string name = base;
  for (int suffix = 1; used_.count(name); ++suffix) name = base + "_" + std::to_string(suffix);
  used_.insert(name);
  return name;
}

onnx::NodeProto& OnnxBuilder::node(std::string_view op_type, const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs) {
  onnx::NodeProto& node = *graph_.add_node();
  node.set_op_type(std::string(op_type));
  node.set_name(fresh(op_type));
  for (const auto& input : inputs) node.add_input(input);
  for (const auto& output : outputs) {
    used_.insert(output);
    node.add_output(output);
  }
  return node;
}

std::string OnnxBuilder::node_value(std::string_view op_type, const std::vector<std::string>& inputs) {
  std::string output = fresh(std::string(op_type) + "_out");
  node(op_type, inputs, {output});
  return output;
}

onnx::NodeProto& OnnxBuilder::last_node() {
  if (graph_.node_size() == 0) throw std::logic_error("OnnxBuilder::last_node: the graph has no node");
  return *graph_.mutable_node(graph_.node_size() - 1);
}

bool OnnxBuilder::rename_last_output(const std::string& value, const std::string& name) {
  if (graph_.node_size() == 0) return false;
  onnx::NodeProto& last = last_node();
  if (last.output_size() != 1 || last.output(0) != value) return false;
  last.set_output(0, name);
  // A shape declared for the value (an Einsum's, which ONNX's inference cannot give) follows it.
  for (auto& info : *graph_.mutable_value_info()) {
    if (info.name() == value) info.set_name(name);
  }
  used_.insert(name);
  return true;
}

std::string OnnxBuilder::float_tensor(std::string_view stem, const ir::Tensor& tensor) {
  std::string name = fresh(stem);
  *graph_.add_initializer() = to_tensor_proto(name, tensor);
  return name;
}

std::string OnnxBuilder::float_scalar(float value) {
  if (auto found = scalars_.find(value); found != scalars_.end()) return found->second;
  std::string name = float_tensor(scalar_stem(value), ir::Tensor({}, {value}));
  scalars_.emplace(value, name);
  return name;
}

std::string OnnxBuilder::int64_vector(const std::vector<int64_t>& values) {
  if (auto found = int64_vectors_.find(values); found != int64_vectors_.end()) return found->second;
  std::string name = fresh("ints");
  onnx::TensorProto& tensor = *graph_.add_initializer();
  tensor.set_name(name);
  tensor.set_data_type(onnx::TensorProto_DataType_INT64);
  tensor.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t value : values) tensor.add_int64_data(value);
  int64_vectors_.emplace(values, name);
  return name;
}

std::string OnnxBuilder::bool_tensor(std::string_view stem, const std::vector<int64_t>& shape,
                                     const std::vector<bool>& values) {
  std::string name = fresh(stem);
  onnx::TensorProto& tensor = *graph_.add_initializer();
  tensor.set_name(name);
  tensor.set_data_type(onnx::TensorProto_DataType_BOOL);
  for (int64_t extent : shape) tensor.add_dims(extent);
  std::string bytes(values.size(), '\0');
  for (size_t i = 0; i < values.size(); ++i) bytes[i] = values[i] ? 1 : 0;
  tensor.set_raw_data(bytes);
  return name;
}

void set_attribute(onnx::NodeProto& node, const std::string& name, int64_t value) {
  add_attribute(node, name, onnx::AttributeProto_AttributeType_INT).set_i(value);
}

void set_attribute(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  auto& attribute = add_attribute(node, name, onnx::AttributeProto_AttributeType_INTS);
  for (int64_t value : values) attribute.add_ints(value);
}

void set_attribute(onnx::NodeProto& node, const std::string& name, float value) {
  add_attribute(node, name, onnx::AttributeProto_AttributeType_FLOAT).set_f(value);
}

void set_attribute(onnx::NodeProto& node, const std::string& name, const std::vector<float>& values) {
  auto& attribute = add_attribute(node, name, onnx::AttributeProto_AttributeType_FLOATS);
  for (float value : values) attribute.add_floats(value);
}

void set_attribute(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  add_attribute(node, name, onnx::AttributeProto_AttributeType_STRING).set_s(value);
}

void set_attribute(onnx::NodeProto& node, const std::string& name, const onnx::TensorProto& value) {
  *add_attribute(node, name, onnx::AttributeProto_AttributeType_TENSOR).mutable_t() = value;
}

onnx::TensorProto to_tensor_proto(const std::string& name, const ir::Tensor& tensor) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t extent : tensor.shape) proto.add_dims(extent);
  std::string bytes(tensor.data.size() * sizeof(float), '\0');
  if (!bytes.empty()) std::memcpy(bytes.data(), tensor.data.data(), bytes.size());
  proto.set_raw_data(std::move(bytes));
  return proto;
}

}  // namespace gos::lowering
