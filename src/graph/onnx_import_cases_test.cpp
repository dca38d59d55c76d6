// Import of small hand-built ONNX models, one feature at a time: each ONNX attribute maps onto
// the instructions the ir::ops constructors write (compared by canonical form), decomposed
// operators are recognised in each ordering exporters use, and imported graphs compute the ONNX
// definition.
#include <gtest/gtest.h>

#include <cmath>

#include "graph/onnx_import.h"
#include "graph/onnx_test_models.h"
#include "ir/ops.h"

namespace gos::graph {
namespace {

using testing::ModelBuilder;
using testing::ramp;
using testing::set_attribute;

Graph import(const ModelBuilder& model) { return import_onnx_bytes(model.bytes()).graph; }

const Node& only_compute_node(const Graph& graph) {
  const Node* found = nullptr;
  for (const auto& node : graph.nodes) {
    if (node.is_compute()) {
      EXPECT_EQ(found, nullptr) << "more than one compute node";
      found = &node;
    }
  }
  if (!found) throw std::runtime_error("no compute node");
  return *found;
}

ir::Tensor run(const Graph& graph, const ir::Tensor& input) {
  return evaluate(graph, {{graph.inputs.at(0).name, input}}).at(graph.outputs.at(0).name);
}

void expect_near(const ir::Tensor& actual, const std::vector<float>& expected, float tolerance = 1e-5f) {
  ASSERT_EQ(actual.data.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual.data[i], expected[i], tolerance) << "element " << i;
}

// ---- Convolution and linear layers -------------------------------------------------------------

TEST(ImportConv, SameUpperAndSameLowerPutTheOddPaddingAtOppositeEnds) {
  for (const auto& [mode, top] : {std::pair<std::string, int64_t>{"SAME_UPPER", 0}, {"SAME_LOWER", 1}}) {
    ModelBuilder model;
    model.input("x", {1, 2, 6, 6}).initializer("w", {4, 2, 3, 3}, ramp(72)).output("y", {1, 4, 3, 3});
    auto& conv = model.node("Conv", {"x", "w"}, {"y"});
    set_attribute(conv, "auto_pad", mode);
    set_attribute(conv, "strides", std::vector<int64_t>{2, 2});
    // 6 rows, stride 2: 3 outputs need 7 padded rows, one row of padding.
    ir::OpExpr expected = ir::conv2d({1, 2, 4, {6, 6}, {3, 3}, {2, 2}, {top, top, 1 - top, 1 - top}});
    EXPECT_EQ(*only_compute_node(import(model)).op, expected) << mode;
  }
}

TEST(ImportConv, OneDimensionalDilatedGroupedConvWithBias) {
  ModelBuilder model;
  model.input("x", {1, 4, 20})
      .initializer("w", {6, 2, 3}, ramp(36))
      .initializer("b", {6}, ramp(6))
      .output("y", {1, 6, 20});
  auto& conv = model.node("Conv", {"x", "w", "b"}, {"y"});
  set_attribute(conv, "dilations", std::vector<int64_t>{4});
  set_attribute(conv, "pads", std::vector<int64_t>{8, 0});
  set_attribute(conv, "group", int64_t{2});
  Graph graph = import(model);
  const Node& node = only_compute_node(graph);
  EXPECT_EQ(*node.op, ir::conv1d({1, 4, 6, 20, 3, 1, {8, 0}, 4, 2, true}));
  EXPECT_EQ(node.weights.at("B").data, ramp(6));
}

TEST(ImportGemm, AlphaScalesTheWeightAndBetaTheBias) {
  ModelBuilder model;
  model.input("x", {3, 2})
      .initializer("w", {3, 4}, ramp(12))
      .initializer("c", {1, 4}, {1, 2, 3, 4})
      .output("y", {2, 4});
  auto& gemm = model.node("Gemm", {"x", "w", "c"}, {"y"});
  set_attribute(gemm, "transA", int64_t{1});
  set_attribute(gemm, "alpha", 2.0f);
  set_attribute(gemm, "beta", 0.5f);
  Graph graph = import(model);
  const Node& node = only_compute_node(graph);
  EXPECT_EQ(*node.op, ir::linear({2, 3, 4, /*trans_a=*/true, /*trans_b=*/false, /*bias=*/true}));
  // Y = 2 * X^T W + 0.5 C, computed directly.
  ir::Tensor x({3, 2}, ramp(6, 1.0f));
  std::vector<float> expected;
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 4; ++k) {
      double sum = 0;
      for (int c = 0; c < 3; ++c) sum += x.data[c * 2 + n] * ramp(12)[c * 4 + k];
      expected.push_back(static_cast<float>(2 * sum + 0.5 * (k + 1)));
    }
  }
  expect_near(run(graph, x), expected);
}

TEST(ImportMatMul, WeightsOnTwoAndThreeDimensionalInputsAndAttention) {
  ModelBuilder model;
  model.input("x", {1, 5, 3})
      .initializer("w", {3, 4}, ramp(12))
      .initializer("b", {4}, ramp(4))
      .output("scores", {1, 5, 5});
  model.node("MatMul", {"x", "w"}, {"projected"});
  model.node("Add", {"b", "projected"}, {"biased"});  // torch writes the bias first
  set_attribute(model.node("Transpose", {"biased"}, {"keys"}), "perm", std::vector<int64_t>{0, 2, 1});
  model.node("MatMul", {"biased", "keys"}, {"scores"});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 3u);
  // The bias joins the projection as an addend, and the weight is kept as a linear layer keeps
  // it, [out, in]: the initializer transposed.
  EXPECT_TRUE(ir::print(*graph.nodes[0].op).starts_with("Y[b0,m,n] = sum{k} X[b0,m,k] * W[n,k] + B[n] where"))
      << ir::print(*graph.nodes[0].op);
  EXPECT_EQ(graph.nodes[0].weights.at("W").shape, (std::vector<int64_t>{4, 3}));
  const std::vector<float> stored = ramp(12);
  std::vector<float> transposed;
  for (int out = 0; out < 4; ++out) {
    for (int in = 0; in < 3; ++in) transposed.push_back(stored[in * 4 + out]);
  }
  EXPECT_EQ(graph.nodes[0].weights.at("W").data, transposed);
  EXPECT_EQ(graph.nodes[0].weights.at("B").data, ramp(4));
  EXPECT_EQ(*graph.nodes[2].op, ir::matmul({{1}, 5, 4, 5, false}));
}

TEST(ImportMatMul, TwoDimensionalInputIsALinearLayer) {
  ModelBuilder model;
  model.input("x", {2, 3}).initializer("w", {3, 4}, ramp(12)).output("y", {2, 4});
  model.node("MatMul", {"x", "w"}, {"y"});
  EXPECT_EQ(*only_compute_node(import(model)).op, ir::linear({2, 3, 4, false, false, false}));
}

// ---- Pooling ------------------------------------------------------------------------------------

TEST(ImportPooling, MaxAndAveragePoolAttributes) {
  ModelBuilder model;
  model.input("x", {1, 2, 9, 9}).output("y", {1, 2, 3, 4});
  auto& max = model.node("MaxPool", {"x"}, {"m"});
  set_attribute(max, "kernel_shape", std::vector<int64_t>{3, 3});
  set_attribute(max, "strides", std::vector<int64_t>{2, 2});
  set_attribute(max, "dilations", std::vector<int64_t>{2, 1});
  set_attribute(max, "ceil_mode", int64_t{1});
  auto& average = model.node("AveragePool", {"m"}, {"y"});
  set_attribute(average, "kernel_shape", std::vector<int64_t>{2, 2});
  set_attribute(average, "pads", std::vector<int64_t>{1, 1, 0, 0});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 2u);
  ir::PoolSpec max_spec{1, 2, {9, 9}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {2, 1}, true};
  EXPECT_EQ(*graph.nodes[0].op, ir::max_pool(max_spec));
  ir::PoolSpec average_spec{1, 2, {3, 4}, {2, 2}, {1, 1}, {1, 1, 0, 0}, {1, 1}};
  EXPECT_EQ(*graph.nodes[1].op, ir::average_pool(average_spec));
}

TEST(ImportPooling, SpatialReduceMeanIsAGlobalPoolOtherMeansAreMeansAndTheBatchMeanStaysStructural) {
  ModelBuilder model;
  model.input("x", {1, 3, 4, 5}).output("y", {1, 3}).output("z", {1, 1, 4, 5}).output("t", {1, 4}).output("b", {3, 4, 5});
  auto& spatial = model.node("ReduceMean", {"x"}, {"y"});
  set_attribute(spatial, "axes", std::vector<int64_t>{-1, 2});
  set_attribute(spatial, "keepdims", int64_t{0});
  auto& channels = model.node("ReduceMean", {"x"}, {"z"});
  set_attribute(channels, "axes", std::vector<int64_t>{1});
  auto& tokens = model.node("ReduceMean", {"x"}, {"t"});
  set_attribute(tokens, "axes", std::vector<int64_t>{-1, 1});
  set_attribute(tokens, "keepdims", int64_t{0});
  auto& batch = model.node("ReduceMean", {"x"}, {"b"});
  set_attribute(batch, "axes", std::vector<int64_t>{0});
  set_attribute(batch, "keepdims", int64_t{0});
  Graph graph = import(model);
  EXPECT_EQ(*graph.nodes[0].op, ir::global_average_pool(1, 3, {4, 5}, false));
  EXPECT_EQ(*graph.nodes[1].op, ir::mean_over_axes({1, 3, 4, 5}, {1}, true));
  EXPECT_EQ(*graph.nodes[2].op, ir::mean_over_axes({1, 3, 4, 5}, {1, 3}, false));
  EXPECT_FALSE(graph.nodes[3].is_compute());
}

// ---- Batch normalisation -----------------------------------------------------------------------

ModelBuilder conv_batch_norm_model(bool conv_output_read_twice) {
  ModelBuilder model;
  model.input("x", {1, 2, 4, 4}).initializer("w", {3, 2, 1, 1}, ramp(6)).output("y", {1, 3, 4, 4});
  model.initializer("scale", {3}, {1.5f, 0.5f, 2}).initializer("bias", {3}, {0.1f, 0.2f, 0.3f});
  model.initializer("mean", {3}, {0.5f, -0.5f, 0}).initializer("var", {3}, {1, 2, 0.5f});
  model.node("Conv", {"x", "w"}, {"c"});
  model.node("BatchNormalization", {"c", "scale", "bias", "mean", "var"}, {"n"});
  model.node("Relu", {"n"}, {conv_output_read_twice ? "r" : "y"});
  if (conv_output_read_twice) model.node("Add", {"r", "c"}, {"y"});
  return model;
}

TEST(ImportBatchNorm, FoldsIntoTheConvBeforeItThenTheReluFuses) {
  ModelBuilder model = conv_batch_norm_model(false);
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 1u);
  EXPECT_EQ(graph.nodes[0].op->statements()[0].activation, ir::Activation::Relu);
  // Same result as conv, then (c - mean) / sqrt(var + eps) * scale + bias, then ReLU.
  ir::Tensor x({1, 2, 4, 4}, ramp(32, 0.3f));
  const std::vector<float> scale{1.5f, 0.5f, 2}, bias{0.1f, 0.2f, 0.3f}, mean{0.5f, -0.5f, 0}, var{1, 2, 0.5f};
  std::vector<float> expected;
  for (int k = 0; k < 3; ++k) {
    for (int p = 0; p < 16; ++p) {
      float conv = x.data[p] * ramp(6)[k * 2] + x.data[16 + p] * ramp(6)[k * 2 + 1];
      expected.push_back(std::max(0.0f, (conv - mean[k]) / std::sqrt(var[k] + 1e-5f) * scale[k] + bias[k]));
    }
  }
  expect_near(run(graph, x), expected);
}

TEST(ImportBatchNorm, StaysStructuralWhenTheConvOutputHasAnotherReader) {
  Graph graph = import(conv_batch_norm_model(true));
  ASSERT_NE(graph.find_node("n"), nullptr);
  EXPECT_EQ(graph.find_node("n")->op_type, "BatchNormalization");
  EXPECT_EQ(graph.find_node("n")->weights.at("var").data, (std::vector<float>{1, 2, 0.5f}));
}

// ---- Activations -------------------------------------------------------------------------------

struct ActivationCase {
  std::string name;
  std::function<void(ModelBuilder&)> build;  // reads "x" [1,8], writes "y"
  std::function<float(float)> reference;
  ir::Activation recognised;  // None: written exactly in instructions, not as one activation
};

std::vector<ActivationCase> activation_cases() {
  const float root2 = std::sqrt(2.0f);
  auto gelu = [](float x) { return 0.5f * x * (1 + std::erf(x / std::sqrt(2.0f))); };
  auto clip = [](float lo, float hi) { return [lo, hi](float x) { return std::min(hi, std::max(lo, x)); }; };
  auto bounds = [](ModelBuilder& m, std::vector<std::string> inputs) { m.node("Clip", inputs, {"y"}); };
  return {
      {"GeluDivideAddTimesXTimesHalf",
       [=](ModelBuilder& m) {
         m.scalar("root2", root2).scalar("one", 1).scalar("half", 0.5f);
         m.node("Div", {"x", "root2"}, {"d"});
         m.node("Erf", {"d"}, {"e"});
         m.node("Add", {"e", "one"}, {"a"});
         m.node("Mul", {"x", "a"}, {"m"});
         m.node("Mul", {"m", "half"}, {"y"});
       },
       gelu, ir::Activation::Gelu},
      {"GeluHalfFirst",
       [=](ModelBuilder& m) {
         m.scalar("inverse_root2", 1 / root2).scalar("one", 1).scalar("half", 0.5f);
         m.node("Mul", {"x", "inverse_root2"}, {"d"});
         m.node("Erf", {"d"}, {"e"});
         m.node("Add", {"one", "e"}, {"a"});
         m.node("Mul", {"a", "half"}, {"m"});
         m.node("Mul", {"x", "m"}, {"y"});
       },
       gelu, ir::Activation::Gelu},
      {"GeluSeparateHalfX",
       [=](ModelBuilder& m) {
         m.scalar("root2", root2).scalar("one", 1).scalar("half", 0.5f);
         m.node("Mul", {"x", "half"}, {"h"});
         m.node("Div", {"x", "root2"}, {"d"});
         m.node("Erf", {"d"}, {"e"});
         m.node("Add", {"e", "one"}, {"a"});
         m.node("Mul", {"h", "a"}, {"y"});
       },
       gelu, ir::Activation::Gelu},
      {"Silu",
       [](ModelBuilder& m) {
         m.node("Sigmoid", {"x"}, {"s"});
         m.node("Mul", {"s", "x"}, {"y"});
       },
       [](float x) { return x / (1 + std::exp(-x)); }, ir::Activation::Silu},
      {"HardSwishDecomposed",
       [](ModelBuilder& m) {
         auto& gate = m.node("HardSigmoid", {"x"}, {"s"});
         set_attribute(gate, "alpha", 1.0f / 6);
         m.node("Mul", {"x", "s"}, {"y"});
       },
       [](float x) { return x * std::min(1.0f, std::max(0.0f, x / 6 + 0.5f)); }, ir::Activation::HardSwish},
      {"HardSigmoidOnnxDefaults", [](ModelBuilder& m) { m.node("HardSigmoid", {"x"}, {"y"}); },
       [](float x) { return std::min(1.0f, std::max(0.0f, 0.2f * x + 0.5f)); }, ir::Activation::None},
      {"ClipZeroSixIsRelu6",
       [=](ModelBuilder& m) {
         m.scalar("lo", 0).scalar("hi", 6);
         bounds(m, {"x", "lo", "hi"});
       },
       clip(0, 6), ir::Activation::Relu6},
      {"ClipMinusOneOne",
       [=](ModelBuilder& m) {
         m.scalar("lo", -1).scalar("hi", 1);
         bounds(m, {"x", "lo", "hi"});
       },
       clip(-1, 1), ir::Activation::None},
      {"ClipBelowOnly",
       [=](ModelBuilder& m) {
         m.scalar("lo", -0.25f);
         bounds(m, {"x", "lo"});
       },
       clip(-0.25f, INFINITY), ir::Activation::None},
      {"ClipAboveOnly",
       [=](ModelBuilder& m) {
         m.scalar("hi", 0.5f);
         bounds(m, {"x", "", "hi"});
       },
       clip(-INFINITY, 0.5f), ir::Activation::None},
      {"Tanh", [](ModelBuilder& m) { m.node("Tanh", {"x"}, {"y"}); }, [](float x) { return std::tanh(x); },
       ir::Activation::Tanh},
  };
}

TEST(ImportActivation, EachExporterFormIsOneComputeNodeComputingTheOnnxDefinition) {
  for (const auto& activation : activation_cases()) {
    SCOPED_TRACE(activation.name);
    ModelBuilder model;
    model.input("x", {1, 8}).output("y", {1, 8});
    activation.build(model);
    Graph graph = import(model);
    const Node& node = only_compute_node(graph);
    if (activation.recognised != ir::Activation::None) {
      EXPECT_EQ(*node.op, ir::activation({1, 8}, activation.recognised)) << ir::print(*node.op);
    }
    ir::Tensor x({1, 8}, {-4, -1.5f, -0.5f, -0.1f, 0.2f, 0.7f, 2.5f, 7});
    std::vector<float> expected;
    for (float v : x.data) expected.push_back(activation.reference(v));
    expect_near(run(graph, x), expected, 2e-6f);
  }
}

TEST(ImportActivation, FusesIntoTheProducerOnlyWhenNothingElseReadsIt) {
  ModelBuilder model;
  model.input("x", {1, 4}).initializer("w", {4, 4}, ramp(16)).output("y", {1, 4}).output("z", {1, 4});
  model.node("Gemm", {"x", "w"}, {"g"});
  model.node("Relu", {"g"}, {"y"});
  model.node("Sigmoid", {"g"}, {"z"});
  Graph graph = import(model);
  EXPECT_EQ(graph.nodes.size(), 3u);
}

// ---- Broadcasting arithmetic -------------------------------------------------------------------

TEST(ImportArithmetic, SqueezeExcitationScaleReadsTheGateAtPositionZero) {
  ModelBuilder model;
  model.input("x", {1, 3, 2, 2}).output("y", {1, 3, 2, 2});
  model.node("GlobalAveragePool", {"x"}, {"pooled"});
  model.node("Sigmoid", {"pooled"}, {"gate"});
  model.node("Mul", {"x", "gate"}, {"y"});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 2u);
  EXPECT_TRUE(ir::print(*graph.nodes[1].op).starts_with("Y[n,c,h,w] = X[n,c,h,w] * Z[n,c,0,0] where"))
      << ir::print(*graph.nodes[1].op);
  ir::Tensor x({1, 3, 2, 2}, ramp(12));
  std::vector<float> expected;
  for (int c = 0; c < 3; ++c) {
    float mean = (x.data[4 * c] + x.data[4 * c + 1] + x.data[4 * c + 2] + x.data[4 * c + 3]) / 4;
    for (int p = 0; p < 4; ++p) expected.push_back(x.data[4 * c + p] / (1 + std::exp(-mean)));
  }
  expect_near(run(graph, x), expected);
}

TEST(ImportArithmetic, ConstantOperandsOfSubAndDivBecomeNegationsAndReciprocals) {
  ModelBuilder model;
  model.input("x", {1, 3, 1, 2}).output("y", {1, 3, 1, 2});
  model.initializer("mean", {1, 3, 1, 1}, {0.5f, 0.25f, -1}).initializer("std", {1, 3, 1, 1}, {2, 4, 0.5f});
  model.scalar("one", 1);
  model.node("Sub", {"x", "mean"}, {"centred"});
  model.node("Div", {"centred", "std"}, {"scaled"});
  model.node("Sub", {"one", "scaled"}, {"y"});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 3u);
  EXPECT_EQ(graph.nodes[0].weights.at("B").data, (std::vector<float>{-0.5f, -0.25f, 1}));
  EXPECT_EQ(graph.nodes[1].weights.at("W").data, (std::vector<float>{0.5f, 0.25f, 2}));
  ir::Tensor x({1, 3, 1, 2}, ramp(6));
  const std::vector<float> mean{0.5f, 0.25f, -1}, deviation{2, 4, 0.5f};
  std::vector<float> expected;
  for (int i = 0; i < 6; ++i) expected.push_back(1 - (x.data[i] - mean[i / 2]) / deviation[i / 2]);
  expect_near(run(graph, x), expected);
}

TEST(ImportArithmetic, TwoDataOperandsBroadcastAndDivisionByDataIsStructural) {
  ModelBuilder model;
  model.input("x", {1, 2, 3}).output("y", {1, 2, 3});
  set_attribute(model.node("ReduceMean", {"x"}, {"m"}), "axes", std::vector<int64_t>{1});
  model.node("Sub", {"x", "m"}, {"d"});
  model.node("Div", {"d", "x"}, {"y"});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 3u);
  EXPECT_TRUE(graph.nodes[1].is_compute());
  EXPECT_FALSE(graph.nodes[2].is_compute());
  ir::Tensor x({1, 2, 3}, {1, 2, 3, 5, 6, 9});
  expect_near(run(graph, x), {-2, -1, -1, 0.4f, 1.0f / 3, 1.0f / 3});
}

// ---- Pad, shapes, aliases ----------------------------------------------------------------------

TEST(ImportPad, ConstantZeroPaddingIsInstructions) {
  ModelBuilder model(11);
  model.input("x", {1, 1, 3}).ints("pads", {0, 0, 2, 0, 0, 1}).output("y", {1, 1, 6});
  model.node("Pad", {"x", "pads"}, {"y"});
  Graph graph = import(model);
  EXPECT_TRUE(ir::print(*only_compute_node(graph).op).starts_with("Y[n,c,l] = X[n,c,l-2] where"))
      << ir::print(*only_compute_node(graph).op);
  expect_near(run(graph, ir::Tensor({1, 1, 3}, {1, 2, 3})), {0, 0, 1, 2, 3, 0});
}

TEST(ImportShapes, ShapeComputationsFoldAndReshapeTargetsFreeTheBatch) {
  ModelBuilder model;
  model.input("x", {-1, 2, 3}).ints("zero", {0}).ints("minus_one", {-1}).output("y", {-1, 6});
  model.node("Shape", {"x"}, {"shape"});
  model.node("Gather", {"shape", "zero"}, {"batch"});
  set_attribute(model.node("Concat", {"batch", "minus_one"}, {"target"}), "axis", int64_t{0});
  model.node("Reshape", {"x", "target"}, {"flat"});
  model.node("Identity", {"flat"}, {"y"});
  Graph graph = import(model);
  EXPECT_EQ(graph.inputs.at(0).shape, (Shape{1, 2, 3}));  // the dynamic batch is the nominal 1
  ASSERT_EQ(graph.nodes.size(), 1u);
  const Node& reshape = graph.nodes[0];
  EXPECT_EQ(reshape.op_type, "Reshape");
  EXPECT_EQ(reshape.outputs, std::vector<std::string>{"y"});  // the graph output keeps its name
  EXPECT_EQ(graph.constants.at(reshape.inputs.at(1)).data, (std::vector<float>{0, -1}));
  EXPECT_EQ(graph.shape_of("y"), (Shape{1, 6}));
}

TEST(ImportLayerNorm, DecomposedLayerNormIsOneNode) {
  ModelBuilder model;
  model.input("x", {1, 2, 4}).initializer("g", {4}, {1, 2, 0.5f, 1}).initializer("b", {4}, {0, 0.1f, 0.2f, 0.3f});
  model.scalar("two", 2).scalar("eps", 1e-5f).output("y", {1, 2, 4});
  auto axes = [](onnx::NodeProto& node) { set_attribute(node, "axes", std::vector<int64_t>{-1}); };
  axes(model.node("ReduceMean", {"x"}, {"mean"}));
  model.node("Sub", {"x", "mean"}, {"d"});
  model.node("Pow", {"d", "two"}, {"squares"});
  axes(model.node("ReduceMean", {"squares"}, {"var"}));
  model.node("Add", {"var", "eps"}, {"shifted"});
  model.node("Sqrt", {"shifted"}, {"root"});
  model.node("Div", {"d", "root"}, {"normalised"});
  model.node("Mul", {"normalised", "g"}, {"scaled"});
  model.node("Add", {"scaled", "b"}, {"y"});
  Graph graph = import(model);
  ASSERT_EQ(graph.nodes.size(), 1u);
  EXPECT_EQ(graph.nodes[0].op_type, "LayerNormalization");
  ir::Tensor x({1, 2, 4}, {1, 2, 3, 4, -1, 0, 1, 5});
  std::vector<float> expected;
  for (int row = 0; row < 2; ++row) {
    double mean = 0, var = 0;
    for (int i = 0; i < 4; ++i) mean += x.data[row * 4 + i] / 4.0;
    for (int i = 0; i < 4; ++i) var += std::pow(x.data[row * 4 + i] - mean, 2) / 4.0;
    const std::vector<float> g{1, 2, 0.5f, 1}, b{0, 0.1f, 0.2f, 0.3f};
    for (int i = 0; i < 4; ++i)
      expected.push_back(static_cast<float>((x.data[row * 4 + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i]));
  }
  expect_near(run(graph, x), expected);
}

// ---- Unsupported nodes -------------------------------------------------------------------------

ModelBuilder model_with_lrn() {
  ModelBuilder model;
  model.input("x", {1, 3, 4, 4}).output("y", {1, 3, 4, 4});
  auto& lrn = model.node("LRN", {"x"}, {"n"}, "local_response");
  set_attribute(lrn, "size", int64_t{3});
  model.node("Relu", {"n"}, {"y"});
  return model;
}

TEST(ImportUnsupported, StrictImportNamesTheNodeTheOpAndTheOpset) {
  try {
    import(model_with_lrn());
    FAIL() << "expected a GraphError";
  } catch (const GraphError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("node 'local_response' (op LRN, opset 13) is not supported by gos: ", 0),
              0u)
        << error.what();
  }
}

TEST(ImportUnsupported, LenientImportListsTheRestAndMarksTheNode) {
  ImportResult result = import_onnx_bytes(model_with_lrn().bytes(), {.allow_unsupported = true});
  ASSERT_EQ(result.unsupported.size(), 1u);
  EXPECT_EQ(result.unsupported[0].node, "local_response");
  EXPECT_EQ(result.unsupported[0].op_type, "LRN");
  EXPECT_EQ(result.unsupported[0].opset, 13);
  ASSERT_EQ(result.graph.nodes.size(), 2u);
  EXPECT_FALSE(result.graph.nodes[0].is_compute());
  EXPECT_TRUE(result.graph.nodes[1].is_compute());  // shape inference still knows LRN's output
}

}  // namespace
}  // namespace gos::graph
