#pragma once
// Appends nodes and initializers to an ONNX graph under fresh, unique value names. Shared by the
// ONNX lowering of instructions and the whole-graph export: every value a lowering invents goes
// through here, so no two nodes ever write the same name.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ir/ir.h"

namespace gos::lowering {

class OnnxBuilder {
 public:
  // `graph` must outlive the builder. Names already in the graph (inputs, initializers, node
  // outputs) are never handed out again.
  explicit OnnxBuilder(onnx::GraphProto& graph);

  // Reserves `name` as taken (a value the caller will write itself, e.g. a graph output).
  void reserve(const std::string& name);
  // A name not used yet, built from the scope and `stem`.
  std::string fresh(std::string_view stem);
  // Prefixes the names of the nodes and values added next (a graph node's name), for readers.
  void set_scope(std::string scope) { scope_ = std::move(scope); }

  // Adds a node reading `inputs` and writing one fresh value (returned) or the given `outputs`.
  onnx::NodeProto& node(std::string_view op_type, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs);
  std::string node_value(std::string_view op_type, const std::vector<std::string>& inputs);
  onnx::NodeProto& last_node();  // to set the attributes of the node node_value added
  // The output of the node added last, if it wrote `value`: lets a lowering write its final
  // value under the caller's name instead of copying it through an Identity.
  bool rename_last_output(const std::string& value, const std::string& name);

  // Initializers. `stem` names them; values shared by several nodes (scalars, shape vectors)
  // are added once and reused.
  std::string float_tensor(std::string_view stem, const ir::Tensor& tensor);
  std::string float_scalar(float value);
  std::string int64_vector(const std::vector<int64_t>& values);
  std::string bool_tensor(std::string_view stem, const std::vector<int64_t>& shape, const std::vector<bool>& values);

  onnx::GraphProto& graph() { return graph_; }

 private:
  onnx::GraphProto& graph_;
  std::set<std::string> used_;
  std::string scope_;
  std::map<float, std::string> scalars_;
  std::map<std::vector<int64_t>, std::string> int64_vectors_;
};

// Attribute setters (ONNX attribute types: INT, INTS, FLOAT, STRING, TENSOR).
void set_attribute(onnx::NodeProto& node, const std::string& name, int64_t value);
void set_attribute(onnx::NodeProto& node, const std::string& name, const std::vector<int64_t>& values);
void set_attribute(onnx::NodeProto& node, const std::string& name, float value);
void set_attribute(onnx::NodeProto& node, const std::string& name, const std::vector<float>& values);
void set_attribute(onnx::NodeProto& node, const std::string& name, const std::string& value);
void set_attribute(onnx::NodeProto& node, const std::string& name, const onnx::TensorProto& value);

// A float32 TensorProto holding `tensor` (raw little-endian data).
onnx::TensorProto to_tensor_proto(const std::string& name, const ir::Tensor& tensor);

}  // namespace gos::lowering
