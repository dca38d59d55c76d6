// The committed Fashion-MNIST baselines reach the accuracy written next to them
// (models/baselines.json) when `gos eval` runs them again.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"

namespace gos::cli {
namespace {

nlohmann::json recorded_baselines() {
  std::ifstream file(std::filesystem::path(GOS_MODELS_DIR) / "baselines.json");
  if (!file) return nlohmann::json::array();
  return nlohmann::json::parse(file).at("models");
}

TEST(Baselines, EachReachesItsRecordedTestAccuracyAgain) {
  auto baselines = recorded_baselines();
  if (baselines.empty()) GTEST_SKIP() << "no baselines committed yet";
  for (const auto& baseline : baselines) {
    const std::string file = (std::filesystem::path(GOS_MODELS_DIR) / baseline.at("file").get<std::string>()).string();
    SCOPED_TRACE(file);
    auto run = testing::run_gos({"eval", file, "--data", "fashion-mnist", "--json"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    double measured = nlohmann::json::parse(run.out).at("accuracy");
    // Evaluation is deterministic up to float summation order across thread counts.
    EXPECT_NEAR(measured, baseline.at("test_accuracy").get<double>(), 0.05);
  }
}

}  // namespace
}  // namespace gos::cli
