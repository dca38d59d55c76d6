#pragma once
// Test support for the ONNX export tests: many operators as one graph (so one ONNX file and one
// ONNX Runtime process serve many cases), export to a temporary file, and the comparison with the
// reference interpreter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "ir/ir.h"
#include "util/scratch_folder.h"

namespace gos::graph::test_support {

// One operator with values for its inputs and params.
struct OpCase {
  std::string label;  // says which case failed
  ir::OpExpr op;
  ir::TensorMap bindings;
};

inline std::string value_name(size_t case_index, const std::string& tensor) {
  return "case" + std::to_string(case_index) + "_" + tensor;
}

// Independent compute nodes, one per case: node "caseI" reads graph inputs caseI_<input> and
// writes the graph output caseI_Y.
inline Graph graph_of_cases(const std::vector<OpCase>& cases) {
  Graph graph;
  graph.name = "cases";
  for (size_t i = 0; i < cases.size(); ++i) {
    Node node;
    node.name = "case" + std::to_string(i);
    node.op_type = "Instructions";
    node.op = cases[i].op;
    for (const auto& tensor : cases[i].op.tensors()) {
      if (tensor.role == ir::Role::Input) {
        std::string value = value_name(i, tensor.name);
        graph.inputs.push_back({value, tensor.shape});
        graph.shapes[value] = tensor.shape;
        node.inputs.push_back(value);
      } else if (tensor.role == ir::Role::Param) {
        node.weights[tensor.name] = cases[i].bindings.at(tensor.name);
      }
    }
    std::string output = value_name(i, "Y");
    node.outputs = {output};
    graph.shapes[output] = cases[i].op.output().shape;
    graph.outputs.push_back({output, cases[i].op.output().shape});
    graph.nodes.push_back(std::move(node));
  }
  return graph;
}

inline ir::TensorMap graph_inputs_of_cases(const std::vector<OpCase>& cases) {
  ir::TensorMap inputs;
  for (size_t i = 0; i < cases.size(); ++i) {
    for (const auto& tensor : cases[i].op.tensors_with_role(ir::Role::Input)) {
      inputs[value_name(i, tensor.name)] = cases[i].bindings.at(tensor.name);
    }
  }
  return inputs;
}

// A folder for the exported files of one test, removed afterwards.
using ScratchFolder = util::ScratchFolder;

// ONNX Runtime's output equals the reference within 1e-4 of the output's scale (its largest
// magnitude, at least 1).
inline ::testing::AssertionResult close_to_reference(const ir::Tensor& actual, const ir::Tensor& expected) {
  if (actual.shape != expected.shape) {
    auto text = [](const std::vector<int64_t>& shape) {
      std::string out;
      for (int64_t extent : shape) out += (out.empty() ? "" : "x") + std::to_string(extent);
      return "[" + out + "]";
    };
    return ::testing::AssertionFailure() << "shape " << text(actual.shape) << " but the reference is " << text(expected.shape);
  }
  double scale = 1;
  for (float value : expected.data) scale = std::max(scale, std::abs(static_cast<double>(value)));
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    double error = std::abs(static_cast<double>(actual.data[i]) - expected.data[i]);
    if (!(error <= worst) || std::isnan(error)) {
      worst = std::isnan(error) ? INFINITY : error;
      worst_at = i;
    }
  }
  if (worst <= 1e-4 * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max abs error " << worst << " at element " << worst_at << " (got "
                                       << actual.data[worst_at] << ", expected " << expected.data[worst_at]
                                       << "; output scale " << scale << ")";
}

}  // namespace gos::graph::test_support
