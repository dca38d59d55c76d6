// parse() reads the notation of docs/notation.md: statements, clauses, the CLI's extra clauses,
// default roles and inferred shapes, and says where and why a text is malformed.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "ir/ir.h"

namespace gos::ir {
namespace {

using Shape = std::vector<int64_t>;

constexpr const char* kStridedConv = "Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s]";
constexpr const char* kStridedConvExtents = "n<1, k<64, c<32, h<14, w<14, r<3, s<3";

void expect_tensor(const OpExpr& op, const std::string& name, Role role, const Shape& shape) {
  const TensorDecl* tensor = op.find_tensor(name);
  ASSERT_NE(tensor, nullptr) << "no tensor " << name;
  EXPECT_EQ(tensor->role, role) << name;
  EXPECT_EQ(tensor->shape, shape) << name;
}

std::vector<std::string> index_names(const std::vector<IndexVar>& indices) {
  std::vector<std::string> names;
  for (const auto& index : indices) names.push_back(index.name);
  return names;
}

ParseError parse_error(std::string_view text, std::string_view extra_clauses = {}) {
  try {
    parse(text, extra_clauses);
  } catch (const ParseError& error) {
    return error;
  }
  ADD_FAILURE() << "parsed without error: " << text;
  return ParseError("", 0);
}

// Checks the column both in the exception and at the start of the one-line message.
void expect_parse_error(std::string_view text, std::string_view extra_clauses, size_t column, const std::string& fragment) {
  ParseError error = parse_error(text, extra_clauses);
  std::string message = error.what();
  std::string prefix = (extra_clauses.empty() || message.rfind("in --extents", 0) != 0 ? "column " : "in --extents, column ") +
                       std::to_string(column) + ": ";
  EXPECT_EQ(error.column(), column) << message;
  EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

// ---- Operators ---------------------------------------------------------------------------------

TEST(Parse, ParsesStridedConvolutionWithInferredInputShape) {
  OpExpr op = parse(kStridedConv, kStridedConvExtents);
  expect_tensor(op, "X", Role::Input, {1, 32, 27, 27});
  expect_tensor(op, "W", Role::Param, {64, 32, 3, 3});
  expect_tensor(op, "Y", Role::Output, {1, 64, 14, 14});
  ASSERT_EQ(op.statements().size(), 1u);
  const Statement& statement = op.statements()[0];
  EXPECT_EQ(index_names(statement.output_indices), (std::vector<std::string>{"n", "k", "h", "w"}));
  EXPECT_EQ(index_names(statement.reduction_indices), (std::vector<std::string>{"c", "r", "s"}));
  EXPECT_EQ(statement.reduction, Reduction::Sum);
  EXPECT_EQ(statement.extent_of("c"), 32);
  ASSERT_EQ(statement.factors.size(), 2u);
  EXPECT_EQ(statement.factors[0].subscripts[2], Affine::index("h", 2) + Affine::index("r") - Affine::constant(1));
  EXPECT_TRUE(statement.addends.empty());
  EXPECT_EQ(statement.activation, Activation::None);
}

TEST(Parse, InfersPaddedAndDilatedInputShapesUnderSymmetricPadding) {
  OpExpr padded = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s]",
                        "n<1, k<8, c<4, h<28, w<28, r<3, s<3");
  expect_tensor(padded, "X", Role::Input, {1, 4, 28, 28});
  OpExpr dilated = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+2*r-2,w+2*s-2] * W[k,c,r,s]",
                         "n<1, k<8, c<4, h<28, w<28, r<3, s<3");
  expect_tensor(dilated, "X", Role::Input, {1, 4, 28, 28});
  OpExpr unpadded = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r,w+s] * W[k,c,r,s]", "n<1, k<8, c<4, h<26, w<26, r<3, s<3");
  expect_tensor(unpadded, "X", Role::Input, {1, 4, 28, 28});
}

TEST(Parse, ParsesDepthwiseSeparableConvolutionAsTwoStatements) {
  OpExpr op = parse(
      "T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s];\n"
      "Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c])\n"
      "where n<1, c<32, k<64, h<14, w<14, r<3, s<3");
  expect_tensor(op, "X", Role::Input, {1, 32, 14, 14});
  expect_tensor(op, "D", Role::Param, {32, 3, 3});
  expect_tensor(op, "T", Role::Intermediate, {1, 32, 14, 14});
  expect_tensor(op, "P", Role::Param, {64, 32});
  expect_tensor(op, "Y", Role::Output, {1, 64, 14, 14});
  ASSERT_EQ(op.statements().size(), 2u);
  EXPECT_EQ(index_names(op.statements()[0].output_indices), (std::vector<std::string>{"n", "c", "h", "w"}));
  EXPECT_EQ(index_names(op.statements()[1].reduction_indices), (std::vector<std::string>{"c"}));
  EXPECT_EQ(op.statements()[1].activation, Activation::Relu);
}

TEST(Parse, ParsesGroupedOutputAsMixedRadixSubscript) {
  OpExpr op = parse("Y[n,4*g+k,h,w] = sum{c,r,s} X[n,8*g+c,h+r-1,w+s-1] * W[4*g+k,c,r,s]",
                    "n<1, g<2, k<4, c<8, h<14, w<14, r<3, s<3");
  expect_tensor(op, "X", Role::Input, {1, 16, 14, 14});
  expect_tensor(op, "W", Role::Param, {8, 8, 3, 3});
  expect_tensor(op, "Y", Role::Output, {1, 8, 14, 14});
  EXPECT_EQ(index_names(op.statements()[0].output_indices), (std::vector<std::string>{"n", "g", "k", "h", "w"}));
}

TEST(Parse, AppliesBiasAfterTheReductionAndActivationLast) {
  OpExpr op = parse("Y[n,k] = relu(sum{c} X[n,c]*W[k,c] + B[k]) where n<2, k<10, c<16");
  const Statement& statement = op.statements()[0];
  EXPECT_EQ(statement.activation, Activation::Relu);
  ASSERT_EQ(statement.factors.size(), 2u);
  ASSERT_EQ(statement.addends.size(), 1u);
  EXPECT_EQ(statement.addends[0].tensor, "B");
  expect_tensor(op, "X", Role::Input, {2, 16});
  expect_tensor(op, "W", Role::Param, {10, 16});
  expect_tensor(op, "B", Role::Param, {10});
}

TEST(Parse, ParsesEveryActivationName) {
  for (std::string name : {"relu", "relu6", "sigmoid", "silu", "hardswish", "hardsigmoid", "gelu", "tanh"}) {
    OpExpr op = parse("Y[i] = " + name + "(X[i]) where i<4");
    EXPECT_EQ(op.statements()[0].activation, activation_from_string(name)) << name;
  }
}

TEST(Parse, ParsesMaxPoolAndGlobalAveragePool) {
  OpExpr max_pool = parse("Y[n,c,h,w] = max{r,s} X[n,c,2*h+r,2*w+s]", "n<1, c<16, h<7, w<7, r<2, s<2");
  EXPECT_EQ(max_pool.statements()[0].reduction, Reduction::Max);
  expect_tensor(max_pool, "X", Role::Input, {1, 16, 14, 14});
  OpExpr average = parse("Y[n,c] = mean{h,w} X[n,c,h,w] where n<1, c<16, h<7, w<7");
  EXPECT_EQ(average.statements()[0].reduction, Reduction::Mean);
  expect_tensor(average, "X", Role::Input, {1, 16, 7, 7});
  expect_tensor(average, "Y", Role::Output, {1, 16});
}

TEST(Parse, ParsesConstTableWithRowMajorValues) {
  OpExpr op = parse("Y[n,h,w] = sum{r,s} X[n,h+r-1,w+s-1] * C[r,s] where n<1, h<8, w<8, r<2, s<3, "
                    "const C[2,3] = {0.5, -1, 1e-05, 2.5e+10, -0, 3}");
  const TensorDecl& table = op.tensor("C");
  EXPECT_EQ(table.role, Role::Const);
  EXPECT_EQ(table.shape, (Shape{2, 3}));
  ASSERT_NE(table.values, nullptr);
  EXPECT_EQ(*table.values, (std::vector<float>{0.5f, -1.0f, 1e-05f, 2.5e+10f, -0.0f, 3.0f}));
  EXPECT_TRUE(std::signbit((*table.values)[4]));
  expect_tensor(op, "X", Role::Input, {1, 7, 8});  // h+r-1 with r<2 pads one row on each side
}

TEST(Parse, ParsesInfiniteAndNanConstValues) {
  OpExpr op = parse("Y[i] = X[i] * C[i] where i<3, const C[3] = {inf, -inf, nan}");
  const auto& values = *op.tensor("C").values;
  EXPECT_EQ(values[0], std::numeric_limits<float>::infinity());
  EXPECT_EQ(values[1], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(values[2]));
}

TEST(Parse, TreatsClauseKeywordsAsNamesElsewhere) {
  OpExpr op = parse("Y[in] = sum{param} X[in,param] * const[param] where in<2, param<3");
  expect_tensor(op, "X", Role::Input, {2, 3});
  expect_tensor(op, "const", Role::Param, {3});
}

TEST(Parse, ParsesScalarAccesses) {
  OpExpr op = parse("Y[] = sum{i} X[i] * S[] where i<5");
  expect_tensor(op, "S", Role::Param, {});
  expect_tensor(op, "Y", Role::Output, {});
  EXPECT_TRUE(op.statements()[0].output.subscripts.empty());
}

TEST(Parse, ParsesElementwiseResidualAddWithoutReduction) {
  OpExpr op = parse("Y[n,c] = relu(X[n,c] + Z[n,c]) where n<2, c<3, in X[2,3], in Z[2,3]");
  const Statement& statement = op.statements()[0];
  EXPECT_EQ(statement.reduction, Reduction::Sum);
  EXPECT_TRUE(statement.reduction_indices.empty());
  ASSERT_EQ(statement.factors.size(), 1u);
  ASSERT_EQ(statement.addends.size(), 1u);
  expect_tensor(op, "X", Role::Input, {2, 3});
  expect_tensor(op, "Z", Role::Input, {2, 3});
}

TEST(Parse, AcceptsWhitespaceAnywhereAndNoneAtAll) {
  OpExpr spaced = parse("  Y [ n , k ]\n=\tsum { c } X [ n , c ] * W [ k , c ]  where  n < 1 ,k<2 , c<3 ");
  OpExpr packed = parse("Y[n,k]=sum{c}X[n,c]*W[k,c]where n<1,k<2,c<3");
  EXPECT_EQ(spaced, packed);
}

TEST(Parse, AcceptsNegatedAndReorderedAffineTerms) {
  OpExpr op = parse("Y[i] = X[-1+i*2-i+i+1] * V[2-i] where i<3, in X[5], param V[3]");
  const Statement& statement = op.statements()[0];
  EXPECT_EQ(statement.factors[0].subscripts[0], Affine::index("i", 2));
  EXPECT_EQ(statement.factors[1].subscripts[0], Affine::constant(2) - Affine::index("i"));
  EXPECT_EQ(index_names(statement.output_indices), (std::vector<std::string>{"i"}));
}

// ---- Roles, shapes and clauses -------------------------------------------------------------------

TEST(Parse, MakesFirstUndeclaredTensorTheInputAndOthersParams) {
  OpExpr op = parse("Y[n,k] = sum{c} W[k,c] * X[n,c] + B[k] where n<1, k<2, c<3");
  expect_tensor(op, "W", Role::Input, {2, 3});
  expect_tensor(op, "X", Role::Param, {1, 3});
  expect_tensor(op, "B", Role::Param, {2});
}

TEST(Parse, DeclaredInputsAreTheWholeSignature) {
  OpExpr op = parse("Y[n,k] = sum{c} W[k,c] * X[n,c] where n<1, k<2, c<3, in X[1,3]");
  expect_tensor(op, "X", Role::Input, {1, 3});
  expect_tensor(op, "W", Role::Param, {2, 3});
  ASSERT_EQ(op.tensors_with_role(Role::Input).size(), 1u);
}

TEST(Parse, DeclaredShapesOverrideInferredOnes) {
  OpExpr op = parse(kStridedConv, std::string(kStridedConvExtents) + ", in X[1,32,28,28]");
  expect_tensor(op, "X", Role::Input, {1, 32, 28, 28});
  expect_tensor(op, "Y", Role::Output, {1, 64, 14, 14});
}

TEST(Parse, KeepsInputsInClauseOrder) {
  OpExpr op = parse("Y[i] = X[i] + Z[i] where i<4, in Z[4], in X[4]");
  auto inputs = op.tensors_with_role(Role::Input);
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0].name, "Z");
  EXPECT_EQ(inputs[1].name, "X");
}

TEST(Parse, ExtraClausesFormOrExtendTheWhereClause) {
  OpExpr all_extra = parse("Y[n,k] = sum{c} X[n,c] * W[k,c]", "n<1, k<2, c<3");
  OpExpr split = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] where n<1", "k<2, c<3");
  OpExpr all_in_text = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] where n<1, k<2, c<3");
  EXPECT_EQ(all_extra, all_in_text);
  EXPECT_EQ(split, all_in_text);
  EXPECT_EQ(parse("Y[n,k] = sum{c} X[n,c] * W[k,c] where n<1, k<2, c<3", "  "), all_in_text);
}

TEST(Parse, AcceptsRepeatedIdenticalClauses) {
  OpExpr op = parse("Y[i] = X[i] where i<4, in X[4], i<4", "i<4, in X[4]");
  expect_tensor(op, "X", Role::Input, {4});
}

TEST(Parse, AcceptsTrailingSemicolon) {
  EXPECT_EQ(parse("Y[i] = X[i]; where i<4"), parse("Y[i] = X[i] where i<4"));
  EXPECT_EQ(parse("Y[i] = X[i];", "i<4"), parse("Y[i] = X[i] where i<4"));
}

TEST(Parse, ExtentsApplyToTheIndexNameInEveryStatement) {
  OpExpr op = parse("T[i] = X[i]; Y[i] = sigmoid(T[i]) where i<6");
  EXPECT_EQ(op.statements()[0].extent_of("i"), 6);
  EXPECT_EQ(op.statements()[1].extent_of("i"), 6);
}

// ---- Errors ----------------------------------------------------------------------------------------

TEST(Parse, ReportsEmptyInput) {
  expect_parse_error("", {}, 1, "expected a statement like Y[i] = X[i], found the end of the text");
  expect_parse_error("   ", {}, 4, "expected a statement");
}

TEST(Parse, ReportsUnclosedSubscripts) {
  expect_parse_error("Y[n,k] = sum{c} X[n,c] * W[k,c", {}, 31, "expected ',' or ']' to close the subscripts of W, found the end of the text");
  expect_parse_error("Y[n,k] = sum{c} X[n c] * W[k,c]", {}, 21, "expected ',' or ']' to close the subscripts of X, found 'c'");
}

TEST(Parse, ReportsMissingEquals) {
  expect_parse_error("Y[i] X[i] where i<3", {}, 6, "expected '=' after the output Y[...], found 'X'");
}

TEST(Parse, ReportsUnknownActivationAndReduction) {
  expect_parse_error("Y[i] = foo(X[i]) where i<3", {}, 8, "unknown activation 'foo'; expected one of relu, relu6");
  expect_parse_error("Y[i] = avg{j} X[i,j] where i<3, j<2", {}, 8, "unknown reduction 'avg'; expected one of sum, max, mean");
}

TEST(Parse, ReportsMisplacedActivationAndAddends) {
  expect_parse_error("Y[i] = relu(sigmoid(X[i])) where i<3", {}, 13, "activation sigmoid(...) must enclose the whole");
  expect_parse_error("Y[i] = relu(X[i]) + B[i] where i<3", {}, 19, "addends go inside its parentheses");
  expect_parse_error("Y[i] = X[i] + B[i] * Z[i] where i<3", {}, 20, "products come before the first '+'");
  expect_parse_error("Y[i] = X[i] * sum{j} Z[i,j] where i<3, j<2", {}, 15, "reduction sum{...} must start the right-hand side");
}

TEST(Parse, ReportsBadNumbers) {
  expect_parse_error("Y[i] = X[2h] where i<3", {}, 10, "found '2h', which is not an integer");
  expect_parse_error("Y[i] = X[i] where i<99999999999", {}, 21, "integer 99999999999 is too large");
  expect_parse_error("Y[i] = X[i] where i<0", {}, 21, "extent of i must be positive");
  expect_parse_error("Y[i] = X[i]*C[i] where i<2, const C[2] = {1, 2.5.1}", {}, 46, "found '2.5.1'");
  expect_parse_error("Y[i] = X[i]*C[i] where i<2, const C[2] = {1, 1e99}", {}, 46, "out of range for a float");
}

TEST(Parse, ReportsTrailingJunk) {
  expect_parse_error("Y[i] = X[i] where i<3 junk", {}, 23, "expected ',' between clauses or the end, found 'junk'");
  expect_parse_error("Y[i] = X[i] ) where i<3", {}, 13, "expected ';', 'where' or the end after the statement, found ')'");
  expect_parse_error("Y[i] = X[i] # where i<3", {}, 13, "unexpected character '#'");
}

TEST(Parse, ReportsMalformedClauses) {
  expect_parse_error("Y[i] = X[i] where i=3", {}, 20, "expected '<' after i (an extent clause looks like i<4)");
  expect_parse_error("Y[i] = X[i] where", {}, 18, "expected a clause like n<4");
  expect_parse_error("Y[i] = X[i] where i<3, in X[3", {}, 30, "expected ',' or ']' to close the shape of X");
  expect_parse_error("Y[i] = X[i] where i<3, in X[0]", {}, 29, "dimension 1 of X must be positive");
}

TEST(Parse, ReportsIndexWithoutExtent) {
  expect_parse_error(kStridedConv, "n<1, k<64, c<32, h<14, w<14, r<3", 22, "index s has no extent; add s<N to the where clause or --extents");
}

TEST(Parse, ReportsIndexThatIsNeitherOutputNorReduced) {
  expect_parse_error("Y[n] = X[n,c] where n<1, c<2", {}, 12, "index c is not in the subscripts of Y; reduce over it, e.g. sum{c}");
  expect_parse_error("Y[n] = sum{c} X[n,c] * W[d] where n<1, c<2, d<2", {}, 26, "index d is neither in the subscripts of Y nor reduced by sum{...}");
  expect_parse_error("Y[n] = sum{n} X[n] where n<1", {}, 12, "cannot also be reduced");
  expect_parse_error("Y[n] = sum{c,c} X[n,c] where n<1, c<2", {}, 14, "listed twice");
}

TEST(Parse, ReportsErrorsInExtraClausesRelativeToThem) {
  ParseError error = parse_error("Y[i] = X[i]", "i<3, j<");
  EXPECT_EQ(error.column(), 8u);
  EXPECT_EQ(std::string(error.what()), "in --extents, column 8: expected an integer extent after 'j<', found the end of --extents");
  expect_parse_error("Y[i] = X[i] where i<3", "i<4", 1, "conflicting extents for index i: i<4 here but i<3 at column 19");
  expect_parse_error("Y[i] = X[i] where in X[3]", "i<3, in X[4]", 9, "conflicting declarations of X here and at column 22");
}

TEST(Parse, ReportsConstValueCountMismatch) {
  expect_parse_error("Y[i] = X[i]*C[i] where i<2, const C[2] = {1, 2, 3}", {}, 42, "const C has 2 elements but 3 values are given");
}

TEST(Parse, ReportsInconsistentRanksOfAnUndeclaredTensor) {
  expect_parse_error("Y[i] = X[i] * X[i,i] where i<2", {}, 15, "X is read with 2 subscripts here but 1 at column 8");
}

TEST(Parse, ReportsDeclaredWrittenTensor) {
  expect_parse_error("Y[i] = X[i] where i<2, in Y[2]", {}, 27, "Y is written by a statement, so it must not be declared");
}

TEST(Parse, ReportsUninferableShape) {
  expect_parse_error("Y[i] = X[i-5] where i<2", {}, 8, "cannot infer dimension 1 of X");
}

TEST(Parse, LetsOperatorValidationErrorsThrough) {
  // Well-formed text, but writes Y[0] twice: OpExpr::make's check, reported as an IrError.
  EXPECT_THROW(parse("Y[2*i] = X[i] where i<3"), IrError);
  EXPECT_THROW(parse("Y[i] = X[i] where i<3, param W[3]"), IrError);  // W is never read
}

// Mutated and truncated valid texts must either parse or be rejected with an IrError: never
// crash, hang or throw anything else.
TEST(Parse, NeverCrashesOnMutatedOrTruncatedText) {
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {kStridedConv, kStridedConvExtents},
      {"T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]; Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c] + B[k]) "
       "where n<1, c<4, k<6, h<5, w<5, r<3, s<3",
       ""},
      {"Y[n,3*g+k] = max{c} X[n,2*g+c] * C[c] where n<1, g<2, k<3, c<2, const C[2] = {0.5, -1e-05}", ""},
      {"Y[] = mean{i} X[i] + S[] where i<4, in X[4], param S[]", "i<4"},
  };
  const std::string alphabet = "[](){},;=+-*<0123456789.e-_ abcnkhwXYW\t#";
  std::mt19937 random(20240601);
  int parsed = 0;
  for (const auto& [text, extents] : seeds) {
    for (int trial = 0; trial < 1500; ++trial) {
      std::string mutated_text = text;
      std::string mutated_extents = extents;
      std::string& target = (trial % 5 == 4 && !mutated_extents.empty()) ? mutated_extents : mutated_text;
      int edits = 1 + static_cast<int>(random() % 3);
      for (int edit = 0; edit < edits && !target.empty(); ++edit) {
        size_t position = random() % target.size();
        switch (random() % 4) {
          case 0: target.erase(position, 1); break;
          case 1: target.insert(position, 1, alphabet[random() % alphabet.size()]); break;
          case 2: target[position] = alphabet[random() % alphabet.size()]; break;
          case 3: target.resize(position); break;
        }
      }
      try {
        parse(mutated_text, mutated_extents);
        ++parsed;
      } catch (const IrError&) {
      } catch (const std::exception& error) {
        ADD_FAILURE() << "non-IR exception " << error.what() << " for: " << mutated_text << " | " << mutated_extents;
      }
    }
  }
  EXPECT_GT(parsed, 0);  // some mutations (e.g. renamed tensors) stay valid
}

// ---- Round trips with the printer ---------------------------------------------------------------

TEST(Parse, PrintedOperatorsParseBackToEqualOperatorsAndText) {
  const std::vector<std::pair<std::string, std::string>> examples = {
      {kStridedConv, kStridedConvExtents},
      {"T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]; Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c])",
       "n<1, c<32, k<64, h<14, w<14, r<3, s<3"},
      {"Y[n,4*g+k,h,w] = sum{c,r,s} X[n,8*g+c,h+r-1,w+s-1] * W[4*g+k,c,r,s]", "n<1, g<2, k<4, c<8, h<14, w<14, r<3, s<3"},
      {"Y[n,k] = relu(sum{c} X[n,c]*W[k,c] + B[k])", "n<2, k<10, c<16"},
      {"Y[n,c,h,w] = max{r,s} X[n,c,2*h+r-1,2*w+s-1]", "n<1, c<16, h<7, w<7, r<3, s<3"},
      {"Y[n,c] = mean{h,w} X[n,c,h,w]", "n<1, c<16, h<7, w<7"},
      {"Y[n,c] = X[n,c] + Z[n,c] where in X[2,3], in Z[2,3]", "n<2, c<3"},
      {"Y[] = sum{i} X[i] * S[]", "i<5"},
      {"Y[n,h,w] = sum{r,s} X[n,h+r-1,w+s-1] * C[r,s] where const C[2,2] = {0.1, -0.0, 1e-45, 3.4028235e+38}",
       "n<1, h<8, w<8, r<2, s<2"},
      {"Y[i] = X[2-i] * V[-i+2]", "i<3"},
  };
  for (const auto& [text, extents] : examples) {
    OpExpr op = parse(text, extents);
    std::string printed = print(op);
    OpExpr reparsed = parse(printed);
    EXPECT_EQ(reparsed, op) << text << "\nprinted: " << printed;
    EXPECT_EQ(print(reparsed), printed) << text;
    EXPECT_EQ(reparsed.tensors(), op.tensors()) << printed;
  }
}

TEST(Parse, ConstValuesSurviveThePrinterExactly) {
  std::vector<float> values = {0.1f, 1.0f / 3.0f, -2.5e-7f, std::numeric_limits<float>::denorm_min(),
                               std::numeric_limits<float>::max(), -0.0f};
  TensorDecl table{"C", Role::Const, {6}, std::make_shared<const std::vector<float>>(values)};
  Statement statement;
  statement.output = {"Y", {Affine::index("i")}};
  statement.output_indices = {{"i", 6}};
  statement.factors = {{"X", {Affine::index("i")}}, {"C", {Affine::index("i")}}};
  OpExpr built = OpExpr::make({{"X", Role::Input, {6}, nullptr}, table}, {statement});
  OpExpr reparsed = parse(print(built));
  ASSERT_NE(reparsed.tensor("C").values, nullptr);
  const auto& parsed_values = *reparsed.tensor("C").values;
  ASSERT_EQ(parsed_values.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(parsed_values[i]), std::bit_cast<uint32_t>(values[i])) << i;
  }
}

}  // namespace
}  // namespace gos::ir
