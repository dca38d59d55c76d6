#pragma once
// Internal to the CLI: how the machine's steadiness (measure::time_machine_reference) reads in
// --json output, the same for every command that times it.
#include <nlohmann/json.hpp>

#include "measure/measure.h"

namespace gos::cli {

// Adds "machine_reference" (the loop's median_ms, p10_ms, p90_ms, runs, spread) and
// "machine_unsteady".
inline void add_machine_reference(nlohmann::json& report, const measure::Timing& reference) {
  report["machine_reference"] = {{"median_ms", reference.median_ms}, {"p10_ms", reference.p10_ms}, {"p90_ms", reference.p90_ms},
                                 {"runs", reference.runs}, {"spread", reference.spread()}};
  report["machine_unsteady"] = measure::machine_was_unsteady(reference);
}

}  // namespace gos::cli
