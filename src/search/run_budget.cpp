// The run's budget (see run_context.h and budget_plan.h): the time spent across restarts, the
// search stages' deadline, and the unit costs the plan is made from.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "search/run_context.h"

namespace gos::search {

namespace {

// Kept back from the search for timing front points whole (a second or two each).
constexpr double kScreenSeconds = 10;
// And after fine-tuning, besides the test set's evaluations: the side-by-side timing and export.
constexpr double kVerifyAndExportSeconds = 10;
constexpr int64_t kTimedEvaluationSamples = 500;  // one evaluation batch
constexpr int64_t kTimedTrainingBatches = 12;

}  // namespace

// The journal keeps what the finished work took, so a killed run resumes with what an
// uninterrupted one would have left (the work lost in the kill is not counted: it is redone), and
// a finished run rerun ends as it did.
double RunContext::seconds_spent() const { return spent_before_ + seconds_since(start_); }

double RunContext::remaining_seconds() const { return budgeted() ? options.budget_seconds - seconds_spent() : INFINITY; }

void RunContext::record_budget_spent() {
  if (!journal) return;  // loading the data comes first
  journal->put_text("budget", "spent_seconds", exact_text(seconds_spent()));
  budget_recorded_ = Clock::now();
}

double RunContext::after_finetune_seconds() {
  if (!budgeted()) return 0;
  if (!(costs.evaluation_seconds_per_sample > 0)) time_evaluation();
  // Verification evaluates the original and the adapted model on the test set.
  return kVerifyAndExportSeconds + 2 * static_cast<double>(task->test_size()) * costs.evaluation_seconds_per_sample;
}

// The same evaluation twice, the first untimed: the first in a process, or at a new batch size,
// pays for allocations and lazy initialisation, which made a sample look several times dearer
// than it was.
void RunContext::time_evaluation() {
  const int64_t samples = task->validation_size(kTimedEvaluationSamples);
  validation_quality(base, samples);
  const auto begin = Clock::now();
  validation_quality(base, samples);
  costs.evaluation_seconds_per_sample = seconds_since(begin) / static_cast<double>(std::max<int64_t>(1, samples));
}

double RunContext::time_epoch(const graph::Graph& graph, const std::function<void(graph::GraphModule&)>& prepare_student) {
  train::TrainOptions probe = finetune_training(1, 0, prepare_student);
  probe.timing_batches = kTimedTrainingBatches;
  probe.group = nullptr;  // timed in this process alone; planned_epochs divides by the ranks
  const auto timed = task->train(graph, probe, {});
  // Each epoch ends with an evaluation of the validation set.
  const double validation = static_cast<double>(task->validation_size(INT64_MAX)) * costs.evaluation_seconds_per_sample;
  return static_cast<double>(timed.batches_per_epoch) * timed.seconds_per_batch + validation;
}

// The search gets what fine-tuning every epoch asked for leaves, but at least its share
// (budget_plan.h), of the time left less what follows fine-tuning. Journaled as a time spent with
// the budget it was planned for, so that a resumed run keeps the same deadline, and one rerun with
// a larger --budget plans the layers not begun anew.
double RunContext::search_deadline() {
  if (search_deadline_) return *search_deadline_;
  if (!budgeted()) return *(search_deadline_ = INFINITY);
  if (auto known = journal->text("plan", "search_deadline")) {
    const auto planned = nlohmann::json::parse(*known, nullptr, false);
    if (planned.is_object() && planned.value("budget_seconds", 0.0) == options.budget_seconds) {
      return *(search_deadline_ = planned.at("deadline_seconds").get<double>());
    }
  }
  if (remaining_seconds() - kScreenSeconds - kVerifyAndExportSeconds <= 0) {
    search_deadline_ = seconds_spent();  // no time for any search: nothing to measure it with
  } else {
    progress("fidelity", 0, 0, "timing an evaluation and a few batches of fine-tuning to plan the budget");
    if (!(costs.evaluation_seconds_per_sample > 0)) time_evaluation();
    costs.epoch_seconds = time_epoch(base);
    const double after_probes = remaining_seconds() - kScreenSeconds - after_finetune_seconds();
    // Data-parallel fine-tuning on several ranks takes about the epoch timed here over their number.
    search_deadline_ = seconds_spent() + search_allocation(after_probes, options.finetune_epochs * costs.epoch_seconds / ranks());
  }
  journal->put_text("plan", "search_deadline",
                    nlohmann::json{{"budget_seconds", options.budget_seconds},
                                   {"deadline_seconds", *search_deadline_},
                                   {"evaluation_seconds_per_sample", costs.evaluation_seconds_per_sample},
                                   {"epoch_seconds", costs.epoch_seconds}}
                        .dump());
  return *search_deadline_;
}

void RunContext::note_the_machine_load() {
  constexpr double kLoadedCores = 0.5;
  const double load = others.cores();
  report.machine_load = load;
  report.machine_cores = util::machine_cores();
  if (load < kLoadedCores) return;
  const std::string threads = fewest_training_threads_ > 0 && fewest_training_threads_ < report.machine_cores && options.train_threads <= 0
                                  ? fmt::format("; training and evaluation ran on {} thread{} to leave them theirs", fewest_training_threads_,
                                                fewest_training_threads_ == 1 ? "" : "s")
                                  : "";
  report.notes.push_back(fmt::format("the machine was loaded: other processes kept {:.1f} of its {} cores busy on average while this "
                                     "run worked ({:.0f} s){}, so every stage took longer{}",
                                     load, report.machine_cores, others.seconds(), threads,
                                     plan_reduced ? " and the budget bought less of the search or of fine-tuning (the notes above say where)"
                                                  : ""));
}

}  // namespace gos::search
