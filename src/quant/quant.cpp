// Quantization parameters and the plan: which values are rounded to uint8 and which compute nodes
// run integer kernels.
#include "quant/quant.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "lowering/kernels.h"
#include "quant/weight_axes.h"

namespace gos::quant {

ActivationQuant uint8_quantization(Range range) {
  const float low = std::min(0.0f, range.min), high = std::max(0.0f, range.max);
  float scale = (high - low) / 255.0f;
  if (!(scale > 0) || !std::isfinite(scale)) scale = 1.0f / 255.0f;
  const auto zero_point = static_cast<int32_t>(std::lround(-low / scale));
  return {scale, std::clamp<int32_t>(zero_point, 0, 255)};
}

namespace {

// Which slice along `axis` each flat position of a tensor of `shape` is in (axis -1: all in one).
class ChannelOf {
 public:
  ChannelOf(const std::vector<int64_t>& shape, int64_t axis) {
    if (axis < 0) return;
    if (axis >= static_cast<int64_t>(shape.size())) {
      throw QuantError("a weight of rank " + std::to_string(shape.size()) + " has no axis " + std::to_string(axis));
    }
    channels_ = shape[static_cast<size_t>(axis)];
    for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) inner_ *= shape[d];
  }
  int64_t channels() const { return channels_; }
  size_t operator()(size_t flat) const { return static_cast<size_t>((static_cast<int64_t>(flat) / inner_) % channels_); }

 private:
  int64_t channels_ = 1, inner_ = 1;
};

}  // namespace

WeightQuant int8_per_channel(const ir::Tensor& weight, int64_t axis) {
  const ChannelOf channel_of(weight.shape, axis);
  WeightQuant quant;
  quant.axis = axis;
  std::vector<float> largest(static_cast<size_t>(channel_of.channels()), 0.0f);
  for (size_t i = 0; i < weight.data.size(); ++i) largest[channel_of(i)] = std::max(largest[channel_of(i)], std::fabs(weight.data[i]));
  for (float value : largest) quant.scales.push_back(value > 0 ? value / 127.0f : 1.0f);
  quant.values.resize(weight.data.size());
  for (size_t i = 0; i < weight.data.size(); ++i) {
    const float q = std::nearbyint(weight.data[i] / quant.scales[channel_of(i)]);
    quant.values[i] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
  }
  return quant;
}

ir::Tensor int8_rounded(const ir::Tensor& weight, int64_t axis) {
  const WeightQuant quant = int8_per_channel(weight, axis);
  const ChannelOf channel_of(weight.shape, axis);
  ir::Tensor rounded = weight;
  for (size_t i = 0; i < rounded.data.size(); ++i) rounded.data[i] = static_cast<float>(quant.values[i]) * quant.scales[channel_of(i)];
  return rounded;
}

int QuantPlan::int8_nodes() const {
  return static_cast<int>(std::count_if(nodes.begin(), nodes.end(), [](const NodePrecision& node) { return node.int8; }));
}

namespace {
constexpr const char* kPrecisionAttribute = "gos.precision";
}  // namespace

void keep_in_fp32(graph::Node& node) { node.attributes[kPrecisionAttribute] = std::string("fp32"); }

bool kept_in_fp32(const graph::Node& node) {
  const auto found = node.attributes.find(kPrecisionAttribute);
  return found != node.attributes.end() && std::get_if<std::string>(&found->second) && std::get<std::string>(found->second) == "fp32";
}

QuantPlan plan_quantization(const graph::Graph& graph, const Calibration& calibration, bool quantize_outputs) {
  QuantPlan plan;
  plan.calibration_images = calibration.images;
  std::set<std::string> int8_node_values;  // values an int8 compute node reads or writes
  for (const auto& node : graph.nodes) {
    if (!node.is_compute()) continue;
    NodePrecision precision{.node = node.name, .op_type = node.op_type};
    precision.why_fp32 = kept_in_fp32(node) ? "kept in fp32 by the search (mixed precision)" : why_not_int8(*node.op);
    precision.int8 = precision.why_fp32.empty();
    if (precision.int8) {
      int8_node_values.insert(node.inputs.begin(), node.inputs.end());
      int8_node_values.insert(node.outputs.begin(), node.outputs.end());
    }
    plan.nodes.push_back(std::move(precision));
  }
  // A structural node (Flatten, Reshape, Concat, ...) between int8 nodes passes their values on:
  // its output is quantized when an int8 node reads it, its inputs when they come from one.
  std::set<std::string> outputs;
  for (const auto& output : graph.outputs) outputs.insert(output.name);
  const auto readers = graph::reader_counts(graph);
  for (const auto& [value, range] : calibration.ranges) {
    if (graph.constants.count(value) || !int8_node_values.count(value)) continue;
    if (outputs.count(value)) {
      if (!quantize_outputs) continue;
    } else if (auto read = readers.find(value); read == readers.end() || read->second == 0) {
      continue;
    }
    plan.activations[value] = uint8_quantization(range);
  }
  return plan;
}

graph::Graph quantizable_form(const graph::Graph& graph) {
  graph::Graph folded = graph::fold_batch_norms(graph);
  graph::Graph split = folded;
  split.nodes.clear();
  for (const auto& node : folded.nodes) {
    if (!node.is_compute() || node.op->statements().size() < 2) {
      split.nodes.push_back(node);
      continue;
    }
    // Each statement a node of its own, so that what one statement hands the next is a value of
    // the graph: calibrated, quantized, and read by an integer kernel.
    const ir::OpExpr& op = *node.op;
    std::map<std::string, std::string> value_of;  // op tensor -> graph value
    const auto inputs = op.tensors_with_role(ir::Role::Input);
    for (size_t i = 0; i < inputs.size(); ++i) value_of[inputs[i].name] = node.inputs.at(i);
    for (size_t index = 0; index < op.statements().size(); ++index) {
      const bool last = index + 1 == op.statements().size();
      ir::OpExpr single = lowering::statement_as_op(op, index);
      const std::string written = single.output().name;
      graph::Node part{.name = last ? node.name : node.name + "/" + written, .op_type = node.op_type, .attributes = node.attributes};
      for (const auto& input : single.tensors_with_role(ir::Role::Input)) part.inputs.push_back(value_of.at(input.name));
      for (const auto& param : single.tensors_with_role(ir::Role::Param)) part.weights[param.name] = node.weights.at(param.name);
      const std::string output = last ? node.outputs.at(0) : node.name + "/" + written;
      part.outputs = {output};
      split.shapes[output] = single.output().shape;
      value_of[written] = output;
      part.op = std::move(single);
      split.nodes.push_back(std::move(part));
    }
  }
  graph::validate(split);
  return split;
}

}  // namespace gos::quant
