#pragma once
// The public face of the rewrite rules: replacement operators derived from an operator's
// instructions, each initialised from the original weights.
//
// A rule is a transformation of one statement of an OpExpr, defined on the roles its indices
// play, never on an op name: the statement must be a contraction of one data tensor X with one
// learned weight W (Y = sum X * W, plus bias and activation), whose indices are read off as
// output channel k (in W and Y), input channel c (summed, in W and X), group g (in W, X and Y),
// window taps (summed, in W and next to a position in X) and positions (in X and Y). So the same
// rules serve Conv1d, Conv2d (strided, dilated, grouped), Linear/Gemm in either layout and MatMul
// with a weight. Every candidate keeps the operator's inputs and output (names and shapes), and
// its statements are written in the constructors' forms (ir/ops.h), so that lowerings find
// conv/depthwise/1x1/linear kernels for them.
//
//   rank_split      W[k,c,taps] ~ sum_p B[k,p] A[p,c,taps]       (window first, then a 1x1), or
//                   W ~ sum_p B[k,p,taps] A[p,c] (at=input: a 1x1 first, then the window)
//   shared_index    W[k,c,taps] ~ P[k,c] D[c,taps] (index=c: depthwise then pointwise), or
//                   P[k,c] D[k,taps] (index=k: pointwise then depthwise)
//   window_split    W[k,c,r,s] ~ sum_p A[p,c,r] B[k,p,s] (k x 1 then 1 x k); a 1-D window of
//                   R = R1*R2 taps as R1 taps then R2 taps dilated by R1
//   group           k -> (g,k'), c -> (g,c'), the weight only on matching g (block diagonal),
//                   optionally reading the input channels shuffled
//   share           W[k,c,taps] ~ P[k,c] K[taps]: one window shared by every channel
//   shift           a fixed one-hot window per input channel (zero MACs), then P[k,c]
//   shrink          a smaller (centred) or dilated window with the same output positions
//
// Weights are inherited by the matching decomposition (truncated SVD, rank-1 per channel, SVD
// over the window, block-diagonal part, best rank-1 for share, best one-hot tap for shift, centre
// crop or strided taps for shrink), so a candidate starts close to the original operator.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/ir.h"

namespace gos::rules {

// One rule application: its name and parameters, printed as `group(g=4, shuffle)`.
struct RuleStep {
  std::string rule;
  std::vector<std::pair<std::string, std::string>> params;  // ordered; an empty value prints the key alone
  std::string text() const;
  friend bool operator==(const RuleStep&, const RuleStep&) = default;
};

struct Candidate {
  ir::OpExpr op;
  ir::TensorMap weights;            // a value for every param of `op`
  std::vector<RuleStep> derivation;  // rules applied in order; empty for the original operator
  // "group(g=4) then rank_split(r=8)", or "original".
  std::string derivation_text() const;
};

struct RuleOptions {
  int depth = 2;                 // rule applications composed (1 or 2)
  bool keep_costlier = false;    // keep candidates not cheaper than the original in MACs or params
  std::vector<std::string> rules;  // rule names to use; empty: all
  // Ranks for rank_split and window_split as fractions of the full rank (rounded, at least 1),
  // unless `ranks` lists them explicitly.
  std::vector<double> rank_fractions{0.125, 0.25, 0.5};
  std::optional<std::vector<int64_t>> ranks;
  // Group counts: every divisor (> 1) of the channels per group, at most `max_group_choices` of
  // them, smallest first, unless `groups` lists them explicitly.
  int max_group_choices = 6;
  std::optional<std::vector<int64_t>> groups;
};

// The rules, in the order they are applied.
const std::vector<std::string>& rule_names();

// The operator as a candidate with an empty derivation (the root of every derivation).
Candidate original(const ir::OpExpr& op, const ir::TensorMap& weights);

// One rule at one statement of `from`; no cost filter and no deduplication. Throws
// std::invalid_argument for an unknown rule name. Empty when the statement has no contraction
// the rule applies to.
std::vector<Candidate> apply_rule(const std::string& rule, const Candidate& from, size_t statement,
                                  const RuleOptions& options = {});

// Every candidate of `op` up to options.depth rule applications (to any learned contraction of
// the candidates so far), deduplicated by canonical form (the first derivation found is kept),
// without the original itself, and without candidates that cost as much as or more than the
// original in both MACs and params (unless keep_costlier). Ordered by MACs, then derivation.
std::vector<Candidate> derive_candidates(const ir::OpExpr& op, const ir::TensorMap& weights,
                                         const RuleOptions& options = {});

// Why an operator has no candidates: empty if some statement is a learned contraction the rules
// understand, else a one-line reason naming what is missing.
std::string why_not_searchable(const ir::OpExpr& op);

}  // namespace gos::rules
