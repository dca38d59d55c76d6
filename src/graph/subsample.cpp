// subsample_pooled_positions: a global average pooling averages every factor-th position of its
// input, and the positions it no longer reads are not computed at all. The index substitution
// i -> factor*i is pushed up through the instructions: a read `X[factor*l + d*r - d]` whose
// subscript is divisible by g becomes `Xg[(factor/g)*l + (d/g)*r - d/g]` of the tensor Xg holding
// every g-th position of X, and Xg's producer computes only those. Zero padding stays exact:
// g*j is out of X's range exactly when j is out of Xg's (extent ceil(E/g)). So a dilated TCN
// halves its dilations instead of its receptive field, and the one approximation left is the
// average over fewer positions.
#include <algorithm>
#include <numeric>

#include "graph/graph.h"

namespace gos::graph {

namespace {

using IndexFactors = std::map<std::string, int64_t>;  // index name -> stride of its new values

int64_t ceil_div(int64_t value, int64_t divisor) { return (value + divisor - 1) / divisor; }

// i -> factor*i for each index in `factors`.
ir::Affine stretched(const ir::Affine& affine, const IndexFactors& factors) {
  std::vector<ir::Affine::Term> terms;
  for (const auto& [index, coefficient] : affine.terms()) {
    auto factor = factors.find(index);
    terms.emplace_back(index, factor == factors.end() ? coefficient : coefficient * factor->second);
  }
  return {std::move(terms), affine.constant_term()};
}

ir::Affine divided(const ir::Affine& affine, int64_t divisor) {
  std::vector<ir::Affine::Term> terms;
  for (const auto& [index, coefficient] : affine.terms()) terms.emplace_back(index, coefficient / divisor);
  return {std::move(terms), affine.constant_term() / divisor};
}

// The largest g dividing the subscript as a form (every coefficient and the constant), when it
// reads along a strided index; 1 otherwise (nothing to gain from reading fewer positions).
int64_t common_divisor(const ir::Affine& subscript, const IndexFactors& factors) {
  bool strided = false;
  int64_t divisor = subscript.constant_term();
  for (const auto& [index, coefficient] : subscript.terms()) {
    divisor = std::gcd(divisor, coefficient);
    strided = strided || factors.contains(index);
  }
  return strided ? std::max<int64_t>(1, std::abs(divisor)) : 1;
}

bool reads_index(const ir::Access& access, const std::string& index) {
  return std::any_of(access.subscripts.begin(), access.subscripts.end(),
                     [&](const ir::Affine& subscript) { return subscript.coefficient(index) != 0; });
}

std::vector<const ir::Access*> accesses(const ir::Statement& statement) {
  std::vector<const ir::Access*> all;
  for (const auto& access : statement.factors) all.push_back(&access);
  for (const auto& access : statement.addends) all.push_back(&access);
  return all;
}

// A global average pooling: one statement `Y[...] = mean{l,...} X[..., l, ...]` whose reduction
// indices are whole axes of its one input. Returns the reduction indices.
std::optional<std::vector<std::string>> global_pool_indices(const Node& node) {
  if (!node.is_compute() || node.op->statements().size() != 1) return std::nullopt;
  const ir::Statement& statement = node.op->statements()[0];
  if (statement.reduction != ir::Reduction::Mean || statement.reduction_indices.empty() || statement.factors.size() != 1 ||
      !statement.addends.empty() || node.op->tensor(statement.factors[0].tensor).role != ir::Role::Input) {
    return std::nullopt;
  }
  // Positions, not the batch (dimension 0).
  const auto& subscripts = statement.factors[0].subscripts;
  if (subscripts.size() < 2) return std::nullopt;
  std::vector<std::string> indices;
  for (const auto& reduced : statement.reduction_indices) {
    if (std::none_of(subscripts.begin() + 1, subscripts.end(),
                     [&](const ir::Affine& subscript) { return subscript.plain_index() == reduced.name; })) {
      return std::nullopt;
    }
    indices.push_back(reduced.name);
  }
  return indices;
}

// The output indices a node would stride to compute every factors[d]-th position along each
// dimension d of its output; nullopt when it cannot (not one statement, a dimension written
// through a combination of indices, or the index also reads a weight, whose positions would
// then be subsampled too).
std::optional<IndexFactors> output_index_factors(const Node& node, const std::vector<int64_t>& factors) {
  if (!node.is_compute() || node.op->statements().size() != 1) return std::nullopt;
  const ir::Statement& statement = node.op->statements()[0];
  IndexFactors strided;
  for (size_t d = 0; d < factors.size(); ++d) {
    if (factors[d] == 1) continue;
    auto index = statement.output.subscripts[d].plain_index();
    if (!index) return std::nullopt;
    for (const ir::Access* access : accesses(statement)) {
      if (node.op->tensor(access->tensor).role != ir::Role::Input && reads_index(*access, *index)) return std::nullopt;
    }
    strided[*index] = factors[d];
  }
  return strided;
}

// i -> stride*i for each strided index: extents ceil(E/stride), and every read follows.
ir::Statement with_strided_indices(ir::Statement statement, const IndexFactors& strides) {
  for (auto* indices : {&statement.output_indices, &statement.reduction_indices}) {
    for (auto& index : *indices) {
      if (auto stride = strides.find(index.name); stride != strides.end()) index.extent = ceil_div(index.extent, stride->second);
    }
  }
  for (auto* list : {&statement.factors, &statement.addends}) {
    for (auto& access : *list) {
      for (auto& subscript : access.subscripts) subscript = stretched(subscript, strides);
    }
  }
  return statement;
}

class Subsampler {
 public:
  Subsampler(const Graph& graph, int64_t factor) : graph_(graph), factor_(factor), readers_(reader_counts(graph)) {
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      for (const auto& output : graph.nodes[i].outputs) producer_[output] = i;
    }
  }

  Subsampled run() {
    Subsampled result{graph_, {}};
    // The last pooling is the head's; one inside the network (squeeze-and-excitation) scales
    // features the positions left out still need, so its statistics stay whole.
    for (size_t i = graph_.nodes.size(); i-- > 0 && strides_.empty();) {
      if (auto pooled = global_pool_indices(graph_.nodes[i])) {
        IndexFactors factors;
        for (const auto& index : *pooled) factors[index] = factor_;
        strides_[i] = factors;
      }
    }
    if (strides_.empty()) {
      throw GraphError("the model has no global average pooling, so no position can be left out before it");
    }
    // Consumers come after producers: walking back, a node's demand is known when it is reached.
    for (size_t i = graph_.nodes.size(); i-- > 0;) {
      auto strides = strides_.find(i);
      if (strides == strides_.end()) continue;
      Node& node = result.graph.nodes[i];
      node.op = rewritten(node, strides->second);
      result.graph.shapes[node.outputs[0]] = node.op->output().shape;
      result.changed_nodes.push_back(node.name);
    }
    std::reverse(result.changed_nodes.begin(), result.changed_nodes.end());
    validate(result.graph);
    return result;
  }

 private:
  // The producer of `value` computes only every factors[d]-th position when it alone reads it
  // and can stride its own indices; records that demand.
  bool pushed(const std::string& value, const std::vector<int64_t>& factors) {
    auto producer = producer_.find(value);
    if (producer == producer_.end() || readers_[value] != 1 || strides_.contains(producer->second)) return false;
    auto strides = output_index_factors(graph_.nodes[producer->second], factors);
    if (!strides || strides->empty()) return false;
    strides_[producer->second] = *strides;
    return true;
  }

  // The node's statement over every stride-th value of the strided indices, reading its inputs
  // at the positions those need: from its producers' subsampled outputs where they can compute
  // only those (pushed), else strided.
  ir::OpExpr rewritten(const Node& node, const IndexFactors& strides) {
    ir::Statement statement = with_strided_indices(node.op->statements()[0], strides);
    std::vector<ir::TensorDecl> declared;
    for (const auto& tensor : node.op->tensors()) {
      if (tensor.role == ir::Role::Intermediate || tensor.role == ir::Role::Output) continue;
      declared.push_back(tensor);
    }
    size_t input_at = 0;
    for (auto& tensor : declared) {
      if (tensor.role != ir::Role::Input) continue;
      const std::string& value = node.inputs[input_at++];
      std::vector<int64_t> factors = read_divisors(statement, tensor.name, strides);
      if (std::all_of(factors.begin(), factors.end(), [](int64_t f) { return f == 1; }) || !pushed(value, factors)) continue;
      for (size_t d = 0; d < factors.size(); ++d) tensor.shape[d] = ceil_div(tensor.shape[d], factors[d]);
      for (auto* list : {&statement.factors, &statement.addends}) {
        for (auto& access : *list) {
          if (access.tensor != tensor.name) continue;
          for (size_t d = 0; d < factors.size(); ++d) access.subscripts[d] = divided(access.subscripts[d], factors[d]);
        }
      }
    }
    return ir::OpExpr::make(std::move(declared), {std::move(statement)});
  }

  // Per dimension of `tensor`, the largest step dividing every read of it in the statement.
  static std::vector<int64_t> read_divisors(const ir::Statement& statement, const std::string& tensor, const IndexFactors& strides) {
    std::vector<int64_t> divisors;
    for (const ir::Access* access : accesses(statement)) {
      if (access->tensor != tensor) continue;
      if (divisors.empty()) divisors.assign(access->subscripts.size(), 0);
      for (size_t d = 0; d < access->subscripts.size(); ++d) {
        divisors[d] = std::gcd(divisors[d], common_divisor(access->subscripts[d], strides));
      }
    }
    return divisors;
  }

  const Graph& graph_;
  int64_t factor_;
  std::map<std::string, int> readers_;
  std::map<std::string, size_t> producer_;
  std::map<size_t, IndexFactors> strides_;  // node -> its indices' strides
};

}  // namespace

Subsampled subsample_pooled_positions(const Graph& graph, int64_t factor) {
  if (factor < 1) throw GraphError("the subsampling factor must be at least 1, not " + std::to_string(factor));
  if (factor == 1) return {graph, {}};
  return Subsampler(graph, factor).run();
}

}  // namespace gos::graph
