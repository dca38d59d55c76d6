// gos conformance: runs test folders in ONNX's backend-test layout (model.onnx beside
// test_data_set_N/input_K.pb and output_K.pb, as ONNX's own suite and the ONNX model zoo ship them)
// through gos's import and backends, and compares with the expected outputs.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/run_backends.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "graph/ort_runner.h"
#include "util/progress.h"
#include "util/scratch_folder.h"

namespace gos::cli {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct ConformanceOptions {
  std::vector<std::string> folders;
  std::vector<std::string> backends{"interpreter", "torch", "ort"};
  double rtol = 1e-3, atol = 1e-7;  // ONNX's backend test defaults
  std::string filter;               // only tests whose name contains this
  bool json = false;
};

struct DataSet {
  std::vector<fs::path> inputs, outputs;
};

struct TestCase {
  std::string suite, name;
  fs::path folder;
  std::vector<DataSet> data_sets;
};

// What happened to one test on one backend.
struct BackendResult {
  std::string status;  // "pass", "fail" (a wrong answer) or "error" (the backend threw)
  std::string detail;
};

struct TestResult {
  const TestCase* test = nullptr;
  std::string status;  // "not-claimed", "unsupported", "imported"
  std::string reason;
  bool weights_as_initializers = false;  // extra graph inputs imported as initializers
  std::map<std::string, BackendResult> backends;
};

std::vector<fs::path> numbered(const fs::path& folder, const std::string& prefix) {
  std::vector<fs::path> files;
  for (int index = 0; fs::exists(folder / fmt::format("{}_{}.pb", prefix, index)); ++index) {
    files.push_back(folder / fmt::format("{}_{}.pb", prefix, index));
  }
  return files;
}

std::optional<TestCase> read_case(const fs::path& folder, const std::string& suite) {
  if (!fs::exists(folder / "model.onnx")) return std::nullopt;
  TestCase test{suite, folder.filename().string(), folder, {}};
  std::vector<fs::path> sets;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(entry.path());
  }
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) test.data_sets.push_back({numbered(set, "input"), numbered(set, "output")});
  return test;
}

// A folder is one test (it holds model.onnx) or a suite of them (its subfolders).
std::vector<TestCase> discover(const std::vector<std::string>& folders, const std::string& filter) {
  std::vector<TestCase> tests;
  for (const auto& given : folders) {
    const fs::path folder(given);
    if (!fs::is_directory(folder)) throw graph::GraphError(given + ": not a folder (give a test folder holding model.onnx, or a folder of them)");
    if (auto test = read_case(folder, folder.parent_path().filename().string())) {
      tests.push_back(std::move(*test));
      continue;
    }
    std::vector<fs::path> children;
    for (const auto& entry : fs::directory_iterator(folder)) {
      if (entry.is_directory()) children.push_back(entry.path());
    }
    std::sort(children.begin(), children.end());
    const size_t before = tests.size();
    for (const auto& child : children) {
      if (auto test = read_case(child, folder.filename().string())) tests.push_back(std::move(*test));
    }
    if (tests.size() == before) throw graph::GraphError(given + ": no model.onnx in it or in its subfolders");
  }
  if (!filter.empty()) {
    std::erase_if(tests, [&](const TestCase& test) { return test.name.find(filter) == std::string::npos; });
  }
  return tests;
}

// Whether `actual` equals `expected` within the tolerances; otherwise why not.
std::optional<std::string> mismatch(const ir::Tensor& actual, const ir::Tensor& expected, double rtol, double atol) {
  if (actual.shape != expected.shape) {
    return fmt::format("shape {} where {} is expected", ir::shape_text(actual.shape), ir::shape_text(expected.shape));
  }
  int64_t worst = -1, wrong = 0;
  double worst_excess = 0;
  for (int64_t i = 0; i < expected.elements(); ++i) {
    const double a = actual.data[i], e = expected.data[i];
    if (std::isnan(e) && std::isnan(a)) continue;
    if (std::isinf(e) && a == e) continue;
    const double excess = std::abs(a - e) - (atol + rtol * std::abs(e));
    if (excess > 0 || std::isnan(excess)) {
      ++wrong;
      if (worst < 0 || excess > worst_excess || std::isnan(excess)) worst = i, worst_excess = excess;
    }
  }
  if (wrong == 0) return std::nullopt;
  return fmt::format("{} of {} values differ; at {}: {} where {} is expected", wrong, expected.elements(), worst, actual.data[worst],
                     expected.data[worst]);
}

// The data inputs of a data set by graph input name: the file's own name when it is one of the
// model's inputs, else the input in that position.
ir::TensorMap data_inputs(const graph::Graph& model, const std::vector<std::string>& declared, const DataSet& set) {
  ir::TensorMap bound;
  for (size_t index = 0; index < set.inputs.size() && index < declared.size(); ++index) {
    graph::NamedTensor tensor = graph::read_tensor_file(set.inputs[index].string());
    const std::string name = std::any_of(declared.begin(), declared.end(), [&](const auto& input) { return input == tensor.name; })
                                 ? tensor.name
                                 : declared[index];
    if (std::any_of(model.inputs.begin(), model.inputs.end(), [&](const auto& input) { return input.name == name; })) {
      bound[name] = std::move(tensor.tensor);
    }
  }
  return bound;
}

// Imports the test's model for one data set: as written, or, when that fails and the model has
// more than one input, with every input after the first made an initializer from the data set
// (ONNX's node tests feed weights, shapes and indices as inputs where real models store them).
graph::Graph import_case(const TestCase& test, const graph::OnnxOutline& outline, const DataSet& set, TestResult& result) {
  const std::string model = (test.folder / "model.onnx").string();
  try {
    return graph::import_onnx(model).graph;
  } catch (const graph::GraphError& as_written) {
    if (outline.inputs.size() < 2 || set.inputs.size() < 2) throw;
    std::map<std::string, std::string> constants;
    for (size_t index = 1; index < outline.inputs.size() && index < set.inputs.size(); ++index) {
      constants[outline.inputs[index]] = set.inputs[index].string();
    }
    result.weights_as_initializers = true;
    return graph::import_onnx(model, {.constant_inputs = constants}).graph;
  }
}

std::string first_line(std::string text) {
  if (const auto end = text.find('\n'); end != std::string::npos) text.resize(end);
  return text;
}

// Compares every output of a data set; records the first failure.
void compare(const graph::Graph& model, const ir::TensorMap& outputs, const DataSet& set, const ConformanceOptions& options,
             BackendResult& result) {
  for (size_t index = 0; index < set.outputs.size() && index < model.outputs.size(); ++index) {
    const ir::Tensor expected = graph::read_tensor_file(set.outputs[index].string()).tensor;
    const auto found = outputs.find(model.outputs[index].name);
    if (found == outputs.end()) {
      result = {"fail", "no output '" + model.outputs[index].name + "'"};
      return;
    }
    if (auto why = mismatch(found->second, expected, options.rtol, options.atol)) {
      result = {"fail", fmt::format("output '{}': {}", model.outputs[index].name, *why)};
      return;
    }
  }
}

// ONNX Runtime runs once for all tests (one process): the re-exported files are gathered first.
struct PendingOrt {
  TestResult* result;
  const graph::Graph* model;
  const DataSet* set;
  size_t run;
};

std::vector<TestResult> run_tests(const std::vector<TestCase>& tests, const ConformanceOptions& options) {
  const std::set<std::string> imported = graph::imported_op_types();
  const bool with_ort = std::find(options.backends.begin(), options.backends.end(), "ort") != options.backends.end();
  util::ScratchFolder scratch("gos-conformance");
  std::vector<TestResult> results(tests.size());
  std::vector<std::unique_ptr<graph::Graph>> kept;  // the models ONNX Runtime's runs compare against
  std::vector<graph::OrtRun> ort_runs;
  std::vector<PendingOrt> pending;
  util::Progress progress("conformance", static_cast<int64_t>(tests.size()), !options.json);
  for (size_t t = 0; t < tests.size(); ++t) {
    const TestCase& test = tests[t];
    TestResult& result = results[t];
    result.test = &test;
    progress.update(static_cast<int64_t>(t), test.name);
    graph::OnnxOutline outline;
    try {
      outline = graph::outline_onnx((test.folder / "model.onnx").string());
    } catch (const graph::GraphError& error) {
      result = {&test, "unsupported", error.what(), false, {}};
      continue;
    }
    std::vector<std::string> unclaimed;
    for (const auto& op_type : outline.op_types) {
      if (!imported.count(op_type)) unclaimed.push_back(op_type);
    }
    if (!unclaimed.empty()) {
      result.status = "not-claimed";
      result.reason = fmt::format("{}", fmt::join(unclaimed, ", "));
      continue;
    }
    if (test.data_sets.empty()) {
      result.status = "unsupported";
      result.reason = "no test_data_set_N folder";
      continue;
    }
    result.status = "imported";
    for (size_t s = 0; s < test.data_sets.size() && result.status == "imported"; ++s) {
      const DataSet& set = test.data_sets[s];
      auto model = std::make_unique<graph::Graph>();
      ir::TensorMap inputs;
      try {
        *model = import_case(test, outline, set, result);
        inputs = data_inputs(*model, outline.inputs, set);
      } catch (const std::exception& error) {
        result.status = "unsupported";
        result.reason = first_line(error.what());
        result.backends.clear();
        break;
      }
      for (const auto& backend : options.backends) {
        BackendResult& outcome = result.backends[backend];
        if (outcome.status.empty()) outcome.status = "pass";
        if (outcome.status != "pass") continue;
        try {
          if (backend == "ort") {
            const fs::path file = scratch.file(fmt::format("{}-{}.onnx", t, s));
            graph::write_onnx(*model, file);
            pending.push_back({&result, model.get(), &set, ort_runs.size()});
            ort_runs.push_back({file, inputs});
            continue;
          }
          compare(*model, run_on_backend(*model, inputs, backend), set, options, outcome);
        } catch (const std::exception& error) {
          outcome = {"error", first_line(error.what())};
        }
      }
      kept.push_back(std::move(model));
    }
  }
  if (with_ort && !ort_runs.empty()) {
    progress.update(static_cast<int64_t>(tests.size()), fmt::format("ONNX Runtime: {} runs", ort_runs.size()));
    const auto ran = graph::run_onnx_runtime(ort_runs, {.threads = 1});
    for (const auto& run : pending) {
      BackendResult& outcome = run.result->backends["ort"];
      if (run.result->status != "imported" || outcome.status != "pass") continue;
      if (!ran[run.run].error.empty()) {
        outcome = {"error", first_line(ran[run.run].error)};
      } else {
        compare(*run.model, ran[run.run].outputs, *run.set, options, outcome);
      }
    }
  }
  progress.finish();
  return results;
}

struct SuiteCounts {
  int tests = 0, claimed = 0, imported = 0;
  std::map<std::string, int> passed;
};

std::map<std::string, SuiteCounts> count(const std::vector<TestResult>& results) {
  std::map<std::string, SuiteCounts> suites;
  for (const auto& result : results) {
    SuiteCounts& counts = suites[result.test->suite];
    ++counts.tests;
    if (result.status == "not-claimed") continue;
    ++counts.claimed;
    if (result.status != "imported") continue;
    ++counts.imported;
    for (const auto& [backend, outcome] : result.backends) counts.passed[backend] += outcome.status == "pass";
  }
  return suites;
}

bool all_pass(const TestResult& result) {
  return std::all_of(result.backends.begin(), result.backends.end(), [](const auto& entry) { return entry.second.status == "pass"; });
}

void print_table(const std::vector<TestResult>& results, const ConformanceOptions& options) {
  const auto suites = count(results);
  fmt::print("{:<20} {:>6} {:>8} {:>9}", "suite", "tests", "claimed", "imported");
  for (const auto& backend : options.backends) fmt::print(" {:>12}", backend);
  fmt::print("\n");
  for (const auto& [suite, counts] : suites) {
    fmt::print("{:<20} {:>6} {:>8} {:>9}", suite, counts.tests, counts.claimed, counts.imported);
    for (const auto& backend : options.backends) {
      const auto passed = counts.passed.find(backend);
      fmt::print(" {:>12}", passed == counts.passed.end() ? 0 : passed->second);
    }
    fmt::print("\n");
  }
  fmt::print("(claimed: every op type is one gos imports; the backends count tests passing on every data set, rtol {} atol {})\n",
             options.rtol, options.atol);
  bool header = false;
  for (const auto& result : results) {
    if (result.status != "imported" || all_pass(result)) continue;
    if (!header) fmt::print("\nwrong answers and errors:\n");
    header = true;
    for (const auto& [backend, outcome] : result.backends) {
      if (outcome.status != "pass") fmt::print("  {}/{} on {}: {}: {}\n", result.test->suite, result.test->name, backend, outcome.status, outcome.detail);
    }
  }
  header = false;
  for (const auto& result : results) {
    if (result.status != "unsupported") continue;
    if (!header) fmt::print("\nunsupported:\n");
    header = true;
    fmt::print("  {}/{}: {}\n", result.test->suite, result.test->name, result.reason);
  }
}

json to_json(const std::vector<TestResult>& results, const ConformanceOptions& options) {
  json suites = json::object();
  for (const auto& [suite, counts] : count(results)) {
    suites[suite] = {{"tests", counts.tests}, {"claimed", counts.claimed}, {"imported", counts.imported}, {"passed", counts.passed}};
  }
  json tests = json::array();
  for (const auto& result : results) {
    json entry{{"suite", result.test->suite}, {"name", result.test->name}, {"status", result.status}};
    if (!result.reason.empty()) entry["reason"] = result.reason;
    if (result.status == "imported") {
      entry["weights_as_initializers"] = result.weights_as_initializers;
      for (const auto& [backend, outcome] : result.backends) {
        entry["backends"][backend] = {{"status", outcome.status}};
        if (!outcome.detail.empty()) entry["backends"][backend]["detail"] = outcome.detail;
      }
    }
    tests.push_back(std::move(entry));
  }
  return {{"rtol", options.rtol}, {"atol", options.atol}, {"backends", options.backends}, {"suites", suites}, {"tests", tests}};
}

int run_conformance(const ConformanceOptions& options) {
  const auto tests = discover(options.folders, options.filter);
  const auto results = run_tests(tests, options);
  if (options.json) {
    fmt::print("{}\n", to_json(results, options).dump(2));
  } else {
    print_table(results, options);
  }
  const bool wrong = std::any_of(results.begin(), results.end(), [](const auto& result) { return result.status == "imported" && !all_pass(result); });
  return wrong ? kFailure : kSuccess;
}

}  // namespace

Action add_conformance_command(CLI::App& app) {
  auto options = std::make_shared<ConformanceOptions>();
  auto* command = app.add_subcommand(
      "conformance", "Run ONNX backend-test folders (model.onnx with test_data_set_N) through gos and compare with their expected outputs");
  command->add_option("folders", options->folders, "test folders holding model.onnx, or folders of them (e.g. ONNX's backend test data)")
      ->required();
  command->add_option("--backends", options->backends, "the backends to run, of interpreter, torch, mobile and ort")
      ->delimiter(',')
      ->check(CLI::IsMember(backend_names()))
      ->capture_default_str();
  command->add_option("--rtol", options->rtol, "relative tolerance")->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--atol", options->atol, "absolute tolerance")->capture_default_str()->check(CLI::NonNegativeNumber);
  command->add_option("--filter", options->filter, "only the tests whose folder name contains this");
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] { return run_conformance(*options); };
}

}  // namespace gos::cli
