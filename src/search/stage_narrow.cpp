// Stage 0, narrow (--narrow): channels shared by several operators kept fewer, before the
// per-operator search starts from the narrowed model (docs/search.md, "Narrowing channels").
//
// `--narrow search` is gos's own: a measured-latency greedy search in the manner of NetAdapt. Each
// step, every channel group proposes its widest width (a multiple of the backend's vector width)
// whose operators, timed on the target, save at least a step of latency; the channels it keeps are
// those that contribute most to its consumers' outputs on the calibration images, and the consumers
// are refitted by least squares; the proposal that costs the least output error per millisecond
// saved is taken. Until the estimated latency meets the target. Each step is journaled (the group,
// the kept channels, the refitted weights), so a resumed run replays them.
//
// `--narrow l1:F` is the plain baseline the common pruning libraries give: every group keeps the
// fraction F of its channels with the largest producer weight norms, nothing refitted, and no
// per-operator search; fine-tuned and verified like any attempt.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <nlohmann/json.hpp>
#include <set>

#include "narrow/narrow.h"
#include "search/stages.h"
#include "util/stable_hash.h"

namespace gos::search {

namespace {

using nlohmann::json;

constexpr double kNarrowingBudgetShare = 0.25;  // of --budget, at most, before the per-operator search

const narrow::ChannelGroup* find_group(const std::vector<narrow::ChannelGroup>& groups, const std::string& name) {
  for (const auto& group : groups) {
    if (group.name() == name) return &group;
  }
  return nullptr;
}

double total(const std::vector<double>& values) { return std::accumulate(values.begin(), values.end(), 0.0); }

// The time of the operators a group touches, as they are in `graph`.
double touched_ms(RunContext& run, const graph::Graph& graph, const narrow::ChannelGroup& group) {
  return total(run.latencies_ms(measure::operators_of(narrow::touched_nodes(graph, group)), "narrow"));
}

double operators_ms(RunContext& run, const graph::Graph& graph) { return total(run.latencies_ms(measure::operators_of(graph), "narrow")); }

// A group narrowed to the channels `kept` (its consumers' weights refitted), or a drop.
struct Step {
  std::string group;
  std::vector<int64_t> kept;
  ir::TensorMap weights;  // the refitted consumers' weights, "node/weight"
  std::optional<narrow::Drop> drop;
};

ir::TensorMap consumer_weights(const graph::Graph& graph, const narrow::ChannelGroup& group) {
  ir::TensorMap weights;
  for (const auto& name : group.consumers) {
    for (const auto& [weight, tensor] : graph.find_node(name)->weights) weights[name + "/" + weight] = tensor;
  }
  return weights;
}

// The group narrowed as `step` says, its consumers' weights as the step refitted them.
graph::Graph narrowed_with(const graph::Graph& graph, const narrow::ChannelGroup& group, const Step& step) {
  graph::Graph narrowed = narrow::narrow_group(graph, group, step.kept);
  for (auto& node : narrowed.nodes) {
    for (auto& [weight, tensor] : node.weights) {
      if (auto found = step.weights.find(node.name + "/" + weight); found != step.weights.end()) tensor = found->second;
    }
  }
  return narrowed;
}

// What a group's proposal depends on: its operators and their weights.
std::string group_signature(const graph::Graph& graph, const narrow::ChannelGroup& group) {
  std::string bytes = std::to_string(group.extent);
  for (const graph::Node* node : narrow::touched_nodes(graph, group)) {
    bytes += node->name + node->op->canonical_key();
    for (const auto& [name, tensor] : node->weights) bytes.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * sizeof(float));
  }
  return util::stable_hash_hex(bytes);
}

// A journaled step as it applies to `graph`: its group's narrowing, or the drop of that name.
graph::Graph apply(const graph::Graph& graph, Step& step) {
  if (step.drop) {
    for (const auto& drop : narrow::droppable(graph)) {
      if (drop.name != step.drop->name) continue;
      step.drop = drop;
      return narrow::apply_drop(graph, drop);
    }
    throw SearchError("the journal's narrowing step " + step.drop->name + " does not fit the model; rerun with --restart");
  }
  const auto groups = narrow::channel_groups(graph);
  const narrow::ChannelGroup* group = find_group(groups, step.group);
  if (!group) throw SearchError("the journal's narrowing step names the channel group " + step.group + ", which the model does not have; rerun with --restart");
  return narrowed_with(graph, *group, step);
}

void journal_step(RunContext& run, size_t index, const Step& step) {
  run.journal->atomically([&] {
    const json j = step.drop ? json{{"drop", step.drop->name}} : json{{"group", step.group}, {"kept", step.kept}};
    run.journal->put_text("narrow", fmt::format("step{}", index), j.dump());
    run.journal->put_tensors("narrow_weights", fmt::format("step{}", index), step.weights);
  });
}

std::optional<Step> journaled_step(const RunContext& run, size_t index) {
  auto text = run.journal->text("narrow", fmt::format("step{}", index));
  auto tensors = run.journal->tensors("narrow_weights", fmt::format("step{}", index));
  if (!text || !tensors) return std::nullopt;
  const json j = json::parse(*text);
  if (j.contains("drop")) return Step{{}, {}, {}, narrow::Drop{j.at("drop").get<std::string>()}};
  return Step{j.at("group").get<std::string>(), j.at("kept").get<std::vector<int64_t>>(), *tensors, {}};
}

// The plain baseline: every group at the fraction, by producer weight norms, applied to `current`.
std::vector<Step> uniform_l1_steps(graph::Graph& current, double fraction) {
  std::vector<Step> steps;
  for (const auto& group : narrow::channel_groups(current)) {
    const auto now = narrow::channel_groups(current);
    const narrow::ChannelGroup* same = find_group(now, group.name());
    if (!same) continue;
    const int64_t keep = std::max<int64_t>(1, std::llround(fraction * static_cast<double>(same->extent)));
    if (keep >= same->extent) continue;
    Step step{same->name(), narrow::strongest(narrow::weight_norms(current, *same), keep), {}};
    current = narrow::narrow_group(current, *same, step.kept);
    steps.push_back(std::move(step));
  }
  return steps;
}

struct Proposal {
  Step step;
  graph::Graph graph;
  double saved_ms = 0, error = 0;
};

}  // namespace

void narrow_channels(RunContext& run) {
  if (!run.narrowing()) return;
  graph::Graph current = run.base;
  std::vector<Step> steps;
  while (auto step = journaled_step(run, steps.size())) {
    current = apply(current, *step);
    steps.push_back(std::move(*step));
  }
  const double base_ops_ms = operators_ms(run, run.base);
  if (auto fraction = run.uniform_narrowing()) {
    if (steps.empty()) {
      steps = uniform_l1_steps(current, *fraction);
      for (size_t i = 0; i < steps.size(); ++i) journal_step(run, i, steps[i]);
    }
  } else {
    const measure::Timing original = journaled_whole_model_timing(run, "whole_model", run.model);
    const double target_ms = run.options.latency_ms ? *run.options.latency_ms : original.median_ms / run.options.speedup.value_or(2.5);
    // The estimate: the whole model as last timed, scaled by its operators' time, timed alone
    // (which can add up to more or less than the whole model: runtimes overlap and fuse work
    // between operators, and a narrower model does so differently). Near the target the narrowed
    // model is timed whole again, so that narrowing stops where the measured latency meets it.
    double anchor_whole_ms = original.median_ms, anchor_ops_ms = base_ops_ms;
    size_t anchored_at = 0;
    auto estimated_ms = [&](double ops_ms) { return anchor_whole_ms * ops_ms / std::max(anchor_ops_ms, 1e-9); };
    constexpr double kReanchorBand = 1.15;
    const double step_ms = 0.03 * base_ops_ms;
    const int64_t held_out = std::min<int64_t>(run.options.held_out_images, run.calibration.shape[0] / 2);
    const int64_t fit_count = std::min<int64_t>(128, run.calibration.shape[0] - held_out);
    const auto fit = rows({run.calibration}, 0, fit_count);
    const auto ranking = rows({run.calibration}, 0, std::min<int64_t>(32, fit_count));
    const auto held = rows({run.calibration}, run.calibration.shape[0] - held_out, run.calibration.shape[0]);
    const narrow::OutputError output_error(run.base, held[0]);
    std::map<std::string, int64_t> original_extent;
    for (const auto& group : narrow::channel_groups(run.base)) original_extent[group.name()] = group.extent;
    struct KnownProposal {
      std::string signature;
      std::optional<Step> step;  // none: no narrower width saves time
      double saved = 0;
    };
    std::map<std::string, KnownProposal> proposals;  // by group
    double current_ms = operators_ms(run, current);
    double current_error = steps.empty() ? 0.0 : output_error(current);
    for (;;) {
      if (estimated_ms(current_ms) <= kReanchorBand * target_ms && anchored_at != steps.size()) {
        anchor_whole_ms = journaled_whole_model_timing(run, fmt::format("whole_narrowed_step{}", steps.size()), current).median_ms;
        anchor_ops_ms = current_ms;
        anchored_at = steps.size();
      }
      if (estimated_ms(current_ms) <= target_ms) break;
      // A slow machine narrows less, and leaves the search and fine-tuning their time.
      if (run.budgeted() && run.seconds_spent() > kNarrowingBudgetShare * run.options.budget_seconds) {
        run.plan_reduced = true;
        run.report.notes.push_back(fmt::format("narrowing stopped after {} steps, at {:.0f}% of --budget, {:.3f} ms estimated against the "
                                               "target's {:.3f} ms; the per-operator search goes on from there",
                                               steps.size(), 100 * kNarrowingBudgetShare, estimated_ms(current_ms), target_ms));
        break;
      }
      run.progress("narrow", 0, 0, fmt::format("step {}: {:.3f} ms estimated, target {:.3f} ms", steps.size() + 1, estimated_ms(current_ms), target_ms));
      const auto groups = narrow::channel_groups(current);
      std::optional<Proposal> best;
      double best_score = INFINITY;
      for (const auto& group : groups) {
        auto extent = original_extent.find(group.name());
        if (extent == original_extent.end()) continue;
        // A proposal stands while the group's operators are as they were when it was made: the
        // kept channels and refitted weights were chosen on activations a step or more old, and
        // the output error is measured again on the model as it is.
        const std::string signature = group_signature(current, group);
        if (auto known = proposals.find(group.name()); known != proposals.end() && known->second.signature == signature) {
          if (!known->second.step) continue;  // nothing narrower saves time
          graph::Graph narrowed = narrowed_with(current, group, *known->second.step);
          const double error = output_error(narrowed);
          const double score = (error - current_error) / known->second.saved;
          if (score < best_score) {
            best_score = score;
            best = Proposal{*known->second.step, std::move(narrowed), known->second.saved, error};
          }
          continue;
        }
        proposals[group.name()] = {signature, std::nullopt, 0};
        const double now_ms = touched_ms(run, current, group);
        // The widest width that saves a step; else (a small group) the widest that saves half of
        // what its narrowest would, so that no group jumps further than it must.
        std::vector<std::pair<int64_t, double>> savings;
        for (int64_t candidate : narrow::kernel_widths(extent->second, group.extent)) {
          std::vector<int64_t> first(candidate);
          std::iota(first.begin(), first.end(), 0);
          savings.emplace_back(candidate, now_ms - touched_ms(run, narrow::narrow_group(current, group, first), group));
          if (savings.back().second >= step_ms) break;
        }
        double most = 0;
        for (const auto& [candidate, saves] : savings) most = std::max(most, saves);
        if (!(most > 0)) continue;
        const double enough = std::min(step_ms, 0.5 * most);
        const auto chosen = std::find_if(savings.begin(), savings.end(), [&](const auto& s) { return s.second >= enough; });
        const int64_t width = chosen->first;
        const double saved = chosen->second;
        const auto kept = narrow::strongest(narrow::channel_importance(current, group, ranking), width);
        auto refitted = narrow::narrow_and_refit(current, group, kept, fit);
        const double error = output_error(refitted.graph);
        const double score = (error - current_error) / saved;
        Step step{group.name(), kept, consumer_weights(refitted.graph, group)};
        proposals[group.name()] = {signature, step, saved};
        if (score < best_score) {
          best_score = score;
          best = Proposal{std::move(step), std::move(refitted.graph), saved, error};
        }
      }
      // Residual branches dropped (the block becomes its shortcut), operators become the identity.
      for (const auto& drop : narrow::droppable(current)) {
        graph::Graph dropped = narrow::apply_drop(current, drop);
        const double saved = current_ms - operators_ms(run, dropped);
        if (saved <= 0) continue;
        const double error = output_error(dropped);
        const double score = (error - current_error) / saved;
        if (score < best_score) {
          best_score = score;
          best = Proposal{Step{{}, {}, {}, drop}, std::move(dropped), saved, error};
        }
      }
      if (!best) break;  // every group is as narrow as it may be, and nothing drops
      journal_step(run, steps.size(), best->step);
      current = std::move(best->graph);
      current_error = best->error;
      current_ms = operators_ms(run, current);
      steps.push_back(std::move(best->step));
    }
  }
  std::map<std::string, size_t> widths;  // each group's last width
  int drops = 0;
  for (const auto& step : steps) {
    if (step.drop) {
      run.narrowed_groups[step.drop->node] = step.drop->name;
      ++drops;
    } else {
      widths[step.group] = step.kept.size();
    }
  }
  for (const auto& [group, width] : widths) run.narrowed_groups[group] = fmt::format("narrow({}, {})", group, width);
  run.report.narrowed = run.narrowed_groups;
  run.set_base(current);
  const double narrowed_ms = operators_ms(run, current);
  run.summary = fmt::format("{} steps: {} channel groups narrowed, {} branches or operators dropped; operators {:.3f} ms -> {:.3f} ms ({:.2f}x)",
                            steps.size(), widths.size(), drops, base_ops_ms, narrowed_ms, base_ops_ms / std::max(narrowed_ms, 1e-9));
}

}  // namespace gos::search
