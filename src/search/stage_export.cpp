// Stage 8, export: the adapted model as ONNX (checked, then run by ONNX Runtime and compared with
// libtorch) and as TorchScript for PyTorch Mobile, and the report as JSON and HTML.
#include <torch/torch.h>

#include <fmt/format.h>

#include <ctime>

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

// ONNX Runtime must give the adapted model's answers on a few calibration images.
void check_with_onnx_runtime(const RunContext& run, const std::filesystem::path& path) {
  const auto images = rows({run.calibration}, 0, std::min<int64_t>(8, run.calibration.shape[0]));
  ir::TensorMap inputs{{run.model.inputs[0].name, images[0]}};
  const ir::TensorMap outputs = graph::run_onnx_runtime(path, inputs);
  torch::NoGradGuard no_grad;
  graph::GraphModule module(run.adapted);
  module.eval();
  const torch::Tensor expected = module.forward(lowering::to_torch(images[0]));
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
  write_atomically(onnx_path, [&](const std::filesystem::path& path) { graph::write_onnx(run.adapted, path); });
  check_with_onnx_runtime(run, onnx_path);
  write_atomically(script_path, [&](const std::filesystem::path& path) { graph::export_torchscript(run.adapted, path.string(), true); });
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
  run.report.finished_at = utc_now();
  explaining_failure(run.options.out / "report.json", [&] { report::write_report(run.report, run.options.out); });
  run.summary = "wrote " + onnx_path.string() + ", " + script_path.string() + int8_files + ", report.json and report.html";
}

}  // namespace gos::search
