// The adapt report as JSON, and writing it to disk (see report.h). The HTML page is in report_html.cpp.
#include "report/report.h"

#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace gos::report {

namespace {

using nlohmann::json;

json summary_to_json(const ModelSummary& summary) {
  json out = {{"median_ms", summary.median_ms}, {"p10_ms", summary.p10_ms}, {"p90_ms", summary.p90_ms},
              {"runs", summary.runs},           {"macs", summary.macs},     {"params", summary.params}};
  if (summary.accuracy) out["accuracy"] = *summary.accuracy;
  if (summary.mae) out["mae"] = *summary.mae;
  return out;
}

json layer_to_json(const LayerChoice& layer) {
  return {{"node", layer.node},
          {"op_type", layer.op_type},
          {"original_expr", layer.original_expr},
          {"chosen_expr", layer.chosen_expr},
          {"derivation", layer.derivation},
          {"kept", layer.kept},
          {"latency_ms_before", layer.latency_ms_before},
          {"latency_ms_after", layer.latency_ms_after},
          {"macs_before", layer.macs_before},
          {"macs_after", layer.macs_after},
          {"fidelity", layer.fidelity},
          {"sensitivity", layer.sensitivity},
          {"candidates", layer.candidates},
          {"predicted_slower", layer.predicted_slower},
          {"sensitivity_estimated", layer.sensitivity_estimated}};
}

json front_point_to_json(const FrontPoint& point) {
  return {{"predicted_latency_ms", point.predicted_latency_ms},
          {"predicted_loss", point.predicted_loss},
          {"changed_layers", point.changed_layers},
          {"chosen", point.chosen},
          {"measured_speedup", point.measured_speedup ? json(*point.measured_speedup) : json()}};
}

json attempt_to_json(const Attempt& attempt) {
  return {{"front_index", attempt.front_index},
          {"speedup", attempt.speedup},
          {"quality_drop", attempt.quality_drop},
          {"meets_constraint", attempt.meets_constraint},
          {"outcome", attempt.outcome},
          {"changes", attempt.changes}};
}

json stage_to_json(const StageTime& stage) { return {{"stage", stage.stage}, {"seconds", stage.seconds}}; }

template <typename T, typename Convert>
json array_to_json(const std::vector<T>& items, Convert convert) {
  json out = json::array();
  for (const T& item : items) out.push_back(convert(item));
  return out;
}

// Reads one JSON object and names every key by its full path ("layers[3].fidelity") when it is
// missing or of the wrong type, so a hand-edited or truncated report.json says what is wrong.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (!object_.is_object()) {
      throw std::runtime_error(fmt::format("report JSON: {} should be an object, found {}",
                                           path_.empty() ? "the report" : "'" + path_ + "'", object_.type_name()));
    }
  }

  std::string text(const char* key) const { return typed(key, &json::is_string, "a string").get<std::string>(); }

  bool boolean(const char* key) const { return typed(key, &json::is_boolean, "true or false").get<bool>(); }

  // JSON has no NaN or infinity; nlohmann writes them as null, so null reads back as NaN.
  double number(const char* key) const {
    const json& value = at(key);
    if (value.is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!value.is_number()) throw mistyped(key, "a number", value);
    return value.get<double>();
  }

  std::optional<double> optional_number(const char* key) const {
    if (!object_.contains(key) || object_.at(key).is_null()) return std::nullopt;
    return number(key);
  }

  int64_t integer(const char* key) const {
    const json& value = typed(key, &json::is_number_integer, "an integer");
    if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      throw mistyped(key, "an integer that fits 64 bits", value);
    }
    return value.get<int64_t>();
  }

  int small_integer(const char* key) const {
    int64_t value = integer(key);
    if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) {
      throw mistyped(key, "an integer that fits 32 bits", at(key));
    }
    return static_cast<int>(value);
  }

  uint64_t unsigned_integer(const char* key) const {
    return typed(key, &json::is_number_unsigned, "a non-negative integer").get<uint64_t>();
  }

  ObjectReader object(const char* key) const { return ObjectReader(at(key), path_of(key)); }

  // The key's object of strings, each read as text() reads one; absent or null: empty.
  std::map<std::string, std::string> optional_texts(const char* key) const {
    std::map<std::string, std::string> out;
    if (!object_.contains(key) || object_.at(key).is_null()) return out;
    const ObjectReader entries = object(key);
    for (const auto& item : entries.object_.items()) out[item.key()] = entries.text(item.key().c_str());
    return out;
  }

  template <typename T, typename Read>
  std::vector<T> array(const char* key, Read read) const {
    const json& items = typed(key, &json::is_array, "an array");
    std::vector<T> out;
    out.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) out.push_back(read(items[i], fmt::format("{}[{}]", path_of(key), i)));
    return out;
  }

 private:
  std::string path_of(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  const json& at(const char* key) const {
    auto found = object_.find(key);
    if (found == object_.end()) throw std::runtime_error(fmt::format("report JSON: missing key '{}'", path_of(key)));
    return *found;
  }

  const json& typed(const char* key, bool (json::*is_type)() const noexcept, const char* expected) const {
    const json& value = at(key);
    if (!(value.*is_type)()) throw mistyped(key, expected, value);
    return value;
  }

  std::runtime_error mistyped(const char* key, const char* expected, const json& value) const {
    return std::runtime_error(
        fmt::format("report JSON: key '{}' should be {}, found {}", path_of(key), expected, value.type_name()));
  }

  const json& object_;
  std::string path_;
};

ModelSummary summary_from_json(const ObjectReader& in) {
  ModelSummary summary;
  summary.accuracy = in.optional_number("accuracy");
  summary.mae = in.optional_number("mae");
  summary.median_ms = in.number("median_ms");
  summary.p10_ms = in.number("p10_ms");
  summary.p90_ms = in.number("p90_ms");
  summary.runs = in.small_integer("runs");
  summary.macs = in.integer("macs");
  summary.params = in.integer("params");
  return summary;
}

LayerChoice layer_from_json(const json& object, const std::string& path) {
  ObjectReader in(object, path);
  LayerChoice layer;
  layer.node = in.text("node");
  layer.op_type = in.text("op_type");
  layer.original_expr = in.text("original_expr");
  layer.chosen_expr = in.text("chosen_expr");
  layer.derivation = in.text("derivation");
  layer.kept = in.boolean("kept");
  layer.latency_ms_before = in.number("latency_ms_before");
  layer.latency_ms_after = in.number("latency_ms_after");
  layer.macs_before = in.integer("macs_before");
  layer.macs_after = in.integer("macs_after");
  layer.fidelity = in.number("fidelity");
  layer.sensitivity = in.number("sensitivity");
  layer.candidates = in.small_integer("candidates");
  // Reports written before the search screened candidates by prediction have none.
  layer.predicted_slower = static_cast<int>(in.optional_number("predicted_slower").value_or(0));
  layer.sensitivity_estimated = static_cast<int>(in.optional_number("sensitivity_estimated").value_or(0));
  return layer;
}

FrontPoint front_point_from_json(const json& object, const std::string& path) {
  ObjectReader in(object, path);
  FrontPoint point;
  point.predicted_latency_ms = in.number("predicted_latency_ms");
  point.predicted_loss = in.number("predicted_loss");
  point.changed_layers = in.small_integer("changed_layers");
  point.chosen = in.boolean("chosen");
  point.measured_speedup = in.optional_number("measured_speedup");
  return point;
}

Attempt attempt_from_json(const json& object, const std::string& path) {
  ObjectReader in(object, path);
  Attempt attempt;
  attempt.front_index = in.small_integer("front_index");
  attempt.speedup = in.number("speedup");
  attempt.quality_drop = in.number("quality_drop");
  attempt.meets_constraint = in.boolean("meets_constraint");
  attempt.outcome = in.text("outcome");
  attempt.changes = in.optional_texts("changes");  // none in reports written before attempts listed them
  return attempt;
}

StageTime stage_from_json(const json& object, const std::string& path) {
  ObjectReader in(object, path);
  return StageTime{.stage = in.text("stage"), .seconds = in.number("seconds")};
}

std::string note_from_json(const json& value, const std::string& path) {
  if (!value.is_string()) {
    throw std::runtime_error(fmt::format("report JSON: '{}' should be a string, found {}", path, value.type_name()));
  }
  return value.get<std::string>();
}

// Both files go to disk through one path: write a temporary beside the target, then rename it over
// the target (atomic within one directory), so a reader sees the old report or the new one, never half.
void write_atomically(const std::filesystem::path& target, const std::string& contents) {
  std::filesystem::path temporary = target;
  temporary += fmt::format(".tmp{}", static_cast<long>(getpid()));
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << contents;
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw std::runtime_error(fmt::format("cannot write the report file {}", temporary.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, target, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error(fmt::format("cannot write the report file {}: {}", target.string(), error.message()));
  }
}

void create_report_dir(const std::filesystem::path& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    throw std::runtime_error(fmt::format("cannot create the report directory {}: {}", dir.string(), error.message()));
  }
  if (!std::filesystem::is_directory(dir)) {
    throw std::runtime_error(fmt::format("cannot write the report to {}: not a directory", dir.string()));
  }
}

}  // namespace

nlohmann::json to_json(const AdaptReport& report) {
  json out = {
      {"model", report.model},
      {"data", report.data},
      {"target", report.target},
      {"backend", report.backend},
      {"threads", report.threads},
      {"machine", report.machine},
      {"seed", report.seed},
      {"metric", report.metric},
      {"max_quality_drop", report.max_quality_drop},
      {"original", summary_to_json(report.original)},
      {"adapted", summary_to_json(report.adapted)},
      {"speedup", report.speedup},
      {"quality_drop", report.quality_drop},
      {"constraint_met", report.constraint_met},
      {"verdict", report.verdict},
      {"layers", array_to_json(report.layers, layer_to_json)},
      {"front", array_to_json(report.front, front_point_to_json)},
      {"attempts", array_to_json(report.attempts, attempt_to_json)},
      {"stages", array_to_json(report.stages, stage_to_json)},
      {"notes", report.notes},
      {"finished_at", report.finished_at},
  };
  if (!report.narrowed.empty()) out["narrowed"] = report.narrowed;
  if (!report.classes.empty()) {
    out["classes"] = array_to_json(report.classes, [](const ClassResult& c) {
      return json{{"class", c.name}, {"images", c.images}, {"original", c.original}, {"adapted", c.adapted}};
    });
  }
  if (report.precision != "fp32") {
    out["precision"] = report.precision;
    out["points"] = array_to_json(report.points, [](const PrecisionPoint& point) {
      json j = summary_to_json(point.summary);
      j["model"] = point.model;
      j["precision"] = point.precision;
      return j;
    });
  }
  if (report.machine_load) {
    out["machine_load"] = *report.machine_load;
    out["machine_cores"] = report.machine_cores;
  }
  if (report.target_speedup) out["target_speedup"] = *report.target_speedup;
  if (report.target_latency_ms) out["target_latency_ms"] = *report.target_latency_ms;
  // The name the issue promised to readers of classifier reports; quality_drop is the general one.
  if (report.metric == "accuracy") out["acc_drop"] = report.quality_drop;
  return out;
}

AdaptReport from_json(const nlohmann::json& json) {
  ObjectReader in(json, "");
  AdaptReport report;
  report.model = in.text("model");
  report.data = in.text("data");
  report.target = in.text("target");
  report.backend = in.text("backend");
  report.threads = in.small_integer("threads");
  report.machine = in.text("machine");
  report.machine_load = in.optional_number("machine_load");
  report.machine_cores = static_cast<int>(in.optional_number("machine_cores").value_or(0));
  report.seed = in.unsigned_integer("seed");
  report.metric = in.text("metric");
  report.target_speedup = in.optional_number("target_speedup");
  report.target_latency_ms = in.optional_number("target_latency_ms");
  report.max_quality_drop = in.number("max_quality_drop");
  if (json.contains("precision")) {
    report.precision = in.text("precision");
    report.points = in.array<PrecisionPoint>("points", [](const nlohmann::json& object, const std::string& path) {
      ObjectReader point(object, path);
      return PrecisionPoint{point.text("model"), point.text("precision"), summary_from_json(point)};
    });
  }
  report.original = summary_from_json(in.object("original"));
  report.adapted = summary_from_json(in.object("adapted"));
  report.speedup = in.number("speedup");
  report.quality_drop = in.number("quality_drop");
  report.constraint_met = in.boolean("constraint_met");
  report.verdict = in.text("verdict");
  report.narrowed = in.optional_texts("narrowed");
  if (json.contains("classes")) {
    report.classes = in.array<ClassResult>("classes", [](const nlohmann::json& object, const std::string& path) {
      ObjectReader c(object, path);
      return ClassResult{c.text("class"), c.integer("images"), c.number("original"), c.number("adapted")};
    });
  }
  report.layers = in.array<LayerChoice>("layers", layer_from_json);
  report.front = in.array<FrontPoint>("front", front_point_from_json);
  report.attempts = in.array<Attempt>("attempts", attempt_from_json);
  report.stages = in.array<StageTime>("stages", stage_from_json);
  report.notes = in.array<std::string>("notes", note_from_json);
  report.finished_at = in.text("finished_at");
  return report;
}

void write_report(const AdaptReport& report, const std::filesystem::path& dir) {
  // Render both before touching the disk: a rendering error must not leave one new file and one old.
  // Invalid UTF-8 in a name (from a foreign ONNX file) is replaced rather than aborting the whole report.
  std::string json_text = to_json(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::string html_text = to_html(report);
  create_report_dir(dir);
  write_atomically(dir / "report.json", json_text);
  write_atomically(dir / "report.html", html_text);
}

}  // namespace gos::report
