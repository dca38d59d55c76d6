// OpExpr::make accepts only well-formed operators, with messages that say what is wrong.
#include <gtest/gtest.h>

#include "ir/ir.h"

namespace gos::ir {
namespace {

Access read(std::string tensor, std::vector<Affine> subscripts) { return {std::move(tensor), std::move(subscripts)}; }
Affine ix(const char* name) { return Affine::index(name); }

// Y[n,k] = sum{c} X[n,c] * W[k,c]
Statement linear_statement() {
  Statement statement;
  statement.output = read("Y", {ix("n"), ix("k")});
  statement.output_indices = {{"n", 2}, {"k", 3}};
  statement.reduction_indices = {{"c", 4}};
  statement.factors = {read("X", {ix("n"), ix("c")}), read("W", {ix("k"), ix("c")})};
  return statement;
}

std::vector<TensorDecl> linear_tensors() {
  return {{"X", Role::Input, {2, 4}, nullptr}, {"W", Role::Param, {3, 4}, nullptr}};
}

void expect_error(const std::function<void()>& build, const std::string& fragment) {
  try {
    build();
    FAIL() << "expected an IrError mentioning '" << fragment << "'";
  } catch (const IrError& error) {
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(OpExpr, DerivesOutputShapeAndRoles) {
  auto op = OpExpr::make(linear_tensors(), {linear_statement()});
  EXPECT_EQ(op.output().name, "Y");
  EXPECT_EQ(op.output().role, Role::Output);
  EXPECT_EQ(op.output().shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(op.tensors_with_role(Role::Param).size(), 1u);
}

TEST(OpExpr, MixedRadixOutputSubscriptGivesGroupedChannels) {
  Statement statement = linear_statement();
  statement.output = read("Y", {ix("n"), Affine::index("g", 3) + ix("k")});
  statement.output_indices = {{"n", 2}, {"g", 2}, {"k", 3}};
  statement.factors = {read("X", {ix("n"), Affine::index("g", 4) + ix("c")}),
                       read("W", {Affine::index("g", 3) + ix("k"), ix("c")})};
  auto op = OpExpr::make({{"X", Role::Input, {2, 8}, nullptr}, {"W", Role::Param, {6, 4}, nullptr}}, {statement});
  EXPECT_EQ(op.output().shape, (std::vector<int64_t>{2, 6}));
}

TEST(OpExpr, RejectsOutputSubscriptThatWritesAnElementTwice) {
  Statement statement = linear_statement();
  statement.output = read("Y", {ix("n"), Affine::index("k", 2)});
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "mixed-radix");
}

TEST(OpExpr, RejectsUnboundIndex) {
  Statement statement = linear_statement();
  statement.factors[1] = read("W", {ix("q"), ix("c")});
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "index 'q'");
}

TEST(OpExpr, RejectsRankMismatch) {
  Statement statement = linear_statement();
  statement.factors[1] = read("W", {ix("k")});
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "rank 2");
}

TEST(OpExpr, RejectsUnknownTensor) {
  Statement statement = linear_statement();
  statement.factors[1].tensor = "V";
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "'V'");
}

TEST(OpExpr, RejectsAddendUsingReductionIndex) {
  Statement statement = linear_statement();
  statement.addends = {read("W", {ix("k"), ix("c")})};
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "after the reduction");
}

TEST(OpExpr, RejectsUnreadDeclaredTensor) {
  auto tensors = linear_tensors();
  tensors.push_back({"B", Role::Param, {3}, nullptr});
  expect_error([&] { OpExpr::make(tensors, {linear_statement()}); }, "'B' is never read");
}

TEST(OpExpr, RejectsSecondWriteOfATensor) {
  Statement second = linear_statement();
  second.factors[0] = read("Y", {ix("n"), ix("c")});
  second.reduction_indices = {{"c", 3}};
  second.factors[1] = read("W", {ix("k"), ix("c")});
  expect_error([&] { OpExpr::make(linear_tensors(), {linear_statement(), second}); }, "already exists");
}

TEST(OpExpr, RejectsConstWithoutValues) {
  auto tensors = linear_tensors();
  tensors[1].role = Role::Const;
  expect_error([&] { OpExpr::make(tensors, {linear_statement()}); }, "needs exactly 12 values");
}

TEST(OpExpr, RejectsNonPositiveExtent) {
  Statement statement = linear_statement();
  statement.reduction_indices = {{"c", 0}};
  expect_error([&] { OpExpr::make(linear_tensors(), {statement}); }, "extents must be positive");
}

TEST(OpExpr, RejectsShapesWhoseElementCountOverflows) {
  auto tensors = linear_tensors();
  tensors[0].shape = {2147483647, 2147483647, 2147483647};
  expect_error([&] { OpExpr::make(tensors, {linear_statement()}); }, "more than 2^40 elements");
}

}  // namespace
}  // namespace gos::ir
