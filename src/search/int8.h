#pragma once
// Internal to the search and the CLI: a model's files as a backend runs them in fp32 and in int8
// (quant/quant.h), scored on the test set as run there, and the fake-quantized evaluation the int8
// search measures candidates with.
#include <filesystem>

#include "graph/graph.h"
#include "measure/measure.h"
#include "quant/quant.h"
#include "search/adapt_task.h"

namespace gos::search {

// Training samples the int8 files are calibrated on, as gos quantize does by default.
constexpr int64_t kInt8CalibrationSamples = 512;

// The file the backend times a model from: frozen mobile-optimised TorchScript (mobile), plain
// TorchScript (torch) or ONNX (ort), at `stem` + ".pt" or ".onnx"; returns its path.
std::filesystem::path write_fp32_file(const graph::Graph& model, measure::Backend backend, const std::filesystem::path& stem);
// The model's int8 form calibrated on `samples` (quantizable_form, then quant::calibrate), written
// as the backend runs it: the QDQ ONNX file on ort, the quantized TorchScript on mobile, at
// `stem` + ".int8.onnx" or ".int8.pt". Returns the path and the plan.
std::pair<std::filesystem::path, quant::QuantPlan> write_int8_file(const graph::Graph& model, const ir::Tensor& samples,
                                                                    measure::Backend backend, const std::filesystem::path& stem);
// The test quality of a written file, run the way the backend runs it (ONNX Runtime, or
// TorchScript with the platform's quantized engine).
double file_test_quality(const std::filesystem::path& file, const graph::Graph& model, const AdaptTask& task, measure::Backend backend);

// Validation quality of `model` as its int8 form computes it: calibrated on `calibration`, then
// every planned value and int8 weight rounded (quant::fake_quantized_outputs).
double fake_quantized_validation_quality(const graph::Graph& model, const ir::Tensor& calibration, const AdaptTask& task, int64_t count);

}  // namespace gos::search
