// `gos conformance` over ONNX's own backend tests (Debian's libonnx-testdata: node/ and
// pytorch-converted/): every test gos imports gives ONNX's expected outputs on the interpreter,
// libtorch, the TorchScript file for PyTorch Mobile and gos's re-export in ONNX Runtime, every test it refuses says why, and the operators
// real exporters emit for vision and signal models are among the passing ones.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/run_binary.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_gos;

const fs::path kOnnxTests = "/usr/include/onnx/backend/test/data";

// ONNX Runtime's linear Resize with align_corners sizes its grid by the rounded output length; ONNX's
// reference (and gos) by scale * input length (2.4 here), so ONNX Runtime disagrees with the
// expected output whichever way the file states the resize.
const std::set<std::pair<std::string, std::string>> kOnnxRuntimeDisagrees{{"test_resize_downsample_scales_linear_align_corners", "ort"}};

nlohmann::json run_suites() {
  const auto run = run_gos({"conformance", (kOnnxTests / "node").string(), (kOnnxTests / "pytorch-converted").string(), "--backends",
                      "interpreter,torch,mobile,ort", "--json"});
  EXPECT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  return nlohmann::json::parse(run.out);
}

class OnnxConformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (fs::exists(kOnnxTests / "node")) results_ = new nlohmann::json(run_suites());
  }
  static void TearDownTestSuite() { delete results_; }
  void SetUp() override {
    if (!results_) GTEST_SKIP() << "Debian's libonnx-testdata is not installed (make setup installs it)";
  }
  static const nlohmann::json& test(const std::string& name) {
    for (const auto& entry : (*results_)["tests"]) {
      if (entry["name"] == name) return entry;
    }
    throw std::runtime_error("no test " + name);
  }
  static nlohmann::json* results_;
};
nlohmann::json* OnnxConformance::results_ = nullptr;

TEST_F(OnnxConformance, EveryImportedTestGivesTheExpectedOutputsOnEveryBackend) {
  for (const auto& entry : (*results_)["tests"]) {
    if (entry["status"] != "imported") continue;
    for (const auto& [backend, outcome] : entry["backends"].items()) {
      if (kOnnxRuntimeDisagrees.count({entry["name"], backend})) continue;
      EXPECT_EQ(outcome["status"], "pass") << entry["suite"] << "/" << entry["name"] << " on " << backend << ": " << outcome.value("detail", "");
    }
  }
}

TEST_F(OnnxConformance, EveryRefusedTestSaysWhy) {
  for (const auto& entry : (*results_)["tests"]) {
    if (entry["status"] == "imported") continue;
    EXPECT_FALSE(entry.value("reason", "").empty()) << entry["name"];
  }
}

TEST_F(OnnxConformance, TheOperatorsOfVisionAndSignalModelsPass) {
  const std::vector<std::string> names{
      "test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding", "test_gemm_all_attributes",
      "test_gemm_transposeA",        "test_convtranspose",                              "test_convtranspose_pads",
      "test_convtranspose_1d",       "test_convtranspose_autopad_same",                 "test_ConvTranspose2d",
      "test_prelu_broadcast",        "test_PReLU_2d_multiparam",                        "test_leakyrelu",
      "test_elu",                    "test_selu",                                       "test_softplus",
      "test_tanh",                   "test_clip_splitbounds",                           "test_ReflectionPad2d",
      "test_ReplicationPad2d",       "test_constant_pad",                               "test_maxpool_2d_ceil",
      "test_averagepool_2d_ceil",    "test_averagepool_2d_pads_count_include_pad",      "test_resize_upsample_scales_nearest",
      "test_resize_upsample_scales_linear", "test_resize_downsample_sizes_linear_pytorch_half_pixel", "test_upsample_nearest",
      "test_instancenorm_example",   "test_squeeze",                                    "test_unsqueeze_axis_0",
      "test_slice_neg_steps",        "test_gather_0",                                   "test_gather_negative_indices"};
  for (const auto& name : names) {
    const auto& entry = test(name);
    ASSERT_EQ(entry["status"], "imported") << name << ": " << entry.value("reason", "");
    for (const auto& backend : {"interpreter", "torch", "mobile", "ort"}) EXPECT_EQ(entry["backends"][backend]["status"], "pass") << name << " on " << backend;
  }
}

TEST_F(OnnxConformance, AsManyTestsImportAsWhenTheseFiguresWereWritten) {
  // docs/onnx-import.md's table: a change that imports fewer is a regression to explain there.
  EXPECT_GE((*results_)["suites"]["node"]["imported"].get<int>(), 222);
  EXPECT_GE((*results_)["suites"]["pytorch-converted"]["imported"].get<int>(), 64);
}

TEST(ConformanceCommand, RunsOneTestFolderAndRefusesAFolderWithoutModels) {
  const fs::path one = kOnnxTests / "node" / "test_relu";
  if (!fs::exists(one)) GTEST_SKIP() << "Debian's libonnx-testdata is not installed";
  const auto run = run_gos({"conformance", one.string(), "--backends", "interpreter,torch"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("interpreter"), std::string::npos) << run.out;
  const auto empty = run_gos({"conformance", fs::temp_directory_path().string() + "/gos-no-such-folder"});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("not a folder"), std::string::npos) << empty.err;
}

}  // namespace
}  // namespace gos::cli
