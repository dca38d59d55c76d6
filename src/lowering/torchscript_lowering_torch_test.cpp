// The TorchScript text of an operator, compiled with torch::jit::Module::define, against the
// interpreter: every ops.h kind (kernels and the generic lowering) and the hand-written generic
// operators, at the nominal batch and at batch 3.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "lowering/torch_lowering.h"
#include "lowering/torch_test_support.h"
#include "lowering/torchscript_lowering.h"

namespace gos::lowering {
namespace {

using namespace test_support;

constexpr int kCasesPerKind = 100;

// A module whose forward(inputs..., params...) calls the operator's method with its constants
// registered as buffers.
torch::jit::Module compile(const TorchOp& lowered) {
  TorchScriptFunction function = torchscript_function(lowered.program(), "lowered");
  torch::jit::Module module("single_op");
  std::string forward = "def forward(self";
  std::string call = "self.lowered(";
  for (size_t i = 0; i < function.arguments.size(); ++i) {
    std::string argument = "a" + std::to_string(i);
    auto constant = lowered.constants().find(function.arguments[i]);
    if (constant != lowered.constants().end()) {
      module.register_buffer(argument, constant->second);
      argument = "self." + argument;
    } else {
      forward += ", " + argument;
    }
    call += (i ? ", " : "") + argument;
  }
  module.define(function.source + forward + "):\n    return " + call + ")\n");
  return module;
}

torch::Tensor run(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs,
                  const std::map<std::string, torch::Tensor>& params, const TorchProgram& program) {
  std::vector<torch::jit::IValue> arguments(inputs.begin(), inputs.end());
  for (const auto& name : program.params) arguments.push_back(params.at(name));
  return module.forward(arguments).toTensor();
}

void check_script(const ir::OpExpr& op, Random& random, KernelChoice choice, bool at_batch_3) {
  TorchOp lowered(op, choice);
  ir::TensorMap bindings = random_bindings(op, random);
  auto inputs = input_tensors(lowered, bindings);
  auto params = param_tensors(lowered, bindings);
  torch::jit::Module module = compile(lowered);
  std::string context = "op: " + ir::print(op) + "\nTorchScript:\n" +
                        torchscript_function(lowered.program(), "lowered").source;
  EXPECT_TRUE(close(run(module, inputs, params, lowered.program()), to_torch(ir::evaluate(op, bindings)), context));
  if (!at_batch_3) return;
  for (auto& input : inputs) input = torch::cat({input, input * -1.5, input + 1.0}, 0);
  EXPECT_TRUE(close(run(module, inputs, params, lowered.program()), lowered.forward(inputs, params),
                    "at batch 3 against TorchOp, " + context));
}

template <typename MakeCase>
void check_kind(std::string_view kind, uint32_t seed, MakeCase make_case) {
  torch::set_num_threads(1);
  for (KernelChoice choice : {KernelChoice::Recognise, KernelChoice::GenericOnly}) {
    for_each_case(kind, seed, kCasesPerKind, with_unit_batch(make_case), [choice](const auto& test_case, Random& random) {
      check_script(build(test_case), random, choice, /*at_batch_3=*/true);
    });
  }
}

TEST(TorchScriptOp, Conv2d) { check_kind("conv2d", 21'000'000, ignoring_index(random_conv2d)); }
TEST(TorchScriptOp, Conv1d) { check_kind("conv1d", 22'000'000, ignoring_index(random_conv1d)); }
TEST(TorchScriptOp, DepthwiseConv2d) { check_kind("depthwise_conv2d", 23'000'000, ignoring_index(random_depthwise)); }
TEST(TorchScriptOp, Linear) { check_kind("linear", 24'000'000, ignoring_index(random_linear)); }
TEST(TorchScriptOp, MatMul) { check_kind("matmul", 25'000'000, ignoring_index(random_matmul)); }
TEST(TorchScriptOp, MaxPool) { check_kind("max_pool", 26'000'000, ignoring_index(random_max_pool)); }
TEST(TorchScriptOp, AveragePool) { check_kind("average_pool", 27'000'000, ignoring_index(random_average_pool)); }
TEST(TorchScriptOp, GlobalAveragePool) { check_kind("global_average_pool", 28'000'000, ignoring_index(random_global_pool)); }
TEST(TorchScriptOp, Activation) { check_kind("activation", 29'000'000, random_activation_case); }
TEST(TorchScriptOp, Add) { check_kind("add", 30'000'000, random_add_case); }

TEST(TorchScriptOp, GenericStatements) {
  torch::set_num_threads(1);
  uint32_t seed = 100;
  for (const auto& generic : generic_cases()) {
    SCOPED_TRACE(generic.name);
    Random random(seed++);
    check_script(ir::parse(generic.text), random, KernelChoice::Recognise, generic.batched);
  }
}

TEST(TorchScriptOp, SourceIsAMethodOverTheProgramsValues) {
  TorchOp lowered(ir::conv2d({.in_channels = 2, .out_channels = 3, .input_size = {5, 5}, .kernel = {3, 3},
                              .padding = {0, 0, 1, 1}, .bias = true, .activation = ir::Activation::Relu6}));
  TorchScriptFunction function = torchscript_function(lowered.program(), "conv");
  EXPECT_EQ(function.arguments, (std::vector<std::string>{"X", "W", "B"}));
  EXPECT_EQ(function.source,
            "def conv(self, v_X, v_W, v_B):\n"
            "    t_0 = torch.constant_pad_nd(v_X, [0, 1, 0, 1], 0.0)\n"
            "    t_1 = torch.conv2d(t_0, v_W, v_B, [1, 1], [0, 0], [1, 1], 1)\n"
            "    v_Y = torch.hardtanh(t_1, 0.0, 6.0)\n"
            "    return v_Y\n");
}

}  // namespace
}  // namespace gos::lowering
