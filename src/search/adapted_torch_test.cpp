// A model with operators replaced by candidates runs, exports and keeps the model's behaviour
// when the candidates are exact.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "graph/onnx_export.h"
#include "graph/torch_module.h"
#include "search/adapted.h"
#include "search/candidates.h"
#include "zoo/zoo.h"

namespace gos::search {
namespace {

TEST(ReplaceOperators, ExactCandidatesKeepTheModelsOutputs) {
  const graph::Graph model = graph::fold_batch_norms(zoo::build_model("resnet20", 3));
  std::map<std::string, rules::Candidate> chosen;
  for (const char* name : {"stage2.block2.conv1.conv", "stage3.block3.conv2.conv"}) {
    const graph::Node& node = *model.find_node(name);
    auto candidates = rules::apply_rule("rank_split", rules::original(*node.op, node.weights), 0,
                                        {.ranks = std::vector<int64_t>{64}});
    ASSERT_FALSE(candidates.empty());
    chosen.emplace(name, candidates[0]);
  }
  const graph::Graph adapted = replace_operators(model, chosen);
  EXPECT_GT(graph::total_macs(adapted), graph::total_macs(model));  // full rank costs more; it is exact
  torch::NoGradGuard no_grad;
  graph::GraphModule original_module(model), adapted_module(adapted);
  original_module.eval();
  adapted_module.eval();
  auto x = torch::rand({4, 1, 28, 28});
  auto expected = original_module.forward(x), actual = adapted_module.forward(x);
  EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-3 * std::max(1.0, expected.abs().max().item<double>()));
  EXPECT_NO_THROW(graph::check_onnx(graph::to_onnx(adapted)));
}

TEST(ReplaceOperators, MismatchedOrUnknownOperatorsAreErrors) {
  const graph::Graph model = graph::fold_batch_norms(zoo::build_model("resnet20", 3));
  const graph::Node& conv = *model.find_node("stage3.block3.conv2.conv");
  const graph::Node& other = *model.find_node("stem.conv");
  auto candidate = rules::apply_rule("shrink", rules::original(*other.op, other.weights), 0).at(0);
  EXPECT_THROW(replace_operators(model, {{conv.name, candidate}}), SearchError);
  EXPECT_THROW(replace_operators(model, {{"no.such.node", candidate}}), SearchError);
}

}  // namespace
}  // namespace gos::search
