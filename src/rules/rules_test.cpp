#include "rules/rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <set>

#include "rules/rules_test_ops.h"

namespace gos::rules {
namespace {

using test_ops::merged;
using test_ops::originals;
using test_ops::random_tensors;
using test_ops::relative_error;

ir::Tensor output_of(const Candidate& candidate, const ir::TensorMap& inputs) {
  return ir::evaluate(candidate.op, merged(inputs, candidate.weights));
}

// Every rule, applied to the first statement of every original, at every default parameter.
TEST(Rules, EveryCandidateKeepsTheSignatureAndEvaluates) {
  for (const auto& [name, op] : originals()) {
    const Candidate root = original(op, random_tensors(op, ir::Role::Param, 1));
    const ir::TensorMap inputs = random_tensors(op, ir::Role::Input, 2);
    const ir::Tensor expected = output_of(root, inputs);
    std::set<std::string> rules_with_candidates;
    for (const auto& rule : rule_names()) {
      for (const auto& candidate : apply_rule(rule, root, 0)) {
        SCOPED_TRACE(name + ": " + candidate.derivation_text() + "\n" + ir::print(candidate.op));
        rules_with_candidates.insert(rule);
        EXPECT_EQ(candidate.op.tensors_with_role(ir::Role::Input), op.tensors_with_role(ir::Role::Input));
        EXPECT_EQ(candidate.op.output().shape, op.output().shape);
        for (const auto& param : candidate.op.tensors_with_role(ir::Role::Param)) {
          ASSERT_TRUE(candidate.weights.count(param.name)) << param.name;
          EXPECT_EQ(candidate.weights.at(param.name).shape, param.shape);
        }
        EXPECT_EQ(candidate.weights.size(), candidate.op.tensors_with_role(ir::Role::Param).size());
        ir::Tensor actual = output_of(candidate, inputs);
        EXPECT_EQ(actual.shape, expected.shape);
        EXPECT_TRUE(std::isfinite(relative_error(actual, expected)));
        EXPECT_EQ(ir::parse(ir::print(candidate.op)), candidate.op);
      }
    }
    const bool has_window = op.tensors_with_role(ir::Role::Input)[0].shape.size() >= 3;
    std::set<std::string> expected_rules{"rank_split", "group"};
    if (has_window) expected_rules = {"rank_split", "group", "shared_index", "window_split", "share", "shift", "shrink"};
    if (name == "conv1d_strided") expected_rules.erase("window_split");  // 3 taps do not factor
    // 4 taps dilated by 2 over 12 inputs padded only at the start: every smaller window would
    // need a cropped output (no standard convolution), and an even window has no dilated form.
    if (name == "conv1d") expected_rules.erase("shrink");
    if (name == "matmul_weight" || name.starts_with("linear")) expected_rules = {"rank_split", "group"};
    EXPECT_EQ(rules_with_candidates, expected_rules) << name;
  }
}

}  // namespace
}  // namespace gos::rules

namespace gos::rules {
namespace {

using test_ops::merged;
using test_ops::originals;
using test_ops::random_tensors;
using test_ops::relative_error;

const Candidate& find_candidate(const std::vector<Candidate>& candidates, const std::string& derivation) {
  for (const auto& candidate : candidates) {
    if (candidate.derivation_text() == derivation) return candidate;
  }
  std::string found;
  for (const auto& candidate : candidates) found += "\n  " + candidate.derivation_text();
  throw std::runtime_error("no candidate '" + derivation + "' among:" + found);
}

// The relative error of the candidate's output against the original's on random inputs.
double init_error(const Candidate& root, const Candidate& candidate, uint32_t seed = 7) {
  const ir::TensorMap inputs = random_tensors(root.op, ir::Role::Input, seed);
  return relative_error(ir::evaluate(candidate.op, merged(inputs, candidate.weights)),
                        ir::evaluate(root.op, merged(inputs, root.weights)));
}

TEST(RuleExactness, RankSplitAtFullRankReproducesTheOriginal) {
  for (const auto& [name, op] : originals()) {
    SCOPED_TRACE(name);
    const Candidate root = original(op, random_tensors(op, ir::Role::Param, 3));
    const auto& y = op.output().shape;
    const auto x = op.tensors_with_role(ir::Role::Input)[0].shape;
    // The full rank is at most the larger channel count.
    const int64_t full = std::max({y[1], x[1], y.back(), x.back()});
    auto candidates = apply_rule("rank_split", root, 0, {.ranks = std::vector<int64_t>{full}});
    ASSERT_FALSE(candidates.empty());
    for (const auto& candidate : candidates) EXPECT_LE(init_error(root, candidate), 1e-4) << candidate.derivation_text();
  }
}

TEST(RuleExactness, GroupWithOneGroupReproducesTheOriginal) {
  for (const auto& [name, op] : originals()) {
    SCOPED_TRACE(name);
    const Candidate root = original(op, random_tensors(op, ir::Role::Param, 4));
    auto candidates = apply_rule("group", root, 0, {.groups = std::vector<int64_t>{1}});
    ASSERT_EQ(candidates.size(), 1u);
    EXPECT_EQ(candidates[0].op, op);
    EXPECT_LE(init_error(root, candidates[0]), 1e-6);
  }
}

// A conv2d whose weight is built with a structure; the matching rule must recover it exactly.
constexpr int64_t K = 6, C = 4, R = 3, S = 3;

ir::OpExpr structured_conv() {
  return ir::conv2d({.batch = 1, .in_channels = C, .out_channels = K, .input_size = {6, 5}, .kernel = {R, S},
                     .padding = {1, 1, 1, 1}, .bias = true});
}

std::vector<float> random_values(size_t count, std::mt19937& engine) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (auto& value : values) value = normal(engine);
  return values;
}

// W[k,c,r,s] = value(k, c, r, s).
Candidate structured(const std::function<float(int64_t, int64_t, int64_t, int64_t)>& value) {
  ir::OpExpr op = structured_conv();
  ir::TensorMap weights = random_tensors(op, ir::Role::Param, 5);
  ir::Tensor& w = weights.at("W");
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) w.data[((k * C + c) * R + r) * S + s] = value(k, c, r, s);
  return original(op, weights);
}

void expect_recovered(const Candidate& root, const std::string& rule, const std::string& derivation,
                      const RuleOptions& options = {}) {
  const auto candidates = apply_rule(rule, root, 0, options);
  EXPECT_LE(init_error(root, find_candidate(candidates, derivation)), 1e-4) << derivation;
}

TEST(RuleExactness, StructuredWeightsAreRecoveredByTheMatchingRule) {
  std::mt19937 engine(11);
  auto P = random_values(K * C, engine), Dc = random_values(C * R * S, engine), Dk = random_values(K * R * S, engine);
  auto A = random_values(2 * C * R * S, engine), B = random_values(K * 2, engine);
  auto Ar = random_values(2 * C * R, engine), Bs = random_values(K * 2 * S, engine), Kw = random_values(R * S, engine);

  expect_recovered(structured([&](auto k, auto c, auto r, auto s) { return P[k * C + c] * Dc[(c * R + r) * S + s]; }),
                   "shared_index", "shared_index(index=c)");
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) { return P[k * C + c] * Dk[(k * R + r) * S + s]; }),
                   "shared_index", "shared_index(index=k)");
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) {
                     return B[k * 2] * A[((0 * C + c) * R + r) * S + s] + B[k * 2 + 1] * A[((1 * C + c) * R + r) * S + s];
                   }),
                   "rank_split", "rank_split(r=2)", {.ranks = std::vector<int64_t>{2}});
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) {
                     return Ar[(0 * C + c) * R + r] * Bs[(k * 2 + 0) * S + s] + Ar[(1 * C + c) * R + r] * Bs[(k * 2 + 1) * S + s];
                   }),
                   "window_split", "window_split(r=2)", {.ranks = std::vector<int64_t>{2}});
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) { return P[k * C + c] * Kw[r * S + s]; }), "share",
                   "share(drop=c)");
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) {
                     return (r == c % R && s == (c / R) % S) ? P[k * C + c] : 0.0f;
                   }),
                   "shift", "shift(window=3x3)");
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) {
                     return k / (K / 2) == c / (C / 2) ? Dk[(k * R + r) * S + s] * P[k * C + c] : 0.0f;
                   }),
                   "group", "group(g=2)");
  expect_recovered(structured([&](auto k, auto c, auto r, auto s) { return r == 1 ? P[k * C + c] * Kw[s] : 0.0f; }),
                   "shrink", "shrink(window=1x3)");
}

TEST(RuleExactness, OneDimensionalWindowSplitRecoversASeparableWindow) {
  // W[k,c,t1 + 2*t2] = A[c,t1] * B[k,t2]: a window of 4 taps that is 2 taps then 2 taps dilated by 2.
  ir::OpExpr op = ir::conv1d({.batch = 1, .in_channels = 3, .out_channels = 5, .input_length = 11, .kernel = 4,
                              .padding = {2, 1}, .bias = true});
  ir::TensorMap weights = random_tensors(op, ir::Role::Param, 9);
  std::mt19937 engine(12);
  auto A = random_values(3 * 2, engine), B = random_values(5 * 2, engine);
  for (int64_t k = 0; k < 5; ++k)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t t = 0; t < 4; ++t) weights.at("W").data[(k * 3 + c) * 4 + t] = A[c * 2 + t % 2] * B[k * 2 + t / 2];
  const Candidate root = original(op, weights);
  expect_recovered(root, "window_split", "window_split(r=1, taps=2x2)", {.ranks = std::vector<int64_t>{1}});
}

TEST(RuleExactness, InitialisationErrorShrinksAsTheRankGrows) {
  const ir::OpExpr op = structured_conv();
  const Candidate root = original(op, random_tensors(op, ir::Role::Param, 13));
  double previous = 2.0;
  for (int64_t rank = 1; rank <= K; ++rank) {
    const auto candidates = apply_rule("rank_split", root, 0, {.ranks = std::vector<int64_t>{rank}});
    double error = init_error(root, find_candidate(candidates, "rank_split(r=" + std::to_string(rank) + ")"));
    EXPECT_LT(error, previous + 1e-9) << rank;
    previous = error;
  }
  EXPECT_LE(previous, 1e-4);
}

TEST(Derivation, CandidatesAreDistinctCheaperAndExcludeTheOriginal) {
  for (const auto& [name, op] : originals()) {
    SCOPED_TRACE(name);
    const auto weights = random_tensors(op, ir::Role::Param, 14);
    const auto candidates = derive_candidates(op, weights);
    const ir::Cost reference = ir::cost(op);
    std::set<std::string> keys{op.canonical_key()};
    for (const auto& candidate : candidates) {
      EXPECT_TRUE(keys.insert(candidate.op.canonical_key()).second) << candidate.derivation_text();
      const ir::Cost cost = ir::cost(candidate.op);
      EXPECT_TRUE(cost.macs < reference.macs || cost.params < reference.params) << candidate.derivation_text();
      EXPECT_LE(candidate.derivation.size(), 2u);
    }
    EXPECT_GE(derive_candidates(op, weights, {.keep_costlier = true}).size(), candidates.size());
  }
}

TEST(Derivation, CandidatesCostingMoreThanTheOriginalAreKeptOnlyWhenAskedFor) {
  const ir::OpExpr op = structured_conv();
  const auto weights = random_tensors(op, ir::Role::Param, 16);
  RuleOptions full_rank{.depth = 1, .rules = {"rank_split"}, .ranks = std::vector<int64_t>{K}};
  EXPECT_TRUE(derive_candidates(op, weights, full_rank).empty());
  full_rank.keep_costlier = true;
  const auto kept = derive_candidates(op, weights, full_rank);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_GT(ir::cost(kept[0].op).macs, ir::cost(op).macs);
}

TEST(Derivation, DepthTwoComposesRules) {
  const ir::OpExpr op = structured_conv();
  const auto candidates = derive_candidates(op, random_tensors(op, ir::Role::Param, 15));
  const Candidate& tucker = find_candidate(candidates, "rank_split(r=3) then rank_split(r=1, at=input, stage=1)");
  EXPECT_EQ(tucker.op.statements().size(), 3u);  // a 1x1, a 3x3 and a 1x1: Tucker-2
  size_t composed = std::count_if(candidates.begin(), candidates.end(), [](const Candidate& c) { return c.derivation.size() == 2; });
  EXPECT_GT(composed, candidates.size() / 2);
  EXPECT_TRUE(derive_candidates(op, random_tensors(op, ir::Role::Param, 15), {.depth = 1}).size() < candidates.size());
}

TEST(Derivation, DerivationsPrintRulesAndParametersInOrder) {
  RuleStep group{"group", {{"g", "4"}, {"shuffle", ""}}};
  RuleStep rank{"rank_split", {{"r", "8"}}};
  Candidate candidate{ir::conv2d({}), {}, {group, rank}};
  EXPECT_EQ(candidate.derivation_text(), "group(g=4, shuffle) then rank_split(r=8)");
  EXPECT_EQ((Candidate{ir::conv2d({}), {}, {}}).derivation_text(), "original");
}

TEST(Derivation, RulesDoNotApplyToOperatorsWithoutALearnedContraction) {
  const ir::OpExpr pool = ir::max_pool({.channels = 2, .input_size = {4, 4}, .kernel = {2, 2}, .stride = {2, 2}});
  EXPECT_TRUE(derive_candidates(pool, {}).empty());
  EXPECT_NE(why_not_searchable(pool), "");
  EXPECT_EQ(why_not_searchable(structured_conv()), "");
  EXPECT_THROW(apply_rule("no_such_rule", original(structured_conv(), random_tensors(structured_conv(), ir::Role::Param, 1)), 0),
               std::invalid_argument);
  EXPECT_THROW(derive_candidates(structured_conv(), {}), ir::IrError);  // the weights are missing
}

}  // namespace
}  // namespace gos::rules
