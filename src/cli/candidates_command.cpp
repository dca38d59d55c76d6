// `gos candidates MODEL --op NODE`: the replacement operators the rewrite rules derive for one
// operator, with their cost and how close their inherited weights start to the original on the
// inputs the operator sees in the model.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "cli/candidates_options.h"
#include "cli/cli.h"
#include "cli/device_option.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "cli/option_checks.h"
#include "data/data.h"
#include "measure/cache.h"
#include "search/candidates.h"
#include "util/progress.h"

namespace gos::cli {

namespace {



// Measured latencies (cached) of the original and every candidate on the backend.
struct Latencies {
  double original_ms = 0;
  std::vector<double> candidate_ms;
};

Latencies measure_latencies(const CandidatesOptions& options, const rules::Candidate& original,
                            const std::vector<search::ScoredCandidate>& scored) {
  const measure::Backend backend = measure::backend_named(options.backend);
  measure::LatencyCache cache(options.cache.empty() ? measure::default_cache_path() : std::filesystem::path(options.cache));
  std::vector<measure::OpToMeasure> ops{{original.op, original.weights}};
  for (const auto& s : scored) ops.push_back({s.candidate.op, s.candidate.weights});
  util::Progress progress("time candidates on " + options.backend, static_cast<int64_t>(ops.size()), !options.json);
  auto timings = measure::measure_cached(cache, ops, backend,
                                         {.threads = options.threads, .warmup = 5, .min_runs = 15, .budget_seconds = 0.2},
                                         nullptr, [&](size_t done, size_t total) { progress.update_with_total(done, total); });
  progress.finish();
  Latencies latencies{timings[0].median_ms, {}};
  for (size_t i = 1; i < timings.size(); ++i) latencies.candidate_ms.push_back(timings[i].median_ms);
  return latencies;
}

}  // namespace

std::vector<ir::Tensor> model_inputs(const graph::Graph& model, const CandidatesOptions& options) {
  if (options.data.data.empty()) {
    std::mt19937 engine(options.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<ir::Tensor> inputs;
    for (const auto& input : model.inputs) {
      auto shape = input.shape;
      if (!shape.empty()) shape[0] = options.batch;
      ir::Tensor tensor(shape);
      for (auto& value : tensor.data) value = normal(engine);
      inputs.push_back(std::move(tensor));
    }
    return inputs;
  }
  if (model.inputs.size() != 1) throw graph::GraphError("--data feeds models with one input; this one has " + std::to_string(model.inputs.size()));
  const auto spec = data_spec(options.data, model, options.cache);
  if (data::objective_of(spec) == data::Objective::Classification) {
    const auto samples = data::load(spec, data::Split::Validation);
    return {samples.rows(0, std::min(options.batch, samples.size()))};
  }
  const ir::Tensor samples = data::load_regression(spec, data::Split::Validation).inputs;
  const int64_t available = samples.shape.at(0);
  const int64_t count = std::min(options.batch, available);
  const int64_t per_sample = samples.elements() / std::max<int64_t>(1, available);
  auto shape = samples.shape;
  shape[0] = count;
  return {ir::Tensor(shape, std::vector<float>(samples.data.begin(), samples.data.begin() + count * per_sample))};
}

namespace {

// The listing order: the MACs/error Pareto front first (by MACs), then the rest by MACs; or all by
// MACs, or all by error.
std::vector<size_t> listing_order(const std::vector<search::ScoredCandidate>& scored, const std::string& sort) {
  std::vector<size_t> order(scored.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto by_macs = [&](size_t a, size_t b) { return scored[a].cost.macs < scored[b].cost.macs; };
  auto by_error = [&](size_t a, size_t b) { return scored[a].init_rel_error < scored[b].init_rel_error; };
  if (sort == "error") {
    std::stable_sort(order.begin(), order.end(), by_error);
    return order;
  }
  std::stable_sort(order.begin(), order.end(), by_macs);
  if (sort == "macs") return order;
  std::vector<size_t> front = search::pareto_front(scored);
  std::set<size_t> on_front(front.begin(), front.end());
  for (size_t index : order) {
    if (!on_front.count(index)) front.push_back(index);
  }
  return front;
}

nlohmann::json json_candidate(const search::ScoredCandidate& s, const ir::Cost& original, bool on_front,
                              const std::optional<std::pair<double, double>>& latency) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& step : s.candidate.derivation) {
    nlohmann::json params = nlohmann::json::object();
    for (const auto& [key, value] : step.params) params[key] = value;
    steps.push_back({{"rule", step.rule}, {"params", params}});
  }
  return {{"derivation", s.candidate.derivation_text()},
          {"rules", steps},
          {"expr", ir::print(s.candidate.op)},
          {"macs", s.cost.macs},
          {"params", s.cost.params},
          {"macs_ratio", static_cast<double>(s.cost.macs) / std::max<int64_t>(1, original.macs)},
          {"params_ratio", static_cast<double>(s.cost.params) / std::max<int64_t>(1, original.params)},
          {"init_rel_error", s.init_rel_error},
          {"pareto", on_front},
          {"latency_ms", latency ? nlohmann::json(latency->first) : nlohmann::json()},
          {"speedup", latency ? nlohmann::json(latency->second) : nlohmann::json()}};
}

int run_candidates(const CandidatesOptions& options) {
  if (options.op.empty() == options.group.empty()) {
    throw search::SearchError("give --op NODE (an operator's candidates) or --group NAME (a channel group's widths; gos inspect MODEL --groups lists them)");
  }
  if (!options.device.empty() && options.backend.empty()) throw std::invalid_argument("--device times candidates: give --backend too");
  const auto on_device = use_device(options.device);
  if (!options.group.empty()) return run_group_widths(options);
  auto imported = load_model(options.model, /*allow_unsupported=*/false, options.data.input_shape);
  const graph::Graph model = graph::subsample_pooled_positions(imported.graph, options.subsample).graph;
  const graph::Node& node = search::searchable_node(model, options.op);
  const rules::Candidate original = rules::original(*node.op, node.weights);
  const ir::Cost original_cost = ir::cost(*node.op);

  rules::RuleOptions rule_options{.depth = options.depth, .keep_costlier = options.keep_costlier, .rules = options.rules};
  std::vector<rules::Candidate> derived = rules::derive_candidates(*node.op, node.weights, rule_options);
  const auto inputs = search::record_node_inputs(model, node, model_inputs(model, options));
  std::vector<search::ScoredCandidate> scored;
  {
    util::Progress progress("score candidates of " + node.name, static_cast<int64_t>(derived.size()), !options.json);
    scored = search::score_candidates(original, derived, inputs, [&](size_t done, size_t) {
      progress.update(static_cast<int64_t>(done));
    });
    progress.finish();
  }
  std::optional<Latencies> latencies;
  if (!options.backend.empty()) latencies = measure_latencies(options, original, scored);
  auto latency_of = [&](size_t index) -> std::optional<std::pair<double, double>> {
    if (!latencies) return std::nullopt;
    const double ms = latencies->candidate_ms[index];
    return std::make_pair(ms, latencies->original_ms / ms);
  };
  const auto order = listing_order(scored, options.sort);
  const auto front = search::pareto_front(scored);
  const std::set<size_t> on_front(front.begin(), front.end());
  const size_t shown = options.max == 0 ? order.size() : std::min(options.max, order.size());

  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (size_t i = 0; i < shown; ++i) {
      list.push_back(json_candidate(scored[order[i]], original_cost, on_front.count(order[i]) > 0, latency_of(order[i])));
    }
    fmt::print("{}\n", list.dump(2));
    return kSuccess;
  }
  const std::string source = options.data.data.empty()
                                 ? fmt::format("{} random normal model inputs (seed {})", inputs.empty() ? 0 : inputs[0].shape[0], options.seed)
                                 : fmt::format("{} validation samples of {}", inputs[0].shape[0], options.data.data);
  fmt::print("operator  {} ({}) of {}\n", node.name, node.op_type, options.model);
  fmt::print("          {}\n", ir::print(*node.op));
  fmt::print("          {} MACs, {} params; errors on {}\n", grouped(original_cost.macs), grouped(original_cost.params), source);
  if (latencies) {
    fmt::print("          {:.4f} ms on {} ({} thread{}, {})\n", latencies->original_ms, options.backend, options.threads,
               options.threads == 1 ? "" : "s", measure::machine_fingerprint());
  }
  fmt::print("\n");
  size_t width = 10;
  for (size_t i = 0; i < shown; ++i) width = std::max(width, scored[order[i]].candidate.derivation_text().size());
  width = std::min<size_t>(width, 70);
  fmt::print("{:>4}  {:<{}} {:>13} {:>7} {:>11} {:>10}{}\n", "#", "derivation", width, "MACs", "ratio", "params", "init error",
             latencies ? fmt::format(" {:>10} {:>8}", "ms", "speedup") : "");
  for (size_t i = 0; i < shown; ++i) {
    const auto& s = scored[order[i]];
    const auto latency = latency_of(order[i]);
    fmt::print("{:>4}  {:<{}} {:>13} {:>6.3f}x {:>11} {:>9.2f}%{}{}\n", i + 1, s.candidate.derivation_text(), width,
               grouped(s.cost.macs), static_cast<double>(s.cost.macs) / std::max<int64_t>(1, original_cost.macs),
               grouped(s.cost.params), 100 * s.init_rel_error,
               latency ? fmt::format(" {:>10.4f} {:>7.2f}x", latency->first, latency->second) : "",
               on_front.count(order[i]) ? " *" : "");
    fmt::print("      {}\n", abbreviate_constants(ir::print(s.candidate.op)));
  }
  std::set<std::string> rules_used;
  for (const auto& s : scored) {
    for (const auto& step : s.candidate.derivation) rules_used.insert(step.rule);
  }
  fmt::print("\n{} candidates from {} rules (depth {}); {} on the MACs/error Pareto front (*); showing {}{}\n", scored.size(),
             rules_used.size(), options.depth, front.size(), shown, shown < scored.size() ? " (--max 0 for all)" : "");
  fmt::print("init error: ||candidate(x) - original(x)|| / ||original(x)|| with inherited weights, before training\n");
  return kSuccess;
}

}  // namespace

Action add_candidates_command(CLI::App& app) {
  auto options = std::make_shared<CandidatesOptions>();
  auto* command = app.add_subcommand(
      "candidates", "List the replacement operators the rewrite rules derive for one operator of a model, with their "
                    "MACs, params and initial error on the operator's real inputs");
  command->add_option("model", options->model, "the ONNX file, or a zoo model (random weights)")->required();
  command->add_option("--op", options->op, "the operator's node name (as gos inspect lists it), or a unique prefix");
  command->add_option("--group", options->group,
                      "instead of --op: a channel group (as gos inspect --groups lists it, or a unique prefix): the widths it "
                      "may narrow to, with the model's output error when narrowed");
  command->add_option("--depth", options->depth, "rules composed, 1 or 2")->check(CLI::Range(1, 2))->capture_default_str();
  command->add_option("--max", options->max, "candidates to list (0: all)")->capture_default_str();
  command->add_option("--sort", options->sort, "pareto (the MACs/error front first), macs or error")
      ->check(CLI::IsMember({"pareto", "macs", "error"}))
      ->capture_default_str();
  command->add_option("--rules", options->rules, "only these rules: " + fmt::format("{}", fmt::join(rules::rule_names(), ", ")))
      ->check(CLI::IsMember(rules::rule_names()))
      ->delimiter(',');
  add_data_options(*command, options->data, /*default_data=*/"");
  command->add_option("--batch", options->batch, "model inputs the errors are measured on")
      ->check(whole_number_at_least(1))
      ->capture_default_str();
  command->add_option("--seed", options->seed, "random inputs")->capture_default_str();
  command->add_option("--subsample", options->subsample,
                      "the operator as gos adapt --subsample N searches it (computing every Nth position the global pooling reads)")
      ->capture_default_str();
  command->add_flag("--keep-costlier", options->keep_costlier, "also list candidates not cheaper than the original");
  command->add_option("--backend", options->backend, "also measure every candidate's latency on torch, mobile or ort (cached)")
      ->check(CLI::IsMember(measure::backend_names()));
  command->add_option("--threads", options->threads, "with --backend: intra-op threads")->check(whole_number_at_least(1))->capture_default_str();
  command->add_option("--device", options->device, kDeviceHelp);
  command->add_option("--cache", options->cache, "with --backend: the latency cache (default $GOS_CACHE or ~/.cache/gos/latency.sqlite)");
  command->add_flag("--json", options->json, "print a JSON list with one object per candidate");
  return [options] { return run_candidates(*options); };
}

}  // namespace gos::cli
