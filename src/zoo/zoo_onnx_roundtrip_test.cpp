// Every zoo model survives gos's own ONNX round trip: written, read back, written again and read
// back again, both files give the interpreter's outputs under ONNX Runtime, at batch 1 and at
// batch 3.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <set>
#include <random>
#include <unistd.h>

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/ort_runner.h"
#include "zoo/zoo.h"

namespace gos::zoo {
namespace {

ir::Tensor random_input(const graph::Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  ir::Tensor tensor(shape);
  for (float& value : tensor.data) value = pixel(rng);
  return tensor;
}

// Max abs difference relative to the reference's scale (at least 1).
float relative_error(const ir::Tensor& actual, const ir::Tensor& expected) {
  EXPECT_EQ(actual.shape, expected.shape);
  float error = 0, scale = 1;
  for (size_t i = 0; i < expected.data.size() && i < actual.data.size(); ++i) {
    error = std::max(error, std::abs(actual.data[i] - expected.data[i]));
    scale = std::max(scale, std::abs(expected.data[i]));
  }
  return error / scale;
}

// Sample `index` of a batch, as a batch of one.
ir::Tensor sample(const ir::Tensor& batch, int64_t index) {
  auto shape = batch.shape;
  shape[0] = 1;
  const int64_t size = batch.elements() / batch.shape[0];
  return ir::Tensor(shape, std::vector<float>(batch.data.begin() + index * size, batch.data.begin() + (index + 1) * size));
}

TEST(ZooOnnxRoundTrip, WrittenReadAndWrittenAgainGivesTheSameOutputsUnderOnnxRuntime) {
  const auto directory = std::filesystem::temp_directory_path() / ("gos-zoo-roundtrip-" + std::to_string(getpid()));
  std::filesystem::create_directories(directory);
  std::vector<graph::OrtRun> runs;
  std::vector<ir::Tensor> expected;  // per run: the interpreter's output for that run's input
  constexpr int64_t kBatch = 3;
  for (const auto& info : models()) {
    graph::Graph model = graph::fold_batch_norms(build_model(info.name, 7));
    auto first = directory / (info.name + ".onnx");
    auto second = directory / (info.name + ".again.onnx");
    graph::write_onnx(model, first);
    graph::write_onnx(graph::import_onnx(first.string()).graph, second);
    // And read back once more, as `gos agent` reads what a workstation re-exports: the imported
    // graph's node names scope the writer's values differently, and declared shapes must follow.
    graph::Graph again;
    ASSERT_NO_THROW(again = graph::import_onnx(second.string()).graph) << info.name;
    EXPECT_EQ(graph::total_macs(again), graph::total_macs(model)) << info.name;
    auto batch_shape = info.input_shape;
    batch_shape[0] = kBatch;
    ir::Tensor batch = random_input(batch_shape, 11);
    std::vector<ir::Tensor> per_sample;
    for (int64_t i = 0; i < kBatch; ++i) per_sample.push_back(graph::evaluate(model, {{"input", sample(batch, i)}}).at("output"));
    for (const auto& file : {first, second}) {
      runs.push_back({file, {{"input", batch}}});
      ir::Tensor joined = per_sample[0];
      for (int64_t i = 1; i < kBatch; ++i) joined.data.insert(joined.data.end(), per_sample[i].data.begin(), per_sample[i].data.end());
      joined.shape[0] = kBatch;
      expected.push_back(joined);
    }
  }
  auto results = graph::run_onnx_runtime(runs);
  ASSERT_EQ(results.size(), runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    SCOPED_TRACE(runs[i].model.filename().string());
    ASSERT_TRUE(results[i].error.empty()) << results[i].error;
    EXPECT_LT(relative_error(results[i].outputs.at("output"), expected[i]), 1e-4);
  }
  std::filesystem::remove_all(directory);
}

// A zoo model named on the command line is what reading back its ONNX export gives, so `gos bench
// resnet20` and `gos bench resnet20.onnx` time the same operators (a convolution and its ReLU
// as one), and the latency predictor is fitted on the operators the search sees.
TEST(ZooOnnxRoundTrip, TheInferenceGraphIsWhatImportingTheExportGives) {
  const auto directory = std::filesystem::temp_directory_path() / ("gos-zoo-inference-" + std::to_string(getpid()));
  std::filesystem::create_directories(directory);
  for (const auto& info : models()) {
    SCOPED_TRACE(info.name);
    const graph::Graph inference = inference_graph(info.name, 7);
    const auto file = directory / (info.name + ".onnx");
    graph::write_onnx(graph::fold_batch_norms(build_model(info.name, 7)), file);
    const graph::Graph imported = graph::import_onnx(file.string()).graph;
    std::multiset<std::string> inference_ops, imported_ops;
    size_t fused = 0;
    for (const auto& node : inference.nodes) {
      if (!node.is_compute()) continue;
      inference_ops.insert(node.op->canonical_key());
      fused += node.op->statements().back().activation != ir::Activation::None;
    }
    for (const auto& node : imported.nodes) {
      if (node.is_compute()) imported_ops.insert(node.op->canonical_key());
    }
    EXPECT_GT(fused, 0u);
    // The convolutional models build each activation as a node of its own (mixer-s is built with
    // its GELUs fused already).
    if (info.name != "mixer-s") {
      EXPECT_LT(inference.nodes.size(), graph::fold_batch_norms(build_model(info.name, 7)).nodes.size());
    }
    EXPECT_EQ(inference.nodes.size(), imported.nodes.size());
    EXPECT_EQ(inference_ops, imported_ops);
  }
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace gos::zoo
