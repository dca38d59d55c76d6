#pragma once
// Internal to gos adapt: the pieces of a distributed run that the stages do not see (the
// RunContext's on_root_first, spread and share_journal are what they see). docs/distributed.md.
#include <memory>
#include <nlohmann/json.hpp>

#include "measure/measure.h"
#include "search/run_context.h"

namespace gos::search {

// On ranks other than 0: a guard under which any timing throws (they replay rank 0's timings from
// its journal). Null on rank 0 and alone.
std::unique_ptr<measure::UseRemoteTimer> refuse_timing_off_root(const RunContext& run);

// Every rank's settings (what the journal binds, and what picks and fine-tunes the result)
// compared with rank 0's: throws dist::LaunchError on every rank naming the first that differs.
void agree_on_settings(const RunContext& run, const nlohmann::json& settings);

// Ranks other than 0, once the sensitivity stage is done: fine-tune alongside rank 0 whenever it
// says to, until it says the run is done.
void follow_rank_zero(RunContext& run);
// Rank 0: tells the others that the run is done.
void release_the_other_ranks(RunContext& run);

}  // namespace gos::search
