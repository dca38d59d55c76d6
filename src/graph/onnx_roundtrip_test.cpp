// Import -> export round trip of the ONNX files PyTorch exported (scripts/make_onnx_fixtures.py):
// the file gos writes, run by ONNX Runtime, gives PyTorch's outputs, at batch 1 and (through the
// symbolic batch dimension) at batch 3.
#include <gtest/gtest.h>

#include "graph/onnx_export_test_support.h"
#include "graph/onnx_import.h"
#include "graph/onnx_test_models.h"

namespace gos::graph {
namespace {

using test_support::close_to_reference;

constexpr int64_t kBatch = 3;

// The batch: the fixture's input repeated.
ir::Tensor repeated(const ir::Tensor& sample, int64_t times) {
  ir::Tensor batch = sample;
  batch.shape[0] = times;
  batch.data.clear();
  for (int64_t i = 0; i < times; ++i) batch.data.insert(batch.data.end(), sample.data.begin(), sample.data.end());
  return batch;
}

ir::Tensor last_sample(const ir::Tensor& batch) {
  Shape shape = batch.shape;
  shape[0] = 1;
  const int64_t size = batch.elements() / batch.shape[0];
  return ir::Tensor(shape, std::vector<float>(batch.data.end() - size, batch.data.end()));
}

TEST(OnnxRoundTrip, PyTorchExportsGiveTheSameOutputsAfterImportAndExport) {
  const auto fixtures = testing::fixtures();
  if (fixtures.empty()) {
    GTEST_SKIP() << "no fixtures in " << testing::fixture_directory() << " (PyTorch missing at configure time)";
  }
  test_support::ScratchFolder folder;
  std::vector<OrtRun> runs;  // per fixture: batch 1, then batch kBatch
  for (const auto& fixture : fixtures) {
    auto exported = folder.file(fixture.name + ".onnx");
    ASSERT_NO_THROW(write_onnx(import_onnx(fixture.path).graph, exported)) << fixture.name;
    ir::Tensor input = testing::read_floats(fixture.input_path, fixture.input_shape);
    runs.push_back({exported, {{fixture.input_name, input}}});
    runs.push_back({exported, {{fixture.input_name, repeated(input, kBatch)}}});
  }
  auto results = run_onnx_runtime(runs);
  for (size_t i = 0; i < fixtures.size(); ++i) {
    const auto& fixture = fixtures[i];
    const ir::Tensor expected = testing::read_floats(fixture.output_path, fixture.output_shape);
    const OrtResult &single = results[2 * i], &batch = results[2 * i + 1];
    ASSERT_EQ(single.error, "") << fixture.name;
    ASSERT_EQ(batch.error, "") << fixture.name << " at batch " << kBatch;
    EXPECT_TRUE(close_to_reference(single.outputs.at(fixture.output_name), expected)) << fixture.name;
    const ir::Tensor& batched = batch.outputs.at(fixture.output_name);
    ASSERT_EQ(batched.shape.at(0), kBatch) << fixture.name;
    EXPECT_TRUE(close_to_reference(last_sample(batched), expected)) << fixture.name << " at batch " << kBatch;
  }
}

// What gos writes, gos reads back (what `gos agent` receives from a workstation): the same outputs'
// shapes and MACs within 1%. Not always the same nodes: an activation fused into its operator may
// be written as several ONNX nodes (HardSwish as HardSigmoid and Mul) that read back apart, and a
// transposed convolution's zero insertion reads back as a convolution over more positions. Einsum
// outputs keep their declared shapes under the names the writer finally gives them.
TEST(OnnxRoundTrip, GosReadsBackWhatItWrites) {
  const auto fixtures = testing::fixtures();
  if (fixtures.empty()) GTEST_SKIP() << "no fixtures in " << testing::fixture_directory();
  for (const auto& fixture : fixtures) {
    const Graph original = import_onnx(fixture.path).graph;
    for (bool symbolic_batch : {true, false}) {
      std::string bytes;
      to_onnx(original, {.symbolic_batch = symbolic_batch}).SerializeToString(&bytes);
      Graph again;
      ASSERT_NO_THROW(again = import_onnx_bytes(bytes, {}, fixture.name).graph) << fixture.name;
      ASSERT_EQ(again.outputs.size(), original.outputs.size()) << fixture.name;
      for (size_t i = 0; i < again.outputs.size(); ++i) EXPECT_EQ(again.outputs[i].shape, original.outputs[i].shape) << fixture.name;
      EXPECT_NEAR(static_cast<double>(total_macs(again)), static_cast<double>(total_macs(original)),
                  0.01 * static_cast<double>(total_macs(original)))
          << fixture.name;
    }
  }
}

}  // namespace
}  // namespace gos::graph
