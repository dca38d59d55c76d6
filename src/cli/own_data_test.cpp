// A user's own model and data, end to end (scripts/make_own_data_fixtures.py): an RGB classifier
// PyTorch trained on an image folder with ImageNet normalisation outside the model, exported with
// a dynamic height and width; and a 1-D regressor of two targets trained on .npy arrays.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"
#include "graph/onnx_import.h"
#include "graph/ort_runner.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::read_json;
using testing::run_gos;
namespace fs = std::filesystem;

const fs::path kFixtures = GOS_OWN_FIXTURES;

class OwnData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFixtures / "manifest.json")) GTEST_SKIP() << "no fixtures in " << kFixtures << " (python3-torch, python3-pil)";
  }
  static std::string images() { return "images:" + (kFixtures / "images").string(); }
  static std::string classifier() { return (kFixtures / "rgb_classifier.onnx").string(); }
};

// A search small enough for the suite on the user's model.
std::vector<std::string> small_adapt(const std::string& model, const std::string& data, const fs::path& out, const fs::path& cache) {
  return {"adapt", model, "--data", data, "--max-layers", "2", "--candidates-per-layer", "2", "--calibration-images", "32",
          "--held-out-images", "8", "--distill-steps", "60", "--sensitivity-images", "24", "--finetune-epochs", "1",
          "--train-threads", "1", "--speedup", "1.01", "--seed", "3", "-o", out.string(), "--cache", cache.string(), "--json"};
}

TEST_F(OwnData, EvalOnAnImageFolderAgreesWithPyTorch) {
  const auto expected = read_json(kFixtures / "rgb_predictions.json");
  const auto run = run_gos({"eval", classifier(), "--data", images(), "--preprocess", "imagenet", "--input-shape", "1,3,32,32", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto result = nlohmann::json::parse(run.out);
  EXPECT_EQ(result["images"], expected["predictions"].size());
  EXPECT_EQ(result["classes"], expected["classes"]);
  // PyTorch classifies every test image correctly (the fixture's classes are easy), so gos's
  // accuracy is the share of images where its top-1 prediction is PyTorch's.
  ASSERT_EQ(expected["accuracy"].get<double>(), 100.0);
  EXPECT_GE(result["accuracy"].get<double>(), 99.0);
  // Each class by its folder's name, the images adding up to the whole.
  ASSERT_EQ(result["per_class"].size(), expected["classes"].size());
  int64_t counted = 0;
  for (size_t c = 0; c < result["per_class"].size(); ++c) {
    EXPECT_EQ(result["per_class"][c]["class"], expected["classes"][c]);
    counted += result["per_class"][c]["images"].get<int64_t>();
  }
  EXPECT_EQ(counted, result["images"].get<int64_t>());
  const auto printed = run_gos({"eval", classifier(), "--data", images(), "--preprocess", "imagenet", "--input-shape", "1,3,32,32"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_NE(printed.out.find(expected["classes"][0].get<std::string>() + " "), std::string::npos) << printed.out;
}

TEST_F(OwnData, ADynamicHeightAndWidthNeedAnInputShape) {
  const auto run = run_gos({"eval", classifier(), "--data", images(), "--preprocess", "imagenet"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("dynamic dimension 2 ('height'); fix it with --input-shape"), std::string::npos) << run.err;
  const auto mismatched = run_gos({"eval", classifier(), "--data", "fashion-mnist", "--input-shape", "1,3,32,32"});
  EXPECT_EQ(mismatched.exit_code, 2);
  EXPECT_NE(mismatched.err.find("a sample is [1,1,28,28], the model reads [1,3,32,32]"), std::string::npos) << mismatched.err;
}

TEST_F(OwnData, AdaptOnAnImageFolderKeepsTheModelsInputContract) {
  util::ScratchFolder scratch("gos-own-images-test");
  auto arguments = small_adapt(classifier(), images(), scratch.file("out"), scratch.file("latency.sqlite"));
  for (const char* extra : {"--preprocess", "imagenet", "--input-shape", "1,3,32,32", "--max-acc-drop", "100"}) arguments.push_back(extra);
  const auto run = run_gos(arguments);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  EXPECT_GE(report["original"]["accuracy"].get<double>(), 90.0);
  // Each class by its folder's name, before and after.
  const auto expected = read_json(kFixtures / "rgb_predictions.json");
  ASSERT_EQ(report["classes"].size(), expected["classes"].size());
  for (size_t c = 0; c < report["classes"].size(); ++c) EXPECT_EQ(report["classes"][c]["class"], expected["classes"][c]);
  // The adapted file reads the original's input, un-normalised by gos: ONNX Runtime runs it on
  // the same tensor the user's pipeline gives the original.
  const fs::path adapted = scratch.file("out") / "adapted.onnx";
  const auto imported = graph::import_onnx(adapted.string());
  ASSERT_EQ(imported.graph.inputs.size(), 1u);
  EXPECT_EQ(imported.graph.inputs[0].name, "image");
  EXPECT_EQ(imported.graph.inputs[0].shape, (graph::Shape{1, 3, 32, 32}));
  const auto outputs = graph::run_onnx_runtime(adapted, {{"image", ir::Tensor({1, 3, 32, 32}, 0.5f)}});
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs.begin()->second.shape, (std::vector<int64_t>{1, 3}));
  const auto eval = run_gos({"eval", adapted.string(), "--data", images(), "--preprocess", "imagenet", "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out)["accuracy"].get<double>(), report["adapted"]["accuracy"].get<double>(), 1e-6);
  const auto bench = run_gos({"bench", classifier(), "--input-shape", "1,3,32,32", "--against", adapted.string(), "--budget", "0.5", "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_GT(nlohmann::json::parse(bench.out)["speedup"].get<double>(), 0.0);
}

TEST_F(OwnData, FoldedPreprocessingMakesFilesThatReadImagesBeforeNormalisation) {
  util::ScratchFolder scratch("gos-own-fold-test");
  auto arguments = small_adapt(classifier(), images(), scratch.file("out"), scratch.file("latency.sqlite"));
  for (const char* extra : {"--preprocess", "imagenet", "--input-shape", "1,3,32,32", "--max-acc-drop", "100", "--fold-preprocessing"}) {
    arguments.push_back(extra);
  }
  const auto run = run_gos(arguments);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  // Without --preprocess: the file normalises the images itself and scores what gos verified.
  const auto eval = run_gos({"eval", (scratch.file("out") / "adapted.onnx").string(), "--data", images(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out)["accuracy"].get<double>(), report["adapted"]["accuracy"].get<double>(), 1e-6);
  const auto imported = graph::import_onnx((scratch.file("out") / "adapted.onnx").string());
  EXPECT_EQ(imported.graph.nodes.front().op_type, "Sub");

  const auto without_values = run_gos({"adapt", classifier(), "--data", images(), "--input-shape", "1,3,32,32", "--fold-preprocessing",
                                       "-o", scratch.file("bad").string()});
  EXPECT_EQ(without_values.exit_code, 2);
  EXPECT_NE(without_values.err.find("give --mean and --std (or --preprocess imagenet)"), std::string::npos) << without_values.err;
}

TEST_F(OwnData, AdaptOnArraysOfRegressionTargets) {
  util::ScratchFolder scratch("gos-own-arrays-test");
  const std::string data = "arrays:" + (kFixtures / "arrays").string();
  auto arguments = small_adapt((kFixtures / "signal_regressor.onnx").string(), data, scratch.file("out"), scratch.file("latency.sqlite"));
  for (const char* extra : {"--max-mae-increase", "10"}) arguments.push_back(extra);
  const auto run = run_gos(arguments);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["metric"], "mae");
  const double pytorch_mae = read_json(kFixtures / "manifest.json")["signal_regressor_test_mae"].get<double>();
  EXPECT_NEAR(report["original"]["mae"].get<double>(), pytorch_mae, 1e-3);
  const auto eval = run_gos({"eval", (scratch.file("out") / "adapted.onnx").string(), "--data", data, "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out)["mae"].get<double>(), report["adapted"]["mae"].get<double>(), 1e-4);

  const auto wrong_budget = run_gos({"adapt", (kFixtures / "signal_regressor.onnx").string(), "--data", data, "--max-acc-drop", "1",
                                     "-o", scratch.file("bad").string()});
  EXPECT_EQ(wrong_budget.exit_code, 2);
  EXPECT_NE(wrong_budget.err.find("holds regression targets: give --max-mae-increase"), std::string::npos) << wrong_budget.err;
}

TEST_F(OwnData, LabelsBeyondTheModelsOutputsAreRefusedBeforeAnythingIsWritten) {
  util::ScratchFolder scratch("gos-own-labels-test");
  // The fixture's folder with one more class than the classifier's three outputs.
  const fs::path folder = scratch.file("images");
  fs::copy(kFixtures / "images", folder, fs::copy_options::recursive);
  for (const char* split : {"train", "val", "test"}) {
    std::vector<fs::path> classes(fs::directory_iterator(folder / split), fs::directory_iterator{});
    ASSERT_FALSE(classes.empty());
    fs::copy(*std::min_element(classes.begin(), classes.end()), folder / split / "zebra", fs::copy_options::recursive);
  }
  auto arguments = small_adapt(classifier(), "images:" + folder.string(), scratch.file("out"), scratch.file("latency.sqlite"));
  for (const char* extra : {"--preprocess", "imagenet", "--input-shape", "1,3,32,32"}) arguments.push_back(extra);
  const auto adapt = run_gos(arguments);
  EXPECT_EQ(adapt.exit_code, 2) << adapt.err;
  EXPECT_NE(adapt.err.find("the model writes [1,3], but the labels are 4 classes: a classifier of this data writes [1,4]"), std::string::npos)
      << adapt.err;
  EXPECT_EQ(std::count(adapt.err.begin(), adapt.err.end(), '\n'), 1) << adapt.err;
  EXPECT_FALSE(fs::exists(scratch.file("out")));
  EXPECT_FALSE(fs::exists(scratch.file("latency.sqlite")));

  const auto eval = run_gos({"eval", classifier(), "--data", "images:" + folder.string(), "--preprocess", "imagenet", "--input-shape", "1,3,32,32"});
  EXPECT_EQ(eval.exit_code, 2);
  EXPECT_NE(eval.err.find("writes [1,3]; a classifier of this data writes [1,4]"), std::string::npos) << eval.err;
}

}  // namespace
}  // namespace gos::cli
