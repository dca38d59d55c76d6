#pragma once
// Small hand-built graphs for the libtorch and TorchScript tests of the graph part, and the
// comparisons they share. Between them the graphs use every structural op type.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/torch_module.h"
#include "ir/ops.h"
#include "lowering/torch_lowering.h"

namespace gos::graph::test_graphs {

using lowering::from_torch;
using lowering::to_torch;

constexpr double kTolerance = 1e-4;

inline ir::Tensor random_tensor(const Shape& shape, std::mt19937& rng, float low = -1, float high = 1) {
  ir::Tensor tensor(shape);
  std::uniform_real_distribution<float> uniform(low, high);
  for (float& v : tensor.data) v = uniform(rng);
  return tensor;
}

// Adds nodes with their output shapes and random weights, keeping the graph valid as it grows.
class GraphBuilder {
 public:
  GraphBuilder(std::string name, uint32_t seed) : rng_(seed) { graph_.name = std::move(name); }

  void input(const std::string& name, const Shape& shape) {
    graph_.inputs.push_back({name, shape});
    graph_.shapes[name] = shape;
  }
  void constant(const std::string& name, ir::Tensor value) { graph_.constants[name] = std::move(value); }

  Node& compute(const std::string& name, const std::vector<std::string>& inputs, ir::OpExpr op) {
    Node node{name, name, inputs, {name + "_out"}, op, {}, {}};
    for (const auto& param : op.tensors_with_role(ir::Role::Param)) node.weights[param.name] = random_tensor(param.shape, rng_);
    graph_.shapes[node.outputs[0]] = op.output().shape;
    graph_.nodes.push_back(std::move(node));
    return graph_.nodes.back();
  }

  Node& structural(const std::string& name, const std::string& op_type, const std::vector<std::string>& inputs,
                   const std::vector<Shape>& output_shapes, std::map<std::string, Attribute> attributes = {}) {
    Node node{name, op_type, inputs, {}, std::nullopt, {}, std::move(attributes)};
    for (size_t i = 0; i < output_shapes.size(); ++i) {
      node.outputs.push_back(output_shapes.size() == 1 ? name + "_out" : name + "_out" + std::to_string(i));
      graph_.shapes[node.outputs.back()] = output_shapes[i];
    }
    graph_.nodes.push_back(std::move(node));
    return graph_.nodes.back();
  }

  // BatchNormalization over dimension 1 with random statistics.
  Node& batch_norm(const std::string& name, const std::string& input, const Shape& shape) {
    Node& node = structural(name, "BatchNormalization", {input}, {shape}, {{"epsilon", 1e-3}});
    Shape channels{shape[1]};
    node.weights = {{"scale", random_tensor(channels, rng_, 0.5, 1.5)}, {"B", random_tensor(channels, rng_)},
                    {"mean", random_tensor(channels, rng_)}, {"var", random_tensor(channels, rng_, 0.5, 2)}};
    return node;
  }

  Node& layer_norm(const std::string& name, const std::string& input, const Shape& shape) {
    Node& node = structural(name, "LayerNormalization", {input}, {shape}, {{"axis", int64_t{-1}}});
    Shape normalized{shape.back()};
    node.weights = {{"scale", random_tensor(normalized, rng_, 0.5, 1.5)}, {"B", random_tensor(normalized, rng_)}};
    return node;
  }

  Graph finish(const std::vector<std::string>& outputs) {
    for (const auto& output : outputs) graph_.outputs.push_back({output, graph_.shapes.at(output)});
    validate(graph_);
    return graph_;
  }

 private:
  Graph graph_;
  std::mt19937 rng_;
};

inline ir::OpExpr conv(int64_t in, int64_t out, int64_t size, int64_t kernel, ir::Activation activation) {
  int64_t pad = kernel / 2;
  return ir::conv2d({.in_channels = in, .out_channels = out, .input_size = {size, size}, .kernel = {kernel, kernel},
                     .padding = {pad, pad, pad, pad}, .bias = true, .activation = activation});
}

// conv 3x3 -> BatchNormalization -> ReLU -> Flatten -> linear (graph_test.cpp's small classifier)
inline Graph small_classifier(uint32_t seed = 1) {
  GraphBuilder b("small classifier", seed);
  b.input("image", {1, 2, 5, 5});
  b.compute("conv", {"image"}, conv(2, 4, 5, 3, ir::Activation::None));
  b.batch_norm("bn", "conv_out", {1, 4, 5, 5});
  b.compute("relu", {"bn_out"}, ir::activation({1, 4, 5, 5}, ir::Activation::Relu));
  b.structural("flatten", "Flatten", {"relu_out"}, {{1, 100}}, {{"axis", int64_t{1}}});
  b.compute("fc", {"flatten_out"}, ir::linear({.in_features = 100, .out_features = 3, .bias = true}));
  return b.finish({"fc_out"});
}

// x -> conv+relu -> conv -> relu(x + .)
inline Graph residual_block(uint32_t seed = 2) {
  GraphBuilder b("residual", seed);
  b.input("x", {1, 4, 6, 6});
  b.compute("conv1", {"x"}, conv(4, 4, 6, 3, ir::Activation::Relu));
  b.compute("conv2", {"conv1_out"}, conv(4, 4, 6, 3, ir::Activation::None));
  b.compute("add", {"x", "conv2_out"}, ir::add({1, 4, 6, 6}, ir::Activation::Relu));
  return b.finish({"add_out"});
}

// Squeeze-and-excitation: global pool -> 1x1 convs -> hard sigmoid -> Mul broadcast over H, W.
inline Graph se_block(uint32_t seed = 3) {
  GraphBuilder b("se block", seed);
  b.input("x", {1, 4, 5, 5});
  b.compute("pool", {"x"}, ir::global_average_pool(1, 4, {5, 5}));
  b.compute("reduce", {"pool_out"}, conv(4, 2, 1, 1, ir::Activation::Relu));
  b.compute("expand", {"reduce_out"}, conv(2, 4, 1, 1, ir::Activation::HardSigmoid));
  b.structural("scale", "Mul", {"x", "expand_out"}, {{1, 4, 5, 5}});
  return b.finish({"scale_out"});
}

// Tokens through a shared weight, LayerNorm over features, softmax.
inline Graph layer_norm_softmax(uint32_t seed = 4) {
  GraphBuilder b("layer norm softmax", seed);
  b.input("tokens", {1, 3, 8});
  b.compute("project", {"tokens"}, ir::matmul({.batch_dims = {1}, .m = 3, .k = 8, .n = 6, .weight_rhs = true}));
  b.layer_norm("norm", "project_out", {1, 3, 6});
  b.structural("softmax", "Softmax", {"norm_out"}, {{1, 3, 6}}, {{"axis", int64_t{-1}}});
  return b.finish({"softmax_out"});
}

// An MLP-Mixer block's products: mixing across tokens (the weight on the left of the product),
// LayerNorm over features, then mixing across features (a linear layer on 3-D data, its weight
// stored [out, in]).
inline Graph mixer_block(uint32_t seed = 8) {
  GraphBuilder b("mixer block", seed);
  b.input("tokens", {1, 6, 8});
  b.compute("mix", {"tokens"}, ir::matmul({.batch_dims = {1}, .m = 4, .k = 6, .n = 8, .weight_lhs = true, .bias = true}));
  b.layer_norm("norm", "mix_out", {1, 4, 8});
  b.compute("channels", {"norm_out"},
            ir::matmul({.batch_dims = {1}, .m = 4, .k = 8, .n = 5, .weight_rhs = true, .weight_transposed = true,
                        .bias = true}));
  return b.finish({"channels_out"});
}

// The remaining structural op types in one chain, with two outputs.
inline Graph structural_tour(uint32_t seed = 5) {
  GraphBuilder b("structural tour", seed);
  b.input("x", {1, 2, 3, 4});
  b.constant("static_batch_shape", ir::Tensor({3}, {1, 6, 4}));
  b.constant("axis1", ir::Tensor({1}, {1}));
  b.constant("two", ir::Tensor({1}, {2}));
  b.constant("halves", ir::Tensor({1, 1, 8}, {0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4}));
  b.structural("transpose", "Transpose", {"x"}, {{1, 3, 2, 4}}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  b.structural("reshape", "Reshape", {"transpose_out", "static_batch_shape"}, {{1, 6, 4}});
  b.structural("unsqueeze", "Unsqueeze", {"reshape_out", "axis1"}, {{1, 1, 6, 4}});
  b.structural("squeeze", "Squeeze", {"unsqueeze_out"}, {{1, 6, 4}}, {{"axes", std::vector<int64_t>{1}}});
  b.structural("split", "Split", {"squeeze_out"}, {{1, 2, 4}, {1, 4, 4}},
               {{"axis", int64_t{1}}, {"split", std::vector<int64_t>{2, 4}}});
  b.structural("slice", "Slice", {"split_out1"}, {{1, 2, 4}},
               {{"starts", std::vector<int64_t>{3}}, {"ends", std::vector<int64_t>{-10}},
                {"axes", std::vector<int64_t>{1}}, {"steps", std::vector<int64_t>{-2}}});
  b.structural("concat", "Concat", {"split_out0", "slice_out"}, {{1, 2, 8}}, {{"axis", int64_t{2}}});
  b.structural("erf", "Erf", {"concat_out"}, {{1, 2, 8}});
  b.structural("exp", "Exp", {"erf_out"}, {{1, 2, 8}});
  b.structural("div", "Div", {"exp_out", "halves"}, {{1, 2, 8}});
  b.structural("pow", "Pow", {"div_out", "two"}, {{1, 2, 8}});
  b.structural("sqrt", "Sqrt", {"pow_out"}, {{1, 2, 8}});
  b.structural("sub", "Sub", {"sqrt_out", "concat_out"}, {{1, 2, 8}});
  b.structural("add", "Add", {"sub_out", "exp_out"}, {{1, 2, 8}});
  b.structural("mean", "ReduceMean", {"add_out"}, {{1, 2, 1}},
               {{"axes", std::vector<int64_t>{2}}, {"keepdims", int64_t{1}}});
  b.structural("log_softmax", "LogSoftmax", {"add_out"}, {{1, 2, 8}}, {{"axis", int64_t{1}}});
  b.structural("flatten", "Flatten", {"log_softmax_out"}, {{1, 16}}, {{"axis", int64_t{1}}});
  b.structural("identity", "Identity", {"flatten_out"}, {{1, 16}});
  b.batch_norm("bn", "mean_out", {1, 2, 1});
  return b.finish({"identity_out", "bn_out"});
}

// Compute nodes only the generic lowering computes: a depthwise-separable pair of statements,
// a channel shuffle and a max over a weighted window, then a classifier.
inline Graph generic_statements(uint32_t seed = 6) {
  GraphBuilder b("generic statements", seed);
  b.input("image", {1, 4, 6, 6});
  b.compute("separable", {"image"},
            ir::parse("T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s];"
                      "Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c] + B[k]) "
                      "where n<1, c<4, k<6, h<6, w<6, r<3, s<3"));
  b.compute("shuffle", {"separable_out"}, ir::parse("Y[n,3*g+c,h,w] = X[n,2*c+g,h,w] where n<1, g<2, c<3, h<6, w<6"));
  b.compute("window_max", {"shuffle_out"},
            ir::parse("Y[n,c,h,w] = max{r,s} X[n,c,2*h+r-1,2*w+s-1] * S[c,r,s] where n<1, c<6, h<3, w<3, r<3, s<3, "
                      "in X[1,6,6,6]"));
  b.structural("flatten", "Flatten", {"window_max_out"}, {{1, 54}}, {{"axis", int64_t{1}}});
  b.compute("fc", {"flatten_out"}, ir::linear({.in_features = 54, .out_features = 5, .bias = true}));
  return b.finish({"fc_out"});
}

// A temporal (1-D) block: dilated conv + ReLU, a causal grouped conv (asymmetric padding), a
// residual add, a strided conv, then global pooling and a classifier.
inline Graph temporal_block(uint32_t seed = 7) {
  GraphBuilder b("temporal block", seed);
  b.input("signal", {1, 4, 16});
  b.compute("dilated", {"signal"},
            ir::conv1d({.in_channels = 4, .out_channels = 6, .input_length = 16, .kernel = 3, .padding = {2, 2},
                        .dilation = 2, .bias = true, .activation = ir::Activation::Relu}));
  b.compute("causal", {"dilated_out"},
            ir::conv1d({.in_channels = 6, .out_channels = 6, .input_length = 16, .kernel = 3, .padding = {2, 0},
                        .groups = 3, .bias = false}));
  b.compute("residual", {"dilated_out", "causal_out"}, ir::add({1, 6, 16}, ir::Activation::Relu));
  b.compute("strided", {"residual_out"},
            ir::conv1d({.in_channels = 6, .out_channels = 8, .input_length = 16, .kernel = 3, .stride = 2,
                        .padding = {1, 1}, .bias = true, .activation = ir::Activation::Relu}));
  b.compute("pool", {"strided_out"}, ir::global_average_pool(1, 8, {8}));
  b.structural("flatten", "Flatten", {"pool_out"}, {{1, 8}}, {{"axis", int64_t{1}}});
  b.compute("fc", {"flatten_out"}, ir::linear({.in_features = 8, .out_features = 3, .bias = true}));
  return b.finish({"fc_out"});
}

// What image-to-image models add: padding modes, instance norm, PReLU and the parameterised
// activations, downsampling and upsampling resizes, gathers at constant indices.
inline Graph image_to_image_tour(uint32_t seed = 9) {
  GraphBuilder b("image-to-image tour", seed);
  std::mt19937 rng(seed);
  b.input("x", {1, 3, 4, 4});
  b.constant("reflect_pads", ir::Tensor({8}, {0, 0, 1, 1, 0, 0, 1, 1}));
  b.constant("edge_pads", ir::Tensor({8}, {0, 0, 1, 0, 0, 0, 0, 1}));
  b.constant("constant_pads", ir::Tensor({8}, {0, 0, 0, 1, 0, 0, 1, 0}));
  b.constant("half", ir::Tensor({}, {0.5f}));
  b.constant("sizes", ir::Tensor({4}, {1, 3, 5, 5}));
  b.constant("scales", ir::Tensor({4}, {1, 1, 2, 2}));
  b.constant("channels", ir::Tensor({2}, {2, 0}));
  b.constant("columns", ir::Tensor({2, 2}, {0, 9, -1, 4}));
  b.structural("reflect", "Pad", {"x", "reflect_pads"}, {{1, 3, 6, 6}}, {{"mode", std::string("reflect")}});
  Node& norm = b.structural("norm", "InstanceNormalization", {"reflect_out"}, {{1, 3, 6, 6}}, {{"epsilon", 1e-4}});
  norm.weights = {{"scale", random_tensor({3}, rng, 0.5, 1.5)}, {"B", random_tensor({3}, rng)}};
  Node& prelu = b.structural("prelu", "PRelu", {"norm_out"}, {{1, 3, 6, 6}});
  prelu.weights = {{"slope", random_tensor({3, 1, 1}, rng, 0, 0.5)}};
  b.structural("leaky", "LeakyRelu", {"prelu_out"}, {{1, 3, 6, 6}}, {{"alpha", 0.1}});
  b.structural("elu", "Elu", {"leaky_out"}, {{1, 3, 6, 6}}, {{"alpha", 0.5}});
  b.structural("selu", "Selu", {"elu_out"}, {{1, 3, 6, 6}});
  b.structural("softplus", "Softplus", {"selu_out"}, {{1, 3, 6, 6}});
  b.structural("edge", "Pad", {"softplus_out", "edge_pads"}, {{1, 3, 7, 7}}, {{"mode", std::string("edge")}});
  b.structural("constant", "Pad", {"edge_out", "constant_pads", "half"}, {{1, 3, 8, 8}});
  b.structural("down", "Resize", {"constant_out", "", "", "sizes"}, {{1, 3, 5, 5}}, {{"mode", std::string("linear")}});
  b.structural("up", "Resize", {"down_out", "", "scales"}, {{1, 3, 10, 10}},
               {{"mode", std::string("nearest")}, {"coordinate_transformation_mode", std::string("asymmetric")},
                {"nearest_mode", std::string("floor")}});
  b.structural("pick", "Gather", {"up_out", "channels"}, {{1, 2, 10, 10}}, {{"axis", int64_t{1}}});
  b.structural("cols", "Gather", {"pick_out", "columns"}, {{1, 2, 10, 2, 2}}, {{"axis", int64_t{3}}});
  return b.finish({"cols_out"});
}

struct NamedGraph {
  std::string name;
  Graph graph;
};

inline std::vector<NamedGraph> all_graphs() {
  return {{"small classifier", small_classifier()}, {"residual block", residual_block()}, {"SE block", se_block()},
          {"layer norm softmax", layer_norm_softmax()}, {"structural tour", structural_tour()},
          {"generic statements", generic_statements()}, {"temporal block", temporal_block()},
          {"mixer block", mixer_block()}, {"image-to-image tour", image_to_image_tour()}};
}

// Random graph inputs at `batch` samples.
inline std::vector<torch::Tensor> random_inputs(const Graph& graph, int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> inputs;
  for (const auto& input : graph.inputs) {
    Shape shape = input.shape;
    shape[0] = batch;
    inputs.push_back(torch::randn(shape));
  }
  return inputs;
}

// The interpreter's outputs on each sample of `inputs` (nominal batch 1), concatenated.
inline std::vector<torch::Tensor> interpreted(const Graph& graph, const std::vector<torch::Tensor>& inputs) {
  std::vector<std::vector<torch::Tensor>> per_output(graph.outputs.size());
  for (int64_t sample = 0; sample < inputs.at(0).size(0); ++sample) {
    ir::TensorMap bound;
    for (size_t i = 0; i < inputs.size(); ++i) bound[graph.inputs[i].name] = from_torch(inputs[i].narrow(0, sample, 1));
    ir::TensorMap outputs = evaluate(graph, bound);
    for (size_t i = 0; i < graph.outputs.size(); ++i) per_output[i].push_back(to_torch(outputs.at(graph.outputs[i].name)));
  }
  std::vector<torch::Tensor> results;
  for (const auto& parts : per_output) results.push_back(torch::cat(parts, 0));
  return results;
}

// Max abs difference over max(1, max abs of the expected), per output.
inline ::testing::AssertionResult all_close(const std::vector<torch::Tensor>& ours, const std::vector<torch::Tensor>& expected,
                                            double tolerance = kTolerance) {
  if (ours.size() != expected.size()) return ::testing::AssertionFailure() << "output counts differ";
  for (size_t i = 0; i < ours.size(); ++i) {
    if (ours[i].sizes() != expected[i].sizes()) {
      return ::testing::AssertionFailure() << "output " << i << " has shape " << ours[i].sizes() << " not "
                                           << expected[i].sizes();
    }
    double error = (ours[i] - expected[i]).abs().max().item<double>();
    double scale = std::max(1.0, expected[i].abs().max().item<double>());
    if (!(error / scale <= tolerance)) {
      return ::testing::AssertionFailure() << "output " << i << ": relative error " << error / scale << " exceeds "
                                           << tolerance;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace gos::graph::test_graphs
