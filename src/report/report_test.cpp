#include "report/report.h"
#include "util/scratch_folder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <sstream>

namespace gos::report {
namespace {

namespace fs = std::filesystem;

// A classifier report with every field set to a distinct value, so a field lost or swapped shows.
AdaptReport sample_report() {
  AdaptReport report;
  report.model = "models/resnet20.onnx";
  report.data = "fashion-mnist:/data/fmnist";
  report.target = "host";
  report.backend = "mobile";
  report.threads = 1;
  report.machine = "Intel Xeon 2 cores";
  report.machine_load = 0.97;
  report.machine_cores = 2;
  report.seed = 42;
  report.metric = "accuracy";
  report.target_speedup = 2.5;
  report.max_quality_drop = 0.5;
  report.original = {.accuracy = 93.89, .median_ms = 4.2, .p10_ms = 4.1, .p90_ms = 4.4, .runs = 200, .macs = 40'812'000, .params = 272'474};
  report.adapted = {.accuracy = 93.61, .median_ms = 1.6, .p10_ms = 1.55, .p90_ms = 1.7, .runs = 200, .macs = 12'100'000, .params = 90'100};
  report.speedup = 2.625;
  report.quality_drop = 0.28;
  report.constraint_met = true;
  report.verdict = "resnet20 is 2.6x faster and lost 0.28 accuracy points: the constraint is met.";
  report.layers = {
      {.node = "stage3.block3.conv2", .op_type = "Conv", .original_expr = "y[n,o,h,w] += x[n,c,h+i,w+j] * w[o,c,i,j]",
       .chosen_expr = "t[n,r,h,w] += x[n,c,h+i,w+j] * a[r,c,i,j]; y[n,o,h,w] += t[n,r,h,w] * b[o,r]",
       .derivation = "rank_split(r=8)", .kept = false, .latency_ms_before = 0.31, .latency_ms_after = 0.09,
       .macs_before = 2'359'296, .macs_after = 600'000, .fidelity = 0.012, .sensitivity = 0.4, .candidates = 7, .predicted_slower = 3, .sensitivity_estimated = 2},
      {.node = "stage1.block1.conv1", .op_type = "Conv", .original_expr = "y = conv(x)", .chosen_expr = "y = conv(x)",
       .derivation = "original", .kept = true, .latency_ms_before = 0.12, .latency_ms_after = 0.12,
       .macs_before = 2'359'296, .macs_after = 2'359'296, .fidelity = 0, .sensitivity = 1.1, .candidates = 5},
  };
  report.front = {{.predicted_latency_ms = 3.9, .predicted_loss = 0.0, .changed_layers = 0},
                  {.predicted_latency_ms = 2.1, .predicted_loss = 0.7, .changed_layers = 4},
                  {.predicted_latency_ms = 1.5, .predicted_loss = 1.2, .changed_layers = 9, .chosen = true, .measured_speedup = 2.6},
                  {.predicted_latency_ms = 1.1, .predicted_loss = 3.5, .changed_layers = 15}};
  report.attempts = {{.front_index = 3, .speedup = 3.4, .quality_drop = 0.8, .meets_constraint = false,
                      .outcome = "accuracy dropped 0.8 points > 0.5: trying a slower point",
                      .changes = {{"conv1", "group(g=2)"}, {"conv<2>", "rank_split(r=4, at=input)"}}},
                     {.front_index = 2, .speedup = 2.625, .quality_drop = 0.28, .meets_constraint = true, .outcome = "met"}};
  report.stages = {{"profile", 12.5}, {"candidates", 3.0}, {"fidelity", 140.0}, {"finetune", 900.0}};
  report.notes = {"node Gemm_0 skipped: no rule applies"};
  report.classes = {{"T-shirt/top", 1000, 89.3, 88.1}, {"Trouser", 1000, 98.6, 98.7}};
  report.finished_at = "2025-01-02T03:04:05Z";
  return report;
}

void expect_same(const ModelSummary& a, const ModelSummary& b) {
  EXPECT_EQ(a.accuracy, b.accuracy);
  EXPECT_EQ(a.mae, b.mae);
  EXPECT_EQ(a.median_ms, b.median_ms);
  EXPECT_EQ(a.p10_ms, b.p10_ms);
  EXPECT_EQ(a.p90_ms, b.p90_ms);
  EXPECT_EQ(a.runs, b.runs);
  EXPECT_EQ(a.macs, b.macs);
  EXPECT_EQ(a.params, b.params);
}

void expect_same(const AdaptReport& a, const AdaptReport& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.threads, b.threads);
  EXPECT_EQ(a.machine, b.machine);
  EXPECT_EQ(a.machine_load, b.machine_load);
  EXPECT_EQ(a.machine_cores, b.machine_cores);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.metric, b.metric);
  EXPECT_EQ(a.target_speedup, b.target_speedup);
  EXPECT_EQ(a.target_latency_ms, b.target_latency_ms);
  EXPECT_EQ(a.max_quality_drop, b.max_quality_drop);
  expect_same(a.original, b.original);
  expect_same(a.adapted, b.adapted);
  EXPECT_EQ(a.speedup, b.speedup);
  EXPECT_EQ(a.quality_drop, b.quality_drop);
  EXPECT_EQ(a.constraint_met, b.constraint_met);
  EXPECT_EQ(a.verdict, b.verdict);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    const LayerChoice &x = a.layers[i], &y = b.layers[i];
    EXPECT_EQ(x.node, y.node);
    EXPECT_EQ(x.op_type, y.op_type);
    EXPECT_EQ(x.original_expr, y.original_expr);
    EXPECT_EQ(x.chosen_expr, y.chosen_expr);
    EXPECT_EQ(x.derivation, y.derivation);
    EXPECT_EQ(x.kept, y.kept);
    EXPECT_EQ(x.latency_ms_before, y.latency_ms_before);
    EXPECT_EQ(x.latency_ms_after, y.latency_ms_after);
    EXPECT_EQ(x.macs_before, y.macs_before);
    EXPECT_EQ(x.macs_after, y.macs_after);
    EXPECT_EQ(x.fidelity, y.fidelity);
    EXPECT_EQ(x.sensitivity, y.sensitivity);
    EXPECT_EQ(x.candidates, y.candidates);
    EXPECT_EQ(x.predicted_slower, y.predicted_slower);
    EXPECT_EQ(x.sensitivity_estimated, y.sensitivity_estimated);
  }
  ASSERT_EQ(a.front.size(), b.front.size());
  for (size_t i = 0; i < a.front.size(); ++i) {
    EXPECT_EQ(a.front[i].predicted_latency_ms, b.front[i].predicted_latency_ms);
    EXPECT_EQ(a.front[i].predicted_loss, b.front[i].predicted_loss);
    EXPECT_EQ(a.front[i].changed_layers, b.front[i].changed_layers);
    EXPECT_EQ(a.front[i].chosen, b.front[i].chosen);
    EXPECT_EQ(a.front[i].measured_speedup, b.front[i].measured_speedup);
  }
  auto classes = [](const AdaptReport& report) { return to_json(report).value("classes", nlohmann::json::array()); };
  EXPECT_EQ(classes(a), classes(b));
  ASSERT_EQ(a.attempts.size(), b.attempts.size());
  for (size_t i = 0; i < a.attempts.size(); ++i) {
    EXPECT_EQ(a.attempts[i].front_index, b.attempts[i].front_index);
    EXPECT_EQ(a.attempts[i].speedup, b.attempts[i].speedup);
    EXPECT_EQ(a.attempts[i].quality_drop, b.attempts[i].quality_drop);
    EXPECT_EQ(a.attempts[i].meets_constraint, b.attempts[i].meets_constraint);
    EXPECT_EQ(a.attempts[i].outcome, b.attempts[i].outcome);
    EXPECT_EQ(a.attempts[i].changes, b.attempts[i].changes);
  }
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < a.stages.size(); ++i) {
    EXPECT_EQ(a.stages[i].stage, b.stages[i].stage);
    EXPECT_EQ(a.stages[i].seconds, b.stages[i].seconds);
  }
  EXPECT_EQ(a.notes, b.notes);
  EXPECT_EQ(a.finished_at, b.finished_at);
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  return "(nothing thrown)";
}

// "nan" or "inf" as a word: what printf-style formatting of a non-finite double leaves in the page.
bool has_non_finite_text(const std::string& html) {
  return std::regex_search(html, std::regex(R"(\b(nan|inf|infinity)\b)", std::regex::icase));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh directory per test under the system temporary directory, removed afterwards.
using TempDir = util::ScratchFolder;

TEST(ReportJson, RoundTripKeepsEveryField) {
  AdaptReport report = sample_report();
  report.target_latency_ms = 1.7;
  report.seed = std::numeric_limits<uint64_t>::max();  // seeds may use all 64 bits
  expect_same(from_json(nlohmann::json::parse(to_json(report).dump())), report);
}

TEST(ReportJson, RoundTripKeepsARegressionReport) {
  AdaptReport report = sample_report();
  report.metric = "mae";
  report.original.accuracy.reset();
  report.adapted.accuracy.reset();
  report.original.mae = 3.2;
  report.adapted.mae = 3.4;
  report.target_speedup.reset();
  expect_same(from_json(nlohmann::json::parse(to_json(report).dump())), report);
}

TEST(ReportJson, HasTheKeysTheIssuePromises) {
  nlohmann::json json = to_json(sample_report());
  for (const char* model : {"original", "adapted"}) {
    for (const char* key : {"accuracy", "median_ms", "p10_ms", "p90_ms", "runs", "macs", "params"}) {
      EXPECT_TRUE(json[model].contains(key)) << model << "." << key;
    }
  }
  for (const char* key : {"speedup", "acc_drop", "quality_drop", "constraint_met", "verdict", "layers", "front",
                          "attempts", "backend", "threads", "machine", "seed", "stages", "notes", "finished_at"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(json["acc_drop"].get<double>(), 0.28);
  EXPECT_DOUBLE_EQ(json["original"]["accuracy"].get<double>(), 93.89);
  EXPECT_EQ(json["original"]["macs"].get<int64_t>(), 40'812'000);
  for (const char* key : {"node", "original_expr", "chosen_expr", "derivation", "latency_ms_before", "latency_ms_after", "fidelity"}) {
    EXPECT_TRUE(json["layers"][0].contains(key)) << "layers[0]." << key;
  }
  EXPECT_EQ(json["layers"][0]["node"], "stage3.block3.conv2");
  EXPECT_TRUE(json["front"][2]["chosen"].get<bool>());
  EXPECT_EQ(json["stages"][0]["stage"], "profile");
}

TEST(ReportJson, RegressionReportHasMaeNotAccuracy) {
  AdaptReport report = sample_report();
  report.metric = "mae";
  report.original.accuracy.reset();
  report.adapted.accuracy.reset();
  report.original.mae = 3.2;
  report.adapted.mae = 3.4;
  nlohmann::json json = to_json(report);
  EXPECT_DOUBLE_EQ(json["original"]["mae"].get<double>(), 3.2);
  EXPECT_DOUBLE_EQ(json["adapted"]["mae"].get<double>(), 3.4);
  EXPECT_FALSE(json["original"].contains("accuracy"));
  EXPECT_FALSE(json["adapted"].contains("accuracy"));
  EXPECT_FALSE(json.contains("acc_drop"));
  EXPECT_TRUE(json.contains("quality_drop"));
}

TEST(ReportJson, AttemptsWithoutChangesReadBackWithNone) {
  nlohmann::json written = to_json(sample_report());
  written["attempts"][0].erase("changes");
  const AdaptReport read = from_json(written);
  EXPECT_TRUE(read.attempts[0].changes.empty());
  EXPECT_EQ(read.attempts[1].changes.size(), 0u);
}

TEST(ReportJson, AnInt8ReportKeepsItsFourModelsAndAnFp32OneHasNone) {
  AdaptReport report = sample_report();
  EXPECT_FALSE(to_json(report).contains("precision"));
  report.precision = "int8";
  for (const auto& [model, precision, ms] : {std::tuple{"original", "fp32", 0.4}, {"original", "int8", 0.2}, {"adapted", "fp32", 0.18},
                                             {"adapted", "int8", 0.09}}) {
    ModelSummary summary = report.original;
    summary.median_ms = ms;
    report.points.push_back({model, precision, summary});
  }
  const AdaptReport back = from_json(nlohmann::json::parse(to_json(report).dump()));
  EXPECT_EQ(back.precision, "int8");
  ASSERT_EQ(back.points.size(), 4u);
  EXPECT_EQ(back.points[1].model, "original");
  EXPECT_EQ(back.points[1].precision, "int8");
  EXPECT_DOUBLE_EQ(back.points[3].summary.median_ms, 0.09);
  EXPECT_EQ(back.points[3].summary.accuracy, report.original.accuracy);
  EXPECT_NE(to_html(report).find("All four models"), std::string::npos);
}

TEST(ReportHtml, ListsWhatEachAttemptReplaced) {
  const std::string html = to_html(sample_report());
  EXPECT_NE(html.find("<summary>2 operators</summary>"), std::string::npos);
  EXPECT_NE(html.find("<code>conv&lt;2&gt;</code>: rank_split(r=4, at=input)"), std::string::npos);
}

TEST(ReportHtml, ShowsEachClassOrTheLargestDropsAmongMany) {
  AdaptReport report = sample_report();
  std::string html = to_html(report);
  EXPECT_NE(html.find("<td>T-shirt/top</td>"), std::string::npos);
  EXPECT_NE(html.find("-1.20"), std::string::npos);
  for (int c = 0; c < 30; ++c) report.classes.push_back({"class " + std::to_string(c), 50, 90.0, 90.0 - c});
  html = to_html(report);
  EXPECT_NE(html.find("The 10 of 32 classes whose test accuracy dropped most"), std::string::npos);
  EXPECT_NE(html.find("<td>class 29</td>"), std::string::npos);
  EXPECT_EQ(html.find("<td>class 5</td>"), std::string::npos);
  EXPECT_EQ(html.find("<td>Trouser</td>"), std::string::npos);
}

TEST(ReportHtml, SaysHowManyCandidatesThePredictorLeftUntimed) {
  const std::string html = to_html(sample_report());
  EXPECT_NE(html.find("7 (3 predicted slower, not timed)"), std::string::npos);
}

TEST(ReportJson, UnsetTargetsAreOmitted) {
  AdaptReport report = sample_report();
  report.target_speedup.reset();
  nlohmann::json json = to_json(report);
  EXPECT_FALSE(json.contains("target_speedup"));
  EXPECT_FALSE(json.contains("target_latency_ms"));
  EXPECT_FALSE(json["original"].contains("mae"));
}

TEST(ReportJson, FromJsonNamesTheMissingKey) {
  nlohmann::json json = to_json(sample_report());
  json.erase("speedup");
  EXPECT_NE(message_of([&] { from_json(json); }).find("'speedup'"), std::string::npos);

  json = to_json(sample_report());
  json["layers"][1].erase("fidelity");
  EXPECT_NE(message_of([&] { from_json(json); }).find("'layers[1].fidelity'"), std::string::npos);

  json = to_json(sample_report());
  json["original"].erase("median_ms");
  EXPECT_NE(message_of([&] { from_json(json); }).find("'original.median_ms'"), std::string::npos);
}

TEST(ReportJson, FromJsonNamesTheMistypedKey) {
  nlohmann::json json = to_json(sample_report());
  json["threads"] = "one";
  std::string message = message_of([&] { from_json(json); });
  EXPECT_NE(message.find("'threads'"), std::string::npos) << message;
  EXPECT_NE(message.find("string"), std::string::npos) << message;

  json = to_json(sample_report());
  json["front"][0]["chosen"] = 1;
  EXPECT_NE(message_of([&] { from_json(json); }).find("'front[0].chosen'"), std::string::npos);

  json = to_json(sample_report());
  json["attempts"][0]["changes"]["conv1"] = 3;
  EXPECT_NE(message_of([&] { from_json(json); }).find("'attempts[0].changes.conv1'"), std::string::npos);
  json["attempts"][0]["changes"] = nlohmann::json::array();
  EXPECT_NE(message_of([&] { from_json(json); }).find("'attempts[0].changes'"), std::string::npos);

  EXPECT_NE(message_of([] { from_json(nlohmann::json::array()); }).find("object"), std::string::npos);
}

TEST(ReportJson, NonFiniteFiguresReadBackAsNaN) {
  // JSON has no NaN: a diverged figure is written as null and must not make the report unreadable.
  AdaptReport report = sample_report();
  report.layers[0].fidelity = std::numeric_limits<double>::quiet_NaN();
  report.speedup = std::numeric_limits<double>::infinity();
  AdaptReport back = from_json(nlohmann::json::parse(to_json(report).dump()));
  EXPECT_TRUE(std::isnan(back.layers[0].fidelity));
  EXPECT_TRUE(std::isnan(back.speedup));
}

TEST(ReportHtml, EscapesNodeNamesAndExpressions) {
  AdaptReport report = sample_report();
  report.model = "<model & co>";
  report.layers[0].node = "<script>alert('x')</script>";
  report.layers[0].original_expr = "y[i] += a[i] < b[i] && c > d";
  report.notes = {"note with <b>tag</b>"};
  std::string html = to_html(report);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<model"), std::string::npos);
  EXPECT_EQ(html.find("<b>tag"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("a[i] &lt; b[i] &amp;&amp; c &gt; d"), std::string::npos);
  EXPECT_NE(html.find("&lt;model &amp; co&gt;"), std::string::npos);
}

TEST(ReportHtml, IsSelfContained) {
  std::string html = to_html(sample_report());
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<style>"), std::string::npos);
}

TEST(ReportHtml, ShowsTheVerdictAndTheConstraintInWords) {
  std::string html = to_html(sample_report());
  EXPECT_NE(html.find("resnet20 is 2.6x faster and lost 0.28 accuracy points: the constraint is met."), std::string::npos);
  EXPECT_NE(html.find("at least 2.5x faster, at most 0.5 accuracy points lost"), std::string::npos);
  EXPECT_NE(html.find("93.89%"), std::string::npos);
  EXPECT_NE(html.find("2.62x faster"), std::string::npos);
}

TEST(ReportHtml, RegressionReportShowsMae) {
  AdaptReport report = sample_report();
  report.metric = "mae";
  report.original = {.mae = 3.21, .median_ms = 2};
  report.adapted = {.mae = 3.4, .median_ms = 1};
  std::string html = to_html(report);
  EXPECT_NE(html.find("MAE"), std::string::npos);
  EXPECT_NE(html.find("3.210"), std::string::npos);
  EXPECT_NE(html.find("MAE up by at most 0.5"), std::string::npos);
  EXPECT_EQ(html.find("accuracy points lost"), std::string::npos);
}

TEST(ReportHtml, DrawsTheTargetLatencyOnlyWhenATargetIsSet) {
  AdaptReport report = sample_report();  // 4.2 ms / 2.5x
  std::string html = to_html(report);
  EXPECT_NE(html.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(html.find("target 1.68 ms"), std::string::npos);

  report.target_speedup.reset();
  report.target_latency_ms = 2.0;
  EXPECT_NE(to_html(report).find("target 2.00 ms"), std::string::npos);

  report.target_latency_ms.reset();
  EXPECT_EQ(to_html(report).find("stroke-dasharray"), std::string::npos);
}

TEST(ReportHtml, HighlightsTheChosenPoint) {
  std::string html = to_html(sample_report());
  EXPECT_NE(html.find("class=\"chosen\""), std::string::npos);
  EXPECT_NE(html.find("chosen: predicted 1.50 ms"), std::string::npos);
}

TEST(ReportHtml, CopesWithEmptyFrontAndNoLayers) {
  AdaptReport report;  // everything at its defaults: zeros, nothing searched
  std::string html = to_html(report);
  EXPECT_FALSE(has_non_finite_text(html));
  EXPECT_NE(html.find("no Pareto front"), std::string::npos);
  EXPECT_NE(html.find("No layers were searched"), std::string::npos);
}

TEST(ReportHtml, CopesWithOnePointAndAllEqualValues) {
  AdaptReport report = sample_report();
  report.front = {{.predicted_latency_ms = 2, .predicted_loss = 0, .chosen = true}};
  for (LayerChoice& layer : report.layers) layer.latency_ms_before = layer.latency_ms_after = 0;
  std::string html = to_html(report);
  EXPECT_FALSE(has_non_finite_text(html));
  EXPECT_NE(html.find("class=\"chosen\""), std::string::npos);

  report.front = {{.predicted_latency_ms = 0, .predicted_loss = 0}, {.predicted_latency_ms = 0, .predicted_loss = 0}};
  report.target_speedup.reset();
  EXPECT_FALSE(has_non_finite_text(to_html(report)));

  report.front = {{.predicted_latency_ms = -1e300, .predicted_loss = 1e300}, {.predicted_latency_ms = 1e300, .predicted_loss = -1e300}};
  EXPECT_FALSE(has_non_finite_text(to_html(report)));
}

TEST(ReportHtml, ShowsNonFiniteFiguresAsNotAvailable) {
  AdaptReport report = sample_report();
  double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  report.speedup = inf;
  report.quality_drop = nan;
  report.layers[0].fidelity = nan;
  report.layers[0].latency_ms_after = inf;
  report.front.push_back({.predicted_latency_ms = nan, .predicted_loss = 1});
  report.stages.push_back({"verify", nan});
  report.original.median_ms = 0;  // target latency 0 / 2.5: no target line rather than a line at 0
  std::string html = to_html(report);
  EXPECT_FALSE(has_non_finite_text(html));
  EXPECT_NE(html.find("n/a"), std::string::npos);
}

TEST(WriteReport, WritesBothFilesAndNoTemporaries) {
  TempDir temp("writes");
  fs::path dir = temp.path() / "out" / "nested";  // created when missing
  AdaptReport report = sample_report();
  write_report(report, dir);
  write_report(report, dir);  // overwriting an earlier report works too
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"report.html", "report.json"}));
  expect_same(from_json(nlohmann::json::parse(read_file(dir / "report.json"))), report);
  EXPECT_EQ(read_file(dir / "report.html"), to_html(report));
}

TEST(WriteReport, ToUnwritableDirThrowsNamingThePath) {
  TempDir temp("unwritable");
  fs::path file = temp.path() / "a-file";
  std::ofstream(file) << "not a directory";
  fs::path dir = file / "report";
  std::string message = message_of([&] { write_report(sample_report(), dir); });
  EXPECT_NE(message.find(dir.string()), std::string::npos) << message;

  message = message_of([&] { write_report(sample_report(), file); });
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace gos::report
