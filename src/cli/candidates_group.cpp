// `gos candidates MODEL --group NAME`: the widths a channel group may narrow to, each with the
// model's output error when narrowed three ways (channels kept by producer weight norm, by
// contribution to the consumers' outputs, and that with the consumers refitted by least squares)
// and, with --backend, the time of the operators the group touches.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <set>

#include "cli/candidates_options.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "measure/cache.h"
#include "narrow/narrow.h"
#include "search/candidates.h"
#include "util/progress.h"

namespace gos::cli {

namespace {

const narrow::ChannelGroup& group_named(const std::vector<narrow::ChannelGroup>& groups, const std::string& name) {
  std::vector<const narrow::ChannelGroup*> matches;
  for (const auto& group : groups) {
    if (group.name() == name) return group;
    if (group.name().starts_with(name)) matches.push_back(&group);
  }
  if (matches.size() == 1) return *matches[0];
  std::string names;
  for (const auto& group : groups) names += (names.empty() ? "" : ", ") + group.name();
  throw search::SearchError(fmt::format("{} channel group is named '{}'; the model's groups are: {}", matches.empty() ? "no" : "more than one",
                                        name, names.empty() ? "(none)" : names));
}

struct WidthRow {
  int64_t width = 0;
  int64_t macs = 0;
  double norm_error = 0, importance_error = 0, refit_error = 0;
  std::optional<double> ms;
};

}  // namespace

int run_group_widths(const CandidatesOptions& options) {
  const graph::Graph model = graph::subsample_pooled_positions(load_model(options.model, false, options.data.input_shape).graph, options.subsample).graph;
  const auto groups = narrow::channel_groups(model);
  const narrow::ChannelGroup& group = group_named(groups, options.group);
  const ir::Tensor inputs = model_inputs(model, options).at(0);
  // Fitted on the first half of the inputs, errors measured on the other half.
  const int64_t half = std::max<int64_t>(1, inputs.shape[0] / 2);
  const auto rows_of = [&](int64_t begin, int64_t end) {
    auto shape = inputs.shape;
    shape[0] = end - begin;
    const int64_t per = inputs.elements() / inputs.shape[0];
    return ir::Tensor(shape, std::vector<float>(inputs.data.begin() + begin * per, inputs.data.begin() + end * per));
  };
  if (inputs.shape[0] < 2) throw search::SearchError("--batch must be at least 2: half the inputs fit the refit, half measure the errors");
  const ir::Tensor fit = rows_of(0, half), held = rows_of(half, inputs.shape[0]);
  const narrow::OutputError error_of(model, held);

  const auto norms = narrow::weight_norms(model, group);
  const auto importance = narrow::channel_importance(model, group, {fit});
  const auto widths = narrow::kernel_widths(group.extent, group.extent);
  std::vector<WidthRow> rows;
  {
    util::Progress progress("narrow " + group.name(), static_cast<int64_t>(widths.size()), !options.json);
    for (int64_t width : widths) {
      WidthRow row{width};
      const graph::Graph by_norm = narrow::narrow_group(model, group, narrow::strongest(norms, width));
      row.macs = graph::total_macs(by_norm);
      row.norm_error = error_of(by_norm);
      const auto kept = narrow::strongest(importance, width);
      row.importance_error = error_of(narrow::narrow_group(model, group, kept));
      row.refit_error = error_of(narrow::narrow_and_refit(model, group, kept, {fit}).graph);
      rows.push_back(row);
      progress.update(static_cast<int64_t>(rows.size()));
    }
    progress.finish();
  }
  std::optional<double> original_ms;
  if (!options.backend.empty()) {
    measure::LatencyCache cache(options.cache.empty() ? measure::default_cache_path() : std::filesystem::path(options.cache));
    std::vector<measure::OpToMeasure> ops = measure::operators_of(narrow::touched_nodes(model, group));
    std::vector<size_t> ends{ops.size()};
    for (const auto& row : rows) {
      std::vector<int64_t> first(row.width);
      for (int64_t i = 0; i < row.width; ++i) first[i] = i;
      for (auto& op : measure::operators_of(narrow::touched_nodes(narrow::narrow_group(model, group, first), group))) ops.push_back(std::move(op));
      ends.push_back(ops.size());
    }
    util::Progress progress("time the group's operators on " + options.backend, static_cast<int64_t>(ops.size()), !options.json);
    const auto timings = measure::measure_cached(cache, ops, measure::backend_named(options.backend),
                                                 {.threads = options.threads, .warmup = 5, .min_runs = 15, .budget_seconds = 0.2}, nullptr,
                                                 [&](size_t done, size_t total) { progress.update_with_total(done, total); });
    progress.finish();
    auto summed = [&](size_t begin, size_t end) {
      double total = 0;
      for (size_t i = begin; i < end; ++i) total += timings[i].median_ms;
      return total;
    };
    original_ms = summed(0, ends[0]);
    for (size_t r = 0; r < rows.size(); ++r) rows[r].ms = summed(ends[r], ends[r + 1]);
  }

  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& row : rows) {
      list.push_back({{"derivation", fmt::format("narrow({}, {})", group.name(), row.width)},
                      {"width", row.width},
                      {"macs", row.macs},
                      {"error_by_weight_norm", row.norm_error},
                      {"error_by_contribution", row.importance_error},
                      {"error_refitted", row.refit_error},
                      {"latency_ms", row.ms ? nlohmann::json(*row.ms) : nlohmann::json()},
                      {"speedup", row.ms ? nlohmann::json(*original_ms / *row.ms) : nlohmann::json()}});
    }
    fmt::print("{}\n", list.dump(2));
    return kSuccess;
  }
  fmt::print("group     {} of {}: {} channels; producers {}, followers {}, consumers {}\n", group.name(), options.model, group.extent,
             group.producers.size(), group.followers.size(), group.consumers.size());
  fmt::print("          model {} MACs; errors on {} inputs, refitted on {} others", grouped(graph::total_macs(model)), held.shape[0], fit.shape[0]);
  if (original_ms) fmt::print("; its operators {:.4f} ms on {} ({} thread{})", *original_ms, options.backend, options.threads, options.threads == 1 ? "" : "s");
  fmt::print("\n\n{:<44} {:>13} {:>12} {:>13} {:>9}{}\n", "derivation", "model MACs", "weight norm", "contribution", "refitted",
             original_ms ? fmt::format(" {:>10} {:>8}", "ms", "speedup") : "");
  for (const auto& row : rows) {
    fmt::print("{:<44} {:>13} {:>11.2f}% {:>12.2f}% {:>8.2f}%{}\n", fmt::format("narrow({}, {})", group.name(), row.width), grouped(row.macs),
               100 * row.norm_error, 100 * row.importance_error, 100 * row.refit_error,
               row.ms ? fmt::format(" {:>10.4f} {:>7.2f}x", *row.ms, *original_ms / *row.ms) : "");
  }
  fmt::print("\nerrors: ||model(x) - original(x)|| / ||original(x)|| with the channels kept by their producers' weight norm, by their "
             "contribution to the consumers' outputs, and that with the consumers refitted by least squares; before any training\n");
  return kSuccess;
}

}  // namespace gos::cli
