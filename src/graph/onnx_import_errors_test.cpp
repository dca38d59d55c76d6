// Bad ONNX input: every way a file can be wrong ends in one clear line (GraphError), never a crash
// or another exception, including random truncations and bit flips of a valid model.
#include <gtest/gtest.h>

#include <random>

#include "graph/onnx_import.h"
#include "graph/onnx_test_models.h"

namespace gos::graph {
namespace {

using testing::ModelBuilder;
using testing::ramp;
using testing::set_attribute;

// Conv, ReLU, pooling, a shape computation feeding Reshape, Gemm, Softmax: a little of everything.
ModelBuilder valid_model() {
  ModelBuilder model;
  model.input("x", {-1, 2, 8, 8}).output("y", {-1, 5});
  model.initializer("w", {4, 2, 3, 3}, ramp(72)).initializer("b", {4}, ramp(4));
  model.initializer("fc", {5, 64}, ramp(320)).ints("zero", {0}).ints("minus_one", {-1});
  set_attribute(model.node("Conv", {"x", "w", "b"}, {"c"}), "pads", std::vector<int64_t>{1, 1, 1, 1});
  model.node("Relu", {"c"}, {"r"});
  auto& pool = model.node("MaxPool", {"r"}, {"p"});
  set_attribute(pool, "kernel_shape", std::vector<int64_t>{2, 2});
  set_attribute(pool, "strides", std::vector<int64_t>{2, 2});
  model.node("Shape", {"p"}, {"shape"});
  model.node("Gather", {"shape", "zero"}, {"batch"});
  set_attribute(model.node("Concat", {"batch", "minus_one"}, {"target"}), "axis", int64_t{0});
  model.node("Reshape", {"p", "target"}, {"flat"});
  set_attribute(model.node("Gemm", {"flat", "fc"}, {"logits"}), "transB", int64_t{1});
  model.node("Softmax", {"logits"}, {"y"});
  return model;
}

// The message of the GraphError `bytes` must raise.
std::string import_error(const std::string& bytes) {
  try {
    import_onnx_bytes(bytes, {}, "model.onnx");
  } catch (const GraphError& error) {
    std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no GraphError";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ImportErrors, TheValidModelImports) {
  ImportResult result = import_onnx_bytes(valid_model().bytes());
  EXPECT_EQ(result.graph.nodes.size(), 5u);  // conv+relu, pool, reshape, gemm, softmax
}

TEST(ImportErrors, FilesThatAreNotOnnx) {
  EXPECT_TRUE(contains(import_error(""), "model.onnx is empty")) << import_error("");
  for (const std::string& bytes :
       {std::string("hello, world\n"), std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), std::string(1000, '\xff')}) {
    EXPECT_TRUE(contains(import_error(bytes), "model.onnx is not an ONNX model")) << import_error(bytes);
  }
}

TEST(ImportErrors, UnreadablePath) {
  try {
    import_onnx("/nonexistent/model.onnx");
    FAIL();
  } catch (const GraphError& error) {
    EXPECT_TRUE(contains(error.what(), "cannot open /nonexistent/model.onnx")) << error.what();
  }
}

TEST(ImportErrors, MissingInitializerNamesTheNodeAndTheValue) {
  ModelBuilder model;
  model.input("x", {1, 2, 4, 4}).output("y", {1, 4, 2, 2});
  model.node("Conv", {"x", "weights"}, {"y"}, "conv1");
  std::string message = import_error(model.bytes());
  EXPECT_TRUE(contains(message, "node 'conv1' (op Conv) reads 'weights'")) << message;
  EXPECT_TRUE(contains(message, "missing initializer")) << message;
}

TEST(ImportErrors, DynamicDimensionsOtherThanTheBatch) {
  ModelBuilder model;
  model.input("x", {-1, 3, -1, 8}, "height").output("y", {-1, 3, -1, 8}, "height");
  model.node("Relu", {"x"}, {"y"});
  std::string message = import_error(model.bytes());
  EXPECT_TRUE(contains(message, "input 'x' has dynamic dimension 2 ('height')")) << message;
  EXPECT_TRUE(contains(message, "--input-shape")) << message;
}

TEST(ImportErrors, AnInputShapeFixesDynamicDimensionsAndMustAgreeWithFixedOnes) {
  ModelBuilder model;
  model.input("x", {-1, 3, -1, 8}, "height").output("y", {-1, 3, -1, 8}, "height");
  model.node("Relu", {"x"}, {"y"});
  const auto fixed = import_onnx_bytes(model.bytes(), {.input_shape = {4, 3, 6, 8}});
  EXPECT_EQ(fixed.graph.inputs.at(0).shape, (Shape{1, 3, 6, 8}));  // the batch stays the nominal 1
  EXPECT_EQ(fixed.graph.outputs.at(0).shape, (Shape{1, 3, 6, 8}));
  for (const auto& [shape, expected] : std::vector<std::pair<Shape, std::string>>{
           {{1, 3, 6, 9}, "dimension 3 fixed at 8; --input-shape 1,3,6,9 says 9"},
           {{1, 3, 6}, "has 4 dimensions; --input-shape 1,3,6 gives 3"},
           {{1, 3, 0, 8}, "every dimension must be positive"}}) {
    try {
      import_onnx_bytes(model.bytes(), {.input_shape = shape});
      ADD_FAILURE() << expected;
    } catch (const GraphError& error) {
      EXPECT_TRUE(contains(error.what(), expected)) << error.what();
    }
  }
}

TEST(ImportErrors, OpsetsAboveSeventeenAreRefusedAndOlderOnesUpgraded) {
  ModelBuilder newer(18);
  newer.input("x", {1, 4}).output("y", {1, 4});
  newer.node("Relu", {"x"}, {"y"});
  std::string message = import_error(newer.bytes());
  EXPECT_TRUE(contains(message, "uses opset 18; gos imports opset 11 to 17")) << message;

  for (int64_t opset : {7, 9, 10}) {
    ModelBuilder older(opset);
    older.input("x", {1, 4}).output("y", {1, 4});
    older.node("Relu", {"x"}, {"y"});
    const ImportResult imported = import_onnx_bytes(older.bytes(), {}, "model.onnx");
    EXPECT_EQ(imported.upgraded_from_opset, opset);
    EXPECT_EQ(imported.opset, 11);
    EXPECT_EQ(evaluate(imported.graph, {{"x", ir::Tensor({1, 4}, {-1, 2, -3, 4})}}).at("y").data, (std::vector<float>{0, 2, 0, 4}));
  }
  // A file the converter refuses (here an attribute without a type) is refused with its reason.
  ModelBuilder upsample(8);
  upsample.input("x", {1, 1, 2, 2}).output("y", {1, 1, 4, 4});
  upsample.node("Upsample", {"x"}, {"y"});
  upsample.proto().mutable_graph()->mutable_node(0)->add_attribute()->set_name("scales");
  message = import_error(upsample.bytes());
  EXPECT_TRUE(contains(message, "uses opset 8 and ONNX's version converter cannot upgrade it to 11 (Unknown tensor data type)")) << message;
}

TEST(ImportErrors, InitializerDataThatDoesNotFitItsShape) {
  ModelBuilder model = valid_model();
  auto* weight = model.proto().mutable_graph()->mutable_initializer(0);
  weight->clear_float_data();
  weight->set_raw_data(std::string(10, '\0'));
  std::string message = import_error(model.bytes());
  EXPECT_TRUE(contains(message, "initializer 'w' holds 10 bytes of data; its shape needs 288")) << message;
}

TEST(ImportErrors, ExternalData) {
  ModelBuilder model = valid_model();
  auto* weight = model.proto().mutable_graph()->mutable_initializer(0);
  weight->clear_float_data();
  weight->set_data_location(onnx::TensorProto_DataLocation_EXTERNAL);
  auto* location = weight->add_external_data();
  location->set_key("location");
  location->set_value("weights.bin");
  std::string message = import_error(model.bytes());
  EXPECT_TRUE(contains(message, "initializer 'w' keeps its data in an external file")) << message;
}

// Success or GraphError are both fine for a damaged file; anything else is a bug.
void expect_graph_error_or_success(const std::string& bytes, const std::string& what) {
  for (bool lenient : {false, true}) {
    try {
      import_onnx_bytes(bytes, {.allow_unsupported = lenient});
    } catch (const GraphError&) {
    } catch (const std::exception& error) {
      ADD_FAILURE() << what << ": " << error.what();
    }
  }
}

TEST(ImportErrors, EveryTruncationIsAGraphError) {
  const std::string bytes = valid_model().bytes();
  for (size_t length = 0; length < bytes.size(); length += 7) {
    EXPECT_THROW(import_onnx_bytes(bytes.substr(0, length)), GraphError) << "truncated to " << length;
  }
}

TEST(ImportErrors, RandomBitFlipsNeverCrash) {
  const std::string bytes = valid_model().bytes();
  std::mt19937 random(20240611);
  for (int trial = 0; trial < 600; ++trial) {
    std::string damaged = bytes;
    const int flips = 1 + trial % 3;
    for (int flip = 0; flip < flips; ++flip) {
      damaged[random() % damaged.size()] ^= static_cast<char>(1 << (random() % 8));
    }
    expect_graph_error_or_success(damaged, "trial " + std::to_string(trial));
  }
}

TEST(ImportErrors, RandomDamageToAPyTorchExportNeverCrashes) {
  std::string path = testing::fixture_directory() + "/tcn_tiny_opset17.onnx";
  std::ifstream file(path, std::ios::binary);
  if (!file) GTEST_SKIP() << "fixture " << path << " not generated";
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::mt19937 random(7);
  for (int trial = 0; trial < 100; ++trial) {
    std::string damaged = bytes;
    // Torch writes the nodes before the weights: damage there changes the structure.
    const size_t structure = std::min<size_t>(damaged.size(), 12000);
    damaged[random() % structure] ^= static_cast<char>(1 << (random() % 8));
    expect_graph_error_or_success(damaged.substr(0, damaged.size() - (trial % 2) * (random() % 64)),
                                  "trial " + std::to_string(trial));
  }
}

}  // namespace
}  // namespace gos::graph
