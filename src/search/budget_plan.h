#pragma once
// Planning gos adapt's budget (docs/search.md, "Budget"): how much of the search to do and how many
// epochs to fine-tune, from what the first units of work cost on this machine now. A machine twice
// as slow, or loaded, gets a smaller search and fewer epochs, never a search cut off halfway.
// Plain C++: it only sees numbers.
#include <cstddef>
#include <vector>

namespace gos::search {

// How much of the search per layer: candidates distilled and distillation steps each; and the
// validation samples each candidate's effect is measured on.
struct SearchScale {
  int candidates_per_layer = 12;
  int distill_steps = 300;
  int sensitivity_samples = 2000;
  friend bool operator==(const SearchScale&, const SearchScale&) = default;
};

// From the scale asked for down to the least that still searches, each rung cheaper than the one
// before: first fewer sensitivity samples (every candidate and the original are measured on the
// same samples, so their differences keep most of their precision), then fewer distillation steps,
// then fewer candidates per layer (the fastest of each layer's latency/error front come first),
// then steps and samples halved again and again. Never below 2 candidates, 50 steps or 250
// samples (nor above what was asked).
std::vector<SearchScale> scale_ladder(const SearchScale& wanted);

// What a unit of work costs on this machine now, measured on the first units.
struct UnitCosts {
  double layer_seconds = 0;              // recording one operator's inputs and scoring its candidates
  double distill_step_seconds = 0;       // one step of one candidate's distillation
  double evaluation_seconds_per_sample = 0;  // one validation sample through the model
  double epoch_seconds = 0;              // one epoch of fine-tuning
};

// The search work left: the candidates each layer not yet begun can distil (hottest first), and how
// many candidates were distilled already whose effect is still to be measured.
struct SearchWork {
  std::vector<int> layer_candidates;
  int distilled_unmeasured = 0;
};

// The seconds the first `layers` layers of `work` and the pending effects take at `scale`.
double search_seconds(const SearchWork& work, const SearchScale& scale, const UnitCosts& costs, size_t layers);

struct SearchPlan {
  SearchScale scale;
  size_t layers = 0;   // how many of the layers not begun are searched, hottest first
  double seconds = 0;  // what that is expected to take
};

// The first rung of the ladder whose work on every layer fits `seconds`; when even the last does
// not, the last rung on as many layers (hottest first) as fit, possibly none.
SearchPlan plan_search(const SearchWork& work, const SearchScale& wanted, const UnitCosts& costs, double seconds);

// Of `seconds_left`, what the search stages may spend: what fine-tuning every epoch asked for
// leaves, but at least kSearchShare of it (a search cut to nothing finds nothing to fine-tune).
constexpr double kSearchShare = 0.4;
double search_allocation(double seconds_left, double finetune_seconds);

// Sensitivity samples per candidate so that `candidates` effects (and the original's) fit
// `seconds`: the largest of `wanted`, its half, quarter, ... down to 250 (or `wanted` if smaller).
int sensitivity_samples_that_fit(int wanted, int candidates, double evaluation_seconds_per_sample, double seconds);

// Fine-tuning epochs that fit `seconds`: at most `wanted`, at least 1.
int epochs_that_fit(int wanted, double epoch_seconds, double seconds);

// For the effects the budget leaves unmeasured: the least-squares slope through zero of the
// measured drops (never below zero) over the candidates' distilled output errors, so that a
// candidate that reproduces its operator less well is estimated to cost more. 0 with no error.
struct MeasuredEffect {
  double distilled_error = 0;
  double drop = 0;
};
double drop_per_error(const std::vector<MeasuredEffect>& measured);

}  // namespace gos::search
