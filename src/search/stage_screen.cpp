// Stage 5b, screen: front points timed whole, side by side with the original, before minutes of
// fine-tuning are spent on one (docs/search.md).
//
// Predicted latencies are sums of operators timed alone, a few percent off the whole model. A
// configuration's latency does not depend on its weights, so points are timed whole before
// fine-tuning, and the most accurate point that meets the target as timed is fine-tuned first.
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "search/adapted.h"
#include "search/stages.h"
#include "util/stable_hash.h"

namespace gos::search {

namespace {

using nlohmann::json;

constexpr double kLatencyPredictionMargin = 0.03;  // of the target: how far under it an untimed point is predicted
constexpr double kTimedLatencyMargin = 0.02;  // of the target: how far under it a point timed whole must be (timing noise)
constexpr int kMaxTimedPoints = 12;           // front points timed whole per run (a few seconds each)
constexpr int kOutOfReachTimedPoints = 4;     // plausible points timed whole when none is predicted to reach the target

// The median of timed over predicted latency among the timed points; 1 before any was timed.
double prediction_calibration(const RunContext& run) {
  std::vector<double> factors;
  for (const auto& [index, ratio] : run.timed_ratio) {
    factors.push_back(ratio * run.original_timing.median_ms / std::max(1e-9, run.front[index].latency_ms));
  }
  if (factors.empty()) return 1;
  std::sort(factors.begin(), factors.end());
  const size_t n = factors.size();
  return n % 2 ? factors[n / 2] : 0.5 * (factors[n / 2 - 1] + factors[n / 2]);
}

// The most accurate point whose latency, as timed or else as predicted and calibrated by the
// timed points, is under the target by the margin its estimate needs. An untimed point is timed
// before it is taken while timing is allowed, so then it needs only a timed point's margin.
int most_accurate_point_within_target(const RunContext& run) {
  const bool can_time = static_cast<int>(run.timed_ratio.size()) < kMaxTimedPoints;
  int best = -1;
  for (int i = 0; i < static_cast<int>(run.front.size()); ++i) {
    const double margin = timed_ratio(run, i) || can_time ? kTimedLatencyMargin : kLatencyPredictionMargin;
    if (latency_fraction(run, i) <= 1 - margin && (best < 0 || run.front[i].accuracy_loss < run.front[best].accuracy_loss)) best = i;
  }
  return best;
}

// The fastest point not yet timed whole whose latency, as predicted and calibrated, is within the
// prediction's margin over the target (-1 when none): a sum of operators timed alone overstates
// the whole model by up to 11%, so such a point may meet the target once timed.
int fastest_untimed_point_near_target(const RunContext& run) {
  for (int i = 0; i < static_cast<int>(run.front.size()); ++i) {  // the front is by latency
    if (timed_ratio(run, i)) continue;
    return latency_fraction(run, i) <= 1 + kLatencyPredictionMargin ? i : -1;
  }
  return -1;
}

// Whether the fastest point timed whole leaves nothing worth fine-tuning: it is no faster than
// the original. Not with --subsample or --narrow, whose unchanged layers already differ from the original.
bool none_faster(const RunContext& run, double fastest_ratio) { return fastest_ratio >= 1 && !run.base_changed(); }

// `timed` says which points were timed, e.g. "4 configurations predicted near it".
std::string nothing_faster(const std::string& timed, double fastest_ratio) {
  return fmt::format("none of the {}, timed whole side by side with the original, is faster (the fastest {:.2f}x), so the "
                     "operators timed alone misled the search (were they timed on a busy or unsteady machine? A new -o folder "
                     "and --cache file time them again). Fine-tuning one could only give a slower model: nothing was fine-tuned, "
                     "and the original is written unchanged",
                     timed, 1 / fastest_ratio);
}

// When the target is out of reach, the fastest point is usually one no fine-tuning recovers
// (every layer replaced). Measured so far, fine-tuning leaves about half the predicted
// (before fine-tuning) loss, so the fastest point predicted to lose at most four times the
// accuracy budget is taken; the most accurate changed point when none is.
int fastest_plausible_point(const RunContext& run) {
  const double plausible = 4 * std::max(run.options.max_acc_drop, 0.1);
  int most_accurate_changed = 0;
  for (int i = 0; i < static_cast<int>(run.front.size()); ++i) {
    if (!run.changes_model(run.front[i])) continue;  // the original itself is no answer to a speed target
    if (run.front[i].accuracy_loss <= plausible) return i;  // the front is by latency
    most_accurate_changed = i;
  }
  return most_accurate_changed;
}

// The points fine-tuning can plausibly recover, from the fastest as predicted, timed whole (a
// few), and the fastest of them as timed, with how many were timed. Predictions are sums of
// operators timed alone: on an unsteady machine those mislead (a mixer-s point predicted faster
// timed slower whole: docs/search.md), and nothing else checks a point when the target is out of
// reach.
std::pair<int, int> fastest_timed_plausible_point(RunContext& run) {
  const int first = fastest_plausible_point(run);
  int fastest = first, timed = 0;
  // Along the front the loss only falls, so every later point is as plausible as the first.
  for (int i = first; i < static_cast<int>(run.front.size()) && timed < kOutOfReachTimedPoints; ++i) {
    if (!run.changes_model(run.front[i])) continue;
    if (!timed_ratio(run, i) && !time_whole(run, i)) break;
    ++timed;
    if (!timed_ratio(run, fastest) || *timed_ratio(run, i) < *timed_ratio(run, fastest)) fastest = i;
  }
  return {fastest, timed};
}

// With no point under the target: the fastest one timed whole (points are timed only when
// predicted under or near the target, so it is the nearest the run comes), else the fastest one
// fine-tuning can plausibly recover. -1 when the one found is timed whole no faster than the
// original: fine-tuning it could only give a slower model. Says which in the report's notes.
int point_for_a_target_out_of_reach(RunContext& run) {
  const auto fastest_timed = std::ranges::min_element(run.timed_ratio, {}, [](const auto& timed) { return timed.second; });
  if (fastest_timed != run.timed_ratio.end()) {
    if (none_faster(run, fastest_timed->second)) {
      run.report.notes.push_back(fmt::format("no configuration reaches {:.3f} ms ({}); {}", run.target_latency_ms(), run.unchangeable_time(),
                                             nothing_faster(fmt::format("{} configurations predicted near it", run.timed_ratio.size()),
                                                            fastest_timed->second)));
      return -1;
    }
    run.report.notes.push_back(fmt::format("no configuration reaches {:.3f} ms ({}); the fastest timed whole, {:.2f}x faster, was "
                                           "fine-tuned{}",
                                           run.target_latency_ms(), run.unchangeable_time(), 1 / fastest_timed->second,
                                           run.subsample_hint("; consider ")));
    return fastest_timed->first;
  }
  const auto [plausible, timed] = fastest_timed_plausible_point(run);
  const auto ratio = timed_ratio(run, plausible);
  const std::string unreached = fmt::format("no configuration is predicted to reach {:.3f} ms (the fastest is {:.3f} ms; {})",
                                            run.target_latency_ms(), run.front[0].latency_ms, run.unchangeable_time());
  if (ratio && none_faster(run, *ratio)) {
    run.report.notes.push_back(fmt::format("{}; {}", unreached,
                                           nothing_faster(fmt::format("{} fastest points whose predicted loss fine-tuning can "
                                                                      "plausibly recover", timed), *ratio)));
    return -1;
  }
  std::string as_timed;
  if (ratio && *ratio >= 1) {
    as_timed = fmt::format(", timed whole {:.2f}x: of the {} such points timed whole none is faster than the original", 1 / *ratio, timed);
  } else if (ratio) {
    as_timed = fmt::format(", timed whole {:.2f}x faster, the fastest of the {} such points timed", 1 / *ratio, timed);
  }
  run.report.notes.push_back(fmt::format("{}; the fastest one whose predicted loss fine-tuning can plausibly recover was fine-tuned "
                                         "({:.3f} ms as predicted, predicted loss {:.2f}{}){}", unreached,
                                         run.front[plausible].latency_ms, run.front[plausible].accuracy_loss, as_timed,
                                         run.subsample_hint("; consider ")));
  return plausible;
}

// Why the front holds nothing but the original.
std::string nothing_to_search(const RunContext& run) {
  const bool any_faster = std::any_of(run.layers.begin(), run.layers.end(), [](const Layer& layer) { return !layer.faster.empty(); });
  if (!any_faster) {
    return fmt::format("no candidate of the {} searched operators timed at least 5% faster than its operator on {}, so there is "
                       "nothing to replace them with",
                       run.layers.size(), measure::to_string(run.options.backend));
  }
  return "no candidate was distilled and measured within the budget; give a larger --budget";
}

}  // namespace

std::optional<double> timed_ratio(const RunContext& run, int front_index) {
  const auto found = run.timed_ratio.find(front_index);
  return found == run.timed_ratio.end() ? std::nullopt : std::optional<double>(found->second);
}

double latency_fraction(const RunContext& run, int front_index) {
  const double original_ms = run.original_timing.median_ms;
  const double ratio = timed_ratio(run, front_index).value_or(run.front[front_index].latency_ms / original_ms * prediction_calibration(run));
  return ratio * original_ms / run.target_latency_ms();
}

bool time_whole(RunContext& run, int front_index) {
  if (static_cast<int>(run.timed_ratio.size()) >= kMaxTimedPoints) return false;
  const auto chosen = run.choices(run.front[front_index]);
  std::string structure = weights_fingerprint(run.base);
  for (const auto& [node, candidate] : chosen) structure += "|" + node + "=" + candidate.op.canonical_key();
  for (const auto& node : run.fp32_layers(run.front[front_index])) structure += "|" + node + "@fp32";
  const std::string key = util::stable_hash_hex(structure);
  json timings;
  if (auto known = run.journal->text("screen", key)) {
    timings = json::parse(*known);
  } else {
    const measure::CacheKey scope = run.whole_model_cache_scope();
    const std::string name = "configuration_vs_original:" + key;
    if (auto cached = run.cache->get_blob(name, scope)) {
      timings = json::parse(*cached);
    } else {
      // No total: how many points are timed depends on what the timings show.
      run.progress("screen", 0, 0, fmt::format("timing configuration {} ({} layers replaced) side by side with the original",
                                               run.timed_ratio.size() + 1, changed_layers(run.front[front_index])));
      const auto [original, adapted] = measure::bench_models_interleaved(run.model, run.configured(run.front[front_index]), run.options.backend,
                                                                         {.threads = run.options.threads, .precision = run.options.precision, .budget_seconds = 1});
      timings = {{"original", timing_json(original)}, {"adapted", timing_json(adapted)}};
      run.cache->put_blob(name, scope, timings.dump());
    }
    run.journal->put_text("screen", key, timings.dump());
  }
  const double ratio = timing_from(timings.at("adapted")).median_ms / timing_from(timings.at("original")).median_ms;
  run.timed_ratio[front_index] = ratio;
  run.report.front[static_cast<size_t>(front_index)].measured_speedup = 1 / ratio;
  return true;
}

void choose_first_point(RunContext& run) {
  run.chosen_front_index = -1;
  if (std::none_of(run.front.begin(), run.front.end(), [&](const Configuration& point) { return run.changes_model(point); })) {
    run.why_unchanged = nothing_to_search(run);
    run.report.notes.push_back(run.why_unchanged);
    run.summary = "no configuration replaces any layer: " + run.why_unchanged;
    return;
  }
  for (;;) {
    const int best = most_accurate_point_within_target(run);
    if (best < 0) {
      // None predicted under the target: the fastest points may still time under it whole.
      const int near = fastest_untimed_point_near_target(run);
      if (near >= 0 && time_whole(run, near)) continue;
      break;
    }
    if (timed_ratio(run, best) || !time_whole(run, best)) {
      run.chosen_front_index = best;
      break;
    }
  }
  run.target_within_reach = run.chosen_front_index >= 0;
  if (!run.target_within_reach) run.chosen_front_index = point_for_a_target_out_of_reach(run);
  if (run.chosen_front_index < 0) {
    run.why_unchanged = "no configuration of faster candidates timed faster than it whole (see the notes)";
    run.summary = fmt::format("{} configuration(s) of the front timed whole; none faster than the original", run.timed_ratio.size());
    return;
  }
  const auto& chosen = run.front[run.chosen_front_index];
  const auto ratio = timed_ratio(run, run.chosen_front_index);
  run.summary = fmt::format("{} configuration(s) of the front timed whole; chose {} at predicted loss {:.2f}", run.timed_ratio.size(),
                            ratio ? fmt::format("one timed {:.2f}x faster", 1 / *ratio) : fmt::format("{:.3f} ms as predicted", chosen.latency_ms),
                            chosen.accuracy_loss);
}

}  // namespace gos::search
