// subsample_pooled_positions: computing only the positions a global average pooling reads.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>

#include "graph/graph.h"

namespace gos::graph {
namespace {

constexpr int64_t kLength = 16;

ir::Tensor random_tensor(const Shape& shape, std::mt19937& rng) {
  ir::Tensor tensor(shape);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (float& v : tensor.data) v = uniform(rng);
  return tensor;
}

Node conv(const std::string& name, const std::string& input, int64_t in_channels, int64_t dilation, std::mt19937& rng) {
  const std::string text =
      fmt::format("Y[n,k,l] = relu(sum{{c,r}} X[n,c,l+{0}*r-{0}] * W[k,c,r] + B[k]) where n<1, k<3, l<{1}, c<{2}, r<3, "
                  "in X[1,{2},{1}], param W[3,{2},3], param B[3]",
                  dilation, kLength, in_channels);
  Node node{name, "Conv", {input}, {name + "_out"}, ir::parse(text), {}, {}};
  node.weights = {{"W", random_tensor({3, in_channels, 3}, rng)}, {"B", random_tensor({3}, rng)}};
  return node;
}

Node pool(const std::string& input, int64_t every = 1) {
  const std::string text = fmt::format("Y[n,c,i] = mean{{l}} X[n,c,{}*l] where n<1, c<3, i<1, l<{}, in X[1,3,{}]", every,
                                       kLength / every, kLength);
  return {"pool", "GlobalAveragePool", {input}, {"pooled"}, ir::parse(text), {}, {}};
}

// Three dilated 3-tap convolutions (dilations 1, 2, 4) and a global average pooling.
Graph tiny_tcn(std::mt19937& rng) {
  Graph graph;
  graph.name = "tiny-tcn";
  graph.inputs = {{"signal", {1, 2, kLength}}};
  graph.outputs = {{"pooled", {1, 3, 1}}};
  graph.nodes = {conv("tcn1", "signal", 2, 1, rng), conv("tcn2", "tcn1_out", 3, 2, rng), conv("tcn3", "tcn2_out", 3, 4, rng),
                 pool("tcn3_out")};
  graph.shapes = {{"signal", {1, 2, kLength}}, {"tcn1_out", {1, 3, kLength}}, {"tcn2_out", {1, 3, kLength}},
                  {"tcn3_out", {1, 3, kLength}}, {"pooled", {1, 3, 1}}};
  validate(graph);
  return graph;
}

// The original graph whose pooling averages every `every`-th position: what subsampling must equal.
Graph pooling_every(Graph graph, int64_t every) {
  for (auto& node : graph.nodes) {
    if (node.name == "pool") node = pool(node.inputs[0], every);
  }
  return graph;
}

void expect_same_outputs(const Graph& a, const Graph& b, std::mt19937& rng) {
  const ir::TensorMap inputs{{"signal", random_tensor({1, 2, kLength}, rng)}};
  const ir::Tensor expected = evaluate(a, inputs).at("pooled");
  const ir::Tensor actual = evaluate(b, inputs).at("pooled");
  ASSERT_EQ(actual.shape, expected.shape);
  for (size_t i = 0; i < expected.data.size(); ++i) EXPECT_NEAR(actual.data[i], expected.data[i], 1e-5) << i;
}

TEST(SubsamplePooledPositions, EqualsPoolingEveryOtherPositionOfTheOriginal) {
  std::mt19937 rng(3);
  const Graph graph = tiny_tcn(rng);
  for (int64_t factor : {2, 4, 8}) {
    SCOPED_TRACE(factor);
    const Subsampled subsampled = subsample_pooled_positions(graph, factor);
    expect_same_outputs(pooling_every(graph, factor), subsampled.graph, rng);
  }
}

TEST(SubsamplePooledPositions, HalvesDilationsAndStridesTheFirstLayer) {
  std::mt19937 rng(3);
  const Subsampled subsampled = subsample_pooled_positions(tiny_tcn(rng), 2);
  EXPECT_EQ(subsampled.changed_nodes, (std::vector<std::string>{"tcn1", "tcn2", "tcn3", "pool"}));
  const Graph& graph = subsampled.graph;
  EXPECT_EQ(graph.shape_of("tcn1_out"), (Shape{1, 3, kLength / 2}));
  EXPECT_EQ(graph.shape_of("tcn3_out"), (Shape{1, 3, kLength / 2}));
  EXPECT_NE(ir::print(*graph.nodes[0].op).find("X[n,c,2*l+r-1]"), std::string::npos) << ir::print(*graph.nodes[0].op);
  EXPECT_NE(ir::print(*graph.nodes[1].op).find("X[n,c,l+r-1]"), std::string::npos) << ir::print(*graph.nodes[1].op);
  EXPECT_NE(ir::print(*graph.nodes[2].op).find("X[n,c,l+2*r-2]"), std::string::npos) << ir::print(*graph.nodes[2].op);
  EXPECT_EQ(graph.shape_of("pooled"), (Shape{1, 3, 1}));
}

TEST(SubsamplePooledPositions, AFactorBeyondADilationStridesTheLayerThatCannotHalveIt) {
  std::mt19937 rng(3);
  const Graph graph = subsample_pooled_positions(tiny_tcn(rng), 4).graph;
  // tcn3 (dilation 4) reads every 4th position of tcn2, tcn2 (dilation 2) every 2nd of tcn1 with
  // stride 2, and tcn1 every 2nd of the signal.
  EXPECT_EQ(graph.shape_of("tcn3_out"), (Shape{1, 3, kLength / 4}));
  EXPECT_EQ(graph.shape_of("tcn2_out"), (Shape{1, 3, kLength / 4}));
  EXPECT_EQ(graph.shape_of("tcn1_out"), (Shape{1, 3, kLength / 2}));
  EXPECT_NE(ir::print(*graph.nodes[1].op).find("X[n,c,2*l+r-1]"), std::string::npos) << ir::print(*graph.nodes[1].op);
}

TEST(SubsamplePooledPositions, AValueReadTwiceIsComputedWholeAndReadStrided) {
  std::mt19937 rng(5);
  Graph graph = tiny_tcn(rng);
  // tcn1's output also feeds a residual addition into tcn3's input.
  Node add{"add", "Add", {"tcn2_out", "tcn1_out"}, {"sum"}, ir::parse(fmt::format(
      "Y[n,c,l] = A[n,c,l] + B[n,c,l] where n<1, c<3, l<{0}, in A[1,3,{0}], in B[1,3,{0}]", kLength)), {}, {}};
  graph.nodes.insert(graph.nodes.begin() + 2, add);
  graph.nodes[3].inputs = {"sum"};
  graph.shapes["sum"] = {1, 3, kLength};
  validate(graph);
  const Subsampled subsampled = subsample_pooled_positions(graph, 2);
  EXPECT_EQ(subsampled.graph.shape_of("tcn1_out"), (Shape{1, 3, kLength})) << "read by tcn2 and add: computed whole";
  EXPECT_EQ(subsampled.graph.shape_of("sum"), (Shape{1, 3, kLength / 2}));
  expect_same_outputs(pooling_every(graph, 2), subsampled.graph, rng);
}

TEST(SubsamplePooledPositions, OnlyTheLastPoolingAveragesFewerPositions) {
  std::mt19937 rng(3);
  Graph graph = tiny_tcn(rng);
  // A pooling inside the network (as squeeze-and-excitation has) keeps its statistics whole.
  Node early = pool("tcn1_out");
  early.name = "early_pool";
  early.outputs = {"early"};
  graph.nodes.insert(graph.nodes.begin() + 1, early);
  graph.shapes["early"] = {1, 3, 1};
  graph.outputs.push_back({"early", {1, 3, 1}});
  validate(graph);
  const Subsampled subsampled = subsample_pooled_positions(graph, 2);
  EXPECT_EQ(ir::print(*subsampled.graph.nodes[1].op), ir::print(*early.op));
  EXPECT_EQ(subsampled.changed_nodes.back(), "pool");
}

TEST(SubsamplePooledPositions, FactorOneLeavesTheGraphAsItIs) {
  std::mt19937 rng(3);
  const Graph graph = tiny_tcn(rng);
  const Subsampled same = subsample_pooled_positions(graph, 1);
  EXPECT_TRUE(same.changed_nodes.empty());
  EXPECT_EQ(same.graph.shape_of("tcn1_out"), graph.shape_of("tcn1_out"));
}

TEST(SubsamplePooledPositions, AGraphWithoutGlobalPoolingOrAFactorBelowOneIsRefused) {
  std::mt19937 rng(3);
  Graph graph = tiny_tcn(rng);
  EXPECT_THROW(subsample_pooled_positions(graph, 0), GraphError);
  graph.nodes.pop_back();
  graph.outputs = {{"tcn3_out", {1, 3, kLength}}};
  try {
    subsample_pooled_positions(graph, 2);
    FAIL();
  } catch (const GraphError& error) {
    EXPECT_NE(std::string(error.what()).find("global average pooling"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace gos::graph
