// Stages 6 and 7, fine-tune and verify: the chosen configuration fine-tuned with knowledge
// distillation from the original, then verified (stage_verify.cpp) and judged against the goal;
// further points of the front while the goal is missed (docs/search.md). With no point worth
// fine-tuning, the original is kept unchanged.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "dist/dist.h"
#include "quant/fake_quant.h"
#include "quant/quant.h"
#include "search/adapted.h"
#include "search/front_choice.h"
#include "search/distributed.h"
#include "search/stages.h"

namespace gos::search {

namespace {

using nlohmann::json;

// An epoch timed on a few batches can come out short on a loaded machine (docs/search.md).
constexpr double kEpochEstimateMargin = 1.15;

// In int8, what quantization-aware training installs in the student: fake quantization of the
// configuration's int8 form, its value ranges calibrated on the recorded images and then
// observed as training goes.
std::function<void(graph::GraphModule&)> fake_quantization(const RunContext& run, const graph::Graph& form) {
  if (!run.int8()) return {};
  auto plan = std::make_shared<quant::QuantPlan>(quant::plan_quantization(form, quant::calibrate(form, run.calibration)));
  return [form, plan](graph::GraphModule& module) { quant::fake_quantize(module, form, *plan, /*observe=*/true); };
}

// The model a configuration fine-tunes: in int8 it trains as its int8 form computes, each
// statement of a candidate a node.
graph::Graph student(const RunContext& run, const Configuration& configuration) {
  graph::Graph adapted = run.configured(configuration);
  if (run.int8()) adapted = quant::quantizable_form(adapted);
  return adapted;
}

// Rank 0's word to the others: fine-tune this configuration so, or stop.
constexpr const char* kFinetuneCommand = "finetune command";

class Attempts {
 public:
  explicit Attempts(RunContext& run) : run_(run), options_(run.options) {}

  void run() {
    int index = run_.chosen_front_index;
    std::set<int> tried;
    for (int attempt = 0; attempt < options_.max_attempts && index >= 0 && !tried.count(index); ++attempt) {
      tried.insert(index);
      graph::Graph adapted;
      run_.stage("finetune", [&] { adapted = finetuned(index); }, run_.attempt_key(index));
      // As recorded when it was done: a fine-tune read back from the journal takes no time.
      last_finetune_seconds_ = run_.report.stages.back().seconds;
      report::Attempt outcome;
      run_.stage("verify", [&] { outcome = verify(index, adapted); }, run_.attempt_key(index));
      auto& attempts = run_.report.attempts;
      attempts.push_back(outcome);
      if (outcome.meets_constraint || !best_adapted_ || better(outcome, attempts[best_attempt_])) {
        best_attempt_ = attempts.size() - 1;
        best_adapted_ = adapted;
      }
      if (outcome.meets_constraint) break;
      const bool too_slow = !meets_latency(outcome), too_inaccurate = outcome.quality_drop > options_.max_acc_drop;
      // Before choosing the next point, which may time configurations whole.
      if (attempt + 1 >= options_.max_attempts) break;
      if (run_.remaining_seconds() < last_finetune_seconds_ + run_.after_finetune_seconds()) {
        run_.report.notes.push_back("the budget left no time to fine-tune another configuration of the front");
        break;
      }
      const auto [next, calibrated_fit] = next_point(tried);
      if (next < 0 || !worth_another_attempt(too_slow, too_inaccurate, calibrated_fit, run_.target_within_reach)) {
        attempts.back().outcome += "; no point of the front is predicted to be both faster and more accurate";
        break;
      }
      index = next;
      const auto ratio = timed_ratio(run_, index);
      const Configuration& point = run_.front[index];
      attempts.back().outcome += fmt::format(
          "; trying a {} point of the front ({}, predicted loss {:.2f}, {:.2f} as the attempts so far calibrate it)",
          point.latency_ms < run_.front[outcome.front_index].latency_ms ? "faster" : "more accurate",
          ratio ? fmt::format("timed whole {:.2f}x faster", 1 / *ratio) : fmt::format("predicted {:.3f} ms", point.latency_ms),
          point.accuracy_loss, calibrated_loss(attempt_outcomes(), point.accuracy_loss));
    }
    const auto& best = run_.report.attempts[best_attempt_];
    run_.report.front[best.front_index].chosen = true;
    run_.adapted = *best_adapted_;
    fill_layers(run_, run_.front[best.front_index]);
    fill_summary(best);
  }

  // Fills the report's per-layer table for the configuration written.
  static void fill_layers(RunContext& run, const Configuration& configuration) {
    for (size_t l = 0; l < run.layers.size(); ++l) {
      const Layer& layer = run.layers[l];
      const int option = configuration.choice[l];
      report::LayerChoice choice;
      choice.node = layer.node->name;
      choice.op_type = layer.node->op_type;
      choice.original_expr = ir::print(layer.original.op);
      choice.latency_ms_before = layer.original_ms;
      choice.macs_before = ir::cost(layer.original.op).macs;
      choice.candidates = static_cast<int>(layer.faster.size());
      choice.predicted_slower = layer.predicted_slower;
      choice.sensitivity_estimated = static_cast<int>(std::count(layer.drop_estimated.begin(), layer.drop_estimated.end(), true));
      double best = INFINITY;
      for (double drop : layer.accuracy_drop) best = std::min(best, drop);
      choice.sensitivity = std::isfinite(best) ? best : 0;
      const bool fp32 = RunContext::keeps_fp32(layer, option);
      const int operator_option = RunContext::operator_option(layer, option);
      if (operator_option == 0) {
        choice.chosen_expr = choice.original_expr;
        choice.derivation = fp32 ? "original in fp32" : "original";
        choice.kept = !fp32;
        choice.latency_ms_after = fp32 ? layer.original_fp32_ms : layer.original_ms;
        choice.macs_after = choice.macs_before;
      } else {
        const size_t s = static_cast<size_t>(operator_option - 1);
        const auto& candidate = RunContext::candidate_of(layer, option);
        choice.kept = false;
        choice.chosen_expr = ir::print(candidate.op);
        choice.derivation = candidate.derivation_text() + (fp32 ? " in fp32" : "");
        choice.latency_ms_after = fp32 ? layer.faster_fp32_ms[layer.selected[s]] : layer.faster_ms[layer.selected[s]];
        choice.macs_after = ir::cost(candidate.op).macs;
        choice.fidelity = layer.distilled[s].error_after;
      }
      run.report.layers.push_back(choice);
    }
  }

 private:
  bool meets_latency(const report::Attempt& attempt) const {
    const auto& verified = run_.verified.at(attempt.front_index);
    if (options_.latency_ms) return verified.adapted.median_ms <= *options_.latency_ms;
    return attempt.speedup >= options_.speedup.value_or(2.5);
  }

  // Meeting the constraint first; else within the accuracy budget and faster; else the smaller drop.
  bool better(const report::Attempt& a, const report::Attempt& b) const {
    if (a.meets_constraint != b.meets_constraint) return a.meets_constraint;
    const bool a_accurate = a.quality_drop <= options_.max_acc_drop, b_accurate = b.quality_drop <= options_.max_acc_drop;
    if (a_accurate != b_accurate) return a_accurate;
    return a_accurate ? a.speedup > b.speedup : a.quality_drop < b.quality_drop;
  }

  // The attempts so far tell how far off the predicted loss is, and timed points how far off the
  // predicted latency. The next point is the untried changed one whose worse fraction of its
  // limit (latency target, accuracy budget) is smallest, so that neither is bought with the
  // other: scaling only the missed quantity by the last attempt jumped between the ends of the
  // front (vgg11s, tcn-ppg). The point is timed whole before it is taken. Returns the point and
  // that fraction (above 1: no point is predicted to meet both).
  std::pair<int, double> next_point(const std::set<int>& tried) {
    for (;;) {
      const auto [best, fit] = best_calibrated_point(tried);
      if (best < 0 || timed_ratio(run_, best) || !time_whole(run_, best)) return {best, fit};
    }
  }

  std::pair<int, double> best_calibrated_point(const std::set<int>& tried) const {
    const double budget = std::max(options_.max_acc_drop, 1e-6);
    const auto outcomes = attempt_outcomes();
    int best = -1;
    double best_fit = 0;
    for (int i = 0; i < static_cast<int>(run_.front.size()); ++i) {
      if (tried.count(i) || !run_.changes_model(run_.front[i])) continue;
      const double fit = std::max(latency_fraction(run_, i), calibrated_loss(outcomes, run_.front[i].accuracy_loss) / budget);
      if (best < 0 || fit < best_fit) best = i, best_fit = fit;
    }
    return {best, best_fit};
  }

  std::vector<AttemptOutcome> attempt_outcomes() const {
    std::vector<AttemptOutcome> outcomes;
    for (const auto& attempt : run_.report.attempts) {
      outcomes.push_back({run_.front[attempt.front_index].accuracy_loss, attempt.quality_drop});
    }
    return outcomes;
  }

  // What the attempts so far say a point of this predicted loss drops once fine-tuned.
  double calibrated_loss(const std::vector<AttemptOutcome>& outcomes, double predicted) const {
    return calibrated_drop(outcomes, predicted, 0.1 * options_.max_acc_drop);
  }

  graph::Graph finetuned(int front_index) {
    graph::Graph adapted = student(run_, run_.front[front_index]);
    const std::string prefix = run_.attempt_key(front_index) + "|";
    Journal& journal = *run_.journal;
    if (journal.text("finetune", prefix + "done").has_value()) {
      for (auto& node : adapted.nodes) {
        if (auto weights = journal.tensors("finetune", prefix + node.name)) node.weights = *weights;
        if (auto op = journal.text("finetune", prefix + node.name + "|op")) node.op = ir::parse(*op);
      }
      run_.summary = "fine-tuned weights read from the run journal";
      return adapted;
    }
    run_.use_training_threads();
    const auto prepare_student = fake_quantization(run_, adapted);
    const auto [epochs, budget] = planned_epochs(front_index, adapted, prepare_student);
    if (run_.distributed()) {
      run_.options.group->broadcast(kFinetuneCommand,
                                    json{{"choice", run_.front[front_index].choice}, {"epochs", epochs}, {"budget", budget}}.dump());
    }
    const train::TrainOptions train_options = run_.finetune_training(epochs, budget, prepare_student);
    train::TrainCallbacks train_callbacks;
    bool diverged = false;
    train_callbacks.on_batch = [&](int64_t done, int64_t total, double loss) {
      diverged = diverged || !std::isfinite(loss);
      // One count over all epochs, so that the ETA is the fine-tuning's, not the epoch's.
      run_.progress("finetune", epoch_ * total + done, epochs * total,
                    fmt::format("epoch {}/{} loss {:.4f}{}", epoch_ + 1, epochs, loss, last_validation_));
    };
    epoch_ = 0;
    last_validation_.clear();
    train_callbacks.on_epoch = [&](const train::EpochReport& epoch) {
      epoch_ = epoch.epoch;
      last_validation_ = fmt::format("  {} after epoch {}", run_.task->epoch_validation(epoch), epoch.epoch);
    };
    auto trained = run_.task->train(adapted, train_options, train_callbacks);
    if (diverged) {
      run_.report.notes.push_back(fmt::format("fine-tuning diverged (the loss became NaN) at learning rate {}; rerun with a "
                                              "smaller --finetune-lr", run_.finetune_lr()));
    }
    if (trained.stopped_by_budget) run_.report.notes.push_back("fine-tuning stopped early to stay within the budget");
    // Folding the batch norms back can give a node a bias it did not have: its op is journaled too.
    journal.atomically([&] {
      for (const auto& node : trained.model.nodes) {
        if (!node.weights.empty()) journal.put_tensors("finetune", prefix + node.name, node.weights);
        if (node.is_compute()) journal.put_text("finetune", prefix + node.name + "|op", ir::print(*node.op));
      }
      journal.put_text("finetune", prefix + "done", "1");
    });
    const auto& last = trained.epochs.empty() ? train::EpochReport{} : trained.epochs.back();
    run_.summary = fmt::format("{} epoch(s){}; {}", trained.epochs.size(),
                               epochs < options_.finetune_epochs ? fmt::format(" of the {} asked for, to fit the budget", options_.finetune_epochs) : "",
                               run_.task->epoch_validation(last));
    return trained.model;
  }

  // The epochs that fit what is left of the budget, from a few batches of this model timed now and
  // 15% more for what those batches do not show: a schedule that ends is worth more than one
  // stopped halfway. Should the estimate still be short, training stops at the budget near the end
  // of its schedule, where the rate has nearly reached zero. At least one epoch: a budget the search
  // overran still gets a fine-tuned model (15% over the epoch's estimate at most). Journaled per
  // attempt, so that a resumed run trains as the interrupted one planned. Returns the epochs and
  // the seconds fine-tuning may take (0: no limit).
  std::pair<int, double> planned_epochs(int front_index, const graph::Graph& adapted,
                                        const std::function<void(graph::GraphModule&)>& prepare_student) {
    if (!run_.budgeted()) return {options_.finetune_epochs, 0.0};
    const std::string key = "epochs|" + run_.attempt_key(front_index);
    double epoch_seconds = 0;
    int epochs = 0;
    if (auto known = run_.journal->text("plan", key)) {
      const json plan = json::parse(*known);
      epochs = plan.at("epochs").get<int>();
      epoch_seconds = plan.at("epoch_seconds").get<double>();
    } else {
      run_.progress("finetune", 0, 0, "timing a few batches to plan the epochs");
      // Data-parallel over several ranks, an epoch takes about this over their number.
      epoch_seconds = run_.time_epoch(adapted, prepare_student) / run_.ranks();
      const double seconds = std::max(0.0, run_.remaining_seconds() - run_.after_finetune_seconds());
      epochs = epochs_that_fit(options_.finetune_epochs, kEpochEstimateMargin * epoch_seconds, seconds);
      run_.journal->put_text("plan", key, json{{"epochs", epochs}, {"epoch_seconds", epoch_seconds}}.dump());
      if (epochs < options_.finetune_epochs) {
        run_.report.notes.push_back(fmt::format("attempt {} was fine-tuned for {} of the {} epochs asked for: an epoch took {:.0f} s "
                                                "here and {:.0f} s of the budget were left",
                                                run_.report.attempts.size() + 1, epochs, options_.finetune_epochs, epoch_seconds, seconds));
      }
    }
    if (epochs < options_.finetune_epochs) run_.plan_reduced = true;
    const double left = std::max(0.0, run_.remaining_seconds() - run_.after_finetune_seconds());
    return {epochs, epochs == 1 ? std::max(left, kEpochEstimateMargin * epoch_seconds) : std::max(left, 1.0)};
  }

  report::Attempt verify(int front_index, const graph::Graph& adapted) {
    const AdaptTask& task = *run_.task;
    const Verified v = verified_models(run_, front_index, adapted);
    run_.verified[front_index] = v;
    report::Attempt attempt;
    attempt.front_index = front_index;
    attempt.speedup = v.original.median_ms / v.adapted.median_ms;
    attempt.quality_drop = task.drop(v.original_accuracy, v.adapted_accuracy);
    const bool accurate = attempt.quality_drop <= options_.max_acc_drop;
    attempt.meets_constraint = accurate && meets_latency(attempt);
    attempt.changes = run_.derivations(run_.front[front_index]);
    if (v.original.noisy() || v.adapted.noisy()) run_.report.notes.push_back(unsteady_timing_note(run_, v, attempt.speedup));
    attempt.outcome = fmt::format("{:.2f}x faster ({:.3f} -> {:.3f} ms), {} {} -> {} ({:+.2f} {})", attempt.speedup,
                                  v.original.median_ms, v.adapted.median_ms, task.metric_name(), task.format_quality(v.original_accuracy),
                                  task.format_quality(v.adapted_accuracy), v.adapted_accuracy - v.original_accuracy, task.drop_unit());
    if (v.fp32) {
      attempt.outcome = fmt::format("int8 {:.2f}x faster than the original's int8 ({:.3f} -> {:.3f} ms) and {:.2f}x than its fp32 "
                                    "({:.3f} ms); {} fp32 original {} -> int8 adapted {} ({:+.2f} {}; the original's int8 {}, the "
                                    "adapted model's fp32 {})",
                                    attempt.speedup, v.original.median_ms, v.adapted.median_ms, v.fp32->original.median_ms / v.adapted.median_ms,
                                    v.fp32->original.median_ms, task.metric_name(), task.format_quality(v.original_accuracy),
                                    task.format_quality(v.adapted_accuracy), v.adapted_accuracy - v.original_accuracy, task.drop_unit(),
                                    task.format_quality(v.fp32->original_int8_accuracy), task.format_quality(v.fp32->adapted_accuracy));
    }
    run_.summary = attempt.outcome;
    return attempt;
  }

  void fill_summary(const report::Attempt& best) {
    const Verified& v = run_.verified.at(best.front_index);
    const AdaptTask& task = *run_.task;
    auto& report = run_.report;
    report.original = run_.model_summary(run_.model, v.original, v.original_accuracy);
    report.adapted = run_.model_summary(run_.adapted, v.adapted, v.adapted_accuracy);
    if (v.fp32) {
      report.points = {{"original", "fp32", run_.model_summary(run_.model, v.fp32->original, v.original_accuracy)},
                       {"original", "int8", run_.model_summary(run_.model, v.original, v.fp32->original_int8_accuracy)},
                       {"adapted", "fp32", run_.model_summary(run_.adapted, v.fp32->adapted, v.fp32->adapted_accuracy)},
                       {"adapted", "int8", run_.model_summary(run_.adapted, v.adapted, v.adapted_accuracy)}};
    }
    report.speedup = best.speedup;
    report.quality_drop = best.quality_drop;
    report.constraint_met = best.meets_constraint;
    const std::string speed =
        v.fp32 ? fmt::format("in int8 runs {:.2f}x faster on {} than the original's int8 form ({:.3f} -> {:.3f} ms; {:.2f}x faster "
                             "than the fp32 original) with test {} {} (fp32 original) -> {} (the original's int8: {}). ",
                             best.speedup, report.backend, v.original.median_ms, v.adapted.median_ms,
                             v.fp32->original.median_ms / v.adapted.median_ms, task.metric_name(), task.format_quality(v.original_accuracy),
                             task.format_quality(v.adapted_accuracy), task.format_quality(v.fp32->original_int8_accuracy))
               : fmt::format("runs {:.2f}x faster on {} ({:.3f} -> {:.3f} ms) with test {} {} -> {}. ", best.speedup, report.backend,
                             v.original.median_ms, v.adapted.median_ms, task.metric_name(), task.format_quality(v.original_accuracy),
                             task.format_quality(v.adapted_accuracy));
    report.verdict = options_.model_label + " " + speed +
                     (best.meets_constraint ? fmt::format("This meets the goal ({}).", run_.goal())
                                            : fmt::format("This misses the goal ({}); it is the closest configuration found.{}",
                                                          run_.goal(), run_.missed_goal_advice()));
  }

  RunContext& run_;
  const AdaptOptions& options_;
  int epoch_ = 0;
  double last_finetune_seconds_ = 0;
  std::string last_validation_;
  size_t best_attempt_ = 0;
  std::optional<graph::Graph> best_adapted_;
};

// No configuration worth fine-tuning (none replaces a layer, or none timed faster whole): the
// result is the original, unchanged (speedup 1 and no loss by construction), so that a run that
// found nothing loses nothing, and nothing more of the budget is spent on it: the original's test
// quality is reported only when an earlier attempt measured it.
void keep_the_original(RunContext& run) {
  run.adapted = run.model;
  Attempts::fill_layers(run, Configuration{std::vector<int>(run.layers.size(), 0)});
  const auto known = run.journal->text("verify", "original_accuracy");
  run.report.original = run.model_summary(run.model, run.original_timing, known ? std::stod(*known) : NAN);
  if (!known) run.report.original.accuracy = run.report.original.mae = std::nullopt;
  run.report.adapted = run.report.original;
  run.report.speedup = 1;
  run.report.quality_drop = 0;
  run.report.constraint_met = false;
  run.report.verdict = fmt::format("{} is written unchanged: {}; nothing was fine-tuned. This misses the goal ({}).{}",
                                   run.options.model_label, run.why_unchanged, run.goal(), run.missed_goal_advice());
}

}  // namespace

void follow_rank_zero(RunContext& run) {
  for (;;) {
    const json command = json::parse(run.options.group->broadcast(kFinetuneCommand, ""));
    if (command.contains("done")) {
      run.report.constraint_met = command.at("done").get<bool>();
      return;
    }
    run.use_training_threads();
    const graph::Graph adapted = student(run, Configuration{command.at("choice").get<std::vector<int>>()});
    const auto options =
        run.finetune_training(command.at("epochs").get<int>(), command.at("budget").get<double>(), fake_quantization(run, adapted));
    run.task->train(adapted, options, {});
  }
}

void release_the_other_ranks(RunContext& run) {
  if (run.distributed()) run.options.group->broadcast(kFinetuneCommand, json{{"done", run.report.constraint_met}}.dump());
}

void attempts(RunContext& run) {
  if (run.chosen_front_index < 0) {
    keep_the_original(run);
    return;
  }
  Attempts(run).run();
}

}  // namespace gos::search
