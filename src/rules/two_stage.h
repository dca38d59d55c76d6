#pragma once
// Internal to the rules: the factorisation that rank_split, shared_index, window_split, share
// and shift all are. The weight W[out, in, taps] is written as the product of two weights, and
// the statement as two statements through an intermediate T:
//
//   stage 1:  T[.., bridge, ..] = sum{first taps, (c)} X[..] * W1[..]
//   stage 2:  Y[..]             = sum{other taps, (bridge)} T[..] * W2[..] + addends
//
// The bridge, T's channel, is a new rank index p (rank split, window split), the input channel
// c kept (shared index c, share, shift), or the output channel k computed first (shared index k).
// The taps summed in stage 1 give each stage its window; positions, strides, dilations and
// padding are split so that the two stages read exactly what the original read.
#include <optional>
#include <set>
#include <string>

#include "rules/contraction.h"
#include "rules/rules.h"

namespace gos::rules::detail {

enum class Bridge {
  Rank,       // T's channel is a new index p of extent `rank`
  SharedIn,   // T's channel is c: W1[c, taps] per channel (depthwise), then W2[k, c]
  SharedOut,  // T's channel is k: W1[k, c] first, then W2[k, taps] per channel
  Dropped,    // like SharedIn, but W1 has no channel index: one window for every channel
};

struct TwoStageSpec {
  Bridge bridge = Bridge::Rank;
  int64_t rank = 1;                   // Bridge::Rank
  std::set<std::string> first_taps;  // taps summed in stage 1; the rest in stage 2
  bool one_hot_first = false;         // SharedIn only: W1 is a fixed one-hot table (shift)
};

// The factorised candidate with inherited weights (truncated SVD per group, rank-1 per shared
// channel, or the best one-hot tap per channel), or nullopt when the contraction lacks an index
// the bridge needs.
std::optional<Candidate> two_stage(const Candidate& from, const Contraction& contraction, const TwoStageSpec& spec,
                                   RuleStep step);

}  // namespace gos::rules::detail
