// GraphModule against the graph interpreter on small hand-built graphs (eval mode, batch 1 and
// 3), batch normalisation in training mode, parameter naming, training steps and to_graph.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "graph/torch_module.h"
#include "graph/torch_test_graphs.h"

namespace gos::graph {
namespace {

using namespace test_graphs;

TEST(GraphModule, EvalModeMatchesTheInterpreter) {
  torch::set_num_threads(1);
  for (const auto& [name, graph] : all_graphs()) {
    SCOPED_TRACE(name);
    GraphModule module(graph);
    module.eval();
    torch::NoGradGuard no_grad;
    for (int64_t batch : {1, 3}) {
      auto inputs = random_inputs(graph, batch, 7);
      EXPECT_TRUE(all_close(module.forward(inputs), interpreted(graph, inputs))) << "at batch " << batch;
    }
  }
}

TEST(GraphModule, TestGraphsUseEveryStructuralOpType) {
  std::set<std::string> used;
  for (const auto& [name, graph] : all_graphs()) {
    for (const auto& node : graph.nodes) used.insert(node.op_type);
  }
  for (const auto& op_type : structural_op_types()) EXPECT_TRUE(used.count(op_type)) << op_type;
}

TEST(GraphModule, ParametersAreNamedByNodeAndRunningStatisticsAreBuffers) {
  GraphModule module(small_classifier());
  std::set<std::string> parameters, buffers;
  for (const auto& item : module.named_parameters()) parameters.insert(item.key());
  for (const auto& item : module.named_buffers()) buffers.insert(item.key());
  EXPECT_EQ(parameters, (std::set<std::string>{"conv.W", "conv.B", "bn.scale", "bn.B", "fc.W", "fc.B"}));
  EXPECT_EQ(buffers, (std::set<std::string>{"bn.mean", "bn.var"}));
}

TEST(GraphModule, NodeNamesWithDotsAreSanitised) {
  Graph graph = small_classifier();
  graph.nodes[0].name = "layer1.conv";
  GraphModule module(graph);
  EXPECT_TRUE(module.named_parameters().contains("layer1_conv.W"));
}

// A lone BatchNormalization: batch statistics in training, running ones (updated by torch's
// momentum 0.1) in evaluation.
TEST(GraphModule, BatchNormTrainsWithBatchStatistics) {
  GraphBuilder builder("bn", 1);
  builder.input("x", {1, 3, 4, 4});
  builder.batch_norm("bn", "x", {1, 3, 4, 4});
  Graph graph = builder.finish({"bn_out"});
  GraphModule module(graph);
  const auto& bn = graph.nodes[0];
  torch::Tensor x = torch::randn({5, 3, 4, 4}) * 2 + 1;
  module.train();
  torch::Tensor y = module.forward(x);

  torch::Tensor mean = x.mean({0, 2, 3}), variance = x.var({0, 2, 3}, /*unbiased=*/false);
  auto channel = [](const torch::Tensor& t) { return t.view({1, 3, 1, 1}); };
  torch::Tensor expected = (x - channel(mean)) / channel(torch::sqrt(variance + 1e-3)) * channel(to_torch(bn.weights.at("scale"))) +
                           channel(to_torch(bn.weights.at("B")));
  EXPECT_TRUE(all_close({y}, {expected}));
  torch::Tensor expected_running_mean = 0.9 * to_torch(bn.weights.at("mean")) + 0.1 * mean;
  EXPECT_TRUE(all_close({module.named_buffers()["bn.mean"]}, {expected_running_mean}));

  module.eval();
  Graph updated = module.to_graph();
  EXPECT_TRUE(all_close(module.forward(std::vector<torch::Tensor>{x}), interpreted(updated, {x})));
}

// A few SGD steps on a fixed batch lower the loss, and to_graph carries the trained weights.
TEST(GraphModule, TrainsAndWritesItsWeightsBack) {
  torch::manual_seed(3);
  Graph graph = small_classifier();
  GraphModule module(graph);
  torch::Tensor x = torch::randn({8, 2, 5, 5});
  torch::Tensor target = torch::randint(0, 3, {8}, torch::kLong);
  torch::optim::SGD optimizer(module.parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  module.train();
  std::vector<double> losses;
  for (int step = 0; step < 10; ++step) {
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(module.forward(x), target);
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), 0.5 * losses.front());

  module.eval();
  Graph trained = module.to_graph();
  validate(trained);
  EXPECT_NE(trained.nodes[0].weights.at("W").data, graph.nodes[0].weights.at("W").data);
  EXPECT_NE(trained.nodes[1].weights.at("mean").data, graph.nodes[1].weights.at("mean").data);
  torch::NoGradGuard no_grad;
  auto probe = random_inputs(graph, 2, 11);
  EXPECT_TRUE(all_close(module.forward(probe), interpreted(trained, probe)));
  GraphModule reloaded(trained);
  reloaded.eval();
  EXPECT_TRUE(all_close(reloaded.forward(probe), module.forward(probe), 1e-6));
}

TEST(GraphModule, GenericStatementsGetGradients) {
  GraphModule module(generic_statements());
  module.forward(random_inputs(generic_statements(), 2, 5)).front().square().sum().backward();
  for (const auto& item : module.named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::isfinite(item.value().grad()).all().item<bool>()) << item.key();
  }
}

TEST(GraphModule, WrongInputCountIsAGraphError) {
  GraphModule module(residual_block());
  EXPECT_THROW(module.forward(std::vector<torch::Tensor>{}), GraphError);
}

}  // namespace
}  // namespace gos::graph
