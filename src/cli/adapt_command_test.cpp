// `gos adapt` as a user runs it: end to end on a small search (a zoo ResNet-20 on synthetic
// images, its three hottest operators), killed in the middle and restarted, and refusing bad
// constraints before doing any work.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fmt/format.h>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <thread>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"
#include "ir/ir.h"
#include "measure/latency_model.h"
#include "search/journal.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::Background;
using testing::journal_keys;
using testing::read_json;
using testing::run_gos;
using testing::small_adapt;
namespace fs = std::filesystem;

// The output folders and latency cache of one test.
class ScratchDir : public util::ScratchFolder {
 public:
  ScratchDir() : util::ScratchFolder("gos-adapt-test") {}
  fs::path operator/(const std::string& name) const { return file(name); }
};

// Rewrites the whole-model timings a run's screen journaled so that every configuration timed
// slower than the original, as operators timed alone on an unsteady machine can mislead a search.
void make_every_screened_configuration_slower(const fs::path& journal_file) {
  const auto keys = journal_keys(journal_file, "screen");
  ASSERT_FALSE(keys.empty()) << "the run timed no configuration whole";
  search::Journal journal(journal_file);
  for (const auto& key : keys) {
    auto timings = nlohmann::json::parse(*journal.text("screen", key));
    for (const char* field : {"median_ms", "p10_ms", "p90_ms"}) timings["adapted"][field] = 1.25 * timings["original"][field].get<double>();
    journal.put_text("screen", key, timings.dump());
  }
}

// The keys of the attempts a run verified (the stage also keeps the original's accuracy).
std::vector<std::string> verified_attempt_keys(const fs::path& journal_file) {
  auto keys = journal_keys(journal_file, "verify");
  std::erase(keys, "original_accuracy");
  return keys;
}

// Widens the original's p10-p90 spread in every journaled side-by-side timing to 50%, keeping the
// medians (and so the speedups), as a busy machine would have timed it.
void make_every_verification_noisy(const fs::path& journal_file) {
  const auto keys = verified_attempt_keys(journal_file);
  ASSERT_FALSE(keys.empty()) << "the run verified no attempt";
  search::Journal journal(journal_file);
  for (const auto& key : keys) {
    auto verified = nlohmann::json::parse(*journal.text("verify", key));
    const double median = verified["original"]["median_ms"].get<double>();
    verified["original"]["p10_ms"] = 0.75 * median;
    verified["original"]["p90_ms"] = 1.25 * median;
    journal.put_text("verify", key, verified.dump());
  }
}

TEST(AdaptCommand, WritesTheAdaptedModelAndAReportThatKeepsItsPromises) {
  ScratchDir scratch;
  auto run = run_gos(small_adapt(scratch / "out", scratch / "latency.sqlite"));
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  EXPECT_NE(run.out.find("faster"), std::string::npos) << run.out;
  for (const char* file : {"adapted.onnx", "adapted.pt", "report.json", "report.html", "run.sqlite"}) {
    EXPECT_TRUE(fs::exists(scratch / "out" / file)) << file;
  }
  const auto report = read_json(scratch / "out" / "report.json");
  for (const char* key : {"original", "adapted"}) {
    for (const char* field : {"accuracy", "median_ms", "macs", "params"}) EXPECT_TRUE(report[key].contains(field)) << key << field;
  }
  EXPECT_GT(report["speedup"].get<double>(), 0);
  EXPECT_EQ(report["layers"].size(), 3u);
  int replaced = 0;
  for (const auto& layer : report["layers"]) {
    for (const char* field : {"node", "original_expr", "chosen_expr", "derivation", "latency_ms_before", "latency_ms_after", "fidelity"}) {
      EXPECT_TRUE(layer.contains(field)) << field;
    }
    if (layer["derivation"] != "original") {
      ++replaced;
      EXPECT_NE(layer["chosen_expr"], layer["original_expr"]);
      EXPECT_LT(layer["latency_ms_after"].get<double>(), layer["latency_ms_before"].get<double>());
    }
  }
  EXPECT_GE(replaced, 1);  // 1.05x needs at least one faster operator
  // The chosen attempt lists exactly the layers the table shows replaced.
  for (const auto& attempt : report["attempts"]) {
    if (!report["front"][attempt["front_index"].get<size_t>()]["chosen"].get<bool>()) continue;
    ASSERT_EQ(attempt["changes"].size(), static_cast<size_t>(replaced)) << attempt;
    for (const auto& layer : report["layers"]) {
      if (layer["derivation"] != "original") {
        EXPECT_EQ(attempt["changes"][layer["node"].get<std::string>()], layer["derivation"]);
      }
    }
  }
  EXPECT_FALSE(report["front"].empty());
  // The fine-tuned point was timed whole before fine-tuning, not chosen on predictions alone.
  for (const auto& point : report["front"]) {
    if (point["chosen"].get<bool>()) {
      EXPECT_GT(point["measured_speedup"].get<double>(), 0) << point;
    }
  }
  EXPECT_EQ(report["backend"], "mobile");
  EXPECT_EQ(report["seed"], 7);
  EXPECT_GE(report["stages"].size(), 7u);
  // The adapted model is a model gos reads back and evaluates.
  auto eval = run_gos({"eval", (scratch / "out" / "adapted.onnx").string(), "--data", "synthetic:300", "--json"});
  EXPECT_EQ(eval.exit_code, 0) << eval.err;

  // Each side-by-side timing was followed by the fixed loop that tells how steady the machine was,
  // and the run timed it before timing operators, with a note when the machine was unsteady.
  {
    search::Journal journal(scratch / "out" / "run.sqlite");
    const auto at_start = nlohmann::json::parse(journal.text("profile", "machine_reference").value_or("{}"));
    ASSERT_TRUE(at_start.contains("median_ms")) << at_start;
    const bool unsteady = (at_start["p90_ms"].get<double>() - at_start["p10_ms"].get<double>()) / at_start["median_ms"].get<double>() > 0.05;
    EXPECT_EQ(report["notes"].dump().find("the machine was unsteady when the run began timing") != std::string::npos, unsteady)
        << report["notes"] << at_start;
    for (const auto& key : verified_attempt_keys(scratch / "out" / "run.sqlite")) {
      const auto verified = nlohmann::json::parse(*journal.text("verify", key));
      ASSERT_TRUE(verified.contains("machine")) << verified;
      EXPECT_GE(verified["machine"]["runs"].get<int>(), 20);
      EXPECT_GT(verified["machine"]["median_ms"].get<double>(), 0.0);
    }
  }
  make_every_verification_noisy(scratch / "out" / "run.sqlite");

  // Rerunning the finished run redoes nothing and gives the same report; the side-by-side
  // timings, now noisy, are flagged with how steady the machine was.
  auto again = run_gos(small_adapt(scratch / "out", scratch / "latency.sqlite"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  search::Journal journal(scratch / "out" / "run.sqlite");
  EXPECT_EQ(journal.max_times_written("distilled"), 1);
  EXPECT_EQ(journal.max_times_written("latency"), 1);
  const auto second = read_json(scratch / "out" / "report.json");
  EXPECT_EQ(second["layers"], report["layers"]);
  EXPECT_EQ(second["adapted"]["accuracy"], report["adapted"]["accuracy"]);
  EXPECT_EQ(second["speedup"], report["speedup"]);
  EXPECT_NE(second["notes"].dump().find("was timed while the machine was unsteady (p10-p90 spread 50% for the original"),
            std::string::npos)
      << second["notes"];
  EXPECT_NE(second["notes"].dump().find("a fixed arithmetic loop timed right after spread"), std::string::npos) << second["notes"];

  // Other fine-tuning settings reuse the search and fine-tune again.
  const int64_t verified = journal.entries("verify");
  auto retuned_arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
  retuned_arguments.insert(retuned_arguments.end(), {"--finetune-lr", "0.001"});
  auto retuned = run_gos(retuned_arguments);
  ASSERT_EQ(retuned.exit_code, 0) << retuned.err;
  search::Journal after(scratch / "out" / "run.sqlite");
  for (const char* stage : {"latency", "recorded", "distilled", "sensitivity"}) EXPECT_EQ(after.max_times_written(stage), 1) << stage;
  EXPECT_GT(after.entries("verify"), verified);

  // So does another constraint: it only picks points of the front.
  auto faster_arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
  *(std::find(faster_arguments.begin(), faster_arguments.end(), "--speedup") + 1) = "1.1";
  auto faster = run_gos(faster_arguments);
  EXPECT_TRUE(faster.exit_code == 0 || faster.exit_code == 1) << faster.err;
  search::Journal last(scratch / "out" / "run.sqlite");
  for (const char* stage : {"latency", "recorded", "distilled", "sensitivity", "screen"}) {
    EXPECT_EQ(last.max_times_written(stage), 1) << stage;
  }
  EXPECT_EQ(read_json(scratch / "out" / "report.json")["target_speedup"], 1.1);

  // Candidates that distillation left far from their operator stay out of the search; when that
  // is every one, the run says so and what to change, and redoes no distillation.
  auto strict_arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
  strict_arguments.insert(strict_arguments.end(), {"--max-candidate-error", "1e-9"});
  auto strict = run_gos(strict_arguments);
  EXPECT_EQ(strict.exit_code, 2) << strict.err;
  EXPECT_NE(strict.err.find("raise it"), std::string::npos) << strict.err;
  EXPECT_EQ(search::Journal(scratch / "out" / "run.sqlite").max_times_written("distilled"), 1);

  // A target out of reach: the report says so and the run goes on to a second point. (Whether an
  // attempt both too slow and too inaccurate is followed is worth_another_attempt's test: this
  // tiny model may lose nothing.)
  auto unreachable_arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
  *(std::find(unreachable_arguments.begin(), unreachable_arguments.end(), "--speedup") + 1) = "50";
  *(std::find(unreachable_arguments.begin(), unreachable_arguments.end(), "--max-acc-drop") + 1) = "0";
  unreachable_arguments.insert(unreachable_arguments.end(), {"--max-attempts", "2"});
  auto unreachable = run_gos(unreachable_arguments);
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.err;
  const auto unreachable_report = read_json(scratch / "out" / "report.json");
  EXPECT_EQ(unreachable_report["attempts"].size(), 2u) << unreachable_report["attempts"];
  EXPECT_NE(unreachable_report["notes"].dump().find("no configuration"), std::string::npos) << unreachable_report["notes"];
  EXPECT_NE(unreachable_report["notes"].dump().find("is in what no candidate replaces"), std::string::npos) << unreachable_report["notes"];

  // When none of the configurations timed whole is faster than the original, fine-tuning one could
  // only give a slower model: nothing is fine-tuned, and the original is written unchanged.
  make_every_screened_configuration_slower(scratch / "out" / "run.sqlite");
  auto nothing_faster = run_gos(unreachable_arguments);
  EXPECT_EQ(nothing_faster.exit_code, 1) << nothing_faster.err;
  EXPECT_NE(nothing_faster.out.find("written unchanged"), std::string::npos) << nothing_faster.out;
  const auto kept = read_json(scratch / "out" / "report.json");
  EXPECT_TRUE(kept["attempts"].empty()) << kept["attempts"];
  EXPECT_EQ(kept["speedup"], 1.0);
  EXPECT_EQ(kept["adapted"]["macs"], kept["original"]["macs"]);
  for (const auto& layer : kept["layers"]) EXPECT_TRUE(layer["kept"].get<bool>()) << layer["node"];
  EXPECT_NE(kept["notes"].dump().find("nothing was fine-tuned"), std::string::npos) << kept["notes"];
  EXPECT_TRUE(fs::exists(scratch / "out" / "adapted.onnx"));
}

// A latency predictor that has learned 1x1 convolutions take 50 ms and others 1 ms: it puts
// rank_split's candidates of a 3x3 convolution (each has a 1x1 stage) and shrink to a 1x1 window
// far over the convolution, and the other shrinks level with it.
measure::LatencyPredictor predictor_slow_on_1x1_convolutions() {
  struct Window {
    int height, width, dilation;
  };
  std::vector<ir::OpExpr> ops;
  std::vector<double> ms;
  for (int channels_in : {4, 8, 16, 32}) {
    for (int channels_out : {4, 8, 16, 32}) {
      for (int size : {7, 14, 28}) {
        for (Window window : {Window{1, 1, 1}, Window{3, 3, 1}, Window{3, 1, 1}, Window{1, 3, 1}, Window{2, 2, 2},
                              Window{2, 1, 2}, Window{1, 2, 2}, Window{2, 3, 1}}) {
          const int pad = window.height * window.width == 1 ? 0 : 1;
          const bool relu = (channels_in + size) % 2 == 0;  // with and without bias and activation
          ops.push_back(ir::parse(fmt::format(
              "Y[n,k,h,w] = {5}sum{{c,r,s}} X[n,c,h+{4}*r-{6},w+{4}*s-{6}] * W[k,c,r,s]{7} where n<1, k<{1}, h<{2}, w<{2}, "
              "c<{0}, r<{3}, s<{8}, in X[1,{0},{2},{2}], param W[{1},{0},{3},{8}]{9}",
              channels_in, channels_out, size, window.height, window.dilation, relu ? "relu(" : "", pad,
              relu ? " + B[k])" : "", window.width, relu ? fmt::format(", param B[{}]", channels_out) : "")));
          ms.push_back(window.height * window.width == 1 ? 50.0 : 1.0);
        }
      }
    }
  }
  return measure::LatencyPredictor::fit(ops, ms);
}

// With a predictor in the latency cache, the candidates it puts far slower than their operator
// are never timed; the decision is journaled, so a resumed run with another cache skips the same.
TEST(AdaptCommand, CandidatesTheStoredPredictorPutsFarSlowerAreNotTimed) {
  ScratchDir scratch;
  {
    measure::LatencyCache cache(scratch / "latency.sqlite");
    measure::store_predictor(cache, measure::Backend::Mobile, 1, predictor_slow_on_1x1_convolutions());
  }
  auto run = run_gos(small_adapt(scratch / "out", scratch / "latency.sqlite"));
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  const auto report = read_json(scratch / "out" / "report.json");
  ASSERT_EQ(report["layers"].size(), 3u);
  for (const auto& layer : report["layers"]) {
    EXPECT_GE(layer["predicted_slower"].get<int>(), 3) << layer;  // rank_split's and shrink(window=1x1)
    const std::string derivation = layer["derivation"];
    EXPECT_TRUE(derivation == "original" || (derivation.starts_with("shrink(window=") && derivation != "shrink(window=1x1)"))
        << derivation;
  }
  EXPECT_NE(report["notes"].dump().find("were not timed"), std::string::npos) << report["notes"];
  EXPECT_EQ(journal_keys(scratch / "out" / "run.sqlite", "predicted_slower").size(), 3u);
  const int64_t timed = search::Journal(scratch / "out" / "run.sqlite").entries("latency");

  // The same run again with a cache that has no predictor: nothing more is timed.
  auto again = run_gos(small_adapt(scratch / "out", scratch / "empty.sqlite"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  search::Journal journal(scratch / "out" / "run.sqlite");
  EXPECT_EQ(journal.entries("latency"), timed);
  EXPECT_EQ(journal.max_times_written("predicted_slower"), 1);
  EXPECT_EQ(read_json(scratch / "out" / "report.json")["layers"], report["layers"]);

  // --time-every-candidate times them all, predictor or not.
  auto every_candidate = small_adapt(scratch / "unscreened", scratch / "latency.sqlite");
  every_candidate.push_back("--time-every-candidate");
  ASSERT_EQ(run_gos(every_candidate).exit_code, 0);
  const auto unscreened = read_json(scratch / "unscreened" / "report.json");
  for (const auto& layer : unscreened["layers"]) EXPECT_EQ(layer["predicted_slower"], 0) << layer;

  // A run whose candidates stage a gos without the screen finished (every candidate timed, no
  // decisions journaled), resumed with the predictor, stays as it was.
  const int64_t unscreened_timed = search::Journal(scratch / "unscreened" / "run.sqlite").entries("latency");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((scratch / "unscreened" / "run.sqlite").c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, "DELETE FROM entries WHERE stage = 'predicted_slower'", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  ASSERT_EQ(run_gos(small_adapt(scratch / "unscreened", scratch / "latency.sqlite")).exit_code, 0);
  EXPECT_EQ(search::Journal(scratch / "unscreened" / "run.sqlite").entries("latency"), unscreened_timed);
  EXPECT_EQ(read_json(scratch / "unscreened" / "report.json")["layers"], unscreened["layers"]);
}

TEST(AdaptCommand, AKilledRunResumesWithoutRedoingWorkAndEndsAsAnUninterruptedOne) {
  ScratchDir scratch;
  const fs::path cache = scratch / "latency.sqlite";
  auto uninterrupted = run_gos(small_adapt(scratch / "whole", cache));
  ASSERT_EQ(uninterrupted.exit_code, 0) << uninterrupted.err;

  const fs::path out = scratch / "killed";
  auto arguments = small_adapt(out, cache);
  arguments.push_back("--quiet");
  Background run(arguments);
  ASSERT_GT(run.pid(), 0);
  // Kill it once it has distilled a candidate (the middle of the fidelity stage).
  bool killed_mid_run = false;
  for (int i = 0; i < 3000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (fs::exists(out / "run.sqlite")) {
      search::Journal journal(out / "run.sqlite");
      if (journal.entries("distilled") >= 1) {
        kill(run.pid(), SIGKILL);
        killed_mid_run = !fs::exists(out / "report.json");
        break;
      }
    }
  }
  const int exit_code = run.wait();
  ASSERT_TRUE(killed_mid_run) << "the run finished before it could be killed";
  ASSERT_EQ(exit_code, -SIGKILL);

  auto resumed = run_gos(small_adapt(out, cache));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  search::Journal journal(out / "run.sqlite");
  for (const char* stage : {"latency", "recorded", "distilled", "distilled_error", "sensitivity", "screen", "finetune"}) {
    EXPECT_EQ(journal.max_times_written(stage), 1) << stage << " work was redone";
  }
  const auto whole = read_json(scratch / "whole" / "report.json");
  const auto report = read_json(out / "report.json");
  EXPECT_EQ(report["layers"], whole["layers"]);
  EXPECT_EQ(report["front"], whole["front"]);
  EXPECT_EQ(report["adapted"]["accuracy"], whole["adapted"]["accuracy"]);
  EXPECT_EQ(report["adapted"]["macs"], whole["adapted"]["macs"]);
}

// --budget is the run's whole time across restarts: the journal keeps what earlier starts spent.
// Here it is set by hand, as if an earlier start had spent 55 s of a minute (then 295 s of five).
TEST(AdaptCommand, TheBudgetCountsTheTimeEarlierStartsOfTheRunSpent) {
  ScratchDir scratch;
  const fs::path journal_file = scratch / "out" / "run.sqlite";
  auto with_budget = [&](const char* budget) {
    auto arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
    arguments.insert(arguments.end(), {"--budget", budget});
    return arguments;
  };
  search::Journal(journal_file).put_text("budget", "spent_seconds", "55");
  auto spent = run_gos(with_budget("1m"));
  EXPECT_EQ(spent.exit_code, 2) << spent.err;
  EXPECT_NE(spent.err.find("give a larger --budget"), std::string::npos) << spent.err;

  // A larger budget goes on (the search stages may use half of it, and the first start spent more).
  auto larger = run_gos(with_budget("5m"));
  ASSERT_EQ(larger.exit_code, 0) << larger.err;
  const auto report = read_json(scratch / "out" / "report.json");

  // A finished run whose budget is spent, run again, reads back all it did and ends as it did.
  search::Journal(journal_file).put_text("budget", "spent_seconds", "295");
  auto again = run_gos(with_budget("5m"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  search::Journal journal(journal_file);
  for (const char* stage : {"distilled", "sensitivity", "finetune", "verify"}) {
    EXPECT_EQ(journal.max_times_written(stage), 1) << stage << " work was redone";
  }
  const auto rerun_report = read_json(scratch / "out" / "report.json");
  EXPECT_EQ(rerun_report["layers"], report["layers"]);
  EXPECT_EQ(rerun_report["attempts"], report["attempts"]);
}

// A budget far too short for the search asked for (a hundred times the usual distillation): the
// run plans a smaller search from what its first units of work cost, and still distils every
// layer, fine-tunes and writes a model, where a search cut off at the budget found nothing. The
// same whatever the machine's speed today: no machine fits what is asked.
TEST(AdaptCommand, ABudgetTooShortForTheSearchAskedForGetsASmallerSearchNotACutOne) {
  ScratchDir scratch;
  auto arguments = small_adapt(scratch / "out", scratch / "latency.sqlite");
  for (auto [option, value] : {std::pair{"--max-layers", "4"}, {"--candidates-per-layer", "3"}, {"--distill-steps", "30000"},
                               {"--sensitivity-images", "2000"}, {"--finetune-epochs", "3"}}) {
    *(std::find(arguments.begin(), arguments.end(), option) + 1) = value;
  }
  arguments.insert(arguments.end(), {"--budget", "90s"});
  auto run = run_gos(arguments);
  ASSERT_TRUE(run.exit_code == 0 || run.exit_code == 1) << run.err;
  const auto report = read_json(scratch / "out" / "report.json");
  EXPECT_FALSE(report["attempts"].empty()) << "nothing was fine-tuned: " << report["notes"];

  search::Journal journal(scratch / "out" / "run.sqlite");
  EXPECT_TRUE(journal.text("plan", "search_deadline").has_value());
  EXPECT_EQ(journal.entries("fidelity_begun"), 4) << "a layer was left out: " << report["notes"];
  int layers_planned = 0;
  for (const auto& layer : report["layers"]) {
    const auto plan = nlohmann::json::parse(journal.text("plan", layer["node"].get<std::string>()).value_or("{}"));
    ASSERT_TRUE(plan.contains("steps")) << layer["node"];
    EXPECT_LT(plan["steps"].get<int>(), 30000) << layer["node"];
    ++layers_planned;
  }
  EXPECT_EQ(layers_planned, 4);
  // What was planned is said: the stage's line and a note.
  EXPECT_NE(report["notes"].dump().find("to fit the budget, candidates x distillation steps per layer were"), std::string::npos)
      << report["notes"];
}

TEST(AdaptCommand, BadConstraintsAndChangedSettingsAreClearErrorsThatWriteNothing) {
  ScratchDir scratch;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--speedup", "0.5"}, "--speedup"},
      {{"--max-acc-drop", "-1"}, "--max-acc-drop"},
      {{"--budget", "20s"}, "budget"},
      {{"--budget", "soon"}, "duration"},
      {{"--target", "phone"}, "target"},
      {{"--rules", "no_such_rule"}, "no_such_rule"},
      {{"--optimizer", "adam"}, "--optimizer"},
      {{"--max-candidate-error", "0"}, "--max-candidate-error"},
      {{"--threads", "0"}, "--threads must be at least 1"},
      {{"--train-threads", "-1"}, "--train-threads"},
  };
  for (const auto& [extra, expected] : cases) {
    std::vector<std::string> arguments{"adapt", "resnet20", "--data", "synthetic:100", "-o", (scratch / "out").string()};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    auto run = run_gos(arguments);
    EXPECT_EQ(run.exit_code, 2) << extra[1];
    EXPECT_NE(run.err.find(expected), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(scratch / "out")) << extra[1];
  }
  auto both = run_gos({"adapt", "resnet20", "--speedup", "2", "--latency-ms", "0.3"});
  EXPECT_EQ(both.exit_code, 2);
}

TEST(AdaptCommand, AModelThatCannotReadTheDataIsRefusedBeforeAnyWork) {
  ScratchDir scratch;
  // tcn-ppg reads PPG windows, not images: refused before any measurement.
  auto run = run_gos({"adapt", "tcn-ppg", "--data", "synthetic:100", "-o", (scratch / "out").string(), "--cache",
                      (scratch / "latency.sqlite").string()});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("[1,4,512]"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("[1,1,28,28]"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(scratch / "out"));
  EXPECT_FALSE(fs::exists(scratch / "latency.sqlite"));
}

}  // namespace
}  // namespace gos::cli
