// `gos train` and `gos eval` as a user runs them, on the small synthetic image set.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "cli/run_binary.h"

namespace gos::cli {
namespace {

using testing::run_gos;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gos-cli-" + std::to_string(getpid()) + "-" + name)).string();
}

TEST(TrainCommand, WritesAnOnnxFileThatEvalScoresTheSame) {
  const std::string model = temp_path("vgg11s.onnx");
  auto train = run_gos({"train", "--model", "vgg11s", "--data", "synthetic:200", "--epochs", "2", "--batch", "50",
                        "-o", model, "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto report = nlohmann::json::parse(train.out);
  ASSERT_EQ(report.at("epochs").size(), 2u);
  double trained = report.at("test_accuracy");
  EXPECT_GE(trained, 0.0);
  EXPECT_LE(trained, 100.0);
  EXPECT_TRUE(std::filesystem::exists(model));

  auto eval = run_gos({"eval", model, "--data", "synthetic:200", "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  auto scored = nlohmann::json::parse(eval.out);
  EXPECT_DOUBLE_EQ(scored.at("accuracy").get<double>(), trained) << "eval reads the file train measured";
  EXPECT_EQ(scored.at("images"), 200);
  std::filesystem::remove(model);
}

TEST(TrainCommand, LearnsTheSyntheticClasses) {
  const std::string model = temp_path("resnet20.onnx");
  auto train = run_gos({"train", "--model", "resnet20", "--data", "synthetic:400", "--epochs", "4", "--batch", "50",
                        "--lr", "0.05", "-o", model, "--json"});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  auto report = nlohmann::json::parse(train.out);
  // Ten classes: chance is 10%; four short epochs on the easy synthetic gratings reach about 60%.
  EXPECT_GT(report.at("test_accuracy").get<double>(), 35.0) << train.out;
  std::filesystem::remove(model);
}

TEST(TrainCommand, UnknownModelIsBadInputListingTheZoo) {
  auto run = run_gos({"train", "--model", "resnet1000", "-o", temp_path("x.onnx")});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("resnet20"), std::string::npos) << run.err;
}

TEST(TrainCommand, MissingDatasetSaysHowToGetIt) {
  auto run = run_gos({"train", "--model", "resnet20", "--data", "fashion-mnist:/nonexistent", "-o", temp_path("x.onnx")});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("make setup"), std::string::npos) << run.err;
}

TEST(EvalCommand, MissingModelFileIsBadInput) {
  auto run = run_gos({"eval", "/nonexistent/model.onnx"});
  EXPECT_EQ(run.exit_code, 2);
}

}  // namespace
}  // namespace gos::cli
