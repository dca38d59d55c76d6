// `gos agent`: latency measurements served over HTTPS, one at a time, in the order asked.
#include <fmt/core.h>
#include <httplib.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "device/device.h"
#include "device/tls.h"
#include "device/wire.h"
#include "graph/onnx_import.h"

namespace gos::device {

namespace {

using nlohmann::json;

void answer_error(httplib::Response& response, int status, const std::string& message) {
  response.status = status;
  response.set_content(json{{"error", message}}.dump(), "application/json");
}

// A refusal with its HTTP status, thrown inside a handler.
struct Refusal {
  int status;
  std::string message;
};

double number_param(const httplib::Request& request, const std::string& name, double fallback, double low, double high) {
  if (!request.has_param(name)) return fallback;
  const std::string text = request.get_param_value(name);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(value >= low && value <= high)) {
    throw Refusal{400, fmt::format("{}={} is not a number from {} to {}", name, text, low, high)};
  }
  return value;
}

}  // namespace

struct Agent::State {
  AgentOptions options;
  AgentIdentity identity;
  std::function<void(const ServedRequest&)> on_request;
  std::unique_ptr<httplib::SSLServer> server;
  int port = 0;

  // Turns: a ticket each, served in the order taken (a plain mutex promises no order).
  std::mutex mutex;
  std::condition_variable turn_changed;
  uint64_t next_ticket = 0, serving = 0;
  int waiting = 0;
  bool measuring = false;
  std::set<uint64_t> abandoned;

  void finish_turn() {
    std::lock_guard lock(mutex);
    measuring = false;
    ++serving;
    while (abandoned.erase(serving)) ++serving;
    turn_changed.notify_all();
  }

  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  double seconds_since_start() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); }

  // When a request arrived, when its turn began and ended (seconds since the agent started), and
  // its ticket: in every answer, so that a client can check the turns were kept.
  struct Turn {
    uint64_t ticket = 0;
    double arrived = 0, began = 0;
    json to_json() const { return {{"ticket", ticket}, {"arrived_s", arrived}, {"began_s", began}}; }
  };

  // A turn being served: it ends (and the next request's begins) when this goes.
  class HeldTurn {
   public:
    HeldTurn(State& state, Turn turn) : turn(turn), state_(state) {}
    HeldTurn(const HeldTurn&) = delete;
    HeldTurn& operator=(const HeldTurn&) = delete;
    ~HeldTurn() { state_.finish_turn(); }
    const Turn turn;

   private:
    State& state_;
  };

  // Waits for this request's turn; refuses when the queue is full or the wait too long.
  HeldTurn take_turn() {
    Turn turn{0, seconds_since_start(), 0};
    std::unique_lock lock(mutex);
    if ((measuring || waiting > 0) && waiting >= options.queue) {
      throw Refusal{503, fmt::format("busy: measuring for another client with {} request{} waiting (the agent's --queue is {}); retry later",
                                     waiting, waiting == 1 ? "" : "s", options.queue)};
    }
    const uint64_t ticket = next_ticket++;
    turn.ticket = ticket;
    ++waiting;
    const bool served = turn_changed.wait_for(lock, std::chrono::duration<double>(options.max_request_seconds),
                                              [&] { return serving == ticket; });
    --waiting;
    if (!served) {
      abandoned.insert(ticket);
      throw Refusal{503, fmt::format("busy: waited {:.0f} s for a turn; retry later", options.max_request_seconds)};
    }
    measuring = true;
    turn.began = seconds_since_start();
    return HeldTurn(*this, turn);
  }

  bool authorised(const httplib::Request& request, httplib::Response& response) {
    const std::string header = request.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (header.rfind(prefix, 0) != 0) {
      answer_error(response, 401, "no token: pair with the command `gos agent` printed (gos device add ... --token ...)");
      return false;
    }
    if (!equal_in_constant_time(std::string_view(header).substr(prefix.size()), identity.token)) {
      answer_error(response, 403, "wrong token: pair again with the command `gos agent` printed");
      return false;
    }
    return true;
  }

  json machine_answer(const measure::Timing& reference) const {
    return json{{"protocol", wire::kProtocolVersion},
                {"machine", wire::to_json(describe_this_machine())},
                {"machine_reference", wire::to_json(reference)}};
  }

  json bench(const httplib::Request& request) {
    const measure::Backend backend = [&] {
      try {
        return measure::backend_named(request.has_param("backend") ? request.get_param_value("backend") : "mobile");
      } catch (const measure::MeasureError& error) {
        throw Refusal{400, error.what()};
      }
    }();
    measure::BenchOptions bench;
    try {
      bench.precision = measure::precision_named(request.has_param("precision") ? request.get_param_value("precision") : "fp32");
    } catch (const measure::MeasureError& error) {
      throw Refusal{400, error.what()};
    }
    bench.threads = static_cast<int>(number_param(request, "threads", 1, 1, 256));
    bench.budget_seconds = number_param(request, "budget", bench.budget_seconds, 0.001, options.max_request_seconds);
    bench.warmup = static_cast<int>(number_param(request, "warmup", bench.warmup, 0, 1000));
    bench.min_runs = static_cast<int>(number_param(request, "min_runs", bench.min_runs, 1, 100000));
    bench.max_runs = static_cast<int>(number_param(request, "max_runs", bench.max_runs, bench.min_runs, 1000000));
    BenchMode mode;
    try {
      mode = wire::mode_named(request.has_param("mode") ? request.get_param_value("mode") : "each");
    } catch (const std::invalid_argument& error) {
      throw Refusal{400, error.what()};
    }
    std::vector<std::pair<int, std::string>> parts;
    for (const auto& [name, part] : request.files) {
      int index = -1;
      if (name.rfind("model", 0) == 0) index = std::atoi(name.c_str() + 5);
      if (index < 0 || name != fmt::format("model{}", index)) throw Refusal{400, fmt::format("unexpected part '{}': send model0, model1, ...", name)};
      parts.emplace_back(index, part.content);
    }
    if (parts.empty()) throw Refusal{400, "no models: send each ONNX file as a multipart part named model0, model1, ..."};
    std::sort(parts.begin(), parts.end());
    if (mode == BenchMode::SideBySide && parts.size() != 2) throw Refusal{400, "side_by_side times two models"};
    const double asked = mode == BenchMode::SideBySide ? bench.budget_seconds : bench.budget_seconds * static_cast<double>(parts.size());
    if (asked > options.max_request_seconds) {
      throw Refusal{400, fmt::format("the request asks for {:.0f} s of timing; this agent allows {:.0f} s a request (gos agent "
                                     "--max-request-seconds): send fewer models at a time",
                                     asked, options.max_request_seconds)};
    }

    const HeldTurn held = take_turn();
    const Turn& turn = held.turn;

    std::vector<graph::Graph> models;
    for (const auto& [index, bytes] : parts) {
      try {
        models.push_back(graph::import_onnx_bytes(bytes, {}, fmt::format("model{}", index)).graph);
      } catch (const graph::GraphError& error) {
        throw Refusal{422, error.what()};
      }
    }
    std::vector<measure::Timing> timings;
    try {
      timings = measure_models(models, backend, bench, mode);
    } catch (const measure::MeasureError& error) {
      throw Refusal{422, error.what()};
    } catch (const graph::GraphError& error) {
      throw Refusal{422, error.what()};
    }
    const measure::Timing reference = measure::time_machine_reference(std::clamp(bench.budget_seconds / 4, 0.1, 0.5));
    json answer = machine_answer(reference);
    answer["turn"] = turn.to_json();
    answer["turn"]["ended_s"] = seconds_since_start();
    answer["timings"] = json::array();
    for (const auto& timing : timings) answer["timings"].push_back(wire::to_json(timing));
    return answer;
  }

  static std::vector<measure::Timing> measure_models(const std::vector<graph::Graph>& models, measure::Backend backend,
                                                     const measure::BenchOptions& bench, BenchMode mode) {
    std::vector<measure::Timing> timings;
    if (mode == BenchMode::SideBySide) {
      auto [a, b] = measure::bench_models_interleaved(models[0], models[1], backend, bench);
      return {a, b};
    }
    if (mode == BenchMode::Each) {
      for (const auto& model : models) timings.push_back(measure::bench_model(model, backend, bench));
      return timings;
    }
    // Operators: a graph of one compute node is timed as bench_ops times an operator, any other
    // (a structural node, or an operator ONNX writes as several nodes) as bench_graphs_alone.
    std::vector<measure::OpToMeasure> ops;
    std::vector<graph::Graph> others;
    std::vector<std::pair<bool, size_t>> where;
    for (const auto& model : models) {
      if (model.nodes.size() == 1 && model.nodes[0].is_compute()) {
        where.emplace_back(true, ops.size());
        ops.push_back({*model.nodes[0].op, model.nodes[0].weights});
      } else {
        where.emplace_back(false, others.size());
        others.push_back(model);
      }
    }
    const auto op_timings = ops.empty() ? std::vector<measure::Timing>{} : measure::bench_ops(ops, backend, bench);
    const auto other_timings = others.empty() ? std::vector<measure::Timing>{} : measure::bench_graphs_alone(others, backend, bench);
    for (const auto& [is_op, index] : where) timings.push_back(is_op ? op_timings[index] : other_timings[index]);
    return timings;
  }
};

Agent::Agent(AgentOptions options, std::function<void(const ServedRequest&)> on_request) : state_(std::make_unique<State>()) {
  State& state = *state_;
  if (options.folder.empty()) options.folder = config_folder() / "agent";
  state.options = options;
  state.on_request = std::move(on_request);
  state.identity = ensure_agent_identity(options.folder);
  state.server = std::make_unique<httplib::SSLServer>(state.identity.certificate.c_str(), state.identity.key.c_str());
  if (!state.server->is_valid()) {
    throw DeviceError(fmt::format("OpenSSL refused the agent's certificate or key in {}: remove certificate.pem and key.pem there "
                                  "and the agent makes new ones (then pair again)",
                                  options.folder.string()));
  }
  httplib::SSLServer& server = *state.server;
  // The one being measured, those waiting, and a few more to answer "busy" at once.
  const size_t threads = static_cast<size_t>(options.queue) + 4;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(options.max_request_bytes);
  server.set_read_timeout(60, 0);
  server.set_write_timeout(60, 0);
  server.set_pre_routing_handler([&state](const httplib::Request& request, httplib::Response& response) {
    return state.authorised(request, response) ? httplib::Server::HandlerResponse::Unhandled
                                                : httplib::Server::HandlerResponse::Handled;
  });
  server.Get(wire::kMachineRoute, [&state](const httplib::Request&, httplib::Response& response) {
    try {
      measure::Timing reference;
      State::Turn turn;
      {
        const State::HeldTurn held = state.take_turn();
        turn = held.turn;
        reference = measure::time_machine_reference(0.25);
      }
      json answer = state.machine_answer(reference);
      answer["turn"] = turn.to_json();
      answer["turn"]["ended_s"] = state.seconds_since_start();
      response.set_content(answer.dump(), "application/json");
    } catch (const Refusal& refusal) {
      answer_error(response, refusal.status, refusal.message);
    }
  });
  server.Post(wire::kBenchRoute, [&state](const httplib::Request& request, httplib::Response& response) {
    try {
      response.set_content(state.bench(request).dump(), "application/json");
    } catch (const Refusal& refusal) {
      answer_error(response, refusal.status, refusal.message);
    } catch (const std::exception& error) {
      answer_error(response, 500, fmt::format("internal error: {}", error.what()));
    }
  });
  const size_t limit = options.max_request_bytes;
  server.set_error_handler([limit](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    if (response.status == 404) {
      answer_error(response, 404, fmt::format("no route {} {}: this agent serves GET {} and POST {}", request.method, request.path,
                                              wire::kMachineRoute, wire::kBenchRoute));
    } else if (response.status == 413) {
      answer_error(response, 413, fmt::format("the request is over this agent's limit of {} MiB (gos agent --max-request-mib)", limit >> 20));
    } else {
      answer_error(response, response.status, fmt::format("HTTP {}", response.status));
    }
  });
  server.set_logger([&state](const httplib::Request& request, const httplib::Response& response) {
    if (!state.on_request) return;
    ServedRequest served{request.method + " " + request.path, request.remote_addr, response.status, ""};
    if (response.status >= 400) {
      const json body = json::parse(response.body, nullptr, false);
      if (body.is_object()) served.detail = body.value("error", "");
    } else if (request.path == wire::kBenchRoute) {
      served.detail = fmt::format("{} model(s) on {}", request.files.size(),
                                  request.has_param("backend") ? request.get_param_value("backend") : "mobile");
    }
    state.on_request(served);
  });
  if (options.port == 0) {
    state.port = server.bind_to_any_port(options.host);
    if (state.port < 0) throw DeviceError(fmt::format("cannot listen on {}: give another --listen", options.host));
  } else {
    if (!server.bind_to_port(options.host, options.port)) {
      throw DeviceError(fmt::format("cannot listen on {}:{} (in use, or not an address of this machine): give another --listen",
                                    options.host, options.port));
    }
    state.port = options.port;
  }
}

Agent::~Agent() { stop(); }

int Agent::port() const { return state_->port; }
const AgentIdentity& Agent::identity() const { return state_->identity; }
void Agent::run() { state_->server->listen_after_bind(); }
void Agent::stop() {
  if (state_ && state_->server) state_->server->stop();
}

}  // namespace gos::device
