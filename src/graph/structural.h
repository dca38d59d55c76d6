#pragma once
// Internal to the graph part: plain C++ reference execution of structural nodes (ONNX semantics),
// used by graph::evaluate. Slow and simple, like the IR interpreter.
#include <functional>

#include "graph/graph.h"

namespace gos::graph::detail {

// Resolves a node input (a computed value or a graph constant) by name.
using ValueLookup = std::function<const ir::Tensor&(const std::string&)>;

std::vector<ir::Tensor> run_structural(const Node& node, const ValueLookup& lookup);

}  // namespace gos::graph::detail
