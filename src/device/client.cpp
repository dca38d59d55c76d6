// The workstation's side: paired devices, and requests to their agents over TLS to a pinned
// certificate.
#include <fcntl.h>
#include <fmt/core.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <utility>

#include "device/device.h"
#include "device/tls.h"
#include "device/wire.h"
#include "graph/onnx_export.h"

namespace gos::device {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- The registry ----------------------------------------------------------------------------------

namespace {

const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
const std::regex kUrl("https://([A-Za-z0-9_.-]+):([0-9]{1,5})/?");
const std::regex kFingerprint("([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}");

json read_registry(const fs::path& file) {
  if (!fs::exists(file)) return json{{"devices", json::array()}};
  std::ifstream in(file);
  json registry = json::parse(in, nullptr, false);
  if (!registry.is_object() || !registry.contains("devices") || !registry["devices"].is_array()) {
    throw std::invalid_argument(fmt::format("{} is not a gos device list: remove it and pair the devices again", file.string()));
  }
  return registry;
}

void write_registry(const fs::path& file, const json& registry) {
  fs::create_directories(file.parent_path());
  const fs::path partial = file.string() + ".partial";
  const std::string text = registry.dump(2) + "\n";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) throw std::invalid_argument(fmt::format("cannot write {}", file.string()));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::fchmod(fd, 0600);  // it holds the tokens
  ::close(fd);
  if (!written) throw std::invalid_argument(fmt::format("cannot write {}", file.string()));
  fs::rename(partial, file);
}

Device device_from_json(const json& entry) {
  return {entry.value("name", ""), entry.value("url", ""), entry.value("fingerprint", ""), entry.value("token", "")};
}

}  // namespace

void check_device(const Device& device) {
  if (!std::regex_match(device.name, kName)) {
    throw std::invalid_argument(fmt::format("device name '{}': use letters, digits, '.', '_' or '-' (at most 64)", device.name));
  }
  std::smatch url;
  if (!std::regex_match(device.url, url, kUrl) || std::stoi(url[2]) < 1 || std::stoi(url[2]) > 65535) {
    throw std::invalid_argument(fmt::format("'{}' is not an agent's address: give https://HOST:PORT, as `gos agent` prints it", device.url));
  }
  if (!std::regex_match(device.fingerprint, kFingerprint)) {
    throw std::invalid_argument(fmt::format("'{}' is not a certificate fingerprint: give the 32 hex pairs `gos agent` prints", device.fingerprint));
  }
  if (device.token.size() < 16 || device.token.find_first_of(" \t\r\n") != std::string::npos) {
    throw std::invalid_argument("the token is empty, short or holds spaces: give the one `gos agent` prints (or its token file)");
  }
}

DeviceRegistry::DeviceRegistry(fs::path file) : file_(std::move(file)) {}

std::vector<Device> DeviceRegistry::all() const {
  std::vector<Device> devices;
  const json registry = read_registry(file_);
  for (const auto& entry : registry["devices"]) devices.push_back(device_from_json(entry));
  return devices;
}

Device DeviceRegistry::find(const std::string& name) const {
  std::string names;
  for (const auto& device : all()) {
    if (device.name == name) return device;
    names += (names.empty() ? "" : ", ") + device.name;
  }
  throw std::invalid_argument(names.empty() ? fmt::format("no device named '{}': none is paired (gos device add NAME https://HOST:PORT ...)", name)
                                            : fmt::format("no device named '{}': the paired ones are {} (gos device list)", name, names));
}

void DeviceRegistry::add(const Device& device) {
  check_device(device);
  json registry = read_registry(file_);
  json devices = json::array();
  for (const auto& entry : registry["devices"]) {
    if (entry.value("name", "") != device.name) devices.push_back(entry);
  }
  devices.push_back({{"name", device.name}, {"url", device.url}, {"fingerprint", device.fingerprint}, {"token", device.token}});
  registry["devices"] = devices;
  write_registry(file_, registry);
}

bool DeviceRegistry::remove(const std::string& name) {
  json registry = read_registry(file_);
  json devices = json::array();
  for (const auto& entry : registry["devices"]) {
    if (entry.value("name", "") != name) devices.push_back(entry);
  }
  const bool removed = devices.size() != registry["devices"].size();
  registry["devices"] = devices;
  if (removed) write_registry(file_, registry);
  return removed;
}

// ---- Requests --------------------------------------------------------------------------------------

namespace {

// What the handshake saw, for the pinning callback (OpenSSL passes it back as `arg`).
struct Pin {
  std::string expected, seen;
};

int check_pin(X509_STORE_CTX* store, void* arg) {
  auto* pin = static_cast<Pin*>(arg);
  pin->seen = fingerprint_of(X509_STORE_CTX_get0_cert(store));
  if (!pin->seen.empty() && equal_in_constant_time(pin->seen, pin->expected)) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

class Connection {
 public:
  Connection(const Device& device, std::chrono::seconds timeout) : device_(device) {
    std::smatch url;
    if (!std::regex_match(device.url, url, kUrl)) check_device(device);  // throws, naming what is wrong
    client_ = std::make_unique<httplib::SSLClient>(url[1].str(), std::stoi(url[2]));
    // The certificate is self-signed: it is trusted because its fingerprint is the one paired, not
    // because a CA signed it for this host name. httplib's own check (CA and host name) is off;
    // OpenSSL still verifies the peer, by check_pin alone, and the handshake fails on a mismatch.
    client_->enable_server_certificate_verification(false);
    pin_.expected = upper(device.fingerprint);
    SSL_CTX_set_verify(client_->ssl_context(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_cert_verify_callback(client_->ssl_context(), check_pin, &pin_);
    client_->set_connection_timeout(10, 0);
    client_->set_read_timeout(timeout);
    client_->set_write_timeout(std::chrono::seconds(60));
    client_->set_bearer_token_auth(device.token);
  }

  json get(const std::string& path) { return answer(client_->Get(path)); }
  json post(const std::string& path, const httplib::MultipartFormDataItems& items) {
    return answer(client_->Post(path, items));
  }

 private:
  json answer(const httplib::Result& result) {
    const std::string& name = device_.name;
    if (!result) {
      switch (result.error()) {
        case httplib::Error::Connection:
          throw DeviceError(fmt::format("device {}: cannot connect to {}: check that `gos agent` runs there and the port is open",
                                        name, device_.url));
        case httplib::Error::SSLConnection:
        case httplib::Error::SSLServerVerification:
          if (!pin_.seen.empty() && pin_.seen != pin_.expected) {
            throw DeviceError(fmt::format("device {}: {} presented certificate {}, not the one paired: if its agent made a new "
                                          "identity, pair again with the command it prints (gos device add {} ...); otherwise "
                                          "something stands between you and it",
                                          name, device_.url, pin_.seen, name));
          }
          throw DeviceError(fmt::format("device {}: no TLS handshake with {}: is a gos agent listening there (https)?", name,
                                        device_.url));
        case httplib::Error::Read:
        case httplib::Error::Write:
          throw DeviceError(fmt::format("device {}: the agent at {} closed the connection mid-request (it stopped or restarted): "
                                        "start it again, then rerun (gos adapt resumes from its journal)",
                                        name, device_.url));
        default:
          throw DeviceError(fmt::format("device {}: request to {} failed ({})", name, device_.url, httplib::to_string(result.error())));
      }
    }
    const json body = json::parse(result->body, nullptr, false);
    const std::string reason = body.is_object() ? body.value("error", "") : "";
    switch (result->status) {
      case 200:
        if (!body.is_object()) throw DeviceError(fmt::format("device {}: the agent's answer is not JSON: is {} a gos agent?", name, device_.url));
        return body;
      case 401:
      case 403:
        throw DeviceError(fmt::format("device {}: the agent refused the token ({}): pair again with the command `gos agent` prints", name, reason));
      case 503:
        throw DeviceError(fmt::format("device {}: {}", name, reason));
      default:
        throw DeviceError(fmt::format("device {}: the agent refused the request (HTTP {}): {}", name, result->status,
                                      reason.empty() ? std::string("no reason given") : reason));
    }
  }

  Device device_;
  Pin pin_;
  std::unique_ptr<httplib::SSLClient> client_;
};

}  // namespace

RemoteDevice::RemoteDevice(Device device, std::chrono::seconds timeout) : device_(std::move(device)), timeout_(timeout) {}
RemoteDevice::~RemoteDevice() = default;

namespace {

// The agent's machine answer (GET /v1/machine), one part of it read by `read`; `what` names that
// part when an older agent's answer lacks it.
template <typename Read>
auto machine_answer_part(const Device& device, std::chrono::seconds timeout, const char* what, Read read) {
  Connection connection(device, timeout);
  const json answer = connection.get(wire::kMachineRoute);
  try {
    return read(answer);
  } catch (const json::exception&) {
    throw DeviceError(fmt::format("device {}: the agent's answer lacks {}: is its gos too old?", device.name, what));
  }
}

}  // namespace

MachineDescription RemoteDevice::check() {
  return machine_answer_part(device_, timeout_, "its machine description",
                             [](const json& answer) { return wire::machine_from_json(answer.at("machine")); });
}

measure::Timing RemoteDevice::machine_reference() {
  return machine_answer_part(device_, timeout_, "its fixed loop's timing",
                             [](const json& answer) { return wire::timing_from_json(answer.at("machine_reference")); });
}

Measured RemoteDevice::bench_onnx(const std::vector<std::string>& onnx_files, measure::Backend backend,
                                  const measure::BenchOptions& options, BenchMode mode) {
  httplib::MultipartFormDataItems items;
  for (size_t i = 0; i < onnx_files.size(); ++i) {
    items.push_back({fmt::format("model{}", i), onnx_files[i], fmt::format("model{}.onnx", i), "application/octet-stream"});
  }
  const std::string path = fmt::format("{}?backend={}&precision={}&threads={}&budget={}&warmup={}&min_runs={}&max_runs={}&mode={}",
                                       wire::kBenchRoute, measure::to_string(backend), measure::to_string(options.precision),
                                       options.threads, options.budget_seconds, options.warmup, options.min_runs, options.max_runs,
                                       wire::mode_name(mode));
  Connection connection(device_, timeout_);
  const json answer = connection.post(path, items);
  Measured measured;
  try {
    for (const auto& timing : answer.at("timings")) measured.timings.push_back(wire::timing_from_json(timing));
    measured.machine = wire::machine_from_json(answer.at("machine"));
    measured.reference = wire::timing_from_json(answer.at("machine_reference"));
  } catch (const json::exception& error) {
    throw DeviceError(fmt::format("device {}: the agent's answer is malformed ({})", device_.name, error.what()));
  }
  if (measured.timings.size() != onnx_files.size()) {
    throw DeviceError(fmt::format("device {}: asked for {} timings, the agent gave {}", device_.name, onnx_files.size(), measured.timings.size()));
  }
  return measured;
}

Measured RemoteDevice::bench(const std::vector<graph::Graph>& models, measure::Backend backend, const measure::BenchOptions& options,
                             BenchMode mode) {
  std::vector<std::string> files;
  for (const auto& model : models) {
    std::string bytes;
    // Batch 1 fixed, as it is timed: nothing is left for the agent's shape inference to resolve.
    graph::to_onnx(model, {.symbolic_batch = false}).SerializeToString(&bytes);
    files.push_back(std::move(bytes));
  }
  return bench_onnx(files, backend, options, mode);
}

namespace {

// Every bench answer carries the agent's fixed loop, timed right after the models on the same
// board: time_machine_reference asked right after a timing (as gos bench and verify ask it) is
// that one, with no request of its own; asked later, the board times the loop again.
struct ReferenceAfterBench {
  std::optional<measure::Timing> timing;
  std::chrono::steady_clock::time_point at;

  void keep(const measure::Timing& reference) {
    timing = reference;
    at = std::chrono::steady_clock::now();
  }
  std::optional<measure::Timing> take() {
    const bool fresh = std::chrono::steady_clock::now() - at < std::chrono::seconds(5);
    auto taken = std::exchange(timing, std::nullopt);
    return fresh ? taken : std::nullopt;
  }
};

class DeviceTimer : public measure::RemoteTimer {
 public:
  explicit DeviceTimer(const Device& device) : remote_(device) { fingerprint_ = remote_.check().fingerprint; }
  std::string fingerprint() override { return fingerprint_; }
  std::vector<measure::Timing> each(const std::vector<graph::Graph>& models, measure::Backend backend,
                                    const measure::BenchOptions& options) override {
    return kept(remote_.bench(models, backend, options, BenchMode::Each));
  }
  std::pair<measure::Timing, measure::Timing> side_by_side(const graph::Graph& a, const graph::Graph& b, measure::Backend backend,
                                                           const measure::BenchOptions& options) override {
    const auto timings = kept(remote_.bench({a, b}, backend, options, BenchMode::SideBySide));
    return {timings.at(0), timings.at(1)};
  }
  std::vector<measure::Timing> operators(const std::vector<graph::Graph>& graphs, measure::Backend backend,
                                         const measure::BenchOptions& options) override {
    return kept(remote_.bench(graphs, backend, options, BenchMode::Operators));
  }
  measure::Timing machine_reference(double) override {
    if (auto after = reference_after_last_.take()) return *after;
    return remote_.machine_reference();
  }

 private:
  std::vector<measure::Timing> kept(Measured measured) {
    reference_after_last_.keep(measured.reference);
    return std::move(measured.timings);
  }

  RemoteDevice remote_;
  std::string fingerprint_;
  ReferenceAfterBench reference_after_last_;
};

// Several identical boards as one timer (`--device a,b,c`): the operators of a request and models
// timed alone are split among them, each part sent at once to a board of its own; a side-by-side
// timing goes to one board, in turn. Boards that describe themselves differently are refused:
// their timings would not be one machine's.
class BoardsTimer : public measure::RemoteTimer {
 public:
  explicit BoardsTimer(const std::vector<Device>& devices) {
    std::string first;
    for (const auto& device : devices) {
      boards_.push_back(std::make_unique<RemoteDevice>(device));
      const std::string fingerprint = boards_.back()->check().fingerprint;
      if (fingerprint_.empty()) {
        fingerprint_ = fingerprint;
        first = device.name;
      } else if (fingerprint != fingerprint_) {
        throw DeviceError(fmt::format("devices {} and {} are not the same kind of board ({}; {}): boards share their timings only when "
                                      "they are identical; name one, or boards of one kind",
                                      first, device.name, fingerprint_, fingerprint));
      }
    }
  }
  std::string fingerprint() override { return fingerprint_; }
  std::vector<measure::Timing> each(const std::vector<graph::Graph>& models, measure::Backend backend,
                                    const measure::BenchOptions& options) override {
    return spread(models, [&](RemoteDevice& board, const std::vector<graph::Graph>& part) {
      return board.bench(part, backend, options, BenchMode::Each);
    });
  }
  std::pair<measure::Timing, measure::Timing> side_by_side(const graph::Graph& a, const graph::Graph& b, measure::Backend backend,
                                                           const measure::BenchOptions& options) override {
    RemoteDevice& board = *boards_[next_++ % boards_.size()];
    Measured measured = board.bench({a, b}, backend, options, BenchMode::SideBySide);
    reference_after_last_.keep(measured.reference);
    return {measured.timings.at(0), measured.timings.at(1)};
  }
  std::vector<measure::Timing> operators(const std::vector<graph::Graph>& graphs, measure::Backend backend,
                                         const measure::BenchOptions& options) override {
    return spread(graphs, [&](RemoteDevice& board, const std::vector<graph::Graph>& part) {
      return board.bench(part, backend, options, BenchMode::Operators);
    });
  }
  // The loop of the board that timed last (of the first part, when several did), as DeviceTimer.
  measure::Timing machine_reference(double) override {
    if (auto after = reference_after_last_.take()) return *after;
    return boards_.front()->machine_reference();
  }

 private:
  // Contiguous parts, one a board, timed at once; the timings back in the graphs' order.
  template <typename Time>
  std::vector<measure::Timing> spread(const std::vector<graph::Graph>& graphs, Time time) {
    const size_t parts = std::min(boards_.size(), graphs.size());
    std::vector<std::future<Measured>> timed;
    for (size_t p = 0; p < parts; ++p) {
      const size_t begin = graphs.size() * p / parts, end = graphs.size() * (p + 1) / parts;
      std::vector<graph::Graph> part(graphs.begin() + static_cast<std::ptrdiff_t>(begin), graphs.begin() + static_cast<std::ptrdiff_t>(end));
      RemoteDevice& board = *boards_[p];
      timed.push_back(std::async(std::launch::async, [&board, &time, part = std::move(part)] { return time(board, part); }));
    }
    std::vector<measure::Timing> timings;
    for (size_t p = 0; p < timed.size(); ++p) {
      const Measured got = timed[p].get();
      if (p == 0) reference_after_last_.keep(got.reference);
      timings.insert(timings.end(), got.timings.begin(), got.timings.end());
    }
    return timings;
  }

  std::vector<std::unique_ptr<RemoteDevice>> boards_;
  std::string fingerprint_;
  size_t next_ = 0;
  ReferenceAfterBench reference_after_last_;
};

}  // namespace

std::shared_ptr<measure::RemoteTimer> remote_timer(const Device& device) { return std::make_shared<DeviceTimer>(device); }

std::shared_ptr<measure::RemoteTimer> remote_timer(const std::vector<Device>& devices) {
  if (devices.size() == 1) return remote_timer(devices.front());
  return std::make_shared<BoardsTimer>(devices);
}

}  // namespace gos::device
