#pragma once
// The ONNX export face of the graph part: a whole Graph as a standard ONNX model (opset 17, IR
// version 8) that any runtime runs. Compute nodes are lowered from their instructions
// (lowering/onnx_lowering.h); structural nodes are written as the ONNX operators they are, with
// their attributes and constant inputs in opset 17's form. BatchNormalization nodes are folded
// into the conv or linear before them first. Graph inputs and outputs get a symbolic batch
// dimension "N", so the file runs at any batch size.
#include <onnx/onnx_pb.h>

#include <filesystem>

#include "graph/graph.h"

namespace gos::graph {

struct OnnxExportOptions {
  bool symbolic_batch = true;     // dimension 0 of the graph inputs and outputs is "N", not 1
  bool recognise_kernels = true;  // false: every compute node takes the generic lowering
};

// Throws GraphError naming the node that cannot be written.
onnx::ModelProto to_onnx(const Graph& graph, const OnnxExportOptions& options = {});

// onnx::checker and strict ONNX shape inference (which also checks the declared output shapes
// against the inferred ones); throws GraphError saying which check failed and ONNX's reason.
void check_onnx(const onnx::ModelProto& model);

// to_onnx, check_onnx, then writes the file; throws GraphError if any step fails.
void write_onnx(const Graph& graph, const std::filesystem::path& path, const OnnxExportOptions& options = {});

}  // namespace gos::graph
