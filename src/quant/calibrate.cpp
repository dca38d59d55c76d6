// Calibration and the fake-quantized reference, both run by libtorch through the graph module.
#include <torch/torch.h>

#include <algorithm>

#include "graph/torch_module.h"
#include "lowering/torch_lowering.h"
#include "quant/quant.h"
#include "quant/weight_axes.h"

namespace gos::quant {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text + "]";
}

// The images must be what the graph's only input reads, after the batch.
void check_fits(const graph::Graph& graph, const ir::Tensor& images) {
  if (graph.inputs.size() != 1) {
    throw QuantError("the model has " + std::to_string(graph.inputs.size()) + " inputs; gos quantizes models with one");
  }
  const auto& expected = graph.inputs[0].shape;
  const bool fits = images.shape.size() == expected.size() && !images.shape.empty() &&
                    std::equal(images.shape.begin() + 1, images.shape.end(), expected.begin() + 1);
  if (!fits) {
    auto given = images.shape;
    if (!given.empty()) given[0] = 1;
    throw QuantError("the calibration data is " + shape_text(given) + " per sample but the model reads " + shape_text(expected) +
                     "; give data the model was trained on (--data)");
  }
  if (images.shape[0] == 0) throw QuantError("no calibration images: the data's training split is empty");
}

torch::Tensor rows(const torch::Tensor& all, int64_t begin, int64_t end) { return all.slice(0, begin, end); }

}  // namespace

Calibration calibrate(const graph::Graph& graph, const ir::Tensor& images, int64_t batch) {
  check_fits(graph, images);
  torch::NoGradGuard no_grad;
  auto module = std::make_shared<graph::GraphModule>(graph);
  module->eval();
  const torch::Tensor all = lowering::to_torch(images);
  Calibration calibration;
  calibration.images = all.size(0);
  for (int64_t begin = 0; begin < all.size(0); begin += batch) {
    const auto values = module->forward_values({rows(all, begin, std::min(all.size(0), begin + batch))});
    for (const auto& [name, tensor] : values) {
      if (!tensor.is_floating_point() || tensor.numel() == 0) continue;
      const auto low = tensor.min().item<float>(), high = tensor.max().item<float>();
      auto [found, fresh] = calibration.ranges.try_emplace(name, Range{low, high});
      if (!fresh) found->second = {std::min(found->second.min, low), std::max(found->second.max, high)};
    }
  }
  return calibration;
}

ir::Tensor fake_quantized_forward(const graph::Graph& graph, const QuantPlan& plan, const ir::Tensor& input) {
  graph::Graph rounded = graph;
  std::map<std::string, bool> int8;
  for (const auto& node : plan.nodes) int8[node.node] = node.int8;
  for (auto& node : rounded.nodes) {
    if (node.is_compute() && int8[node.name]) node.weights = int8_rounded_weights(*node.op, std::move(node.weights));
  }
  torch::NoGradGuard no_grad;
  auto module = std::make_shared<graph::GraphModule>(rounded);
  module->eval();
  module->set_value_hook([&plan](const std::string& value, const torch::Tensor& tensor) {
    auto found = plan.activations.find(value);
    if (found == plan.activations.end()) return tensor;
    return torch::fake_quantize_per_tensor_affine(tensor, found->second.scale, found->second.zero_point, 0, 255);
  });
  return lowering::from_torch(module->forward(lowering::to_torch(input)));
}

}  // namespace gos::quant
