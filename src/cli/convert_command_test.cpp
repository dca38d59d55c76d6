// `gos convert`: an ONNX file from PyTorch becomes TorchScript for PyTorch Mobile or gos's ONNX
// re-export, each checked against the model it came from; what it cannot write is refused.
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

const fs::path kConvTranspose = "/usr/include/onnx/backend/test/data/pytorch-converted/test_ConvTranspose2d";

TEST(ConvertCommand, AZooModelBecomesTorchScriptAndOnnxThatComputeWhatGosComputes) {
  util::ScratchFolder scratch("gos-convert-test");
  for (const std::string file : {"resnet20.pt", "resnet20.onnx"}) {
    const fs::path output = scratch.path() / "out" / file;
    const auto run = run_gos({"convert", "resnet20", "-o", output.string(), "--json"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const auto report = nlohmann::json::parse(run.out);
    EXPECT_TRUE(report.at("agrees").get<bool>()) << run.out;
    EXPECT_LT(report.at("max_relative_difference").get<double>(), 1e-4) << run.out;
    EXPECT_GT(fs::file_size(output), 100000u) << file;
  }
  // The ONNX file gos wrote imports again.
  EXPECT_NO_THROW(graph::import_onnx((scratch.path() / "out" / "resnet20.onnx").string()));
}

// ONNX to PyTorch Mobile for a model PyTorch exported at opset 6 (upgraded on import), whose
// TorchScript then gives ONNX's expected output through `gos run --backend mobile` semantics.
TEST(ConvertCommand, AnOldPyTorchExportWithATransposedConvolutionConvertsToTorchScript) {
  if (!fs::exists(kConvTranspose)) GTEST_SKIP() << "Debian's libonnx-testdata is not installed";
  util::ScratchFolder scratch("gos-convert-test");
  const fs::path output = scratch.path() / "model.pt";
  const auto run = run_gos({"convert", (kConvTranspose / "model.onnx").string(), "-o", output.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("TorchScript"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("uses opset 6; upgraded"), std::string::npos) << run.err;
  EXPECT_TRUE(fs::exists(output));
}

TEST(ConvertCommand, RefusesAnOutputThatIsNeitherTorchScriptNorOnnx) {
  const auto run = run_gos({"convert", "resnet20", "-o", "model.tflite"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find(".pt file"), std::string::npos) << run.err;
  const auto missing = run_gos({"convert", "/nonexistent/model.onnx", "-o", "model.pt"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

}  // namespace
}  // namespace gos::cli
