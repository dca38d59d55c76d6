// gos run: a model's outputs for inputs the user gives (.npy or ONNX TensorProto .pb), computed by
// the IR interpreter, libtorch, TorchScript optimised for mobile or ONNX Runtime, so that a user
// can check that gos computes what their framework computes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "cli/cli.h"
#include "cli/run_backends.h"
#include "data/npy.h"

namespace gos::cli {

namespace {

namespace fs = std::filesystem;

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;     // FILE or NAME=FILE
  std::vector<std::string> constants;  // NAME=FILE: graph inputs that are weights
  std::string backend = "torch";
  std::string output;
  std::vector<int64_t> input_shape;  // --input-shape: fixes dynamic input dimensions
  bool json = false;
};

std::string input_names(const graph::Graph& model) {
  std::vector<std::string> names;
  for (const auto& input : model.inputs) names.push_back(input.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

ir::Tensor read_input(const std::string& path) {
  const std::string extension = fs::path(path).extension().string();
  if (extension == ".npy") {
    data::NpyArray array = data::read_npy(path);
    return ir::Tensor(array.shape, std::move(array.values));
  }
  if (extension == ".pb") return graph::read_tensor_file(path).tensor;
  throw graph::GraphError("--input " + path + ": give a .npy file or an ONNX TensorProto .pb file");
}

// The inputs by graph input name: NAME=FILE, or FILE in the order of the model's inputs.
ir::TensorMap bind_inputs(const graph::Graph& model, const std::vector<std::string>& given) {
  if (given.size() != model.inputs.size()) {
    throw graph::GraphError(fmt::format("the model has {} input{} ({}); give one --input for each", model.inputs.size(),
                                        model.inputs.size() == 1 ? "" : "s", input_names(model)));
  }
  ir::TensorMap bound;
  for (size_t i = 0; i < given.size(); ++i) {
    std::string name = model.inputs[i].name, path = given[i];
    if (const auto equals = given[i].find('='); equals != std::string::npos && !fs::exists(given[i])) {
      name = given[i].substr(0, equals);
      path = given[i].substr(equals + 1);
      const bool known = std::any_of(model.inputs.begin(), model.inputs.end(), [&](const auto& input) { return input.name == name; });
      if (!known) throw graph::GraphError("--input " + given[i] + ": the model has no input '" + name + "' (" + input_names(model) + ")");
    }
    if (!bound.emplace(name, read_input(path)).second) throw graph::GraphError("--input: '" + name + "' is given twice");
  }
  int64_t batch = -1;
  for (const auto& input : model.inputs) {
    const ir::Tensor& tensor = bound.at(input.name);
    const bool fits = tensor.shape.size() == input.shape.size() && !tensor.shape.empty() &&
                      std::equal(input.shape.begin() + 1, input.shape.end(), tensor.shape.begin() + 1);
    if (!fits) {
      throw graph::GraphError(fmt::format("input '{}' is {}; the model reads {} (any size of the first dimension)", input.name,
                                          shape_text(tensor.shape), shape_text(input.shape)));
    }
    if (batch >= 0 && tensor.shape[0] != batch) throw graph::GraphError("the inputs disagree on the first dimension (the batch)");
    batch = tensor.shape[0];
  }
  return bound;
}

// A file name for an output: its name with anything but letters, digits, '.', '-' and '_' as '_'.
std::string file_name_of(const std::string& output) {
  std::string name = output;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  }
  return name + ".npy";
}

int run_model(const RunOptions& options) {
  std::map<std::string, std::string> constant_inputs;
  for (const auto& given : options.constants) {
    const auto equals = given.find('=');
    if (equals == std::string::npos || equals == 0 || fs::path(given.substr(equals + 1)).extension() != ".pb") {
      throw graph::GraphError("--constant " + given + ": give NAME=FILE.pb, a graph input and an ONNX TensorProto file of its value");
    }
    constant_inputs[given.substr(0, equals)] = given.substr(equals + 1);
  }
  const graph::Graph model = constant_inputs.empty()
                                 ? load_model(options.model, /*allow_unsupported=*/false, options.input_shape).graph
                                 : said_upgraded(graph::import_onnx(options.model, {.input_shape = options.input_shape,
                                                                                     .constant_inputs = constant_inputs}),
                                                 options.model)
                                       .graph;
  const ir::TensorMap inputs = bind_inputs(model, options.inputs);
  const auto start = std::chrono::steady_clock::now();
  const ir::TensorMap outputs = run_on_backend(model, inputs, options.backend);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // One output: the file named by -o; several: a folder of them, one file per output name.
  const bool one = model.outputs.size() == 1;
  if (!one) fs::create_directories(options.output);
  nlohmann::json written = nlohmann::json::array();
  for (const auto& output : model.outputs) {
    const ir::Tensor& tensor = outputs.at(output.name);
    const std::string path = one ? options.output : (fs::path(options.output) / file_name_of(output.name)).string();
    data::write_npy(path, tensor.shape, tensor.data);
    written.push_back({{"name", output.name}, {"shape", tensor.shape}, {"file", path}});
    if (!options.json) fmt::print("{} {} -> {}\n", output.name, shape_text(tensor.shape), path);
  }
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"model", options.model}, {"backend", options.backend}, {"seconds", seconds}, {"outputs", written}}.dump(2));
  }
  return kSuccess;
}

}  // namespace

Action add_run_command(CLI::App& app) {
  auto options = std::make_shared<RunOptions>();
  auto* command = app.add_subcommand("run", "Run a model on inputs from .npy or ONNX .pb files and write its outputs as .npy");
  command->add_option("model", options->model, "an ONNX file, or a zoo model's name")->required();
  command->add_option("--input", options->inputs, "an input: FILE or NAME=FILE (.npy or ONNX TensorProto .pb); one per model input, in order")
      ->required();
  command->add_option("--constant", options->constants,
                      "NAME=FILE.pb: a graph input that is a weight (as ONNX's node tests feed Conv's W), imported as one");
  command->add_option("--backend", options->backend, "interpreter (gos's reference), torch, mobile (TorchScript for PyTorch Mobile) or ort")
      ->check(CLI::IsMember(backend_names()))
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "the .npy file to write (a folder of NAME.npy files when the model has several outputs)")
      ->required();
  command->add_option("--input-shape", options->input_shape, "the model's input shape, fixing dimensions the file leaves dynamic (e.g. 1,3,224,224)")
      ->delimiter(',');
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_model(*options); };
}

}  // namespace gos::cli
