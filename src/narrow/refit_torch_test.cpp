// Which channels a narrowed group keeps and what its consumers inherit: importance by what a channel
// changes downstream, least-squares refitting against plain slicing, and a narrowed model written
// to ONNX (run by ONNX Runtime) and TorchScript.
#include <gtest/gtest.h>
#include <torch/script.h>

#include <filesystem>
#include <random>

#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/torch_lowering.h"
#include "narrow/narrow.h"
#include "narrow/narrow_test_support.h"
#include "zoo/zoo.h"

namespace gos::narrow {
namespace {

ir::Tensor random_batch(const graph::Graph& graph, int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(0, 1);
  auto shape = graph.inputs.at(0).shape;
  shape[0] = count;
  ir::Tensor batch(shape);
  for (auto& value : batch.data) value = uniform(rng);
  return batch;
}

torch::Tensor run(const graph::Graph& graph, const ir::Tensor& batch) {
  torch::NoGradGuard no_grad;
  graph::GraphModule module(graph);
  module.eval();
  return module.forward(lowering::to_torch(batch));
}

double relative_error(const torch::Tensor& got, const torch::Tensor& expected) {
  return (got - expected).norm().item<double>() / expected.norm().item<double>();
}

const ChannelGroup& group_named(const std::vector<ChannelGroup>& groups, const std::string& prefix) {
  for (const auto& group : groups) {
    if (group.name().starts_with(prefix)) return group;
  }
  throw std::runtime_error("no group named " + prefix);
}

// The consumer's input-channel slice of its weight, scaled.
void scale_consumer_column(graph::Graph& graph, const ChannelGroup& group, int64_t channel, float factor) {
  const auto is_consumer = [&](const std::string& node) {
    return std::find(group.consumers.begin(), group.consumers.end(), node) != group.consumers.end();
  };
  testing::change_group_weights(graph, group, is_consumer, [&](int64_t position, float& weight) {
    if (position == channel) weight *= factor;
  });
}

TEST(ChannelImportance, RanksAChannelByWhatItsConsumersReadOfIt) {
  graph::Graph model = zoo::inference_graph("resnet20", 3);
  const auto groups = channel_groups(model);
  const ChannelGroup& group = group_named(groups, "stage2.block1.conv1");
  ASSERT_EQ(group.consumers.size(), 1u);
  scale_consumer_column(model, group, 3, 0.0f);  // nobody reads channel 3 any more
  scale_consumer_column(model, group, 5, 20.0f);  // channel 5 is read twenty times as strongly
  const auto importance = channel_importance(model, group, {random_batch(model, 8, 1)});
  ASSERT_EQ(static_cast<int64_t>(importance.size()), group.extent);
  EXPECT_EQ(importance[3], 0.0);
  EXPECT_EQ(std::max_element(importance.begin(), importance.end()) - importance.begin(), 5);
  // The producer's weights do not see either change.
  const auto norms = weight_norms(model, group);
  EXPECT_GT(norms[3], 0.0);
  EXPECT_EQ(strongest(importance, 1), (std::vector<int64_t>{5}));
  EXPECT_EQ(strongest({1, 3, 2, 3}, 2), (std::vector<int64_t>{1, 3}));
}

TEST(NarrowAndRefit, LeastSquaresBringsTheModelCloserToTheOriginalThanSlicing) {
  const graph::Graph model = zoo::inference_graph("resnet20", 5);
  const auto groups = channel_groups(model);
  const ir::Tensor fit = random_batch(model, 48, 2), held_out = random_batch(model, 32, 3);
  const OutputError error_on_held_out(model, held_out);
  EXPECT_EQ(error_on_held_out(model), 0.0);
  for (const std::string name : {"stage1.block1.conv1", "stage3.block2.conv1"}) {
    const ChannelGroup& group = group_named(groups, name);
    const auto kept = strongest(channel_importance(model, group, {fit}), group.extent / 2);
    const Refitted refitted = narrow_and_refit(model, group, kept, {fit});
    EXPECT_LT(refitted.refit_error, 0.9 * refitted.sliced_error) << name;
    const graph::Graph sliced = narrow_group(model, group, kept);
    // On images it was not fitted on, the whole model's output too.
    EXPECT_LT(error_on_held_out(refitted.graph), error_on_held_out(sliced)) << name;
    EXPECT_GT(error_on_held_out(refitted.graph), 0.0) << name;
  }
}

TEST(NarrowAndRefit, ANarrowedModelRunsInOnnxRuntimeAndTorchScriptAsInLibtorch) {
  const graph::Graph model = zoo::inference_graph("mobilenetv2s", 4);
  graph::Graph narrowed = model;
  for (const auto& group : channel_groups(model)) {
    // Groups are found again on the narrowed graph: narrowing one renames nothing of another.
    const auto current = channel_groups(narrowed);
    for (const auto& same : current) {
      if (same.name() == group.name()) narrowed = narrow_group(narrowed, same, strongest(weight_norms(narrowed, same), same.extent / 2));
    }
  }
  const ir::Tensor batch = random_batch(model, 4, 9);
  const torch::Tensor expected = run(narrowed, batch);
  const auto dir = std::filesystem::temp_directory_path() / ("gos-narrow-export-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  graph::write_onnx(narrowed, dir / "narrowed.onnx");
  const auto outputs = graph::run_onnx_runtime(dir / "narrowed.onnx", {{model.inputs.at(0).name, batch}});
  const torch::Tensor from_ort = lowering::to_torch(outputs.at(model.outputs.at(0).name));
  EXPECT_LT(relative_error(from_ort, expected), 1e-4);
  graph::export_torchscript(narrowed, (dir / "narrowed.pt").string(), false);
  torch::jit::Module loaded = torch::jit::load((dir / "narrowed.pt").string());
  torch::NoGradGuard no_grad;
  const torch::Tensor from_script = loaded.forward({lowering::to_torch(batch)}).toTensor();
  EXPECT_LT(relative_error(from_script, expected), 1e-4);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gos::narrow
