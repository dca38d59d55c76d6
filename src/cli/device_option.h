#pragma once
// Internal to the CLI: `--device NAME` on every command that measures.
#include <memory>
#include <string>

#include "device/device.h"
#include "measure/measure.h"

namespace gos::cli {

inline constexpr const char* kDeviceHelp =
    "a paired board (gos device add): its agent takes every timing, and the figures and the latency cache's rows are the board's";

// While the returned guard lives, every measurement goes to the paired board `name` (none when
// empty). Contacts the board first: one that cannot be reached fails here, before any work.
inline std::unique_ptr<measure::UseRemoteTimer> use_device(const std::string& name) {
  if (name.empty()) return nullptr;
  return std::make_unique<measure::UseRemoteTimer>(device::remote_timer(device::DeviceRegistry().find(name)));
}

}  // namespace gos::cli
