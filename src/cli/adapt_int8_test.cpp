// gos adapt --precision int8: the search timed in int8 on the backend, fine-tuned
// quantization-aware, verified side by side against the original in fp32 and in its
// post-training int8 form, and written in both precisions.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"
#include "measure/cache.h"
#include "measure/measure.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using testing::read_json;
using testing::run_gos;
using testing::small_adapt;

class ScratchDir : public util::ScratchFolder {
 public:
  ScratchDir() : util::ScratchFolder("gos-adapt-int8-test") {}
  fs::path operator/(const std::string& name) const { return file(name); }
};

std::vector<std::string> int8_adapt(const fs::path& out, const fs::path& cache, const std::string& backend) {
  auto arguments = small_adapt(out, cache);
  arguments.insert(arguments.end(), {"--precision", "int8", "--backend", backend});
  return arguments;
}

TEST(AdaptInt8, SearchesInInt8AndReportsTheFourModelsTimedSideBySide) {
  for (const std::string backend : {"ort", "mobile"}) {
    ScratchDir scratch;
    auto run = run_gos(int8_adapt(scratch / "out", scratch / "latency.sqlite", backend));
    ASSERT_EQ(run.exit_code, 0) << backend << ": " << run.err << run.out;
    for (const char* file : {"adapted.onnx", "adapted.pt", "adapted.int8.onnx", "adapted.int8.pt", "report.json"}) {
      EXPECT_TRUE(fs::exists(scratch / "out" / file)) << backend << ": " << file;
    }
    const auto report = read_json(scratch / "out" / "report.json");
    EXPECT_EQ(report.at("precision"), "int8");
    ASSERT_EQ(report.at("points").size(), 4u) << report.at("points");
    const std::vector<std::pair<std::string, std::string>> expected{
        {"original", "fp32"}, {"original", "int8"}, {"adapted", "fp32"}, {"adapted", "int8"}};
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto& point = report["points"][i];
      EXPECT_EQ(point.at("model"), expected[i].first);
      EXPECT_EQ(point.at("precision"), expected[i].second);
      EXPECT_GT(point.at("median_ms").get<double>(), 0.0) << point;
      EXPECT_TRUE(point.contains("accuracy")) << point;
    }
    const auto& points = report["points"];
    // The speedup is over the original's int8 form, the loss from the fp32 original.
    EXPECT_NEAR(report["speedup"].get<double>(), points[1]["median_ms"].get<double>() / points[3]["median_ms"].get<double>(), 1e-9);
    EXPECT_NEAR(report["quality_drop"].get<double>(), points[0]["accuracy"].get<double>() - points[3]["accuracy"].get<double>(), 1e-9);
    EXPECT_EQ(report["adapted"]["median_ms"], points[3]["median_ms"]);

    // Operators were timed in int8, and in fp32 as an int8 model runs a layer it keeps in fp32
    // (mixed precision), each under its own cache name; none as an fp32 model runs them.
    measure::LatencyCache cache(scratch / "latency.sqlite");
    const auto chosen = measure::backend_named(backend);
    const auto int8_rows = cache.all(measure::cache_name(chosen, measure::Precision::Int8), 1, measure::machine_fingerprint());
    const auto mixed_rows = cache.all(measure::cache_name(chosen, measure::Precision::Fp32InInt8), 1, measure::machine_fingerprint());
    EXPECT_FALSE(int8_rows.empty());
    EXPECT_FALSE(mixed_rows.empty());
    EXPECT_TRUE(cache.all(measure::cache_name(chosen), 1, measure::machine_fingerprint()).empty());
    // Each searched layer's effect when kept alone in fp32 was measured for the search.
    int fp32_effects = 0;
    for (const auto& key : testing::journal_keys(scratch / "out" / "run.sqlite", "sensitivity")) fp32_effects += key.rfind("fp32|", 0) == 0;
    EXPECT_EQ(fp32_effects, 3);
    if (backend != "ort") continue;

    // A rerun resumes from the journal and reports the same; an fp32 run may not resume it.
    auto again = run_gos(int8_adapt(scratch / "out", scratch / "latency.sqlite", backend));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(read_json(scratch / "out" / "report.json")["points"], points);
    auto fp32 = small_adapt(scratch / "out", scratch / "latency.sqlite");
    fp32.insert(fp32.end(), {"--backend", "ort"});
    auto refused = run_gos(fp32);
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_NE(refused.err.find("precision"), std::string::npos) << refused.err;
  }
}

TEST(AdaptInt8, TorchHasNoInt8FormAndSaysSo) {
  ScratchDir scratch;
  auto run = run_gos(int8_adapt(scratch / "out", scratch / "latency.sqlite", "torch"));
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("torch has no int8 form"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(scratch / "out"));
}

}  // namespace
}  // namespace gos::cli
