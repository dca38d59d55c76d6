// The ONNX lowering's choice of operators, and that what it writes passes onnx::checker and strict
// shape inference. (The numbers are checked against ONNX Runtime in graph/onnx_export_ops_test.cpp.)
#include "lowering/onnx_lowering.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <set>

#include "ir/ops_test_specs.h"

namespace gos::lowering {
namespace {

using namespace ir::test_specs;

constexpr int kCases = 100;

void declare(onnx::ValueInfoProto& info, const std::string& name, const std::vector<int64_t>& shape) {
  info.set_name(name);
  auto& type = *info.mutable_type()->mutable_tensor_type();
  type.set_elem_type(onnx::TensorProto_DataType_FLOAT);
  for (int64_t extent : shape) type.mutable_shape()->add_dim()->set_dim_value(extent);
}

// The operator alone as a model, checked by ONNX.
onnx::ModelProto model_of(const ir::OpExpr& op, const ir::TensorMap& params, const OnnxLoweringOptions& options = {}) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  auto& opset = *model.add_opset_import();
  opset.set_version(kOnnxOpset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("op");
  OnnxBinding binding{{}, "Y", params};
  for (const auto& input : op.tensors_with_role(ir::Role::Input)) {
    declare(*graph.add_input(), input.name, input.shape);
    binding.inputs.push_back(input.name);
  }
  declare(*graph.add_output(), "Y", op.output().shape);
  OnnxBuilder builder(graph);
  lower_to_onnx(op, binding, builder, options);
  onnx::checker::check_model(model);
  onnx::ModelProto inferred = model;
  onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1));
  return model;
}

std::vector<std::string> op_types(const onnx::ModelProto& model) {
  std::vector<std::string> types;
  for (const auto& node : model.graph().node()) types.push_back(node.op_type());
  return types;
}

bool contains(const std::vector<std::string>& types, const std::string& type) {
  return std::find(types.begin(), types.end(), type) != types.end();
}

// Every case lowers to a model ONNX accepts, whose main operator is `expected` (or, for at most
// `allowed_fallbacks` of the cases, the generic Einsum).
template <typename MakeCase>
void expect_lowered_to(std::string_view kind, uint32_t seed, MakeCase make_case, const std::string& expected,
                       int allowed_fallbacks = 0) {
  int fallbacks = 0;
  for_each_case(kind, seed, kCases, make_case, [&](const auto& test_case, Random& random) {
    ir::OpExpr op = build(test_case);
    auto types = op_types(model_of(op, random_bindings(op, random)));
    if (contains(types, expected)) {
      EXPECT_FALSE(contains(types, "Einsum")) << ir::print(op);
    } else if (types != std::vector<std::string>{"Identity"}) {  // a one-tap pool
      ASSERT_TRUE(contains(types, "Einsum")) << "neither " << expected << " nor the generic lowering: " << ir::print(op);
      ++fallbacks;
    }
    model_of(op, random_bindings(op, random), {.recognise_kernels = false});
  });
  EXPECT_LE(fallbacks, allowed_fallbacks) << kind << " lowered generically in " << fallbacks << " of " << kCases << " cases";
}

TEST(OnnxLowering, KernelsBecomeTheirOnnxOperators) {
  expect_lowered_to("conv2d", 100, ignoring_index(random_conv2d), "Conv");
  expect_lowered_to("conv1d", 200, ignoring_index(random_conv1d), "Conv");
  expect_lowered_to("depthwise", 300, ignoring_index(random_depthwise), "Conv");
  expect_lowered_to("linear", 400, ignoring_index(random_linear), "Gemm");
  expect_lowered_to("add", 1000, random_add_case, "Add");
}

// A pool that ONNX's attributes cannot state exactly (a ceil-mode window ONNX would add, a pad as
// large as the kernel, which ONNX Runtime rejects) is lowered generically; that stays rare. A
// one-tap window is the identity and needs no pool at all.
TEST(OnnxLowering, PoolsBecomeOnnxPoolsExceptWhereOnnxCannotStateThem) {
  expect_lowered_to("max_pool", 600, ignoring_index(random_max_pool), "MaxPool", kCases / 20);
  expect_lowered_to("average_pool", 700, ignoring_index(random_average_pool), "AveragePool", kCases / 20);
}

TEST(OnnxLowering, GlobalAveragePoolKeepingOrDroppingDimensions) {
  EXPECT_EQ(op_types(model_of(ir::global_average_pool(2, 3, {4, 5}, true), {})),
            std::vector<std::string>{"GlobalAveragePool"});
  EXPECT_EQ(op_types(model_of(ir::global_average_pool(2, 3, {4, 5}, false), {})), std::vector<std::string>{"ReduceMean"});
}

TEST(OnnxLowering, MatMulWithAndWithoutWeight) {
  for (bool weight_rhs : {false, true}) {
    ir::OpExpr op = ir::matmul({.batch_dims = {2}, .m = 3, .k = 4, .n = 5, .weight_rhs = weight_rhs});
    Random random(1);
    EXPECT_EQ(op_types(model_of(op, random_bindings(op, random))), std::vector<std::string>{"MatMul"});
  }
}

TEST(OnnxLowering, ActivationsInOpset17) {
  auto lowered = [](ir::Activation activation) {
    return op_types(model_of(ir::activation({2, 3}, activation), {}));
  };
  EXPECT_EQ(lowered(ir::Activation::Relu), std::vector<std::string>{"Relu"});
  EXPECT_EQ(lowered(ir::Activation::Relu6), std::vector<std::string>{"Clip"});
  EXPECT_EQ(lowered(ir::Activation::Silu), (std::vector<std::string>{"Sigmoid", "Mul"}));
  EXPECT_EQ(lowered(ir::Activation::HardSwish), std::vector<std::string>{"HardSwish"});
  EXPECT_EQ(lowered(ir::Activation::Tanh), std::vector<std::string>{"Tanh"});
  EXPECT_TRUE(contains(lowered(ir::Activation::Gelu), "Erf")) << "Gelu is opset 20";
  auto hard_sigmoid = model_of(ir::activation({2, 3}, ir::Activation::HardSigmoid), {});
  ASSERT_EQ(hard_sigmoid.graph().node_size(), 1);
  for (const auto& attribute : hard_sigmoid.graph().node(0).attribute()) {
    if (attribute.name() == "alpha") {
      EXPECT_FLOAT_EQ(attribute.f(), 1.0f / 6.0f);
    }
    if (attribute.name() == "beta") {
      EXPECT_FLOAT_EQ(attribute.f(), 0.5f);
    }
  }
}

onnx::ModelProto lowered(const std::string& text, const std::string& extents) {
  ir::OpExpr op = ir::parse(text, extents);
  Random random(7);
  return model_of(op, random_bindings(op, random));
}

TEST(OnnxLowering, WindowReadsAreOneSlicePerTap) {
  auto model = lowered("Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]", "n<1, c<4, h<6, w<6, r<3, s<3, in X[1,4,6,6]");
  auto types = op_types(model);
  EXPECT_EQ(std::count(types.begin(), types.end(), "Slice"), 6) << "three taps in each of two dimensions";
  EXPECT_EQ(std::count(types.begin(), types.end(), "Pad"), 2);
  EXPECT_EQ(std::count(types.begin(), types.end(), "Einsum"), 1);
}

TEST(OnnxLowering, DenseMixedRadixReadsAreReshapes) {
  auto types = op_types(lowered("Y[n,4*g+k,h] = X[n,2*k+g,h]", "n<1, g<2, k<4, h<3, in X[1,8,3]"));
  EXPECT_FALSE(contains(types, "Slice"));
  EXPECT_FALSE(contains(types, "Concat"));
  EXPECT_EQ(std::count(types.begin(), types.end(), "Reshape"), 2) << "split the read, merge the write";
}

// A mean of one read that keeps the output's axes in order is a ReduceMean (mixer-s's mean over
// tokens); one that must reorder them, or reads a window, stays an Einsum and a scale.
TEST(OnnxLowering, AMeanOverAxesInPlaceIsAReduceMean) {
  EXPECT_EQ(op_types(lowered("Y[n,c] = mean{t} X[n,t,c]", "n<1, t<49, c<64, in X[1,49,64]")),
            std::vector<std::string>{"ReduceMean"});
  EXPECT_EQ(op_types(model_of(ir::mean_over_axes({1, 3, 4, 5}, {1, 3}, true), {})),
            std::vector<std::string>{"ReduceMean"});
  EXPECT_EQ(op_types(model_of(ir::mean_over_axes({1, 3, 4, 5}, {1, 3}, false), {})),
            std::vector<std::string>{"ReduceMean"});
  EXPECT_EQ(op_types(lowered("Y[n,c,t] = mean{u} X[n,t,c,u]", "n<1, t<3, c<4, u<5, in X[1,3,4,5]")),
            (std::vector<std::string>{"Einsum", "Mul"}));
}

TEST(OnnxLowering, MaxMasksOutOfRangeTerms) {
  auto types = op_types(lowered("Y[n,c,h] = max{r} X[n,c,h+r-1] * M[c,r]", "n<1, c<2, h<5, r<3, in X[1,2,5]"));
  EXPECT_TRUE(contains(types, "Where"));
  EXPECT_TRUE(contains(types, "ReduceMax"));
}

// The batch stays free in every shape the generic lowering writes.
TEST(OnnxLowering, ReshapesLeaveTheBatchFree) {
  auto model = lowered("Y[n,4*g+k,h] = sum{c} X[n,8*g+c,h] * W[g,k,c]", "n<2, g<2, k<4, c<8, h<3, in X[2,16,3]");
  std::set<std::string> reshape_targets;
  for (const auto& node : model.graph().node()) {
    if (node.op_type() == "Reshape") reshape_targets.insert(node.input(1));
  }
  ASSERT_FALSE(reshape_targets.empty());
  for (const auto& initializer : model.graph().initializer()) {
    if (reshape_targets.count(initializer.name())) {
      EXPECT_EQ(initializer.int64_data(0), -1) << initializer.name();
    }
  }
}

TEST(OnnxLowering, MissingParamValueIsAnError) {
  ir::OpExpr op = ir::linear({.batch = 1, .in_features = 2, .out_features = 3});
  EXPECT_THROW(model_of(op, {}), ir::IrError);
}

}  // namespace
}  // namespace gos::lowering
