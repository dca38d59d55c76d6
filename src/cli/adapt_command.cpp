// `gos adapt MODEL --data DATA`: the main job. Makes a trained model faster on the target backend
// within an accuracy budget and writes the adapted model and a report (search/adapt.h).
#include <fmt/core.h>
#include <fmt/format.h>
#include <algorithm>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/device_option.h"
#include "dist/dist.h"
#include "cli/commands.h"
#include "cli/data_options.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "data/data.h"
#include "measure/measure.h"
#include "report/report.h"
#include "search/adapt.h"
#include "search/candidates.h"
#include "util/interrupt.h"
#include "util/progress.h"

namespace gos::cli {

namespace {

struct AdaptCommandOptions {
  std::string model;
  std::string backend = "mobile";
  std::string precision = "fp32";
  std::string budget;
  double speedup = 0;
  double latency_ms = 0;
  std::optional<double> max_acc_drop, max_mae_increase;
  bool json = false;
  bool quiet = false;
  bool no_augment = false;
  std::string device;  // --device: a paired board takes every timing
  bool distributed = false;  // --distributed: join the process group torchrun's variables describe
  DataOptions data;
  search::AdaptOptions adapt;
};

// One progress line per stage on a terminal; a line with the stage's summary when it ends.
class StageReporter {
 public:
  explicit StageReporter(bool chatty) : chatty_(chatty) {}

  void progress(const std::string& stage, int64_t done, int64_t total, const std::string& detail) {
    if (!line_ || stage != stage_ || total != total_) {
      line_ = std::make_unique<util::Progress>(stage, total, chatty_);
      stage_ = stage;
      total_ = total;
    }
    line_->update(done, detail);
  }

  // Ends the progress line so that what follows starts on a line of its own.
  void interrupted() {
    if (line_) line_->finish();
    line_.reset();
  }

  void finished(const std::string& stage, const std::string& summary) {
    if (line_) line_->finish();
    line_.reset();
    if (chatty_) fmt::print(stderr, "{:<12} {}\n", stage, summary);
  }

 private:
  bool chatty_;
  std::unique_ptr<util::Progress> line_;
  std::string stage_;
  int64_t total_ = -1;
};

void print_summary(const report::AdaptReport& report, const std::filesystem::path& out) {
  fmt::print("{}\n\n", report.verdict);
  const bool accuracy = report.metric == "accuracy";
  fmt::print("{:<16} {:>10} {:>12} {:>14} {:>10}\n", "", accuracy ? "accuracy" : "MAE", "median ms", "MACs", "params");
  auto row = [&](const char* name, const report::ModelSummary& model) {
    // A run that found nothing to fine-tune spends no time measuring the unchanged model.
    std::string quality = "-";
    if (accuracy && model.accuracy) quality = fmt::format("{:.2f}%", *model.accuracy);
    if (!accuracy && model.mae) quality = fmt::format("{:.3f}", *model.mae);
    fmt::print("{:<16} {:>10} {:>12.4f} {:>14} {:>10}\n", name, quality, model.median_ms, grouped(model.macs), grouped(model.params));
  };
  if (report.points.empty()) {
    row("original", report.original);
    row("adapted", report.adapted);
  }
  for (const auto& point : report.points) row(fmt::format("{} {}", point.model, point.precision).c_str(), point.summary);
  // With no attempt the adapted model is the original: nothing was measured side by side.
  const std::string how = report.attempts.empty() ? "the original, unchanged"
                                                  : fmt::format("measured side by side on {}, {} thread{}", report.backend,
                                                                report.threads, report.threads == 1 ? "" : "s");
  fmt::print("\nspeedup {:.2f}x{} ({}), {}\n", report.speedup, report.points.empty() ? "" : " in int8 over the original's int8 form", how,
             accuracy ? fmt::format("accuracy drop {:+.2f} points", report.quality_drop)
                      : fmt::format("MAE increase {:+.3f}{}", report.quality_drop, report.data.starts_with("ppg:") ? " BPM" : ""));
  if (!report.narrowed.empty()) fmt::print("{} channel groups narrowed or branches dropped:\n", report.narrowed.size());
  for (const auto& [group, derivation] : report.narrowed) fmt::print("  {}\n", derivation);
  int changed = 0;
  for (const auto& layer : report.layers) changed += !layer.kept;
  if (!report.layers.empty() || report.narrowed.empty()) fmt::print("{} of {} searched operators replaced:\n", changed, report.layers.size());
  for (const auto& layer : report.layers) {
    if (layer.kept) continue;
    fmt::print("  {:<36} {:<40} {:.4f} -> {:.4f} ms\n", layer.node, layer.derivation, layer.latency_ms_before, layer.latency_ms_after);
  }
  if (!report.classes.empty()) {
    const auto worst = std::max_element(report.classes.begin(), report.classes.end(), [](const auto& a, const auto& b) {
      return a.original - a.adapted < b.original - b.adapted;
    });
    fmt::print("the class that lost most: {} {:.2f}% -> {:.2f}% of {} test images (every class in the report)\n", worst->name,
               worst->original, worst->adapted, worst->images);
  }
  for (const auto& note : report.notes) fmt::print("note: {}\n", note);
  fmt::print("\nreport: {}  (and report.json, adapted.onnx, adapted.pt{})\n", (out / "report.html").string(),
             report.precision == "int8" ? ", adapted.int8.onnx, adapted.int8.pt" : "");
}

int run_adapt(AdaptCommandOptions options) {
  search::AdaptOptions& adapt = options.adapt;
  if (adapt.target != "host") {
    throw search::SearchError("target '" + adapt.target + "' is not known; gos measures on this machine (--target host) or on a paired board (--device NAME)");
  }
  adapt.backend = measure::backend_named(options.backend);
  adapt.precision = measure::precision_named(options.precision);
  if (options.speedup != 0) adapt.speedup = options.speedup;
  if (options.latency_ms != 0) adapt.latency_ms = options.latency_ms;
  if (!options.budget.empty()) adapt.budget_seconds = search::parse_duration(options.budget);
  adapt.data = options.data.data;
  adapt.input = input_format(options.data);
  adapt.input.cache_dir = default_image_cache(adapt.cache.string());
  adapt.augment = !options.no_augment;
  // The quality budget is counted in the task's unit: accuracy points, or the targets' unit of mean
  // absolute error (BPM for pulse rate).
  const bool regression = data::objective_of(data::parse_data_spec(adapt.data)) == data::Objective::Regression;
  if (regression && options.max_acc_drop) {
    throw search::SearchError("--data " + adapt.data + " holds regression targets: give --max-mae-increase, not --max-acc-drop");
  }
  if (!regression && options.max_mae_increase) {
    throw search::SearchError("--max-mae-increase is for regression targets (ppg:DIR, or arrays with float y); for " + adapt.data +
                              " give --max-acc-drop");
  }
  constexpr double kDefaultMaxMaeIncrease = 0.1;  // BPM: issue 7's goal
  adapt.max_acc_drop = regression ? options.max_mae_increase.value_or(kDefaultMaxMaeIncrease) : options.max_acc_drop.value_or(adapt.max_acc_drop);
  adapt.model_label = options.model;
  search::check_options(adapt);

  if (!options.device.empty() && adapt.precision != measure::Precision::Fp32) {
    throw search::SearchError("--precision int8 with --device is not supported yet (the int8 verification times saved files, which do not cross to a board): adapt in fp32 on the board, or in int8 here");
  }

  auto imported = load_model(options.model, /*allow_unsupported=*/false, options.data.input_shape);
  // A distributed run (docs/distributed.md): --distributed, or torchrun's RANK and WORLD_SIZE set.
  std::unique_ptr<dist::Group> group;
  if (const auto launch = dist::launch_from_environment(options.distributed); launch && launch->world_size > 1) {
    group = std::make_unique<dist::Group>(*launch, dist::default_timeout());
    adapt.group = group.get();
  }
  const bool root = !group || group->root();
  // Rank 0 speaks for the run; the others say only what stops them.
  const bool chatty = !options.json && !options.quiet && root;
  // Every timing of the run (profile, candidates, narrowing, screen, verification) on the board,
  // cached and journaled under its fingerprint. Only rank 0 times.
  const auto on_device = use_device(root ? options.device : "");
  if (on_device && chatty) fmt::print(stderr, "timing on device {}: {}\n", options.device, measure::machine_fingerprint());
  StageReporter reporter(chatty);
  search::AdaptCallbacks callbacks;
  callbacks.on_progress = [&](const std::string& stage, int64_t done, int64_t total, const std::string& detail) {
    reporter.progress(stage, done, total, detail);
  };
  callbacks.on_stage = [&](const std::string& stage, const std::string& summary) { reporter.finished(stage, summary); };
  callbacks.on_note = [&](const std::string& note) {
    if (chatty) fmt::print(stderr, "note: {}\n", note);
  };
  // SIGINT or SIGTERM stops the run at the next unit of work, its journal consistent.
  util::watch_for_interrupts();
  std::optional<search::AdaptResult> adapted;
  try {
    adapted = search::adapt(imported.graph, adapt, callbacks);
  } catch (const std::exception& error) {
    // A signal may also end a child process first (ONNX Runtime's runner), whose failure then
    // arrives as another error: the signal is what the user needs to hear about.
    if (const int signal = util::interrupt_signal()) {
      reporter.interrupted();
      fmt::print(stderr, "gos: stopped by {}; the finished work is journaled in {}: rerun the same command to resume\n",
                 util::signal_name(signal), (adapt.out / "run.sqlite").string());
      return 128 + signal;
    }
    throw;
  }
  const auto& result = *adapted;
  if (!root) return result.report.constraint_met ? kSuccess : kFailure;
  if (options.json) {
    fmt::print("{}\n", report::to_json(result.report).dump(2));
  } else if (!options.quiet) {
    print_summary(result.report, adapt.out);
  }
  return result.report.constraint_met ? kSuccess : kFailure;
}

}  // namespace

Action add_adapt_command(CLI::App& app) {
  auto options = std::make_shared<AdaptCommandOptions>();
  auto& a = options->adapt;
  auto* command = app.add_subcommand("adapt",
                                     "Make a trained model faster on the target: search cheaper operators, fine-tune with "
                                     "distillation, verify, and write OUT/adapted.onnx, OUT/adapted.pt and OUT/report.{json,html}. "
                                     "Rerun the same command to resume an interrupted run.");
  command->add_option("model", options->model, "ONNX file (or zoo model name)")->required();
  add_data_options(*command, options->data);
  command->add_flag("--no-augment", options->no_augment, "fine-tune without random shifts and flips of the images");
  command->add_flag("--fold-preprocessing", a.fold_preprocessing,
                    "write --mean/--std into adapted.onnx and adapted.pt as their first nodes (they then read unnormalised samples)");
  command->add_option("--target", a.target, "where latency is measured (host: this machine)")->capture_default_str();
  command->add_option("--backend", options->backend, "torch, mobile or ort")->capture_default_str();
  command->add_option("--precision", options->precision,
                      "fp32, or int8: the search in int8 (timed as the backend's int8 form runs, quantization-aware fine-tuning; mobile "
                      "and ort), verified against the original's post-training int8 form")
      ->capture_default_str();
  command->add_option("--threads", a.threads, "threads for latency (the target's cores)")->capture_default_str();
  auto* speedup = command->add_option("--speedup", options->speedup, "wanted measured speedup (default 2.5)");
  command->add_option("--latency-ms", options->latency_ms, "wanted whole-model latency instead of a speedup")->excludes(speedup);
  command->add_option("--max-acc-drop", options->max_acc_drop, "accuracy points that may be lost (default 0.5)");
  command->add_option("--max-mae-increase", options->max_mae_increase,
                      "regression (ppg:DIR, arrays with float y): mean absolute error that may be added, in the targets' unit (default 0.1)");
  command->add_option("--finetune-epochs", a.finetune_epochs, "epochs of fine-tuning with distillation")->capture_default_str();
  command->add_option("--finetune-lr", a.finetune_lr, "peak learning rate of fine-tuning (default: 0.02, regression 0.001)");
  command->add_option("--finetune-label-weight", a.finetune_label_weight,
                      "weight of the labels in the fine-tuning loss, 0..1; the original's outputs take the rest (default 0.1)")
      ->check(CLI::Range(0.0, 1.0));
  command->add_option("--optimizer", a.finetune_optimizer, "sgd or adamw for fine-tuning (default: sgd, regression adamw)");
  command->add_option("--budget", options->budget, "time for the whole run, e.g. 30m or 1h30m (default: none)");
  command->add_option("--subsample", a.subsample,
                      "compute only every Nth position (time step, pixel) of the features the global average pooling "
                      "averages; the layers before it are strided or their dilations divided to match (1: all)")
      ->capture_default_str();
  command->add_option("--narrow", a.narrow,
                      "narrow channels shared by several operators first: 'search' (measured-latency steps, channels kept "
                      "by what their consumers read of them, consumers refitted by least squares, then the per-operator "
                      "search) or 'l1:F' (the plain pruning baseline: every channel group keeps the fraction F by weight "
                      "norm, no per-operator search)");
  command->add_option("--depth", a.depth, "rule applications per candidate (1 or 2)")->capture_default_str();
  command->add_option("--rules", a.rules, "rules to use (default: all)");
  command->add_option("--max-layers", a.max_layers, "search only this many of the hottest operators (0: all)")->capture_default_str();
  command->add_option("--candidates-per-layer", a.candidates_per_layer, "candidates distilled per operator")->capture_default_str();
  command->add_option("--calibration-images", a.calibration_images, "training images whose activations are recorded")->capture_default_str();
  command->add_option("--held-out-images", a.held_out_images, "of them, kept out to measure fidelity")->capture_default_str();
  command->add_option("--distill-steps", a.distill_steps, "Adam steps per candidate")->capture_default_str();
  command->add_option("--max-candidate-error", a.max_candidate_error,
                      "leave out of the search the distilled candidates whose held-out output error stays above this (1: no better than "
                      "zeros; default: none left out)");
  command->add_option("--sensitivity-images", a.sensitivity_images, "validation images for each candidate's accuracy effect")->capture_default_str();
  command->add_option("--max-attempts", a.max_attempts, "configurations fine-tuned at most")->capture_default_str();
  command->add_option("--train-threads", a.train_threads, "threads for training (0: every core)")->capture_default_str();
  command->add_option("--seed", a.seed, "makes the run repeatable")->capture_default_str();
  command->add_option("-o,--out", a.out, "output folder (holds the run journal: rerun to resume)")->capture_default_str();
  command->add_option("--cache", a.cache, "latency cache (default: $GOS_CACHE or ~/.cache/gos/latency.sqlite)");
  command->add_option("--device", options->device, kDeviceHelp);
  command->add_flag("--time-every-candidate", a.time_every_candidate,
                    "time candidates the cache's latency predictor puts far slower than their operator too");
  command->add_flag("--distributed", options->distributed,
                    "join a process group as torchrun, Slurm or Kubernetes launch it (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE; "
                    "implied when RANK and WORLD_SIZE are set): rank 0 times, journals and writes, the ranks share the fidelity and "
                    "sensitivity units and fine-tune data-parallel (docs/distributed.md)");
  command->add_flag("--restart", a.restart,
                    "start over: remove the run journal of an earlier run in the output folder (and what it wrote) first");
  command->add_flag("--json", options->json, "print only the final report as JSON");
  command->add_flag("--quiet", options->quiet, "print nothing but errors");
  return [options] { return run_adapt(*options); };
}

}  // namespace gos::cli
