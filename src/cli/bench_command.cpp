// `gos bench MODEL --backend B`: the model's latency on a backend (median and spread); with
// --per-op every operator timed alone next to its share of the MACs; with --against OTHER the two
// models timed side by side and how many times faster OTHER runs.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/machine_reference.h"
#include "cli/model_source.h"
#include "cli/device_option.h"
#include "cli/option_checks.h"
#include "measure/cache.h"
#include "util/progress.h"

namespace gos::cli {

namespace {

struct BenchCommandOptions {
  std::string model;
  std::string backend = "mobile";
  std::string precision = "fp32";
  int threads = 1;
  double budget = 2.0;
  bool per_op = false;
  std::string against;
  std::vector<int64_t> input_shape;  // --input-shape: fixes dynamic input dimensions
  std::string cache;
  std::string device;  // --device: a paired board's agent takes every timing
  bool json = false;
};

// "AMD EPYC x2", or "device pi4 (Raspberry Pi 4 Model B Rev 1.4 x4)".
std::string timed_on(const BenchCommandOptions& options) {
  return options.device.empty() ? measure::machine_fingerprint()
                                : fmt::format("device {} ({})", options.device, measure::machine_fingerprint());
}

struct OpRow {
  std::string node, op_type;
  int64_t macs = 0;
  measure::Timing timing;
  bool structural = false;
};

nlohmann::json timing_json(const measure::Timing& t) {
  return {{"median_ms", t.median_ms}, {"p10_ms", t.p10_ms}, {"p90_ms", t.p90_ms},
          {"runs", t.runs}, {"spread", t.spread()}, {"noisy", t.noisy()}};
}

// The machine's fixed loop, timed right after the models while the machine is in the same spell
// (slow spells last tens of seconds), for a quarter of the budget, at most half a second.
measure::Timing time_machine_after(const BenchCommandOptions& options) {
  return measure::time_machine_reference(std::min(0.5, options.budget / 4));
}

void print_machine_reference(const measure::Timing& machine) {
  const std::string verdict =
      measure::machine_was_unsteady(machine)
          ? fmt::format(" (unsteady: a dedicated core stays under {:.0f}%, and no model times steadier than the machine)",
                        100 * measure::kUnsteadyMachineSpread)
          : "";
  fmt::print("machine: a fixed arithmetic loop timed right after ran {:.3f} ms, spread {:.1f}%{}\n", machine.median_ms,
             100 * machine.spread(), verdict);
}

void print_timing(const std::string& label, size_t width, const measure::Timing& t) {
  fmt::print("{:<{}}median {:.3f} ms  (p10 {:.3f}, p90 {:.3f}; spread {:.1f}%; {} runs)\n", label, width, t.median_ms, t.p10_ms,
             t.p90_ms, 100 * t.spread(), t.runs);
}

// Both models timed in one run, their runs alternating, so that both see the same machine: the
// ratio of their medians holds on a machine too unsteady for either median to repeat.
int run_comparison(const BenchCommandOptions& options) {
  const auto on_device = use_device(options.device);
  const measure::Backend backend = measure::backend_named(options.backend);
  const graph::Graph model = load_model(options.model, /*allow_unsupported=*/false, options.input_shape).graph;
  const graph::Graph other = load_model(options.against, /*allow_unsupported=*/false, options.input_shape).graph;
  measure::Timing timing, other_timing, machine;
  {
    util::Progress progress(fmt::format("bench {} against {} on {}", options.model, options.against, options.backend), 1,
                            !options.json);
    std::tie(timing, other_timing) = measure::bench_models_interleaved(
        model, other, backend,
        {.threads = options.threads, .precision = measure::precision_named(options.precision), .budget_seconds = options.budget / 2});
    machine = time_machine_after(options);
    progress.finish();
  }
  const double speedup = timing.median_ms / other_timing.median_ms;
  if (options.json) {
    nlohmann::json report = timing_json(timing);
    report["model"] = options.model;
    report["backend"] = options.backend;
    report["precision"] = options.precision;
    report["threads"] = options.threads;
    report["against"] = timing_json(other_timing);
    report["against"]["model"] = options.against;
    report["speedup"] = speedup;
    // ONNX Runtime alternates rounds, not runs: its percentiles are over the rounds' medians.
    report["percentiles_over"] = backend == measure::Backend::Ort ? "round medians" : "runs";
    report["machine"] = measure::machine_fingerprint();
    if (!options.device.empty()) report["device"] = options.device;
    add_machine_reference(report, machine);
    fmt::print("{}\n", report.dump(2));
    return kSuccess;
  }
  fmt::print("{} against {} on {} in {} ({} thread{}, {}), timed side by side{}\n", options.model, options.against, options.backend, options.precision,
             options.threads, options.threads == 1 ? "" : "s", timed_on(options),
             backend == measure::Backend::Ort ? " (five alternating rounds; p10 and p90 are over the rounds' medians)"
                                              : " (runs alternate)");
  const size_t width = std::max(options.model.size(), options.against.size()) + 2;
  print_timing(options.model, width, timing);
  print_timing(options.against, width, other_timing);
  if (speedup >= 1) {
    fmt::print("{} runs {:.2f}x faster than {}\n", options.against, speedup, options.model);
  } else {
    fmt::print("{} runs {:.2f}x slower than {}\n", options.against, 1 / speedup, options.model);
  }
  print_machine_reference(machine);
  if (timing.noisy() || other_timing.noisy()) {
    fmt::print("note: a spread is over {:.0f}%: either median alone may not repeat, but both were timed under the same "
               "load, so their ratio holds better; time again to see by how much it moves\n",
               100 * measure::kNoisySpread);
  }
  return kSuccess;
}

int run_bench(const BenchCommandOptions& options) {
  if (!options.against.empty()) return run_comparison(options);
  const auto on_device = use_device(options.device);
  const measure::Backend backend = measure::backend_named(options.backend);
  const graph::Graph model = load_model(options.model, /*allow_unsupported=*/false, options.input_shape).graph;
  const measure::Precision precision = measure::precision_named(options.precision);
  if (precision == measure::Precision::Int8 && backend == measure::Backend::Torch) {
    throw std::invalid_argument("int8 runs on mobile (quantized TorchScript) and ort (QDQ ONNX); torch has no int8 form: give --backend mobile or ort");
  }
  measure::BenchOptions bench{.threads = options.threads, .precision = precision, .budget_seconds = options.budget};
  measure::Timing whole, machine;
  {
    util::Progress progress(fmt::format("bench {} on {}", options.model, options.backend), 1, !options.json);
    whole = measure::bench_model(model, backend, bench);
    machine = time_machine_after(options);  // so that the user can tell a noisy model from a noisy machine
    progress.finish();
  }
  std::vector<OpRow> rows;
  size_t measured = 0;
  if (options.per_op) {
    // Structural nodes too (a mixer's layer normalisations): the model pays for them, and a table
    // without them would hide where its time goes.
    std::vector<measure::OpToMeasure> ops;
    std::vector<size_t> op_rows, node_rows;
    std::vector<const graph::Node*> structural;
    for (const auto& node : model.nodes) {
      if (node.is_compute()) {
        ops.push_back({*node.op, node.weights});
        op_rows.push_back(rows.size());
        rows.push_back({node.name, node.op_type, ir::cost(*node.op).macs, {}});
      } else {
        structural.push_back(&node);
        node_rows.push_back(rows.size());
        rows.push_back({node.name, node.op_type, 0, {}, /*structural=*/true});
      }
    }
    measure::LatencyCache cache(options.cache.empty() ? measure::default_cache_path() : std::filesystem::path(options.cache));
    const measure::BenchOptions alone{.threads = options.threads, .precision = precision, .min_runs = 20, .budget_seconds = 0.25};
    util::Progress progress("time each operator", static_cast<int64_t>(ops.size()), !options.json);
    auto timings = measure::measure_cached(cache, ops, backend, alone, &measured,
                                           [&](size_t done, size_t total) { progress.update_with_total(done, total); });
    progress.finish();
    for (size_t i = 0; i < op_rows.size(); ++i) rows[op_rows[i]].timing = timings[i];
    size_t measured_nodes = 0;
    {
      util::Progress node_progress("time each structural node", 1, !options.json && !structural.empty());
      auto node_timings = measure::measure_nodes_cached(cache, model, structural, backend, alone, &measured_nodes);
      node_progress.finish();
      for (size_t i = 0; i < node_rows.size(); ++i) rows[node_rows[i]].timing = node_timings[i];
    }
    measured += measured_nodes;
  }
  int64_t total_macs = 0;
  double ops_ms = 0;
  for (const auto& row : rows) total_macs += row.macs, ops_ms += row.timing.median_ms;

  if (options.json) {
    nlohmann::json report = timing_json(whole);
    report["model"] = options.model;
    report["backend"] = options.backend;
    report["precision"] = options.precision;
    report["threads"] = options.threads;
    report["machine"] = measure::machine_fingerprint();
    if (!options.device.empty()) report["device"] = options.device;
    add_machine_reference(report, machine);
    if (options.per_op) {
      nlohmann::json ops = nlohmann::json::array();
      for (const auto& row : rows) {
        nlohmann::json op = timing_json(row.timing);
        op["node"] = row.node;
        op["op_type"] = row.op_type;
        op["structural"] = row.structural;
        op["macs"] = row.macs;
        op["macs_share"] = total_macs ? static_cast<double>(row.macs) / static_cast<double>(total_macs) : 0.0;
        op["time_share"] = ops_ms > 0 ? row.timing.median_ms / ops_ms : 0.0;
        ops.push_back(op);
      }
      report["ops"] = ops;
      report["ops_total_ms"] = ops_ms;
      report["overhead_ms"] = whole.median_ms - ops_ms;
      report["newly_measured_ops"] = measured;
    }
    fmt::print("{}\n", report.dump(2));
    return kSuccess;
  }
  fmt::print("{} on {} in {} ({} thread{}, {})\n", options.model, options.backend, options.precision, options.threads,
             options.threads == 1 ? "" : "s", timed_on(options));
  print_timing("", 0, whole);
  print_machine_reference(machine);
  if (whole.noisy() && measure::machine_was_unsteady(machine)) {
    fmt::print("note: the spread is over {:.0f}%, and the machine was unsteady too (the loop above), so a quiet machine "
               "may give a narrower one; a median taken minutes from now can differ by as much. Time again when the "
               "loop's spread is under {:.0f}%, or compare two models side by side (--against)\n",
               100 * measure::kNoisySpread, 100 * measure::kUnsteadyMachineSpread);
  } else if (whole.noisy()) {
    fmt::print("note: the spread is over {:.0f}% while the machine ran a fixed loop steadily: the model's runs vary on "
               "this backend (memory, caches, the runtime's own work), or a busy spell came during them. Time again to "
               "tell which\n",
               100 * measure::kNoisySpread);
  }
  if (!options.per_op) return kSuccess;
  std::vector<OperatorRow> table;
  for (const auto& row : rows) table.push_back({row.node, row.op_type, row.macs, row.timing.median_ms});
  print_operator_table(table, "ms");
  // Either way round: a model adds calls and data movement between its operators, and its
  // runtime can fuse operators that alone each pay for their own pass over memory.
  const double gap_ms = whole.median_ms - ops_ms;
  fmt::print("\noperators alone: {:.3f} ms in total; whole model {:.3f} ms; {}\n{} operator timings taken now, {} from the cache\n",
             ops_ms, whole.median_ms,
             gap_ms >= 0 ? fmt::format("the {:.3f} ms more is data movement and calls between operators", gap_ms)
                         : fmt::format("the model is {:.3f} ms faster than its operators alone: its runtime can fuse some of "
                                       "them (an add or activation into the operator before it)",
                                       -gap_ms),
             measured, rows.size() - measured);
  return kSuccess;
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchCommandOptions>();
  auto* command = app.add_subcommand("bench", "Measure a model's latency on a backend (median and spread of repeated runs)");
  command->add_option("model", options->model, "the ONNX file, or a zoo model")->required();
  command->add_option("--backend", options->backend, "torch (eager libtorch), mobile (TorchScript for mobile, XNNPACK) or ort (ONNX Runtime)")
      ->check(CLI::IsMember(measure::backend_names()))
      ->capture_default_str();
  command->add_option("--precision", options->precision,
                      "fp32, or int8: the model quantized (calibrated on random inputs) as the backend runs it, quantized TorchScript "
                      "on mobile, QDQ ONNX on ort")
      ->check(CLI::IsMember({"fp32", "int8"}))
      ->capture_default_str();
  command->add_option("--threads", options->threads, "intra-op threads")->check(whole_number_at_least(1))->capture_default_str();
  command->add_option("--budget", options->budget, "seconds of timed runs for the whole model, or for both with --against (at least 20 runs each)")
      ->check(number_from_zero(/*positive=*/true, "seconds"))
      ->capture_default_str();
  auto* per_op = command->add_flag("--per-op", options->per_op,
                                   "also time every operator alone (cached) and show time share vs MACs share");
  command->add_option("--against", options->against,
                      "another ONNX file or zoo model (say, gos adapt's OUT/adapted.onnx) timed side by side with MODEL, "
                      "runs alternating; prints how many times faster it runs")
      ->excludes(per_op);
  command->add_option("--device", options->device, kDeviceHelp);
  command->add_option("--cache", options->cache, "the latency cache (default $GOS_CACHE or ~/.cache/gos/latency.sqlite)");
  command->add_option("--input-shape", options->input_shape, "the model's input shape, fixing dimensions the file leaves dynamic (e.g. 1,3,224,224)")
      ->delimiter(',');
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_bench(*options); };
}

}  // namespace gos::cli
