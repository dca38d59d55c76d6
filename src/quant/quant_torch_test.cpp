// int8 as ONNX Runtime runs the QDQ file and as libtorch's quantized operators run the TorchScript
// module (QNNPACK), against the fake-quantized reference gos computes in libtorch and against each
// other, for every kernel kind gos lowers; the QDQ files pass the ONNX checker (write_qdq_onnx
// checks them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_test_graphs.h"
#include <torch/script.h>
#include "ir/ops.h"
#include "graph/torch_module.h"
#include "lowering/torch_lowering.h"
#include "quant/fake_quant.h"
#include "quant/quant.h"
#include "quant/torchscript_module.h"
#include "util/scratch_folder.h"
#include "zoo/zoo.h"

namespace gos::quant {
namespace {

using graph::test_graphs::GraphBuilder;
using graph::test_graphs::conv;

ir::Tensor random_inputs(const graph::Shape& shape, int64_t batch, uint32_t seed, float low = 0, float high = 1) {
  auto batched = shape;
  batched[0] = batch;
  std::mt19937 rng(seed);
  return graph::test_graphs::random_tensor(batched, rng, low, high);
}

struct Agreement {
  double largest = 0;     // the largest |int8 in ONNX Runtime - reference| over every output
  double torchscript = 0;  // the largest |quantized TorchScript - reference|
  double between = 0;      // the largest |quantized TorchScript - int8 in ONNX Runtime|
  double magnitude = 0;   // the largest |reference|
  double fp32_gap = 0;    // the largest |fp32 - reference|: what quantization itself changed
};

// Quantizes `graph` on calibration inputs, runs the QDQ file in ONNX Runtime and the fp32 export
// too, and compares both with the fake-quantized reference on fresh inputs.
Agreement run_int8(const graph::Graph& original, QuantPlan* plan_out = nullptr, float low = 0, float high = 1) {
  const graph::Graph model = quantizable_form(original);
  const auto& shape = model.inputs.at(0).shape;
  const QuantPlan plan = plan_quantization(model, calibrate(model, random_inputs(shape, 64, 1, low, high)));
  util::ScratchFolder folder("gos-quant-test");
  const auto int8_path = folder.path() / "int8.onnx", fp32_path = folder.path() / "fp32.onnx";
  write_qdq_onnx(model, plan, int8_path);
  graph::write_onnx(model, fp32_path);
  const ir::Tensor inputs = random_inputs(shape, 16, 2, low, high);
  const auto reference = fake_quantized_forward(model, plan, inputs);
  const std::string input = model.inputs[0].name, output = model.outputs[0].name;
  const auto int8 = graph::run_onnx_runtime(int8_path, {{input, inputs}}).at(output);
  const auto fp32 = graph::run_onnx_runtime(fp32_path, {{input, inputs}}).at(output);
  const auto script_path = folder.path() / "int8.pt";
  write_quantized_torchscript(model, plan, script_path);
  use_platform_quantized_engine();
  auto module = torch::jit::load(script_path.string());
  torch::NoGradGuard no_grad;
  const auto scripted = lowering::from_torch(module.forward({lowering::to_torch(inputs)}).toTensor().contiguous());
  Agreement agreement;
  EXPECT_EQ(int8.shape, reference.shape);
  EXPECT_EQ(scripted.shape, reference.shape);
  for (size_t i = 0; i < reference.data.size(); ++i) {
    agreement.largest = std::max(agreement.largest, double{std::fabs(int8.data[i] - reference.data[i])});
    agreement.torchscript = std::max(agreement.torchscript, double{std::fabs(scripted.data[i] - reference.data[i])});
    agreement.between = std::max(agreement.between, double{std::fabs(scripted.data[i] - int8.data[i])});
    agreement.fp32_gap = std::max(agreement.fp32_gap, double{std::fabs(fp32.data[i] - reference.data[i])});
    agreement.magnitude = std::max(agreement.magnitude, double{std::fabs(reference.data[i])});
  }
  if (plan_out) *plan_out = plan;
  return agreement;
}

// ONNX Runtime's integer kernels round sums the reference rounds in fp32: a value on the edge of
// two steps may land on the other, and the step moves on through later layers. 2% of the outputs'
// magnitude holds that; quantization itself moves them by more (checked beside it).
constexpr double kTolerance = 0.02;

void expect_agreement(const Agreement& agreement, const std::string& what) {
  EXPECT_LE(agreement.largest, kTolerance * agreement.magnitude) << what << ": int8 in ONNX Runtime differs from the fake-quantized reference by "
                                                                 << agreement.largest << " where outputs reach " << agreement.magnitude;
  EXPECT_LE(agreement.torchscript, kTolerance * agreement.magnitude) << what << ": quantized TorchScript differs from the reference by "
                                                                     << agreement.torchscript << " where outputs reach " << agreement.magnitude;
  EXPECT_LE(agreement.between, kTolerance * agreement.magnitude) << what << ": quantized TorchScript and ONNX Runtime differ by " << agreement.between;
  EXPECT_GT(agreement.fp32_gap, std::max(agreement.largest, agreement.torchscript))
      << what << ": the reference should differ from fp32 more than either int8 runtime differs from it";
}

TEST(QuantParams, ActivationRangesHoldZeroAndMapItExactly) {
  const auto positive = uint8_quantization({0.5f, 2.0f});
  EXPECT_EQ(positive.zero_point, 0);
  EXPECT_FLOAT_EQ(positive.scale, 2.0f / 255);
  const auto both = uint8_quantization({-1.0f, 3.0f});
  EXPECT_NEAR(both.scale * (0 - both.zero_point), -1.0f, both.scale);
  EXPECT_NEAR(both.scale * (255 - both.zero_point), 3.0f, both.scale);
  EXPECT_GT(uint8_quantization({0, 0}).scale, 0);
}

TEST(QuantParams, WeightsGetAScalePerOutputChannel) {
  ir::Tensor weight({2, 3});
  weight.data = {1, -2, 0.5f, 0, 0, 0};
  const auto quant = int8_per_channel(weight, 0);
  ASSERT_EQ(quant.scales.size(), 2u);
  EXPECT_FLOAT_EQ(quant.scales[0], 2.0f / 127);
  EXPECT_EQ(quant.values[1], -127);
  EXPECT_FLOAT_EQ(quant.scales[1], 1.0f) << "an all-zero channel keeps a usable scale";
  const auto rounded = int8_rounded(weight, 0);
  EXPECT_NEAR(rounded.data[2], 0.5f, quant.scales[0] / 2);
}

TEST(Int8, ConvolutionsOfEveryShapeAndALinearLayerMatchTheReference) {
  GraphBuilder b("convs", 3);
  b.input("x", {1, 8, 10, 10});
  b.compute("conv3x3", {"x"}, conv(8, 16, 10, 3, ir::Activation::Relu));
  b.compute("depthwise", {"conv3x3_out"},
            ir::depthwise_conv2d({.in_channels = 16, .out_channels = 16, .input_size = {10, 10}, .kernel = {3, 3}, .padding = {1, 1, 1, 1},
                                  .bias = true, .activation = ir::Activation::Relu}));
  b.compute("grouped", {"depthwise_out"},
            ir::conv2d({.in_channels = 16, .out_channels = 16, .input_size = {10, 10}, .kernel = {3, 3}, .padding = {1, 1, 1, 1},
                        .groups = 4, .bias = true}));
  b.compute("pointwise", {"grouped_out"}, conv(16, 16, 10, 1, ir::Activation::None));
  b.compute("residual", {"conv3x3_out", "pointwise_out"}, ir::add({1, 16, 10, 10}, ir::Activation::Relu));
  b.compute("pool", {"residual_out"}, ir::global_average_pool(1, 16, {10, 10}, /*keep_dims=*/false));
  b.compute("fc", {"pool_out"}, ir::linear({.in_features = 16, .out_features = 10, .bias = true}));
  QuantPlan plan;
  expect_agreement(run_int8(b.finish({"fc_out"}), &plan), "convs");
  EXPECT_EQ(plan.int8_nodes(), static_cast<int>(plan.nodes.size())) << "every kernel here has an int8 form";
}

// A TCN's dilated 1-D convolutions run as libtorch's quantized::conv1d, not in fp32 between a
// dequantize and a quantize.
TEST(Int8, OneDimensionalConvolutionsMatchTheReferenceAsQuantizedOperators) {
  GraphBuilder b("tcn", 9);
  b.input("x", {1, 4, 64});
  b.compute("first", {"x"}, ir::conv1d({.in_channels = 4, .out_channels = 16, .input_length = 64, .kernel = 3, .padding = {1, 1}, .bias = true,
                                       .activation = ir::Activation::Relu}));
  b.compute("dilated", {"first_out"}, ir::conv1d({.in_channels = 16, .out_channels = 16, .input_length = 64, .kernel = 3, .padding = {4, 4},
                                                 .dilation = 4, .bias = true, .activation = ir::Activation::Relu}));
  b.compute("last", {"dilated_out"}, ir::conv1d({.in_channels = 16, .out_channels = 8, .input_length = 64, .kernel = 1, .bias = true}));
  const graph::Graph model = b.finish({"last_out"});
  expect_agreement(run_int8(model), "1-D convolutions");
  const graph::Graph form = quantizable_form(model);
  const QuantPlan plan = plan_quantization(form, calibrate(form, random_inputs(form.inputs[0].shape, 16, 1)));
  util::ScratchFolder folder("gos-quant-test");
  write_quantized_torchscript(form, plan, folder.path() / "int8.pt");
  auto module = load_torchscript(folder.path() / "int8.pt", {torch::rand({1, 4, 64})});
  const std::string graph = module.get_method("forward").graph()->toString();
  size_t calls = 0;
  for (size_t at = graph.find("quantized::conv1d"); at != std::string::npos; at = graph.find("quantized::conv1d", at + 1)) ++calls;
  EXPECT_EQ(calls, 2u) << "the two convolutions whose output an int8 node reads:\n" << graph;
}

TEST(Int8, ProductsWithAWeightMatchTheReference) {
  GraphBuilder b("products", 4);
  b.input("tokens", {1, 6, 8});
  b.compute("project", {"tokens"}, ir::matmul({.batch_dims = {1}, .m = 6, .k = 8, .n = 12, .weight_rhs = true, .bias = true}));
  b.compute("stored", {"project_out"},
            ir::matmul({.batch_dims = {1}, .m = 6, .k = 12, .n = 5, .weight_rhs = true, .weight_transposed = true, .bias = true}));
  expect_agreement(run_int8(b.finish({"stored_out"}), nullptr, -1, 1), "matmuls");
}

TEST(Int8, KernelsWithoutAnInt8FormStayFp32AndSayWhy) {
  GraphBuilder b("fp32 kernels", 5);
  b.input("x", {1, 2, 4, 4});
  b.compute("conv", {"x"}, conv(2, 2, 4, 3, ir::Activation::Relu));
  // A shift (a gather by a one-hot table), then a 1x1 convolution: split into two nodes.
  b.compute("shift", {"conv_out"},
            ir::parse("T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,0,r,s]; Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c,0,0] "
                      "where n<1, k<2, c<2, h<4, w<4, r<3, s<3, "
                      "const C[2,1,3,3] = {0,1,0,0,0,0,0,0,0, 0,0,0,0,1,0,0,0,0}, param P[2,2,1,1]"));
  // An einsum no kernel computes: a weight with its window axes swapped.
  b.compute("generic", {"shift_out"}, ir::parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,s,r] where n<1, k<2, c<2, h<4, w<4, r<3, s<3, in X[1,2,4,4]"));
  QuantPlan plan;
  expect_agreement(run_int8(b.finish({"generic_out"}), &plan), "fp32 kernels");
  std::map<std::string, const NodePrecision*> by_name;
  for (const auto& node : plan.nodes) by_name[node.node] = &node;
  ASSERT_TRUE(by_name.count("shift/T")) << "the shift's statements become nodes of their own";
  EXPECT_FALSE(by_name["shift/T"]->int8);
  EXPECT_NE(by_name["shift/T"]->why_fp32.find("shift"), std::string::npos);
  EXPECT_TRUE(by_name["shift"]->int8) << "the 1x1 convolution after the shift is int8";
  EXPECT_FALSE(by_name["generic"]->int8);
  EXPECT_NE(by_name["generic"]->why_fp32.find("einsum"), std::string::npos);
}

// Mixed precision: a layer the search keeps in fp32 runs in fp32 inside the int8 model, in both
// runtimes as in the reference, every node of it when quantizable_form splits it.
TEST(Int8, ALayerKeptInFp32RunsInFp32InsideTheInt8Model) {
  GraphBuilder b("mixed", 6);
  b.input("x", {1, 8, 8, 8});
  b.compute("first", {"x"}, conv(8, 16, 8, 3, ir::Activation::Relu));
  b.compute("kept", {"first_out"},
            ir::parse("T[n,k,h,w] = sum{c} X[n,c,h,w] * A[k,c,0,0]; Y[n,k,h,w] = sum{c,r,s} T[n,c,h+r-1,w+s-1] * B[k,c,r,s] "
                      "where n<1, k<16, c<16, h<8, w<8, r<3, s<3, param A[16,16,1,1], param B[16,16,3,3]"));
  b.compute("last", {"kept_out"}, conv(16, 8, 8, 1, ir::Activation::None));
  const graph::Graph all_int8 = b.finish({"last_out"});
  graph::Graph mixed = all_int8;
  for (auto& node : mixed.nodes) {
    if (node.name == "kept") keep_in_fp32(node);
  }
  QuantPlan plan;
  expect_agreement(run_int8(mixed, &plan), "mixed");
  std::map<std::string, const NodePrecision*> by_name;
  for (const auto& node : plan.nodes) by_name[node.node] = &node;
  ASSERT_TRUE(by_name.count("kept/T") && by_name.count("kept")) << "the kept layer's two statements become two nodes";
  for (const char* name : {"kept/T", "kept"}) {
    EXPECT_FALSE(by_name[name]->int8) << name;
    EXPECT_NE(by_name[name]->why_fp32.find("kept in fp32"), std::string::npos) << by_name[name]->why_fp32;
  }
  EXPECT_TRUE(by_name["first"]->int8);
  EXPECT_TRUE(by_name["last"]->int8);
  EXPECT_FALSE(plan.activations.count("kept/T")) << "a value only fp32 nodes read and write stays fp32";
  // The mark changes what is computed: the kept layer's weights are not rounded.
  const graph::Graph form = quantizable_form(all_int8), mixed_form = quantizable_form(mixed);
  const ir::Tensor images = random_inputs(form.inputs[0].shape, 32, 1), inputs = random_inputs(form.inputs[0].shape, 4, 2);
  const auto int8_out = fake_quantized_forward(form, plan_quantization(form, calibrate(form, images)), inputs);
  const auto mixed_out = fake_quantized_forward(mixed_form, plan_quantization(mixed_form, calibrate(mixed_form, images)), inputs);
  double differ = 0;
  for (size_t i = 0; i < int8_out.data.size(); ++i) differ = std::max(differ, double{std::fabs(int8_out.data[i] - mixed_out.data[i])});
  EXPECT_GT(differ, 0) << "keeping a layer in fp32 changed nothing in the reference";
}

TEST(Int8, TheZooResnetMatchesItsReference) {
  expect_agreement(run_int8(zoo::inference_graph("resnet20", 7)), "resnet20");
}

TEST(Int8, CalibrationDataThatDoesNotFitTheModelIsRefusedSayingSo) {
  const graph::Graph model = quantizable_form(zoo::inference_graph("resnet20", 7));
  try {
    calibrate(model, random_inputs({1, 3, 32, 32}, 4, 1));
    FAIL() << "calibration on [3,32,32] images of a [1,28,28] model went through";
  } catch (const QuantError& error) {
    EXPECT_NE(std::string(error.what()).find("[1,3,32,32] per sample but the model reads [1,1,28,28]"), std::string::npos) << error.what();
  }
}

// Quantization-aware training's module computes what the reference computes, and still trains:
// the rounding passes gradients straight through to every weight.
TEST(FakeQuantize, TheTrainingModuleComputesTheReferenceAndPassesGradients) {
  const graph::Graph model = quantizable_form(zoo::inference_graph("resnet20", 7));
  const auto& shape = model.inputs.at(0).shape;
  const QuantPlan plan = plan_quantization(model, calibrate(model, random_inputs(shape, 64, 1)));
  const ir::Tensor inputs = random_inputs(shape, 8, 2);
  const auto reference = fake_quantized_outputs(model, plan, inputs);

  graph::GraphModule module(model);
  fake_quantize(module, model, plan, /*observe=*/false);
  module.eval();
  torch::Tensor evaluated;
  {
    torch::NoGradGuard no_grad;
    evaluated = module.forward(lowering::to_torch(inputs));
  }
  const auto expected = lowering::to_torch(reference);
  const double magnitude = expected.abs().max().item<double>();
  EXPECT_LE((evaluated - expected).abs().max().item<double>(), kTolerance * magnitude)
      << "the hooks round as the reference's pre-rounded weights and value grid do";

  graph::GraphModule trained(model);
  fake_quantize(trained, model, plan, /*observe=*/true);
  trained.train();
  trained.forward(lowering::to_torch(inputs)).pow(2).sum().backward();
  int with_gradient = 0, parameters = 0;
  for (const auto& parameter : trained.parameters()) {
    ++parameters;
    with_gradient += parameter.grad().defined() && parameter.grad().abs().sum().item<double>() > 0;
  }
  EXPECT_EQ(with_gradient, parameters) << "every weight gets a gradient through the fake quantization";
}

// libtorch 1.13's oneDNN engine (x86) breaks a grouped quantized convolution whose first call is
// a large batch: every later call failed with a negative dimension, and gos evaluates test sets in
// batches of 500.
TEST(Int8, AGroupedConvolutionRunsBatchAfterBatch) {
  GraphBuilder b("grouped", 8);
  b.input("x", {1, 32, 7, 7});
  b.compute("pointwise", {"x"}, conv(32, 64, 7, 1, ir::Activation::Relu));
  b.compute("grouped", {"pointwise_out"},
            ir::conv2d({.in_channels = 64, .out_channels = 64, .input_size = {7, 7}, .kernel = {3, 3}, .padding = {1, 1, 1, 1},
                        .groups = 2, .bias = true, .activation = ir::Activation::Relu}));
  b.compute("last", {"grouped_out"}, conv(64, 8, 7, 1, ir::Activation::None));
  const graph::Graph model = quantizable_form(b.finish({"last_out"}));
  const QuantPlan plan = plan_quantization(model, calibrate(model, random_inputs(model.inputs[0].shape, 64, 1)));
  ASSERT_EQ(plan.int8_nodes(), 3);
  util::ScratchFolder folder("gos-quant-test");
  write_quantized_torchscript(model, plan, folder.path() / "int8.pt");
  const ir::Tensor inputs = random_inputs(model.inputs[0].shape, 1000, 2);
  const auto batched = run_torchscript(folder.path() / "int8.pt", inputs, 500);
  const auto one_call = run_torchscript(folder.path() / "int8.pt", inputs, 1000);
  ASSERT_EQ(batched.shape, one_call.shape);
  for (size_t i = 0; i < batched.data.size(); ++i) ASSERT_FLOAT_EQ(batched.data[i], one_call.data[i]) << "output " << i;
}

}  // namespace
}  // namespace gos::quant
