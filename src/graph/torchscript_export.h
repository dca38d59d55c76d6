#pragma once
// The graph as TorchScript: a module whose forward runs every node with the same libtorch calls
// as GraphModule (compute nodes as methods from lowering/torchscript_lowering.h), every learned
// weight and constant a module attribute. Plain C++ face; libtorch stays in the .cpp.
#include <string>

#include "graph/graph.h"

namespace gos::graph {

// The module's source: one `def` per compute node and `forward(self, <graph inputs>)`, returning
// the output (or a tuple of the outputs). With `channels_last`, every 4-D input and compute output
// is made channels-last (NHWC in memory), the layout XNNPACK computes in.
std::string torchscript_source(const Graph& graph, bool channels_last = false);

// Compiles the source with torch::jit::Module::define, freezes it (torch::jit::freeze: weights
// become constants; eval-mode batch normalisation) and, with `optimise_for_mobile`, applies
// torch::jit::optimizeForMobile (XNNPACK prepacking, conv-bn folding) on the channels-last source
// (see torchscript_source): as PyTorch Mobile's performance advice runs a model. Writes `path` with
// Module::save (load with torch::jit::load), or for the lite interpreter with _save_for_mobile
// when `path` ends in ".ptl" (load with torch::jit::_load_for_mobile). Throws GraphError.
void export_torchscript(const Graph& graph, const std::string& path, bool optimise_for_mobile = true);

}  // namespace gos::graph
