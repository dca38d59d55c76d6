// Epilogue fusion: an activation, or the addition of a bias, that follows a compute node whose
// result nothing else reads becomes part of that node's last statement, as frameworks fuse
// Conv+ReLU or MatMul+bias. The graph then says `Y = relu(sum ... + B[k])` in one operator,
// which is what rewrite rules and kernels recognise.
#include "graph/graph.h"

namespace gos::graph {

namespace {

bool plain_read_of_output(const ir::Access& access, const ir::Statement& statement) {
  return access.subscripts == statement.output.subscripts;
}

// One elementwise statement reading its only input X as written, with nothing else in it.
bool is_epilogue_shaped(const ir::OpExpr& op) {
  if (op.statements().size() != 1 || op.tensors_with_role(ir::Role::Input).size() != 1) return false;
  const ir::Statement& statement = op.statements()[0];
  if (!statement.reduction_indices.empty() || statement.factors.size() != 1) return false;
  if (statement.factors[0].tensor != op.tensors_with_role(ir::Role::Input)[0].name) return false;
  return plain_read_of_output(statement.factors[0], statement);
}

// Y = act(X): an activation to move into the producer.
bool is_activation_epilogue(const ir::OpExpr& op) {
  const ir::Statement& statement = op.statements()[0];
  return is_epilogue_shaped(op) && statement.addends.empty() && statement.activation != ir::Activation::None;
}

// Y = X + B[...] with B a weight or const: a bias to move into the producer.
bool is_bias_epilogue(const ir::OpExpr& op) {
  if (!is_epilogue_shaped(op)) return false;
  const ir::Statement& statement = op.statements()[0];
  if (statement.activation != ir::Activation::None || statement.addends.size() != 1) return false;
  const ir::Role role = op.tensor(statement.addends[0].tensor).role;
  return role == ir::Role::Param || role == ir::Role::Const;
}

// `affine` with each of `statement`'s output index names replaced by the producer's output
// subscript at the same position.
ir::Affine substitute(const ir::Affine& affine, const ir::Statement& statement,
                      const std::vector<ir::Affine>& producer) {
  ir::Affine result = ir::Affine::constant(affine.constant_term());
  for (const auto& [name, coefficient] : affine.terms()) {
    for (size_t dim = 0; dim < statement.output.subscripts.size(); ++dim) {
      if (statement.output.subscripts[dim].plain_index() == name) result = result + producer[dim] * coefficient;
    }
  }
  return result;
}

std::string unused_name(const ir::OpExpr& op, const std::string& base) {
  std::string name = base;
  for (int suffix = 2; op.find_tensor(name); ++suffix) name = base + std::to_string(suffix);
  return name;
}

std::vector<ir::TensorDecl> declared(const ir::OpExpr& op) {
  std::vector<ir::TensorDecl> tensors;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == ir::Role::Input || tensor.role == ir::Role::Param || tensor.role == ir::Role::Const) {
      tensors.push_back(tensor);
    }
  }
  return tensors;
}

// The producer with the epilogue's activation or bias in its last statement, or nothing when the
// producer's last statement already has one.
std::optional<Node> fused(const Node& producer, const Node& epilogue) {
  const ir::OpExpr& op = *producer.op;
  const ir::OpExpr& tail = *epilogue.op;
  ir::Statement last = op.statements().back();
  if (last.activation != ir::Activation::None || op.output().shape != tail.output().shape) return std::nullopt;
  std::vector<ir::TensorDecl> tensors = declared(op);
  Node result = producer;
  if (is_activation_epilogue(tail)) {
    last.activation = tail.statements()[0].activation;
  } else {
    if (!last.addends.empty()) return std::nullopt;
    const ir::Access& bias = tail.statements()[0].addends[0];
    ir::TensorDecl decl = tail.tensor(bias.tensor);
    decl.name = unused_name(op, decl.role == ir::Role::Param ? "B" : "D");
    ir::Access read{decl.name, {}};
    for (const auto& subscript : bias.subscripts) {
      read.subscripts.push_back(substitute(subscript, tail.statements()[0], last.output.subscripts));
    }
    // A bias broadcast along unit dimensions (B[m,0] of a [m,1] bias) reads as B[m], the form
    // kernels take it in.
    ir::Access squeezed{read.tensor, {}};
    std::vector<int64_t> shape;
    for (size_t d = 0; d < read.subscripts.size(); ++d) {
      const ir::Affine& subscript = read.subscripts[d];
      if (decl.shape[d] == 1 && subscript.terms().empty() && subscript.constant_term() == 0) continue;
      squeezed.subscripts.push_back(subscript);
      shape.push_back(decl.shape[d]);
    }
    decl.shape = shape;
    if (decl.role == ir::Role::Const) decl.values = tail.tensor(bias.tensor).values;
    last.addends.push_back(squeezed);
    if (decl.role == ir::Role::Param) {
      ir::Tensor value = epilogue.weights.at(bias.tensor);
      value.shape = shape;
      result.weights[decl.name] = std::move(value);
    }
    tensors.push_back(decl);
  }
  std::vector<ir::Statement> statements = op.statements();
  statements.back() = last;
  try {
    result.op = ir::OpExpr::make(std::move(tensors), std::move(statements));
  } catch (const ir::IrError&) {
    return std::nullopt;
  }
  result.outputs = epilogue.outputs;
  return result;
}

}  // namespace

void fuse_epilogues(Graph& graph) {
  std::map<std::string, int> readers = reader_counts(graph);

  std::map<std::string, size_t> producers;  // value -> position in `kept`
  std::vector<Node> kept;
  for (auto& node : graph.nodes) {
    if (node.is_compute() && node.inputs.size() == 1 &&
        (is_activation_epilogue(*node.op) || is_bias_epilogue(*node.op))) {
      auto producer = producers.find(node.inputs[0]);
      if (producer != producers.end() && readers[node.inputs[0]] == 1 && kept[producer->second].is_compute()) {
        if (auto merged = fused(kept[producer->second], node)) {
          graph.shapes.erase(node.inputs[0]);
          kept[producer->second] = std::move(*merged);
          producers[node.outputs[0]] = producer->second;
          continue;
        }
      }
    }
    for (const auto& output : node.outputs) producers[output] = kept.size();
    kept.push_back(std::move(node));
  }
  graph.nodes = std::move(kept);
}

}  // namespace gos::graph
