// Dropping residual branches and operators, checked against the interpreter on the original with
// the branch's weights zeroed (or the operator's made the identity).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "narrow/narrow.h"
#include "narrow/narrow_test_support.h"
#include "zoo/zoo.h"

namespace gos::narrow {
namespace {

const Drop& drop_named(const std::vector<Drop>& drops, const std::string& node) {
  for (const auto& drop : drops) {
    if (drop.node == node) return drop;
  }
  throw std::runtime_error("nothing to drop at " + node);
}

graph::Node& node_named(graph::Graph& graph, const std::string& name) {
  for (auto& node : graph.nodes) {
    if (node.name == name) return node;
  }
  throw std::runtime_error("no node " + name);
}

void expect_same_outputs(const graph::Graph& expected_graph, const graph::Graph& actual_graph) {
  const auto inputs = testing::random_inputs(expected_graph, 3);
  const auto expected = graph::evaluate(expected_graph, inputs);
  const auto actual = graph::evaluate(actual_graph, inputs);
  for (const auto& [name, tensor] : expected) {
    const auto& got = actual.at(name);
    ASSERT_EQ(got.shape, tensor.shape);
    for (int64_t i = 0; i < tensor.elements(); ++i) ASSERT_NEAR(got.data[i], tensor.data[i], 1e-4) << name << " " << i;
  }
}

TEST(Drop, EveryResidualBranchOfAResnetDropsAndItsBlockComputesTheShortcut) {
  graph::Graph model = zoo::inference_graph("resnet20", 2);
  const auto drops = droppable(model);
  const auto branches = std::count_if(drops.begin(), drops.end(), [](const Drop& d) { return !d.removed.empty(); });
  EXPECT_EQ(branches, 9) << "one per block, downsampling blocks too (their shortcut convolution stays)";
  const Drop& block = drop_named(drops, "stage1.block2.add");
  EXPECT_EQ(block.name, "drop(stage1.block2.add)");
  EXPECT_EQ(block.removed, (std::vector<std::string>{"stage1.block2.conv1.conv", "stage1.block2.conv2.conv"}));
  const graph::Graph dropped = apply_drop(model, block);
  EXPECT_EQ(dropped.nodes.size(), model.nodes.size() - 2);
  // The original with the branch computing zero: relu(X + 0).
  for (auto& [name, weight] : node_named(model, "stage1.block2.conv2.conv").weights) std::fill(weight.data.begin(), weight.data.end(), 0.0f);
  expect_same_outputs(model, dropped);

  const Drop& downsampling = drop_named(drops, "stage2.block1.add");
  EXPECT_EQ(downsampling.kept, node_named(model, "stage2.block1.shortcut.conv").outputs.at(0));
}

TEST(Drop, AnOperatorOfItsInputsShapeBecomesItsActivation) {
  graph::Graph model = zoo::inference_graph("resnet20", 2);
  const graph::Graph dropped = apply_drop(model, drop_named(droppable(model), "stage1.block2.conv1.conv"));
  // The original with that convolution made the identity (its centre tap 1 from each channel to
  // itself, no bias) computes the same.
  graph::Node& conv = node_named(model, "stage1.block2.conv1.conv");
  for (auto& [name, weight] : conv.weights) std::fill(weight.data.begin(), weight.data.end(), 0.0f);
  ir::Tensor& w = conv.weights.at("W");
  for (int64_t k = 0; k < w.shape[0]; ++k) w.data[((k * w.shape[1] + k) * 3 + 1) * 3 + 1] = 1.0f;
  expect_same_outputs(model, dropped);
  EXPECT_TRUE(graph::total_params(dropped) < graph::total_params(model));
}

TEST(Drop, AMobilenetsInvertedResidualsDropToTheirShortcuts) {
  const graph::Graph model = zoo::inference_graph("mobilenetv2s", 2);
  const auto drops = droppable(model);
  const Drop& block = drop_named(drops, "block3.add");
  EXPECT_EQ(block.removed.size(), 3u) << "expand, depthwise, project";
  graph::Graph zeroed = model;
  for (auto& [name, weight] : node_named(zeroed, block.removed.back()).weights) std::fill(weight.data.begin(), weight.data.end(), 0.0f);
  expect_same_outputs(zeroed, apply_drop(model, block));
  Drop bad = block;
  bad.kept = "nothing";
  EXPECT_THROW(apply_drop(model, bad), graph::GraphError);
}

}  // namespace
}  // namespace gos::narrow
