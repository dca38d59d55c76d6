// A model's fp32 and int8 files as the backends run them, and the fake-quantized evaluation.
#include "search/int8.h"

#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torchscript_export.h"
#include "quant/fake_quant.h"

namespace gos::search {

std::filesystem::path write_fp32_file(const graph::Graph& model, measure::Backend backend, const std::filesystem::path& stem) {
  if (backend == measure::Backend::Ort) {
    const auto path = std::filesystem::path(stem.string() + ".onnx");
    graph::write_onnx(model, path);
    return path;
  }
  const auto path = std::filesystem::path(stem.string() + ".pt");
  graph::export_torchscript(model, path.string(), /*optimise_for_mobile=*/backend == measure::Backend::Mobile);
  return path;
}

std::pair<std::filesystem::path, quant::QuantPlan> write_int8_file(const graph::Graph& model, const ir::Tensor& samples,
                                                                    measure::Backend backend, const std::filesystem::path& stem) {
  const graph::Graph form = quant::quantizable_form(model);
  const quant::QuantPlan plan = quant::plan_quantization(form, quant::calibrate(form, samples));
  if (backend == measure::Backend::Ort) {
    const auto path = std::filesystem::path(stem.string() + ".int8.onnx");
    quant::write_qdq_onnx(form, plan, path);
    return {path, plan};
  }
  if (backend == measure::Backend::Torch) throw measure::MeasureError("torch has no int8 form; int8 runs on mobile and ort");
  const auto path = std::filesystem::path(stem.string() + ".int8.pt");
  quant::write_quantized_torchscript(form, plan, path);
  return {path, plan};
}

double file_test_quality(const std::filesystem::path& file, const graph::Graph& model, const AdaptTask& task, measure::Backend backend) {
  const std::string input = model.inputs.at(0).name, output = model.outputs.at(0).name;
  if (backend == measure::Backend::Ort) {
    return task.test_quality_through(
        [&](const ir::Tensor& inputs) { return graph::run_onnx_runtime(file, {{input, inputs}}, {.threads = 2}).at(output); });
  }
  return task.test_quality_through([&](const ir::Tensor& inputs) { return quant::run_torchscript(file, inputs); });
}

double fake_quantized_validation_quality(const graph::Graph& model, const ir::Tensor& calibration, const AdaptTask& task, int64_t count) {
  const graph::Graph form = quant::quantizable_form(model);
  const quant::QuantPlan plan = quant::plan_quantization(form, quant::calibrate(form, calibration));
  return task.validation_quality_of(quant::fake_quantized_outputs(form, plan, task.validation_inputs(count)), count);
}

}  // namespace gos::search
