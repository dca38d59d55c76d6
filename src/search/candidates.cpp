// Candidate scoring by libtorch on recorded operator inputs (see candidates.h).
#include "search/candidates.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "graph/torch_module.h"
#include "lowering/torch_lowering.h"
#include "util/interrupt.h"

namespace gos::search {

namespace {

bool has_candidates(const graph::Node& node) { return node.is_compute() && rules::why_not_searchable(*node.op).empty(); }

std::string compute_node_list(const graph::Graph& graph) {
  std::string list;
  for (const auto& node : graph.nodes) {
    if (has_candidates(node)) list += (list.empty() ? "" : ", ") + node.name;
  }
  return list.empty() ? "(none)" : list;
}

std::map<std::string, torch::Tensor> torch_weights(const ir::TensorMap& weights) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, tensor] : weights) tensors[name] = lowering::to_torch(tensor);
  return tensors;
}

// The node named `name`; else the one node whose name starts with it, preferring the one with
// candidates (a zoo block's "conv1" prefix also names its activation node).
const graph::Node* match_node(const graph::Graph& graph, const std::string& name, std::vector<const graph::Node*>& matches) {
  if (const graph::Node* exact = graph.find_node(name)) return exact;
  for (const auto& node : graph.nodes) {
    if (node.name.starts_with(name)) matches.push_back(&node);
  }
  if (matches.size() == 1) return matches[0];
  std::vector<const graph::Node*> searchable;
  std::copy_if(matches.begin(), matches.end(), std::back_inserter(searchable), [](const graph::Node* n) { return has_candidates(*n); });
  return searchable.size() == 1 ? searchable[0] : nullptr;
}

}  // namespace

const graph::Node& searchable_node(const graph::Graph& graph, const std::string& name) {
  std::vector<const graph::Node*> matches;
  const graph::Node* found = match_node(graph, name, matches);
  if (!found) {
    std::string which = "no operator is named '" + name + "'";
    if (!matches.empty()) {
      which = "'" + name + "' names " + std::to_string(matches.size()) + " operators";
    }
    throw SearchError(which + "; the operators with candidates are: " + compute_node_list(graph));
  }
  if (!found->is_compute()) {
    throw SearchError("'" + found->name + "' is a " + found->op_type +
                      " node, which moves data but has no instructions to rewrite; the operators with candidates are: " +
                      compute_node_list(graph));
  }
  if (std::string reason = rules::why_not_searchable(*found->op); !reason.empty()) {
    throw SearchError("'" + found->name + "' (" + found->op_type + ") has no candidates: " + reason);
  }
  return *found;
}

std::vector<ir::Tensor> record_node_inputs(const graph::Graph& graph, const graph::Node& node,
                                           const std::vector<ir::Tensor>& model_inputs) {
  // The forward pass keeps every value of the graph: a few samples at a time, so that memory
  // holds one chunk's activations (at 224x224, ResNet-18's are tens of megabytes a sample).
  constexpr int64_t kSamplesPerPass = 16;
  torch::NoGradGuard no_grad;
  graph::GraphModule module(graph);
  module.eval();
  std::vector<torch::Tensor> whole;
  for (const auto& input : model_inputs) whole.push_back(lowering::to_torch(input));
  const int64_t samples = whole.empty() ? 0 : whole.front().size(0);
  std::vector<std::vector<torch::Tensor>> chunks(node.inputs.size());
  for (int64_t begin = 0; begin < samples; begin += kSamplesPerPass) {
    std::vector<torch::Tensor> inputs;
    for (const auto& input : whole) inputs.push_back(input.narrow(0, begin, std::min(kSamplesPerPass, samples - begin)));
    const auto values = module.forward_values(inputs);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      // Cloned: a value may be a view that would keep a larger tensor of this pass alive.
      if (auto found = values.find(node.inputs[i]); found != values.end()) chunks[i].push_back(found->second.clone());
    }
  }
  std::vector<ir::Tensor> recorded;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    recorded.push_back(chunks[i].empty() ? graph.constants.at(node.inputs[i]) : lowering::from_torch(torch::cat(chunks[i])));
  }
  return recorded;
}

int64_t samples_to_record(const graph::Graph& graph, const graph::Node& node, int64_t available, int64_t max_bytes,
                          int64_t min_samples) {
  int64_t bytes_per_sample = 0;
  for (const auto& input : node.inputs) {
    if (graph.constants.contains(input)) continue;
    const auto& shape = graph.shape_of(input);
    int64_t elements = 1;
    for (size_t d = 1; d < shape.size(); ++d) elements *= shape[d];
    bytes_per_sample += elements * static_cast<int64_t>(sizeof(float));
  }
  return std::clamp<int64_t>(max_bytes / std::max<int64_t>(bytes_per_sample, 1), std::min(min_samples, available), available);
}

namespace {

std::vector<torch::Tensor> torch_inputs(const std::vector<ir::Tensor>& inputs) {
  std::vector<torch::Tensor> tensors;
  for (const auto& input : inputs) tensors.push_back(lowering::to_torch(input));
  return tensors;
}

// How many samples an operator's forward pass takes at once, so that what it holds
// (TorchOp::bytes_per_sample) stays within `max_bytes`: on 224x224 images a candidate of the first
// 7x7 convolution can hold over 150 MB a sample, and autograd keeps it for the backward pass.
// At 28x28 the zoo's operators reach no bound.
int64_t samples_within(const lowering::TorchOp& op, int64_t max_bytes) {
  return std::max<int64_t>(1, max_bytes / std::max<int64_t>(1, op.bytes_per_sample()));
}
constexpr int64_t kForwardBytes = DistillOptions{}.max_pass_bytes;

// The samples [begin, begin + count) of every input.
std::vector<torch::Tensor> rows_of(const std::vector<torch::Tensor>& inputs, int64_t begin, int64_t count) {
  std::vector<torch::Tensor> rows;
  for (const auto& input : inputs) rows.push_back(input.narrow(0, begin, count));
  return rows;
}

// The operator's outputs for every sample, `chunk` samples per forward pass.
torch::Tensor forward_in_chunks(const lowering::TorchOp& op, const std::vector<torch::Tensor>& inputs,
                                const std::map<std::string, torch::Tensor>& params, int64_t chunk) {
  torch::NoGradGuard no_grad;
  const int64_t count = inputs.at(0).size(0);
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < count; begin += chunk) parts.push_back(op.forward(rows_of(inputs, begin, std::min(chunk, count - begin)), params));
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

double relative_error(const lowering::TorchOp& op, const std::vector<torch::Tensor>& inputs,
                      const std::map<std::string, torch::Tensor>& params, const torch::Tensor& reference,
                      int64_t max_bytes = kForwardBytes) {
  torch::NoGradGuard no_grad;
  const int64_t count = inputs.at(0).size(0), chunk = samples_within(op, max_bytes);
  if (chunk >= count) return (op.forward(inputs, params) - reference).norm().item<double>() / std::max(reference.norm().item<double>(), 1e-30);
  double squared_error = 0;
  for (int64_t begin = 0; begin < count; begin += chunk) {
    const int64_t rows = std::min(chunk, count - begin);
    squared_error += (op.forward(rows_of(inputs, begin, rows), params) - reference.narrow(0, begin, rows)).pow(2).sum().item<double>();
  }
  return std::sqrt(squared_error) / std::max(reference.norm().item<double>(), 1e-30);
}

}  // namespace

std::vector<ScoredCandidate> score_candidates(const rules::Candidate& original,
                                              const std::vector<rules::Candidate>& candidates,
                                              const std::vector<ir::Tensor>& inputs,
                                              const std::function<void(size_t, size_t)>& on_progress) {
  const auto tensors = torch_inputs(inputs);
  const lowering::TorchOp reference_op(original.op);
  const torch::Tensor reference =
      forward_in_chunks(reference_op, tensors, torch_weights(original.weights), samples_within(reference_op, kForwardBytes));
  std::vector<ScoredCandidate> scored;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& candidate = candidates[i];
    const double error = relative_error(lowering::TorchOp(candidate.op), tensors, torch_weights(candidate.weights), reference);
    scored.push_back({candidate, ir::cost(candidate.op), error});
    if (on_progress) on_progress(i + 1, candidates.size());
  }
  return scored;
}


Distilled distill_candidate(const rules::Candidate& original, const rules::Candidate& candidate,
                            const std::vector<ir::Tensor>& train_inputs, const std::vector<ir::Tensor>& held_out_inputs,
                            const DistillOptions& options) {
  if (train_inputs.empty() || held_out_inputs.empty()) throw SearchError("distillation needs recorded inputs");
  const lowering::TorchOp teacher(original.op), student(candidate.op);
  const auto train = torch_inputs(train_inputs), held_out = torch_inputs(held_out_inputs);
  torch::Tensor train_target, held_out_target;
  {
    const int64_t chunk = samples_within(teacher, options.max_pass_bytes);
    train_target = forward_in_chunks(teacher, train, torch_weights(original.weights), chunk);
    held_out_target = forward_in_chunks(teacher, held_out, torch_weights(original.weights), chunk);
  }
  std::map<std::string, torch::Tensor> params = torch_weights(candidate.weights);
  std::vector<torch::Tensor> learned;
  for (auto& [name, tensor] : params) learned.push_back(tensor.set_requires_grad(true));
  Distilled result;
  result.error_before = relative_error(student, held_out, params, held_out_target, options.max_pass_bytes);
  const int64_t count = train[0].size(0);
  const double target_power = train_target.pow(2).mean().item<double>() + 1e-12;
  const int64_t batch_within = samples_within(student, options.max_pass_bytes);
  torch::optim::Adam optimizer(learned, torch::optim::AdamOptions(options.learning_rate));
  torch::Generator generator = at::detail::createCPUGenerator(options.seed);
  for (int step = 0; step < options.steps && !learned.empty(); ++step) {
    util::stop_if_interrupted();  // a distillation takes seconds; a stopped one is redone
    torch::Tensor rows = torch::randint(count, {std::min({options.batch, count, batch_within})}, generator, torch::kLong);
    std::vector<torch::Tensor> batch;
    for (const auto& input : train) batch.push_back(input.index_select(0, rows));
    torch::Tensor loss = (student.forward(batch, params) - train_target.index_select(0, rows)).pow(2).mean() / target_power;
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  result.error_after = relative_error(student, held_out, params, held_out_target, options.max_pass_bytes);
  for (const auto& [name, tensor] : params) result.weights[name] = lowering::from_torch(tensor.detach());
  return result;
}

std::vector<size_t> pareto_front(const std::vector<ScoredCandidate>& scored) {
  std::vector<size_t> order(scored.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (scored[a].cost.macs != scored[b].cost.macs) return scored[a].cost.macs < scored[b].cost.macs;
    return scored[a].init_rel_error < scored[b].init_rel_error;
  });
  std::vector<size_t> front;
  double best_error = INFINITY;
  for (size_t index : order) {
    if (scored[index].init_rel_error < best_error) {
      front.push_back(index);
      best_error = scored[index].init_rel_error;
    }
  }
  return front;
}

}  // namespace gos::search
