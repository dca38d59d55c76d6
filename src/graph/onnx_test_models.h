#pragma once
// Test helper: builds small ONNX models in memory, node by node, for the import tests; and reads
// the PyTorch-exported fixtures (scripts/make_onnx_fixtures.py) the build generates.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::graph::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13) {
    model_.set_ir_version(8);
    model_.set_producer_name("gos-test");
    auto* entry = model_.add_opset_import();
    entry->set_domain("");
    entry->set_version(opset);
    model_.mutable_graph()->set_name("test");
  }

  // A float input or output; a negative extent is a dynamic dimension named `dynamic_name`.
  ModelBuilder& input(const std::string& name, const std::vector<int64_t>& shape,
                      const std::string& dynamic_name = "batch") {
    describe(model_.mutable_graph()->add_input(), name, shape, dynamic_name);
    return *this;
  }

  ModelBuilder& output(const std::string& name, const std::vector<int64_t>& shape,
                       const std::string& dynamic_name = "batch") {
    describe(model_.mutable_graph()->add_output(), name, shape, dynamic_name);
    return *this;
  }

  ModelBuilder& initializer(const std::string& name, const std::vector<int64_t>& shape,
                            const std::vector<float>& values) {
    auto* tensor = model_.mutable_graph()->add_initializer();
    tensor->set_name(name);
    tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
    for (int64_t extent : shape) tensor->add_dims(extent);
    for (float value : values) tensor->add_float_data(value);
    return *this;
  }

  // A 1-D int64 initializer (shapes, pads, axes).
  ModelBuilder& ints(const std::string& name, const std::vector<int64_t>& values) {
    auto* tensor = model_.mutable_graph()->add_initializer();
    tensor->set_name(name);
    tensor->set_data_type(onnx::TensorProto_DataType_INT64);
    tensor->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t value : values) tensor->add_int64_data(value);
    return *this;
  }

  // A scalar float Constant node writing `name` (exporters' 0.5, sqrt 2, 1.0 ...).
  ModelBuilder& scalar(const std::string& name, float value) {
    auto& node = this->node("Constant", {}, {name}, name + "_constant");
    auto* attribute = node.add_attribute();
    attribute->set_name("value");
    attribute->set_type(onnx::AttributeProto::TENSOR);
    attribute->mutable_t()->set_data_type(onnx::TensorProto_DataType_FLOAT);
    attribute->mutable_t()->add_float_data(value);
    return *this;
  }

  onnx::NodeProto& node(const std::string& op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* node = model_.mutable_graph()->add_node();
    node->set_op_type(op_type);
    node->set_name(name.empty() ? outputs.at(0) : name);
    for (const auto& input : inputs) node->add_input(input);
    for (const auto& output : outputs) node->add_output(output);
    return *node;
  }

  onnx::ModelProto& proto() { return model_; }
  std::string bytes() const { return model_.SerializeAsString(); }

 private:
  static void describe(onnx::ValueInfoProto* value, const std::string& name, const std::vector<int64_t>& shape,
                       const std::string& dynamic_name) {
    value->set_name(name);
    auto* tensor = value->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(onnx::TensorProto_DataType_FLOAT);
    auto* dims = tensor->mutable_shape();
    for (int64_t extent : shape) {
      auto* dim = dims->add_dim();
      if (extent < 0) {
        dim->set_dim_param(dynamic_name);
      } else {
        dim->set_dim_value(extent);
      }
    }
  }

  onnx::ModelProto model_;
};

inline void set_attribute(onnx::NodeProto& node, const std::string& name, int64_t value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INT);
  attribute->set_i(value);
}

inline void set_attribute(onnx::NodeProto& node, const std::string& name, float value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::FLOAT);
  attribute->set_f(value);
}

inline void set_attribute(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::INTS);
  for (int64_t value : values) attribute->add_ints(value);
}

inline void set_attribute(onnx::NodeProto& node, const std::string& name, const std::string& value) {
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto::STRING);
  attribute->set_s(value);
}

// Deterministic values in [-1, 1) for weights and inputs.
inline std::vector<float> ramp(int64_t count, float phase = 0.0f) {
  std::vector<float> values;
  for (int64_t i = 0; i < count; ++i)
    values.push_back(static_cast<float>(std::sin(0.7 * static_cast<double>(i) + phase)));
  return values;
}

// ---- The PyTorch-exported fixtures --------------------------------------------------------------

struct Fixture {
  std::string name;   // e.g. "resnet18_opset11"
  std::string model;  // e.g. "resnet18"
  int64_t opset = 0;
  std::string path;
  std::string input_name, output_name;
  Shape input_shape, output_shape;
  std::string input_path, output_path;
};

inline void PrintTo(const Fixture& fixture, std::ostream* out) { *out << fixture.name; }

inline std::string fixture_directory() { return GOS_ONNX_FIXTURES; }

// Empty when the fixtures were not generated (no PyTorch at configure time).
inline std::vector<Fixture> fixtures() {
  std::ifstream file(fixture_directory() + "/manifest.json");
  if (!file) return {};
  const nlohmann::json manifest = nlohmann::json::parse(file);
  std::vector<Fixture> found;
  for (const auto& entry : manifest.at("models")) {
    const std::string directory = fixture_directory() + "/";
    found.push_back({entry.at("name"), entry.at("model"), entry.at("opset"),
                     directory + entry.at("file").get<std::string>(), entry.at("input").at("name"),
                     entry.at("output").at("name"), entry.at("input").at("shape"), entry.at("output").at("shape"),
                     directory + entry.at("input").at("file").get<std::string>(),
                     directory + entry.at("output").at("file").get<std::string>()});
  }
  return found;
}

inline ir::Tensor read_floats(const std::string& path, const Shape& shape) {
  std::ifstream file(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::vector<float> values(bytes.size() / sizeof(float));
  std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return ir::Tensor(shape, std::move(values));
}

}  // namespace gos::graph::testing
