// `gos inspect MODEL`: every node of an ONNX model (or of a zoo model), in order, with its
// mathematical instructions, MACs, params and share of the model's MACs.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/model_source.h"
#include "graph/onnx_import.h"
#include "narrow/narrow.h"
#include "zoo/zoo.h"

namespace gos::cli {

namespace {

struct InspectOptions {
  std::string model;
  std::vector<int64_t> input_shape;
  bool json = false;
  bool groups = false;
  int64_t subsample = 1;
};

enum class Kind { Instructions, Structural, Unsupported };

std::string_view to_string(Kind kind) {
  switch (kind) {
    case Kind::Instructions:
      return "instructions";
    case Kind::Structural:
      return "structural";
    case Kind::Unsupported:
      return "unsupported";
  }
  return "";
}

// One listed node.
struct Row {
  std::string node;
  std::string op_type;
  Kind kind = Kind::Structural;
  std::string expr;             // instructions in the notation (compute nodes)
  std::string reason;           // why gos cannot represent it (unsupported nodes)
  std::optional<int64_t> macs;  // unknown for unsupported nodes
  int64_t params = 0;
  graph::Shape output_shape;
};

std::vector<Row> rows(const graph::ImportResult& result) {
  std::map<std::string, const graph::UnsupportedNode*> unsupported;
  for (const auto& node : result.unsupported) unsupported[node.node] = &node;
  std::vector<Row> listed;
  for (const auto& node : result.graph.nodes) {
    Row row;
    row.node = node.name;
    row.op_type = node.op_type;
    if (auto shape = result.graph.shapes.find(node.outputs.empty() ? "" : node.outputs[0]);
        shape != result.graph.shapes.end()) {
      row.output_shape = shape->second;
    }
    if (node.is_compute()) {
      ir::Cost cost = ir::cost(*node.op);
      row.kind = Kind::Instructions;
      row.expr = ir::print(*node.op);
      row.macs = cost.macs;
      row.params = cost.params;
    } else if (auto found = unsupported.find(node.name); found != unsupported.end()) {
      row.kind = Kind::Unsupported;
      row.reason = found->second->reason;
    } else {
      row.macs = 0;
      row.params = graph::node_params(node);
    }
    listed.push_back(std::move(row));
  }
  return listed;
}

int64_t total_macs(const std::vector<Row>& listed) {
  int64_t total = 0;
  for (const auto& row : listed) total += row.macs.value_or(0);
  return total;
}

double share(const Row& row, int64_t total) {
  return total > 0 && row.macs ? static_cast<double>(*row.macs) / static_cast<double>(total) : 0.0;
}

nlohmann::json json_rows(const std::vector<Row>& listed) {
  const int64_t total = total_macs(listed);
  nlohmann::json array = nlohmann::json::array();
  for (const auto& row : listed) {
    nlohmann::json object{{"node", row.node},
                          {"op_type", row.op_type},
                          {"kind", to_string(row.kind)},
                          {"expr", row.kind == Kind::Instructions ? nlohmann::json(row.expr) : nlohmann::json()},
                          {"macs", row.macs ? nlohmann::json(*row.macs) : nlohmann::json()},
                          {"params", row.params},
                          {"share", share(row, total)},
                          {"output_shape", row.output_shape}};
    if (row.kind == Kind::Unsupported) object["reason"] = row.reason;
    array.push_back(std::move(object));
  }
  return array;
}

std::string detail_line(const Row& row) {
  switch (row.kind) {
    case Kind::Instructions:
      return row.expr;
    case Kind::Structural:
      return "structural -> " + shape_text(row.output_shape);
    case Kind::Unsupported:
      return "UNSUPPORTED: " + row.reason;
  }
  return "";
}

// What was inspected: an ONNX file, or a zoo model built in C++ (opset 0).
std::string origin(const graph::ImportResult& result) {
  if (result.opset == 0) return "gos zoo model, batch norms folded, activations fused";
  return fmt::format("graph '{}', ONNX opset {}", result.graph.name, result.opset);
}

void print_human(const std::string& model, const graph::ImportResult& result, const std::vector<Row>& listed) {
  const auto& graph = result.graph;
  fmt::print("model   {} ({})\n", model, origin(result));
  for (const auto& input : graph.inputs) fmt::print("input   {} {}\n", input.name, shape_text(input.shape));
  for (const auto& output : graph.outputs) fmt::print("output  {} {}\n", output.name, shape_text(output.shape));

  size_t name_width = 4;
  for (const auto& row : listed) name_width = std::max(name_width, row.node.size());
  name_width = std::min<size_t>(name_width, 48);
  const int64_t total = total_macs(listed);
  fmt::print("\n{:>4}  {:<{}}  {:<18} {:>15} {:>12} {:>7}\n", "#", "node", name_width, "op type", "MACs", "params",
             "share");
  for (size_t index = 0; index < listed.size(); ++index) {
    const Row& row = listed[index];
    std::string macs = row.macs ? grouped(*row.macs) : "?";
    std::string share_text = row.macs && *row.macs ? fmt::format("{:.1f}%", 100.0 * share(row, total)) : "-";
    fmt::print("{:>4}  {:<{}}  {:<18} {:>15} {:>12} {:>7}\n", index + 1, row.node, name_width, row.op_type, macs,
               grouped(row.params), share_text);
    fmt::print("      {}\n", detail_line(row));
  }
  auto count = [&](Kind kind) {
    return std::count_if(listed.begin(), listed.end(), [&](const Row& r) { return r.kind == kind; });
  };
  int64_t params = 0;
  for (const auto& row : listed) params += row.params;
  fmt::print("\ntotal   {} MACs, {} params; {} nodes: {} instructions, {} structural, {} unsupported\n", grouped(total),
             grouped(params), listed.size(), count(Kind::Instructions), count(Kind::Structural),
             count(Kind::Unsupported));
}

// A channel group as listed: what narrowing it touches.
struct GroupRow {
  narrow::ChannelGroup group;
  int64_t macs = 0;  // of every compute node the group narrows
};

std::vector<GroupRow> group_rows(const graph::Graph& graph) {
  std::map<std::string, int64_t> macs;
  for (const auto& cost : graph::node_costs(graph)) macs[cost.node] = cost.cost.macs;
  std::vector<GroupRow> listed;
  for (auto& group : narrow::channel_groups(graph)) {
    GroupRow row{.group = std::move(group)};
    std::set<std::string> nodes;
    for (const auto& narrowed : row.group.narrowed) nodes.insert(narrowed.node);
    for (const auto& node : nodes) row.macs += macs[node];
    listed.push_back(std::move(row));
  }
  return listed;
}

nlohmann::json json_groups(const std::vector<GroupRow>& listed) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& row : listed) {
    array.push_back({{"group", row.group.name()}, {"channels", row.group.extent}, {"producers", row.group.producers},
                     {"followers", row.group.followers}, {"consumers", row.group.consumers}, {"macs", row.macs}});
  }
  return array;
}

void print_groups(const std::vector<GroupRow>& listed, int64_t total) {
  fmt::print("\n{} channel group{} (channels that several operators share and that narrow together)\n", listed.size(),
             listed.size() == 1 ? "" : "s");
  if (listed.empty()) return;
  size_t name_width = 5;
  for (const auto& row : listed) name_width = std::max(name_width, row.group.name().size());
  name_width = std::min<size_t>(name_width, 48);
  fmt::print("{:>4}  {:<{}}  {:>8}  {:>9}  {:>9}  {:>9}  {:>10}\n", "#", "group", name_width, "channels", "producers", "followers",
             "consumers", "MACs share");
  for (size_t index = 0; index < listed.size(); ++index) {
    const auto& row = listed[index];
    fmt::print("{:>4}  {:<{}}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9.1f}%\n", index + 1, row.group.name(), name_width, row.group.extent,
               row.group.producers.size(), row.group.followers.size(), row.group.consumers.size(),
               total ? 100.0 * static_cast<double>(row.macs) / static_cast<double>(total) : 0.0);
  }
}

// One stderr line naming every node gos cannot represent.
void warn_unsupported(const std::vector<graph::UnsupportedNode>& unsupported) {
  if (unsupported.empty()) return;
  std::vector<std::string> names;
  for (const auto& node : unsupported) {
    names.push_back(fmt::format("'{}' (op {}, opset {})", node.node, node.op_type, node.opset));
  }
  fmt::print(
      stderr,
      "gos: warning: {} node{} not supported by gos (marked UNSUPPORTED; the model cannot be run or exported): {}\n",
      unsupported.size(), unsupported.size() == 1 ? " is" : "s are", fmt::join(names, ", "));
}

}  // namespace

Action add_inspect_command(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  auto* command = app.add_subcommand("inspect",
                                     "List every operator of an ONNX model (opset 11 to 17) or a zoo model as "
                                     "mathematical instructions with its MACs, params and share of the model's MACs");
  command
      ->add_option("model", options->model,
                   "the ONNX file, or a zoo model: " + fmt::format("{}", fmt::join(zoo::model_names(), ", ")))
      ->required();
  command->add_flag("--json", options->json, "print a JSON list with one object per node");
  command->add_option("--input-shape", options->input_shape, "the model's input shape, fixing dimensions the file leaves dynamic (e.g. 1,3,224,224)")
      ->delimiter(',');
  command->add_option("--subsample", options->subsample,
                      "show the model computing only every Nth position the global average pooling averages, as "
                      "gos adapt --subsample N searches it")
      ->capture_default_str();
  command->add_flag("--groups", options->groups,
                    "also list the channel groups: channels that several operators share (through residual additions, "
                    "depthwise layers, ...) and that narrow together");
  return [options] {
    graph::ImportResult result = load_model(options->model, /*allow_unsupported=*/true, options->input_shape);
    result.graph = graph::subsample_pooled_positions(result.graph, options->subsample).graph;
    std::vector<Row> listed = rows(result);
    // A graph with nodes gos cannot represent has no groups to trust: those nodes may mix channels.
    const bool groups = options->groups && result.unsupported.empty();
    const std::vector<GroupRow> group_list = groups ? group_rows(result.graph) : std::vector<GroupRow>{};
    if (options->json) {
      const auto nodes = json_rows(listed);
      fmt::print("{}\n", (groups ? nlohmann::json{{"nodes", nodes}, {"groups", json_groups(group_list)}} : nodes).dump(2));
    } else {
      print_human(options->model, result, listed);
      if (groups) print_groups(group_list, total_macs(listed));
    }
    if (options->groups && !groups) fmt::print(stderr, "gos: warning: no channel groups listed: the model has unsupported nodes\n");
    warn_unsupported(result.unsupported);
    return kSuccess;
  };
}

}  // namespace gos::cli
