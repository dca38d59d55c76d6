// The zoo's models: well-formed graphs with the documented interface, deterministic weights, batch
// norm that folds exactly, and the MACs and params worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "zoo/zoo.h"

namespace gos::zoo {
namespace {

TEST(Zoo, ListsItsModels) {
  EXPECT_EQ(model_names(), (std::vector<std::string>{"resnet20", "vgg11s", "mobilenetv2s", "mixer-s", "tcn-ppg"}));
  EXPECT_EQ(model_info("tcn-ppg").task, Task::Regression);
}

TEST(Zoo, UnknownModelNamesTheKnownOnes) {
  try {
    build_model("resnet50", 0);
    FAIL() << "no error";
  } catch (const ZooError& error) {
    EXPECT_EQ(std::string(error.what()),
              "unknown model 'resnet50'; the zoo has resnet20, vgg11s, mobilenetv2s, mixer-s, tcn-ppg");
  }
}

// ---- Every model ----------------------------------------------------------------------------------

ir::Tensor random_tensor(const graph::Shape& shape, std::mt19937& rng, float low, float high) {
  ir::Tensor tensor(shape);
  std::uniform_real_distribution<float> uniform(low, high);
  for (float& v : tensor.data) v = uniform(rng);
  return tensor;
}

// Fresh batch norms are the identity, which would fold trivially; give them trained-looking state.
void randomise_batch_norms(graph::Graph& graph, std::mt19937& rng) {
  for (auto& node : graph.nodes) {
    if (node.op_type != "BatchNormalization") continue;
    const graph::Shape channels = node.weights.at("scale").shape;
    node.weights["scale"] = random_tensor(channels, rng, 0.5f, 1.5f);
    node.weights["B"] = random_tensor(channels, rng, -0.2f, 0.2f);
    node.weights["mean"] = random_tensor(channels, rng, -0.2f, 0.2f);
    node.weights["var"] = random_tensor(channels, rng, 0.5f, 1.5f);
  }
}

int count_nodes(const graph::Graph& graph, const std::string& op_type) {
  int count = 0;
  for (const auto& node : graph.nodes) count += node.op_type == op_type;
  return count;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class EveryModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryModel, HasTheDocumentedInterface) {
  const ModelInfo& info = model_info(GetParam());
  graph::Graph graph = build_model(info.name, 1);
  EXPECT_NO_THROW(graph::validate(graph));
  ASSERT_EQ(graph.inputs.size(), 1u);
  ASSERT_EQ(graph.outputs.size(), 1u);
  EXPECT_EQ(graph.inputs[0].name, "input");
  EXPECT_EQ(graph.inputs[0].shape, info.input_shape);
  EXPECT_EQ(graph.outputs[0].name, "output");
  EXPECT_EQ(graph.outputs[0].shape, (graph::Shape{1, info.outputs}));
  EXPECT_EQ(graph.name, info.name);
}

TEST_P(EveryModel, WeightsAreAFunctionOfTheSeed) {
  graph::Graph first = build_model(GetParam(), 7);
  graph::Graph again = build_model(GetParam(), 7);
  graph::Graph other = build_model(GetParam(), 8);
  bool any_differs = false;
  for (size_t i = 0; i < first.nodes.size(); ++i) {
    for (const auto& [name, tensor] : first.nodes[i].weights) {
      EXPECT_EQ(tensor.data, again.nodes[i].weights.at(name).data) << first.nodes[i].name << " " << name;
      any_differs = any_differs || tensor.data != other.nodes[i].weights.at(name).data;
    }
  }
  EXPECT_TRUE(any_differs);
}

TEST_P(EveryModel, FoldedBatchNormsGiveTheSameOutputs) {
  std::mt19937 rng(42);
  graph::Graph graph = build_model(GetParam(), 3);
  randomise_batch_norms(graph, rng);
  graph::Graph folded = graph::fold_batch_norms(graph);
  EXPECT_NO_THROW(graph::validate(folded));
  EXPECT_EQ(count_nodes(folded, "BatchNormalization"), 0) << "every batch norm follows a conv it can fold into";

  const ir::TensorMap inputs{{"input", random_tensor(graph.inputs[0].shape, rng, 0.0f, 1.0f)}};
  auto start = std::chrono::steady_clock::now();
  const ir::Tensor expected = graph::evaluate(graph, inputs).at("output");
  const double unfolded_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  const ir::Tensor actual = graph::evaluate(folded, inputs).at("output");
  const double folded_seconds = seconds_since(start);

  float error = 0, scale = 0;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    ASSERT_TRUE(std::isfinite(expected.data[i]));
    error = std::max(error, std::abs(actual.data[i] - expected.data[i]));
    scale = std::max(scale, std::abs(expected.data[i]));
  }
  ASSERT_GT(scale, 0.0f);
  EXPECT_LE(error / scale, 1e-4f) << "max abs error " << error << " at output scale " << scale;

  std::printf("%s: %lld MACs, %lld params (%lld with batch norms folded); interpreter %.2f s unfolded, %.2f s folded\n",
              GetParam().c_str(), static_cast<long long>(graph::total_macs(graph)),
              static_cast<long long>(graph::total_params(graph)), static_cast<long long>(graph::total_params(folded)),
              unfolded_seconds, folded_seconds);
}

INSTANTIATE_TEST_SUITE_P(Zoo, EveryModel, ::testing::ValuesIn(model_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- Hand-computed cost -----------------------------------------------------------------------------

// A convolution's MACs: output positions x output channels x (input channels x kernel taps).
constexpr int64_t conv_macs(int64_t positions, int64_t out_channels, int64_t in_channels, int64_t taps) {
  return positions * out_channels * in_channels * taps;
}

TEST(ZooCost, ResNet20) {
  const int64_t stem = conv_macs(28 * 28, 16, 1, 9);
  const int64_t stage1 = 6 * conv_macs(28 * 28, 16, 16, 9);
  // The first block of stages 2 and 3: a strided 3x3 conv and the 1x1 shortcut; then five 3x3 convs.
  const int64_t stage2 =
      conv_macs(14 * 14, 32, 16, 9) + conv_macs(14 * 14, 32, 16, 1) + 5 * conv_macs(14 * 14, 32, 32, 9);
  const int64_t stage3 = conv_macs(7 * 7, 64, 32, 9) + conv_macs(7 * 7, 64, 32, 1) + 5 * conv_macs(7 * 7, 64, 64, 9);
  const int64_t fc = 64 * 10;
  graph::Graph graph = build_model("resnet20", 0);
  EXPECT_EQ(graph::total_macs(graph), stem + stage1 + stage2 + stage3 + fc);
  EXPECT_EQ(graph::total_macs(graph), 31'021'952);

  const int64_t conv_weights = 16 * 9 + 6 * 16 * 16 * 9 + (32 * 16 * 9 + 32 * 16 + 5 * 32 * 32 * 9) +
                               (64 * 32 * 9 + 64 * 32 + 5 * 64 * 64 * 9);
  const int64_t normalised_channels = 16 + 6 * 16 + 7 * 32 + 7 * 64;  // one batch norm per conv
  const int64_t fc_params = 64 * 10 + 10;
  EXPECT_EQ(graph::total_params(graph), conv_weights + 2 * normalised_channels + fc_params);  // BN scale and shift
  EXPECT_EQ(graph::total_params(graph::fold_batch_norms(graph)), conv_weights + normalised_channels + fc_params);
  EXPECT_EQ(graph::total_params(graph::fold_batch_norms(graph)), 271'402);
}

TEST(ZooCost, TcnPpg) {
  const int64_t samples = 512;
  const int64_t convs = conv_macs(samples, 32, 4, 3) + 5 * conv_macs(samples, 32, 32, 3);
  const int64_t head = 32;
  graph::Graph graph = build_model("tcn-ppg", 0);
  EXPECT_EQ(graph::total_macs(graph), convs + head);
  EXPECT_EQ(graph::total_macs(graph), 8'060'960);

  const int64_t conv_weights = 32 * 4 * 3 + 5 * 32 * 32 * 3;
  const int64_t normalised_channels = 6 * 32;
  EXPECT_EQ(graph::total_params(graph), conv_weights + 2 * normalised_channels + 33);
  EXPECT_EQ(graph::total_params(graph::fold_batch_norms(graph)), conv_weights + normalised_channels + 33);
  EXPECT_EQ(graph::total_params(graph::fold_batch_norms(graph)), 15'969);
}

}  // namespace
}  // namespace gos::zoo
