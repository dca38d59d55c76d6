// The backends `gos run` and `gos conformance` compute a model's outputs with.
#include "cli/run_backends.h"

#include <torch/script.h>

#include <algorithm>
#include <filesystem>

#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/torch_lowering.h"
#include "util/scratch_folder.h"

namespace gos::cli {

namespace {

namespace fs = std::filesystem;

// Sample `i` of a batch, with a batch axis of 1.
ir::Tensor sample(const ir::Tensor& batch, int64_t i) {
  const int64_t per_sample = batch.elements() / std::max<int64_t>(1, batch.shape[0]);
  auto shape = batch.shape;
  shape[0] = 1;
  return ir::Tensor(shape, std::vector<float>(batch.data.begin() + i * per_sample, batch.data.begin() + (i + 1) * per_sample));
}

// The interpreter runs the model's nominal shapes: inputs of those shapes at once, a batch of a
// model read at batch 1 one sample at a time, outputs stacked.
ir::TensorMap run_interpreter(const graph::Graph& model, const ir::TensorMap& inputs) {
  const bool nominal = std::all_of(model.inputs.begin(), model.inputs.end(),
                                   [&](const auto& input) { return inputs.at(input.name).shape == input.shape; });
  if (nominal) return graph::evaluate(model, inputs);
  const int64_t batch = inputs.begin()->second.shape[0];
  ir::TensorMap outputs;
  for (int64_t i = 0; i < batch; ++i) {
    ir::TensorMap one;
    for (const auto& [name, tensor] : inputs) one[name] = sample(tensor, i);
    for (auto& [name, tensor] : graph::evaluate(model, one)) {
      auto [found, added] = outputs.emplace(name, tensor);
      if (added) continue;
      found->second.shape[0] += tensor.shape[0];
      found->second.data.insert(found->second.data.end(), tensor.data.begin(), tensor.data.end());
    }
  }
  return outputs;
}

std::vector<torch::Tensor> ordered_torch_inputs(const graph::Graph& model, const ir::TensorMap& inputs) {
  std::vector<torch::Tensor> ordered;
  for (const auto& input : model.inputs) ordered.push_back(lowering::to_torch(inputs.at(input.name)));
  return ordered;
}

ir::TensorMap named_outputs(const graph::Graph& model, const std::vector<torch::Tensor>& outputs) {
  ir::TensorMap named;
  for (size_t i = 0; i < model.outputs.size() && i < outputs.size(); ++i) named[model.outputs[i].name] = lowering::from_torch(outputs[i].contiguous());
  return named;
}

ir::TensorMap run_torch(const graph::Graph& model, const ir::TensorMap& inputs) {
  torch::NoGradGuard no_grad;
  graph::GraphModule module(model);
  module.eval();
  return named_outputs(model, module.forward(ordered_torch_inputs(model, inputs)));
}

// The TorchScript file PyTorch Mobile would load (frozen, optimised for mobile), run by libtorch.
ir::TensorMap run_mobile(const graph::Graph& model, const ir::TensorMap& inputs) {
  util::ScratchFolder scratch("gos-run");
  const std::string path = (scratch.path() / "model.pt").string();
  graph::export_torchscript(model, path, /*optimise_for_mobile=*/true);
  return run_torchscript_file(model, path, inputs);
}

// gos's re-export of the model, run by ONNX Runtime.
ir::TensorMap run_ort(const graph::Graph& model, const ir::TensorMap& inputs) {
  util::ScratchFolder scratch("gos-run");
  const fs::path path = scratch.path() / "model.onnx";
  graph::write_onnx(model, path);
  return graph::run_onnx_runtime(path, inputs, {.threads = 2});
}

}  // namespace

ir::TensorMap run_torchscript_file(const graph::Graph& model, const std::string& path, const ir::TensorMap& inputs) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module = torch::jit::load(path);
  std::vector<torch::jit::IValue> arguments;
  for (auto& tensor : ordered_torch_inputs(model, inputs)) arguments.emplace_back(std::move(tensor));
  const torch::jit::IValue result = module.forward(arguments);
  std::vector<torch::Tensor> outputs;
  if (result.isTuple()) {
    for (const auto& element : result.toTuple()->elements()) outputs.push_back(element.toTensor());
  } else {
    outputs.push_back(result.toTensor());
  }
  return named_outputs(model, outputs);
}

ir::TensorMap run_on_backend(const graph::Graph& model, const ir::TensorMap& inputs, const std::string& backend) {
  if (backend == "interpreter") return run_interpreter(model, inputs);
  if (backend == "torch") return run_torch(model, inputs);
  if (backend == "mobile") return run_mobile(model, inputs);
  if (backend == "ort") return run_ort(model, inputs);
  throw graph::GraphError("unknown backend '" + backend + "' (interpreter, torch, mobile or ort)");
}

}  // namespace gos::cli
