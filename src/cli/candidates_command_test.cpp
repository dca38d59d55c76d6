// `gos candidates` as a user runs it: on the committed resnet20 baseline and on zoo models.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cstdio>
#include <set>
#include <unistd.h>

#include "cli/run_binary.h"
#include "ir/ir.h"

namespace gos::cli {
namespace {

using testing::run_gos;

const std::string kResnet20 = std::string(GOS_MODELS_DIR) + "/resnet20.onnx";
const std::string kLastStageConv = "stage3.block3.conv2";

TEST(CandidatesCommand, LastStageConvOfTheResnet20BaselineHasManyCandidatesFromManyRules) {
  auto run = run_gos({"candidates", kResnet20, "--op", kLastStageConv, "--data", "fashion-mnist", "--max", "0", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = nlohmann::json::parse(run.out);
  ASSERT_TRUE(list.is_array());
  const int64_t original_macs = 64 * 64 * 9 * 7 * 7;
  std::set<std::string> derivations, rules;
  double best_half_macs_error = 1e9;
  for (const auto& candidate : list) {
    for (const char* key : {"derivation", "expr", "macs", "params", "init_rel_error", "macs_ratio"}) {
      ASSERT_TRUE(candidate.contains(key)) << key;
    }
    derivations.insert(candidate["derivation"].get<std::string>());
    for (const auto& step : candidate["rules"]) rules.insert(step["rule"].get<std::string>());
    EXPECT_NO_THROW(ir::parse(candidate["expr"].get<std::string>())) << candidate["expr"];
    EXPECT_LT(candidate["macs"].get<int64_t>(), original_macs);
    const double error = candidate["init_rel_error"].get<double>();
    EXPECT_GE(error, 0.0);
    if (2 * candidate["macs"].get<int64_t>() <= original_macs) best_half_macs_error = std::min(best_half_macs_error, error);
  }
  EXPECT_GE(derivations.size(), 15u);
  EXPECT_EQ(derivations.size(), list.size());
  EXPECT_GE(rules.size(), 5u);
  // A trained 3x3 conv is far from random: some candidate at half the MACs starts within 30%.
  EXPECT_LT(best_half_macs_error, 0.30);
}

TEST(CandidatesCommand, HumanListingShowsTheOriginalAndMarksTheParetoFront) {
  auto run = run_gos({"candidates", kResnet20, "--op", kLastStageConv, "--depth", "1", "--max", "5"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("operator  stage3.block3.conv2.conv/Conv (Conv)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Y[n,k,h,w] = sum{c,r,s}"), std::string::npos);
  EXPECT_NE(run.out.find("on the MACs/error Pareto front"), std::string::npos);
  EXPECT_NE(run.out.find("showing 5 (--max 0 for all)"), std::string::npos);
  EXPECT_NE(run.out.find(" *\n"), std::string::npos);
}

TEST(CandidatesCommand, RulesOptionRestrictsTheDerivations) {
  auto run = run_gos({"candidates", "resnet20", "--op", "stage2.block1.conv1", "--rules", "group,shrink", "--depth", "1",
                      "--max", "0", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = nlohmann::json::parse(run.out);
  ASSERT_FALSE(list.empty());
  for (const auto& candidate : list) {
    std::string rule = candidate["rules"][0]["rule"];
    EXPECT_TRUE(rule == "group" || rule == "shrink") << rule;
  }
}

TEST(CandidatesCommand, BackendAddsMeasuredLatencyAndSpeedup) {
  const std::string cache = "/tmp/gos-candidates-test-" + std::to_string(::getpid()) + ".sqlite";
  auto run = run_gos({"candidates", kResnet20, "--op", kLastStageConv, "--depth", "1", "--rules", "shrink", "--backend",
                      "torch", "--cache", cache, "--max", "0", "--json"});
  std::remove(cache.c_str());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto list = nlohmann::json::parse(run.out);
  ASSERT_FALSE(list.empty());
  for (const auto& candidate : list) {
    EXPECT_GT(candidate["latency_ms"].get<double>(), 0.0);
    EXPECT_GT(candidate["speedup"].get<double>(), 0.0);
  }
}

TEST(CandidatesCommand, LinearClassifierGetsRankAndGroupCandidates) {
  auto run = run_gos({"candidates", kResnet20, "--op", "fc", "--depth", "1", "--max", "0", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::set<std::string> rules;
  for (const auto& candidate : nlohmann::json::parse(run.out)) rules.insert(candidate["rules"][0]["rule"].get<std::string>());
  EXPECT_EQ(rules, (std::set<std::string>{"group", "rank_split"}));
}

TEST(CandidatesCommand, SubsampleDerivesFromTheOperatorAtItsSubsampledShape) {
  auto whole = run_gos({"candidates", "tcn-ppg", "--op", "tcn5.conv", "--rules", "rank_split", "--depth", "1", "--max", "1", "--json"});
  auto halved = run_gos({"candidates", "tcn-ppg", "--op", "tcn5.conv", "--rules", "rank_split", "--depth", "1", "--max", "1",
                         "--subsample", "2", "--json"});
  ASSERT_EQ(halved.exit_code, 0) << halved.err;
  const auto whole_first = nlohmann::json::parse(whole.out).at(0);
  const auto halved_first = nlohmann::json::parse(halved.out).at(0);
  // The same rule on half the positions, with the dilation halved: half the MACs.
  EXPECT_EQ(halved_first.at("derivation"), whole_first.at("derivation"));
  EXPECT_EQ(2 * halved_first.at("macs").get<int64_t>(), whole_first.at("macs").get<int64_t>());
  EXPECT_NE(halved_first.at("expr").get<std::string>().find("8*r"), std::string::npos) << halved_first.at("expr");
}

TEST(CandidatesCommand, UnknownOrUnsearchableOperatorsExitTwoNamingTheSearchableOnes) {
  auto unknown = run_gos({"candidates", kResnet20, "--op", "no.such.node"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no operator is named 'no.such.node'"), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find(kLastStageConv), std::string::npos);

  auto ambiguous = run_gos({"candidates", kResnet20, "--op", "stage3"});
  EXPECT_EQ(ambiguous.exit_code, 2);
  EXPECT_NE(ambiguous.err.find("'stage3' names "), std::string::npos) << ambiguous.err;

  auto pool = run_gos({"candidates", "vgg11s", "--op", "pool1"});
  EXPECT_EQ(pool.exit_code, 2);
  EXPECT_NE(pool.err.find("has no candidates"), std::string::npos) << pool.err;
}

// The trained baseline's residual stream of the last stage (64 channels shared by four producers):
// every width a multiple of 8, and least squares brings the model closer to the original than
// slicing at each.
TEST(CandidatesCommand, AChannelGroupsWidthsShowTheRefitBelowSlicing) {
  auto run = run_gos({"candidates", kResnet20, "--group", "stage3.block1.conv2", "--data", "fashion-mnist", "--batch", "32", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto list = nlohmann::json::parse(run.out);
  ASSERT_EQ(list.size(), 7u);  // 56, 48, ..., 8
  int64_t previous_macs = 64 * 64 * 9 * 7 * 7 * 100;
  for (const auto& width : list) {
    EXPECT_EQ(width["width"].get<int64_t>() % 8, 0);
    EXPECT_LT(width["macs"].get<int64_t>(), previous_macs);
    previous_macs = width["macs"].get<int64_t>();
    EXPECT_LT(width["error_refitted"].get<double>(), width["error_by_contribution"].get<double>()) << width.dump();
    EXPECT_TRUE(width["derivation"].get<std::string>().starts_with("narrow(stage3.block1.conv2.conv/Conv:k, ")) << width["derivation"];
  }
  auto neither = run_gos({"candidates", kResnet20});
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_NE(neither.err.find("--group NAME"), std::string::npos) << neither.err;
}

}  // namespace
}  // namespace gos::cli
