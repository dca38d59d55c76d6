// `gos adapt`: the stages in order over one run context (see adapt.h, stages.h and docs/search.md).
#include "search/adapt.h"

#include <fmt/format.h>

#include <algorithm>
#include <regex>

#include "rules/rules.h"
#include "dist/dist.h"
#include "search/distributed.h"
#include "search/stages.h"

namespace gos::search {

void check_options(const AdaptOptions& options) {
  if (options.speedup && options.latency_ms) throw SearchError("give --speedup or --latency-ms, not both");
  if (options.speedup && !(*options.speedup > 1)) throw SearchError("--speedup must be above 1 (it is the wanted ratio of latencies, e.g. 2.5)");
  if (options.latency_ms && !(*options.latency_ms > 0)) throw SearchError("--latency-ms must be a positive number of milliseconds");
  if (!(options.max_acc_drop >= 0)) throw SearchError("--max-acc-drop (or --max-mae-increase) must be zero or more");
  if (options.budget_seconds < 0 || (options.budget_seconds > 0 && options.budget_seconds < 60)) {
    throw SearchError("a budget under a minute cannot fine-tune anything; give at least --budget 5m (or none)");
  }
  if (options.finetune_epochs < 1) throw SearchError("--finetune-epochs must be at least 1");
  if (options.finetune_lr && !(*options.finetune_lr > 0)) throw SearchError("--finetune-lr must be positive");
  if (options.finetune_optimizer && *options.finetune_optimizer != "sgd" && *options.finetune_optimizer != "adamw") {
    throw SearchError("--optimizer must be sgd or adamw, not '" + *options.finetune_optimizer + "'");
  }
  if (options.candidates_per_layer < 1) throw SearchError("--candidates-per-layer must be at least 1");
  if (options.max_candidate_error && !(*options.max_candidate_error > 0)) throw SearchError("--max-candidate-error must be positive (a normalised error; 1 is as far off as a zero output)");
  if (!options.narrow.empty() && options.narrow != "search") {
    static const std::regex fraction(R"(^l1:(0?\.\d+|1(\.0*)?)$)");
    if (!std::regex_match(options.narrow, fraction) || std::stod(options.narrow.substr(3)) <= 0) {
      throw SearchError("--narrow takes search or l1:F with F the fraction of channels kept, e.g. l1:0.5; not '" + options.narrow + "'");
    }
  }
  if (options.subsample < 1) throw SearchError("--subsample must be at least 1 (every position)");
  if (options.depth < 1 || options.depth > 2) throw SearchError("--depth must be 1 or 2");
  if (options.calibration_images < 2 || options.held_out_images < 1 || options.held_out_images >= options.calibration_images) {
    throw SearchError("--calibration-images must exceed --held-out-images, which must be at least 1");
  }
  if (options.fold_preprocessing && options.input.mean.empty() && options.input.std.empty()) {
    throw SearchError("--fold-preprocessing puts the normalisation into the files: give --mean and --std (or --preprocess imagenet)");
  }
  if (options.fold_preprocessing && options.precision == measure::Precision::Int8) {
    throw SearchError("--fold-preprocessing is for the fp32 files; with --precision int8, normalise the input in your pipeline");
  }
  if (options.precision == measure::Precision::Int8 && options.backend == measure::Backend::Torch) {
    throw SearchError("--precision int8 runs on mobile (quantized TorchScript) and ort (QDQ ONNX); torch has no int8 form");
  }
  if (options.max_attempts < 1) throw SearchError("--max-attempts must be at least 1");
  if (options.max_layers < 0) throw SearchError("--max-layers must be zero (all) or more");
  if (options.threads < 1) throw SearchError("--threads must be at least 1 (the target's cores latency is measured with)");
  if (options.train_threads < 0) throw SearchError("--train-threads must be zero (every core) or more");
  if (options.distill_steps < 0) throw SearchError("--distill-steps must be zero (the decomposed weights as they are) or more");
  if (options.sensitivity_images < 1) throw SearchError("--sensitivity-images must be at least 1");
  const auto known = rules::rule_names();
  for (const auto& rule : options.rules) {
    if (std::find(known.begin(), known.end(), rule) == known.end()) {
      std::string names;
      for (const auto& name : known) names += (names.empty() ? "" : ", ") + name;
      throw SearchError("unknown rule '" + rule + "'; the rules are " + names);
    }
  }
}

AdaptResult adapt(const graph::Graph& model, const AdaptOptions& options, const AdaptCallbacks& callbacks) {
  check_options(options);
  RunContext run(model, options, callbacks);
  try {
    run.open();
    const auto no_timing_here = refuse_timing_off_root(run);
    if (run.distributed() && run.root()) {
      run.report.notes.push_back(fmt::format("run on {} ranks: rank 0 timed everything, the fidelity and sensitivity units were spread "
                                             "over the ranks and fine-tuning was data-parallel (docs/distributed.md)",
                                             run.ranks()));
    }
    // Timing stages are rank 0's alone; the other ranks then replay them from its journal.
    run.on_root_first("the timing stages", [&] {
      if (run.narrowing()) run.stage("narrow", [&] { narrow_channels(run); });
      run.stage("profile", [&] { profile(run); });
      run.stage("candidates", [&] { find_candidates(run); });
    });
    run.stage("fidelity", [&] { fidelity(run); });
    run.stage("sensitivity", [&] { sensitivity(run); });
    if (!run.root()) {
      follow_rank_zero(run);
      return {run.report, run.model};
    }
    run.stage("search", [&] { search_front(run); });
    run.stage("screen", [&] { choose_first_point(run); });
    attempts(run);
    release_the_other_ranks(run);
    run.note_the_machine_load();
    run.stage("export", [&] { export_files(run); });
    return {run.report, run.adapted};
  } catch (const std::exception& error) {
    // The other ranks stop at their next wait, with this rank's reason.
    if (run.distributed()) options.group->fail(error.what());
    throw;
  }
}

double parse_duration(const std::string& text) {
  static const std::regex pattern(R"(^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$)");
  std::smatch match;
  if (text.empty() || !std::regex_match(text, match, pattern) || (!match[1].matched && !match[2].matched && !match[3].matched)) {
    throw SearchError("'" + text + "' is not a duration; write e.g. 30m, 1h30m, 90s or 45 (seconds)");
  }
  double seconds = 0;
  if (match[1].matched) seconds += 3600 * std::stod(match[1].str());
  if (match[2].matched) seconds += 60 * std::stod(match[2].str());
  if (match[3].matched) seconds += std::stod(match[3].str());
  return seconds;
}

}  // namespace gos::search
