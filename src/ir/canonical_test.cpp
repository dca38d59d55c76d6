// Equality is structural up to renaming: what rules rely on to deduplicate candidates.
#include <gtest/gtest.h>

#include <unordered_set>

#include "ir/ir.h"

namespace gos::ir {
namespace {

constexpr const char* kConvExtents = "n<1, k<8, c<4, h<5, w<5, r<3, s<3, in X[1,4,5,5]";

TEST(Canonical, IndexRenamingDoesNotChangeEquality) {
  auto a = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s]", kConvExtents);
  auto b = parse("Y[b,o,y,x] = sum{i,p,q} X[b,i,y+p-1,x+q-1] * W[o,i,p,q]",
                 "b<1, o<8, i<4, y<5, x<5, p<3, q<3, in X[1,4,5,5]");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.hash(), b.hash());
}

TEST(Canonical, TensorRenamingAndFactorOrderDoNotChangeEquality) {
  auto a = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s]", kConvExtents);
  auto b = parse("Out[n,k,h,w] = sum{s,r,c} Kernel[k,c,r,s] * In[n,c,h+r-1,w+s-1]",
                 "n<1, k<8, c<4, h<5, w<5, r<3, s<3, in In[1,4,5,5], param Kernel[8,4,3,3]");
  EXPECT_EQ(a, b);
}

TEST(Canonical, AddendOrderDoesNotChangeEquality) {
  auto a = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] + B[k] + Z[n,k]", "n<2, k<3, c<4, in X[2,4], in Z[2,3]");
  auto b = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] + Z[n,k] + B[k]", "n<2, k<3, c<4, in X[2,4], in Z[2,3]");
  EXPECT_EQ(a, b);
}

TEST(Canonical, DifferentStructureIsNotEqual) {
  auto conv = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s]", kConvExtents);
  auto transposed_weight = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,s,r]", kConvExtents);
  auto strided = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,w+s-1] * W[k,c,r,s]",
                       "n<1, k<8, c<4, h<3, w<5, r<3, s<3, in X[1,4,5,5]");
  auto relu = parse("Y[n,k,h,w] = relu(sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s])", kConvExtents);
  auto maximum = parse("Y[n,k,h,w] = max{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s]", kConvExtents);
  std::unordered_set<OpExpr> distinct{conv, transposed_weight, strided, relu, maximum};
  EXPECT_EQ(distinct.size(), 5u);
}

TEST(Canonical, InputOrderIsPartOfTheSignature) {
  auto a = parse("Y[m,n] = sum{k} X[m,k] * Z[k,n]", "m<2, k<3, n<2, in X[2,3], in Z[3,2]");
  auto b = parse("Y[m,n] = sum{k} X[m,k] * Z[k,n]", "m<2, k<3, n<2, in Z[3,2], in X[2,3]");
  EXPECT_NE(a, b);
}

TEST(Canonical, ConstValuesArePartOfTheOperator) {
  auto a = parse("Y[l] = sum{r} X[l+r] * C[r]", "l<2, r<2, in X[3], const C[2] = {0, 1}");
  auto b = parse("Y[l] = sum{r} X[l+r] * C[r]", "l<2, r<2, in X[3], const C[2] = {1, 0}");
  EXPECT_NE(a, b);
}

TEST(Canonical, IsIdempotentAndEqualToTheOriginal) {
  auto op = parse("T[n,c,h,w] = sum{r,s} X[n,c,2*h+r-1,2*w+s-1] * D[c,r,s]; Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c]",
                  "n<1, k<8, c<4, h<3, w<3, r<3, s<3, in X[1,4,6,6]");
  auto once = canonical(op);
  EXPECT_EQ(print(canonical(once)), print(once));
  EXPECT_EQ(once, op);
  EXPECT_EQ(print(once), op.canonical_key());
  EXPECT_NE(print(once).find("T0[i0,i1,i2,i3]"), std::string::npos) << print(once);
}

TEST(Canonical, PreservesTheOperatorsValue) {
  auto op = parse("Y[n,k] = relu(sum{c} W[k,c] * X[n,c] + B[k])", "n<2, k<3, c<2, in X[2,2]");
  auto renamed = canonical(op);
  TensorMap bindings{{"X", Tensor({2, 2}, {1, -2, 3, 4})},
                     {"W", Tensor({3, 2}, {1, 2, 3, 4, 5, 6})},
                     {"B", Tensor({3}, {1, 1, -100})}};
  TensorMap canonical_bindings{{"X0", bindings.at("X")}};
  // Params are named by first use in the canonical factor order; find W and B by shape.
  for (const auto& tensor : renamed.tensors_with_role(Role::Param)) {
    canonical_bindings[tensor.name] = tensor.shape.size() == 2 ? bindings.at("W") : bindings.at("B");
  }
  EXPECT_EQ(evaluate(op, bindings).data, evaluate(renamed, canonical_bindings).data);
}

TEST(Canonical, TensorNameMapsPairUpEqualOperators) {
  auto a = parse("Y[n,k] = sum{c} X[n,c] * W[k,c] + B[k]", "n<1, k<3, c<4");
  auto b = parse("Out[n,k] = sum{c} Weight[k,c] * In[n,c] + Bias[k]", "n<1, k<3, c<4, in In[1,4]");
  ASSERT_EQ(a, b);
  auto names_a = canonical_tensor_names(a);
  auto names_b = canonical_tensor_names(b);
  EXPECT_EQ(names_a.at("W"), names_b.at("Weight"));
  EXPECT_EQ(names_a.at("B"), names_b.at("Bias"));
  EXPECT_EQ(names_a.at("X"), names_b.at("In"));
  EXPECT_EQ(names_a.at("Y"), "Y");
}

TEST(RenameTensors, RenamesEveryUse) {
  auto op = parse("Y[n,k] = sum{c} X[n,c] * W[k,c]", "n<1, k<2, c<2");
  auto renamed = rename_tensors(op, {{"W", "weight"}, {"Y", "out"}});
  EXPECT_NE(renamed.find_tensor("weight"), nullptr);
  EXPECT_EQ(renamed.output().name, "out");
  EXPECT_EQ(renamed, op);
}

}  // namespace
}  // namespace gos::ir
