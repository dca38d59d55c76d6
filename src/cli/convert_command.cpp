// gos convert: an ONNX model as frozen TorchScript optimised for PyTorch Mobile (.pt), or as gos's
// own ONNX re-export (.onnx: batch norms folded, activations fused, checked), verified by running
// the written file against gos's libtorch execution of the imported model on the same input.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/model_source.h"
#include "cli/run_backends.h"
#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torchscript_export.h"


namespace gos::cli {

namespace {

namespace fs = std::filesystem;

struct ConvertOptions {
  std::string model;
  std::string output;
  std::vector<int64_t> input_shape;
  bool json = false;
};

// One seeded input per graph input, of its nominal shape.
ir::TensorMap probe_inputs(const graph::Graph& model) {
  std::mt19937 generator(7);
  std::normal_distribution<float> normal;
  ir::TensorMap inputs;
  for (const auto& input : model.inputs) {
    ir::Tensor tensor(input.shape);
    for (float& value : tensor.data) value = normal(generator);
    inputs[input.name] = std::move(tensor);
  }
  return inputs;
}

ir::TensorMap run_written(const graph::Graph& model, const fs::path& file, const ir::TensorMap& inputs) {
  if (file.extension() == ".onnx") return graph::run_onnx_runtime(file, inputs, {.threads = 1});
  return run_torchscript_file(model, file.string(), inputs);
}

// The largest difference relative to the reference's largest magnitude, over every output.
double relative_difference(const graph::Graph& model, const ir::TensorMap& reference, const ir::TensorMap& written) {
  double worst = 0;
  for (const auto& output : model.outputs) {
    const ir::Tensor &a = reference.at(output.name), &b = written.at(output.name);
    if (a.shape != b.shape) return INFINITY;
    double scale = 1e-6, difference = 0;
    for (size_t i = 0; i < a.data.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::abs(a.data[i])));
      difference = std::max(difference, static_cast<double>(std::abs(a.data[i] - b.data[i])));
    }
    worst = std::max(worst, difference / scale);
  }
  return worst;
}

int convert(const ConvertOptions& options) {
  const fs::path output(options.output);
  if (output.extension() != ".pt" && output.extension() != ".onnx") {
    throw graph::GraphError("-o " + options.output + ": name a .pt file (TorchScript for PyTorch Mobile) or a .onnx file");
  }
  const graph::Graph model = load_model(options.model, /*allow_unsupported=*/false, options.input_shape).graph;
  if (output.has_parent_path()) fs::create_directories(output.parent_path());
  if (output.extension() == ".pt") {
    graph::export_torchscript(model, output.string(), /*optimise_for_mobile=*/true);
  } else {
    graph::write_onnx(model, output);
  }
  const ir::TensorMap inputs = probe_inputs(model);
  const double difference = relative_difference(model, run_on_backend(model, inputs, "torch"), run_written(model, output, inputs));
  constexpr double kTolerance = 1e-4;  // float32 kernels in another order: about 1e-6 of the output's scale
  const bool agrees = difference <= kTolerance;
  const std::string format = output.extension() == ".pt" ? "TorchScript (frozen, optimised for mobile)" : "ONNX (opset 17)";
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"model", options.model}, {"output", options.output}, {"format", format},
                                      {"max_relative_difference", difference}, {"agrees", agrees}}
                           .dump(2));
  } else {
    fmt::print("{} -> {} ({})\n", options.model, options.output, format);
    fmt::print("checked on a random input: the written file's outputs differ from gos's by {:.2g} of their scale{}\n", difference,
               agrees ? "" : fmt::format(" (more than {:.0e}: please report it)", kTolerance));
  }
  return agrees ? kSuccess : kFailure;
}

}  // namespace

Action add_convert_command(CLI::App& app) {
  auto options = std::make_shared<ConvertOptions>();
  auto* command = app.add_subcommand(
      "convert", "Convert an ONNX model to TorchScript for PyTorch Mobile (.pt) or to gos's re-exported ONNX (.onnx), checked on a random input");
  command->add_option("model", options->model, "an ONNX file, or a zoo model's name")->required();
  command->add_option("-o,--output", options->output, "model.pt (frozen TorchScript optimised for mobile) or model.onnx")->required();
  command->add_option("--input-shape", options->input_shape, "the model's input shape, fixing dimensions the file leaves dynamic (e.g. 1,3,224,224)")
      ->delimiter(',');
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return convert(*options); };
}

}  // namespace gos::cli
