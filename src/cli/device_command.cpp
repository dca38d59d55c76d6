// `gos device add|list|check|remove`: the boards this workstation measures on, each paired with
// its agent by the certificate fingerprint and token `gos agent` prints.
#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/machine_reference.h"
#include "device/device.h"

namespace gos::cli {

namespace {

struct DeviceCommandOptions {
  std::string name, url, fingerprint, token, token_file;
  bool no_check = false;
  bool json = false;
};

std::string read_token(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw std::invalid_argument(fmt::format("cannot read the token file {}", file));
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

int run_add(const DeviceCommandOptions& options) {
  if (options.token.empty() == options.token_file.empty()) {
    throw std::invalid_argument("give the agent's token with --token T or --token-file FILE (one of them)");
  }
  const device::Device paired{options.name, options.url, options.fingerprint,
                              options.token.empty() ? read_token(options.token_file) : options.token};
  device::check_device(paired);
  std::string what = "not contacted (--no-check)";
  if (!options.no_check) what = device::summary(device::RemoteDevice(paired, std::chrono::seconds(30)).check());
  device::DeviceRegistry registry;
  registry.add(paired);
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"name", paired.name}, {"url", paired.url}, {"machine", what}}.dump(2));
  } else {
    fmt::print("paired {} at {}: {}\n(kept in {})\n", paired.name, paired.url, what, registry.file().string());
  }
  return kSuccess;
}

int run_list(const DeviceCommandOptions& options) {
  const device::DeviceRegistry registry;
  const auto devices = registry.all();
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : devices) list.push_back({{"name", d.name}, {"url", d.url}, {"fingerprint", d.fingerprint}});
    fmt::print("{}\n", list.dump(2));
    return kSuccess;
  }
  if (devices.empty()) {
    fmt::print("no devices paired: run `gos agent` on the board, then the `gos device add` command it prints\n");
    return kSuccess;
  }
  for (const auto& d : devices) fmt::print("{}  {}  {}\n", d.name, d.url, d.fingerprint);
  return kSuccess;
}

int run_check(const DeviceCommandOptions& options) {
  const device::Device paired = device::DeviceRegistry().find(options.name);
  const device::MachineDescription machine = device::RemoteDevice(paired, std::chrono::seconds(60)).check();
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"name", paired.name}, {"url", paired.url}, {"reachable", true}, {"authenticated", true},
                                      {"machine", device::to_json(machine)}}
                           .dump(2));
  } else {
    fmt::print("{} at {}: reachable, certificate as paired, token accepted\n{}\nlatency cache key: {}\n", paired.name, paired.url,
               device::summary(machine), machine.fingerprint);
  }
  return kSuccess;
}

int run_remove(const DeviceCommandOptions& options) {
  if (!device::DeviceRegistry().remove(options.name)) device::DeviceRegistry().find(options.name);  // throws, naming the devices there are
  fmt::print("removed {}\n", options.name);
  return kSuccess;
}

}  // namespace

Action add_device_command(CLI::App& app) {
  auto options = std::make_shared<DeviceCommandOptions>();
  auto* command = app.add_subcommand("device", "Pair with boards running `gos agent`, and check them");
  command->require_subcommand(1);
  auto* add = command->add_subcommand("add", "Pair with an agent: the command `gos agent` prints");
  add->add_option("name", options->name, "what to call the board (--device NAME)")->required();
  add->add_option("url", options->url, "https://HOST:PORT of its agent")->required();
  add->add_option("--fingerprint", options->fingerprint, "the agent's certificate fingerprint (SHA-256), as it prints it")->required();
  add->add_option("--token", options->token, "the agent's token");
  add->add_option("--token-file", options->token_file, "a file holding the agent's token (its ~/.config/gos/agent/token)");
  add->add_flag("--no-check", options->no_check, "record the device without contacting it");
  add->add_flag("--json", options->json, "print one JSON object");
  auto* list = command->add_subcommand("list", "The paired devices");
  list->add_flag("--json", options->json, "print one JSON array");
  auto* check = command->add_subcommand("check", "Contact a device: reachable, trusted, authenticated, and what it is");
  check->add_option("name", options->name, "the device")->required();
  check->add_flag("--json", options->json, "print one JSON object");
  auto* remove = command->add_subcommand("remove", "Forget a device");
  remove->add_option("name", options->name, "the device")->required();
  return [options, add, list, check, remove] {
    if (add->parsed()) return run_add(*options);
    if (list->parsed()) return run_list(*options);
    if (check->parsed()) return run_check(*options);
    if (remove->parsed()) return run_remove(*options);
    return static_cast<int>(kBadInput);
  };
}

}  // namespace gos::cli
