// Applying chosen candidates to a model graph (see adapted.h).
#include "search/adapted.h"

#include "search/candidates.h"

namespace gos::search {

namespace {

std::vector<std::vector<int64_t>> input_shapes(const ir::OpExpr& op) {
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& input : op.tensors_with_role(ir::Role::Input)) shapes.push_back(input.shape);
  return shapes;
}

}  // namespace

graph::Graph replace_operators(const graph::Graph& model, const std::map<std::string, rules::Candidate>& chosen) {
  graph::Graph adapted = model;
  size_t replaced = 0;
  for (auto& node : adapted.nodes) {
    auto found = chosen.find(node.name);
    if (found == chosen.end()) continue;
    const rules::Candidate& candidate = found->second;
    if (!node.is_compute()) throw SearchError("'" + node.name + "' is not an operator with instructions; it cannot be replaced");
    if (input_shapes(candidate.op) != input_shapes(*node.op) || candidate.op.output().shape != node.op->output().shape) {
      throw SearchError("the candidate " + candidate.derivation_text() + " for '" + node.name +
                        "' does not have the operator's input and output shapes");
    }
    node.op = candidate.op;
    node.weights = candidate.weights;
    ++replaced;
  }
  if (replaced != chosen.size()) {
    for (const auto& [name, candidate] : chosen) {
      if (!model.find_node(name)) throw SearchError("the model has no operator '" + name + "' to replace");
    }
  }
  graph::validate(adapted);
  return adapted;
}

}  // namespace gos::search
