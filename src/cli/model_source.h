#pragma once
// Internal to the CLI: what a MODEL argument names, an ONNX file or (when no file has that name)
// a zoo model built in C++ as its ONNX import would read (zoo::inference_graph) with seeded random
// weights.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "graph/onnx_import.h"
#include "zoo/zoo.h"

namespace gos::cli {

// One line on stderr when ONNX's version converter upgraded the file (an opset below 11).
inline graph::ImportResult said_upgraded(graph::ImportResult result, const std::string& model) {
  if (result.upgraded_from_opset > 0) {
    fmt::print(stderr, "gos: {} uses opset {}; upgraded to opset {} with ONNX's version converter\n", model, result.upgraded_from_opset,
               result.opset);
  }
  return result;
}

// `input_shape`: graph::ImportOptions::input_shape (--input-shape).
inline graph::ImportResult load_model(const std::string& model, bool allow_unsupported, const graph::Shape& input_shape = {}) {
  const auto names = zoo::model_names();
  if (!std::filesystem::exists(model) && std::find(names.begin(), names.end(), model) != names.end()) {
    graph::ImportResult built;
    built.graph = zoo::inference_graph(model, /*seed=*/0);
    return built;
  }
  if (!std::filesystem::exists(model) && std::filesystem::path(model).extension() != ".onnx") {
    throw graph::GraphError(fmt::format("{} is neither an ONNX file (no such file) nor a zoo model ({})", model,
                                        fmt::join(names, ", ")));
  }
  return said_upgraded(graph::import_onnx(model, {.allow_unsupported = allow_unsupported, .input_shape = input_shape}), model);
}

}  // namespace gos::cli
