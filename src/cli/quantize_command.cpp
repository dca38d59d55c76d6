// `gos quantize MODEL --data DATA`: post-training static int8 of the model as given, written as a
// QDQ ONNX file, with its accuracy and its speed measured side by side against the fp32 model in
// ONNX Runtime (docs/quantization.md).
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "measure/measure.h"
#include "quant/quant.h"
#include "search/adapt_task.h"
#include "search/int8.h"
#include "util/progress.h"
#include "util/scratch_folder.h"
#include "util/writable_folder.h"

namespace gos::cli {

namespace {

struct QuantizeOptions {
  std::string model;
  DataOptions data;
  int64_t calibration_images = 512;
  std::string out = "gos-quantized";
  std::string backend = "mobile";
  int threads = 1;
  double budget = 6;  // seconds of timing, shared by both models
  uint64_t seed = 1;
  bool json = false;
};

void check_output_fits(const graph::Graph& model, const search::AdaptTask& task, const std::string& path) {
  if (model.outputs.size() != 1) throw graph::GraphError(path + " has " + std::to_string(model.outputs.size()) + " outputs; gos quantize scores models with one");
  const auto& output = model.outputs[0].shape;
  const bool regression = !task.higher_is_better();
  if (regression ? output.empty() || output[0] != 1 : output.size() != 2) {
    throw graph::GraphError(path + " writes " + shape_text(output) + (regression ? "; a regressor writes [1,targets]" : "; a classifier writes [1,classes]"));
  }
}

int run_quantize(const QuantizeOptions& options) {
  const graph::Graph model = quant::quantizable_form(load_model(options.model, /*allow_unsupported=*/false, options.data.input_shape).graph);
  const auto task = search::load_task(data_spec(options.data, model));
  check_output_fits(model, *task, options.model);
  const ir::Tensor calibration_samples = task->calibration_inputs(options.calibration_images, options.seed);
  if (const auto why = util::why_not_writable(options.out); !why.empty()) {
    throw graph::GraphError("cannot write to " + options.out + ": " + why);
  }
  std::filesystem::create_directories(options.out);
  const bool talk = !options.json;

  const int64_t calibrating = calibration_samples.shape.at(0);
  if (calibrating < options.calibration_images && talk) {
    fmt::print(stderr, "note: the training split holds {} samples; calibrating on all of them, not the {} asked for\n", calibrating,
               options.calibration_images);
  }
  util::Progress progress("quantize", 3, talk);
  progress.update(0, fmt::format("calibrating on {} samples", calibrating));
  const quant::Calibration calibration = quant::calibrate(model, calibration_samples);
  const quant::QuantPlan plan = quant::plan_quantization(model, calibration);

  const measure::Backend backend = measure::backend_named(options.backend);
  const std::filesystem::path onnx_path = std::filesystem::path(options.out) / "model.int8.onnx";
  const std::filesystem::path script_path = std::filesystem::path(options.out) / "model.int8.pt";
  quant::write_qdq_onnx(model, plan, onnx_path);
  quant::write_quantized_torchscript(model, plan, script_path);
  util::ScratchFolder scratch("gos-quantize");
  const bool on_ort = backend == measure::Backend::Ort;
  const std::filesystem::path fp32_path = search::write_fp32_file(model, backend, scratch.path() / "model.fp32");
  const std::filesystem::path& int8_path = on_ort ? onnx_path : script_path;

  progress.update(1, fmt::format("{} of the test split on {}, fp32 and int8", task->metric_name(), options.backend));
  const double fp32_score = search::file_test_quality(fp32_path, model, *task, backend);
  const double int8_score = search::file_test_quality(int8_path, model, *task, backend);

  progress.update(2, "timing fp32 and int8 side by side (batch 1)");
  const auto [fp32_timing, int8_timing] =
      measure::bench_files_interleaved(fp32_path, int8_path, model.inputs, backend, {.threads = options.threads, .budget_seconds = options.budget / 2});
  const double fp32_ms = fp32_timing.median_ms, int8_ms = int8_timing.median_ms;
  progress.finish();

  std::vector<const quant::NodePrecision*> fp32_nodes;
  for (const auto& node : plan.nodes) {
    if (!node.int8) fp32_nodes.push_back(&node);
  }
  if (options.json) {
    nlohmann::json stays = nlohmann::json::array();
    for (const auto* node : fp32_nodes) stays.push_back({{"node", node->node}, {"op_type", node->op_type}, {"why", node->why_fp32}});
    const std::string key = task->higher_is_better() ? "accuracy" : "mae_bpm";
    fmt::print("{}\n", nlohmann::json{{"model", options.model},
                                      {"data", options.data.data},
                                      {"calibration_samples", calibrating},
                                      {"int8_onnx", onnx_path.string()},
                                      {"int8_torchscript", script_path.string()},
                                      {"compute_nodes", plan.nodes.size()},
                                      {"int8_nodes", plan.int8_nodes()},
                                      {"fp32_nodes", stays},
                                      {"quantized_values", plan.activations.size()},
                                      {"backend", options.backend},
                                      {"threads", options.threads},
                                      {"fp32", {{key, fp32_score}, {"median_ms", fp32_ms}}},
                                      {"int8", {{key, int8_score}, {"median_ms", int8_ms}}},
                                      {"speedup", fp32_ms / int8_ms},
                                      {"test_samples", task->test_size()}}
                           .dump(2));
    return kSuccess;
  }
  fmt::print("calibrated on {} training samples; {} of {} compute nodes int8, {} values quantized\n", calibrating, plan.int8_nodes(),
             plan.nodes.size(), plan.activations.size());
  for (const auto* node : fp32_nodes) fmt::print("  stays fp32: {} ({}): {}\n", node->node, node->op_type, node->why_fp32);
  fmt::print("{} on {} test samples ({}): fp32 {}, int8 {}\n", task->metric_name(), grouped(task->test_size()), options.backend,
             task->format_quality(fp32_score), task->format_quality(int8_score));
  fmt::print("latency ({}, {} thread{}, batch 1, side by side): fp32 {:.3f} ms, int8 {:.3f} ms: {:.2f}x faster\n", options.backend, options.threads,
             options.threads == 1 ? "" : "s", fp32_ms, int8_ms, fp32_ms / int8_ms);
  fmt::print("wrote {} and {}\n", onnx_path.string(), script_path.string());
  return kSuccess;
}

}  // namespace

Action add_quantize_command(CLI::App& app) {
  auto options = std::make_shared<QuantizeOptions>();
  auto* command = app.add_subcommand("quantize", "Post-training int8 of a model: a QDQ ONNX file, its accuracy and speed beside the fp32 model's");
  command->add_option("model", options->model, "an ONNX file, or a zoo model name")->required();
  add_data_options(*command, options->data);
  command->add_option("--calibration-images", options->calibration_images, "training samples whose ranges set the activations' scales")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--backend", options->backend, "where accuracy and speed are measured: mobile (the quantized TorchScript, QNNPACK) or ort (the QDQ ONNX file)")
      ->check(CLI::IsMember({"mobile", "ort"}))
      ->capture_default_str();
  command->add_option("-o,--out", options->out, "output folder")->capture_default_str();
  command->add_option("--threads", options->threads, "threads for the timing")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--budget", options->budget, "seconds of side-by-side timing")->check(CLI::PositiveNumber)->capture_default_str();
  command->add_option("--seed", options->seed, "seeds the draw of calibration samples")->capture_default_str();
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] {
    try {
      return run_quantize(*options);
    } catch (const quant::QuantError& error) {
      fmt::print(stderr, "gos: {}\n", error.what());
      return static_cast<int>(kBadInput);
    }
  };
}

}  // namespace gos::cli
