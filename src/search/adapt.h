#pragma once
// The public face of `gos adapt`: a trained model made faster on a target backend within an
// accuracy budget (classifiers on images; pulse-rate regressors on ppg:DIR data, where the budget
// is BPM of mean absolute error: adapt_task.h). Stages (docs/search.md): profile the operators on the backend; derive
// candidates and keep the measured-faster ones; record each operator's inputs on calibration
// images and distil every kept candidate (its fidelity); measure each candidate's effect on
// validation accuracy alone (sensitivity); NSGA-II over per-layer choices; fine-tune the chosen
// configuration with knowledge distillation; verify it side by side with the original (the next
// front point when it misses the constraint); export ONNX, TorchScript and the report. Every
// finished piece of work is journaled in OUT/run.sqlite, so a restarted run resumes.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "data/data.h"
#include "graph/graph.h"
#include "measure/measure.h"
#include "report/report.h"

namespace gos::dist {
class Group;
}

namespace gos::search {

struct AdaptOptions {
  std::string model_label;  // what the report calls the model (the MODEL argument)
  std::string data = "fashion-mnist";  // a data::parse_data_spec text; float targets make it a regression
  // How the samples reach the model (docs/data.md): images:DIR resized (input.resize) and cropped
  // to the model's input, each channel normalised by input.mean and input.std as fed, never
  // written into the model. input.shape is the model's; input.cache_dir keeps decoded images
  // (the CLI puts them beside the latency cache; empty: not kept).
  data::InputFormat input;
  bool augment = true;  // fine-tuning batches of images shifted and flipped at random
  // The exported fp32 files normalise their input themselves: input.mean and input.std become
  // their first nodes, so they read samples as they are before normalisation.
  bool fold_preprocessing = false;
  std::string target = "host";
  measure::Backend backend = measure::Backend::Mobile;
  // int8: the search in int8 (docs/quantization.md): operators and models timed as the backend's
  // int8 form runs them, candidates' effects measured fake-quantized, fine-tuning
  // quantization-aware, and the result verified and written in int8 beside its fp32 form.
  measure::Precision precision = measure::Precision::Fp32;
  int threads = 1;                   // for latency: the target's cores
  int train_threads = 0;             // for recording, distillation and fine-tuning; 0: every core
  std::optional<double> speedup;     // the constraint: at least this measured speedup,
  std::optional<double> latency_ms;  // or at most this whole-model latency (2.5x when neither is set)
  double max_acc_drop = 0.5;         // accuracy points; regression (ppg data): BPM of MAE added
  // The global average pooling averages every Nth position (along each pooled axis) and nothing
  // computes the others (graph::subsample_pooled_positions); the search starts from that model,
  // and the teacher and every comparison stay the model as given. 1: every position.
  int subsample = 1;
  // Channels shared by several operators narrowed first (docs/search.md): "search" (gos's own:
  // measured-latency greedy steps, channels kept by their contribution to the consumers' outputs,
  // consumers refitted by least squares), "l1:F" (the plain baseline: every channel group keeps
  // the fraction F by weight norm, nothing refitted, no per-operator search), or empty: none.
  std::string narrow;
  int depth = 1;                     // rule applications per candidate
  std::vector<std::string> rules;    // the rules to use; empty: all
  int max_layers = 0;                // search only this many of the hottest operators; 0: all
  // Distilled per layer at most. The fastest candidates of the latency/error front come first,
  // and 6 left no room for the most faithful ones; 12 found the same front as 24 on vgg11s
  // (figures in docs/search.md).
  int candidates_per_layer = 12;
  int calibration_images = 256;      // training images whose activations are recorded
  int held_out_images = 64;          // of them, kept out of distillation to measure fidelity
  int distill_steps = 300;
  // Distilled candidates whose normalised output error on held-out inputs stays above this are
  // left out of the search: they reproduce so little of their operator that they act as a deleted
  // layer, which fine-tuning did not recover (docs/search.md). Unset: none is left out.
  std::optional<double> max_candidate_error;
  int sensitivity_images = 2000;     // validation images for the effect of each candidate alone
  int finetune_epochs = 8;
  // Peak rate and optimizer; unset: the task's recipe (classifiers SGD at 0.02, with batch norms
  // restored for fine-tuning, docs/search.md; the pulse-rate regressor AdamW at 1e-3).
  std::optional<double> finetune_lr;
  std::optional<std::string> finetune_optimizer;
  // Weight of the labels in the fine-tuning loss; the original's outputs take the rest. Unset: the
  // task's default (train::Distillation's alpha).
  std::optional<double> finetune_label_weight;
  int max_attempts = 3;              // configurations fine-tuned before giving up on the constraint
  double budget_seconds = 0;         // the whole run; 0: none
  uint64_t seed = 1;
  std::filesystem::path out = "gos-out";
  std::filesystem::path cache;       // the latency cache; empty: measure::default_cache_path()
  // Time every candidate even when the latency cache holds a predictor (which otherwise leaves
  // those it puts far slower than their operator untimed: docs/latency.md).
  bool time_every_candidate = false;
  // Start over: the journal of an earlier run in `out` (and what it wrote) is removed first.
  bool restart = false;
  // A distributed run (docs/distributed.md): every rank calls adapt with the same options and its
  // group. Rank 0 times, owns the journal and writes the files; fidelity and sensitivity units
  // are spread over the ranks and fine-tuning is data-parallel. Null: this process alone.
  dist::Group* group = nullptr;
};

// Throws SearchError when the options cannot give a result (a constraint out of range, a budget
// too small to fine-tune at all), before any work is done.
void check_options(const AdaptOptions& options);

struct AdaptCallbacks {
  // A stage's progress: (stage, done, total, detail); total 0 when unknown.
  std::function<void(const std::string& stage, int64_t done, int64_t total, const std::string& detail)> on_progress;
  // A stage finished (or was found finished in the journal), with a one-line summary.
  std::function<void(const std::string& stage, const std::string& summary)> on_stage;
  // Something the user should know before the stages' lines (e.g. that no latency predictor helps).
  std::function<void(const std::string& note)> on_note;
};

struct AdaptResult {
  report::AdaptReport report;
  graph::Graph adapted;
};

// Runs (or resumes) the whole pipeline on `model` (batch norms folded) and writes OUT/adapted.onnx,
// OUT/adapted.pt, OUT/report.json and OUT/report.html. Throws SearchError (nothing searchable,
// settings differing from the journal's run), data::DataError, measure::MeasureError.
AdaptResult adapt(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks = {});

// "30m", "1h30m", "90s", "2h", "45" (seconds) as seconds; throws SearchError otherwise.
double parse_duration(const std::string& text);

}  // namespace gos::search
