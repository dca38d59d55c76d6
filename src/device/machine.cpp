// What the machine is, from /proc and /sys, and the protocol's JSON forms.
#include <fmt/core.h>
#include <sys/utsname.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "device/device.h"
#include "device/wire.h"

namespace gos::device {

namespace {

std::string first_line(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  // /proc/device-tree strings end with a NUL.
  while (!line.empty() && (line.back() == '\0' || line.back() == '\n' || line.back() == ' ')) line.pop_back();
  return line;
}

}  // namespace

MachineDescription describe_this_machine() {
  MachineDescription machine;
  machine.fingerprint = measure::machine_fingerprint();
  machine.cpu = measure::this_cpu();
  machine.cores = static_cast<int>(std::thread::hardware_concurrency());
  utsname name{};
  if (uname(&name) == 0) machine.architecture = name.machine;
  machine.governor = first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
  const std::string millidegrees = first_line("/sys/class/thermal/thermal_zone0/temp");
  if (!millidegrees.empty()) {
    char* end = nullptr;
    const double value = std::strtod(millidegrees.c_str(), &end);
    if (end != millidegrees.c_str()) machine.temperature_c = value / 1000;
  }
  machine.gos_version = "0.1.0";
  return machine;
}

std::string summary(const MachineDescription& machine) {
  std::string text = fmt::format("{}, {}, {} cores", machine.cpu, machine.architecture.empty() ? "?" : machine.architecture,
                                 machine.cores);
  if (!machine.governor.empty()) text += ", governor " + machine.governor;
  if (machine.temperature_c) text += fmt::format(", {:.1f} C", *machine.temperature_c);
  return text;
}

std::filesystem::path config_folder() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "gos";
  if (const char* home = std::getenv("HOME"); home && *home) return std::filesystem::path(home) / ".config" / "gos";
  throw std::invalid_argument("neither XDG_CONFIG_HOME nor HOME is set: set HOME so that gos can keep its configuration");
}

nlohmann::json to_json(const MachineDescription& machine) {
  nlohmann::json json{{"fingerprint", machine.fingerprint}, {"cpu", machine.cpu},           {"cores", machine.cores},
                      {"architecture", machine.architecture}, {"governor", machine.governor}, {"gos_version", machine.gos_version}};
  json["temperature_c"] = machine.temperature_c ? nlohmann::json(*machine.temperature_c) : nlohmann::json();
  return json;
}

namespace wire {

nlohmann::json to_json(const measure::Timing& timing) {
  return {{"median_ms", timing.median_ms}, {"p10_ms", timing.p10_ms}, {"p90_ms", timing.p90_ms}, {"runs", timing.runs}};
}

measure::Timing timing_from_json(const nlohmann::json& json) {
  return {.median_ms = json.at("median_ms").get<double>(),
          .p10_ms = json.at("p10_ms").get<double>(),
          .p90_ms = json.at("p90_ms").get<double>(),
          .runs = json.at("runs").get<int>()};
}


MachineDescription machine_from_json(const nlohmann::json& json) {
  MachineDescription machine;
  machine.fingerprint = json.at("fingerprint").get<std::string>();
  machine.cpu = json.value("cpu", "");
  machine.cores = json.value("cores", 0);
  machine.architecture = json.value("architecture", "");
  machine.governor = json.value("governor", "");
  if (json.contains("temperature_c") && json["temperature_c"].is_number()) machine.temperature_c = json["temperature_c"].get<double>();
  machine.gos_version = json.value("gos_version", "");
  return machine;
}

std::string_view mode_name(BenchMode mode) {
  switch (mode) {
    case BenchMode::Each: return "each";
    case BenchMode::SideBySide: return "side_by_side";
    case BenchMode::Operators: return "operators";
  }
  return "each";
}

BenchMode mode_named(std::string_view name) {
  for (BenchMode mode : {BenchMode::Each, BenchMode::SideBySide, BenchMode::Operators}) {
    if (mode_name(mode) == name) return mode;
  }
  throw std::invalid_argument(fmt::format("unknown mode '{}': each, side_by_side or operators", name));
}

}  // namespace wire

}  // namespace gos::device
