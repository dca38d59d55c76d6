// Stage 7, verify: an attempt's adapted model timed side by side with the original and scored on
// the test set; in int8, four models (the original and the adapted one, each in fp32 and in its
// int8 form) timed side by side in one run and each scored as its runtime computes it
// (docs/search.md, docs/quantization.md).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "search/int8.h"
#include "search/stages.h"
#include "util/scratch_folder.h"

namespace gos::search {

namespace {

using nlohmann::json;

// The original and the adapted model timed side by side, then the fixed loop that says how
// steady the machine was. Kept in the latency cache like every timing, by both models' weights:
// the same two models are never timed twice on one machine, so a run killed after timing them
// and resumed reports what an uninterrupted one would.
std::tuple<measure::Timing, measure::Timing, measure::Timing> side_by_side(RunContext& run, const graph::Graph& adapted) {
  const std::string name = "adapted_vs_original:" + weights_fingerprint(run.model) + "|" + weights_fingerprint(adapted);
  const measure::CacheKey scope = run.whole_model_cache_scope();
  if (auto cached = run.cache->get_blob(name, scope)) {
    const json j = json::parse(*cached);
    return {timing_from(j.at("original")), timing_from(j.at("adapted")), timing_from(j.at("machine"))};
  }
  run.progress("verify", 0, 3, "timing original and adapted side by side");
  const auto [original, timed] = measure::bench_models_interleaved(run.model, adapted, run.options.backend,
                                                                   {.threads = run.options.threads, .budget_seconds = 2});
  const measure::Timing machine = measure::time_machine_reference();
  run.cache->put_blob(name, scope,
                       json{{"original", timing_json(original)}, {"adapted", timing_json(timed)}, {"machine", timing_json(machine)}}.dump());
  return {original, timed, machine};
}

// In int8: the original and the adapted model, each in fp32 and in int8, written as the backend
// runs them (the int8 forms calibrated on training images as gos quantize calibrates) and timed
// side by side, then the fixed loop; cached like side_by_side. Returns original fp32, original
// int8, adapted fp32, adapted int8 and the loop.
std::vector<measure::Timing> four_side_by_side(RunContext& run, const graph::Graph& adapted, const std::filesystem::path& folder,
                                               const std::filesystem::path& original_int8, const std::filesystem::path& adapted_int8) {
  const std::string name = "int8_adapted_vs_original:" + weights_fingerprint(run.model) + "|" + weights_fingerprint(adapted);
  const measure::CacheKey scope = run.whole_model_cache_scope();
  std::vector<measure::Timing> timings;
  if (auto cached = run.cache->get_blob(name, scope)) {
    for (const auto& timing : json::parse(*cached)) timings.push_back(timing_from(timing));
    return timings;
  }
  run.progress("verify", 0, 5, "timing the original and the adapted model in fp32 and int8 side by side");
  const auto backend = run.options.backend;
  timings = measure::bench_files_side_by_side({write_fp32_file(run.model, backend, folder / "original"), original_int8,
                                               write_fp32_file(adapted, backend, folder / "adapted"), adapted_int8},
                                              run.model.inputs, backend, {.threads = run.options.threads, .budget_seconds = 2});
  timings.push_back(measure::time_machine_reference());
  json stored = json::array();
  for (const auto& timing : timings) stored.push_back(timing_json(timing));
  run.cache->put_blob(name, scope, stored.dump());
  return timings;
}

Verified verify_int8(RunContext& run, const graph::Graph& adapted) {
  const AdaptTask& task = *run.task;
  util::ScratchFolder folder("gos-verify");
  const auto backend = run.options.backend;
  const auto original_int8 = write_int8_file(run.model, run.int8_calibration(), backend, folder.path() / "original").first;
  const auto adapted_int8 = write_int8_file(adapted, run.int8_calibration(), backend, folder.path() / "adapted").first;
  const auto t = four_side_by_side(run, adapted, folder.path(), original_int8, adapted_int8);
  Verified v{.original = t[1], .adapted = t[3], .machine = t[4]};
  v.fp32 = Verified::Fp32Forms{.original = t[0], .adapted = t[2]};
  run.use_training_threads();
  run.progress("verify", 1, 5, "test " + task.metric_name() + " of the original in fp32");
  v.original_accuracy = run.original_test_quality();
  run.progress("verify", 2, 5, "test " + task.metric_name() + " of the original in int8");
  if (auto known = run.journal->text("verify", "original_int8_accuracy")) {
    v.fp32->original_int8_accuracy = std::stod(*known);
  } else {
    v.fp32->original_int8_accuracy = file_test_quality(original_int8, run.model, task, backend);
    run.journal->put_text("verify", "original_int8_accuracy", exact_text(v.fp32->original_int8_accuracy));
  }
  run.progress("verify", 3, 5, "test " + task.metric_name() + " of the adapted model in fp32");
  v.fp32->adapted_accuracy = task.test_quality(adapted);
  run.progress("verify", 4, 5, "test " + task.metric_name() + " of the adapted model in int8");
  v.adapted_accuracy = file_test_quality(adapted_int8, run.model, task, backend);
  return v;
}

}  // namespace

// Said in the report, since a speedup timed on an unsteady machine may not repeat.
std::string unsteady_timing_note(const RunContext& run, const Verified& v, double speedup) {
  const std::string machine =
      v.machine ? fmt::format("; a fixed arithmetic loop timed right after spread {:.0f}%, where a dedicated core stays under "
                              "{:.0f}%",
                              100 * v.machine->spread(), 100 * measure::kUnsteadyMachineSpread)
                : "";
  return fmt::format("attempt {} was timed while the machine was unsteady (p10-p90 spread {:.0f}% for the original, {:.0f}% "
                     "for the adapted model, over {:.0f}%{}): its {:.2f}x may differ by as much in another run; time both "
                     "models again when the machine is quiet (for the model written: gos bench MODEL --against "
                     "OUT/adapted.onnx)",
                     run.report.attempts.size() + 1, 100 * v.original.spread(), 100 * v.adapted.spread(),
                     100 * measure::kNoisySpread, machine, speedup);
}

Verified verified_models(RunContext& run, int front_index, const graph::Graph& adapted) {
  const std::string key = run.attempt_key(front_index);
  const AdaptTask& task = *run.task;
  Verified v;
  if (auto known = run.journal->text("verify", key)) {
    const json j = json::parse(*known);
    v = {timing_from(j.at("original")), timing_from(j.at("adapted")), j.at("original_accuracy"), j.at("adapted_accuracy"),
         j.contains("machine") ? std::optional(timing_from(j.at("machine"))) : std::nullopt};
    if (j.contains("fp32")) {
      const json& f = j.at("fp32");
      v.fp32 = Verified::Fp32Forms{timing_from(f.at("original")), timing_from(f.at("adapted")), f.at("original_int8_accuracy"),
                                   f.at("adapted_accuracy")};
    }
  } else if (run.int8()) {
    v = verify_int8(run, adapted);
    run.journal->put_text("verify", key,
                           json{{"original", timing_json(v.original)}, {"adapted", timing_json(v.adapted)},
                                {"machine", timing_json(*v.machine)}, {"original_accuracy", v.original_accuracy},
                                {"adapted_accuracy", v.adapted_accuracy},
                                {"fp32", {{"original", timing_json(v.fp32->original)}, {"adapted", timing_json(v.fp32->adapted)},
                                          {"original_int8_accuracy", v.fp32->original_int8_accuracy},
                                          {"adapted_accuracy", v.fp32->adapted_accuracy}}}}
                               .dump());
  } else {
    std::tie(v.original, v.adapted, v.machine) = side_by_side(run, adapted);
    run.use_training_threads();
    run.progress("verify", 1, 3, "test " + task.metric_name() + " of the original");
    v.original_accuracy = run.original_test_quality();
    run.progress("verify", 2, 3, "test " + task.metric_name() + " of the adapted model");
    v.adapted_accuracy = task.test_quality(adapted);
    run.journal->put_text("verify", key,
                           json{{"original", timing_json(v.original)}, {"adapted", timing_json(v.adapted)},
                                {"machine", timing_json(*v.machine)}, {"original_accuracy", v.original_accuracy},
                                {"adapted_accuracy", v.adapted_accuracy}}
                               .dump());
  }
  return v;
}

}  // namespace gos::search
