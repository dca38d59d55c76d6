#pragma once
// Internal to ONNX import: the graph pass that moves activations and biases into the compute
// node before them (see onnx_fuse.cpp).
#include "graph/graph.h"

namespace gos::graph::onnx_import {

// Fuses each activation or bias-add compute node into its producer when the producer's result is
// read by nothing else and its last statement has no activation (and, for a bias, no addend).
void fuse_epilogues(Graph& graph);

}  // namespace gos::graph::onnx_import
