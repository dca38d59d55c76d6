// `gos run` as a user runs it: ONNX's own backend tests (Debian's libonnx-testdata: a node test, and
// an opset-6 PyTorch export the version converter upgrades), fed from their .pb files, on every
// backend against ONNX's expected outputs; a zoo model on a .npy batch; and the inputs it must
// refuse in one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_gos;

const fs::path kOnnxNodeTests = "/usr/include/onnx/backend/test/data/node";
const std::vector<std::string> kBackends{"interpreter", "torch", "mobile", "ort"};

// ONNX's backend-test tolerances.
void expect_close(const data::NpyArray& actual, const ir::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.shape, expected.shape) << what;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    ASSERT_NEAR(actual.values[i], expected.data[i], 1e-7 + 1e-3 * std::abs(expected.data[i])) << what << " at " << i;
  }
}

// Runs one of ONNX's backend tests (its first data set: input_0.pb, and `extra` arguments) on every
// backend, checks each output against output_0.pb, and returns the runs.
std::vector<testing::Run> run_onnx_test(const fs::path& test, const std::vector<std::string>& extra) {
  if (!fs::exists(test)) {
    ADD_FAILURE() << test << " is missing: Debian's libonnx-testdata (make setup installs it)";
    return {};
  }
  const fs::path data = test / "test_data_set_0";
  const ir::Tensor expected = graph::read_tensor_file((data / "output_0.pb").string()).tensor;
  util::ScratchFolder scratch("gos-run-test");
  std::vector<testing::Run> runs;
  for (const auto& backend : kBackends) {
    const fs::path out = scratch.path() / (backend + ".npy");
    std::vector<std::string> arguments{"run", (test / "model.onnx").string(), "--input", (data / "input_0.pb").string(),
                                       "--backend", backend, "-o", out.string()};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    runs.push_back(run_gos(arguments));
    EXPECT_EQ(runs.back().exit_code, 0) << backend << ": " << runs.back().err;
    if (runs.back().exit_code == 0) expect_close(data::read_npy(out.string()), expected, backend);
  }
  return runs;
}

TEST(RunCommand, OnnxsConvTestFedItsWeightAsAnInputGivesTheExpectedOutputOnEveryBackend) {
  const fs::path test = kOnnxNodeTests / "test_conv_with_strides_padding";
  for (const auto& run : run_onnx_test(test, {"--constant", "W=" + (test / "test_data_set_0" / "input_1.pb").string(), "--json"})) {
    EXPECT_EQ(nlohmann::json::parse(run.out).at("outputs").at(0).at("shape"), nlohmann::json::array({1, 1, 4, 3})) << run.out;
  }
}

TEST(RunCommand, AnOpset6PyTorchExportIsUpgradedSaysSoAndGivesTheExpectedOutputOnEveryBackend) {
  for (const auto& run : run_onnx_test(kOnnxNodeTests.parent_path() / "pytorch-converted" / "test_Conv2d", {})) {
    EXPECT_NE(run.err.find("uses opset 6; upgraded to opset 11 with ONNX's version converter"), std::string::npos) << run.err;
  }
}

TEST(RunCommand, AZooModelOnANpyBatchGivesTheSameOutputsOnEveryBackend) {
  util::ScratchFolder scratch("gos-run-test");
  std::vector<float> images(3 * 28 * 28);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  const std::string input = (scratch.path() / "images.npy").string();
  data::write_npy(input, {3, 1, 28, 28}, images);
  std::optional<data::NpyArray> reference;
  for (const auto& backend : kBackends) {
    const std::string out = (scratch.path() / (backend + ".npy")).string();
    const auto run = run_gos({"run", "resnet20", "--input", input, "--backend", backend, "-o", out});
    ASSERT_EQ(run.exit_code, 0) << backend << ": " << run.err;
    EXPECT_NE(run.out.find("[3,10] -> " + out), std::string::npos) << run.out;
    const data::NpyArray logits = data::read_npy(out);
    if (!reference) {
      reference = logits;  // the interpreter's: gos's source of truth
      continue;
    }
    expect_close(logits, ir::Tensor(reference->shape, reference->values), backend);
  }
}

TEST(RunCommand, InputsThatDoNotFitAreRefusedInOneLine) {
  util::ScratchFolder scratch("gos-run-test");
  const std::string input = (scratch.path() / "wrong.npy").string();
  data::write_npy(input, {2, 1, 27, 28}, std::vector<float>(2 * 27 * 28));
  const std::string out = (scratch.path() / "out.npy").string();
  const auto wrong = run_gos({"run", "resnet20", "--input", input, "-o", out});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("input 'input' is [2,1,27,28]; the model reads [1,1,28,28]"), std::string::npos) << wrong.err;
  const auto two = run_gos({"run", "resnet20", "--input", input, "--input", input, "-o", out});
  EXPECT_EQ(two.exit_code, 2);
  EXPECT_NE(two.err.find("the model has 1 input (input); give one --input for each"), std::string::npos) << two.err;
  const auto text = run_gos({"run", "resnet20", "--input", "notes.txt", "-o", out});
  EXPECT_EQ(text.exit_code, 2);
  EXPECT_NE(text.err.find("give a .npy file or an ONNX TensorProto .pb file"), std::string::npos) << text.err;
  const auto constant = run_gos({"run", "resnet20", "--input", input, "--constant", "W", "-o", out});
  EXPECT_EQ(constant.exit_code, 2);
  EXPECT_NE(constant.err.find("give NAME=FILE.pb"), std::string::npos) << constant.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace gos::cli
