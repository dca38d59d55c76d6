#pragma once
// Internal to ONNX import: turning one ONNX node into one gos graph node. Compute nodes get their
// instructions from the ir::ops constructors (or, for broadcasting elementwise ops, are written
// here); structural nodes keep their ONNX op type and attributes.
#include <functional>

#include "graph/onnx_model.h"
#include "ir/ops.h"

namespace gos::graph::onnx_import {

// Thrown by a converter for a node gos cannot represent; `reason` completes the sentence
// "node 'X' (op Foo, opset 13) is not supported by gos: ...".
struct Unsupported {
  std::string reason;
};

// What a converter sees of the node and the model, and how it adds constants to the graph.
class NodeContext {
 public:
  NodeContext(const onnx::NodeProto& proto, const OnnxModel& model, std::string name, ir::TensorMap& graph_constants,
              const std::set<std::string>& read_values)
      : proto_(proto),
        model_(model),
        name_(std::move(name)),
        graph_constants_(graph_constants),
        read_values_(read_values) {}

  const onnx::NodeProto& proto() const { return proto_; }
  const OnnxModel& model() const { return model_; }
  const std::string& name() const { return name_; }
  int64_t opset() const { return model_.opset_of(proto_); }

  bool has_input(int index) const { return !input_name(proto_, index).empty(); }
  const std::string& input(int index) const { return input_name(proto_, index); }
  bool is_constant(int index) const { return has_input(index) && model_.is_constant(input(index)); }
  const ConstValue& constant(int index, const std::string& role) const;  // throws Unsupported
  const Shape& shape(int index) const;                                   // throws Unsupported
  const Shape& output_shape() const;
  // Whether a node output other than the first is read (Dropout's mask, MaxPool's indices).
  bool extra_outputs_used() const;

  // Makes input `index`, a model constant, available to structural nodes; returns its name.
  const std::string& use_constant(int index) const;
  void add_constant(const std::string& name, ir::Tensor tensor) const;

 private:
  const onnx::NodeProto& proto_;
  const OnnxModel& model_;
  std::string name_;
  ir::TensorMap& graph_constants_;
  const std::set<std::string>& read_values_;  // what any node or graph output reads
};

// A compute node for the instructions `op`, bound to the given data values (in the op's input
// order) and weights (by the op's tensor names).
Node compute_node(const NodeContext& context, ir::OpExpr op, std::vector<std::string> inputs, ir::TensorMap weights);

using Converter = std::function<Node(const NodeContext&)>;
using ConverterTable = std::map<std::string, Converter>;

// Each converter family adds its op types to the table.
void add_compute_converters(ConverterTable& table);      // Conv, Gemm, MatMul, pooling
void add_elementwise_converters(ConverterTable& table);  // activations, Clip, Add/Sub/Mul/Div, Pad
void add_structural_converters(ConverterTable& table);   // structural_op_types()
void add_einsum_converter(ConverterTable& table);        // Einsum, as one statement
void add_conv_transpose_converter(ConverterTable& table);  // ConvTranspose, a convolution over a dilated input

// Every op type a converter exists for.
std::set<std::string> converted_op_types();

// The structural node for any op type gos executes with ONNX semantics.
Node structural_node(const NodeContext& context);

// Converts a node; throws Unsupported when the op type or its use is not supported.
Node convert_node(const NodeContext& context);

// ---- Shared by the converter families -------------------------------------------------------------

// The ONNX default for an absent per-axis attribute: `fallback` repeated `count` times.
std::vector<int64_t> ints_or(const onnx::NodeProto& node, const std::string& name, size_t count, int64_t fallback);

// A constant tensor as a weight: a learned param when it came from the model's initializers and
// has more than one element, else a fixed const table (exporters' 0.5, sqrt 2, epsilons...).
bool is_learned(const ConstValue& value);

}  // namespace gos::graph::onnx_import
