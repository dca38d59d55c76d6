// Candidate scoring and local distillation on recorded operator inputs.
#include <gtest/gtest.h>

#include "ir/ops.h"
#include "lowering/torch_lowering.h"
#include "rules/rules_test_ops.h"
#include "search/candidates.h"

namespace gos::search {
namespace {

using rules::test_ops::random_tensors;

struct Recorded {
  rules::Candidate original;
  std::vector<ir::Tensor> train, held_out;
};

Recorded conv_setup() {
  ir::OpExpr op = ir::conv2d({.batch = 1, .in_channels = 6, .out_channels = 8, .input_size = {6, 6}, .kernel = {3, 3},
                              .padding = {1, 1, 1, 1}, .bias = true});
  Recorded setup{rules::original(op, random_tensors(op, ir::Role::Param, 1)), {}, {}};
  std::mt19937 engine(2);
  setup.train.push_back(rules::test_ops::random_tensor({64, 6, 6, 6}, engine));
  setup.held_out.push_back(rules::test_ops::random_tensor({16, 6, 6, 6}, engine));
  return setup;
}

TEST(Record, LargeInputsAreRecordedOnFewerSamplesButNeverTooFew) {
  graph::Graph graph;
  graph.inputs = {{"x", {1, 64, 56, 56}}};
  graph.shapes = {{"x", {1, 64, 56, 56}}, {"y", {1, 64, 56, 56}}};
  graph.constants = {{"scale", ir::Tensor({1, 64, 1, 1}, 1.0f)}};
  graph::Node node{.name = "mul", .op_type = "Mul", .inputs = {"x", "scale"}, .outputs = {"y"}};
  // 802,816 bytes a sample (the constant not counted): 83 of them fit 64 MiB.
  EXPECT_EQ(samples_to_record(graph, node, 256), 83);
  EXPECT_EQ(samples_to_record(graph, node, 50), 50);
  EXPECT_EQ(samples_to_record(graph, node, 256, 802816 * 300), 256);
  EXPECT_EQ(samples_to_record(graph, node, 256, 1000), 16);
  EXPECT_EQ(samples_to_record(graph, node, 8, 1000), 8);
}

TEST(Record, ANodesInputsOnManySamplesAreEverySamplesValuesInOrder) {
  graph::Graph graph;
  graph.inputs = {{"x", {1, 2, 3, 3}}};
  graph.outputs = {{"z", {1, 2, 3, 3}}};
  graph.shapes = {{"x", {1, 2, 3, 3}}, {"y", {1, 2, 3, 3}}, {"z", {1, 2, 3, 3}}};
  graph.nodes = {{.name = "relu", .op_type = "Relu", .inputs = {"x"}, .outputs = {"y"}, .op = ir::activation({1, 2, 3, 3}, ir::Activation::Relu)},
                 {.name = "sigmoid", .op_type = "Sigmoid", .inputs = {"y"}, .outputs = {"z"},
                  .op = ir::activation({1, 2, 3, 3}, ir::Activation::Sigmoid)}};
  // More samples than one forward pass takes, and not a multiple of it.
  ir::Tensor x({37, 2, 3, 3});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = static_cast<float>(i % 7) - 3.0f;
  const auto recorded = record_node_inputs(graph, graph.nodes[1], {x});
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].shape, x.shape);
  for (size_t i = 0; i < x.data.size(); ++i) EXPECT_EQ(recorded[0].data[i], std::max(x.data[i], 0.0f)) << i;
}

TEST(Distill, TrainingReducesTheErrorOfALossyCandidate) {
  Recorded s = conv_setup();
  auto candidates = rules::apply_rule("rank_split", s.original, 0, {.ranks = std::vector<int64_t>{2}});
  ASSERT_FALSE(candidates.empty());
  Distilled distilled = distill_candidate(s.original, candidates[0], s.train, s.held_out, {.steps = 200, .learning_rate = 3e-3});
  EXPECT_LT(distilled.error_after, distilled.error_before);
  EXPECT_EQ(distilled.weights.size(), candidates[0].weights.size());
  for (const auto& [name, tensor] : distilled.weights) EXPECT_EQ(tensor.shape, candidates[0].weights.at(name).shape);
}

TEST(Distill, AnExactCandidateStaysExact) {
  Recorded s = conv_setup();
  auto exact = rules::apply_rule("rank_split", s.original, 0, {.ranks = std::vector<int64_t>{8}});
  ASSERT_FALSE(exact.empty());
  Distilled distilled = distill_candidate(s.original, exact[0], s.train, s.held_out, {.steps = 50, .learning_rate = 1e-4});
  EXPECT_LT(distilled.error_before, 1e-4);
  EXPECT_LT(distilled.error_after, 1e-2);
}

TEST(Distill, AnOperatorWritingMoreThanAPassMayTakesFewerSamplesAtOnceWithTheSameErrors) {
  Recorded s = conv_setup();
  auto candidates = rules::apply_rule("rank_split", s.original, 0, {.ranks = std::vector<int64_t>{2}});
  ASSERT_FALSE(candidates.empty());
  const int64_t per_sample = lowering::TorchOp(candidates[0].op).bytes_per_sample();
  // Three samples per pass: the 16 held-out samples are scored in six passes, training batches of 3.
  const Distilled bounded = distill_candidate(s.original, candidates[0], s.train, s.held_out,
                                              {.steps = 0, .max_pass_bytes = 3 * per_sample + 1});
  const Distilled whole = distill_candidate(s.original, candidates[0], s.train, s.held_out, {.steps = 0});
  EXPECT_NEAR(bounded.error_before, whole.error_before, 1e-5 * whole.error_before);
  EXPECT_NEAR(bounded.error_after, whole.error_after, 1e-5 * whole.error_after);
  const Distilled trained = distill_candidate(s.original, candidates[0], s.train, s.held_out,
                                              {.steps = 200, .learning_rate = 3e-3, .max_pass_bytes = 3 * per_sample + 1});
  EXPECT_LT(trained.error_after, trained.error_before);
}

TEST(Score, ScoresMatchTheInterpreterAndTheFrontIsNonDominated) {
  Recorded s = conv_setup();
  auto candidates = rules::derive_candidates(s.original.op, s.original.weights, {.depth = 1});
  std::mt19937 engine(3);
  const ir::Tensor one = rules::test_ops::random_tensor({1, 6, 6, 6}, engine);  // the interpreter runs the declared batch
  auto scored = score_candidates(s.original, candidates, {one});
  ASSERT_EQ(scored.size(), candidates.size());
  ir::TensorMap bindings = s.original.weights;
  bindings["X"] = one;
  const ir::Tensor reference = ir::evaluate(s.original.op, bindings);
  for (size_t i = 0; i < 3; ++i) {
    ir::TensorMap candidate_bindings = candidates[i].weights;
    candidate_bindings["X"] = one;
    EXPECT_NEAR(scored[i].init_rel_error,
                rules::test_ops::relative_error(ir::evaluate(candidates[i].op, candidate_bindings), reference), 1e-4);
  }
  auto front = pareto_front(scored);
  ASSERT_FALSE(front.empty());
  for (size_t a : front) {
    for (const auto& other : scored) {
      bool dominates = other.cost.macs <= scored[a].cost.macs && other.init_rel_error < scored[a].init_rel_error &&
                       other.cost.macs < scored[a].cost.macs;
      EXPECT_FALSE(dominates);
    }
  }
}

}  // namespace
}  // namespace gos::search
