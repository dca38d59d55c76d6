// `gos adapt --narrow`: channel groups narrowed before the per-operator search (search), or the
// plain L1 baseline (l1:F), end to end on the small search, resumed from the journal.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"
#include "search/journal.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::read_json;
using testing::run_gos;
using testing::small_adapt;
namespace fs = std::filesystem;

std::vector<std::string> with(std::vector<std::string> arguments, const std::string& option, const std::string& value) {
  auto found = std::find(arguments.begin(), arguments.end(), option);
  if (found != arguments.end()) {
    *(found + 1) = value;
  } else {
    arguments.insert(arguments.end() - 4, {option, value});  // before -o and --cache
  }
  return arguments;
}

TEST(AdaptNarrow, NarrowsSharedChannelsBeforeTheSearchAndARerunReplaysTheJournaledSteps) {
  util::ScratchFolder scratch("gos-adapt-narrow-test");
  const auto arguments = with(with(small_adapt(scratch.file("out"), scratch.file("latency.sqlite")), "--speedup", "1.4"), "--narrow", "search");
  auto first = run_gos(arguments);
  ASSERT_EQ(first.exit_code, 0) << first.err << first.out;
  EXPECT_NE(first.out.find("channel groups narrowed"), std::string::npos) << first.out;
  const auto report = read_json(scratch.file("out") / "report.json");
  ASSERT_TRUE(report.contains("narrowed")) << report.dump(2);
  for (const auto& [group, derivation] : report["narrowed"].items()) {
    const auto text = derivation.get<std::string>();
    EXPECT_TRUE(text.starts_with("narrow(" + group + ", ") || text == "drop(" + group + ")") << text;
  }
  EXPECT_LT(report["adapted"]["macs"].get<double>(), report["original"]["macs"].get<double>());
  EXPECT_EQ(report["layers"].size(), 3u);  // the per-operator search ran on the narrowed model
  const auto& changes = report["attempts"].back()["changes"];
  for (const auto& [group, derivation] : report["narrowed"].items()) EXPECT_EQ(changes.at(group), derivation);

  auto again = run_gos(arguments);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  search::Journal journal(scratch.file("out") / "run.sqlite");
  EXPECT_GE(journal.entries("narrow"), 1);
  for (const char* stage : {"narrow", "narrow_weights", "finetune"}) EXPECT_EQ(journal.max_times_written(stage), 1) << stage << " redone";
  const auto rerun = read_json(scratch.file("out") / "report.json");
  EXPECT_EQ(rerun["narrowed"], report["narrowed"]);
  EXPECT_EQ(rerun["adapted"]["macs"], report["adapted"]["macs"]);
}

TEST(AdaptNarrow, TheL1BaselineNarrowsEveryGroupByTheFractionAndSearchesNoOperator) {
  util::ScratchFolder scratch("gos-adapt-narrow-test");
  const auto arguments = with(small_adapt(scratch.file("out"), scratch.file("latency.sqlite")), "--narrow", "l1:0.5");
  auto run = run_gos(arguments);
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  const auto report = read_json(scratch.file("out") / "report.json");
  EXPECT_TRUE(report["layers"].empty());
  ASSERT_EQ(report["narrowed"].size(), 12u);  // every channel group of the ResNet-20
  EXPECT_EQ(report["narrowed"]["stage1.block1.conv1.conv:k"], "narrow(stage1.block1.conv1.conv:k, 8)");
  // Half the channels on both sides of most convolutions: about a quarter of the weights.
  EXPECT_LT(report["adapted"]["params"].get<double>(), 0.35 * report["original"]["params"].get<double>());

  auto bad = run_gos(with(small_adapt(scratch.file("bad"), scratch.file("latency.sqlite")), "--narrow", "l1:2"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--narrow takes search or l1:F"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(scratch.file("bad") / "run.sqlite"));
}

}  // namespace
}  // namespace gos::cli
