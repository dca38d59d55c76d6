// Channel groups: the closure of a value axis over the operators that read and write it, and the
// graph with one group narrowed.
#include "narrow/narrow.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "graph/structural.h"

namespace gos::narrow {

namespace {

using graph::Graph;
using graph::GraphError;
using graph::Node;

int64_t product(const graph::Shape& shape, size_t begin, size_t end) {
  return std::accumulate(shape.begin() + begin, shape.begin() + end, int64_t{1}, std::multiplies<>());
}

// The axis of `to` that holds `from`'s axis unchanged when a reshape turns `from` into `to`: the
// same extent, with as many elements before it and after it.
std::optional<int> reshaped_axis(const graph::Shape& from, int axis, const graph::Shape& to) {
  const int64_t before = product(from, 0, axis), after = product(from, axis + 1, from.size());
  for (size_t candidate = 0; candidate < to.size(); ++candidate) {
    if (to[candidate] == from[axis] && product(to, 0, candidate) == before && product(to, candidate + 1, to.size()) == after) {
      return static_cast<int>(candidate);
    }
  }
  return std::nullopt;
}

const std::set<std::string>& elementwise_structural() {
  static const std::set<std::string> kinds{"Add", "Sub", "Mul", "Div", "Pow"};
  return kinds;
}

const std::set<std::string>& reshaping_structural() {
  static const std::set<std::string> kinds{"Reshape", "Flatten", "Squeeze", "Unsqueeze"};
  return kinds;
}

// How one node takes part in a group, found from one of its value axes.
struct Touch {
  std::vector<ValueAxis> values;               // the node's input and output value axes linked
  std::vector<ir::TensorAxis> op_axes;          // compute nodes: the op's linked axes
  std::vector<std::pair<std::string, int>> constants;  // structural nodes: graph constants sliced (name, axis)
};

// The name the operator gives the output axis a group narrows ("k" for a convolution's output
// channels); the axis number when its subscript is not one index.
std::string output_index(const ir::OpExpr& op, const std::vector<Touch>& touches) {
  for (const auto& touch : touches) {
    for (const auto& axis : touch.op_axes) {
      if (axis.tensor != op.output().name) continue;
      for (const auto& statement : op.statements()) {
        if (statement.output.tensor != axis.tensor) continue;
        if (auto index = statement.output.subscripts.at(axis.axis).plain_index()) return *index;
      }
      return std::to_string(axis.axis);
    }
  }
  return "?";
}

class GroupFinder {
 public:
  explicit GroupFinder(const Graph& graph) : graph_(graph) {
    for (size_t index = 0; index < graph.nodes.size(); ++index) {
      for (const auto& output : graph.nodes[index].outputs) producer_[output] = index;
      for (const auto& input : graph.nodes[index].inputs) readers_[input].insert(index);
    }
    for (const auto& input : graph.inputs) boundary_.insert(input.name);
    for (const auto& output : graph.outputs) boundary_.insert(output.name);
  }

  // The closed group of `start`, or nothing when it cannot be narrowed.
  std::optional<ChannelGroup> close(const ValueAxis& start) const {
    std::set<ValueAxis> values{start};
    std::deque<ValueAxis> pending{start};
    std::map<size_t, std::vector<Touch>> touches;  // by node index
    const int64_t extent = graph_.shape_of(start.value).at(start.axis);
    while (!pending.empty()) {
      const ValueAxis current = pending.front();
      pending.pop_front();
      if (boundary_.count(current.value)) return std::nullopt;
      if (graph_.shape_of(current.value).at(current.axis) != extent) return std::nullopt;
      std::vector<size_t> nodes;
      if (auto producer = producer_.find(current.value); producer != producer_.end()) nodes.push_back(producer->second);
      if (auto readers = readers_.find(current.value); readers != readers_.end()) nodes.insert(nodes.end(), readers->second.begin(), readers->second.end());
      for (size_t index : nodes) {
        auto& seen = touches[index];
        // A node already reached through an axis linked to this one adds nothing.
        if (std::any_of(seen.begin(), seen.end(), [&](const Touch& touch) {
              return std::find(touch.values.begin(), touch.values.end(), current) != touch.values.end();
            })) {
          continue;
        }
        const auto touch = touch_node(graph_.nodes[index], current);
        if (!touch) return std::nullopt;
        for (const auto& value : touch->values) {
          if (values.insert(value).second) pending.push_back(value);
        }
        seen.push_back(*touch);
      }
    }
    ChannelGroup group;
    group.values.assign(values.begin(), values.end());
    group.extent = extent;
    for (const auto& [index, node_touches] : touches) {
      const Node& node = graph_.nodes[index];
      if (!node.is_compute()) {
        group.structural.push_back(node.name);
        for (const auto& touch : node_touches) {
          for (const auto& [value, axis] : touch.constants) group.constants.push_back({node.name, value, axis});
        }
        continue;
      }
      bool reads = false, writes = false, weighted = false;
      for (const auto& touch : node_touches) {
        group.narrowed.push_back({node.name, touch.op_axes.front()});
        for (const auto& axis : touch.op_axes) {
          const ir::Role role = node.op->tensor(axis.tensor).role;
          reads |= role == ir::Role::Input;
          writes |= role == ir::Role::Output;
          weighted |= role == ir::Role::Param;
        }
      }
      if (!weighted) continue;
      if (writes && !reads && group.producers.empty()) group.label = node.name + ":" + output_index(*node.op, node_touches);
      if (writes && !reads) group.producers.push_back(node.name);
      if (reads && !writes) group.consumers.push_back(node.name);
      if (reads && writes) group.followers.push_back(node.name);
    }
    if (group.producers.empty()) return std::nullopt;
    return group;
  }

 private:
  std::optional<Touch> touch_node(const Node& node, const ValueAxis& value) const {
    return node.is_compute() ? touch_compute(node, value) : touch_structural(node, value);
  }

  // A compute node: the op's axes linked to the value's, and the node's values they belong to.
  std::optional<Touch> touch_compute(const Node& node, const ValueAxis& value) const {
    const ir::OpExpr& op = *node.op;
    const auto inputs = op.tensors_with_role(ir::Role::Input);
    std::string tensor;
    if (node.outputs.at(0) == value.value) {
      tensor = op.output().name;
    } else {
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (node.inputs[i] == value.value) tensor = inputs.at(i).name;
      }
    }
    Touch touch;
    touch.op_axes = ir::linked_axes(op, {tensor, value.axis});
    if (touch.op_axes.empty()) return std::nullopt;
    for (const auto& axis : touch.op_axes) {
      if (axis.tensor == op.output().name) touch.values.push_back({node.outputs.at(0), axis.axis});
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].name == axis.tensor) touch.values.push_back({node.inputs.at(i), axis.axis});
      }
    }
    // Two inputs bound to one value (X * X) are linked through it; reading the value at an axis
    // the op does not link would mix positions.
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (node.inputs[i] != value.value) continue;
      const ir::TensorAxis same{inputs[i].name, value.axis};
      if (std::find(touch.op_axes.begin(), touch.op_axes.end(), same) == touch.op_axes.end()) return std::nullopt;
    }
    return touch;
  }

  std::optional<Touch> touch_structural(const Node& node, const ValueAxis& value) const {
    const std::string& op = node.op_type;
    const std::string& output = node.outputs.at(0);
    const bool from_output = value.value == output;
    Touch touch;
    if (op == "Identity" || op == "BatchNormalization") {
      if (op == "BatchNormalization" && value.axis != 1) return std::nullopt;
      touch.values = {{node.inputs.at(0), value.axis}, {output, value.axis}};
      return touch;
    }
    if (elementwise_structural().count(op)) {
      // Broadcasting aligns axes from the right; an operand of extent 1 there is shared by every
      // position, one with the full extent narrows (sliced when it is a constant).
      const auto& out_shape = graph_.shape_of(output);
      int out_axis = value.axis;
      if (!from_output) {
        const auto& shape = graph_.shape_of(value.value);
        out_axis = value.axis + static_cast<int>(out_shape.size() - shape.size());
      }
      touch.values.push_back({output, out_axis});
      for (const auto& input : node.inputs) {
        const auto& shape = graph_.shape_of(input);
        const int axis = out_axis - static_cast<int>(out_shape.size() - shape.size());
        if (axis < 0 || shape.at(axis) == 1) continue;
        if (graph_.constants.count(input)) {
          touch.constants.push_back({input, axis});
        } else {
          touch.values.push_back({input, axis});
        }
      }
      return touch;
    }
    if (reshaping_structural().count(op)) {
      const auto& in_shape = graph_.shape_of(node.inputs.at(0));
      const auto& out_shape = graph_.shape_of(output);
      const auto mapped = from_output ? reshaped_axis(out_shape, value.axis, in_shape) : reshaped_axis(in_shape, value.axis, out_shape);
      if (!mapped) return std::nullopt;
      touch.values = {{node.inputs.at(0), from_output ? *mapped : value.axis}, {output, from_output ? value.axis : *mapped}};
      if (op == "Reshape" && node.inputs.size() > 1) touch.constants.push_back({node.inputs[1], -1});  // its target shape
      return touch;
    }
    if (op == "Concat") {
      const int64_t axis = graph::detail::normalise_axis(graph::detail::attribute_or<int64_t>(node, "axis", 0), graph_.shape_of(output).size(), node);
      if (axis == value.axis) return std::nullopt;
      for (const auto& input : node.inputs) touch.values.push_back({input, value.axis});
      touch.values.push_back({output, value.axis});
      return touch;
    }
    return std::nullopt;
  }

  const Graph& graph_;
  std::map<std::string, size_t> producer_;
  std::map<std::string, std::set<size_t>> readers_;
  std::set<std::string> boundary_;
};

}  // namespace

std::vector<ChannelGroup> channel_groups(const Graph& graph) {
  const GroupFinder finder(graph);
  std::vector<ChannelGroup> groups;
  std::set<ValueAxis> covered;
  for (const auto& node : graph.nodes) {
    if (!node.is_compute()) continue;
    const ir::OpExpr& op = *node.op;
    for (int axis = 0; axis < static_cast<int>(op.output().shape.size()); ++axis) {
      const ValueAxis start{node.outputs.at(0), axis};
      if (covered.count(start)) continue;
      const auto linked = ir::linked_axes(op, {op.output().name, axis});
      const bool made_by_weights =
          std::any_of(linked.begin(), linked.end(), [&](const ir::TensorAxis& a) { return op.tensor(a.tensor).role == ir::Role::Param; }) &&
          std::none_of(linked.begin(), linked.end(), [&](const ir::TensorAxis& a) { return op.tensor(a.tensor).role == ir::Role::Input; });
      if (!made_by_weights) continue;
      auto group = finder.close(start);
      if (!group) continue;
      covered.insert(group->values.begin(), group->values.end());
      groups.push_back(std::move(*group));
    }
  }
  return groups;
}

namespace {

void check_kept(const ChannelGroup& group, const std::vector<int64_t>& kept) {
  if (kept.empty()) throw GraphError("narrowing " + group.name() + " must keep at least one channel");
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] < 0 || kept[i] >= group.extent || (i > 0 && kept[i] <= kept[i - 1])) {
      throw GraphError("the channels kept of " + group.name() + " must increase strictly within 0.." + std::to_string(group.extent - 1));
    }
  }
}

}  // namespace

std::vector<const Node*> touched_nodes(const Graph& graph, const ChannelGroup& group) {
  std::set<std::string> names;
  for (const auto& [node, axis] : group.narrowed) names.insert(node);
  std::vector<const Node*> nodes;
  for (const auto& node : graph.nodes) {
    if (names.count(node.name)) nodes.push_back(&node);
  }
  return nodes;
}

std::vector<int64_t> kernel_widths(int64_t original, int64_t current) {
  const int64_t align = original >= 32 ? 8 : original >= 8 ? 4 : 1;
  const int64_t fewest = std::max(align, original / 8);
  std::vector<int64_t> widths;
  for (int64_t width = (current - 1) / align * align; width >= fewest; width -= align) widths.push_back(width);
  return widths;
}

Graph narrow_group(const Graph& graph, const ChannelGroup& group, const std::vector<int64_t>& kept) {
  check_kept(group, kept);
  const int64_t count = static_cast<int64_t>(kept.size());
  Graph narrowed = graph;
  std::map<std::string, std::vector<ir::TensorAxis>> compute_axes;
  for (const auto& [node, axis] : group.narrowed) compute_axes[node].push_back(axis);
  const std::set<std::string> structural(group.structural.begin(), group.structural.end());
  for (auto& node : narrowed.nodes) {
    if (auto found = compute_axes.find(node.name); found != compute_axes.end()) {
      for (const auto& axis : found->second) {
        node.weights = ir::narrow_tensors(*node.op, axis, kept, node.weights);
        node.op = ir::narrow(*node.op, axis, kept);
      }
    } else if (structural.count(node.name) && node.op_type == "BatchNormalization") {
      for (auto& [name, weight] : node.weights) weight = ir::take(weight, 0, kept);
    }
    for (const auto& constant : group.constants) {
      if (constant.node != node.name) continue;
      // A copy per reading node: the same constant may serve nodes outside the group.
      ir::Tensor value = graph.constants.at(constant.value);
      if (constant.axis >= 0) {
        value = ir::take(value, constant.axis, kept);
      } else {
        for (const auto& value_axis : group.values) {
          if (value_axis.value == node.outputs.at(0) && value.data.at(value_axis.axis) == static_cast<float>(group.extent)) {
            value.data[value_axis.axis] = static_cast<float>(count);
          }
        }
      }
      const std::string name = constant.value + "/" + node.name;
      narrowed.constants[name] = std::move(value);
      std::replace(node.inputs.begin(), node.inputs.end(), constant.value, name);
    }
  }
  for (const auto& [value, axis] : group.values) narrowed.shapes.at(value).at(axis) = count;
  const auto readers = graph::reader_counts(narrowed);
  for (const auto& constant : group.constants) {
    if (!readers.count(constant.value)) narrowed.constants.erase(constant.value);
  }
  graph::validate(narrowed);
  return narrowed;
}

}  // namespace gos::narrow
