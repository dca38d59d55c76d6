#pragma once
// The graph as a trainable libtorch module: compute nodes run through lowering::TorchOp
// (recognised kernels, the generic lowering elsewhere), structural nodes through libtorch calls
// with ONNX semantics (structural_torch.h). Runs at any batch size (graph.h: nominal batch 1).
//
// Learned tensors are registered per node in a child module named after the node (characters
// other than [A-Za-z0-9_] become '_'), so named_parameters() lists "<node>.<param>": every compute
// node's params, and BatchNormalization / LayerNormalization "scale" and "B". BatchNormalization's
// "mean" and "var" are buffers: train() normalises with batch statistics and updates them (torch
// momentum = 1 - ONNX momentum, 0.1 by default); eval() normalises with them. Constants that
// structural nodes read as tensors are buffers of the child "constants".
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "lowering/torch_lowering.h"

namespace gos::graph {

class GraphModule : public torch::nn::Module {
 public:
  explicit GraphModule(Graph graph);

  // Graph inputs in order -> graph outputs in order. Throws GraphError on a wrong input count.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& inputs);
  // A graph with one input and one output.
  torch::Tensor forward(const torch::Tensor& input);
  // Every value the graph computes (its inputs too), by value name: what recording a node's
  // inputs and outputs on real data reads.
  std::map<std::string, torch::Tensor> forward_values(const std::vector<torch::Tensor>& inputs);

  // A copy of the graph holding the module's current weights and running statistics.
  Graph to_graph() const;

  // Applied to every value as it is produced (graph inputs too), before any node reads it, by
  // value name: what fake quantization rounds (quant/quant.h). Empty: values pass unchanged.
  using ValueHook = std::function<torch::Tensor(const std::string& value, const torch::Tensor& tensor)>;
  void set_value_hook(ValueHook hook) { value_hook_ = std::move(hook); }
  // Applied to a compute node's learned tensors each time the node runs, by node and weight name
  // (the registered parameters stay as they are and receive the gradients through it): what
  // quantization-aware training rounds. Empty: weights pass unchanged.
  using WeightHook = std::function<torch::Tensor(const std::string& node, const std::string& weight, const torch::Tensor& tensor)>;
  void set_weight_hook(WeightHook hook) { weight_hook_ = std::move(hook); }

 private:
  struct NodeRuntime {
    std::optional<lowering::TorchOp> op;          // compute nodes
    std::vector<lowering::TorchCall> calls;       // structural nodes
    std::map<std::string, torch::Tensor> weights;  // registered parameters and buffers, by weight name
  };

  void register_node_weights(const Node& node, NodeRuntime& runtime, const std::string& module_name);
  void register_constants();
  void run_structural(const NodeRuntime& runtime, std::map<std::string, torch::Tensor>& values) const;

  Graph graph_;
  std::vector<NodeRuntime> nodes_;
  std::map<std::string, torch::Tensor> constants_;
  ValueHook value_hook_;
  WeightHook weight_hook_;
};

}  // namespace gos::graph
