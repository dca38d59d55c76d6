// `gos inspect` as a user runs it: the binary on PyTorch-exported and hand-built ONNX files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_binary.h"
#include "graph/onnx_test_models.h"

namespace gos::cli {
namespace {

using testing::run_gos;

std::string fixture(const std::string& name) { return graph::testing::fixture_directory() + "/" + name + ".onnx"; }

#define REQUIRE_FIXTURE(name) \
  if (!std::filesystem::exists(fixture(name))) GTEST_SKIP() << fixture(name) << " not generated"

// A file in the temporary directory, removed when the test ends.
class TemporaryFile {
 public:
  TemporaryFile(const std::string& name, const std::string& bytes)
      : path_(std::filesystem::temp_directory_path() / ("gos-inspect-test-" + std::to_string(getpid()) + "-" + name)) {
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~TemporaryFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(InspectCommand, ListsEveryNodeWithItsInstructionsAndTheTotals) {
  REQUIRE_FIXTURE("resnet18_opset11");
  auto run = run_gos({"inspect", fixture("resnet18_opset11")});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(run.err.empty()) << run.err;
  EXPECT_NE(run.out.find("ONNX opset 11"), std::string::npos);
  EXPECT_NE(run.out.find("/layer1/layer1.0/conv1/Conv"), std::string::npos);
  EXPECT_NE(run.out.find("Y[n,k,h,w] = relu(sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s] + B[k])"), std::string::npos);
  EXPECT_NE(run.out.find("structural -> [1,512]"), std::string::npos);  // the Flatten
  EXPECT_NE(run.out.find("total   148,050,944 MACs, 11,176,842 params; 32 nodes: 31 instructions, 1 structural"),
            std::string::npos)
      << run.out;
}

TEST(InspectCommand, JsonIsAListOfNodeObjects) {
  REQUIRE_FIXTURE("vit_tiny_opset13");
  auto run = run_gos({"inspect", fixture("vit_tiny_opset13"), "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto nodes = nlohmann::json::parse(run.out);
  ASSERT_TRUE(nodes.is_array());
  int64_t macs = 0;
  double shares = 0;
  for (const auto& node : nodes) {
    for (const char* key : {"node", "op_type", "kind", "expr", "macs", "params", "share", "output_shape"}) {
      EXPECT_TRUE(node.contains(key)) << key << " missing in " << node.dump();
    }
    if (node.at("kind") == "instructions") {
      EXPECT_TRUE(node.at("expr").is_string());
      macs += node.at("macs").get<int64_t>();
    } else {
      EXPECT_EQ(node.at("kind"), "structural");
      EXPECT_TRUE(node.at("expr").is_null());
    }
    shares += node.at("share").get<double>();
  }
  EXPECT_EQ(macs, 1'671'488);
  EXPECT_NEAR(shares, 1.0, 1e-9);
}

TEST(InspectCommand, UnsupportedNodesAreListedMarkedAndNamedInAWarning) {
  graph::testing::ModelBuilder model;
  model.input("x", {1, 3, 4, 4}).output("y", {1, 3, 4, 4});
  graph::testing::set_attribute(model.node("LRN", {"x"}, {"n"}, "local_response"), "size", int64_t{3});
  model.node("Relu", {"n"}, {"y"}, "relu");
  TemporaryFile file("lrn.onnx", model.bytes());
  auto run = run_gos({"inspect", file.path()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("UNSUPPORTED: gos has no instructions or structural execution for LRN"), std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("Y[n,c,h,w] = relu(X[n,c,h,w])"), std::string::npos) << run.out;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_NE(run.err.find("'local_response' (op LRN, opset 13)"), std::string::npos) << run.err;

  auto json = run_gos({"inspect", file.path(), "--json"});
  auto nodes = nlohmann::json::parse(json.out);
  EXPECT_EQ(nodes.at(0).at("kind"), "unsupported");
  EXPECT_TRUE(nodes.at(0).at("macs").is_null());
}

TEST(InspectCommand, BadFilesExitTwoWithOneLine) {
  TemporaryFile garbage("garbage.onnx", "this is not a model\n");
  for (const std::string& path : {garbage.path(), std::string("/nonexistent/model.onnx")}) {
    auto run = run_gos({"inspect", path});
    EXPECT_EQ(run.exit_code, 2) << path;
    EXPECT_TRUE(run.out.empty()) << run.out;
    EXPECT_EQ(run.err.rfind("gos: ", 0), 0u) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  }
}

TEST(InspectCommand, ZooModelsByName) {
  for (const char* name : {"resnet20", "vgg11s", "mobilenetv2s", "mixer-s", "tcn-ppg"}) {
    auto run = run_gos({"inspect", name, "--json"});
    ASSERT_EQ(run.exit_code, 0) << name << ": " << run.err;
    int64_t macs = 0;
    for (const auto& node : nlohmann::json::parse(run.out)) {
      macs += node.at("macs").get<int64_t>();
      EXPECT_NE(node.at("op_type"), "BatchNormalization") << name;  // folded, as export does
    }
    EXPECT_GT(macs, 0) << name;
  }
  auto human = run_gos({"inspect", "resnet20"});
  EXPECT_NE(human.out.find("resnet20 (gos zoo model, batch norms folded, activations fused)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("\ntotal   "), std::string::npos) << human.out;
}

int64_t total_macs(const std::string& json_rows) {
  int64_t macs = 0;
  for (const auto& node : nlohmann::json::parse(json_rows)) macs += node.at("macs").get<int64_t>();
  return macs;
}

TEST(InspectCommand, SubsampleShowsTheStridedFirstLayerAndFewerMacs) {
  auto whole = run_gos({"inspect", "tcn-ppg", "--json"});
  auto halved = run_gos({"inspect", "tcn-ppg", "--json", "--subsample", "2"});
  ASSERT_EQ(halved.exit_code, 0) << halved.err;
  // Every convolution computes half its positions: the first one strided, the others dilated half as much.
  EXPECT_NEAR(static_cast<double>(total_macs(halved.out)) / static_cast<double>(total_macs(whole.out)), 0.5, 0.01);
  std::map<std::string, std::string> exprs;
  for (const auto& node : nlohmann::json::parse(halved.out)) {
    if (node.at("expr").is_string()) exprs[node.at("node")] = node.at("expr");
  }
  EXPECT_NE(exprs["tcn1.conv"].find("X[n,c,2*l+r-1]"), std::string::npos) << exprs["tcn1.conv"];
  EXPECT_NE(exprs["tcn2.conv"].find("X[n,c,l+r-1]"), std::string::npos) << exprs["tcn2.conv"];
  auto refused = run_gos({"inspect", "tcn-ppg", "--subsample", "0"});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("at least 1"), std::string::npos) << refused.err;
}

TEST(InspectCommand, GroupsListTheChannelsOperatorsShare) {
  auto human = run_gos({"inspect", "resnet20", "--groups"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("12 channel groups"), std::string::npos) << human.out;
  auto json = run_gos({"inspect", "mobilenetv2s", "--groups", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto parsed = nlohmann::json::parse(json.out);
  ASSERT_TRUE(parsed.at("nodes").is_array());
  bool expansion = false;
  for (const auto& group : parsed.at("groups")) {
    if (group.at("group") != "block2.expand.conv:k") continue;
    expansion = true;
    EXPECT_EQ(group.at("followers"), nlohmann::json::array({"block2.depthwise.conv"})) << group;
    EXPECT_EQ(group.at("consumers"), nlohmann::json::array({"block2.project.conv"})) << group;
    EXPECT_EQ(group.at("channels"), 48) << group;
  }
  EXPECT_TRUE(expansion) << json.out;
}

TEST(InspectCommand, HelpExitsZero) {
  auto run = run_gos({"inspect", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("--json"), std::string::npos);
}

}  // namespace
}  // namespace gos::cli
