#pragma once
// Internal to the device part: how timings, machine descriptions and the bench request's settings
// read in the agent's JSON answers (docs/device.md, "Protocol").
#include <nlohmann/json.hpp>
#include <string>

#include "device/device.h"

namespace gos::device::wire {

inline constexpr int kProtocolVersion = 1;
inline constexpr const char* kMachineRoute = "/v1/machine";
inline constexpr const char* kBenchRoute = "/v1/bench";

nlohmann::json to_json(const measure::Timing& timing);
measure::Timing timing_from_json(const nlohmann::json& json);
using device::to_json;  // a MachineDescription's (device.h)
MachineDescription machine_from_json(const nlohmann::json& json);

std::string_view mode_name(BenchMode mode);  // "each", "side_by_side", "operators"
BenchMode mode_named(std::string_view name);  // throws std::invalid_argument

}  // namespace gos::device::wire
