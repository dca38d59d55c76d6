#pragma once
// Internal to the CLI: `--device NAME` on every command that measures.
#include <memory>
#include <string>

#include "device/device.h"
#include "measure/measure.h"

namespace gos::cli {

inline constexpr const char* kDeviceHelp =
    "a paired board (gos device add): its agent takes every timing, and the figures and the latency cache's rows are the board's; "
    "several identical boards, NAME,NAME,..., share the operators to time";

// While the returned guard lives, every measurement goes to the paired board `names` names, or
// to the identical boards of a comma-separated list (none when empty). Contacts the boards first:
// one that cannot be reached fails here, before any work.
inline std::unique_ptr<measure::UseRemoteTimer> use_device(const std::string& names) {
  if (names.empty()) return nullptr;
  std::vector<device::Device> devices;
  const device::DeviceRegistry registry;
  for (size_t begin = 0; begin <= names.size();) {
    const size_t end = std::min(names.find(',', begin), names.size());
    devices.push_back(registry.find(names.substr(begin, end - begin)));
    begin = end + 1;
  }
  return std::make_unique<measure::UseRemoteTimer>(device::remote_timer(devices));
}

}  // namespace gos::cli
