// GraphModule: the graph's nodes run with libtorch, weights registered as torch parameters.
#include "graph/torch_module.h"

#include <torch/torch.h>

#include <set>

#include "graph/structural_torch.h"
#include "graph/torch_names.h"
#include "lowering/torch_functions.h"

namespace gos::graph {

namespace {

// The learned tensors a node registers, and whether each is a buffer (running statistics).
std::vector<std::pair<std::string, bool>> node_weight_names(const Node& node) {
  std::vector<std::pair<std::string, bool>> names;
  if (node.is_compute()) {
    for (const auto& param : node.op->tensors_with_role(ir::Role::Param)) names.emplace_back(param.name, false);
  } else if (node.op_type == "BatchNormalization") {
    names = {{"scale", false}, {"B", false}, {"mean", true}, {"var", true}};
  } else if (node.op_type == "PRelu") {
    names = {{"slope", false}};
  } else if (node.op_type == "LayerNormalization" || node.op_type == "InstanceNormalization") {
    for (const char* name : {"scale", "B"}) {
      if (node.weights.count(name)) names.emplace_back(name, false);
    }
  }
  return names;
}

}  // namespace

GraphModule::GraphModule(Graph graph) : graph_(std::move(graph)) {
  detail::UniqueNames module_names;
  for (const auto& node : graph_.nodes) {
    NodeRuntime runtime;
    if (node.is_compute()) {
      runtime.op.emplace(*node.op);
    } else {
      runtime.calls = detail::plan_structural(graph_, node);
    }
    if (!node_weight_names(node).empty()) register_node_weights(node, runtime, module_names.claim(node.name));
    nodes_.push_back(std::move(runtime));
  }
  register_constants();
}

void GraphModule::register_node_weights(const Node& node, NodeRuntime& runtime, const std::string& module_name) {
  auto holder = register_module(module_name, std::make_shared<torch::nn::Module>());
  for (const auto& [name, is_buffer] : node_weight_names(node)) {
    auto weight = node.weights.find(name);
    if (weight == node.weights.end()) {
      throw GraphError("node '" + node.name + "' (" + node.op_type + ") has no weight '" + name + "'");
    }
    torch::Tensor tensor = lowering::to_torch(weight->second);
    runtime.weights[name] = is_buffer ? holder->register_buffer(name, tensor) : holder->register_parameter(name, tensor);
  }
}

// Only constants read as tensors (not shapes or axes that structural nodes read when planning).
void GraphModule::register_constants() {
  std::set<std::string> read;
  for (const auto& node : graph_.nodes) {
    if (node.is_compute()) read.insert(node.inputs.begin(), node.inputs.end());
  }
  for (const auto& runtime : nodes_) {
    for (const auto& call : runtime.calls) {
      for (const auto& arg : call.args) {
        if (const auto* ref = std::get_if<lowering::ValueRef>(&arg); ref && !ref->weight) read.insert(ref->name);
        if (const auto* refs = std::get_if<std::vector<lowering::ValueRef>>(&arg)) {
          for (const auto& part : *refs) read.insert(part.name);
        }
      }
    }
  }
  std::shared_ptr<torch::nn::Module> holder;
  detail::UniqueNames buffer_names;
  for (const auto& [name, tensor] : graph_.constants) {
    if (!read.count(name)) continue;
    if (!holder) holder = register_module("constants", std::make_shared<torch::nn::Module>());
    constants_[name] = holder->register_buffer(buffer_names.claim(name), lowering::to_torch(tensor));
  }
}

void GraphModule::run_structural(const NodeRuntime& runtime, std::map<std::string, torch::Tensor>& values) const {
  lowering::TorchContext context{[&](const lowering::ValueRef& ref) -> const torch::Tensor& {
                                   if (ref.weight) return runtime.weights.at(ref.name);
                                   if (auto found = values.find(ref.name); found != values.end()) return found->second;
                                   if (auto found = constants_.find(ref.name); found != constants_.end()) return found->second;
                                   throw GraphError("value '" + ref.name + "' is not available");
                                 },
                                 is_training()};
  for (const auto& call : runtime.calls) values[call.result] = lowering::run_call(call, context);
}

std::map<std::string, torch::Tensor> GraphModule::forward_values(const std::vector<torch::Tensor>& inputs) {
  if (inputs.size() != graph_.inputs.size()) {
    throw GraphError("the graph takes " + std::to_string(graph_.inputs.size()) + " inputs but got " +
                     std::to_string(inputs.size()));
  }
  std::map<std::string, torch::Tensor> values;
  auto hooked = [&](const std::string& name) {
    if (value_hook_) values[name] = value_hook_(name, values.at(name));
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    values[graph_.inputs[i].name] = inputs[i];
    hooked(graph_.inputs[i].name);
  }
  for (size_t index = 0; index < nodes_.size(); ++index) {
    const Node& node = graph_.nodes[index];
    const NodeRuntime& runtime = nodes_[index];
    if (!runtime.op) {
      run_structural(runtime, values);
      for (const auto& output : node.outputs) {
        if (values.count(output)) hooked(output);
      }
      continue;
    }
    std::vector<torch::Tensor> node_inputs;
    for (const auto& input : node.inputs) {
      auto found = values.find(input);
      node_inputs.push_back(found != values.end() ? found->second : constants_.at(input));
    }
    if (weight_hook_) {
      std::map<std::string, torch::Tensor> weights;
      for (const auto& [name, tensor] : runtime.weights) weights[name] = weight_hook_(node.name, name, tensor);
      values[node.outputs.at(0)] = runtime.op->forward(node_inputs, weights);
    } else {
      values[node.outputs.at(0)] = runtime.op->forward(node_inputs, runtime.weights);
    }
    hooked(node.outputs.at(0));
  }
  return values;
}

std::vector<torch::Tensor> GraphModule::forward(const std::vector<torch::Tensor>& inputs) {
  const auto values = forward_values(inputs);
  std::vector<torch::Tensor> outputs;
  for (const auto& output : graph_.outputs) outputs.push_back(values.at(output.name));
  return outputs;
}

torch::Tensor GraphModule::forward(const torch::Tensor& input) {
  if (graph_.outputs.size() != 1) throw GraphError("the graph has " + std::to_string(graph_.outputs.size()) + " outputs");
  return forward(std::vector<torch::Tensor>{input}).front();
}

Graph GraphModule::to_graph() const {
  Graph graph = graph_;
  for (size_t index = 0; index < nodes_.size(); ++index) {
    for (const auto& [name, tensor] : nodes_[index].weights) graph.nodes[index].weights[name] = lowering::from_torch(tensor);
  }
  return graph;
}

}  // namespace gos::graph
