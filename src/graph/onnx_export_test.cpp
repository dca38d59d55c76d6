// Whole graphs exported as ONNX and run by ONNX Runtime equal graph::evaluate, at the nominal batch
// and at a larger one; files that ONNX rejects are reported with ONNX's reason.
#include "graph/onnx_export.h"

#include <gtest/gtest.h>

#include "graph/onnx_export_test_support.h"
#include "ir/ops.h"
#include "ir/ops_test_specs.h"

namespace gos::graph {
namespace {

using ir::test_specs::Random;
using test_support::close_to_reference;
using test_support::ScratchFolder;

ir::Tensor random_tensor(const Shape& shape, Random& random, float low = -2.0f, float high = 2.0f) {
  ir::Tensor tensor(shape);
  for (float& value : tensor.data) value = random.uniform(low, high);
  return tensor;
}

// Builds a graph node by node, keeping every value's shape.
class GraphBuilder {
 public:
  explicit GraphBuilder(uint32_t seed) : random_(seed) { graph_.name = "test"; }

  std::string input(const std::string& name, const Shape& shape) {
    graph_.inputs.push_back({name, shape});
    graph_.shapes[name] = shape;
    return name;
  }

  // A compute node with random params.
  std::string compute(const std::string& name, const ir::OpExpr& op, const std::vector<std::string>& inputs) {
    Node node{.name = name, .op_type = "Instructions", .inputs = inputs, .outputs = {name + "_out"}, .op = op};
    for (const auto& param : op.tensors_with_role(ir::Role::Param)) node.weights[param.name] = random_tensor(param.shape, random_);
    return add(std::move(node), op.output().shape);
  }

  std::string structural(const std::string& name, const std::string& op_type, const std::vector<std::string>& inputs,
                         const Shape& output_shape, std::map<std::string, Attribute> attributes = {},
                         ir::TensorMap weights = {}) {
    Node node{.name = name, .op_type = op_type, .inputs = inputs, .outputs = {name + "_out"}, .weights = weights,
              .attributes = attributes};
    return add(std::move(node), output_shape);
  }

  std::string constant(const std::string& name, ir::Tensor value) {
    graph_.constants[name] = std::move(value);
    return name;
  }

  Random& random() { return random_; }

  Graph finish(const std::string& output) {
    graph_.outputs.push_back({output, graph_.shapes.at(output)});
    validate(graph_);
    return graph_;
  }

 private:
  std::string add(Node node, const Shape& output_shape) {
    graph_.shapes[node.outputs[0]] = output_shape;
    std::string output = node.outputs[0];
    graph_.nodes.push_back(std::move(node));
    return output;
  }

  Graph graph_;
  Random random_;
};

ir::TensorMap batch_norm_weights(int64_t channels, Random& random) {
  return {{"scale", random_tensor({channels}, random, 0.5f, 1.5f)},
          {"B", random_tensor({channels}, random)},
          {"mean", random_tensor({channels}, random)},
          {"var", random_tensor({channels}, random, 0.2f, 2.0f)}};
}

Graph conv_batch_norm_relu_flatten_linear() {
  GraphBuilder g(1);
  auto x = g.input("x", {1, 3, 6, 6});
  auto conv = g.compute("conv", ir::conv2d({.in_channels = 3, .out_channels = 4, .input_size = {6, 6}, .kernel = {3, 3},
                                            .stride = {2, 2}, .padding = {1, 1, 1, 1}, .bias = true}),
                        {x});
  auto bn = g.structural("bn", "BatchNormalization", {conv}, {1, 4, 3, 3}, {{"epsilon", 1e-3}},
                         batch_norm_weights(4, g.random()));
  auto relu = g.compute("relu", ir::activation({1, 4, 3, 3}, ir::Activation::Relu), {bn});
  auto flat = g.structural("flatten", "Flatten", {relu}, {1, 36}, {{"axis", int64_t{1}}});
  auto fc = g.compute("fc", ir::linear({.batch = 1, .in_features = 36, .out_features = 5, .bias = true}), {flat});
  return g.finish(fc);
}

Graph residual_block() {
  GraphBuilder g(2);
  auto x = g.input("x", {1, 4, 5, 5});
  ir::Conv2dSpec spec{.in_channels = 4, .out_channels = 4, .input_size = {5, 5}, .kernel = {3, 3},
                      .padding = {1, 1, 1, 1}, .bias = true, .activation = ir::Activation::Relu};
  auto first = g.compute("conv1", ir::conv2d(spec), {x});
  spec.activation = ir::Activation::None;
  auto second = g.compute("conv2", ir::conv2d(spec), {first});
  return g.finish(g.compute("add", ir::add({1, 4, 5, 5}, ir::Activation::Relu), {second, x}));
}

Graph squeeze_and_excitation() {
  GraphBuilder g(3);
  auto x = g.input("x", {1, 8, 5, 5});
  auto pooled = g.compute("pool", ir::global_average_pool(1, 8, {5, 5}), {x});
  auto reduce = g.compute("reduce", ir::conv2d({.in_channels = 8, .out_channels = 2, .bias = true,
                                                .activation = ir::Activation::Relu}),
                          {pooled});
  auto expand = g.compute("expand", ir::conv2d({.in_channels = 2, .out_channels = 8, .bias = true,
                                                .activation = ir::Activation::HardSigmoid}),
                          {reduce});
  auto scale = ir::parse("Y[n,c,h,w] = X[n,c,h,w] * S[n,c,0,0]", "n<1, c<8, h<5, w<5, in X[1,8,5,5], in S[1,8,1,1]");
  return g.finish(g.compute("scale", scale, {x, expand}));
}

Graph layer_norm_attention_head() {
  GraphBuilder g(4);
  auto x = g.input("x", {1, 4, 6});
  auto norm = g.structural("norm", "LayerNormalization", {x}, {1, 4, 6}, {{"axis", int64_t{-1}}, {"epsilon", 1e-5}},
                           {{"scale", random_tensor({6}, g.random())}, {"B", random_tensor({6}, g.random())}});
  auto project = g.compute("project", ir::matmul({.batch_dims = {1}, .m = 4, .k = 6, .n = 5, .weight_rhs = true}), {norm});
  auto softmax = g.structural("softmax", "Softmax", {project}, {1, 4, 5}, {{"axis", int64_t{-1}}});
  auto transpose = g.structural("transpose", "Transpose", {softmax}, {1, 5, 4}, {{"perm", std::vector<int64_t>{0, 2, 1}}});
  auto target = g.constant("flat_shape", ir::Tensor({2}, {0, -1}));
  return g.finish(g.structural("flat", "Reshape", {transpose, target}, {1, 20}));
}

// A node that passes its input through (an identity) must copy it, not rename its producer,
// which another node reads too.
Graph pass_through_of_a_shared_value() {
  GraphBuilder g(8);
  auto x = g.input("x", {1, 2, 3, 3});
  auto conv = g.compute("conv", ir::conv2d({.in_channels = 2, .out_channels = 2, .input_size = {3, 3}}), {x});
  auto copy = g.compute("copy", ir::activation({1, 2, 3, 3}, ir::Activation::None), {conv});
  return g.finish(g.compute("sum", ir::add({1, 2, 3, 3}), {copy, conv}));
}

// Samples stacked along the batch dimension.
ir::Tensor stack(const std::vector<ir::Tensor>& samples) {
  Shape shape = samples.at(0).shape;
  shape[0] = static_cast<int64_t>(samples.size());
  ir::Tensor stacked(shape);
  stacked.data.clear();
  for (const auto& sample : samples) stacked.data.insert(stacked.data.end(), sample.data.begin(), sample.data.end());
  return stacked;
}

ir::Tensor sample(const ir::Tensor& batch, int64_t index) {
  Shape shape = batch.shape;
  const int64_t size = batch.elements() / shape[0];
  shape[0] = 1;
  return ir::Tensor(shape, std::vector<float>(batch.data.begin() + index * size, batch.data.begin() + (index + 1) * size));
}

// At batch 1 and batch 3 (three samples, each compared with its own reference run).
void expect_onnx_runtime_matches_evaluate(const Graph& graph) {
  constexpr int64_t kSamples = 3;
  ScratchFolder folder;
  auto path = folder.file("model.onnx");
  write_onnx(graph, path);
  Random random(99);
  std::vector<ir::TensorMap> samples(kSamples);
  ir::TensorMap batch;
  for (const auto& input : graph.inputs) {
    std::vector<ir::Tensor> values;
    for (auto& s : samples) values.push_back(s[input.name] = random_tensor(input.shape, random));
    batch[input.name] = stack(values);
  }
  auto results = run_onnx_runtime({{path, samples[0]}, {path, batch}});
  ASSERT_EQ(results[0].error, "") << "batch 1";
  ASSERT_EQ(results[1].error, "") << "batch " << kSamples;
  const std::string& output = graph.outputs.at(0).name;
  for (int64_t i = 0; i < kSamples; ++i) {
    ir::Tensor expected = evaluate(graph, samples[i]).at(output);
    if (i == 0) {
      EXPECT_TRUE(close_to_reference(results[0].outputs.at(output), expected)) << "batch 1";
    }
    EXPECT_TRUE(close_to_reference(sample(results[1].outputs.at(output), i), expected)) << "sample " << i << " of the batch";
  }
}

TEST(OnnxExportGraph, ConvBatchNormReluFlattenLinear) { expect_onnx_runtime_matches_evaluate(conv_batch_norm_relu_flatten_linear()); }
TEST(OnnxExportGraph, ResidualBlock) { expect_onnx_runtime_matches_evaluate(residual_block()); }
TEST(OnnxExportGraph, SqueezeAndExcitation) { expect_onnx_runtime_matches_evaluate(squeeze_and_excitation()); }
TEST(OnnxExportGraph, LayerNormSoftmaxTransposeReshape) { expect_onnx_runtime_matches_evaluate(layer_norm_attention_head()); }

TEST(OnnxExportGraph, InputNormalisationFirst) {
  expect_onnx_runtime_matches_evaluate(with_input_normalisation(conv_batch_norm_relu_flatten_linear(), {0.485f, 0.456f, 0.406f},
                                                                {0.229f, 0.224f, 0.225f}));
}

TEST(OnnxExportGraph, PassThroughOfASharedValue) { expect_onnx_runtime_matches_evaluate(pass_through_of_a_shared_value()); }

TEST(OnnxExportGraph, BatchNormIsFoldedAndTheBatchIsSymbolic) {
  onnx::ModelProto model = to_onnx(conv_batch_norm_relu_flatten_linear());
  for (const auto& node : model.graph().node()) EXPECT_NE(node.op_type(), "BatchNormalization");
  EXPECT_EQ(model.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(0).dim_param(), "N");
  EXPECT_EQ(model.opset_import(0).version(), 17);
}

TEST(OnnxExportGraph, OlderOpsetAttributesBecomeInputs) {
  GraphBuilder g(5);
  auto x = g.input("x", {1, 3, 1});
  auto squeezed = g.structural("squeeze", "Squeeze", {x}, {1, 3}, {{"axes", std::vector<int64_t>{2}}});
  Graph graph = g.finish(squeezed);
  onnx::ModelProto model = to_onnx(graph);
  check_onnx(model);
  ASSERT_EQ(model.graph().node_size(), 1);
  EXPECT_EQ(model.graph().node(0).input_size(), 2) << "opset 13 takes Squeeze's axes as an input";
  EXPECT_EQ(model.graph().node(0).attribute_size(), 0);
}

// ---- Files ONNX rejects ------------------------------------------------------------------------------

TEST(OnnxExportChecks, CheckerFailureNamesTheCheckAndTheReason) {
  onnx::ModelProto model = to_onnx(residual_block());
  model.mutable_graph()->mutable_node(0)->set_op_type("Frobnicate");
  try {
    check_onnx(model);
    FAIL() << "an unknown operator passed the checker";
  } catch (const GraphError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("onnx::checker"), std::string::npos) << message;
    EXPECT_NE(message.find("Frobnicate"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

TEST(OnnxExportChecks, ShapeInferenceFailureNamesTheNode) {
  GraphBuilder g(6);
  auto x = g.input("x", {1, 3, 4});
  // The graph's own shapes say [1,4,3], but the permutation has the wrong length for ONNX.
  auto bad = g.structural("bad_transpose", "Transpose", {x}, {1, 4, 3}, {{"perm", std::vector<int64_t>{0, 2}}});
  Graph graph = g.finish(bad);
  ScratchFolder folder;
  try {
    write_onnx(graph, folder.file("bad.onnx"));
    FAIL() << "a Transpose with a short permutation was written";
  } catch (const GraphError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("shape inference"), std::string::npos) << message;
    EXPECT_NE(message.find("bad_transpose"), std::string::npos) << message;
  }
  EXPECT_FALSE(std::filesystem::exists(folder.file("bad.onnx"))) << "nothing is written when a check fails";
}

TEST(OnnxExportChecks, DeclaredShapesAreCheckedAgainstInference) {
  GraphBuilder g(7);
  auto x = g.input("x", {1, 2, 3});
  auto flat = g.structural("flatten", "Flatten", {x}, {1, 7}, {{"axis", int64_t{1}}});  // really [1,6]
  Graph graph = g.finish(flat);
  EXPECT_THROW(check_onnx(to_onnx(graph)), GraphError);
}

}  // namespace
}  // namespace gos::graph
