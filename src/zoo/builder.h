#pragma once
// Internal to the zoo: a small graph builder and the layers the models are made of. Every model
// file reads as its architecture; shapes, node names, wiring and weight initialisation live here.
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "graph/graph.h"
#include "ir/ir.h"

namespace gos::zoo::detail {

using graph::Shape;

// Kaiming-normal weights from std::mt19937_64, whose sequence the standard fixes, turned into
// normals by Box-Muller (std::normal_distribution differs between standard libraries).
class WeightInit {
 public:
  explicit WeightInit(uint64_t seed) : engine_(seed) {}
  ir::Tensor kaiming_normal(const Shape& shape, int64_t fan_in);

 private:
  double uniform();  // in (0, 1)
  double normal();
  std::mt19937_64 engine_;
};

// Appends nodes in topological order, recording every value's shape. Each node writes one value
// named after the node, so a node and its output share a name.
class GraphBuilder {
 public:
  GraphBuilder(std::string model_name, uint64_t seed) : init_(seed) { graph_.name = std::move(model_name); }

  std::string input(const std::string& name, const Shape& shape);
  // A compute node. Every param is initialised: a bias "B" to zeros, any other weight Kaiming with
  // fan-in = elements / first dimension (zoo weights are laid out output-first).
  std::string compute(const std::string& name, std::string_view op_type, ir::OpExpr op,
                      std::vector<std::string> inputs);
  std::string structural(const std::string& name, std::string_view op_type, std::vector<std::string> inputs,
                         const Shape& output_shape, ir::TensorMap weights = {},
                         std::map<std::string, graph::Attribute> attributes = {});
  // A non-learned tensor that structural nodes read (Reshape's target shape).
  std::string constant(const std::string& name, ir::Tensor value);
  // Names `value` as the graph output "output", validates and returns the graph.
  graph::Graph finish(const std::string& value);

  const Shape& shape(const std::string& value) const { return graph_.shape_of(value); }

 private:
  std::string add_node(graph::Node node, const Shape& output_shape);
  graph::Graph graph_;
  WeightInit init_;
};

// ---- Layers -------------------------------------------------------------------------------------
// Each takes a node name (or prefix) and its input value and returns its output value. Data is
// NCHW for 2-D layers and NCL for 1-D ones; the rank of the input picks which.

// Y = X * (1/std_dev) + (-mean/std_dev) with scalar consts: the input normalisation, inside the model.
std::string normalize(GraphBuilder& builder, const std::string& name, const std::string& x, double mean,
                      double std_dev);

struct ConvOptions {
  int64_t out_channels = 1;
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t groups = 1;
  // On every side; by default dilation*(kernel-1)/2, "same" at stride 1.
  std::optional<int64_t> padding = std::nullopt;
  bool bias = false;
};
std::string conv(GraphBuilder& builder, const std::string& name, const std::string& x, const ConvOptions& options);
std::string batch_norm(GraphBuilder& builder, const std::string& name, const std::string& x);
std::string activation(GraphBuilder& builder, const std::string& name, const std::string& x, ir::Activation act);
// conv -> BatchNormalization -> activation (none: conv -> BatchNormalization), nodes
// `prefix`.conv, `prefix`.bn, `prefix`.act.
std::string conv_bn(GraphBuilder& builder, const std::string& prefix, const std::string& x, const ConvOptions& options,
                    ir::Activation act);
// Y = act(X + Z).
std::string add(GraphBuilder& builder, const std::string& name, const std::string& x, const std::string& z,
                ir::Activation act = ir::Activation::None);
// 2x2 stride-2 max pooling.
std::string max_pool(GraphBuilder& builder, const std::string& name, const std::string& x, bool ceil_mode = false);
// Flatten with axis 1: [N,...] -> [N,rest].
std::string flatten(GraphBuilder& builder, const std::string& name, const std::string& x);
// GlobalAveragePool then Flatten, as exporters write it: [N,C,...] -> [N,C].
std::string global_pool(GraphBuilder& builder, const std::string& prefix, const std::string& x);
// Gemm on [N,in] with bias.
std::string linear(GraphBuilder& builder, const std::string& name, const std::string& x, int64_t out_features,
                   ir::Activation act = ir::Activation::None);
// LayerNormalization over the last dimension.
std::string layer_norm(GraphBuilder& builder, const std::string& name, const std::string& x);
// A compute node written in the notation (docs/notation.md), for operators no constructor
// writes; `extents` is its where clause.
std::string instructions(GraphBuilder& builder, const std::string& name, std::string_view op_type,
                         std::string_view text, std::string_view extents, std::vector<std::string> inputs);

}  // namespace gos::zoo::detail
