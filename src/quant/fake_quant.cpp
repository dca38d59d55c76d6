// Fake quantization in the graph module: evaluation at the plan's scales, and quantization-aware
// training with observed ranges and straight-through gradients.
#include "quant/fake_quant.h"

#include <torch/torch.h>

#include <memory>

#include "lowering/torch_lowering.h"
#include "quant/weight_axes.h"

namespace gos::quant {

namespace {

// A weight rounded to its int8 grid along `axis` (-1: one scale) at its current largest
// magnitude; libtorch's fake quantization passes the gradient straight through.
torch::Tensor fake_quantized_weight(const torch::Tensor& weight, int64_t axis) {
  if (axis < 0) {
    float scale = weight.detach().abs().max().item<float>() / 127.0f;
    if (!(scale > 0)) scale = 1;
    return torch::fake_quantize_per_tensor_affine(weight, scale, 0, -127, 127);
  }
  std::vector<int64_t> others;
  for (int64_t d = 0; d < weight.dim(); ++d) {
    if (d != axis) others.push_back(d);
  }
  auto scales = weight.detach().abs().amax(others) / 127.0;
  scales = torch::where(scales > 0, scales, torch::ones_like(scales)).to(torch::kFloat);
  const auto zero_points = torch::zeros({scales.size(0)}, torch::kInt);
  return torch::fake_quantize_per_channel_affine(weight, scales, zero_points, axis, -127, 127);
}

// Each value's range, as the observers follow it during training.
struct Observers {
  std::map<std::string, Range> ranges;
  float momentum = 0.01f;
};

}  // namespace

void fake_quantize(graph::GraphModule& module, const graph::Graph& form, const QuantPlan& plan, bool observe) {
  std::map<std::string, bool> int8;
  for (const auto& node : plan.nodes) int8[node.node] = node.int8;
  auto axes = std::make_shared<std::map<std::string, std::map<std::string, int64_t>>>();
  for (const auto& node : form.nodes) {
    if (!node.is_compute() || !int8[node.name]) continue;
    for (const auto& weight : int8_weight_axes(*node.op)) (*axes)[node.name][weight.param] = weight.axis;
  }
  module.set_weight_hook([axes](const std::string& node, const std::string& weight, const torch::Tensor& tensor) {
    auto found = axes->find(node);
    if (found == axes->end()) return tensor;
    auto axis = found->second.find(weight);
    return axis == found->second.end() ? tensor : fake_quantized_weight(tensor, axis->second);
  });
  auto observers = std::make_shared<Observers>();
  for (const auto& [value, quant] : plan.activations) {
    // The plan's grid as a range: what the observers start from.
    const float low = -quant.scale * static_cast<float>(quant.zero_point);
    observers->ranges[value] = {low, low + 255 * quant.scale};
  }
  module.set_value_hook([observers, observe](const std::string& value, const torch::Tensor& tensor) {
    auto found = observers->ranges.find(value);
    if (found == observers->ranges.end()) return tensor;
    Range& range = found->second;
    if (observe && torch::GradMode::is_enabled()) {
      const auto [low, high] = torch::aminmax(tensor.detach());
      const float m = observers->momentum;
      range.min = (1 - m) * range.min + m * low.item<float>();
      range.max = (1 - m) * range.max + m * high.item<float>();
    }
    const ActivationQuant quant = uint8_quantization(range);
    return torch::fake_quantize_per_tensor_affine(tensor, quant.scale, quant.zero_point, 0, 255);
  });
}

ir::Tensor fake_quantized_outputs(const graph::Graph& form, const QuantPlan& plan, const ir::Tensor& inputs, int64_t batch) {
  graph::Graph rounded = form;
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
  const torch::Tensor all = lowering::to_torch(inputs);
  std::vector<torch::Tensor> outputs;
  for (int64_t begin = 0; begin < all.size(0); begin += batch) {
    outputs.push_back(module->forward(all.slice(0, begin, std::min(all.size(0), begin + batch))));
  }
  return lowering::from_torch(torch::cat(outputs));
}

}  // namespace gos::quant
