// Whole-graph TorchScript: source text from the nodes' TorchPrograms and structural calls, module
// attributes for weights and constants, then freeze, optimise and save.
#include "graph/torchscript_export.h"

#include <algorithm>

#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/xnnpack_rewrite.h>
#include <torch/script.h>

#include "graph/structural_torch.h"
#include "graph/torch_names.h"
#include "lowering/torch_lowering.h"
#include "lowering/torchscript_lowering.h"

namespace gos::graph {

namespace {

struct Attribute {
  std::string name;
  torch::Tensor value;
  bool learned = false;
};

// The source and the attributes it reads.
struct ScriptedGraph {
  std::string source;
  std::vector<Attribute> attributes;
};

class GraphScripter {
 public:
  GraphScripter(const Graph& graph, bool channels_last) : graph_(graph), channels_last_(channels_last) {}

  ScriptedGraph script() {
    std::string forward = "def forward(self";
    for (const auto& input : graph_.inputs) forward += ", " + local(input.name);
    forward += "):\n";
    for (const auto& input : graph_.inputs) forward += to_channels_last(input.name);
    for (size_t index = 0; index < graph_.nodes.size(); ++index) {
      const Node& node = graph_.nodes[index];
      forward += node.is_compute() ? compute_node(node, index) + to_channels_last(node.outputs.at(0)) : structural_node(node);
    }
    std::vector<std::string> outputs;
    for (const auto& output : graph_.outputs) outputs.push_back(local(output.name));
    forward += "    return " + (outputs.size() == 1 ? outputs[0] : "(" + join(outputs) + ")") + "\n";
    scripted_.source += forward;
    return std::move(scripted_);
  }

 private:
  static std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
    return text;
  }

  // Values only reshaped or transposed next (a Mixer's patches) stay as they are: a channels-last
  // tensor would have to be copied to be reshaped.
  bool read_by_compute_node(const std::string& value) const {
    return std::any_of(graph_.nodes.begin(), graph_.nodes.end(), [&](const Node& node) {
      return node.is_compute() && std::find(node.inputs.begin(), node.inputs.end(), value) != node.inputs.end();
    });
  }

  // XNNPACK converts NCHW activations to NHWC and back around every convolution; PyTorch Mobile's
  // advice is to keep them channels-last. Convolutions keep their input's layout, so converting
  // the inputs and every compute output (a no-op once a value is channels-last; it catches the
  // one-channel input, whose layout is ambiguous, and lowerings that produce NCHW) keeps the
  // whole network channels-last.
  std::string to_channels_last(const std::string& value) {
    if (!channels_last_ || graph_.shape_of(value).size() != 4 || !read_by_compute_node(value)) return {};
    const std::string name = local(value);
    lowering::TorchCall call{lowering::TorchFn::ChannelsLast, {lowering::ValueRef{value}}, value};
    return "    " + name + " = " + lowering::script_expression(call, [&](const lowering::ValueRef&) { return name; }) + "\n";
  }

  // Graph values are locals v0, v1, ... (ONNX names may hold any character).
  std::string local(const std::string& value) {
    auto [found, inserted] = locals_.try_emplace(value, "v" + std::to_string(locals_.size()));
    return found->second;
  }

  std::string attribute(const std::string& wanted, const torch::Tensor& value, bool learned) {
    std::string name = attribute_names_.claim("a_" + wanted);
    scripted_.attributes.push_back({name, value, learned});
    return "self." + name;
  }

  // A graph constant read as a tensor becomes an attribute the first time it is read.
  std::string value_or_constant(const std::string& value) {
    if (locals_.count(value) || !graph_.constants.count(value)) return local(value);
    auto [found, inserted] = constant_attributes_.try_emplace(value);
    if (inserted) found->second = attribute("const_" + value, lowering::to_torch(graph_.constants.at(value)), false);
    return found->second;
  }

  // A method per compute node; the call passes inputs, then params and constants as attributes.
  std::string compute_node(const Node& node, size_t index) {
    lowering::TorchOp op(*node.op, channels_last_ ? lowering::KernelChoice::RecogniseChannelsLast
                                                  : lowering::KernelChoice::Recognise);
    auto function = lowering::torchscript_function(op.program(), "node_" + std::to_string(index));
    scripted_.source += function.source + "\n";
    const auto& inputs = op.program().inputs;
    std::vector<std::string> arguments;
    for (size_t i = 0; i < inputs.size(); ++i) arguments.push_back(value_or_constant(node.inputs.at(i)));
    for (size_t i = inputs.size(); i < function.arguments.size(); ++i) {
      const std::string& name = function.arguments[i];
      auto constant = op.constants().find(name);
      bool learned = constant == op.constants().end();
      torch::Tensor value = learned ? lowering::to_torch(node.weights.at(name)) : constant->second;
      arguments.push_back(attribute(node.name + "_" + name, value, learned));
    }
    return "    " + local(node.outputs.at(0)) + " = self." + function.name + "(" + join(arguments) + ")\n";
  }

  std::string structural_node(const Node& node) {
    std::map<std::string, std::string> weights;
    for (const auto& [name, tensor] : node.weights) {
      weights[name] = attribute(node.name + "_" + name, lowering::to_torch(tensor), name == "scale" || name == "B");
    }
    lowering::ScriptNames names = [&](const lowering::ValueRef& ref) {
      return ref.weight ? weights.at(ref.name) : value_or_constant(ref.name);
    };
    std::string lines;
    for (const auto& call : detail::plan_structural(graph_, node)) {
      std::string expression = lowering::script_expression(call, names);
      lines += "    " + local(call.result) + " = " + expression + "\n";
    }
    return lines;
  }

  const Graph& graph_;
  bool channels_last_;
  ScriptedGraph scripted_;
  std::map<std::string, std::string> locals_;
  std::map<std::string, std::string> constant_attributes_;
  detail::UniqueNames attribute_names_;
};

torch::jit::Module compile(const Graph& graph, bool channels_last) {
  ScriptedGraph scripted = GraphScripter(graph, channels_last).script();
  torch::jit::Module module("gos_" + detail::torch_identifier(graph.name));
  for (const auto& attribute : scripted.attributes) {
    if (attribute.learned) {
      module.register_parameter(attribute.name, attribute.value, /*is_buffer=*/false);
    } else {
      module.register_buffer(attribute.name, attribute.value);
    }
  }
  module.define(scripted.source);
  return module;
}

}  // namespace

std::string torchscript_source(const Graph& graph, bool channels_last) {
  return GraphScripter(graph, channels_last).script().source;
}

void export_torchscript(const Graph& graph, const std::string& path, bool optimise_for_mobile) {
  try {
    torch::jit::Module module = compile(graph, /*channels_last=*/optimise_for_mobile);
    module.eval();
    torch::jit::Module frozen = torch::jit::freeze(module);
    if (optimise_for_mobile) frozen = torch::jit::optimizeForMobile(frozen);
    if (path.ends_with(".ptl")) {
      frozen._save_for_mobile(path);
    } else {
      frozen.save(path);
    }
  } catch (const c10::Error& error) {
    throw GraphError("TorchScript export to " + path + " failed: " + error.what_without_backtrace());
  } catch (const GraphError&) {
    throw;
  } catch (const std::exception& error) {  // TorchScript compilation errors
    throw GraphError("TorchScript export to " + path + " failed: " + error.what());
  }
}

}  // namespace gos::graph
