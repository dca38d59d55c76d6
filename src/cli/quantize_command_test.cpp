// `gos quantize` as a user runs it: the committed resnet20 baseline quantized on Fashion-MNIST,
// and the bad inputs it must refuse in one line.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"

namespace gos::cli {
namespace {

using testing::run_gos;

std::string temp_folder(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gos-quantize-" + std::to_string(getpid()) + "-" + name)).string();
}

const std::string kResnet = std::string(GOS_MODELS_DIR) + "/resnet20.onnx";

TEST(QuantizeCommand, TheResnetBaselineInInt8StaysWithinAPointOfItsAccuracyOnMobile) {
  const std::string out = temp_folder("resnet20");
  auto run = run_gos({"quantize", kResnet, "--data", "fashion-mnist", "--budget", "2", "-o", out, "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  const double fp32 = report.at("fp32").at("accuracy"), int8 = report.at("int8").at("accuracy");
  EXPECT_GT(fp32, 90.0) << "the baseline's own accuracy, as ONNX Runtime computes it";
  EXPECT_NEAR(int8, fp32, 1.0) << run.out;
  // Every convolution, addition, pooling and the classifier run int8; only the input's
  // normalisation, an elementwise einsum, stays fp32, and the report says so.
  EXPECT_EQ(report.at("int8_nodes").get<int>() + 1, report.at("compute_nodes").get<int>());
  ASSERT_EQ(report.at("fp32_nodes").size(), 1u);
  EXPECT_EQ(report.at("fp32_nodes")[0].at("node").get<std::string>().rfind("normalize", 0), 0u) << run.out;
  EXPECT_EQ(report.at("calibration_samples"), 512);
  EXPECT_EQ(report.at("backend"), "mobile");
  EXPECT_TRUE(std::filesystem::exists(report.at("int8_torchscript").get<std::string>()));
  EXPECT_GT(report.at("speedup").get<double>(), 0.0);

  // The file is QDQ: int8 weights behind DequantizeLinear, activations through QuantizeLinear.
  onnx::ModelProto model;
  std::ifstream file(report.at("int8_onnx").get<std::string>(), std::ios::binary);
  ASSERT_TRUE(model.ParseFromIstream(&file));
  int quantize = 0, int8_weights = 0, weighted = 0;
  for (const auto& node : model.graph().node()) {
    quantize += node.op_type() == "QuantizeLinear";
    weighted += node.op_type() == "Conv" || node.op_type() == "Gemm";
  }
  for (const auto& initializer : model.graph().initializer()) int8_weights += initializer.data_type() == onnx::TensorProto_DataType_INT8 && initializer.dims_size() > 1;
  EXPECT_GT(quantize, 20);
  EXPECT_EQ(int8_weights, weighted) << "every convolution and the classifier read int8 weights";
  EXPECT_GE(weighted, 20);

  // gos refuses to read back a quantized file, saying what to give it instead.
  auto again = run_gos({"quantize", report.at("int8_onnx").get<std::string>(), "--data", "fashion-mnist", "-o", out});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("is already quantized"), std::string::npos) << again.err;
  std::filesystem::remove_all(out);
}

TEST(QuantizeCommand, FewerTrainingSamplesThanAskedCalibratesOnAllAndSaysSo) {
  const std::string out = temp_folder("few");
  auto run = run_gos({"quantize", "resnet20", "--data", "synthetic:40", "--calibration-images", "100", "--backend", "ort", "--budget", "1", "-o", out});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("holds 40 samples; calibrating on all of them, not the 100 asked for"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("calibrated on 40 training samples"), std::string::npos) << run.out;
  std::filesystem::remove_all(out);
}

TEST(QuantizeCommand, DataThatDoesNotFitTheModelIsBadInput) {
  auto run = run_gos({"quantize", "tcn-ppg", "--data", "synthetic:20", "-o", temp_folder("misfit")});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("a sample is [1,1,28,28], the model reads [1,4,512]"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace gos::cli
