#pragma once
// Internal to the CLI: a model's outputs for given inputs, computed by one of gos's backends (the
// IR interpreter, libtorch, TorchScript optimised for mobile, or gos's ONNX re-export in ONNX
// Runtime). `gos run` and `gos conformance` share them.
#include <string>

#include "graph/graph.h"

namespace gos::cli {

// The backends by name, as --backend takes them.
inline const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names{"interpreter", "torch", "mobile", "ort"};
  return names;
}

// `inputs` by graph input name; every input's first dimension is the batch (any size), the others
// the model's. Returns the outputs by graph output name. Throws what the backend throws.
ir::TensorMap run_on_backend(const graph::Graph& model, const ir::TensorMap& inputs, const std::string& backend);

// A TorchScript file written for `model` (graph::export_torchscript), loaded and run by libtorch.
ir::TensorMap run_torchscript_file(const graph::Graph& model, const std::string& path, const ir::TensorMap& inputs);

}  // namespace gos::cli
