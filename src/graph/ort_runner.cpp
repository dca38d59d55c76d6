// Drives tools/ort/run.js (ONNX Runtime in Node.js) through files in a temporary folder: a JSON
// manifest and raw little-endian float32 tensors in, a JSON result and raw tensors out.
#include "graph/ort_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/scratch_folder.h"

extern char** environ;

namespace gos::graph {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "run.js reads tensors as little-endian float32");

// A folder for the runner's files; failing to make one is an ONNX Runtime error like the others here.
class TemporaryFolder : public util::ScratchFolder {
 public:
  TemporaryFolder() try : util::ScratchFolder("gos-ort") {
  } catch (const std::runtime_error& error) {
    throw OrtError(error.what());
  }
};

std::optional<fs::path> find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream entries(path ? path : "");
  for (std::string entry; std::getline(entries, entry, ':');) {
    fs::path candidate = fs::path(entry.empty() ? "." : entry) / program;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return std::nullopt;
}

fs::path node_executable() {
  for (const char* name : {"node", "nodejs"}) {
    if (auto found = find_on_path(name)) return *found;
  }
  throw OrtError("ONNX Runtime needs Node.js, and neither node nor nodejs is on PATH (run make setup)");
}

fs::path run_script() {
  fs::path dir = ort_tool_dir();
  if (!fs::exists(dir / "run.js")) throw OrtError("the ONNX Runtime runner " + (dir / "run.js").string() + " is missing");
  if (!fs::exists(dir / "node_modules" / "onnxruntime-node" / "package.json")) {
    throw OrtError("onnxruntime-node is not installed in " + dir.string() + " (run make setup)");
  }
  return dir / "run.js";
}

std::string read_text(const fs::path& file) {
  std::ifstream stream(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(stream), {});
}

// The last lines of a log, enough to say what went wrong.
std::string tail(const std::string& text, size_t characters = 2000) {
  return text.size() <= characters ? text : "..." + text.substr(text.size() - characters);
}

struct Exit {
  int status;
  std::string stderr_text;
};

// Runs node with `arguments`, stdout and stderr into files in `folder`; returns the exit status.
Exit run_node(const std::vector<std::string>& arguments, const fs::path& folder) {
  fs::path node = node_executable();
  std::vector<std::string> argv_strings{node.string()};
  argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& argument : argv_strings) argv.push_back(argument.data());
  argv.push_back(nullptr);

  const fs::path out = folder / "stdout.txt", err = folder / "stderr.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, node.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw OrtError("cannot start " + node.string() + ": " + std::strerror(spawned));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw OrtError(std::string("waiting for the ONNX Runtime runner failed: ") + std::strerror(errno));
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, read_text(err) + read_text(out)};
}

void write_tensor(const fs::path& file, const ir::Tensor& tensor) {
  std::ofstream stream(file, std::ios::binary);
  stream.write(reinterpret_cast<const char*>(tensor.data.data()),
               static_cast<std::streamsize>(tensor.data.size() * sizeof(float)));
  if (!stream) throw OrtError("cannot write " + file.string());
}

ir::Tensor read_tensor(const fs::path& file, std::vector<int64_t> shape) {
  ir::Tensor tensor(std::move(shape));
  std::ifstream stream(file, std::ios::binary);
  stream.read(reinterpret_cast<char*>(tensor.data.data()), static_cast<std::streamsize>(tensor.data.size() * sizeof(float)));
  if (!stream) throw OrtError("ONNX Runtime's output " + file.string() + " is shorter than its shape");
  return tensor;
}

json manifest_of(const std::vector<OrtRun>& runs, const OrtOptions& options, const fs::path& folder) {
  json manifest{{"threads", options.threads}, {"runs", json::array()}};
  if (options.bench) {
    manifest["bench"] = {{"warmup", options.bench->warmup},
                         {"repeat", options.bench->repeat},
                         {"budget_ms", 1000 * options.bench->budget_seconds},
                         {"max_repeat", options.bench->max_repeat},
                         {"profile", options.bench->profile}};
  }
  for (size_t r = 0; r < runs.size(); ++r) {
    json inputs = json::array();
    size_t position = 0;
    for (const auto& [name, tensor] : runs[r].inputs) {
      fs::path file = folder / ("input_" + std::to_string(r) + "_" + std::to_string(position++) + ".bin");
      write_tensor(file, tensor);
      inputs.push_back({{"name", name}, {"shape", tensor.shape}, {"file", file.string()}});
    }
    manifest["runs"].push_back({{"model", fs::absolute(runs[r].model).string()},
                                {"inputs", inputs},
                                {"output_dir", (folder / ("outputs_" + std::to_string(r))).string()}});
  }
  return manifest;
}

OrtTiming timing_of(const json& timing) {
  return {timing["repeat"].get<int>(), timing["median"].get<double>(), timing["p10"].get<double>(),
          timing["p90"].get<double>(),  timing["mean"].get<double>(),   timing["min"].get<double>(),
          timing["max"].get<double>()};
}

OrtResult result_of(const json& run) {
  OrtResult result;
  if (run.contains("error")) {
    result.error = run["error"].get<std::string>();
    return result;
  }
  for (const auto& output : run["outputs"]) {
    result.outputs[output["name"].get<std::string>()] =
        read_tensor(output["file"].get<std::string>(), output["shape"].get<std::vector<int64_t>>());
  }
  if (run.contains("timing_ms")) result.timing = timing_of(run["timing_ms"]);
  if (run.contains("kernel_ms")) result.kernel_timing = timing_of(run["kernel_ms"]);
  if (run.contains("layout_ms")) result.layout_timing = timing_of(run["layout_ms"]);
  if (run.contains("quantize_ms")) result.quantize_timing = timing_of(run["quantize_ms"]);
  return result;
}

}  // namespace

fs::path ort_tool_dir() {
  if (const char* configured = std::getenv("GOS_ORT_DIR"); configured && *configured) return configured;
  return GOS_ORT_DIR;
}

std::vector<OrtResult> run_onnx_runtime(const std::vector<OrtRun>& runs, const OrtOptions& options) {
  if (runs.empty()) return {};
  fs::path script = run_script();
  TemporaryFolder folder;
  const fs::path manifest_file = folder.path() / "manifest.json";
  std::ofstream(manifest_file) << manifest_of(runs, options, folder.path()).dump();
  Exit exit = run_node({script.string(), manifest_file.string()}, folder.path());
  const fs::path result_file = folder.path() / "result.json";
  if ((exit.status != 0 && exit.status != 1) || !fs::exists(result_file)) {
    throw OrtError("the ONNX Runtime runner failed (exit status " + std::to_string(exit.status) +
                   "): " + tail(exit.stderr_text));
  }
  json result = json::parse(read_text(result_file));
  std::vector<OrtResult> results;
  for (const auto& run : result["runs"]) results.push_back(result_of(run));
  return results;
}

ir::TensorMap run_onnx_runtime(const fs::path& model, const ir::TensorMap& inputs, const OrtOptions& options) {
  OrtResult result = run_onnx_runtime({OrtRun{model, inputs}}, options).at(0);
  if (!result.error.empty()) throw OrtError("ONNX Runtime cannot run " + model.string() + ": " + result.error);
  return result.outputs;
}

std::string onnx_runtime_version() {
  fs::path script = run_script();
  TemporaryFolder folder;
  Exit exit = run_node({script.string(), "--version"}, folder.path());
  if (exit.status != 0) throw OrtError("cannot ask onnxruntime-node its version: " + tail(exit.stderr_text));
  std::string version = read_text(folder.path() / "stdout.txt");
  while (!version.empty() && std::isspace(static_cast<unsigned char>(version.back()))) version.pop_back();
  return version;
}

}  // namespace gos::graph
