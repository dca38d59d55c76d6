#pragma once
// Internal to the graph part: plain C++ reference execution of structural nodes (ONNX semantics),
// used by graph::evaluate. Slow and simple, like the IR interpreter.
#include <functional>

#include "graph/graph.h"

namespace gos::graph::detail {

// Resolves a node input (a computed value or a graph constant) by name.
using ValueLookup = std::function<const ir::Tensor&(const std::string&)>;

std::vector<ir::Tensor> run_structural(const Node& node, const ValueLookup& lookup);

// Reading a structural node's attributes and constant inputs, shared by the reference execution
// and the libtorch planning (structural_torch.h). Errors throw GraphError naming the node.
int64_t normalise_axis(int64_t axis, size_t rank, const Node& node);

template <typename T>
T attribute_or(const Node& node, const std::string& name, T fallback) {
  auto found = node.attributes.find(name);
  if (found == node.attributes.end()) return fallback;
  if (const T* value = std::get_if<T>(&found->second)) return *value;
  throw GraphError("node '" + node.name + "' (" + node.op_type + "): attribute " + name + " has the wrong type");
}

float attribute_float(const Node& node, const std::string& name, float fallback);

// Integer list from an attribute (older opsets) or from a constant input (newer opsets).
std::optional<std::vector<int64_t>> int_list(const Node& node, const std::string& attribute, size_t input,
                                             const ValueLookup& lookup);

// Flatten's axis in 0..rank (ONNX allows -rank..rank; a negative one counts from rank).
int64_t flatten_axis(const Node& node, size_t rank);

// Resize (nearest or linear, ONNX's coordinate transformations but tf_crop_and_resize) along one
// axis: output position e reads input positions lower[e] and upper[e], weighed 1 - weight[e] and
// weight[e] (nearest: weight 0). Null for an axis that keeps its size and positions. The node's
// inputs are ONNX's [X, roi, scales, sizes] (roi unused, scales or sizes given).
struct ResizeAxis {
  std::vector<int64_t> lower, upper;
  std::vector<double> weight;
};
std::vector<std::optional<ResizeAxis>> resize_axes(const Node& node, const Shape& input, const ValueLookup& lookup);
// Why a Resize node's attributes ask for what gos does not execute (cubic mode, a crop, an unknown
// rounding), or nothing: import refuses such a node, resize_axes throws for it.
std::optional<std::string> resize_unsupported(const Node& node);

}  // namespace gos::graph::detail
