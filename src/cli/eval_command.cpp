// `gos eval`: accuracy of an ONNX classifier on an image set, or the pulse-rate error of a PPG
// model next to the classical reference, as gos runs it.
#include <fmt/core.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "data/data.h"
#include "graph/onnx_import.h"
#include "train/train.h"

namespace gos::cli {

namespace {

struct EvalOptions {
  std::string model_path;
  DataOptions data;
  std::string split = "test";
  bool json = false;
};

data::Split split_named(const std::string& name) {
  if (name == "validation") return data::Split::Validation;
  if (name == "train") return data::Split::Train;
  return data::Split::Test;
}

void check_one_input_and_output(const graph::Graph& model, const std::string& path) {
  if (model.inputs.size() != 1 || model.outputs.size() != 1) {
    throw graph::GraphError(path + " has " + std::to_string(model.inputs.size()) + " inputs and " +
                            std::to_string(model.outputs.size()) + " outputs; gos eval needs one of each");
  }
}

// The model gives a score to every label (data::load checked that it reads what the data holds).
void check_fits(const graph::Graph& model, const data::ImageDataset& dataset, const std::string& path) {
  const auto& output = model.outputs[0].shape;
  if (output.size() != 2 || output[0] != 1 || output[1] < dataset.classes) {
    throw graph::GraphError(path + " writes " + shape_text(output) + "; a classifier of this data writes [1," +
                            std::to_string(dataset.classes) + "]");
  }
}

// Every class when there are few; otherwise the five the model gets wrong most often.
void print_per_class(std::vector<train::ClassAccuracy> classes) {
  constexpr size_t kAllUpTo = 20, kWorst = 5;
  const bool all = classes.size() <= kAllUpTo;
  if (!all) {
    std::stable_sort(classes.begin(), classes.end(), [](const auto& a, const auto& b) { return a.percent() < b.percent(); });
    classes.resize(kWorst);
    fmt::print("the {} classes with the lowest accuracy (--json lists every class):\n", kWorst);
  }
  size_t width = 0;
  for (const auto& c : classes) width = std::max(width, c.name.size());
  for (const auto& c : classes) fmt::print("  {:<{}}  {:6.2f}%  of {} images\n", c.name, width, c.percent(), grouped(c.images));
}

nlohmann::json mae_json(const data::PpgMae& mae) {
  nlohmann::json subjects = nlohmann::json::array();
  for (const auto& subject : mae.subjects) {
    subjects.push_back({{"subject", subject.subject}, {"mae_bpm", subject.mae_bpm}, {"windows", subject.windows}});
  }
  return {{"mae_bpm", mae.mae_bpm}, {"mean_subject_mae_bpm", mae.mean_subject_mae_bpm}, {"windows", mae.windows}, {"subjects", subjects}};
}

// The windows where the motion's cadence sits near the heart rate (known for synthetic data only).
std::vector<bool> hard_windows(const data::PpgDataset& dataset) {
  std::vector<bool> hard;
  if (dataset.cadence_bpm.size() != dataset.bpm.size()) return hard;
  for (size_t i = 0; i < dataset.bpm.size(); ++i) hard.push_back(data::cadence_near_heart_rate(dataset.cadence_bpm[i], dataset.bpm[i]));
  return hard;
}

// A pulse-rate model on PPG windows: its MAE next to the classical spectral reference's.
int run_eval_regression(const EvalOptions& options, const data::DataSpec& spec, const graph::Graph& model) {
  const auto dataset = data::load_ppg(spec, split_named(options.split));
  const graph::Shape expected{1, data::kPpgChannels, data::kPpgWindowSamples};
  if (model.inputs.size() != 1 || model.outputs.size() != 1 || model.inputs[0].shape != expected ||
      model.outputs[0].shape != graph::Shape{1, 1}) {
    throw graph::GraphError(options.model_path + " must read one " + shape_text(expected) +
                            " window (PPG and accelerometer x, y, z at 64 Hz) and write one [1,1] pulse rate; see docs/ppg.md");
  }
  const auto predicted = train::predict(model, dataset);
  const auto reference = data::spectral_reference(dataset);
  const auto model_mae = data::ppg_mae(dataset, predicted), reference_mae = data::ppg_mae(dataset, reference);
  const auto hard = hard_windows(dataset);
  const bool any_hard = std::find(hard.begin(), hard.end(), true) != hard.end();
  const auto hard_model = any_hard ? data::ppg_mae(dataset, predicted, hard) : data::PpgMae{};
  const auto hard_reference = any_hard ? data::ppg_mae(dataset, reference, hard) : data::PpgMae{};
  if (options.json) {
    nlohmann::json result{{"model", options.model_path}, {"data", options.data.data}, {"split", options.split}};
    result.update(mae_json(model_mae));
    result["spectral_reference"] = mae_json(reference_mae);
    if (any_hard) {
      result["cadence_near_heart_rate"] = {{"windows", hard_model.windows},
                                           {"mae_bpm", hard_model.mae_bpm},
                                           {"spectral_reference_mae_bpm", hard_reference.mae_bpm}};
    }
    fmt::print("{}\n", result.dump(2));
    return kSuccess;
  }
  fmt::print("MAE {:.2f} BPM on {} {} windows of {} ({} subjects; mean of the subjects' MAEs {:.2f} BPM)\n", model_mae.mae_bpm,
             grouped(model_mae.windows), options.split, options.data.data, model_mae.subjects.size(), model_mae.mean_subject_mae_bpm);
  fmt::print("spectral reference (docs/ppg.md): MAE {:.2f} BPM\n", reference_mae.mae_bpm);
  for (size_t i = 0; i < model_mae.subjects.size(); ++i) {
    fmt::print("  S{:<3} {:>6} windows  model {:6.2f}  reference {:6.2f} BPM\n", model_mae.subjects[i].subject,
               model_mae.subjects[i].windows, model_mae.subjects[i].mae_bpm, reference_mae.subjects[i].mae_bpm);
  }
  if (any_hard) {
    fmt::print("where the motion's cadence is within 10 BPM of the heart rate ({} windows): model {:.2f}, reference {:.2f} BPM\n",
               hard_model.windows, hard_model.mae_bpm, hard_reference.mae_bpm);
  }
  return kSuccess;
}

// Float targets of arrays:DIR: the mean absolute error over every target.
int run_eval_targets(const EvalOptions& options, const data::DataSpec& spec, const graph::Graph& model) {
  const auto dataset = data::load_regression(spec, split_named(options.split));
  const int64_t per_sample = dataset.targets.elements() / std::max<int64_t>(1, dataset.size());
  if (model.outputs[0].shape.empty() || ir::Tensor(model.outputs[0].shape).elements() != per_sample) {
    throw graph::GraphError(options.model_path + " writes " + shape_text(model.outputs[0].shape) + "; the targets of " + options.data.data +
                            " have " + std::to_string(per_sample) + " values per sample");
  }
  const double mae = train::mean_absolute_error(model, dataset);
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"model", options.model_path},
                                      {"data", options.data.data},
                                      {"split", options.split},
                                      {"samples", dataset.size()},
                                      {"mae", mae}}
                           .dump(2));
  } else {
    fmt::print("MAE {:.4g} on {} {} samples of {}\n", mae, grouped(dataset.size()), options.split, options.data.data);
  }
  return kSuccess;
}

int run_eval(const EvalOptions& options) {
  const auto model = load_model(options.model_path, /*allow_unsupported=*/false, options.data.input_shape).graph;
  check_one_input_and_output(model, options.model_path);
  const auto spec = data_spec(options.data, model);
  if (spec.kind == data::DataSpec::Kind::Ppg) return run_eval_regression(options, spec, model);
  if (data::objective_of(spec) == data::Objective::Regression) return run_eval_targets(options, spec, model);
  const auto dataset = data::load(spec, split_named(options.split));
  check_fits(model, dataset, options.model_path);
  const auto classes = train::per_class_accuracy(model, dataset);
  int64_t correct = 0;
  for (const auto& c : classes) correct += c.correct;
  const double accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(dataset.size(), 1));
  if (options.json) {
    nlohmann::json result{{"model", options.model_path},
                          {"data", options.data.data},
                          {"split", options.split},
                          {"images", dataset.size()},
                          {"accuracy", accuracy}};  // percent, so drops read in points
    if (!dataset.class_names.empty()) result["classes"] = dataset.class_names;
    result["per_class"] = nlohmann::json::array();
    for (const auto& c : classes) result["per_class"].push_back({{"class", c.name}, {"images", c.images}, {"accuracy", c.percent()}});
    fmt::print("{}\n", result.dump(2));
  } else {
    fmt::print("accuracy {:.2f}% on {} {} images of {}\n", accuracy, grouped(dataset.size()), options.split, options.data.data);
    print_per_class(classes);
  }
  return kSuccess;
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  auto* command = app.add_subcommand("eval", "Accuracy of an ONNX classifier on an image set, or MAE of a pulse-rate model on PPG windows");
  command->add_option("model", options->model_path, "the ONNX file")->required()->check(CLI::ExistingFile);
  add_data_options(*command, options->data);
  command->add_option("--split", options->split, "test, validation or train")
      ->check(CLI::IsMember({"test", "validation", "train"}))
      ->capture_default_str();
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_eval(*options); };
}

}  // namespace gos::cli
