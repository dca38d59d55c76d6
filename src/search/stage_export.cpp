// Stage 8, export: the adapted model as ONNX (checked, then run by ONNX Runtime and compared with
// libtorch) and as TorchScript for PyTorch Mobile, and the report as JSON and HTML.
#include <torch/torch.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>

#include "data/data.h"
#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/torch_lowering.h"
#include "quant/quant.h"
#include "search/stages.h"
#include "util/writable_folder.h"

namespace gos::search {

namespace {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

// A write that fails because the folder's disk is full or read-only says so in one line; the
// run's journal holds everything before it, so a rerun writes the files again and nothing else.
template <typename Write>
void explaining_failure(const std::filesystem::path& path, Write write) {
  try {
    write();
  } catch (const std::exception&) {
    if (const std::string why = util::why_not_writable(path.parent_path()); !why.empty()) {
      throw SearchError("cannot write " + path.string() + ": " + why + "; make room (or make it writable) and rerun the same command "
                        "to resume (only the files are written again)");
    }
    throw;
  }
}

// Written beside and renamed into place: a file at `path` is always whole.
template <typename Write>
void write_atomically(const std::filesystem::path& path, Write write) {
  const auto temporary = std::filesystem::path(path.string() + ".partial" + path.extension().string());
  explaining_failure(path, [&] {
    try {
      write(temporary);
      std::filesystem::rename(temporary, path);
    } catch (...) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw;
    }
  });
}

std::vector<float> or_default(const std::vector<float>& values, float otherwise) { return values.empty() ? std::vector{otherwise} : values; }

// The adapted model as its files hold it: with --fold-preprocessing, reading samples before
// normalisation; `samples` (normalised, as the stages feed them) brought to what it reads.
graph::Graph exported_form(const RunContext& run, ir::Tensor& samples) {
  if (!run.options.fold_preprocessing) return run.adapted;
  const auto mean = or_default(run.options.input.mean, 0), std = or_default(run.options.input.std, 1);
  // x * std + mean undoes the normalisation: it is normalising by -mean/std and 1/std.
  data::InputFormat undo;
  for (int64_t c = 0; c < samples.shape.at(1); ++c) {
    const float m = mean[mean.size() == 1 ? 0 : static_cast<size_t>(c)], s = std[std.size() == 1 ? 0 : static_cast<size_t>(c)];
    undo.mean.push_back(-m / s);
    undo.std.push_back(1 / s);
  }
  data::normalize(samples, undo);
  return graph::with_input_normalisation(run.adapted, mean, std);
}

// ONNX Runtime must give the exported model's answers (libtorch's) on a few calibration images.
void check_with_onnx_runtime(const RunContext& run, const graph::Graph& exported, const ir::Tensor& images,
                             const std::filesystem::path& path) {
  ir::TensorMap inputs{{run.model.inputs[0].name, images}};
  const ir::TensorMap outputs = graph::run_onnx_runtime(path, inputs);
  torch::NoGradGuard no_grad;
  graph::GraphModule module(exported);
  module.eval();
  const torch::Tensor expected = module.forward(lowering::to_torch(images));
  const torch::Tensor actual = lowering::to_torch(outputs.begin()->second);
  const double error = (actual - expected).abs().max().item<double>() / std::max(1e-6, expected.abs().max().item<double>());
  if (error > 1e-3) {
    throw SearchError(fmt::format("ONNX Runtime's answers for {} differ from libtorch's by {:.2g} (relative); the export is wrong",
                                  path.string(), error));
  }
}

}  // namespace

void export_files(RunContext& run) {
  const auto onnx_path = run.options.out / "adapted.onnx";
  const auto script_path = run.options.out / "adapted.pt";
  ir::Tensor samples = rows({run.calibration}, 0, std::min<int64_t>(8, run.calibration.shape[0]))[0];
  const graph::Graph exported = exported_form(run, samples);
  write_atomically(onnx_path, [&](const std::filesystem::path& path) { graph::write_onnx(exported, path); });
  check_with_onnx_runtime(run, exported, samples, onnx_path);
  write_atomically(script_path, [&](const std::filesystem::path& path) { graph::export_torchscript(exported, path.string(), true); });
  std::string int8_files;
  if (run.int8()) {
    // Both int8 forms, whichever backend was searched: each runtime's file, calibrated as verified.
    const graph::Graph form = quant::quantizable_form(run.adapted);
    const quant::QuantPlan plan = quant::plan_quantization(form, quant::calibrate(form, run.int8_calibration()));
    const auto int8_onnx = run.options.out / "adapted.int8.onnx", int8_script = run.options.out / "adapted.int8.pt";
    write_atomically(int8_onnx, [&](const std::filesystem::path& path) { quant::write_qdq_onnx(form, plan, path); });
    write_atomically(int8_script, [&](const std::filesystem::path& path) { quant::write_quantized_torchscript(form, plan, path); });
    int8_files = ", " + int8_onnx.string() + ", " + int8_script.string();
  }
  if (!run.int8()) {
    // The int8 verification scores files through their runtimes, not per class.
    const auto before = run.task->test_per_class(run.model), after = run.task->test_per_class(run.adapted);
    run.report.classes.clear();
    for (size_t c = 0; c < before.size() && c < after.size(); ++c) {
      run.report.classes.push_back({before[c].name, before[c].images, before[c].percent(), after[c].percent()});
    }
  }
  if (run.options.fold_preprocessing) {
    run.report.notes.push_back(fmt::format("adapted.onnx and adapted.pt normalise their input themselves (mean {}, std {}): feed them samples "
                                           "before normalisation", fmt::join(or_default(run.options.input.mean, 0), ","),
                                           fmt::join(or_default(run.options.input.std, 1), ",")));
  }
  run.report.finished_at = utc_now();
  explaining_failure(run.options.out / "report.json", [&] { report::write_report(run.report, run.options.out); });
  run.summary = "wrote " + onnx_path.string() + ", " + script_path.string() + int8_files + ", report.json and report.html";
}

}  // namespace gos::search
