// The graph's plain-C++ passes: validation, reference evaluation, batch-norm folding, cost.
#include "graph/graph.h"

#include <algorithm>
#include <set>

#include "graph/structural.h"
#include "ir/ops.h"

namespace gos::graph {

namespace {

using ir::shape_text;

GraphError node_error(const Node& node, const std::string& message) {
  return GraphError("node '" + node.name + "' (" + node.op_type + "): " + message);
}

std::vector<std::string> op_input_names(const ir::OpExpr& op) {
  std::vector<std::string> names;
  for (const auto& tensor : op.tensors_with_role(ir::Role::Input)) names.push_back(tensor.name);
  return names;
}

void validate_compute_node(const Graph& graph, const Node& node) {
  const ir::OpExpr& op = *node.op;
  auto inputs = op.tensors_with_role(ir::Role::Input);
  if (node.inputs.size() != inputs.size()) {
    throw node_error(node, "binds " + std::to_string(node.inputs.size()) + " inputs but its instructions take " +
                               std::to_string(inputs.size()));
  }
  if (node.outputs.size() != 1) throw node_error(node, "a compute node has exactly one output");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Shape& bound = graph.shape_of(node.inputs[i]);
    if (bound != inputs[i].shape) {
      throw node_error(node, "input " + node.inputs[i] + " has shape " + shape_text(bound) + " but " +
                                 inputs[i].name + " is " + shape_text(inputs[i].shape));
    }
  }
  if (graph.shape_of(node.outputs[0]) != op.output().shape) {
    throw node_error(node, "output " + node.outputs[0] + " has shape " + shape_text(graph.shape_of(node.outputs[0])) +
                               " but the instructions write " + shape_text(op.output().shape));
  }
  for (const auto& param : op.tensors_with_role(ir::Role::Param)) {
    auto weight = node.weights.find(param.name);
    if (weight == node.weights.end()) throw node_error(node, "has no value for param " + param.name);
    if (weight->second.shape != param.shape) {
      throw node_error(node, "param " + param.name + " has shape " + shape_text(weight->second.shape) +
                                 " but the instructions expect " + shape_text(param.shape));
    }
  }
}

}  // namespace

std::map<std::string, int> reader_counts(const Graph& graph) {
  std::map<std::string, int> readers;
  for (const auto& node : graph.nodes) {
    for (const auto& input : node.inputs) ++readers[input];
  }
  for (const auto& output : graph.outputs) ++readers[output.name];
  return readers;
}

const std::vector<std::string>& structural_op_types() {
  static const std::vector<std::string> types{
      "Reshape", "Flatten",  "Transpose", "Concat",     "Split", "Slice",
      "Squeeze", "Unsqueeze", "Identity", "Softmax",    "LogSoftmax", "LayerNormalization",
      "BatchNormalization", "Div", "Sub", "Mul",         "Add",   "Pow",
      "Sqrt",    "Exp",       "Erf",      "ReduceMean", "LeakyRelu", "Elu",   "Selu",
      "Softplus", "PRelu",    "InstanceNormalization", "Pad", "Gather", "Resize"};
  return types;
}

bool is_structural_op_type(std::string_view op_type) {
  const auto& types = structural_op_types();
  return std::find(types.begin(), types.end(), op_type) != types.end();
}

const Node* Graph::find_node(std::string_view node_name) const {
  for (const auto& node : nodes) {
    if (node.name == node_name) return &node;
  }
  return nullptr;
}

const Shape& Graph::shape_of(const std::string& value) const {
  auto found = shapes.find(value);
  if (found == shapes.end()) throw GraphError("value '" + value + "' has no known shape");
  return found->second;
}

void validate(const Graph& graph) {
  std::set<std::string> available;
  for (const auto& input : graph.inputs) available.insert(input.name);
  for (const auto& [name, tensor] : graph.constants) available.insert(name);
  std::set<std::string> node_names;
  for (const auto& node : graph.nodes) {
    if (!node_names.insert(node.name).second) throw node_error(node, "the node name is used twice");
    for (const auto& input : node.inputs) {
      if (!input.empty() && !available.count(input)) {
        throw node_error(node, "reads '" + input + "', which no earlier node produces");
      }
    }
    if (node.is_compute()) {
      validate_compute_node(graph, node);
    } else if (!is_structural_op_type(node.op_type)) {
      throw node_error(node, "is neither instructions nor a structural op gos executes");
    }
    for (const auto& output : node.outputs) {
      if (!available.insert(output).second) throw node_error(node, "writes '" + output + "', which already exists");
      graph.shape_of(output);
    }
  }
  for (const auto& output : graph.outputs) {
    if (!available.count(output.name)) throw GraphError("graph output '" + output.name + "' is never produced");
  }
}

ir::TensorMap evaluate(const Graph& graph, const ir::TensorMap& inputs) {
  ir::TensorMap values;
  for (const auto& input : graph.inputs) {
    auto bound = inputs.find(input.name);
    if (bound == inputs.end()) throw GraphError("no value for graph input '" + input.name + "'");
    if (bound->second.shape != input.shape) {
      throw GraphError("graph input '" + input.name + "' has shape " + shape_text(bound->second.shape) +
                       "; the model expects " + shape_text(input.shape));
    }
    values[input.name] = bound->second;
  }
  detail::ValueLookup lookup = [&](const std::string& name) -> const ir::Tensor& {
    if (auto found = values.find(name); found != values.end()) return found->second;
    if (auto found = graph.constants.find(name); found != graph.constants.end()) return found->second;
    throw GraphError("value '" + name + "' is not available");
  };
  for (const auto& node : graph.nodes) {
    if (node.is_compute()) {
      ir::TensorMap bindings = node.weights;
      auto names = op_input_names(*node.op);
      for (size_t i = 0; i < names.size(); ++i) bindings[names[i]] = lookup(node.inputs.at(i));
      values[node.outputs.at(0)] = ir::evaluate(*node.op, bindings);
    } else {
      auto outputs = detail::run_structural(node, lookup);
      for (size_t i = 0; i < node.outputs.size() && i < outputs.size(); ++i) values[node.outputs[i]] = std::move(outputs[i]);
    }
  }
  ir::TensorMap results;
  for (const auto& output : graph.outputs) results[output.name] = lookup(output.name);
  return results;
}

Graph fold_batch_norms(const Graph& graph) {
  Graph folded = graph;
  auto readers = reader_counts(graph);
  std::map<std::string, size_t> producer;  // value -> index in folded.nodes
  std::vector<Node> kept;
  for (const auto& node : graph.nodes) {
    bool foldable = node.op_type == "BatchNormalization" && !node.inputs.empty() && producer.count(node.inputs[0]) &&
                    readers[node.inputs[0]] == 1;
    if (foldable) {
      Node& conv = kept[producer.at(node.inputs[0])];
      bool has_weight = conv.is_compute() && conv.op->statements().back().activation == ir::Activation::None;
      std::optional<ir::FoldedOp> result;
      if (has_weight) {
        auto tensor_values = [&](const char* name) { return node.weights.at(name).data; };
        ir::BatchNormParams bn{tensor_values("scale"), tensor_values("B"), tensor_values("mean"), tensor_values("var"),
                               1e-5f};
        if (auto epsilon = node.attributes.find("epsilon"); epsilon != node.attributes.end()) {
          bn.epsilon = static_cast<float>(std::get<double>(epsilon->second));
        }
        try {
          result = ir::fold_batch_norm(*conv.op, conv.weights, bn);
        } catch (const ir::IrError&) {
          result.reset();  // e.g. a Mul by a weight not indexed by channel: the batch norm stays
        }
      }
      if (result) {
        folded.shapes.erase(conv.outputs[0]);
        conv.op = result->op;
        for (auto& [name, tensor] : result->weights) conv.weights[name] = std::move(tensor);
        conv.outputs[0] = node.outputs.at(0);
        producer[conv.outputs[0]] = producer.at(node.inputs[0]);
        continue;
      }
    }
    for (const auto& output : node.outputs) producer[output] = kept.size();
    kept.push_back(node);
  }
  folded.nodes = std::move(kept);
  return folded;
}

namespace {

bool folds_batch_norm(const Node& node, int64_t channels) {
  if (!node.is_compute() || node.outputs.size() != 1) return false;
  const std::vector<float> zeros(channels, 0.0f), ones(channels, 1.0f);
  try {
    ir::fold_batch_norm(ir::without_activation(*node.op), node.weights, {ones, zeros, zeros, ones});
    return true;
  } catch (const ir::IrError&) {
    return false;  // no param indexed by the output channel in the last statement, or a residual addend
  }
}

}  // namespace

WithBatchNorms insert_batch_norms(const Graph& graph) {
  std::set<std::string> graph_outputs;
  for (const auto& output : graph.outputs) graph_outputs.insert(output.name);
  WithBatchNorms result{graph, {}};
  Graph& inserted = result.graph;
  inserted.nodes.clear();
  constexpr double kEpsilon = 1e-5;
  for (const auto& node : graph.nodes) {
    const std::string output = node.outputs.empty() ? "" : node.outputs[0];
    const Shape& shape = output.empty() ? Shape{} : graph.shape_of(output);
    // Outputs without positions ([N,C] of a linear layer) keep none: batch statistics there would
    // normalise the batch's predictions (a regressor's rates) rather than features.
    if (graph_outputs.count(output) || shape.size() < 3 || !folds_batch_norm(node, shape[1])) {
      inserted.nodes.push_back(node);
      continue;
    }
    const ir::Activation activation = node.op->statements().back().activation;
    Node compute = node;
    compute.op = ir::without_activation(*node.op);
    compute.outputs = {output + "/prebn"};
    inserted.shapes[compute.outputs[0]] = shape;
    const ir::Tensor zeros({shape[1]}, 0.0f), ones({shape[1]}, 1.0f);
    // var = 1 - epsilon makes the normalisation exactly the identity.
    const ir::Tensor identity_var({shape[1]}, static_cast<float>(1 - kEpsilon));
    Node norm{.name = node.name + "/bn",
              .op_type = "BatchNormalization",
              .inputs = compute.outputs,
              .outputs = {activation == ir::Activation::None ? output : output + "/bn"},
              .op = std::nullopt,
              .weights = {{"scale", ones}, {"B", zeros}, {"mean", zeros}, {"var", identity_var}},
              .attributes = {{"epsilon", kEpsilon}}};
    inserted.shapes[norm.outputs[0]] = shape;
    result.batch_norms.push_back(norm.name);
    inserted.nodes.push_back(std::move(compute));
    inserted.nodes.push_back(norm);
    if (activation != ir::Activation::None) {
      inserted.nodes.push_back(Node{.name = node.name + "/act",
                                    .op_type = std::string(ir::to_string(activation)),
                                    .inputs = norm.outputs,
                                    .outputs = {output},
                                    .op = ir::activation(shape, activation),
                                    .weights = {},
                                    .attributes = {}});
    }
  }
  return result;
}

std::vector<NodeCost> node_costs(const Graph& graph) {
  std::vector<NodeCost> costs;
  for (const auto& node : graph.nodes) {
    if (node.is_compute()) costs.push_back({node.name, node.op_type, ir::cost(*node.op)});
  }
  return costs;
}

int64_t total_macs(const Graph& graph) {
  int64_t total = 0;
  for (const auto& cost : node_costs(graph)) total += cost.cost.macs;
  return total;
}

int64_t node_params(const Node& node) {
  if (node.is_compute()) return ir::cost(*node.op).params;
  int64_t params = 0;
  for (const auto& [name, tensor] : node.weights) {
    if (name == "scale" || name == "B" || name == "slope") params += tensor.elements();  // not running statistics
  }
  return params;
}

int64_t total_params(const Graph& graph) {
  int64_t total = 0;
  for (const auto& node : graph.nodes) total += node_params(node);
  return total;
}

Graph with_input_normalisation(const Graph& graph, const std::vector<float>& mean, const std::vector<float>& std) {
  if (graph.inputs.size() != 1 || graph.inputs[0].shape.size() < 2) {
    throw GraphError("normalising the input needs a graph with one input of a batch and a channel axis");
  }
  const Value& input = graph.inputs[0];
  const int64_t channels = input.shape[1];
  Shape per_channel(input.shape.size(), 1);
  per_channel[1] = channels;
  auto constant = [&](const std::vector<float>& values, const char* what) {
    if (values.size() != 1 && static_cast<int64_t>(values.size()) != channels) {
      throw GraphError(std::string(what) + " has " + std::to_string(values.size()) + " values; the input " + input.name + " has " +
                       std::to_string(channels) + " channels (give one value, or one per channel)");
    }
    std::vector<float> data(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) data[static_cast<size_t>(c)] = values[values.size() == 1 ? 0 : static_cast<size_t>(c)];
    return ir::Tensor(per_channel, std::move(data));
  };
  for (float s : std) {
    if (!(s > 0)) throw GraphError("the std values must be positive");
  }
  Graph normalised = graph;
  const std::string centred = input.name + "/centred", scaled = input.name + "/normalised";
  const std::string mean_name = input.name + "/mean", std_name = input.name + "/std";
  for (const std::string& name : {centred, scaled, mean_name, std_name}) {
    if (graph.shapes.contains(name) || graph.constants.contains(name)) throw GraphError("the graph already has a value named " + name);
  }
  for (Node& node : normalised.nodes) {
    for (std::string& read : node.inputs) {
      if (read == input.name) read = scaled;
    }
  }
  for (Value& output : normalised.outputs) {
    if (output.name == input.name) output.name = scaled;
  }
  normalised.constants[mean_name] = constant(mean, "the mean");
  normalised.constants[std_name] = constant(std, "the std");
  normalised.shapes[centred] = input.shape;
  normalised.shapes[scaled] = input.shape;
  normalised.shapes[mean_name] = per_channel;
  normalised.shapes[std_name] = per_channel;
  Node subtract{.name = input.name + "/subtract_mean", .op_type = "Sub", .inputs = {input.name, mean_name}, .outputs = {centred}};
  Node divide{.name = input.name + "/divide_by_std", .op_type = "Div", .inputs = {centred, std_name}, .outputs = {scaled}};
  normalised.nodes.insert(normalised.nodes.begin(), {std::move(subtract), std::move(divide)});
  validate(normalised);
  return normalised;
}

}  // namespace gos::graph
