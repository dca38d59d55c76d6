#pragma once
// The public face of measuring on another machine: `gos agent` on the board serves latency
// measurements over HTTPS, and the workstation pairs with it (a pinned certificate and a token)
// and sends it models to time.
//
// Only ONNX crosses the wire. The agent imports each file with gos's own importer and lowers it to
// the requested backend itself: nothing executable is accepted. Every answer carries the board's
// description (CPU, cores, governor, temperature) and its fixed loop's timing taken with the
// models, so the workstation can tell a throttled or busy board. Protocol and security:
// docs/device.md.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "measure/measure.h"

namespace gos::device {

// A device that cannot be reached, trusted or understood: the message is one line that names the
// device and says what to do.
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the machine is, as the OS tells it. Empty or unset where it does not (a governor inside a
// VM, a temperature without a thermal zone).
struct MachineDescription {
  std::string fingerprint;  // measure::machine_fingerprint(): what latency caches key timings by
  std::string cpu;          // the CPU model, or the board's model on ARM
  int cores = 0;
  std::string architecture;  // "x86_64", "aarch64", ...
  std::string governor;      // cpufreq's scaling governor of cpu0
  std::optional<double> temperature_c;  // the first thermal zone
  std::string gos_version;
};
MachineDescription describe_this_machine();
// As the agent's answers and `gos device check --json` write it.
nlohmann::json to_json(const MachineDescription& machine);
// "Raspberry Pi 4 Model B Rev 1.4, aarch64, 4 cores, governor ondemand, 51.6 C"
std::string summary(const MachineDescription& machine);

// Where gos keeps its configuration: $XDG_CONFIG_HOME/gos, or $HOME/.config/gos.
std::filesystem::path config_folder();

// ---- The agent (agent.cpp, identity.cpp) ----------------------------------------------------------

// The agent's credentials, made on its first start: a self-signed certificate and its key, and a
// random token, each a file readable by its owner alone (0600).
struct AgentIdentity {
  std::filesystem::path certificate, key, token_file;
  std::string token;
  std::string fingerprint;  // SHA-256 of the certificate (DER), hex pairs joined by ':'
};
// Reads the identity kept in `folder`, creating what is missing (the folder itself 0700).
AgentIdentity ensure_agent_identity(const std::filesystem::path& folder);
// SHA-256 of a PEM certificate file's certificate, as AgentIdentity::fingerprint.
std::string certificate_fingerprint(const std::filesystem::path& certificate);

struct AgentOptions {
  std::string host = "0.0.0.0";
  int port = 7070;  // 0: any free port (Agent::port() says which)
  std::filesystem::path folder;  // the identity's folder; empty: config_folder() / "agent"
  size_t max_request_bytes = 64 << 20;  // a larger request is refused before its body is read
  int queue = 4;                        // requests waiting behind the one being measured
  // No request may ask for more timing than this (its models' budgets together), nor wait longer
  // than this for its turn.
  double max_request_seconds = 300;
};

// What one agent served, for its log line (one per request).
struct ServedRequest {
  std::string route, client;
  int status = 0;
  std::string detail;  // the refusal's reason, or what was measured
  double seconds = 0;
};

// An agent bound to its address on construction (throws DeviceError when it cannot bind or its
// identity cannot be made) and serving from run() until stop().
class Agent {
 public:
  explicit Agent(AgentOptions options, std::function<void(const ServedRequest&)> on_request = {});
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  int port() const;
  const AgentIdentity& identity() const;
  void run();   // blocks until stop()
  void stop();  // from any thread

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---- The workstation (client.cpp) ----------------------------------------------------------------

// A paired device, as `gos device add` records it.
struct Device {
  std::string name;
  std::string url;          // https://HOST:PORT
  std::string fingerprint;  // the agent's certificate, pinned
  std::string token;
};

// The paired devices, kept in config_folder()/devices.json (0600).
class DeviceRegistry {
 public:
  explicit DeviceRegistry(std::filesystem::path file = config_folder() / "devices.json");
  std::vector<Device> all() const;
  // Throws std::invalid_argument naming the devices there are.
  Device find(const std::string& name) const;
  void add(const Device& device);  // replaces a device of the same name
  bool remove(const std::string& name);
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

// Throws std::invalid_argument when the name, URL or fingerprint is malformed.
void check_device(const Device& device);

// Timings taken on the device, with what it was and how steady it ran meanwhile.
struct Measured {
  std::vector<measure::Timing> timings;
  MachineDescription machine;
  measure::Timing reference;  // measure::time_machine_reference, run right after the models
};

enum class BenchMode {
  Each,         // every model timed alone (measure::bench_model)
  SideBySide,   // the models' runs alternating (measure::bench_models_interleaved, two models)
  Operators,    // one-node graphs timed as bench_ops and bench_graphs_alone time operators
};

// One connection to a paired agent. Every call throws DeviceError when the agent cannot be reached,
// presents another certificate, refuses the token, or refuses the request (its reason).
class RemoteDevice {
 public:
  explicit RemoteDevice(Device device, std::chrono::seconds timeout = std::chrono::seconds(600));
  ~RemoteDevice();
  const Device& device() const { return device_; }

  MachineDescription check();
  // The board's fixed arithmetic loop, timed now (measure::time_machine_reference there).
  measure::Timing machine_reference();
  Measured bench(const std::vector<graph::Graph>& models, measure::Backend backend, const measure::BenchOptions& options,
                 BenchMode mode = BenchMode::Each);
  // The same with ONNX files as they are (the agent refuses what gos cannot import).
  Measured bench_onnx(const std::vector<std::string>& onnx_files, measure::Backend backend, const measure::BenchOptions& options,
                      BenchMode mode = BenchMode::Each);

 private:
  Device device_;
  std::chrono::seconds timeout_;
};

// The board as the timer of every measurement in this process (measure::UseRemoteTimer): what
// `--device NAME` installs. Contacts the board at once (check()), so that a device that cannot
// be reached fails before any work.
std::shared_ptr<measure::RemoteTimer> remote_timer(const Device& device);
// Several identical boards as one timer (`--device a,b,c`): each request's operators, and models
// timed alone, split among them and timed at once; side-by-side timings on one board at a time.
// Throws DeviceError when one cannot be reached or they are not the same kind of board (their
// machine fingerprints differ).
std::shared_ptr<measure::RemoteTimer> remote_timer(const std::vector<Device>& devices);

}  // namespace gos::device
