// The pulse-rate use case as a user runs it: synthetic wristband data, `gos train --model
// tcn-ppg`, `gos eval` next to the spectral reference, and `gos adapt` on the regression with its
// MAE budget (a small search: two layers, one epoch).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::run_gos;
namespace fs = std::filesystem;

// 15 subjects x 2 minutes (the fixed split needs all 15) and a briefly trained baseline, shared
// by the tests of this file.
class PpgCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    scratch_ = new util::ScratchFolder("gos-ppg-test");
    const auto synth = run_gos({"data", "synth-ppg", "--subjects", "15", "--minutes", "2", "--seed", "3", "-o", data_dir()});
    ASSERT_EQ(synth.exit_code, 0) << synth.err;
    train_ = run_gos({"train", "--model", "tcn-ppg", "--data", "ppg:" + data_dir(), "--epochs", "4", "--batch", "32",
                      "--threads", "1", "-o", baseline(), "--json"});
  }
  static void TearDownTestSuite() {
    delete scratch_;
    scratch_ = nullptr;
  }
  static std::string data_dir() { return scratch_->file("data").string(); }
  static std::string baseline() { return scratch_->file("tcn-ppg.onnx").string(); }
  // `gos adapt` on the baseline with a search small enough for a test (one operator, one
  // candidate, one epoch, one attempt), then `extra`.
  static testing::Run small_adapt(const std::string& out_name, const std::vector<std::string>& extra) {
    std::vector<std::string> args{"adapt", baseline(), "--data", "ppg:" + data_dir(), "--max-layers", "1", "--rules",
                                  "rank_split", "--candidates-per-layer", "1", "--calibration-images", "48",
                                  "--held-out-images", "16", "--distill-steps", "50", "--finetune-epochs", "1",
                                  "--train-threads", "1", "--max-mae-increase", "50", "--max-attempts", "1", "-o",
                                  scratch_->file(out_name).string(), "--cache", scratch_->file("cache.sqlite").string(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gos(args);
  }

  static util::ScratchFolder* scratch_;
  static testing::Run train_;
};
util::ScratchFolder* PpgCommands::scratch_ = nullptr;
testing::Run PpgCommands::train_;

TEST_F(PpgCommands, TrainingTheTcnLearnsThePulseRateAndEvalReadsTheSameFile) {
  ASSERT_EQ(train_.exit_code, 0) << train_.err;
  const auto report = nlohmann::json::parse(train_.out);
  ASSERT_EQ(report.at("epochs").size(), 4u);
  const double trained = report.at("test_mae_bpm");
  // Predicting the training mean (about 90 BPM) for every window is off by 20 BPM and more.
  EXPECT_LT(trained, 15.0) << train_.out;
  EXPECT_LT(report["epochs"][3]["train_mae_bpm"].get<double>(), report["epochs"][0]["train_mae_bpm"].get<double>());

  const auto eval = run_gos({"eval", baseline(), "--data", "ppg:" + data_dir(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  const auto scored = nlohmann::json::parse(eval.out);
  EXPECT_NEAR(scored.at("mae_bpm").get<double>(), trained, 1e-4);
  ASSERT_EQ(scored.at("subjects").size(), 3u);  // the test subjects S13..S15
  EXPECT_EQ(scored["subjects"][0]["subject"], 13);
  EXPECT_GT(scored.at("spectral_reference").at("mae_bpm").get<double>(), 0);
}

TEST_F(PpgCommands, AdaptingTheRegressorReportsItsMaeAgainstTheBudget) {
  ASSERT_EQ(train_.exit_code, 0) << train_.err;
  const fs::path out = scratch_->file("adapt");
  const auto run = run_gos({"adapt", baseline(), "--data", "ppg:" + data_dir(), "--max-layers", "2", "--rules", "rank_split",
                            "--candidates-per-layer", "2", "--calibration-images", "48", "--held-out-images", "16",
                            "--distill-steps", "100", "--finetune-epochs", "1", "--train-threads", "1", "--speedup", "1.05",
                            "--max-mae-increase", "50", "-o", out.string(), "--cache", scratch_->file("cache.sqlite").string(),
                            "--json"});
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report.at("metric"), "mae");
  EXPECT_TRUE(report["original"].contains("mae"));
  EXPECT_TRUE(report["adapted"].contains("mae"));
  EXPECT_FALSE(report["original"].contains("accuracy"));
  EXPECT_DOUBLE_EQ(report.at("max_quality_drop").get<double>(), 50.0);
  EXPECT_NEAR(report.at("quality_drop").get<double>(),
              report["adapted"]["mae"].get<double>() - report["original"]["mae"].get<double>(), 1e-9);
  EXPECT_TRUE(fs::exists(out / "adapted.onnx"));
  // The adapted model is a pulse-rate model gos evaluates like the baseline.
  const auto eval = run_gos({"eval", (out / "adapted.onnx").string(), "--data", "ppg:" + data_dir(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out).at("mae_bpm").get<double>(), report["adapted"]["mae"].get<double>(), 1e-3);
}

TEST_F(PpgCommands, AdaptingWithSubsampleSearchesTheSubsampledModelAndComparesWithTheGivenOne) {
  ASSERT_EQ(train_.exit_code, 0) << train_.err;
  const fs::path out = scratch_->file("adapt-subsample");
  const auto run = small_adapt("adapt-subsample", {"--subsample", "2", "--speedup", "1.05"});
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  // Half the positions of every convolution: about half the MACs of the model as given, whatever the search replaced.
  const double macs_ratio = report["adapted"]["macs"].get<double>() / report["original"]["macs"].get<double>();
  EXPECT_LT(macs_ratio, 0.55);
  EXPECT_GT(macs_ratio, 0.2);
  const std::string notes = report.at("notes").dump();
  EXPECT_NE(notes.find("--subsample 2"), std::string::npos) << notes;
  EXPECT_NE(notes.find("tcn1.conv"), std::string::npos) << notes;
  // The exported model (strided and less dilated convolutions) evaluates as the run measured it.
  const auto eval = run_gos({"eval", (out / "adapted.onnx").string(), "--data", "ppg:" + data_dir(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out).at("mae_bpm").get<double>(), report["adapted"]["mae"].get<double>(), 1e-3);
  const auto refused = run_gos({"adapt", baseline(), "--data", "ppg:" + data_dir(), "--subsample", "0", "-o",
                                scratch_->file("never").string()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--subsample"), std::string::npos) << refused.err;
  EXPECT_FALSE(fs::exists(scratch_->file("never")));
}

TEST_F(PpgCommands, ATargetOutOfReachSuggestsSubsampling) {
  ASSERT_EQ(train_.exit_code, 0) << train_.err;
  const auto run = small_adapt("adapt-unreachable", {"--speedup", "50"});
  ASSERT_EQ(run.exit_code, 1) << run.err;
  const auto report = nlohmann::json::parse(run.out);
  const std::string notes = report.at("notes").dump();
  EXPECT_NE(notes.find("consider --subsample 2, which computes 50% of the model's MACs"), std::string::npos) << notes;
  // The verdict of a missed goal says it too.
  EXPECT_NE(report.at("verdict").get<std::string>().find("Try --subsample 2"), std::string::npos) << report.at("verdict");
}

TEST_F(PpgCommands, TheQualityBudgetMustBeInTheTasksUnit) {
  const auto accuracy_on_ppg = run_gos({"adapt", baseline(), "--data", "ppg:" + data_dir(), "--max-acc-drop", "0.5",
                                        "-o", scratch_->file("never").string()});
  EXPECT_EQ(accuracy_on_ppg.exit_code, 2);
  EXPECT_NE(accuracy_on_ppg.err.find("--max-mae-increase"), std::string::npos) << accuracy_on_ppg.err;
  const auto mae_on_images = run_gos({"adapt", "resnet20", "--data", "synthetic:100", "--max-mae-increase", "0.1",
                                      "-o", scratch_->file("never").string()});
  EXPECT_EQ(mae_on_images.exit_code, 2);
  EXPECT_FALSE(fs::exists(scratch_->file("never")));
}

TEST_F(PpgCommands, AnImageModelOnPpgDataAndTheTcnOnImagesAreClearErrors) {
  const auto tcn_on_images = run_gos({"train", "--model", "tcn-ppg", "--data", "synthetic:100", "-o", scratch_->file("x.onnx").string()});
  EXPECT_EQ(tcn_on_images.exit_code, 2);
  EXPECT_NE(tcn_on_images.err.find("ppg:DIR"), std::string::npos) << tcn_on_images.err;
  const auto image_model_on_ppg = run_gos({"train", "--model", "vgg11s", "--data", "ppg:" + data_dir(), "-o", scratch_->file("x.onnx").string()});
  EXPECT_EQ(image_model_on_ppg.exit_code, 2);
}

}  // namespace
}  // namespace gos::cli
