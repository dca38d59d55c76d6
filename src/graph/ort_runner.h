#pragma once
// ONNX Runtime as an independent runner: runs ONNX files (the ones gos writes, or any other) on
// given inputs and returns their outputs, and optionally times them. Debian packages no ONNX
// Runtime, so gos drives the CPU build inside the npm package onnxruntime-node, which
// `make setup` installs into tools/ort; each call starts one Node.js process (about 0.1 s) that
// runs every model it is given (tools/ort/run.js, through files in a temporary folder).
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::graph {

// Node.js or the package is missing, the runner failed, or ONNX Runtime rejected a model.
class OrtError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OrtBench {
  int warmup = 5;             // untimed runs first
  int repeat = 30;            // timed runs (at least this many with a budget)
  double budget_seconds = 0;  // > 0: go on timing until this much time is spent,
  int max_repeat = 0;         // but stop at this many runs (0: no limit)
  bool profile = false;       // also time the kernels inside each run (OrtResult::kernel_timing)
};

struct OrtOptions {
  int threads = 1;               // intra-op threads (1: the single-core figure gos compares)
  std::optional<OrtBench> bench;  // time every run
};

struct OrtTiming {
  int repeat = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0, mean_ms = 0, min_ms = 0, max_ms = 0;
};

struct OrtRun {
  std::filesystem::path model;  // an ONNX file
  ir::TensorMap inputs;         // by graph input name (float32)
};

struct OrtResult {
  ir::TensorMap outputs;  // by graph output name
  std::optional<OrtTiming> timing;         // each run as the caller sees it
  std::optional<OrtTiming> kernel_timing;  // with OrtBench::profile: each run's node kernels summed,
                                           // from ONNX Runtime's profiler (no per-call cost),
  std::optional<OrtTiming> layout_timing;  // but the NCHWc layout reorders ONNX Runtime adds
                                           // around convolutions, summed here,
  std::optional<OrtTiming> quantize_timing;  // and a QDQ model's QuantizeLinear and
                                             // DequantizeLinear kernels, summed here
  std::string error;      // set when ONNX Runtime could not load or run this model
};

// Runs every model in one ONNX Runtime process. A model that fails has `error` set; a runner that
// cannot start throws OrtError.
std::vector<OrtResult> run_onnx_runtime(const std::vector<OrtRun>& runs, const OrtOptions& options = {});

// Runs one model; throws OrtError (with ONNX Runtime's message) if it fails.
ir::TensorMap run_onnx_runtime(const std::filesystem::path& model, const ir::TensorMap& inputs,
                               const OrtOptions& options = {});

// The onnxruntime-node version installed (e.g. "1.30.0"); throws OrtError if it is missing.
std::string onnx_runtime_version();

// The folder holding run.js and its node_modules: $GOS_ORT_DIR, else tools/ort in the source tree
// gos was built from.
std::filesystem::path ort_tool_dir();

}  // namespace gos::graph
