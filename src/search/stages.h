#pragma once
// Internal to gos adapt: its stages, in the order they run (docs/search.md), each a free function
// over the run's context in a file of its own (stage_<name>.cpp). Each reads what the stages
// before it left in the context, journals every finished piece of work, and sets run.summary.
#include <optional>

#include "search/run_context.h"

namespace gos::search {

// stage_narrow.cpp (--narrow): channel groups narrowed, their consumers refitted; run.base becomes
// the narrowed model the per-operator search starts from.
void narrow_channels(RunContext& run);

// stage_profile.cpp: the machine's steadiness, every operator and the whole model timed; the
// searchable operators, hottest first.
void profile(RunContext& run);
// A whole model's timing on the target (the journal under `key`, then the latency cache).
measure::Timing journaled_whole_model_timing(RunContext& run, const std::string& key, const graph::Graph& graph);

// stage_candidates.cpp: each operator's rule candidates, screened by the latency predictor, timed;
// only those faster than their operator stay.
void find_candidates(RunContext& run);

// stage_fidelity.cpp: each operator's inputs recorded; its candidates scored, selected and
// distilled to reproduce it.
void fidelity(RunContext& run);

// stage_sensitivity.cpp: each distilled candidate put in alone; its effect on validation quality.
void sensitivity(RunContext& run);

// stage_search.cpp: NSGA-II over per-layer choices, densified by the exact knapsack.
void search_front(RunContext& run);

// stage_screen.cpp: front points timed whole, side by side with the original, before one is
// fine-tuned; sets run.chosen_front_index (-1: nothing worth fine-tuning).
void choose_first_point(RunContext& run);
// Shared with the attempts, which time further points the same way:
std::optional<double> timed_ratio(const RunContext& run, int front_index);
// The share of the latency target a point takes: as timed whole when it was, else as predicted,
// scaled by how far the timed points' predictions were off.
double latency_fraction(const RunContext& run, int front_index);
// Times the point's whole model side by side with the original (journal, then the latency cache,
// then the backend). False when the run has timed as many points as it may.
bool time_whole(RunContext& run, int front_index);

// stage_finetune.cpp: fine-tune and verify, trying further front points while the goal is
// missed; or, with no point worth fine-tuning, keep the original. Fills the report's result.
void attempts(RunContext& run);

// stage_verify.cpp: the attempt's adapted model timed side by side with the original (in int8,
// the four models: each in fp32 and in int8) and scored on the test set; journaled by the
// attempt's key, and the timings kept in the latency cache by both models' weights.
Verified verified_models(RunContext& run, int front_index, const graph::Graph& adapted);
// The report's note when an attempt was timed on an unsteady machine.
std::string unsteady_timing_note(const RunContext& run, const Verified& v, double speedup);

// stage_export.cpp: adapted.onnx (checked, run by ONNX Runtime), adapted.pt, report.json and
// report.html.
void export_files(RunContext& run);

}  // namespace gos::search
