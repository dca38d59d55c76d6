#pragma once
// The ONNX face of the graph part: reading an ONNX file (opset 11 to 17, as torch.onnx.export
// and other exporters write it) into a gos Graph.
//
// Import makes every shape static (a dynamic batch dimension becomes the nominal batch of 1; any
// other dynamic dimension is an error unless ImportOptions::input_shape fixes it), folds constants and shape computations, recognises what
// exporters decompose (GELU, SiLU, HardSwish, LayerNorm), writes each compute node as
// instructions (Conv, ConvTranspose, Gemm, MatMul, pooling, activations, broadcasting
// Add/Sub/Mul/Div, Pad),
// keeps the rest as structural nodes, folds BatchNormalization into the conv or linear before
// it and fuses activations and biases into the compute node they follow.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::graph {

// A node gos cannot represent, with why.
struct UnsupportedNode {
  std::string node;
  std::string op_type;
  int64_t opset = 0;
  std::string reason;

  // "node 'X' (op Foo, opset 13) is not supported by gos: <reason>"
  std::string message() const;
};

struct ImportResult {
  // With unsupported nodes (allowed only when ImportOptions::allow_unsupported), the graph keeps
  // them, in order, as nodes without instructions whose op_type is not a structural type: such a
  // graph can be listed and costed but not validated, run or exported.
  Graph graph;
  std::vector<UnsupportedNode> unsupported;
  int64_t opset = 0;  // of the standard ONNX domain
  // The file's opset when it was below 11: ONNX's version converter upgraded it to 11 (the
  // commands say so on stderr). 0 otherwise.
  int64_t upgraded_from_opset = 0;
};

struct ImportOptions {
  // false: the first unsupported node throws GraphError with UnsupportedNode::message().
  // true: unsupported nodes are recorded and the rest imported (`gos inspect`).
  bool allow_unsupported = false;
  // The shape of the model's one data input (batch first, e.g. {1,3,224,224}): fixes dimensions
  // the file leaves dynamic (a height and width exported as dynamic). Dimensions the file fixes
  // must agree, except the batch, which is always the nominal 1. Empty: only a dynamic batch is
  // resolved.
  Shape input_shape;
  // Graph inputs that are weights fed as inputs (as ONNX's node tests feed Conv's W): input name ->
  // an ONNX TensorProto .pb file holding its value. Each becomes an initializer before import.
  std::map<std::string, std::string> constant_inputs;
};

// Throws GraphError (one line naming the file, node or value) for unreadable, corrupt or
// truncated files, a wrong opset, missing initializers and dynamic shapes it cannot resolve.
ImportResult import_onnx(const std::string& path, const ImportOptions& options = {});
// The same from the file's bytes; `source` names the model in messages.
ImportResult import_onnx_bytes(const std::string& bytes, const ImportOptions& options = {},
                               const std::string& source = "the model");

// The ONNX op types gos imports: those it writes as instructions or executes structurally, and
// Constant, Identity and Dropout (folded or removed). Other op types are read only where constant
// folding evaluates them away (Shape, Cast, ConstantOfShape, ... in shape computations).
std::set<std::string> imported_op_types();

// What an ONNX file declares, read without checking or importing it.
struct OnnxOutline {
  std::set<std::string> op_types;   // of the main graph's nodes
  std::vector<std::string> inputs;  // graph inputs that are not initializers, in order
};
// Throws GraphError for a file that is not an ONNX model.
OnnxOutline outline_onnx(const std::string& path);

// An ONNX TensorProto file (`.pb`, as ONNX's backend tests store inputs and expected outputs), as
// float32 with its name (empty when the file gives none). Throws GraphError for a file that is not
// one, or holds a type other than numbers.
struct NamedTensor {
  std::string name;
  ir::Tensor tensor;
};
NamedTensor read_tensor_file(const std::string& path);

}  // namespace gos::graph
