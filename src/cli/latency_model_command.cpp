// `gos latency-model fit|eval --backend B`: fit the latency predictor on the zoo's operators and
// their candidates (measured once, cached), and report its accuracy on held-out operators;
// `gos latency-model predict MODEL`: a model's latency from the stored predictor, nothing measured.
#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "cli/cli.h"
#include "cli/device_option.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/machine_reference.h"
#include "cli/model_source.h"
#include "cli/option_checks.h"
#include "measure/latency_model.h"
#include "util/progress.h"
#include "zoo/zoo.h"

namespace gos::cli {

namespace {

struct LatencyModelOptions {
  std::string action;
  std::string model;  // predict
  std::string backend = "mobile";
  int threads = 1;
  std::vector<std::string> models;
  int candidates = 6;
  size_t samples = 2500;
  std::string cache;
  std::string device;  // a paired board: its timings fitted, or its predictor used
  bool details = false;
  bool json = false;
};

nlohmann::json report_json(const measure::LatencyModelReport& report) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : report.models) {
    models.push_back({{"model", m.model},
                      {"measured_ms", m.measured_ms},
                      {"ops_measured_ms", m.ops_measured_ms},
                      {"predicted_ms", m.predicted_ms},
                      {"error", m.error()}});
  }
  return {{"backend", report.backend},
          {"threads", report.threads},
          {"machine", report.machine},
          {"within_10pct", report.held_out.within_10pct},
          {"within_20pct", report.held_out.within_20pct},
          {"rmse_ms", report.held_out.rmse_ms},
          {"median_abs_error_pct", report.held_out.median_abs_error_pct},
          {"n_ops", report.held_out.n_ops},
          {"random_split",
           {{"within_10pct", report.random_held_out.within_10pct},
            {"within_20pct", report.random_held_out.within_20pct},
            {"rmse_ms", report.random_held_out.rmse_ms},
            {"median_abs_error_pct", report.random_held_out.median_abs_error_pct},
            {"n_ops", report.random_held_out.n_ops}}},
          {"screen",
           {{"ratio", measure::kPredictedSlowerRatio},
            {"faster", report.screen.faster},
            {"faster_kept", report.screen.faster_kept},
            {"slower", report.screen.slower},
            {"slower_skipped", report.screen.slower_skipped}}},
          {"n_train", report.n_train},
          {"newly_measured", report.newly_measured},
          {"median_spread", report.median_spread},
          {"sweeps_within_10pct", report.sweeps_within_10pct},
          {"n_swept", report.n_swept},
          {"overhead_per_node_ms", report.overhead_per_node_ms},
          {"call_overhead_ms", report.call_overhead_ms},
          {"structural_ms_per_element", report.structural_ms_per_element},
          {"models", models}};
}

double relative_error(const measure::OpPrediction& op) { return (op.predicted_ms - op.measured_ms) / op.measured_ms; }

nlohmann::json held_out_ops_json(const measure::LatencyModelReport& report) {
  nlohmann::json ops = nlohmann::json::array();
  for (const auto& op : report.held_out_ops) {
    ops.push_back({{"kinds", op.kinds},
                   {"macs", op.macs},
                   {"measured_ms", op.measured_ms},
                   {"predicted_ms", op.predicted_ms},
                   {"error", relative_error(op)},
                   {"instructions", op.instructions}});
  }
  return ops;
}

// Each held-out operator with its instructions below it: the kinds alone do not tell which
// windows, strides or channel multipliers the predictor misses.
void print_details(const measure::LatencyModelReport& report) {
  fmt::print("\n{:<40} {:>13} {:>12} {:>13} {:>8}\n", "held-out operator (statement kinds)", "MACs", "measured ms", "predicted ms", "error");
  for (const auto& op : report.held_out_ops) {
    fmt::print("{:<40} {:>13} {:>12.4f} {:>13.4f} {:>7.1f}%\n", op.kinds, grouped(op.macs), op.measured_ms, op.predicted_ms,
               100 * relative_error(op));
    std::istringstream lines(op.instructions);
    for (std::string line; std::getline(lines, line);) {
      // Fixed tables (a shift's) run to thousands of characters; --json has them whole.
      constexpr size_t kShown = 240;
      fmt::print("    {}{}\n", line.substr(0, kShown), line.size() > kShown ? " ..." : "");
    }
  }
}

double share(size_t part, size_t whole) { return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

// What the held-out predictions would do as gos adapt's screen: a candidate it skips is never timed.
void print_screen(const measure::ScreenAccuracy& screen) {
  if (screen.faster + screen.slower == 0) return;
  fmt::print("as gos adapt's screen (a candidate predicted at {:.2f}x its operator or more is not timed): of {} candidates "
             "measured at least 5% faster than their operator it times {} ({:.1f}%); of the {} others it skips {} ({:.1f}%)\n",
             measure::kPredictedSlowerRatio, screen.faster, screen.faster_kept, share(screen.faster_kept, screen.faster),
             screen.slower, screen.slower_skipped, share(screen.slower_skipped, screen.slower));
}

void print_human(const measure::LatencyModelReport& report) {
  fmt::print("latency predictor for {} ({} thread{}, {})\n", report.backend, report.threads,
             report.threads == 1 ? "" : "s", report.machine);
  fmt::print("held-out operators: {}, the zoo's and their candidates, each predicted by a fit on the {} or so operators "
             "none of whose statements falls in its fifth (five folds)\n",
             report.held_out.n_ops, report.n_train);
  fmt::print("within +-10%: {:.1f}%   within +-20%: {:.1f}%   median error {:.1f}%   RMSE {:.4f} ms\n",
             100 * report.held_out.within_10pct, 100 * report.held_out.within_20pct, report.held_out.median_abs_error_pct,
             report.held_out.rmse_ms);
  fmt::print("random fifth of the rest ({} other configurations of forms fitted on, nn-Meter's protocol): within +-10%: "
             "{:.1f}%   within +-20%: {:.1f}%   median error {:.1f}%\n",
             report.random_held_out.n_ops, 100 * report.random_held_out.within_10pct,
             100 * report.random_held_out.within_20pct, report.random_held_out.median_abs_error_pct);
  print_screen(report.screen);
  fmt::print("measurements: median p10-p90 spread {:.1f}%\n", 100 * report.median_spread);
  if (report.n_swept > 0) {
    fmt::print("repeatability: the two sweeps of an operator agreed within +-10% for {:.1f}% of {} operators; a "
               "predictor cannot be shown more accurate than the timings it is checked against repeat\n",
               100 * report.sweeps_within_10pct, report.n_swept);
  }
  if (report.median_spread > measure::kNoisySpread) {
    fmt::print("note: over {:.0f}%: most operators were timed while the machine was busy or unsteady, so the figures above "
               "are not what a quiet machine gives; fit again into a fresh cache (--cache) when it is quiet\n",
               100 * measure::kNoisySpread);
  }
  if (report.models.empty()) return;
  fmt::print("\nwhole models (predicted = operators - {:.4f} ms call overhead per extra operator + {:.4f} ms per node + "
             "structural nodes at their op type's time per element; ops alone: operators and structural nodes timed alone):\n",
             report.call_overhead_ms, report.overhead_per_node_ms);
  fmt::print("{:<14} {:>12} {:>14} {:>13} {:>8}\n", "model", "measured ms", "ops alone ms", "predicted ms", "error");
  for (const auto& m : report.models) {
    fmt::print("{:<14} {:>12.3f} {:>14.3f} {:>13.3f} {:>7.1f}%\n", m.model, m.measured_ms, m.ops_measured_ms, m.predicted_ms,
               100 * m.error());
  }
  if (report.newly_measured) fmt::print("\n{} operators measured now; the rest came from the cache\n", report.newly_measured);
}

int run_predict(const LatencyModelOptions& options, measure::Backend backend, const measure::LatencyCache& cache) {
  const graph::Graph model = load_model(options.model, /*allow_unsupported=*/false).graph;
  const measure::ModelLatencyPrediction prediction = measure::predict_model_latency(cache, backend, options.threads, model);
  std::vector<const graph::Node*> operators;
  for (const auto& node : model.nodes) {
    if (node.is_compute()) operators.push_back(&node);
  }
  if (options.json) {
    nlohmann::json ops = nlohmann::json::array();
    for (size_t i = 0; i < operators.size(); ++i) {
      ops.push_back({{"node", operators[i]->name}, {"op_type", operators[i]->op_type},
                     {"macs", ir::cost(*operators[i]->op).macs}, {"predicted_ms", prediction.node_ms[i]}});
    }
    const nlohmann::json out{{"model", options.model}, {"backend", options.backend}, {"threads", options.threads},
                             {"machine", measure::machine_fingerprint()}, {"predicted_ms", prediction.total_ms},
                             {"operators_ms", prediction.operators_ms}, {"structural_ms", prediction.structural_ms},
                             {"call_overhead_ms", prediction.overheads.call_overhead_ms},
                             {"overhead_per_node_ms", prediction.overheads.overhead_per_node_ms}, {"ops", ops}};
    fmt::print("{}\n", out.dump(2));
    return kSuccess;
  }
  fmt::print("{} on {} ({} thread{}, {}), predicted, nothing measured\n", options.model, options.backend, options.threads,
             options.threads == 1 ? "" : "s", measure::machine_fingerprint());
  std::vector<OperatorRow> table;
  for (size_t i = 0; i < operators.size(); ++i) {
    table.push_back({operators[i]->name, operators[i]->op_type, ir::cost(*operators[i]->op).macs, prediction.node_ms[i]});
  }
  print_operator_table(table, "predicted ms");
  fmt::print("\nwhole model: {:.3f} ms predicted = operators {:.3f} ms - {:.4f} ms call overhead x {} + {:.4f} ms x {} nodes "
             "+ structural nodes {:.3f} ms\n",
             prediction.total_ms, prediction.operators_ms, prediction.overheads.call_overhead_ms,
             operators.empty() ? 0 : operators.size() - 1, prediction.overheads.overhead_per_node_ms, model.nodes.size(),
             prediction.structural_ms);
  fmt::print("(`gos latency-model eval --backend {}` says how far to trust it; `gos bench {} --backend {}` measures it)\n",
             options.backend, options.model, options.backend);
  return kSuccess;
}

int run_latency_model(const LatencyModelOptions& options) {
  const measure::Backend backend = measure::backend_named(options.backend);
  const auto on_device = use_device(options.device);
  if ((options.action == "predict") == options.model.empty()) {
    throw std::invalid_argument(options.model.empty() ? "predict needs a MODEL (an ONNX file or a zoo model)"
                                                      : "a MODEL is for predict; fit and eval take --models");
  }
  measure::LatencyCache cache(options.cache.empty() ? measure::default_cache_path() : std::filesystem::path(options.cache));
  if (options.action == "predict") return run_predict(options, backend, cache);
  measure::LatencyModelReport report;
  std::optional<measure::Timing> machine;  // timed when fitting: eval measures nothing
  const auto models = options.models.empty() ? zoo::model_names() : options.models;
  if (options.action == "eval") {
    util::Progress progress("check the predictor", measure::kHeldOutFolds + 1, !options.json);
    report = measure::evaluate_latency_model(cache, backend, options.threads, models, options.candidates,
                                             [&](size_t done, size_t) { progress.update(static_cast<int64_t>(done)); });
  } else {
    // Before measuring, since the cache keeps what it measures: an unsteady machine's timings
    // stay in it (docs/latency.md, "How much operator timings repeat on a slow day").
    machine = measure::time_machine_reference();
    if (!options.json && measure::machine_was_unsteady(*machine)) {
      fmt::print(stderr,
                 "warning: the machine is unsteady now (a fixed arithmetic loop spread {:.1f}%, where a dedicated core "
                 "stays under {:.0f}%): operators measured now stay in {} with that noise; to keep them apart, stop "
                 "and fit into a fresh cache (--cache) when it is quiet\n",
                 100 * machine->spread(), 100 * measure::kUnsteadyMachineSpread, cache.path().string());
    }
    std::unique_ptr<util::Progress> progress;
    std::string stage;
    report = measure::fit_latency_model(cache, backend, options.threads, models, options.candidates, options.samples,
                                        [&](const std::string& what, size_t done, size_t total) {
                                          if (what != stage) {
                                            progress.reset();
                                            progress = std::make_unique<util::Progress>(what, static_cast<int64_t>(total), !options.json);
                                            stage = what;
                                          }
                                          progress->update(static_cast<int64_t>(done));
                                        });
    progress.reset();
  }
  if (options.json) {
    nlohmann::json out = report_json(report);
    if (machine) {
      add_machine_reference(out, *machine);
    }
    if (options.details) out["held_out_ops"] = held_out_ops_json(report);
    fmt::print("{}\n", out.dump(2));
  } else {
    print_human(report);
    if (machine) {
      fmt::print("machine before measuring: a fixed arithmetic loop ran {:.3f} ms, spread {:.1f}%{}\n", machine->median_ms,
                 100 * machine->spread(), measure::machine_was_unsteady(*machine) ? " (unsteady)" : "");
    }
    if (options.details) print_details(report);
  }
  return kSuccess;
}

}  // namespace

Action add_latency_model_command(CLI::App& app) {
  auto options = std::make_shared<LatencyModelOptions>();
  auto* command = app.add_subcommand(
      "latency-model", "Fit the per-backend latency predictor on the zoo's operators and their candidates (fit), report "
                       "its accuracy on held-out operators (eval), or predict a model's latency with it (predict)");
  command->add_option("action", options->action, "fit, eval or predict")->required()->check(CLI::IsMember({"fit", "eval", "predict"}));
  command->add_option("model", options->model, "predict: the ONNX file or zoo model whose latency to predict");
  command->add_option("--backend", options->backend, "torch, mobile or ort")
      ->check(CLI::IsMember(measure::backend_names()))
      ->capture_default_str();
  command->add_option("--threads", options->threads, "intra-op threads")->check(whole_number_at_least(1))->capture_default_str();
  command->add_option("--models", options->models, "zoo models whose operators and candidates are measured (fit) and predicted (default: all)")
      ->check(CLI::IsMember(zoo::model_names()))
      ->delimiter(',');
  command->add_option("--candidates", options->candidates, "rule candidates per operator measured (fit) and predicted")
      ->check(whole_number_at_least(0))
      ->capture_default_str();
  command->add_option("--samples", options->samples,
                      "fit: kernel configurations sampled around the zoo's operators, measured for training only")
      ->check(whole_number_at_least(0))
      ->capture_default_str();
  command->add_option("--cache", options->cache, "the latency cache (default $GOS_CACHE or ~/.cache/gos/latency.sqlite)");
  command->add_option("--device", options->device, kDeviceHelp);
  command->add_flag("--details", options->details,
                    "list every held-out operator with its instructions and its measured and predicted time (in the JSON: "
                    "held_out_ops)");
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_latency_model(*options); };
}

}  // namespace gos::cli
