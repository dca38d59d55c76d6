// The ONNX Runtime runner: installed by make setup (these tests fail, not skip, when it is not),
// times runs, and reports models it cannot run and a missing installation clearly.
#include "graph/ort_runner.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "graph/onnx_export.h"
#include "graph/onnx_export_test_support.h"
#include "ir/ops.h"

namespace gos::graph {
namespace {

using test_support::ScratchFolder;

// A one-node model: Y = relu(X) over [1,width].
std::filesystem::path relu_model(const ScratchFolder& folder, int64_t width = 4) {
  Graph graph;
  graph.name = "relu";
  graph.inputs = {{"x", {1, width}}};
  graph.shapes = {{"x", {1, width}}, {"y", {1, width}}};
  graph.nodes.push_back({.name = "relu", .op_type = "Relu", .inputs = {"x"}, .outputs = {"y"},
                         .op = ir::activation({1, width}, ir::Activation::Relu)});
  graph.outputs = {{"y", {1, width}}};
  auto path = folder.file("relu" + std::to_string(width) + ".onnx");
  write_onnx(graph, path);
  return path;
}

// A one-node model: a 3x3 convolution of 16 channels over 28x28, which ONNX Runtime runs in its
// blocked (NCHWc) layout, reordering the input into it and the output out of it.
std::filesystem::path conv_model(const ScratchFolder& folder) {
  const ir::OpExpr op = ir::conv2d({.in_channels = 16, .out_channels = 16, .input_size = {28, 28}, .kernel = {3, 3},
                                    .padding = {1, 1, 1, 1}, .bias = true});
  Graph graph;
  graph.name = "conv";
  graph.inputs = {{"x", {1, 16, 28, 28}}};
  graph.shapes = {{"x", {1, 16, 28, 28}}, {"y", {1, 16, 28, 28}}};
  graph.nodes.push_back({.name = "conv", .op_type = "Conv", .inputs = {"x"}, .outputs = {"y"}, .op = op,
                         .weights = {{"W", ir::Tensor({16, 16, 3, 3}, 0.01f)}, {"B", ir::Tensor({16}, 0.1f)}}});
  graph.outputs = {{"y", {1, 16, 28, 28}}};
  auto path = folder.file("conv.onnx");
  write_onnx(graph, path);
  return path;
}

TEST(OrtRunner, IsInstalledBySetup) {
  std::string version = onnx_runtime_version();
  EXPECT_FALSE(version.empty());
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(version[0]))) << version;
}

TEST(OrtRunner, RunsAModelAtAnyBatch) {
  ScratchFolder folder;
  auto model = relu_model(folder);
  auto outputs = run_onnx_runtime(model, {{"x", ir::Tensor({2, 4}, {-1, 2, -3, 4, 5, -6, 7, -8})}});
  ASSERT_EQ(outputs.count("y"), 1u);
  EXPECT_EQ(outputs.at("y").shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(outputs.at("y").data, (std::vector<float>{0, 2, 0, 4, 5, 0, 7, 0}));
}

TEST(OrtRunner, BenchModeTimesEveryRun) {
  ScratchFolder folder;
  auto model = relu_model(folder);
  auto results = run_onnx_runtime({{model, {{"x", ir::Tensor({1, 4}, 1.0f)}}}},
                                  {.threads = 1, .bench = OrtBench{.warmup = 2, .repeat = 9}});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results[0].timing.has_value());
  const OrtTiming& timing = *results[0].timing;
  EXPECT_EQ(timing.repeat, 9);
  EXPECT_GT(timing.median_ms, 0);
  EXPECT_LE(timing.min_ms, timing.p10_ms);
  EXPECT_LE(timing.p10_ms, timing.median_ms);
  EXPECT_LE(timing.median_ms, timing.p90_ms);
  EXPECT_LE(timing.p90_ms, timing.max_ms);
}

// The profiler's kernel times leave out what every call costs (tens of microseconds through
// Node.js), so a 4-element relu's kernels take far less than its calls; and each model's kernels
// are its own, so a relu over 4M floats takes far longer than the 4-element one.
TEST(OrtRunner, ProfiledBenchTimesEachModelsKernelsWithoutTheCallCost) {
  ScratchFolder folder;
  const int64_t large = int64_t{1} << 22;
  auto results = run_onnx_runtime({{relu_model(folder), {{"x", ir::Tensor({1, 4}, 1.0f)}}},
                                   {relu_model(folder, large), {{"x", ir::Tensor({1, large}, -1.0f)}}}},
                                  {.threads = 1, .bench = OrtBench{.warmup = 2, .repeat = 20, .profile = true}});
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    ASSERT_TRUE(result.timing.has_value());
    ASSERT_TRUE(result.kernel_timing.has_value());
    EXPECT_EQ(result.kernel_timing->repeat, result.timing->repeat);
    EXPECT_LE(result.kernel_timing->p10_ms, result.kernel_timing->median_ms);
    EXPECT_LE(result.kernel_timing->median_ms, result.kernel_timing->p90_ms);
    EXPECT_LE(result.kernel_timing->median_ms, result.timing->median_ms);
  }
  const OrtTiming& small = *results[0].kernel_timing;
  const OrtTiming& big = *results[1].kernel_timing;
  EXPECT_LT(small.median_ms, results[0].timing->median_ms / 2);
  EXPECT_GT(big.median_ms, 10 * std::max(small.median_ms, 0.001));
}

// A lone convolution's kernel time leaves out the layout reorders around it, which a model pays
// once at each end of a chain of convolutions; a relu has none.
TEST(OrtRunner, ProfiledBenchTimesTheLayoutReordersApart) {
  ScratchFolder folder;
  auto results = run_onnx_runtime({{conv_model(folder), {{"x", ir::Tensor({1, 16, 28, 28}, 1.0f)}}},
                                   {relu_model(folder), {{"x", ir::Tensor({1, 4}, 1.0f)}}}},
                                  {.threads = 1, .bench = OrtBench{.warmup = 2, .repeat = 20, .profile = true}});
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].layout_timing.has_value()) << results[0].error;
  ASSERT_TRUE(results[1].layout_timing.has_value()) << results[1].error;
  const OrtTiming& conv_kernels = *results[0].kernel_timing;
  EXPECT_GT(results[0].layout_timing->median_ms, 0);
  EXPECT_LT(results[0].layout_timing->median_ms, conv_kernels.median_ms) << "the 3x3 convolution outweighs its reorders";
  EXPECT_EQ(results[1].layout_timing->max_ms, 0);
}

TEST(OrtRunner, UnprofiledBenchHasNoKernelTiming) {
  ScratchFolder folder;
  auto results = run_onnx_runtime({{relu_model(folder), {{"x", ir::Tensor({1, 4}, 1.0f)}}}},
                                  {.threads = 1, .bench = OrtBench{.warmup = 1, .repeat = 3}});
  EXPECT_TRUE(results.at(0).timing.has_value());
  EXPECT_FALSE(results.at(0).kernel_timing.has_value());
}

// With a budget it times at least `repeat` runs, then goes on until the budget is spent, within
// `max_repeat`: a relu runs in microseconds, so 0.2 s is enough for far more than 9 runs.
TEST(OrtRunner, BenchModeWithABudgetTimesUntilItIsSpentWithinTheRunLimit) {
  ScratchFolder folder;
  auto model = relu_model(folder);
  auto timed = [&](int max_repeat) {
    auto results = run_onnx_runtime({{model, {{"x", ir::Tensor({1, 4}, 1.0f)}}}},
                                    {.threads = 1, .bench = OrtBench{.warmup = 2, .repeat = 9, .budget_seconds = 0.2, .max_repeat = max_repeat}});
    return results.at(0).timing.value().repeat;
  };
  EXPECT_GT(timed(0), 9);
  EXPECT_EQ(timed(40), 40);
}

TEST(OrtRunner, AModelItCannotRunIsReportedWithoutStoppingTheOthers) {
  ScratchFolder folder;
  auto good = relu_model(folder);
  auto corrupt = folder.file("corrupt.onnx");
  std::ofstream(corrupt) << "not an onnx file";
  auto results = run_onnx_runtime({{corrupt, {}}, {good, {{"x", ir::Tensor({1, 4}, 1.0f)}}}});
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NE(results[0].error, "");
  EXPECT_EQ(results[1].error, "");
  try {
    run_onnx_runtime(corrupt, {});
    FAIL() << "a corrupt model ran";
  } catch (const OrtError& error) {
    EXPECT_NE(std::string(error.what()).find("corrupt.onnx"), std::string::npos) << error.what();
  }
}

TEST(OrtRunner, MissingInstallationSaysToRunSetup) {
  ScratchFolder empty;
  std::ofstream(empty.file("run.js")) << "// the runner without its package\n";
  const char* previous = std::getenv("GOS_ORT_DIR");
  std::string saved = previous ? previous : "";
  setenv("GOS_ORT_DIR", empty.file("").c_str(), 1);
  try {
    onnx_runtime_version();
    ADD_FAILURE() << "an empty folder passed for the runner";
  } catch (const OrtError& error) {
    EXPECT_NE(std::string(error.what()).find("make setup"), std::string::npos) << error.what();
  }
  previous ? setenv("GOS_ORT_DIR", saved.c_str(), 1) : unsetenv("GOS_ORT_DIR");
}

}  // namespace
}  // namespace gos::graph
