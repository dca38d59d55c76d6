// Calibration and the fake-quantized reference, both run by libtorch through the graph module.
#include <torch/torch.h>

#include <algorithm>

#include "graph/torch_module.h"
#include "lowering/torch_lowering.h"
#include "quant/fake_quant.h"
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

// Every floating value's range over the batches, widened batch by batch.
void record_ranges(const std::map<std::string, torch::Tensor>& values, Calibration& calibration) {
  for (const auto& [name, tensor] : values) {
    if (!tensor.is_floating_point() || tensor.numel() == 0) continue;
    const auto low = tensor.min().item<float>(), high = tensor.max().item<float>();
    auto [found, fresh] = calibration.ranges.try_emplace(name, Range{low, high});
    if (!fresh) found->second = {std::min(found->second.min, low), std::max(found->second.max, high)};
  }
}

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
    record_ranges(module->forward_values({rows(all, begin, std::min(all.size(0), begin + batch))}), calibration);
  }
  return calibration;
}

Calibration calibrate_inputs(const graph::Graph& graph, const std::vector<ir::Tensor>& inputs) {
  if (inputs.size() != graph.inputs.size() || inputs.empty()) {
    throw QuantError("calibration needs one batch per model input (" + std::to_string(graph.inputs.size()) + "), got " +
                     std::to_string(inputs.size()));
  }
  torch::NoGradGuard no_grad;
  auto module = std::make_shared<graph::GraphModule>(graph);
  module->eval();
  std::vector<torch::Tensor> tensors;
  for (const auto& input : inputs) tensors.push_back(lowering::to_torch(input));
  Calibration calibration;
  calibration.images = tensors[0].size(0);
  record_ranges(module->forward_values(tensors), calibration);
  return calibration;
}

ir::Tensor fake_quantized_forward(const graph::Graph& graph, const QuantPlan& plan, const ir::Tensor& input) {
  return fake_quantized_outputs(graph, plan, input);
}

}  // namespace gos::quant
