// Stage 2, candidates: each searched operator's rule candidates, those the stored latency predictor
// puts far slower left untimed, the rest timed on the backend; only those measured faster than
// their operator stay (docs/search.md).
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "measure/latency_model.h"
#include "search/stages.h"
#include "util/stable_hash.h"

namespace gos::search {

namespace {

using nlohmann::json;

constexpr size_t kMaxMeasuredPerLayer = 48;  // candidates timed per layer, spread over their MACs

// At most `count` of the candidates, spread evenly over their MACs (cheapest and costliest kept).
std::vector<rules::Candidate> spread_over_macs(std::vector<rules::Candidate> candidates, size_t count) {
  if (candidates.size() <= count) return candidates;
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const auto& a, const auto& b) { return ir::cost(a.op).macs < ir::cost(b.op).macs; });
  std::vector<rules::Candidate> spread;
  for (size_t i = 0; i < count; ++i) spread.push_back(candidates[i * (candidates.size() - 1) / (count - 1)]);
  return spread;
}

// The candidates of `layer` that the stored latency predictor puts at kPredictedSlowerRatio times
// its operator or more, by the hash of their canonical form. Journaled when first decided, so a
// resumed run skips the same ones whatever predictor the cache holds by then.
std::set<std::string> journaled_predicted_slower(RunContext& run, const Layer& layer, const std::vector<rules::Candidate>& derived) {
  if (auto known = run.journal->text("predicted_slower", layer.node->name)) return json::parse(*known).get<std::set<std::string>>();
  std::set<std::string> slower;
  // A run whose candidates stage an older gos finished timed every candidate: it stays so.
  const bool finished_unscreened = run.journal->text("stage_seconds", "candidates").has_value();
  const measure::LatencyPredictor* predictor =
      finished_unscreened || run.options.time_every_candidate ? nullptr : run.stored_predictor();
  if (predictor) {
    const double original_ms = predictor->predict_ms(*layer.node->op);
    for (const auto& c : derived) {
      if (measure::left_untimed(measure::screenable(c.op), predictor->predict_ms(c.op), original_ms)) {
        slower.insert(util::stable_hash_hex(c.op.canonical_key()));
      }
    }
  }
  run.journal->put_text("predicted_slower", layer.node->name, json(slower).dump());
  return slower;
}

}  // namespace

void find_candidates(RunContext& run) {
  const rules::RuleOptions rule_options{.depth = run.options.depth, .rules = run.options.rules};
  size_t kept = 0, timed = 0, skipped = 0;
  for (size_t l = 0; l < run.layers.size(); ++l) {
    Layer& layer = run.layers[l];
    run.progress("candidates", static_cast<int64_t>(l), static_cast<int64_t>(run.layers.size()), layer.node->name);
    auto derived = rules::derive_candidates(*layer.node->op, layer.node->weights, rule_options);
    layer.derived = static_cast<int>(derived.size());
    const std::set<std::string> slower = journaled_predicted_slower(run, layer, derived);
    std::erase_if(derived, [&](const rules::Candidate& c) { return slower.contains(util::stable_hash_hex(c.op.canonical_key())); });
    layer.predicted_slower = static_cast<int>(layer.derived - derived.size());
    // The slots go to the candidates not predicted slower, spread over their MACs.
    const auto candidates = spread_over_macs(std::move(derived), kMaxMeasuredPerLayer);
    std::vector<measure::OpToMeasure> ops;
    for (const auto& c : candidates) ops.push_back({c.op, c.weights});
    const auto ms = run.latencies_ms(ops, "candidates");
    // In int8 (mixed precision) a candidate stays when, in the precision it runs fastest in, it is
    // faster than the operator in the precision that runs fastest.
    std::vector<double> fp32_ms;
    double operator_ms = layer.original_ms;
    if (run.int8()) {
      fp32_ms = run.latencies_ms(ops, "candidates", measure::Precision::Fp32InInt8);
      operator_ms = std::min(operator_ms, layer.original_fp32_ms);
    }
    for (size_t i = 0; i < candidates.size(); ++i) {
      const double fastest_ms = fp32_ms.empty() ? ms[i] : std::min(ms[i], fp32_ms[i]);
      if (fastest_ms < measure::kFasterThanItsOperator * operator_ms) {
        layer.faster.push_back(candidates[i]);
        layer.faster_ms.push_back(ms[i]);
        if (!fp32_ms.empty()) layer.faster_fp32_ms.push_back(fp32_ms[i]);
      }
    }
    timed += candidates.size();
    skipped += static_cast<size_t>(layer.predicted_slower);
    kept += layer.faster.size();
  }
  run.summary = fmt::format("{} candidates timed{}, {} measured at least 5% faster than their operator", timed,
                            run.int8() ? " in int8 and in fp32" : "", kept);
  if (skipped > 0) {
    run.summary += fmt::format("; {} predicted at least {:.2f}x slower than their operator were not timed", skipped,
                               measure::kPredictedSlowerRatio);
    run.report.notes.push_back(fmt::format(
        "{} candidates the latency predictor in the cache put at {:.2f}x their operator's time or more were not timed "
        "(on held-out operators this screen timed 97.5-100% of the candidates that time faster: docs/latency.md)",
        skipped, measure::kPredictedSlowerRatio));
  } else if (run.predictor_missing) {
    run.summary += "; every candidate timed (" + *run.predictor_missing + ")";
  }
}

}  // namespace gos::search
