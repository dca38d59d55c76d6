// The rewrite rules write candidates in the constructors' forms, so that every lowering runs them
// on efficient kernels: this checks which kernel each statement of each rule's candidates gets.
#include <gtest/gtest.h>

#include <map>

#include "lowering/kernels.h"
#include "rules/rules.h"
#include "rules/rules_test_ops.h"

namespace gos::lowering {
namespace {

using Kinds = std::vector<KernelKind>;

Kinds kinds_of(const ir::OpExpr& op) {
  Kinds kinds;
  for (const auto& kernel : recognise(op)) kinds.push_back(kernel.kind);
  return kinds;
}

std::string text(const Kinds& kinds) {
  std::string out;
  for (auto kind : kinds) out += (out.empty() ? "" : ", ") + std::string(to_string(kind));
  return out;
}

// The kernels each rule's candidates must get on convolutions (one candidate of each derivation
// kind; the rule name is enough because a rule's variants share their kernels, except where a
// parameter picks another form).
const std::map<std::string, Kinds>& conv_kernels() {
  static const std::map<std::string, Kinds> table{
      {"rank_split", {KernelKind::Conv, KernelKind::Conv}},
      {"shared_index", {KernelKind::Conv, KernelKind::Conv}},  // depthwise + 1x1, or 1x1 + depthwise
      {"window_split", {KernelKind::Conv, KernelKind::Conv}},  // k x 1 then 1 x k
      {"group", {KernelKind::Conv}},                            // grouped conv (without shuffle)
      {"group_shuffle", {KernelKind::Conv}},                    // channel shuffle, then a grouped conv
      // A shuffle inside each group of an already grouped conv is no single reordering the
      // grouped kernel takes: einsum.
      {"group_shuffle_within_groups", {KernelKind::Generic}},
      {"share", {KernelKind::Generic, KernelKind::Conv}},       // one window for all channels: einsum, then 1x1
      {"shift", {KernelKind::Shift, KernelKind::Conv}},         // gather, then 1x1
      {"shrink", {KernelKind::Conv}},
  };
  return table;
}

std::string kernel_key(const std::string& original, const rules::Candidate& candidate) {
  const auto& step = candidate.derivation.back();
  bool shuffled = std::any_of(step.params.begin(), step.params.end(), [](const auto& p) { return p.first == "shuffle"; });
  if (!shuffled) return step.rule;
  return original.find("grouped") != std::string::npos ? step.rule + "_shuffle_within_groups" : step.rule + "_shuffle";
}

TEST(CandidateKernels, ConvolutionCandidatesRunOnConvAndShiftKernels) {
  for (const auto& [name, op] : rules::test_ops::originals()) {
    if (!name.starts_with("conv")) continue;
    const auto root = rules::original(op, rules::test_ops::random_tensors(op, ir::Role::Param, 1));
    for (const auto& rule : rules::rule_names()) {
      for (const auto& candidate : rules::apply_rule(rule, root, 0)) {
        const Kinds& expected = conv_kernels().at(kernel_key(name, candidate));
        EXPECT_EQ(text(kinds_of(candidate.op)), text(expected))
            << name << ": " << candidate.derivation_text() << "\n" << ir::print(candidate.op);
      }
    }
  }
}

TEST(CandidateKernels, LinearAndMatMulRankSplitsRunOnTheirOwnKernels) {
  for (const auto& [name, op] : rules::test_ops::originals()) {
    if (name.starts_with("conv")) continue;
    const auto root = rules::original(op, rules::test_ops::random_tensors(op, ir::Role::Param, 2));
    const KernelKind kind = name.starts_with("linear") ? KernelKind::Linear : KernelKind::MatMul;
    for (const auto& candidate : rules::apply_rule("rank_split", root, 0)) {
      EXPECT_EQ(text(kinds_of(candidate.op)), text({kind, kind})) << name << ": " << candidate.derivation_text();
    }
  }
}

TEST(CandidateKernels, ShiftGathersEachChannelFromItsHotTap) {
  // Channel 0 reads one row up (tap r=0), channel 1 reads in place (r=1, s=1) on a 3x4 input
  // padded by 1: the gather positions are those of the padded 5x6 input.
  const ir::OpExpr op = ir::parse(
      "Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,0,r,s] where n<1, c<2, h<3, w<4, r<3, s<3, "
      "const C[2,1,3,3] = {0,1,0,0,0,0,0,0,0, 0,0,0,0,1,0,0,0,0}");
  const auto kernels = recognise(op);
  ASSERT_EQ(kernels[0].kind, KernelKind::Shift);
  EXPECT_EQ(kernels[0].shift_taps, (std::vector<int64_t>{1, 4}));
  const auto positions = shift_gather_positions(kernels[0]);
  ASSERT_EQ(positions.size(), 2u * 3 * 4);
  EXPECT_EQ(positions[0], 0 * 6 + 1);           // channel 0, output (0,0) reads padded (0,1)
  EXPECT_EQ(positions[12], 30 + 1 * 6 + 1);     // channel 1, output (0,0) reads padded (1,1)
  EXPECT_EQ(positions[23], 30 + 3 * 6 + 4);     // channel 1, output (2,3) reads padded (3,4)
}

TEST(CandidateKernels, ATableThatIsNotOneHotIsNotAShift) {
  const ir::OpExpr op = ir::parse(
      "Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,0,r,s] where n<1, c<2, h<3, w<4, r<3, s<3, "
      "const C[2,1,3,3] = {0,1,0,0,0,0,0,0,0, 0,0,0,0,1,0,0,0,0.5}");
  EXPECT_EQ(recognise(op)[0].kind, KernelKind::Generic);
}

}  // namespace
}  // namespace gos::lowering
