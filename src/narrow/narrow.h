#pragma once
// The public face of narrowing across operators: channel groups and the graph with a group
// narrowed.
//
// A channel group is the set of value axes that several operators share and that must keep the
// same positions together: a producer's output channels and its consumers' input channels, through
// activations, pools, depthwise layers, batch norms, reshapes that keep the axis, and residual
// additions, whose operands all narrow at once (a dependency group, as Torch-Pruning calls it).
// Within an operator the IR says which axes go together (ir::linked_axes); across operators the
// graph does. A group that reaches a graph input or output, or an operator that would mix its
// positions (a window along it, a group's channels, a softmax or norm over it, a concatenation
// along it), cannot be narrowed and is not listed.
#include <compare>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::narrow {

struct ValueAxis {
  std::string value;
  int axis = 0;
  friend auto operator<=>(const ValueAxis&, const ValueAxis&) = default;
};

// An axis of a compute node's operator that the group narrows (with every axis linked to it).
struct NodeAxis {
  std::string node;
  ir::TensorAxis axis;
  friend auto operator<=>(const NodeAxis&, const NodeAxis&) = default;
};

struct ChannelGroup {
  std::vector<ValueAxis> values;  // every value axis that narrows, sorted
  int64_t extent = 0;             // the positions each of them has
  // Compute nodes whose own weights make the channels (a convolution's output rows), those that
  // read them with weights and sum them away (the next convolution's input columns), and those they
  // pass through with per-channel weights of their own (depthwise convolutions). Graph order.
  std::vector<std::string> producers, consumers, followers;
  std::vector<NodeAxis> narrowed;       // per compute node touched, the axes to narrow
  std::vector<std::string> structural;  // structural nodes the group passes through (batch norms, ...)
  // Graph constants that narrow with it, per structural node reading them: an elementwise operand
  // along the axis (sliced), a reshape's target shape (axis -1: its extent rewritten).
  struct Constant {
    std::string node, value;
    int axis = 0;
    friend auto operator<=>(const Constant&, const Constant&) = default;
  };
  std::vector<Constant> constants;

  // How derivations name the group: its first producer and the index of its output channels in
  // that operator, e.g. "stage1.block1.conv1.conv/Conv:k".
  std::string label;
  const std::string& name() const { return label; }
};

// Every narrowable channel group of the graph, each once, in the graph order of its first producer.
// A group starts at a compute node whose output axis is made by its weights alone (indexed by a
// param and by no input of the node).
std::vector<ChannelGroup> channel_groups(const graph::Graph& graph);

// The graph with the group's value axes keeping the positions `kept` (strictly increasing): every
// compute node's operator and weights narrowed (ir::narrow), batch norms' and elementwise constants
// sliced, reshape targets and shapes updated. It computes what the original computes with every
// weight of a dropped position (in each of the group's nodes) set to zero. Throws graph::GraphError
// when `kept` is not a valid selection.
graph::Graph narrow_group(const graph::Graph& graph, const ChannelGroup& group, const std::vector<int64_t>& kept);

// The compute nodes the group narrows, in graph order (what its narrowing changes the time of).
std::vector<const graph::Node*> touched_nodes(const graph::Graph& graph, const ChannelGroup& group);

// The widths a group of `original` channels may take below `current`, widest first: multiples of
// the width kernels vectorise over (8 floats; 4 for groups under 32 channels), down to an eighth
// of the original.
std::vector<int64_t> kernel_widths(int64_t original, int64_t current);

// ---- Dropping (narrow/drop.cpp) ---------------------------------------------------------------------

// A residual branch replaced by nothing (the block becomes its shortcut: `act(X + F(X))` ->
// `act(X)`), or an operator whose output has its input's shape replaced by the identity (its
// activation kept).
struct Drop {
  std::string name;                  // the derivation: "drop(<the addition or the operator>)"
  std::string node;                  // the addition, or the operator, that passes `kept` on
  std::string kept;                  // the value passed on: the shortcut, or the operator's input
  std::vector<std::string> removed;  // a branch: its nodes (computing nothing else), graph order
};

// Every residual branch and every same-shape operator with weights that can be dropped, in graph
// order of `node`. A branch is the nodes that compute one operand of an addition of two equal
// shapes and nothing else; the other operand is its shortcut.
std::vector<Drop> droppable(const graph::Graph& graph);

// The graph with `drop` applied: the branch's nodes removed and the addition (or the operator)
// become its activation of `kept`, or an Identity when it has none. Throws graph::GraphError when
// `drop` does not fit the graph.
graph::Graph apply_drop(const graph::Graph& graph, const Drop& drop);

// ---- Which channels, and the weights they inherit (narrow/refit.cpp, by libtorch) ----------------

// Per position of the group, the L1 norm of its producers' weights along it: what the common
// pruning libraries rank channels by (Torch-Pruning's and NNI's default), kept as the baseline.
std::vector<double> weight_norms(const graph::Graph& graph, const ChannelGroup& group);

// Per position of the group, its contribution to its consumers' outputs when the model runs on
// `samples` (one batch per graph input): the energy of the part of each consumer's output (before
// its activation) that the channel alone computes, over the energy of that output, summed over the
// consumers. A channel that is large but read by small weights (or small but read by large ones)
// is ranked by what it changes downstream, not by its producer's weights.
std::vector<double> channel_importance(const graph::Graph& graph, const ChannelGroup& group, const std::vector<ir::Tensor>& samples);

// The `count` positions of the highest scores, increasing (ties: the lower position).
std::vector<int64_t> strongest(const std::vector<double>& scores, int64_t count);

// narrow_group, then each consumer's weights refitted by least squares so that its output (before
// its activation) on the kept channels of `samples`' recorded inputs stays as close as possible to
// the original's on all of them (He et al., 2017, channel pruning's reconstruction). A consumer
// whose refit would not lower that error keeps its sliced weights.
struct Refitted {
  graph::Graph graph;
  // ||consumers' outputs - original's|| / ||original's|| over the samples and every consumer
  // together: with the kept slices as they are, and after the refit.
  double sliced_error = 0, refit_error = 0;
};
Refitted narrow_and_refit(const graph::Graph& graph, const ChannelGroup& group, const std::vector<int64_t>& kept,
                          const std::vector<ir::Tensor>& samples);

// How far a changed model's outputs are from the original's on a batch (a graph with one input and
// one output): ||changed(batch) - original(batch)|| / ||original(batch)||. What every narrowing
// choice is judged by before any training.
class OutputError {
 public:
  OutputError(const graph::Graph& original, ir::Tensor batch);
  double operator()(const graph::Graph& changed) const;

 private:
  ir::Tensor batch_, expected_;
  double expected_norm_ = 1;
};

}  // namespace gos::narrow
