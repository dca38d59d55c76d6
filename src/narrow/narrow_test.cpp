// Channel groups on the zoo and on PyTorch-exported models, and narrowed graphs checked against the
// interpreter on the original with the dropped channels' weights zeroed.
#include "narrow/narrow.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "graph/onnx_import.h"
#include "graph/onnx_test_models.h"
#include "narrow/narrow_test_support.h"
#include "zoo/zoo.h"

namespace gos::narrow {
namespace {

using Names = std::vector<std::string>;

const ChannelGroup& group_named(const std::vector<ChannelGroup>& groups, const std::string& name) {
  for (const auto& group : groups) {
    if (group.name() == name + ":k") return group;
  }
  throw std::runtime_error("no group named " + name);
}

// The original with every weight of a dropped position zeroed, in each of the group's nodes.
graph::Graph zero_dropped(graph::Graph graph, const ChannelGroup& group, const std::vector<int64_t>& kept) {
  testing::change_group_weights(graph, group, [](const std::string&) { return true; }, [&](int64_t channel, float& weight) {
    if (!std::binary_search(kept.begin(), kept.end(), channel)) weight = 0;
  });
  return graph;
}

using testing::random_inputs;

std::vector<int64_t> every_other(int64_t extent) {
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < extent; i += 2) kept.push_back(i);
  return kept;
}

void expect_narrowed_computes_the_zeroed_original(const graph::Graph& model, const ChannelGroup& group) {
  const auto kept = every_other(group.extent);
  const graph::Graph narrowed = narrow_group(model, group, kept);
  for (const auto& [value, axis] : group.values) EXPECT_EQ(narrowed.shape_of(value).at(axis), static_cast<int64_t>(kept.size())) << value;
  const auto inputs = random_inputs(model, 1);
  const auto expected = graph::evaluate(zero_dropped(model, group, kept), inputs);
  const auto actual = graph::evaluate(narrowed, inputs);
  for (const auto& [name, tensor] : expected) {
    const auto& got = actual.at(name);
    ASSERT_EQ(got.shape, tensor.shape);
    for (int64_t i = 0; i < tensor.elements(); ++i) ASSERT_NEAR(got.data[i], tensor.data[i], 1e-4) << group.name() << ", output " << i;
  }
}

TEST(ChannelGroups, AResidualStageIsOneGroupAndEachBlockHasItsOwn) {
  const auto groups = channel_groups(zoo::inference_graph("resnet20", 7));
  EXPECT_EQ(groups.size(), 12u) << "9 blocks' inner channels and 3 stages' residual streams";
  const auto& inner = group_named(groups, "stage2.block2.conv1.conv");
  EXPECT_EQ(inner.producers, Names{"stage2.block2.conv1.conv"});
  EXPECT_EQ(inner.consumers, Names{"stage2.block2.conv2.conv"});
  EXPECT_TRUE(inner.followers.empty());
  const auto& stream = group_named(groups, "stem.conv");
  EXPECT_EQ(stream.producers, (Names{"stem.conv", "stage1.block1.conv2.conv", "stage1.block2.conv2.conv", "stage1.block3.conv2.conv"}));
  EXPECT_EQ(stream.consumers, (Names{"stage1.block1.conv1.conv", "stage1.block2.conv1.conv", "stage1.block3.conv1.conv",
                                     "stage2.block1.conv1.conv", "stage2.block1.shortcut.conv"}));
  const auto& last = group_named(groups, "stage3.block1.conv2.conv");
  EXPECT_EQ(last.producers.size(), 4u) << "three blocks' second convolutions and the projection shortcut";
  EXPECT_NE(std::find(last.consumers.begin(), last.consumers.end(), "fc"), last.consumers.end()) << "through the global pooling to the classifier";
}

TEST(ChannelGroups, AnInvertedResidualsExpansionNarrowsThroughItsDepthwiseConvolution) {
  const auto groups = channel_groups(zoo::inference_graph("mobilenetv2s", 7));
  const auto& expansion = group_named(groups, "block3.expand.conv");
  EXPECT_EQ(expansion.producers, Names{"block3.expand.conv"});
  EXPECT_EQ(expansion.followers, Names{"block3.depthwise.conv"});
  EXPECT_EQ(expansion.consumers, Names{"block3.project.conv"});
}

TEST(ChannelGroups, NoGroupReachesTheModelsInputOrOutput) {
  for (const char* name : {"resnet20", "vgg11s", "mobilenetv2s", "mixer-s", "tcn-ppg"}) {
    const graph::Graph model = zoo::inference_graph(name, 7);
    const auto groups = channel_groups(model);
    EXPECT_FALSE(groups.empty()) << name;
    for (const auto& group : groups) {
      for (const auto& [value, axis] : group.values) {
        EXPECT_NE(value, model.inputs[0].name) << name;
        EXPECT_NE(value, model.outputs[0].name) << name;
      }
    }
  }
}

TEST(NarrowGroup, ANarrowedResnetComputesTheOriginalWithTheDroppedChannelsZeroed) {
  const graph::Graph model = zoo::inference_graph("resnet20", 7);
  const auto groups = channel_groups(model);
  expect_narrowed_computes_the_zeroed_original(model, group_named(groups, "stage1.block2.conv1.conv"));
  expect_narrowed_computes_the_zeroed_original(model, group_named(groups, "stage3.block1.conv2.conv"));
}

TEST(NarrowGroup, ANarrowedMobilenetComputesTheOriginalWithTheDroppedChannelsZeroed) {
  const graph::Graph model = zoo::inference_graph("mobilenetv2s", 7);
  expect_narrowed_computes_the_zeroed_original(model, group_named(channel_groups(model), "block3.expand.conv"));
}

TEST(NarrowGroup, ABadSelectionIsRefused) {
  const graph::Graph model = zoo::inference_graph("resnet20", 7);
  const auto groups = channel_groups(model);
  const auto& group = group_named(groups, "stage1.block2.conv1.conv");
  EXPECT_THROW(narrow_group(model, group, {}), graph::GraphError);
  EXPECT_THROW(narrow_group(model, group, {3, 1}), graph::GraphError);
  EXPECT_THROW(narrow_group(model, group, {0, group.extent}), graph::GraphError);
}

// torchvision's models as PyTorch exports them: batch norms folded on import, flatten before the
// classifier, squeeze-and-excitation gates.
TEST(ChannelGroups, TorchvisionModelsNarrowTheirGroups) {
  const auto fixtures = graph::testing::fixtures();
  if (fixtures.empty()) GTEST_SKIP() << "no fixtures in " << graph::testing::fixture_directory();
  for (const auto& fixture : fixtures) {
    static const std::set<std::string> checked{"resnet18_opset11", "mobilenet_v2_opset13", "mobilenet_v3_small_opset17",
                                               "squeezenet1_1_opset13", "efficientnet_b0_opset13", "shufflenet_v2_opset13"};
    if (!checked.count(fixture.name)) continue;
    const graph::Graph model = graph::import_onnx(fixture.path).graph;
    const auto groups = channel_groups(model);
    ASSERT_FALSE(groups.empty()) << fixture.name;
    // The group with most producers: the longest residual stream.
    const auto widest = std::max_element(groups.begin(), groups.end(), [](const ChannelGroup& a, const ChannelGroup& b) {
      return a.producers.size() < b.producers.size();
    });
    std::cout << fixture.name << ": " << groups.size() << " groups; the widest, " << widest->name() << ", has " << widest->producers.size()
              << " producers, " << widest->followers.size() << " followers and " << widest->consumers.size() << " consumers\n";
    if (fixture.name == "resnet18_opset11" || fixture.name == "mobilenet_v2_opset13") {
      const auto drops = droppable(model);
      const auto branches = std::count_if(drops.begin(), drops.end(), [](const Drop& d) { return !d.removed.empty(); });
      EXPECT_EQ(branches, fixture.name == "resnet18_opset11" ? 8 : 10) << fixture.name << ": every residual block drops to its shortcut";
    }
    const graph::Graph narrowed = narrow_group(model, *widest, every_other(widest->extent));
    EXPECT_LT(graph::total_macs(narrowed), graph::total_macs(model)) << fixture.name;
  }
}

}  // namespace
}  // namespace gos::narrow
