// Dropping: a residual branch replaced by nothing, an operator replaced by the identity.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "ir/ops.h"
#include "narrow/narrow.h"

namespace gos::narrow {

namespace {

using graph::Graph;
using graph::GraphError;
using graph::Node;

// `Y = act(X + Z)` over two inputs of the output's shape: the residual addition gos imports.
bool is_residual_addition(const Graph& graph, const Node& node) {
  if (node.inputs.size() != 2 || node.outputs.size() != 1) return false;
  const auto& shape = graph.shape_of(node.outputs[0]);
  for (const auto& input : node.inputs) {
    if (graph.constants.count(input) || graph.shape_of(input) != shape) return false;
  }
  if (!node.is_compute()) return node.op_type == "Add";
  if (!node.weights.empty() || node.op->statements().size() != 1) return false;
  const ir::Statement& statement = node.op->statements()[0];
  return statement.reduction_indices.empty() && statement.factors.size() == 1 && statement.addends.size() == 1 &&
         statement.factors[0].subscripts == statement.output.subscripts && statement.addends[0].subscripts == statement.output.subscripts;
}

// The activation an addition or operator applies last (None for a structural Add).
ir::Activation last_activation(const Node& node) {
  return node.is_compute() ? node.op->statements().back().activation : ir::Activation::None;
}

class Readers {
 public:
  explicit Readers(const Graph& graph) {
    for (size_t index = 0; index < graph.nodes.size(); ++index) {
      for (const auto& input : graph.nodes[index].inputs) readers_[input].insert(index);
    }
    for (const auto& output : graph.outputs) outputs_.insert(output.name);
  }
  // Whether every reader of `value` is in `nodes` (and it is no graph output).
  bool only_by(const std::string& value, const std::set<size_t>& nodes) const {
    if (outputs_.count(value)) return false;
    auto found = readers_.find(value);
    return found == readers_.end() || std::includes(nodes.begin(), nodes.end(), found->second.begin(), found->second.end());
  }

 private:
  std::map<std::string, std::set<size_t>> readers_;
  std::set<std::string> outputs_;
};

// The nodes that compute `value` for the node at `addition` alone: walking back in graph order,
// a node joins when everything it writes is read only by nodes that joined (or is `value`, read
// by the addition; the addition's other operand is the shortcut, which stays).
std::set<size_t> branch_of(const Graph& graph, const Readers& readers, size_t addition, const std::string& value) {
  std::set<size_t> branch;
  std::set<std::string> wanted{value};
  const std::set<size_t> the_addition{addition};
  for (size_t index = addition; index-- > 0;) {
    const Node& node = graph.nodes[index];
    const bool writes_wanted = std::any_of(node.outputs.begin(), node.outputs.end(), [&](const std::string& o) { return wanted.count(o) > 0; });
    if (!writes_wanted) continue;
    const bool exclusive = std::all_of(node.outputs.begin(), node.outputs.end(), [&](const std::string& o) {
      return o == value ? readers.only_by(o, the_addition) : readers.only_by(o, branch);
    });
    if (!exclusive) continue;
    branch.insert(index);
    for (const auto& input : node.inputs) {
      if (!graph.constants.count(input)) wanted.insert(input);
    }
  }
  return branch;
}

}  // namespace

std::vector<Drop> droppable(const Graph& graph) {
  const Readers readers(graph);
  std::vector<Drop> drops;
  for (size_t index = 0; index < graph.nodes.size(); ++index) {
    const Node& node = graph.nodes[index];
    if (is_residual_addition(graph, node)) {
      for (size_t operand = 0; operand < 2; ++operand) {
        const auto branch = branch_of(graph, readers, index, node.inputs[operand]);
        const bool computes = std::any_of(branch.begin(), branch.end(), [&](size_t i) { return graph.nodes[i].is_compute() && !graph.nodes[i].weights.empty(); });
        if (!computes) continue;
        Drop drop{"drop(" + node.name + ")", node.name, node.inputs[1 - operand], {}};
        for (size_t i : branch) drop.removed.push_back(graph.nodes[i].name);
        drops.push_back(std::move(drop));
        break;  // one branch per addition: a shortcut with weights of its own stays
      }
      continue;
    }
    if (node.is_compute() && !node.weights.empty() && node.op->tensors_with_role(ir::Role::Input).size() == 1 &&
        graph.shape_of(node.inputs.at(0)) == graph.shape_of(node.outputs.at(0))) {
      drops.push_back({"drop(" + node.name + ")", node.name, node.inputs[0], {}});
    }
  }
  return drops;
}

Graph apply_drop(const Graph& graph, const Drop& drop) {
  const Node* target = graph.find_node(drop.node);
  if (!target || std::find(target->inputs.begin(), target->inputs.end(), drop.kept) == target->inputs.end()) {
    throw GraphError(drop.name + " does not fit this graph: " + drop.node + " does not read " + drop.kept);
  }
  const std::set<std::string> removed(drop.removed.begin(), drop.removed.end());
  Graph result = graph;
  result.nodes.clear();
  for (const Node& node : graph.nodes) {
    if (removed.count(node.name)) continue;
    if (node.name != drop.node) {
      result.nodes.push_back(node);
      continue;
    }
    Node passed{node.name, "Identity", {drop.kept}, node.outputs, std::nullopt, {}, {}};
    if (const ir::Activation activation = last_activation(node); activation != ir::Activation::None) {
      passed.op_type = std::string(ir::to_string(activation));
      passed.op_type[0] = static_cast<char>(std::toupper(passed.op_type[0]));  // as ONNX names it
      passed.op = ir::activation(graph.shape_of(node.outputs.at(0)), activation);
    }
    result.nodes.push_back(std::move(passed));
  }
  // What only the removed nodes wrote or read goes with them.
  std::set<std::string> live;
  for (const auto& input : result.inputs) live.insert(input.name);
  for (const auto& node : result.nodes) {
    live.insert(node.inputs.begin(), node.inputs.end());
    live.insert(node.outputs.begin(), node.outputs.end());
  }
  std::erase_if(result.shapes, [&](const auto& entry) { return !live.count(entry.first); });
  std::erase_if(result.constants, [&](const auto& entry) { return !live.count(entry.first); });
  graph::validate(result);
  return result;
}

}  // namespace gos::narrow
