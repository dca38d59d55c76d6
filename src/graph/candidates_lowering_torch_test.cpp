// The rewrite rules' candidates run the same everywhere: for every rule on Conv1d, Conv2d
// (strided, dilated, grouped), Linear in both layouts and MatMul with a weight, each candidate's
// libtorch module, its mobile-optimised TorchScript file and its ONNX file under ONNX Runtime (with
// recognised kernels and again all generic) give the interpreter's outputs. All candidates of a
// test form one graph, so one export and one ONNX Runtime process serve them all.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "graph/onnx_export_test_support.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/torch_lowering.h"
#include "rules/rules.h"
#include "rules/rules_test_ops.h"

namespace gos::graph {
namespace {

using namespace test_support;

// Depth-1 candidates of every rule, plus every `stride`-th candidate of depth 2.
std::vector<OpCase> candidate_cases(size_t depth_two_stride) {
  std::vector<OpCase> cases;
  uint32_t seed = 1;
  for (const auto& [name, op] : rules::test_ops::originals()) {
    const ir::TensorMap weights = rules::test_ops::random_tensors(op, ir::Role::Param, seed++);
    const ir::TensorMap inputs = rules::test_ops::random_tensors(op, ir::Role::Input, seed++);
    const rules::Candidate root = rules::original(op, weights);
    auto add = [&](const rules::Candidate& candidate) {
      cases.push_back({name + ": " + candidate.derivation_text(), candidate.op,
                       rules::test_ops::merged(inputs, candidate.weights)});
    };
    for (const auto& rule : rules::rule_names()) {
      for (const auto& candidate : rules::apply_rule(rule, root, 0)) add(candidate);
    }
    const auto all = rules::derive_candidates(op, weights, {.keep_costlier = true});
    for (size_t i = 0; i < all.size(); i += depth_two_stride) {
      if (all[i].derivation.size() == 2) add(all[i]);
    }
  }
  return cases;
}

std::vector<torch::Tensor> torch_inputs(const Graph& graph, const ir::TensorMap& inputs) {
  std::vector<torch::Tensor> tensors;
  for (const auto& input : graph.inputs) tensors.push_back(lowering::to_torch(inputs.at(input.name)));
  return tensors;
}

std::vector<torch::Tensor> outputs_of(const torch::jit::IValue& result) {
  if (!result.isTuple()) return {result.toTensor()};
  std::vector<torch::Tensor> outputs;
  for (const auto& element : result.toTuple()->elements()) outputs.push_back(element.toTensor());
  return outputs;
}

class CandidateLowering : public ::testing::Test {
 protected:
  void SetUp() override {
    cases_ = candidate_cases(9);
    graph_ = graph_of_cases(cases_);
    inputs_ = graph_inputs_of_cases(cases_);
    for (const auto& c : cases_) expected_.push_back(ir::evaluate(c.op, c.bindings));
  }
  std::string context(size_t i) const { return cases_[i].label + "\n" + ir::print(cases_[i].op); }

  std::vector<OpCase> cases_;
  Graph graph_;
  ir::TensorMap inputs_;
  std::vector<ir::Tensor> expected_;
};

TEST_F(CandidateLowering, CoversEveryRule) {
  std::set<std::string> rules_seen;
  for (const auto& c : cases_) rules_seen.insert(c.label.substr(c.label.find(": ") + 2, c.label.find('(') - c.label.find(": ") - 2));
  for (const auto& rule : rules::rule_names()) EXPECT_TRUE(rules_seen.count(rule)) << rule;
  EXPECT_GT(cases_.size(), 150u);
}

TEST_F(CandidateLowering, LibtorchModuleMatchesTheInterpreter) {
  torch::NoGradGuard no_grad;
  GraphModule module(graph_);
  auto outputs = module.forward(torch_inputs(graph_, inputs_));
  ASSERT_EQ(outputs.size(), cases_.size());
  for (size_t i = 0; i < cases_.size(); ++i) {
    EXPECT_TRUE(close_to_reference(lowering::from_torch(outputs[i]), expected_[i])) << context(i);
  }
}

TEST_F(CandidateLowering, MobileTorchScriptMatchesTheInterpreter) {
  ScratchFolder folder;
  const std::string path = folder.file("candidates.pt").string();
  export_torchscript(graph_, path, /*optimise_for_mobile=*/true);
  torch::jit::Module loaded = torch::jit::load(path);
  auto inputs = torch_inputs(graph_, inputs_);
  auto outputs = outputs_of(loaded.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end())));
  ASSERT_EQ(outputs.size(), cases_.size());
  for (size_t i = 0; i < cases_.size(); ++i) {
    EXPECT_TRUE(close_to_reference(lowering::from_torch(outputs[i]), expected_[i])) << context(i);
  }
}

TEST_F(CandidateLowering, OnnxRuntimeMatchesTheInterpreter) {
  ScratchFolder folder;
  const std::vector<std::pair<std::string, bool>> lowerings{{"kernels", true}, {"generic", false}};
  std::vector<OrtRun> runs;
  for (const auto& [name, kernels] : lowerings) {
    auto path = folder.file(name + ".onnx");
    write_onnx(graph_, path, {.symbolic_batch = false, .recognise_kernels = kernels});
    runs.push_back({path, inputs_});
  }
  auto results = run_onnx_runtime(runs);
  ASSERT_EQ(results.size(), lowerings.size());
  for (size_t run = 0; run < lowerings.size(); ++run) {
    ASSERT_EQ(results[run].error, "") << lowerings[run].first << " lowering";
    for (size_t i = 0; i < cases_.size(); ++i) {
      EXPECT_TRUE(close_to_reference(results[run].outputs.at(value_name(i, "Y")), expected_[i]))
          << lowerings[run].first << " lowering: " << context(i);
    }
  }
}

}  // namespace
}  // namespace gos::graph
