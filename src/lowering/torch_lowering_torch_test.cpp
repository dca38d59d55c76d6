// TorchOp against the interpreter: every ops.h kind on seeded random specs, with its recognised
// kernels and with the generic lowering forced, at the operator's own batch and at batch 3; the
// hand-written operators only the generic lowering computes; and gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "lowering/torch_lowering.h"
#include "lowering/torch_test_support.h"

namespace gos::lowering {
namespace {

using namespace test_support;

constexpr int kCasesPerKind = 100;

std::string describe(const TorchOp& lowered) { return "op: " + ir::print(lowered.op()); }

// TorchOp's output against the interpreter's on random inputs and params.
void check_against_interpreter(const ir::OpExpr& op, Random& random, KernelChoice choice) {
  ir::TensorMap bindings = random_bindings(op, random);
  TorchOp lowered(op, choice);
  torch::Tensor ours = lowered.forward(input_tensors(lowered, bindings), param_tensors(lowered, bindings));
  EXPECT_TRUE(close(ours, to_torch(ir::evaluate(op, bindings)), describe(lowered)));
}

// An operator with nominal batch 1, run on 3 samples at once, against the interpreter per sample.
void check_at_batch_3(const ir::OpExpr& op, Random& random, KernelChoice choice) {
  constexpr int kBatch = 3;
  ir::TensorMap params = random_bindings(op, random);
  TorchOp lowered(op, choice);
  std::vector<std::vector<torch::Tensor>> samples(lowered.program().inputs.size());
  std::vector<torch::Tensor> expected;
  for (int sample = 0; sample < kBatch; ++sample) {
    ir::TensorMap bindings = params;
    for (auto& [name, tensor] : random_bindings(op, random)) {
      if (op.tensor(name).role == ir::Role::Input) bindings[name] = tensor;
    }
    std::vector<torch::Tensor> inputs = input_tensors(lowered, bindings);
    for (size_t i = 0; i < inputs.size(); ++i) samples[i].push_back(inputs[i]);
    expected.push_back(to_torch(ir::evaluate(op, bindings)));
  }
  std::vector<torch::Tensor> batched;
  for (const auto& per_input : samples) batched.push_back(torch::cat(per_input, 0));
  torch::Tensor ours = lowered.forward(batched, param_tensors(lowered, params));
  EXPECT_TRUE(close(ours, torch::cat(expected, 0), "at batch 3, " + describe(lowered)));
}

template <typename MakeCase>
void check_kind(std::string_view kind, uint32_t seed, MakeCase make_case) {
  torch::set_num_threads(1);  // tiny tensors: threads cost more than they give
  for (KernelChoice choice : {KernelChoice::Recognise, KernelChoice::GenericOnly}) {
    for_each_case(kind, seed, kCasesPerKind, make_case, [choice](const auto& test_case, Random& random) {
      check_against_interpreter(build(test_case), random, choice);
    });
    for_each_case(kind, seed + 500, kCasesPerKind, with_unit_batch(make_case), [choice](const auto& test_case, Random& random) {
      check_at_batch_3(build(test_case), random, choice);
    });
  }
}

TEST(TorchOp, Conv2d) { check_kind("conv2d", 1'000'000, ignoring_index(random_conv2d)); }
TEST(TorchOp, Conv1d) { check_kind("conv1d", 2'000'000, ignoring_index(random_conv1d)); }
TEST(TorchOp, DepthwiseConv2d) { check_kind("depthwise_conv2d", 3'000'000, ignoring_index(random_depthwise)); }
TEST(TorchOp, Linear) { check_kind("linear", 4'000'000, ignoring_index(random_linear)); }
TEST(TorchOp, MatMul) { check_kind("matmul", 5'000'000, ignoring_index(random_matmul)); }
TEST(TorchOp, MaxPool) { check_kind("max_pool", 6'000'000, ignoring_index(random_max_pool)); }
TEST(TorchOp, AveragePool) { check_kind("average_pool", 7'000'000, ignoring_index(random_average_pool)); }
TEST(TorchOp, GlobalAveragePool) { check_kind("global_average_pool", 8'000'000, ignoring_index(random_global_pool)); }
TEST(TorchOp, Activation) { check_kind("activation", 9'000'000, random_activation_case); }
TEST(TorchOp, Add) { check_kind("add", 10'000'000, random_add_case); }

// Recognition really picks the kernels for the constructors' operators.
TEST(TorchOp, ConstructorsLowerToKernels) {
  Random random(1);
  EXPECT_EQ(TorchOp(conv2d(random_conv2d(random))).program().statement_kinds[0], KernelKind::Conv);
  const ir::PoolSpec pool{.channels = 3, .input_size = {6, 6}, .kernel = {2, 2}, .stride = {2, 2}};
  EXPECT_EQ(TorchOp(ir::average_pool(pool)).program().statement_kinds[0], KernelKind::AveragePool);
  EXPECT_EQ(TorchOp(linear(random_linear(random))).program().statement_kinds[0], KernelKind::Linear);
}

// A kernel holds its output; the generic lowering may hold its whole iteration space.
TEST(TorchOp, BytesPerSampleCountTheGenericLoweringsIterationSpace) {
  const ir::OpExpr op = ir::conv2d({.batch = 1, .in_channels = 3, .out_channels = 8, .input_size = {10, 10}, .kernel = {3, 3},
                                    .padding = {1, 1, 1, 1}});
  const int64_t output = 8 * 10 * 10 * 4;
  EXPECT_EQ(TorchOp(op).bytes_per_sample(), output);
  EXPECT_EQ(TorchOp(op, KernelChoice::GenericOnly).bytes_per_sample(), output + output * 3 * 3 * 3);
}

TEST(TorchOp, GenericStatements) {
  torch::set_num_threads(1);
  uint32_t seed = 1;
  for (const auto& generic : generic_cases()) {
    SCOPED_TRACE(generic.name);
    ir::OpExpr op = ir::parse(generic.text);
    for (KernelChoice choice : {KernelChoice::Recognise, KernelChoice::GenericOnly}) {
      Random random(seed++);
      check_against_interpreter(op, random, choice);
      if (generic.batched) check_at_batch_3(op, random, choice);
    }
  }
}

TEST(TorchOp, HandWrittenOperatorsNeedTheGenericLowering) {
  for (const auto& generic : generic_cases()) {
    TorchOp lowered(ir::parse(generic.text));
    const auto& kinds = lowered.program().statement_kinds;
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), KernelKind::Generic), kinds.end()) << generic.name;
  }
}

TEST(TorchOp, MissingParamIsNamed) {
  TorchOp lowered(ir::parse("Y[n,k] = sum{c} X[n,c] * W[k,c] where n<1, k<2, c<3"));
  try {
    lowered.forward({torch::zeros({1, 3})}, {});
    FAIL();
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("W"), std::string::npos) << error.what();
  }
}

// ---- Gradients ------------------------------------------------------------------------------------

// The params' gradients of sum(y^2), for the given lowering.
std::map<std::string, torch::Tensor> param_gradients(const ir::OpExpr& op, const ir::TensorMap& bindings,
                                                     KernelChoice choice) {
  TorchOp lowered(op, choice);
  auto params = param_tensors(lowered, bindings);
  for (auto& [name, tensor] : params) tensor.requires_grad_(true);
  std::vector<torch::Tensor> inputs = input_tensors(lowered, bindings);
  for (auto& input : inputs) input = torch::cat({input, input * 0.5}, 0);  // batch 2 for a nominal batch of 1
  lowered.forward(inputs, params).square().sum().backward();
  std::map<std::string, torch::Tensor> gradients;
  for (auto& [name, tensor] : params) gradients[name] = tensor.grad();
  return gradients;
}

// Kernels and the generic lowering are both exact, so their gradients agree too.
void check_gradients(const ir::OpExpr& op, uint32_t seed) {
  Random random(seed);
  ir::TensorMap bindings = random_bindings(op, random);
  auto kernel = param_gradients(op, bindings, KernelChoice::Recognise);
  auto generic = param_gradients(op, bindings, KernelChoice::GenericOnly);
  ASSERT_FALSE(kernel.empty());
  for (const auto& [name, gradient] : kernel) {
    ASSERT_TRUE(gradient.defined()) << name;
    EXPECT_TRUE(torch::isfinite(gradient).all().item<bool>()) << name;
    EXPECT_GT(gradient.abs().max().item<double>(), 0.0) << name;
    EXPECT_TRUE(close(generic.at(name), gradient, "gradient of " + name + " in " + ir::print(op)));
  }
}

TEST(TorchOpGradients, ConvKernelAndGenericAgree) {
  check_gradients(ir::conv2d({.in_channels = 3, .out_channels = 4, .input_size = {6, 7}, .kernel = {3, 3},
                              .stride = {2, 1}, .padding = {1, 0, 1, 1}, .groups = 1, .bias = true,
                              .activation = ir::Activation::Silu}),
                  1);
}

TEST(TorchOpGradients, LinearKernelAndGenericAgree) {
  check_gradients(ir::linear({.in_features = 5, .out_features = 3, .bias = true, .activation = ir::Activation::Tanh}), 2);
}

TEST(TorchOpGradients, WeightOnTheLeftMatMulKernelAndGenericAgree) {
  check_gradients(ir::matmul({.batch_dims = {1}, .m = 4, .k = 5, .n = 3, .weight_lhs = true, .bias = true}), 3);
  check_gradients(ir::parse("Y[n,u,c] = gelu(sum{t} X[n,t,c] * W[u,t] + B[u]) where n<1, u<4, c<6, t<5"), 4);
}

TEST(TorchOpGradients, GenericStatementsAreDifferentiable) {
  uint32_t seed = 10;
  for (const auto& generic : generic_cases()) {
    ir::OpExpr op = ir::parse(generic.text);
    if (!generic.batched || op.tensors_with_role(ir::Role::Param).empty()) continue;
    SCOPED_TRACE(generic.name);
    check_gradients(op, seed++);
  }
}

}  // namespace
}  // namespace gos::lowering
