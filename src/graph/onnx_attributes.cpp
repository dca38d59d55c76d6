// Typed access to ONNX node attributes and inputs, with the defaults the operator specs give.
#include "graph/onnx_model.h"

namespace gos::graph::onnx_import {

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& attribute : node.attribute()) {
    if (attribute.name() == name) return &attribute;
  }
  return nullptr;
}

int64_t attribute_int(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  const auto* attribute = find_attribute(node, name);
  return attribute ? attribute->i() : fallback;
}

double attribute_float(const onnx::NodeProto& node, const std::string& name, double fallback) {
  const auto* attribute = find_attribute(node, name);
  return attribute ? attribute->f() : fallback;
}

std::string attribute_string(const onnx::NodeProto& node, const std::string& name, const std::string& fallback) {
  const auto* attribute = find_attribute(node, name);
  return attribute ? attribute->s() : fallback;
}

std::optional<std::vector<int64_t>> attribute_ints(const onnx::NodeProto& node, const std::string& name) {
  const auto* attribute = find_attribute(node, name);
  if (!attribute) return std::nullopt;
  return std::vector<int64_t>(attribute->ints().begin(), attribute->ints().end());
}

const std::string& input_name(const onnx::NodeProto& node, int index) {
  static const std::string absent;
  return index < node.input_size() ? node.input(index) : absent;
}

const Shape* OnnxModel::find_shape(const std::string& value) const {
  auto found = shapes.find(value);
  return found == shapes.end() ? nullptr : &found->second;
}

int64_t OnnxModel::opset_of(const onnx::NodeProto& node) const {
  const std::string& domain = node.domain() == "ai.onnx" ? std::string() : node.domain();
  auto found = opsets.find(domain);
  return found == opsets.end() ? 0 : found->second;
}

}  // namespace gos::graph::onnx_import
