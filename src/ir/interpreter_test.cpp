// The interpreter's semantics on cases small enough to check by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/ir.h"

namespace gos::ir {
namespace {

Affine ix(const char* name, int64_t coefficient = 1) { return Affine::index(name, coefficient); }
Affine k(int64_t value) { return Affine::constant(value); }

// Y[l] = reduce{r} X[l+r-1] over a length-4 signal with a window of 3 and padding 1.
OpExpr window_1d(Reduction reduction, std::vector<Access> extra_factors = {}, std::vector<TensorDecl> extra = {}) {
  Statement statement;
  statement.output = {"Y", {ix("l")}};
  statement.output_indices = {{"l", 4}};
  statement.reduction = reduction;
  statement.reduction_indices = {{"r", 3}};
  statement.factors = {{"X", {ix("l") + ix("r") - k(1)}}};
  statement.factors.insert(statement.factors.end(), extra_factors.begin(), extra_factors.end());
  std::vector<TensorDecl> tensors{{"X", Role::Input, {4}, nullptr}};
  tensors.insert(tensors.end(), extra.begin(), extra.end());
  return OpExpr::make(tensors, {statement});
}

TEST(Interpreter, SumTreatsOutOfRangeReadsAsZeroPadding) {
  auto op = window_1d(Reduction::Sum, {{"W", {ix("r")}}}, {{"W", Role::Param, {3}, nullptr}});
  auto y = evaluate(op, {{"X", Tensor({4}, {1, 2, 3, 4})}, {"W", Tensor({3}, {1, 10, 100})}});
  EXPECT_EQ(y.data, (std::vector<float>{210, 321, 432, 43}));
}

TEST(Interpreter, MaxSkipsOutOfRangeReadsInsteadOfSeeingZero) {
  auto op = window_1d(Reduction::Max);
  auto y = evaluate(op, {{"X", Tensor({4}, {-5, -2, -7, -1})}});
  EXPECT_EQ(y.data, (std::vector<float>{-2, -2, -1, -1}));
}

TEST(Interpreter, MeanCountsOutOfRangeReadsInTheDivisor) {
  auto op = window_1d(Reduction::Mean);
  auto y = evaluate(op, {{"X", Tensor({4}, {3, 6, 9, 12})}});
  EXPECT_EQ(y.data, (std::vector<float>{3, 6, 9, 7}));
}

TEST(Interpreter, ConstTablesComeFromTheOperator) {
  auto table = std::make_shared<const std::vector<float>>(std::vector<float>{0, 1, 0});
  auto op = window_1d(Reduction::Sum, {{"C", {ix("r")}}}, {{"C", Role::Const, {3}, table}});
  auto y = evaluate(op, {{"X", Tensor({4}, {1, 2, 3, 4})}});
  EXPECT_EQ(y.data, (std::vector<float>{1, 2, 3, 4}));
}

TEST(Interpreter, AddsAddendsAfterReductionThenActivates) {
  Statement statement;
  statement.output = {"Y", {ix("k")}};
  statement.output_indices = {{"k", 2}};
  statement.reduction_indices = {{"c", 2}};
  statement.factors = {{"X", {ix("c")}}, {"W", {ix("k"), ix("c")}}};
  statement.addends = {{"B", {ix("k")}}};
  statement.activation = Activation::Relu;
  auto op = OpExpr::make({{"X", Role::Input, {2}, nullptr}, {"W", Role::Param, {2, 2}, nullptr}, {"B", Role::Param, {2}, nullptr}},
                         {statement});
  auto y = evaluate(op, {{"X", Tensor({2}, {1, 2})}, {"W", Tensor({2, 2}, {1, 1, -1, -1})}, {"B", Tensor({2}, {10, 1})}});
  EXPECT_EQ(y.data, (std::vector<float>{13, 0}));  // relu(3 + 10), relu(-3 + 1)
}

TEST(Interpreter, StatementsReadEarlierIntermediates) {
  // T[c] = X[c] * D[c]; Y[k] = sum{c} T[c] * P[k,c]  (a depthwise then pointwise pair, in 1-D)
  Statement depthwise;
  depthwise.output = {"T", {ix("c")}};
  depthwise.output_indices = {{"c", 2}};
  depthwise.factors = {{"X", {ix("c")}}, {"D", {ix("c")}}};
  Statement pointwise;
  pointwise.output = {"Y", {ix("k")}};
  pointwise.output_indices = {{"k", 1}};
  pointwise.reduction_indices = {{"c", 2}};
  pointwise.factors = {{"T", {ix("c")}}, {"P", {ix("k"), ix("c")}}};
  auto op = OpExpr::make({{"X", Role::Input, {2}, nullptr}, {"D", Role::Param, {2}, nullptr}, {"P", Role::Param, {1, 2}, nullptr}},
                         {depthwise, pointwise});
  auto all = evaluate_all(op, {{"X", Tensor({2}, {1, 2})}, {"D", Tensor({2}, {3, 4})}, {"P", Tensor({1, 2}, {1, 10})}});
  EXPECT_EQ(all.at("T").data, (std::vector<float>{3, 8}));
  EXPECT_EQ(all.at("Y").data, (std::vector<float>{83}));
}

TEST(Interpreter, GroupedOutputWritesEachChannelOfItsGroup) {
  // Y[2*g+k] = X[g] * W[2*g+k]: each input channel feeds the two output channels of its group.
  Statement statement;
  statement.output = {"Y", {ix("g", 2) + ix("k")}};
  statement.output_indices = {{"g", 2}, {"k", 2}};
  statement.factors = {{"X", {ix("g")}}, {"W", {ix("g", 2) + ix("k")}}};
  auto op = OpExpr::make({{"X", Role::Input, {2}, nullptr}, {"W", Role::Param, {4}, nullptr}}, {statement});
  auto y = evaluate(op, {{"X", Tensor({2}, {1, 2})}, {"W", Tensor({4}, {1, 2, 3, 4})}});
  EXPECT_EQ(y.data, (std::vector<float>{1, 2, 6, 8}));
}

TEST(Interpreter, RejectsMissingOrMisshapedBindings) {
  auto op = window_1d(Reduction::Max);
  EXPECT_THROW(evaluate(op, {}), IrError);
  try {
    evaluate(op, {{"X", Tensor({5})}});
    FAIL();
  } catch (const IrError& error) {
    EXPECT_NE(std::string(error.what()).find("expects [4]"), std::string::npos) << error.what();
  }
}

TEST(Interpreter, ActivationsMatchTheirDefinitions) {
  EXPECT_FLOAT_EQ(apply_activation(Activation::Relu6, 7.0f), 6.0f);
  EXPECT_FLOAT_EQ(apply_activation(Activation::HardSwish, 1.0f), 1.0f * 4.0f / 6.0f);
  EXPECT_FLOAT_EQ(apply_activation(Activation::HardSigmoid, -4.0f), 0.0f);
  EXPECT_FLOAT_EQ(apply_activation(Activation::Silu, 2.0f), 2.0f / (1.0f + std::exp(-2.0f)));
  EXPECT_NEAR(apply_activation(Activation::Gelu, 1.0f), 0.841344746f, 1e-6);
}

}  // namespace
}  // namespace gos::ir
