// export_torchscript: the saved module, loaded back with torch::jit::load (or the lite
// interpreter for .ptl), gives GraphModule's outputs on every hand-built graph.
#include <gtest/gtest.h>
#include <torch/csrc/jit/mobile/import.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "graph/torch_module.h"
#include "graph/torch_test_graphs.h"
#include "graph/torchscript_export.h"

namespace gos::graph {
namespace {

using namespace test_graphs;

class TorchScriptExport : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("gos_torchscript_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
    torch::set_num_threads(1);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::string path(const std::string& file) const { return (directory_ / file).string(); }

  std::filesystem::path directory_;
};

std::vector<torch::Tensor> tensors_of(const torch::jit::IValue& value) {
  if (value.isTensor()) return {value.toTensor()};
  std::vector<torch::Tensor> tensors;
  for (const auto& element : value.toTupleRef().elements()) tensors.push_back(element.toTensor());
  return tensors;
}

std::vector<torch::Tensor> reference(const Graph& graph, const std::vector<torch::Tensor>& inputs) {
  GraphModule module(graph);
  module.eval();
  torch::NoGradGuard no_grad;
  return module.forward(inputs);
}

template <typename Module>
std::vector<torch::Tensor> run(Module& module, const std::vector<torch::Tensor>& inputs) {
  return tensors_of(module.forward(std::vector<torch::jit::IValue>(inputs.begin(), inputs.end())));
}

// XNNPACK's convolutions and GEMMs sum in another order than libtorch's: 1e-4 still holds.
TEST_F(TorchScriptExport, SavedModulesMatchGraphModule) {
  for (const auto& [name, graph] : all_graphs()) {
    SCOPED_TRACE(name);
    std::string file = path("model.pt");
    export_torchscript(graph, file);
    torch::jit::Module loaded = torch::jit::load(file);
    for (int64_t batch : {1, 3}) {
      auto inputs = random_inputs(graph, batch, 9);
      EXPECT_TRUE(all_close(run(loaded, inputs), reference(graph, inputs))) << "at batch " << batch;
    }
  }
}

TEST_F(TorchScriptExport, InputNormalisationIsExportedFirst) {
  const Graph graph = with_input_normalisation(small_classifier(), {0.5f}, {0.25f});
  for (bool mobile : {false, true}) {
    std::string file = path(mobile ? "mobile.pt" : "model.pt");
    export_torchscript(graph, file, mobile);
    torch::jit::Module loaded = torch::jit::load(file);
    auto inputs = random_inputs(graph, 2, 5);
    EXPECT_TRUE(all_close(run(loaded, inputs), reference(graph, inputs))) << (mobile ? "mobile" : "plain");
  }
}

TEST_F(TorchScriptExport, UnoptimisedModuleMatchesGraphModule) {
  Graph graph = generic_statements();
  export_torchscript(graph, path("plain.pt"), /*optimise_for_mobile=*/false);
  torch::jit::Module loaded = torch::jit::load(path("plain.pt"));
  auto inputs = random_inputs(graph, 2, 4);
  EXPECT_TRUE(all_close(run(loaded, inputs), reference(graph, inputs)));
}

TEST_F(TorchScriptExport, LiteInterpreterFileMatchesGraphModule) {
  for (const Graph& graph : {small_classifier(), generic_statements(), temporal_block()}) {
    export_torchscript(graph, path("model.ptl"));
    torch::jit::mobile::Module loaded = torch::jit::_load_for_mobile(path("model.ptl"));
    auto inputs = random_inputs(graph, 2, 6);
    EXPECT_TRUE(all_close(run(loaded, inputs), reference(graph, inputs))) << graph.name;
  }
}

TEST_F(TorchScriptExport, TrainedWeightsAreExported) {
  Graph graph = small_classifier();
  GraphModule module(graph);
  torch::optim::SGD optimizer(module.parameters(), torch::optim::SGDOptions(0.1));
  module.forward(random_inputs(graph, 4, 1)).front().square().sum().backward();
  optimizer.step();
  Graph trained = module.to_graph();
  export_torchscript(trained, path("trained.pt"));
  torch::jit::Module loaded = torch::jit::load(path("trained.pt"));
  auto inputs = random_inputs(graph, 2, 2);
  EXPECT_TRUE(all_close(run(loaded, inputs), reference(trained, inputs)));
  EXPECT_FALSE(all_close(run(loaded, inputs), reference(graph, inputs)));
}

TEST_F(TorchScriptExport, SourceHasAMethodPerComputeNode) {
  std::string source = torchscript_source(residual_block());
  EXPECT_NE(source.find("def node_0(self, v_X, v_W, v_B):"), std::string::npos) << source;
  EXPECT_NE(source.find("torch.conv2d("), std::string::npos) << source;
  EXPECT_NE(source.find("def forward(self, v0):"), std::string::npos) << source;
}

// XNNPACK has no 1-D convolution: the mobile export runs them as 2-D ones over channels-last
// [N, C, 1, L] (SavedModulesMatchGraphModule checks they compute the same).
TEST_F(TorchScriptExport, MobileSourceRunsOneDimensionalConvolutionsAsChannelsLastTwoDimensionalOnes) {
  std::string mobile = torchscript_source(temporal_block(), /*channels_last=*/true);
  EXPECT_EQ(mobile.find("torch.conv1d("), std::string::npos) << mobile;
  EXPECT_NE(mobile.find("torch.conv2d("), std::string::npos) << mobile;
  EXPECT_NE(mobile.find(".contiguous(memory_format=2)"), std::string::npos) << mobile;
  std::string plain = torchscript_source(temporal_block());
  EXPECT_NE(plain.find("torch.conv1d("), std::string::npos) << plain;
}

// The mobile optimiser prepacks linear layers for XNNPACK, not matmuls or einsums: a weight on the
// left of the product is exported as a linear layer over the transposed input, and a weight on
// the right as a linear layer.
TEST_F(TorchScriptExport, MobileExportPrepacksProductsWithAWeightAsLinearLayers) {
  std::string file = path("model.pt");
  export_torchscript(mixer_block(), file, /*optimise_for_mobile=*/true);
  const std::string graph = torch::jit::load(file).get_method("forward").graph()->toString();
  const std::string prepacked = "prepacked::linear_clamp_run";
  const size_t first = graph.find(prepacked);
  ASSERT_NE(first, std::string::npos) << graph;
  EXPECT_NE(graph.find(prepacked, first + prepacked.size()), std::string::npos) << graph;
  EXPECT_EQ(graph.find("aten::matmul"), std::string::npos) << graph;
  EXPECT_EQ(graph.find("aten::einsum"), std::string::npos) << graph;
}

TEST_F(TorchScriptExport, UnwritablePathIsAGraphError) {
  EXPECT_THROW(export_torchscript(residual_block(), path("missing/dir/model.pt")), GraphError);
}

}  // namespace
}  // namespace gos::graph
