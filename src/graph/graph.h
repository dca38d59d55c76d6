#pragma once
// The public face of gos's model graph: a whole network whose compute nodes are mathematical
// instructions (ir::OpExpr with their weights) and whose other nodes move, reshape or normalise
// data without learned multiplies (Reshape, Flatten, Transpose, Concat, Softmax, ...).
//
// Shapes are static with a nominal batch of 1 (dimension 0 of every graph input); executions at
// another batch size (training) keep every other dimension. Nodes are in topological order.
// Plain C++: ONNX reading (onnx_import.h) and writing (onnx_export.h), libtorch execution
// (torch_module.h) and TorchScript export (torchscript_export.h) are separate
// faces of this part so that users of the graph alone need neither.
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/ir.h"

namespace gos::graph {

using Shape = std::vector<int64_t>;

// A structural node's attribute, as ONNX gives it.
using Attribute = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>, ir::Tensor>;

struct Value {
  std::string name;
  Shape shape;
};

// Structural nodes carry ONNX semantics exactly: op_type is the ONNX op type, attributes use the
// ONNX attribute names and types, and constant inputs (Reshape's target shape, Pad's pads, ...) are
// values in Graph::constants. These are the structural op types gos executes and exports:
//   Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze, Unsqueeze, Identity,
//   Softmax, LogSoftmax, LayerNormalization, BatchNormalization, Div, Sub, Mul, Add, Pow, Sqrt,
//   Exp, Erf, ReduceMean, LeakyRelu, Elu, Selu, Softplus, PRelu, InstanceNormalization, Pad
//   (reflect, edge, or a constant other than 0), Gather (constant indices), Resize
// PRelu's slope and InstanceNormalization's scale and bias are learned, in Node::weights.
// BatchNormalization exists for training (zoo models train with batch statistics); fold_batch_norms
// folds each one into the compute node before it, as import and export do.
// (the elementwise ones only where they cannot be written as instructions, e.g. division by a
// tensor). Everything with learned weights, every pooling and activation is a compute node.
const std::vector<std::string>& structural_op_types();
bool is_structural_op_type(std::string_view op_type);

struct Node {
  std::string name;     // unique in the graph (the ONNX node name, or a generated one)
  std::string op_type;  // the operator it stands for (ONNX op type, e.g. "Conv", "Flatten")
  std::vector<std::string> inputs;   // value names; a compute node's are bound to op's inputs in order
  std::vector<std::string> outputs;  // value names; a compute node has exactly one

  // Compute nodes: the instructions and the values of their params (by the op's tensor names).
  std::optional<ir::OpExpr> op;
  // Compute nodes: op params by op tensor name. Structural nodes with learned state, by ONNX
  // input name: BatchNormalization "scale", "B", "mean", "var"; LayerNormalization "scale", "B".
  ir::TensorMap weights;

  // Structural nodes: the attributes their execution needs.
  std::map<std::string, Attribute> attributes;

  bool is_compute() const { return op.has_value(); }
};

struct Graph {
  std::string name;
  std::vector<Value> inputs;   // data inputs, in order (no initializers)
  std::vector<Value> outputs;
  std::vector<Node> nodes;     // topological order
  std::map<std::string, Shape> shapes;  // every value's static shape (nominal batch 1)
  ir::TensorMap constants;     // non-learned tensors that structural nodes read (by value name)

  const Node* find_node(std::string_view node_name) const;
  const Shape& shape_of(const std::string& value) const;  // throws GraphError if unknown
};

class GraphError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Checks the graph is well formed: topological order, every value produced once, every compute
// node's input and output shapes equal its op's tensors, weights bound with the right shapes.
// Throws GraphError naming the node.
void validate(const Graph& graph);

// How many times each value is read: by node inputs (a node reading it twice counts twice) and
// as a graph output. A value read once may be rewritten with its only reader.
std::map<std::string, int> reader_counts(const Graph& graph);

// Runs the whole graph with the IR interpreter (slow; the ground truth for small inputs).
// `inputs` by graph input name; returns the graph outputs by name.
ir::TensorMap evaluate(const Graph& graph, const ir::TensorMap& inputs);

// Folds every BatchNormalization whose input is produced by a conv/linear compute node read by
// nothing else into that node (ir::fold_batch_norm); the others stay (also those whose producer's
// weight is not indexed by the output channel, which ir::fold_batch_norm refuses).
Graph fold_batch_norms(const Graph& graph);

// For training a graph whose batch norms were folded (every imported model): a BatchNormalization
// after each compute node that fold_batch_norms can fold it back into (the node's last statement
// multiplies by a param along the output channel) whose output has positions ([N,C,L] or
// [N,C,H,W], not a linear layer's [N,C]) except nodes producing a graph output, set
// to the identity, with the node's activation moved into a compute node "<node>/act" after it.
// fuse_epilogues(fold_batch_norms(g)) gives back the original nodes (a node without a bias gains one).
struct WithBatchNorms {
  Graph graph;
  std::vector<std::string> batch_norms;  // the inserted nodes' names, in graph order
};
WithBatchNorms insert_batch_norms(const Graph& graph);

// Moves each activation or bias-add compute node into its producer when the producer's result is
// read by nothing else and its last statement has no activation (Conv+Relu, MatMul+bias), as ONNX
// import does: the graph then says `Y = relu(sum ... + B[k])` in one operator, which is what rewrite
// rules and kernels recognise.
void fuse_epilogues(Graph& graph);

// The graph computing only every `factor`-th position (along each axis a global average pooling
// reduces) of the features that pooling averages, and, further up, only the positions those
// need: each read `X[factor*l + d*r - d]` whose subscript is divisible by g reads every g-th
// position of X, computed alone by X's producer when nothing else reads X; otherwise the read
// stays strided (a strided convolution). Everything but the pooling is exact at the positions
// kept: a dilated TCN halves its dilations and keeps its receptive field (docs/search.md). The
// graph's inputs and outputs keep their shapes. Throws GraphError when no global average pooling
// exists or factor < 1; factor 1 gives the graph unchanged.
struct Subsampled {
  Graph graph;
  std::vector<std::string> changed_nodes;  // in graph order
};
Subsampled subsample_pooled_positions(const Graph& graph, int64_t factor);

// The graph reading what a data pipeline gives before it normalises: its one input `x` first
// becomes (x - mean[c]) / std[c] along the channel axis (dimension 1) in a Sub and a Div node, as
// torchvision's Normalize computes it; everything else is unchanged (the input keeps its name and
// shape). One value for every channel, or one per channel. Throws GraphError when the graph has
// not one input of at least two dimensions, or the values do not fit its channels or a std is
// not positive.
Graph with_input_normalisation(const Graph& graph, const std::vector<float>& mean, const std::vector<float>& std);

// Per compute node cost and the totals, as `gos inspect` shows them.
struct NodeCost {
  std::string node;
  std::string op_type;
  ir::Cost cost;
};
std::vector<NodeCost> node_costs(const Graph& graph);
int64_t total_macs(const Graph& graph);
// A node's learned parameters: a compute node's params, a normalisation's scale and bias (its
// running statistics are not learned).
int64_t node_params(const Node& node);
int64_t total_params(const Graph& graph);

}  // namespace gos::graph
