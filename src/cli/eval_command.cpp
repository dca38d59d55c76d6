// `gos eval`: accuracy of an ONNX classifier on an image set, as gos runs it.
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "data/data.h"
#include "graph/onnx_import.h"
#include "train/train.h"

namespace gos::cli {

namespace {

struct EvalOptions {
  std::string model_path;
  std::string data = "fashion-mnist";
  std::string split = "test";
  bool json = false;
};

data::Split split_named(const std::string& name) {
  if (name == "validation") return data::Split::Validation;
  if (name == "train") return data::Split::Train;
  return data::Split::Test;
}

// The model must read what the data holds: [N,1,28,28] pixels, and give one score per class.
void check_fits(const graph::Graph& model, const data::ImageDataset& dataset, const std::string& path) {
  if (model.inputs.size() != 1 || model.outputs.size() != 1) {
    throw graph::GraphError(path + " has " + std::to_string(model.inputs.size()) + " inputs and " +
                            std::to_string(model.outputs.size()) + " outputs; gos eval needs one of each");
  }
  auto expected = dataset.images.shape;
  expected[0] = 1;
  if (model.inputs[0].shape != expected) {
    throw graph::GraphError(path + " reads " + shape_text(model.inputs[0].shape) + " but the images are " +
                            shape_text(expected) + " (float pixels in [0,1], NCHW; see docs/data.md)");
  }
  const auto& output = model.outputs[0].shape;
  if (output.size() != 2 || output[1] != dataset.classes) {
    throw graph::GraphError(path + " writes " + shape_text(output) + "; a classifier of this data writes [1," +
                            std::to_string(dataset.classes) + "]");
  }
}

int run_eval(const EvalOptions& options) {
  auto dataset = data::load(data::parse_data_spec(options.data), split_named(options.split));
  auto model = graph::import_onnx(options.model_path).graph;
  check_fits(model, dataset, options.model_path);
  double accuracy = train::classification_accuracy(model, dataset);
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"model", options.model_path},
                                      {"data", options.data},
                                      {"split", options.split},
                                      {"images", dataset.size()},
                                      {"accuracy", 100 * accuracy}}  // percent, so drops read in points
                           .dump(2));
  } else {
    fmt::print("accuracy {:.2f}% on {} {} images of {}\n", 100 * accuracy, grouped(dataset.size()), options.split,
               options.data);
  }
  return kSuccess;
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  auto* command = app.add_subcommand("eval", "Accuracy of an ONNX classifier on an image set");
  command->add_option("model", options->model_path, "the ONNX file")->required()->check(CLI::ExistingFile);
  command->add_option("--data", options->data, "fashion-mnist, fashion-mnist:DIR, synthetic or synthetic:N")
      ->capture_default_str();
  command->add_option("--split", options->split, "test, validation or train")
      ->check(CLI::IsMember({"test", "validation", "train"}))
      ->capture_default_str();
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_eval(*options); };
}

}  // namespace gos::cli
