// `gos bench` and `gos latency-model` as a user runs them, with a private latency cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "ir/ir.h"

namespace gos::cli {
namespace {

using testing::run_gos;

class BenchCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    cache_ = std::filesystem::temp_directory_path() / ("gos-bench-test-" + std::to_string(::getpid()) + ".sqlite");
    std::filesystem::remove(cache_);
  }
  void TearDown() override { std::filesystem::remove(cache_); }
  std::filesystem::path cache_;
};

TEST_F(BenchCommand, Int8TimesTheQuantizedFormOfEachBackendAndTorchHasNone) {
  for (const char* backend : {"mobile", "ort"}) {
    auto run = run_gos({"bench", "resnet20", "--backend", backend, "--precision", "int8", "--budget", "0.2", "--json"});
    ASSERT_EQ(run.exit_code, 0) << backend << ": " << run.err;
    auto report = nlohmann::json::parse(run.out);
    EXPECT_EQ(report.at("precision"), "int8");
    EXPECT_GT(report.at("median_ms").get<double>(), 0.0);
  }
  auto torch = run_gos({"bench", "resnet20", "--backend", "torch", "--precision", "int8"});
  EXPECT_EQ(torch.exit_code, 2);
  EXPECT_NE(torch.err.find("torch has no int8 form"), std::string::npos) << torch.err;
}

TEST_F(BenchCommand, Int8PerOperatorTimingsAreCachedApartFromFp32Ones) {
  for (const char* backend : {"mobile", "ort"}) {
    auto per_op = [&](const char* precision) {
      auto run = run_gos({"bench", "resnet20", "--backend", backend, "--precision", precision, "--per-op", "--budget", "0.1",
                          "--cache", cache_.string(), "--json"});
      EXPECT_EQ(run.exit_code, 0) << backend << ": " << run.err;
      return run.exit_code == 0 ? nlohmann::json::parse(run.out) : nlohmann::json::object();
    };
    const auto first = per_op("int8");
    ASSERT_TRUE(first.contains("ops")) << backend;
    for (const auto& op : first.at("ops")) EXPECT_GT(op.at("median_ms").get<double>(), 0.0) << op.at("node");
    EXPECT_GT(first.at("newly_measured_ops").get<int>(), 0);
    EXPECT_EQ(per_op("int8").at("newly_measured_ops").get<int>(), 0) << "int8 timings are cached";
    EXPECT_GT(per_op("fp32").at("newly_measured_ops").get<int>(), 0) << "fp32 timings are not int8 ones";
  }
}

TEST_F(BenchCommand, JsonReportsTheStatisticsOfRepeatedRuns) {
  for (const char* backend : {"torch", "mobile", "ort"}) {
    auto run = run_gos({"bench", "tcn-ppg", "--backend", backend, "--budget", "0.1", "--json"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    auto report = nlohmann::json::parse(run.out);
    EXPECT_EQ(report["backend"], backend);
    EXPECT_EQ(report["threads"], 1);
    EXPECT_GE(report["runs"].get<int>(), 20);
    EXPECT_LE(report["p10_ms"].get<double>(), report["median_ms"].get<double>());
    EXPECT_LE(report["median_ms"].get<double>(), report["p90_ms"].get<double>());
    EXPECT_EQ(report["noisy"].get<bool>(), report["spread"].get<double>() > 0.25) << run.out;
  }
}

TEST_F(BenchCommand, AFixedLoopTimedAlongsideTellsHowSteadyTheMachineWas) {
  auto run = run_gos({"bench", "tcn-ppg", "--backend", "mobile", "--budget", "0.1", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto report = nlohmann::json::parse(run.out);
  const auto& machine = report["machine_reference"];
  EXPECT_GE(machine["runs"].get<int>(), 20);
  EXPECT_LE(machine["p10_ms"].get<double>(), machine["median_ms"].get<double>());
  EXPECT_LE(machine["median_ms"].get<double>(), machine["p90_ms"].get<double>());
  // 200,000 dependent multiply-adds: at 4 cycles each, no CPU does them in 0.02 ms, so the loop
  // was not optimised away.
  EXPECT_GT(machine["median_ms"].get<double>(), 0.02);
  EXPECT_EQ(report["machine_unsteady"].get<bool>(), machine["spread"].get<double>() > 0.05) << run.out;

  auto text = run_gos({"bench", "tcn-ppg", "--backend", "mobile", "--budget", "0.1"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("machine: a fixed arithmetic loop timed right after ran"), std::string::npos) << text.out;
}

TEST_F(BenchCommand, AgainstAnotherModelTimesBothSideBySideAndSaysWhichIsFaster) {
  // vgg11s has 8.5 M MACs, resnet20 31 M: 2.3-3x faster on every backend, far beyond any noise
  // two models timed alternately share.
  auto run = run_gos({"bench", "resnet20", "--against", "vgg11s", "--backend", "mobile", "--budget", "0.4", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["model"], "resnet20");
  EXPECT_EQ(report["against"]["model"], "vgg11s");
  EXPECT_GE(report["runs"].get<int>(), 20);
  EXPECT_GE(report["against"]["runs"].get<int>(), 20);
  EXPECT_NEAR(report["speedup"].get<double>(), report["median_ms"].get<double>() / report["against"]["median_ms"].get<double>(), 1e-9);
  EXPECT_GT(report["speedup"].get<double>(), 1.3) << run.out;
  EXPECT_EQ(report["percentiles_over"], "runs");
  EXPECT_TRUE(report.contains("machine_reference"));

  auto reversed = run_gos({"bench", "vgg11s", "--against", "resnet20", "--backend", "mobile", "--budget", "0.4"});
  ASSERT_EQ(reversed.exit_code, 0) << reversed.err;
  EXPECT_NE(reversed.out.find("resnet20 runs"), std::string::npos) << reversed.out;
  EXPECT_NE(reversed.out.find("x slower than vgg11s"), std::string::npos) << reversed.out;

  auto missing = run_gos({"bench", "resnet20", "--against", "no-such-model.onnx"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no-such-model.onnx"), std::string::npos) << missing.err;
  auto with_per_op = run_gos({"bench", "resnet20", "--against", "vgg11s", "--per-op"});
  EXPECT_EQ(with_per_op.exit_code, 2);
}

TEST_F(BenchCommand, PerOpSharesSumToOneAndRepeatRunsComeFromTheCache) {
  std::vector<std::string> args{"bench", "tcn-ppg", "--backend", "torch", "--budget", "0.1", "--per-op", "--cache", cache_.string(), "--json"};
  auto first = run_gos(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto report = nlohmann::json::parse(first.out);
  double time_share = 0, macs_share = 0;
  for (const auto& op : report["ops"]) time_share += op["time_share"].get<double>(), macs_share += op["macs_share"].get<double>();
  EXPECT_NEAR(time_share, 1.0, 1e-9);
  EXPECT_NEAR(macs_share, 1.0, 1e-9);
  EXPECT_GT(report["newly_measured_ops"].get<int>(), 0);
  // The structural node (the flatten before the head) is in the table, timed alone too.
  auto flatten = std::ranges::find_if(report["ops"], [](const auto& op) { return op["node"] == "pool.flatten"; });
  ASSERT_NE(flatten, report["ops"].end()) << report.dump(2);
  EXPECT_TRUE((*flatten)["structural"].get<bool>());
  EXPECT_EQ((*flatten)["op_type"], "Flatten");
  EXPECT_GT((*flatten)["median_ms"].get<double>(), 0);
  EXPECT_FALSE(report["ops"][0]["structural"].get<bool>());
  auto second = nlohmann::json::parse(run_gos(args).out);
  EXPECT_EQ(second["newly_measured_ops"].get<int>(), 0);
  EXPECT_EQ(second["ops"][0]["median_ms"], report["ops"][0]["median_ms"]);
  auto flatten_again = std::ranges::find_if(second["ops"], [](const auto& op) { return op["node"] == "pool.flatten"; });
  EXPECT_EQ((*flatten_again)["median_ms"], (*flatten)["median_ms"]);
}

TEST_F(BenchCommand, LatencyModelFitsOnMeasurementsAndReportsHeldOutAccuracy) {
  auto empty = run_gos({"latency-model", "eval", "--backend", "torch", "--cache", cache_.string()});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("run `gos latency-model fit --backend torch` first"), std::string::npos) << empty.err;

  auto fit = run_gos({"latency-model", "fit", "--backend", "torch", "--models", "tcn-ppg", "--candidates", "3", "--samples", "40", "--cache",
                      cache_.string(), "--json"});
  ASSERT_EQ(fit.exit_code, 0) << fit.err;
  auto report = nlohmann::json::parse(fit.out);
  for (const char* key : {"within_10pct", "within_20pct"}) {
    EXPECT_GE(report[key].get<double>(), 0.0);
    EXPECT_LE(report[key].get<double>(), 1.0);
  }
  EXPECT_LE(report["within_10pct"].get<double>(), report["within_20pct"].get<double>());
  // nn-Meter's protocol, a random fifth of the configurations, is reported beside it.
  const auto& random = report["random_split"];
  EXPECT_GT(random["n_ops"].get<int>(), 0);
  EXPECT_GE(random["within_10pct"].get<double>(), 0.0);
  EXPECT_LE(random["within_10pct"].get<double>(), random["within_20pct"].get<double>());
  EXPECT_LE(random["within_20pct"].get<double>(), 1.0);
  EXPECT_GT(report["n_ops"].get<int>(), 0);
  EXPECT_GE(report["rmse_ms"].get<double>(), 0.0);
  ASSERT_EQ(report["models"].size(), 1u);
  EXPECT_GT(report["models"][0]["measured_ms"].get<double>(), 0.0);
  // How gos adapt's screen does on the held-out predictions of the candidates against their operators.
  const auto& screen = report["screen"];
  EXPECT_EQ(screen["ratio"].get<double>(), 1.25);
  EXPECT_GT(screen["faster"].get<int>() + screen["slower"].get<int>(), 0) << screen;
  EXPECT_LE(screen["faster_kept"].get<int>(), screen["faster"].get<int>()) << screen;
  EXPECT_LE(screen["slower_skipped"].get<int>(), screen["slower"].get<int>()) << screen;

  // predict gives the model's latency from the stored predictor, measuring nothing: each
  // operator's prediction, and the whole model as the fit's check computed it.
  auto predicted = run_gos({"latency-model", "predict", "tcn-ppg", "--backend", "torch", "--cache", cache_.string(), "--json"});
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  const auto prediction = nlohmann::json::parse(predicted.out);
  EXPECT_NEAR(prediction["predicted_ms"].get<double>(), report["models"][0]["predicted_ms"].get<double>(), 1e-9);
  double operators_ms = 0;
  for (const auto& op : prediction["ops"]) {
    EXPECT_GT(op["predicted_ms"].get<double>(), 0.0) << op["node"];
    operators_ms += op["predicted_ms"].get<double>();
  }
  EXPECT_NEAR(prediction["operators_ms"].get<double>(), operators_ms, 1e-9);
  EXPECT_EQ(prediction["ops"].size(), 9u) << "tcn-ppg's compute nodes";
  // Its one structural node (the flatten before the head) at the rate the fit timed for its type.
  ASSERT_TRUE(report["structural_ms_per_element"].contains("Flatten")) << report["structural_ms_per_element"];
  EXPECT_NEAR(prediction["structural_ms"].get<double>(), report["structural_ms_per_element"]["Flatten"].get<double>() * 32, 1e-12);
  EXPECT_NEAR(prediction["predicted_ms"].get<double>(),
              operators_ms - 8 * prediction["call_overhead_ms"].get<double>() +
                  10 * prediction["overhead_per_node_ms"].get<double>() + prediction["structural_ms"].get<double>(),
              1e-9);
  auto predicted_text = run_gos({"latency-model", "predict", "tcn-ppg", "--backend", "torch", "--cache", cache_.string()});
  ASSERT_EQ(predicted_text.exit_code, 0) << predicted_text.err;
  EXPECT_NE(predicted_text.out.find("predicted, nothing measured"), std::string::npos) << predicted_text.out;
  auto no_model = run_gos({"latency-model", "predict", "--backend", "torch", "--cache", cache_.string()});
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_NE(no_model.err.find("predict needs a MODEL"), std::string::npos) << no_model.err;
  auto unfitted = run_gos({"latency-model", "predict", "tcn-ppg", "--backend", "mobile", "--cache", cache_.string()});
  EXPECT_EQ(unfitted.exit_code, 2);
  EXPECT_NE(unfitted.err.find("run `gos latency-model fit --backend mobile`"), std::string::npos) << unfitted.err;

  // eval reports on the same operators as fit when given the same models and candidates.
  const std::vector<std::string> same_operators{"--models", "tcn-ppg", "--candidates", "3"};
  auto eval_args = [&](std::vector<std::string> args) {
    args.insert(args.end(), same_operators.begin(), same_operators.end());
    return args;
  };
  auto eval = run_gos(eval_args({"latency-model", "eval", "--backend", "torch", "--cache", cache_.string(), "--json"}));
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_EQ(nlohmann::json::parse(eval.out)["within_10pct"], report["within_10pct"]);
  EXPECT_EQ(nlohmann::json::parse(eval.out)["screen"], report["screen"]);
  // The spread of the measurements it was fitted on tells whether the machine was steady.
  EXPECT_GT(report["median_spread"].get<double>(), 0.0);
  EXPECT_EQ(nlohmann::json::parse(eval.out)["median_spread"], report["median_spread"]);
  // Every operator was timed in two sweeps, and how often they agreed says how far timings repeat.
  // Each operator of the zoo model and its candidates is held out once, by a fit on some of the others.
  EXPECT_GT(report["n_swept"].get<size_t>(), report["n_train"].get<size_t>());
  EXPECT_GE(report["n_swept"].get<size_t>(), report["n_ops"].get<size_t>());
  EXPECT_GE(report["sweeps_within_10pct"].get<double>(), 0.0);
  EXPECT_LE(report["sweeps_within_10pct"].get<double>(), 1.0);
  // Fitting measures, so it says how steady the machine was before; eval measures nothing.
  EXPECT_GE(report["machine_reference"]["runs"].get<int>(), 20);
  EXPECT_EQ(report["machine_unsteady"].get<bool>(), report["machine_reference"]["spread"].get<double>() > 0.05);
  EXPECT_FALSE(nlohmann::json::parse(eval.out).contains("machine_reference"));
  EXPECT_FALSE(nlohmann::json::parse(eval.out).contains("held_out_ops"));

  // --details lists every held-out operator with the instructions that say which shape it was.
  auto details = run_gos(eval_args({"latency-model", "eval", "--backend", "torch", "--cache", cache_.string(), "--details", "--json"}));
  ASSERT_EQ(details.exit_code, 0) << details.err;
  const auto held_out = nlohmann::json::parse(details.out)["held_out_ops"];
  ASSERT_EQ(held_out.size(), report["n_ops"].get<size_t>());
  for (const auto& op : held_out) {
    EXPECT_EQ(ir::cost(ir::parse(op["instructions"].get<std::string>())).macs, op["macs"].get<int64_t>());
    EXPECT_NEAR(op["error"].get<double>(),
                (op["predicted_ms"].get<double>() - op["measured_ms"].get<double>()) / op["measured_ms"].get<double>(), 1e-12);
  }
  auto text = run_gos(eval_args({"latency-model", "eval", "--backend", "torch", "--cache", cache_.string(), "--details"}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::string instructions = held_out[0]["instructions"].get<std::string>();
  EXPECT_NE(text.out.find("    " + instructions.substr(0, std::min<size_t>(100, instructions.find('\n')))), std::string::npos)
      << text.out;
}

TEST_F(BenchCommand, UnknownBackendIsABadUsageError) {
  auto run = run_gos({"bench", "tcn-ppg", "--backend", "gpu"});
  EXPECT_EQ(run.exit_code, 2);
}

TEST_F(BenchCommand, AModelThatIsNeitherAFileNorAZooModelIsBadInputNamingTheZoo) {
  auto run = run_gos({"bench", "resnet21"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("resnet21 is neither an ONNX file (no such file) nor a zoo model (resnet20, "), std::string::npos) << run.err;
}

TEST_F(BenchCommand, NumbersOutOfRangeAreBadUsageThatSaysWhatIsWanted) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"bench", "tcn-ppg", "--threads", "0"}, "--threads: must be a whole number of at least 1, not 0"},
      {{"bench", "tcn-ppg", "--threads", "2x"}, "--threads: must be a whole number of at least 1, not 2x"},
      {{"bench", "tcn-ppg", "--budget", "-1"}, "--budget: must be a number above 0 (seconds), not -1"},
      {{"latency-model", "eval", "--samples", "-5"}, "--samples: must be a whole number of at least 0, not -5"},
      {{"candidates", "tcn-ppg", "--batch", "0"}, "--batch: must be a whole number of at least 1, not 0"},
      {{"train", "--model", "tcn-ppg", "-o", "x.onnx", "--threads", "-1"}, "--threads: must be a whole number of at least 0 (0: every core)"},
  };
  for (const auto& [arguments, expected] : cases) {
    auto run = run_gos(arguments);
    EXPECT_EQ(run.exit_code, 2) << arguments[0];
    EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
  }
}

}  // namespace
}  // namespace gos::cli
