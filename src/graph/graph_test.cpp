// Graph validation, reference evaluation and batch-norm folding.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "graph/graph.h"
#include "ir/ops.h"

namespace gos::graph {
namespace {

ir::Tensor random_tensor(const Shape& shape, std::mt19937& rng, float low = -1, float high = 1) {
  ir::Tensor tensor(shape);
  std::uniform_real_distribution<float> uniform(low, high);
  for (float& v : tensor.data) v = uniform(rng);
  return tensor;
}

// conv 3x3 (bias) -> BatchNormalization -> ReLU -> Flatten -> linear
Graph small_classifier(std::mt19937& rng) {
  Graph graph;
  graph.name = "small";
  graph.inputs = {{"image", {1, 2, 5, 5}}};
  graph.outputs = {{"logits", {1, 3}}};
  ir::Conv2dSpec conv_spec{.batch = 1, .in_channels = 2, .out_channels = 4, .input_size = {5, 5}, .kernel = {3, 3},
                           .padding = {1, 1, 1, 1}, .bias = true};
  Node conv{"conv", "Conv", {"image"}, {"conv_out"}, ir::conv2d(conv_spec), {}, {}};
  conv.weights = {{"W", random_tensor({4, 2, 3, 3}, rng)}, {"B", random_tensor({4}, rng)}};
  Node bn{"bn", "BatchNormalization", {"conv_out"}, {"bn_out"}, std::nullopt, {}, {{"epsilon", 1e-3}}};
  bn.weights = {{"scale", random_tensor({4}, rng, 0.5, 1.5)}, {"B", random_tensor({4}, rng)},
                {"mean", random_tensor({4}, rng)}, {"var", random_tensor({4}, rng, 0.5, 2)}};
  Node relu{"relu", "Relu", {"bn_out"}, {"relu_out"}, ir::activation({1, 4, 5, 5}, ir::Activation::Relu), {}, {}};
  Node flatten{"flatten", "Flatten", {"relu_out"}, {"flat"}, std::nullopt, {}, {{"axis", int64_t{1}}}};
  Node fc{"fc", "Gemm", {"flat"}, {"logits"},
          ir::linear({.batch = 1, .in_features = 100, .out_features = 3, .bias = true}), {}, {}};
  fc.weights = {{"W", random_tensor({3, 100}, rng)}, {"B", random_tensor({3}, rng)}};
  graph.nodes = {conv, bn, relu, flatten, fc};
  graph.shapes = {{"image", {1, 2, 5, 5}}, {"conv_out", {1, 4, 5, 5}}, {"bn_out", {1, 4, 5, 5}},
                  {"relu_out", {1, 4, 5, 5}}, {"flat", {1, 100}}, {"logits", {1, 3}}};
  return graph;
}

float max_relative_error(const ir::Tensor& a, const ir::Tensor& b) {
  float error = 0, scale = 1;
  for (size_t i = 0; i < a.data.size(); ++i) {
    error = std::max(error, std::abs(a.data[i] - b.data[i]));
    scale = std::max(scale, std::abs(b.data[i]));
  }
  return error / scale;
}

TEST(Graph, ValidSmallClassifierPassesValidation) {
  std::mt19937 rng(1);
  EXPECT_NO_THROW(validate(small_classifier(rng)));
}

TEST(Graph, ValidationNamesTheNodeWithAWrongWeightShape) {
  std::mt19937 rng(1);
  Graph graph = small_classifier(rng);
  graph.nodes[4].weights["W"] = ir::Tensor({3, 99});
  try {
    validate(graph);
    FAIL();
  } catch (const GraphError& error) {
    EXPECT_NE(std::string(error.what()).find("node 'fc'"), std::string::npos) << error.what();
  }
}

TEST(Graph, ValidationRejectsReadingAValueBeforeItIsProduced) {
  std::mt19937 rng(1);
  Graph graph = small_classifier(rng);
  std::swap(graph.nodes[0], graph.nodes[1]);
  EXPECT_THROW(validate(graph), GraphError);
}

TEST(Graph, FoldingBatchNormKeepsTheOutputs) {
  std::mt19937 rng(7);
  Graph graph = small_classifier(rng);
  Graph folded = fold_batch_norms(graph);
  EXPECT_EQ(folded.nodes.size(), graph.nodes.size() - 1);
  EXPECT_EQ(folded.find_node("bn"), nullptr);
  validate(folded);
  ir::TensorMap inputs{{"image", random_tensor({1, 2, 5, 5}, rng)}};
  EXPECT_LT(max_relative_error(evaluate(folded, inputs).at("logits"), evaluate(graph, inputs).at("logits")), 1e-5);
}

// What ONNX import makes of small_classifier: conv+bn+relu in one node.
Graph folded_and_fused(std::mt19937& rng) {
  Graph graph = fold_batch_norms(small_classifier(rng));
  fuse_epilogues(graph);
  return graph;
}

TEST(Graph, FusingEpiloguesMovesTheActivationIntoTheConv) {
  std::mt19937 rng(7);
  Graph graph = folded_and_fused(rng);
  EXPECT_EQ(graph.find_node("relu"), nullptr);
  EXPECT_EQ(graph.find_node("conv")->op->statements().back().activation, ir::Activation::Relu);
  validate(graph);
}

TEST(Graph, InsertedBatchNormsStartAsTheIdentityAndFoldBackIntoTheSameNodes) {
  std::mt19937 rng(7);
  const Graph graph = folded_and_fused(rng);
  WithBatchNorms inserted = insert_batch_norms(graph);
  // The conv gains one (its relu moves after it); the linear layer produces the output and keeps none.
  EXPECT_EQ(inserted.batch_norms, std::vector<std::string>{"conv/bn"});
  ASSERT_NE(inserted.graph.find_node("conv/act"), nullptr);
  EXPECT_EQ(inserted.graph.find_node("conv")->op->statements().back().activation, ir::Activation::None);
  validate(inserted.graph);
  ir::TensorMap inputs{{"image", random_tensor({1, 2, 5, 5}, rng)}};
  const ir::Tensor expected = evaluate(graph, inputs).at("logits");
  EXPECT_LT(max_relative_error(evaluate(inserted.graph, inputs).at("logits"), expected), 1e-5);

  // Training changes the normalisation; folding it back keeps what the graph computes.
  Node& norm = inserted.graph.nodes[1];
  ASSERT_EQ(norm.name, "conv/bn");
  norm.weights["scale"] = random_tensor({4}, rng, 0.5, 1.5);
  norm.weights["mean"] = random_tensor({4}, rng);
  const ir::Tensor trained = evaluate(inserted.graph, inputs).at("logits");
  Graph folded = fold_batch_norms(inserted.graph);
  fuse_epilogues(folded);
  validate(folded);
  ASSERT_EQ(folded.nodes.size(), graph.nodes.size());
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    EXPECT_EQ(folded.nodes[i].name, graph.nodes[i].name);
    EXPECT_EQ(folded.nodes[i].outputs, graph.nodes[i].outputs);
  }
  EXPECT_EQ(folded.find_node("conv")->op->statements().back().activation, ir::Activation::Relu);
  EXPECT_LT(max_relative_error(evaluate(folded, inputs).at("logits"), trained), 1e-5);
}

TEST(Graph, ANormalisedInputGivesWhatTheNormalisedSampleGave) {
  std::mt19937 rng(4);
  const Graph graph = small_classifier(rng);
  const Graph normalised = with_input_normalisation(graph, {0.5f, 0.25f}, {0.2f, 2.0f});
  EXPECT_EQ(normalised.inputs[0].name, "image");
  EXPECT_EQ(normalised.inputs[0].shape, graph.inputs[0].shape);
  EXPECT_EQ(normalised.nodes.size(), graph.nodes.size() + 2);
  const ir::Tensor raw = random_tensor({1, 2, 5, 5}, rng, 0, 1);
  ir::Tensor by_hand = raw;
  for (size_t i = 0; i < by_hand.data.size(); ++i) {
    const bool second = i >= 25;
    by_hand.data[i] = (by_hand.data[i] - (second ? 0.25f : 0.5f)) / (second ? 2.0f : 0.2f);
  }
  EXPECT_LT(max_relative_error(evaluate(normalised, {{"image", raw}}).at("logits"), evaluate(graph, {{"image", by_hand}}).at("logits")), 1e-6);
  // One value serves every channel.
  const Graph shared = with_input_normalisation(graph, {0.5f}, {0.2f});
  EXPECT_EQ(shared.constants.at("image/mean").data, (std::vector<float>{0.5f, 0.5f}));

  EXPECT_THROW(with_input_normalisation(graph, {0.5f, 0.5f, 0.5f}, {1.0f}), GraphError);
  EXPECT_THROW(with_input_normalisation(graph, {0.5f}, {0.0f}), GraphError);
  try {
    with_input_normalisation(graph, {0.1f, 0.2f, 0.3f}, {1.0f});
  } catch (const GraphError& error) {
    EXPECT_STREQ(error.what(), "the mean has 3 values; the input image has 2 channels (give one value, or one per channel)");
  }
}

TEST(Graph, CostsSumOverComputeNodes) {
  std::mt19937 rng(1);
  Graph graph = small_classifier(rng);
  EXPECT_EQ(total_macs(graph), 4 * 25 * 2 * 9 + 3 * 100);
  EXPECT_EQ(total_params(graph), (4 * 2 * 9 + 4) + (3 * 100 + 3) + 4 + 4);  // BN scale and shift are learned
  EXPECT_EQ(node_costs(graph).size(), 3u);  // conv, relu, fc
}

// ---- Structural ops against hand-computed results ----------------------------------------------

ir::TensorMap run_single(Node node, ir::TensorMap inputs, const Shape& output_shape, ir::TensorMap constants = {}) {
  Graph graph;
  for (const auto& name : node.inputs) {
    if (!constants.count(name)) graph.inputs.push_back({name, inputs.at(name).shape});
  }
  graph.constants = constants;
  for (const auto& output : node.outputs) {
    graph.outputs.push_back({output, output_shape});
    graph.shapes[output] = output_shape;
  }
  graph.nodes = {node};
  return evaluate(graph, inputs);
}

TEST(Structural, ReshapeCopiesZeroAndInfersMinusOne) {
  Node node{"r", "Reshape", {"x", "shape"}, {"y"}, std::nullopt, {}, {}};
  auto out = run_single(node, {{"x", ir::Tensor({2, 3, 4})}}, {2, 12}, {{"shape", ir::Tensor({2}, {0, -1})}});
  EXPECT_EQ(out.at("y").shape, (Shape{2, 12}));
}

TEST(Structural, TransposePermutesAxes) {
  Node node{"t", "Transpose", {"x"}, {"y"}, std::nullopt, {}, {{"perm", std::vector<int64_t>{1, 0}}}};
  auto out = run_single(node, {{"x", ir::Tensor({2, 3}, {1, 2, 3, 4, 5, 6})}}, {3, 2});
  EXPECT_EQ(out.at("y").data, (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Structural, ConcatAndSplitAreInverse) {
  Node concat{"c", "Concat", {"a", "b"}, {"y"}, std::nullopt, {}, {{"axis", int64_t{1}}}};
  auto joined = run_single(concat, {{"a", ir::Tensor({2, 1}, {1, 2})}, {"b", ir::Tensor({2, 2}, {3, 4, 5, 6})}}, {2, 3});
  EXPECT_EQ(joined.at("y").data, (std::vector<float>{1, 3, 4, 2, 5, 6}));
  Node split{"s", "Split", {"x"}, {"p", "q"}, std::nullopt, {}, {{"axis", int64_t{1}}, {"split", std::vector<int64_t>{1, 2}}}};
  Graph graph;
  graph.inputs = {{"x", {2, 3}}};
  graph.outputs = {{"p", {2, 1}}, {"q", {2, 2}}};
  graph.shapes = {{"p", {2, 1}}, {"q", {2, 2}}};
  graph.nodes = {split};
  auto parts = evaluate(graph, {{"x", joined.at("y")}});
  EXPECT_EQ(parts.at("p").data, (std::vector<float>{1, 2}));
  EXPECT_EQ(parts.at("q").data, (std::vector<float>{3, 4, 5, 6}));
}

TEST(Structural, SliceHonoursStepsAndNegativeIndices) {
  Node node{"s", "Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"}, std::nullopt, {}, {}};
  auto out = run_single(node, {{"x", ir::Tensor({6}, {0, 1, 2, 3, 4, 5})}}, {3},
                        {{"starts", ir::Tensor({1}, {-1})}, {"ends", ir::Tensor({1}, {-7})},
                         {"axes", ir::Tensor({1}, {0})}, {"steps", ir::Tensor({1}, {-2})}});
  EXPECT_EQ(out.at("y").data, (std::vector<float>{5, 3, 1}));
}

TEST(Structural, SoftmaxRowsSumToOne) {
  Node node{"s", "Softmax", {"x"}, {"y"}, std::nullopt, {}, {{"axis", int64_t{-1}}}};
  auto out = run_single(node, {{"x", ir::Tensor({2, 3}, {1, 2, 3, 1000, 1000, 1000})}}, {2, 3});
  EXPECT_NEAR(out.at("y").data[0] + out.at("y").data[1] + out.at("y").data[2], 1.0f, 1e-6);
  EXPECT_NEAR(out.at("y").data[4], 1.0f / 3, 1e-6);
}

TEST(Structural, LayerNormNormalisesTheLastAxis) {
  Node node{"ln", "LayerNormalization", {"x"}, {"y"}, std::nullopt, {}, {{"epsilon", 0.0}}};
  node.weights = {{"scale", ir::Tensor({2}, {1, 2})}, {"B", ir::Tensor({2}, {0, 1})}};
  auto out = run_single(node, {{"x", ir::Tensor({1, 2}, {3, 5})}}, {1, 2});
  EXPECT_NEAR(out.at("y").data[0], -1.0f, 1e-6);
  EXPECT_NEAR(out.at("y").data[1], 3.0f, 1e-6);
}

TEST(Structural, BinaryOpsBroadcast) {
  Node node{"d", "Div", {"a", "b"}, {"y"}, std::nullopt, {}, {}};
  auto out = run_single(node, {{"a", ir::Tensor({2, 2}, {2, 4, 6, 8})}, {"b", ir::Tensor({2, 1}, {2, 4})}}, {2, 2});
  EXPECT_EQ(out.at("y").data, (std::vector<float>{1, 2, 1.5, 2}));
}

TEST(Structural, ReduceMeanKeepsOrDropsAxes) {
  Node node{"m", "ReduceMean", {"x"}, {"y"}, std::nullopt, {}, {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}};
  auto out = run_single(node, {{"x", ir::Tensor({2, 2}, {1, 3, 5, 7})}}, {2});
  EXPECT_EQ(out.at("y").shape, (Shape{2}));
  EXPECT_EQ(out.at("y").data, (std::vector<float>{2, 6}));
}

TEST(Structural, UnknownOpTypeIsNotExecuted) {
  Node node{"q", "NonMaxSuppression", {"x"}, {"y"}, std::nullopt, {}, {}};
  EXPECT_THROW(run_single(node, {{"x", ir::Tensor({1})}}, {1}), GraphError);
}

}  // namespace
}  // namespace gos::graph
