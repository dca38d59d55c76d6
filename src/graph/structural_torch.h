#pragma once
// Internal to the graph part: a structural node as libtorch calls (lowering/torch_program.h),
// which GraphModule runs eagerly and export_torchscript prints, with the ONNX semantics of the
// reference execution (structural.h). Plain C++.
//
// Calls read the node's inputs and the graph's constants by value name, and the node's learned
// weights (BatchNormalization, LayerNormalization) as ValueRef{name, weight = true}. Each node
// output is defined by a call of that name; helper values are named "<output>$<k>".
//
// Batch: shapes are nominal, but the calls run at any batch size. Reshape copies dimension 0 from
// its input where the target's entry is 0, and also where it equals the input's nominal dimension
// 0 with the output keeping it (exporters write a static batch of 1); other axes are static.
#include <vector>

#include "graph/graph.h"
#include "lowering/torch_program.h"

namespace gos::graph::detail {

std::vector<lowering::TorchCall> plan_structural(const Graph& graph, const Node& node);

}  // namespace gos::graph::detail
