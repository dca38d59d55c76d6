// Which channels a narrowed group keeps (by weight norm, or by what each contributes to the
// consumers' outputs on recorded inputs) and the consumers' weights refitted by least squares.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graph/torch_module.h"
#include "ir/ops.h"
#include "lowering/torch_lowering.h"
#include "narrow/narrow.h"
#include "util/interrupt.h"

namespace gos::narrow {

namespace {

using graph::Graph;
using graph::Node;
using Params = std::map<std::string, torch::Tensor>;

const Node& node_named(const Graph& graph, const std::string& name) {
  const Node* node = graph.find_node(name);
  if (!node) throw graph::GraphError("the group names " + name + ", which the graph does not have");
  return *node;
}

// The node's op axes the group narrows, every linked axis included.
std::vector<ir::TensorAxis> group_axes(const ChannelGroup& group, const Node& node) {
  std::vector<ir::TensorAxis> axes;
  for (const auto& [name, start] : group.narrowed) {
    if (name != node.name) continue;
    for (const auto& axis : ir::linked_axes(*node.op, start)) axes.push_back(axis);
  }
  return axes;
}

// Every value of the graph on `samples`.
std::map<std::string, torch::Tensor> record(const Graph& graph, const std::vector<ir::Tensor>& samples) {
  torch::NoGradGuard no_grad;
  graph::GraphModule module(graph);
  module.eval();
  std::vector<torch::Tensor> inputs;
  for (const auto& sample : samples) inputs.push_back(lowering::to_torch(sample));
  return module.forward_values(inputs);
}

// A compute node's operator before its activation (where it is affine in its weights: what least
// squares fits), with its inputs as recorded (by op tensor name).
struct Consumer {
  const Node* node;
  lowering::TorchOp op;
  std::vector<std::string> input_names;  // the op's inputs in signature order
  Params inputs;
  Params weights;

  Consumer(const Graph& graph, const Node& n, const std::map<std::string, torch::Tensor>& values)
      : node(&n), op(ir::without_activation(*n.op)) {
    const auto declared = n.op->tensors_with_role(ir::Role::Input);
    for (size_t i = 0; i < declared.size(); ++i) {
      input_names.push_back(declared[i].name);
      auto found = values.find(n.inputs.at(i));
      inputs[declared[i].name] = found != values.end() ? found->second : lowering::to_torch(graph.constants.at(n.inputs.at(i)));
    }
    for (const auto& [name, weight] : n.weights) weights[name] = lowering::to_torch(weight);
  }

  torch::Tensor forward(const Params& with_inputs, const Params& params) const {
    std::vector<torch::Tensor> ordered;
    for (const auto& name : input_names) ordered.push_back(with_inputs.at(name));
    return op.forward(ordered, params);
  }
};

double squared_norm(const Params& params) {
  double sum = 0;
  for (const auto& [name, tensor] : params) sum += tensor.pow(2).sum().item<double>();
  return sum;
}

// The transposed Jacobian of `f` (affine in the params) applied to `residual`.
Params transposed_jacobian(const Consumer& consumer, const Params& inputs, const Params& at, const torch::Tensor& residual) {
  Params params;
  std::vector<torch::Tensor> leaves;
  for (const auto& [name, tensor] : at) leaves.push_back(params[name] = tensor.detach().clone().set_requires_grad(true));
  torch::Tensor output = consumer.forward(inputs, params);
  const auto grads = torch::autograd::grad({output}, leaves, {residual}, false, false, true);
  Params result;
  size_t i = 0;
  for (const auto& [name, tensor] : at) {
    result[name] = grads[i].defined() ? grads[i] : torch::zeros_like(tensor);
    ++i;
  }
  return result;
}

// Least squares by conjugate gradients on the normal equations (CGLS): exact for an operator
// affine in its params, in as many steps as it has params, close in far fewer. Starts from `params`
// and returns the best params seen.
Params least_squares(const Consumer& consumer, const Params& inputs, Params params, const torch::Tensor& target, int iterations) {
  torch::NoGradGuard outer_no_grad;
  torch::Tensor fitted = consumer.forward(inputs, params);
  torch::Tensor residual = target - fitted;
  Params gradient;
  {
    torch::AutoGradMode enable(true);
    gradient = transposed_jacobian(consumer, inputs, params, residual);
  }
  Params direction = gradient;
  double gamma = squared_norm(gradient);
  const double first_gamma = gamma;
  for (int iteration = 0; iteration < iterations && gamma > 1e-12 * first_gamma && gamma > 0; ++iteration) {
    util::stop_if_interrupted();
    Params stepped;
    for (const auto& [name, tensor] : params) stepped[name] = tensor + direction.at(name);
    const torch::Tensor change = consumer.forward(inputs, stepped) - fitted;
    const double change_norm = change.pow(2).sum().item<double>();
    if (!(change_norm > 0)) break;
    const double alpha = gamma / change_norm;
    for (auto& [name, tensor] : params) tensor = tensor + alpha * direction.at(name);
    fitted = fitted + alpha * change;
    residual = residual - alpha * change;
    {
      torch::AutoGradMode enable(true);
      gradient = transposed_jacobian(consumer, inputs, params, residual);
    }
    const double next_gamma = squared_norm(gradient);
    for (auto& [name, tensor] : direction) tensor = gradient.at(name) + (next_gamma / gamma) * tensor;
    gamma = next_gamma;
  }
  return params;
}

// The consumer's recorded inputs along the group's axes keeping `kept`.
Params narrowed_inputs(const Consumer& consumer, const std::vector<ir::TensorAxis>& axes, const std::vector<int64_t>& kept) {
  Params inputs = consumer.inputs;
  const torch::Tensor index = torch::tensor(kept, torch::kLong);
  for (const auto& axis : axes) {
    auto found = inputs.find(axis.tensor);
    if (found != inputs.end()) found->second = found->second.index_select(axis.axis, index);
  }
  return inputs;
}

torch::Tensor outputs_of(const Graph& graph, const ir::Tensor& batch) {
  torch::NoGradGuard no_grad;
  graph::GraphModule module(graph);
  module.eval();
  return module.forward(lowering::to_torch(batch));
}

}  // namespace

OutputError::OutputError(const Graph& original, ir::Tensor batch) : batch_(std::move(batch)) {
  const torch::Tensor expected = outputs_of(original, batch_);
  expected_ = lowering::from_torch(expected);
  expected_norm_ = std::max(expected.norm().item<double>(), 1e-30);
}

double OutputError::operator()(const Graph& changed) const {
  torch::NoGradGuard no_grad;
  return (outputs_of(changed, batch_) - lowering::to_torch(expected_)).norm().item<double>() / expected_norm_;
}

std::vector<double> weight_norms(const Graph& graph, const ChannelGroup& group) {
  std::vector<double> norms(group.extent, 0.0);
  for (const auto& name : group.producers) {
    const Node& node = node_named(graph, name);
    for (const auto& axis : group_axes(group, node)) {
      if (node.op->tensor(axis.tensor).role != ir::Role::Param) continue;
      const ir::Tensor& weight = node.weights.at(axis.tensor);
      int64_t inner = 1;
      for (size_t d = axis.axis + 1; d < weight.shape.size(); ++d) inner *= weight.shape[d];
      for (int64_t i = 0; i < weight.elements(); ++i) norms[(i / inner) % weight.shape[axis.axis]] += std::abs(weight.data[i]);
    }
  }
  return norms;
}

std::vector<double> channel_importance(const Graph& graph, const ChannelGroup& group, const std::vector<ir::Tensor>& samples) {
  if (group.consumers.empty()) return weight_norms(graph, group);
  torch::NoGradGuard no_grad;
  const auto values = record(graph, samples);
  std::vector<double> importance(group.extent, 0.0);
  for (const auto& name : group.consumers) {
    util::stop_if_interrupted();
    const Consumer consumer(graph, node_named(graph, name), values);
    std::vector<ir::TensorAxis> input_axes;
    for (const auto& axis : group_axes(group, *consumer.node)) {
      if (consumer.inputs.count(axis.tensor)) input_axes.push_back(axis);
    }
    // With every channel of the group zeroed the output is what the other inputs and the bias make;
    // each channel alone adds its part to that.
    Params zeroed = consumer.inputs;
    for (const auto& axis : input_axes) zeroed[axis.tensor] = torch::zeros_like(consumer.inputs.at(axis.tensor));
    const torch::Tensor rest = consumer.forward(zeroed, consumer.weights);
    const double total = std::max((consumer.forward(consumer.inputs, consumer.weights) - rest).pow(2).sum().item<double>(), 1e-30);
    for (int64_t channel = 0; channel < group.extent; ++channel) {
      Params alone = zeroed;
      for (const auto& axis : input_axes) {
        const torch::Tensor& input = consumer.inputs.at(axis.tensor);
        torch::Tensor one = torch::zeros_like(input);
        one.select(axis.axis, channel).copy_(input.select(axis.axis, channel));
        alone[axis.tensor] = one;
      }
      importance[channel] += (consumer.forward(alone, consumer.weights) - rest).pow(2).sum().item<double>() / total;
    }
  }
  return importance;
}

std::vector<int64_t> strongest(const std::vector<double>& scores, int64_t count) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  count = std::clamp<int64_t>(count, 0, static_cast<int64_t>(scores.size()));
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  order.resize(count);
  std::sort(order.begin(), order.end());
  return order;
}

Refitted narrow_and_refit(const Graph& graph, const ChannelGroup& group, const std::vector<int64_t>& kept,
                          const std::vector<ir::Tensor>& samples) {
  Refitted result{narrow_group(graph, group, kept)};
  if (group.consumers.empty()) return result;
  torch::NoGradGuard no_grad;
  const auto values = record(graph, samples);
  double target_energy = 0, sliced_energy = 0, refit_energy = 0;
  for (const auto& name : group.consumers) {
    const Consumer original(graph, node_named(graph, name), values);
    const torch::Tensor target = original.forward(original.inputs, original.weights);
    Node& narrowed_node = *std::find_if(result.graph.nodes.begin(), result.graph.nodes.end(), [&](const Node& n) { return n.name == name; });
    const Consumer narrowed(result.graph, narrowed_node, values);
    const Params inputs = narrowed_inputs(original, group_axes(group, *original.node), kept);
    const double sliced = (narrowed.forward(inputs, narrowed.weights) - target).pow(2).sum().item<double>();
    const Params fitted = least_squares(narrowed, inputs, narrowed.weights, target, 40);
    const double refit = (narrowed.forward(inputs, fitted) - target).pow(2).sum().item<double>();
    target_energy += target.pow(2).sum().item<double>();
    sliced_energy += sliced;
    if (refit < sliced) {
      refit_energy += refit;
      for (const auto& [weight, tensor] : fitted) narrowed_node.weights.at(weight) = lowering::from_torch(tensor);
    } else {
      refit_energy += sliced;
    }
  }
  target_energy = std::max(target_energy, 1e-30);
  result.sliced_error = std::sqrt(sliced_energy / target_energy);
  result.refit_error = std::sqrt(refit_energy / target_energy);
  return result;
}

}  // namespace gos::narrow
