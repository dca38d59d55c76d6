#pragma once
// Internal to ONNX import: the model as read from the file, after validation, static shape
// resolution and constant folding, before its nodes become gos graph nodes. Only the import's
// .cpp files include this (it pulls in the ONNX protobuf headers).
#include <onnx/onnx_pb.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::graph::onnx_import {

// A constant tensor during import: initializers, Constant nodes and folded shape computations.
// Values are held as double so that one evaluator serves float and integer tensors; the element
// type keeps ONNX's integer semantics (division truncates, casts round toward zero). Shape values
// are small, so double holds them exactly; int64 sentinels (INT64_MAX as "to the end") saturate.
struct ConstValue {
  Shape shape;
  std::vector<double> values;
  int32_t element_type = onnx::TensorProto_DataType_FLOAT;
  // Came from a model initializer (directly or folded from one): a learned weight, unless scalar.
  bool from_initializer = false;

  bool integer() const;
  int64_t elements() const { return static_cast<int64_t>(values.size()); }
  int64_t as_int(size_t index) const;
  std::vector<int64_t> as_ints() const;
  ir::Tensor to_tensor() const;  // float32; integers clamped to +-2^31 so float casts stay defined
};

struct OnnxModel {
  std::string name;
  int64_t opset = 0;                      // the default (ai.onnx) domain's
  std::map<std::string, int64_t> opsets;  // by domain
  int64_t upgraded_from_opset = 0;        // the file's opset when below 11 (then upgraded to 11), else 0
  std::vector<onnx::NodeProto> nodes;     // topological order, folded nodes removed
  std::vector<Value> inputs;              // data inputs with static shapes
  std::vector<std::string> outputs;
  std::map<std::string, Shape> shapes;           // every value whose static shape is known
  std::map<std::string, int32_t> element_types;  // onnx::TensorProto_DataType by value
  std::map<std::string, ConstValue> constants;

  bool is_constant(const std::string& value) const { return constants.count(value) > 0; }
  const Shape* find_shape(const std::string& value) const;
  int64_t opset_of(const onnx::NodeProto& node) const;
};

// Reads, checks and prepares a model: opset 11 to 17 (older ones upgraded to 11 by ONNX's version
// converter), onnx::checker, input shapes made static (a
// dynamic batch dimension becomes 1), shape inference, constants folded. Throws GraphError.
// `input_shape`: ImportOptions::input_shape.
// `constant_inputs`: ImportOptions::constant_inputs.
OnnxModel load_model(const std::string& bytes, const std::string& source, const Shape& input_shape = {},
                     const std::map<std::string, std::string>& constant_inputs = {});

// Replaces every node whose inputs are all constants (or that reads only the static shape of a
// value) by its result, for the node types that shape computations use. Returns whether any
// node was folded; the caller re-runs shape inference then.
bool fold_constants(OnnxModel& model);

// Reads an initializer or Constant-node tensor; throws GraphError naming `what` on bad data.
ConstValue read_tensor(const onnx::TensorProto& tensor, const std::string& what);
// The inverse, for handing folded values back to ONNX shape inference.
onnx::TensorProto write_tensor(const ConstValue& value, const std::string& name);

// Node-level rewrites before conversion: Identity/Dropout aliases, and what exporters decompose
// (GELU, SiLU, HardSwish, LayerNormalization) recognised back into single nodes.
void rewrite_patterns(OnnxModel& model);

// ---- Attributes ------------------------------------------------------------------------------------

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name);
int64_t attribute_int(const onnx::NodeProto& node, const std::string& name, int64_t fallback);
double attribute_float(const onnx::NodeProto& node, const std::string& name, double fallback);
std::string attribute_string(const onnx::NodeProto& node, const std::string& name, const std::string& fallback);
std::optional<std::vector<int64_t>> attribute_ints(const onnx::NodeProto& node, const std::string& name);

// The node input at `index`, or "" when absent (ONNX marks skipped optional inputs with "").
const std::string& input_name(const onnx::NodeProto& node, int index);

}  // namespace gos::graph::onnx_import
