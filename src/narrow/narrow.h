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

  // How derivations name the group: its first producer's output channels, e.g. "stage1.block1.conv1.conv:k".
  std::string name() const;
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

}  // namespace gos::narrow
