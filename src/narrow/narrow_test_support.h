#pragma once
// Test helpers for the narrow part: random model inputs, and a group's weights changed channel by
// channel in the nodes it touches.
#include <functional>
#include <random>

#include "narrow/narrow.h"

namespace gos::narrow::testing {

inline ir::TensorMap random_inputs(const graph::Graph& graph, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0, 1);
  ir::TensorMap inputs;
  for (const auto& input : graph.inputs) {
    ir::Tensor tensor(input.shape);
    for (auto& value : tensor.data) value = uniform(rng);
    inputs[input.name] = tensor;
  }
  return inputs;
}

// Calls `change(channel, weight)` for every weight element along the group's axes, in the nodes
// `which` accepts.
inline void change_group_weights(graph::Graph& graph, const ChannelGroup& group, const std::function<bool(const std::string&)>& which,
                                 const std::function<void(int64_t, float&)>& change) {
  for (const auto& [node_name, start] : group.narrowed) {
    if (!which(node_name)) continue;
    for (auto& node : graph.nodes) {
      if (node.name != node_name) continue;
      for (const auto& axis : ir::linked_axes(*node.op, start)) {
        if (node.op->tensor(axis.tensor).role != ir::Role::Param) continue;
        ir::Tensor& weight = node.weights.at(axis.tensor);
        int64_t inner = 1;
        for (size_t d = axis.axis + 1; d < weight.shape.size(); ++d) inner *= weight.shape[d];
        for (int64_t i = 0; i < weight.elements(); ++i) change((i / inner) % weight.shape[axis.axis], weight.data[i]);
      }
    }
  }
}

}  // namespace gos::narrow::testing
