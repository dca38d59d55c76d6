// The quantized TorchScript module for PyTorch Mobile: int8 nodes as libtorch's quantized operators
// on quint8 tensors with prepacked int8 weights (QNNPACK, the engine PyTorch Mobile runs on ARM);
// everything else as the fp32 program on dequantized values, which computes what the
// fake-quantized reference computes.
#include <algorithm>
#include <ATen/core/dispatch/Dispatcher.h>
#include <fmt/format.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "graph/structural_torch.h"
#include "graph/torch_names.h"
#include "lowering/kernels.h"
#include "lowering/torch_lowering.h"
#include "lowering/torchscript_lowering.h"
#include "quant/quant.h"
#include "quant/torchscript_module.h"
#include "quant/weight_axes.h"

namespace gos::quant {

namespace {

using lowering::KernelKind;

// A quantized operator's prepack, called through the dispatcher as TorchScript would call it.
c10::IValue prepack(const char* op_name, std::vector<c10::IValue> arguments) {
  const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(op_name, "");
  torch::jit::Stack stack(std::make_move_iterator(arguments.begin()), std::make_move_iterator(arguments.end()));
  op.callBoxed(&stack);
  return stack.at(0);
}

std::string literal(double value) { return fmt::format("{:.9g}", value); }

// TorchScript compiled from C++ resolves only `torch.` (to aten); the quantized operators'
// namespace is resolved here, so that the source can call `quantized.conv2d(...)`.
struct QuantizedResolver : public torch::jit::NativeResolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& function,
                                                         const torch::jit::SourceRange& location) override {
    if (name == "quantized") return std::make_shared<torch::jit::BuiltinModule>("quantized");
    return NativeResolver::resolveValue(name, function, location);
  }
};

struct Attribute {
  std::string name;
  c10::IValue value;
};

class QuantizedScripter {
 public:
  QuantizedScripter(const graph::Graph& graph, const QuantPlan& plan, bool int8_io) : graph_(graph), plan_(plan), int8_io_(int8_io) {
    for (const auto& node : plan.nodes) int8_[node.node] = node.int8;
  }

  std::pair<std::string, std::vector<Attribute>> script() {
    std::string forward = "def forward(self";
    for (const auto& input : graph_.inputs) {
      forward += ", " + local(input.name);
      quantized_[input.name] = int8_io_ && planned(input.name);
    }
    forward += "):\n";
    for (size_t index = 0; index < graph_.nodes.size(); ++index) {
      const auto& node = graph_.nodes[index];
      if (!node.is_compute()) {
        structural_node(node);
      } else if (!int8_node(node)) {
        fp32_node(node, index);
      }
    }
    std::vector<std::string> outputs;
    for (const auto& output : graph_.outputs) outputs.push_back(int8_io_ && quantized_.at(output.name) ? local(output.name) : fp32(output.name));
    body_ += "    return " + (outputs.size() == 1 ? outputs[0] : "(" + fmt::format("{}", fmt::join(outputs, ", ")) + ")") + "\n";
    return {methods_ + forward + body_, std::move(attributes_)};
  }

 private:
  std::string local(const std::string& value) {
    auto [found, inserted] = locals_.try_emplace(value, "v" + std::to_string(locals_.size()));
    return found->second;
  }

  std::string attribute(const std::string& wanted, c10::IValue value) {
    const std::string name = names_.claim("a_" + wanted);
    attributes_.push_back({name, std::move(value)});
    return "self." + name;
  }

  void line(const std::string& text) { body_ += "    " + text + "\n"; }

  // The value as fp32 (dequantized once if it was produced quantized), or a graph constant.
  std::string fp32(const std::string& value) {
    if (!locals_.count(value) && graph_.constants.count(value)) {
      auto [found, inserted] = constants_.try_emplace(value);
      if (inserted) found->second = attribute("const_" + value, lowering::to_torch(graph_.constants.at(value)));
      return found->second;
    }
    if (!quantized_.at(value)) return local(value);
    auto [found, inserted] = dequantized_.try_emplace(value, local(value) + "_f");
    if (inserted) line(found->second + " = " + local(value) + ".dequantize()");
    return found->second;
  }

  // The value as quint8 at its planned scale (quantized once if it was produced in fp32).
  std::string int8(const std::string& value) {
    if (quantized_.at(value)) return local(value);
    const ActivationQuant& quant = plan_.activations.at(value);
    auto [found, inserted] = quantized_views_.try_emplace(value, local(value) + "_q");
    if (inserted) {
      // TorchScript source takes a dtype as its ScalarType number.
      line(fmt::format("{} = torch.quantize_per_tensor({}, {}, {}, {})", found->second, local(value), literal(quant.scale), quant.zero_point,
                       static_cast<int>(c10::ScalarType::QUInt8)));
    }
    return found->second;
  }

  bool planned(const std::string& value) const { return plan_.activations.count(value) > 0; }

  // An int8 node as a quantized operator, when it is one the engine has: writes the call and
  // returns true. Otherwise the caller runs its fp32 program.
  bool int8_node(const graph::Node& node) {
    if (!int8_.count(node.name) || !int8_.at(node.name) || !planned(node.outputs.at(0))) return false;
    const auto kernels = lowering::recognise(*node.op);
    if (kernels.size() != 1) return false;
    const auto& kernel = kernels[0];
    for (const auto& input : node.inputs) {
      if (!planned(input)) return false;
    }
    const ActivationQuant& out = plan_.activations.at(node.outputs.at(0));
    // ReLU6 is a ReLU whose top the output's grid already cuts at 6 or below: the calibrated range
    // of a ReLU6's output never passes 6, and rounding clamps to the range.
    const float top = out.scale * static_cast<float>(255 - out.zero_point);
    const bool relu6_is_relu = kernel.activation == ir::Activation::Relu6 && top <= 6.0f * (1 + 1e-6f);
    if (kernel.activation != ir::Activation::None && kernel.activation != ir::Activation::Relu && !relu6_is_relu) return false;
    const std::string relu = kernel.activation != ir::Activation::None ? "_relu" : "";
    const std::string scale = literal(out.scale), zero = std::to_string(out.zero_point);
    std::string call;
    switch (kernel.kind) {
      case KernelKind::Conv: {
        if (kernel.spatial_rank == 1) {
          const auto& spec = kernel.conv1d;
          if (spec.shuffle || spec.padding[0] != spec.padding[1]) return false;
          auto packed = prepack("quantized::conv1d_prepack", {quantized_weight(node, kernel), bias(node, kernel), c10::List<int64_t>({spec.stride}),
                                                               c10::List<int64_t>({spec.padding[0]}), c10::List<int64_t>({spec.dilation}), spec.groups});
          call = fmt::format("quantized.conv1d{}({}, {}, {}, {})", relu, int8(node.inputs[0]), attribute(node.name + "_packed", packed), scale, zero);
          break;
        }
        if (kernel.spatial_rank != 2 || kernel.conv2d.shuffle) return false;
        const auto& spec = kernel.conv2d;
        if (spec.padding[0] != spec.padding[2] || spec.padding[1] != spec.padding[3]) return false;
        auto packed = prepack("quantized::conv2d_prepack",
                              {quantized_weight(node, kernel), bias(node, kernel), c10::List<int64_t>({spec.stride[0], spec.stride[1]}),
                               c10::List<int64_t>({spec.padding[0], spec.padding[1]}), c10::List<int64_t>({spec.dilation[0], spec.dilation[1]}),
                               spec.groups});
        call = fmt::format("quantized.conv2d{}({}, {}, {}, {})", relu, int8(node.inputs[0]), attribute(node.name + "_packed", packed), scale, zero);
        break;
      }
      case KernelKind::Linear:
      case KernelKind::MatMul: {
        const bool linear = kernel.kind == KernelKind::Linear;
        if (linear ? kernel.linear.trans_a : !kernel.matmul.weight_rhs) return false;
        auto packed = prepack("quantized::linear_prepack", {quantized_weight(node, kernel), bias(node, kernel)});
        call = fmt::format("quantized.linear{}({}, {}, {}, {})", relu, int8(node.inputs[0]), attribute(node.name + "_packed", packed), scale, zero);
        break;
      }
      case KernelKind::Add:
        call = fmt::format("quantized.add{}({}, {}, {}, {})", relu, int8(node.inputs[0]), int8(node.inputs[1]), scale, zero);
        break;
      default:
        return false;
    }
    line(local(node.outputs[0]) + " = " + call);
    quantized_[node.outputs[0]] = true;
    return true;
  }

  // The kernel's weight as the quantized operators take it: qint8 per output channel, stored
  // [out, in, ...] (a product's W[k, n] transposed).
  torch::Tensor quantized_weight(const graph::Node& node, const lowering::Kernel& kernel) {
    const std::string& param = kernel.operands.at("W");
    int64_t axis = 0;
    for (const auto& weight_axis : int8_weight_axes(*node.op)) {
      if (weight_axis.param == param) axis = weight_axis.axis;
    }
    const ir::Tensor& weight = node.weights.at(param);
    const WeightQuant quant = int8_per_channel(weight, axis);
    torch::Tensor values = torch::from_blob(const_cast<int8_t*>(quant.values.data()), weight.shape, torch::kInt8).clone();
    if (axis == 1) values = values.t().contiguous();  // W[c, k] or W[k, n]: output channels first
    const auto scales = torch::tensor(std::vector<double>(quant.scales.begin(), quant.scales.end()), torch::kDouble);
    const auto zeros = torch::zeros({static_cast<int64_t>(quant.scales.size())}, torch::kLong);
    return at::_make_per_channel_quantized_tensor(values, scales, zeros, 0);
  }

  c10::optional<torch::Tensor> bias(const graph::Node& node, const lowering::Kernel& kernel) {
    auto found = kernel.operands.find("B");
    if (found == kernel.operands.end()) return c10::nullopt;
    return lowering::to_torch(node.weights.at(found->second));
  }

  // The node's fp32 program (weights of an int8 node rounded as the reference rounds them).
  void fp32_node(const graph::Node& node, size_t index) {
    const bool int8 = int8_.count(node.name) && int8_.at(node.name);
    const ir::TensorMap weights = int8 ? int8_rounded_weights(*node.op, node.weights) : node.weights;
    lowering::TorchOp op(*node.op);
    auto function = lowering::torchscript_function(op.program(), "node_" + std::to_string(index));
    methods_ += function.source + "\n";
    const auto& inputs = op.program().inputs;
    std::vector<std::string> arguments;
    for (size_t i = 0; i < inputs.size(); ++i) arguments.push_back(fp32(node.inputs.at(i)));
    for (size_t i = inputs.size(); i < function.arguments.size(); ++i) {
      const std::string& name = function.arguments[i];
      auto constant = op.constants().find(name);
      arguments.push_back(attribute(node.name + "_" + name,
                                    constant == op.constants().end() ? lowering::to_torch(weights.at(name)) : constant->second));
    }
    line(local(node.outputs.at(0)) + " = self." + function.name + "(" + fmt::format("{}", fmt::join(arguments, ", ")) + ")");
    quantized_[node.outputs[0]] = false;
  }

  void structural_node(const graph::Node& node) {
    std::map<std::string, std::string> weights;
    for (const auto& [name, tensor] : node.weights) weights[name] = attribute(node.name + "_" + name, lowering::to_torch(tensor));
    lowering::ScriptNames names = [&](const lowering::ValueRef& ref) { return ref.weight ? weights.at(ref.name) : fp32(ref.name); };
    for (const auto& call : graph::detail::plan_structural(graph_, node)) {
      const std::string expression = lowering::script_expression(call, names);
      line(local(call.result) + " = " + expression);
      quantized_[call.result] = false;
    }
  }

  const graph::Graph& graph_;
  const QuantPlan& plan_;
  const bool int8_io_;
  std::map<std::string, bool> int8_;
  std::string methods_, body_;
  std::vector<Attribute> attributes_;
  graph::detail::UniqueNames names_;
  std::map<std::string, std::string> locals_, constants_, dequantized_, quantized_views_;
  std::map<std::string, bool> quantized_;  // what the value's local holds
};

}  // namespace

namespace {

// QNNPACK on ARM where this libtorch has it (PyTorch Mobile's engine), oneDNN otherwise: Debian's
// arm64 libtorch 1.13 is built without QNNPACK (setting it throws "quantized engine QNNPACK is not
// supported"), and its amd64 one has no FBGEMM. oneDNN's quantized kernels run on aarch64 too.
at::QEngine platform_engine() {
#if defined(__aarch64__) || defined(__arm__)
  const auto& engines = at::globalContext().supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::QNNPACK) != engines.end()) return at::QEngine::QNNPACK;
#endif
  return at::QEngine::ONEDNN;
}

}  // namespace

void use_platform_quantized_engine() { at::globalContext().setQEngine(platform_engine()); }

std::string platform_quantized_engine() { return platform_engine() == at::QEngine::QNNPACK ? "QNNPACK" : "oneDNN"; }

void write_quantized_torchscript(const graph::Graph& graph, const QuantPlan& plan, const std::filesystem::path& path, bool int8_io) {
  try {
    use_platform_quantized_engine();
    auto [source, attributes] = QuantizedScripter(graph, plan, int8_io).script();
    torch::jit::Module module("gos_int8_" + graph::detail::torch_identifier(graph.name));
    for (const auto& attribute : attributes) {
      if (attribute.value.isTensor()) {
        module.register_buffer(attribute.name, attribute.value.toTensor());
      } else {
        module.register_attribute(attribute.name, attribute.value.type(), attribute.value);
      }
    }
    module.define(source, std::make_shared<QuantizedResolver>());
    module.eval();
    torch::jit::Module frozen = torch::jit::freeze(module);
    frozen.save(path.string());
  } catch (const c10::Error& error) {
    throw graph::GraphError("quantized TorchScript export to " + path.string() + " failed: " + error.what_without_backtrace());
  } catch (const graph::GraphError&) {
    throw;
  } catch (const std::exception& error) {
    throw graph::GraphError("quantized TorchScript export to " + path.string() + " failed: " + error.what());
  }
}

torch::jit::Module load_torchscript(const std::filesystem::path& path, const std::vector<torch::Tensor>& example_inputs) {
  use_platform_quantized_engine();
  torch::jit::Module module = torch::jit::load(path.string());
  module.eval();
  if (at::globalContext().qEngine() == at::QEngine::ONEDNN) {
    // libtorch 1.13's oneDNN engine keeps the weight layout its first call picks. When that call
    // is a large batch (a few hundred samples at 7x7), a grouped quantized convolution keeps its
    // weights in a grouped layout that every later call misreads ("negative dimension"). A first
    // call on one sample picks the layout every batch size runs with.
    torch::NoGradGuard no_grad;
    std::vector<torch::jit::IValue> one_sample;
    for (const auto& input : example_inputs) one_sample.emplace_back(input.slice(0, 0, 1));
    module.forward(one_sample);
  }
  return module;
}

ir::Tensor run_torchscript(const std::filesystem::path& path, const ir::Tensor& inputs, int64_t batch) {
  const torch::Tensor all = lowering::to_torch(inputs);
  auto module = load_torchscript(path, {all});
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outputs;
  for (int64_t begin = 0; begin < all.size(0); begin += batch) {
    outputs.push_back(module.forward({all.slice(0, begin, std::min(all.size(0), begin + batch))}).toTensor().contiguous());
  }
  return lowering::from_torch(torch::cat(outputs));
}

}  // namespace gos::quant
