// `gos agent`: serves this machine's latency measurements to paired workstations over HTTPS
// (device/device.h; security and protocol in docs/device.md).
#include <fmt/core.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
#include "device/device.h"

namespace gos::cli {

namespace {

struct AgentCommandOptions {
  std::string listen = "0.0.0.0:7070";
  std::string folder;
  int max_request_mib = 64;
  int queue = 4;
  double max_request_seconds = 300;
  bool quiet = false;
};

std::pair<std::string, int> host_and_port(const std::string& listen) {
  const auto colon = listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    try {
      size_t used = 0;
      port = std::stoi(listen.substr(colon + 1), &used);
      if (used != listen.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535) throw std::invalid_argument(fmt::format("--listen {}: give HOST:PORT, e.g. 0.0.0.0:7070", listen));
  return {listen.substr(0, colon), port};
}

// The name the workstation reaches this machine by: the listening address, or the host name when
// listening on every address.
std::string reachable_host(const std::string& host) {
  if (host != "0.0.0.0" && host != "::") return host;
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 && name[0] ? name : "HOST";
}

int run_agent(const AgentCommandOptions& options) {
  const auto [host, port] = host_and_port(options.listen);
  device::AgentOptions agent_options{.host = host,
                                     .port = port,
                                     .folder = options.folder,
                                     .max_request_bytes = static_cast<size_t>(options.max_request_mib) << 20,
                                     .queue = options.queue,
                                     .max_request_seconds = options.max_request_seconds};
  // SIGINT and SIGTERM stop the server from a thread of their own (stopping it is not
  // async-signal-safe); the signals are blocked before any server thread starts, so that they all
  // inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const bool quiet = options.quiet;
  device::Agent agent(agent_options, [quiet](const device::ServedRequest& served) {
    if (quiet) return;
    fmt::print("{} {} {}{}\n", served.client, served.route, served.status, served.detail.empty() ? "" : " " + served.detail);
    std::fflush(stdout);
  });
  const auto& identity = agent.identity();
  const std::string url = fmt::format("https://{}:{}", reachable_host(host), agent.port());
  fmt::print("gos agent listening on {}:{} ({})\n", host, agent.port(), device::summary(device::describe_this_machine()));
  fmt::print("identity: {} (certificate, key and token, readable by this user alone)\n", identity.certificate.parent_path().string());
  fmt::print("pair from the workstation with:\n  gos device add NAME {} --fingerprint {} --token {}\n", url, identity.fingerprint,
             identity.token);
  std::fflush(stdout);

  std::thread stopper([&agent, signals] {
    int received = 0;
    sigwait(&signals, &received);
    agent.stop();
  });
  agent.run();
  // Stopped by a signal, or the server ended on its own: wake the waiting thread either way.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  fmt::print("gos agent stopped\n");
  return kSuccess;
}

}  // namespace

Action add_agent_command(CLI::App& app) {
  auto options = std::make_shared<AgentCommandOptions>();
  auto* command = app.add_subcommand("agent", "Serve this machine's latency measurements to paired workstations (HTTPS, token, pinned certificate)");
  command->add_option("--listen", options->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  command->add_option("--config", options->folder, "the folder of the agent's certificate, key and token (default ~/.config/gos/agent)");
  command->add_option("--max-request-mib", options->max_request_mib, "requests larger than this many MiB are refused unread")
      ->check(whole_number_at_least(1))
      ->capture_default_str();
  command->add_option("--queue", options->queue, "requests that may wait behind the one being measured; more are told to retry")
      ->check(whole_number_at_least(0))
      ->capture_default_str();
  command->add_option("--max-request-seconds", options->max_request_seconds,
                      "the timing one request may ask for, and the longest it waits for its turn")
      ->check(number_from_zero(/*positive=*/true, "seconds"))
      ->capture_default_str();
  command->add_flag("--quiet", options->quiet, "no line per request");
  return [options] { return run_agent(*options); };
}

}  // namespace gos::cli
