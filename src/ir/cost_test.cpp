// Cost is read off the expression; these cases are checked by hand.
#include <gtest/gtest.h>

#include "ir/ir.h"

namespace gos::ir {
namespace {

TEST(Cost, ConvolutionCountsOneMacPerPointOfTheIterationSpace) {
  auto op = parse("Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s]",
                  "n<1, k<64, c<32, h<14, w<14, r<3, s<3, in X[1,32,28,28]");
  auto c = cost(op);
  EXPECT_EQ(c.macs, 64 * 14 * 14 * 32 * 9);
  EXPECT_EQ(c.params, 64 * 32 * 9);
  EXPECT_EQ(c.input_bytes, 4 * 32 * 28 * 28);
  EXPECT_EQ(c.weight_bytes, 4 * 64 * 32 * 9);
  EXPECT_EQ(c.output_bytes, 4 * 64 * 14 * 14);
  EXPECT_DOUBLE_EQ(c.arithmetic_intensity(), 2.0 * c.macs / c.bytes());
}

TEST(Cost, DepthwiseSeparableCostsTheSumOfItsStatements) {
  auto op = parse("T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]; Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c]",
                  "n<1, k<64, c<32, h<14, w<14, r<3, s<3, in X[1,32,14,14]");
  auto c = cost(op);
  EXPECT_EQ(c.macs, 32 * 14 * 14 * 9 + 64 * 32 * 14 * 14);
  EXPECT_EQ(c.params, 32 * 9 + 64 * 32);
  EXPECT_EQ(c.intermediate_bytes, 2 * 4 * 32 * 14 * 14);
}

TEST(Cost, FixedTablesAndPoolingCostNoMacs) {
  auto shift = parse("Y[c,l] = sum{r} X[c,l+r-1] * C[c,r]", "c<2, l<4, r<3, in X[2,4], const C[2,3] = {1,0,0, 0,0,1}");
  EXPECT_EQ(cost(shift).macs, 0);
  EXPECT_EQ(cost(shift).params, 0);
  EXPECT_GT(cost(shift).other_ops, 0);
  auto pool = parse("Y[c,h] = max{r} X[c,2*h+r]", "c<3, h<4, r<2");
  EXPECT_EQ(cost(pool).macs, 0);
  EXPECT_EQ(cost(pool).other_ops, 3 * 4 * 2);
}

TEST(Cost, BiasAndActivationAreEpilogueOps) {
  auto op = parse("Y[n,k] = relu(sum{c} X[n,c] * W[k,c] + B[k])", "n<2, k<3, c<4");
  auto c = cost(op);
  EXPECT_EQ(c.macs, 2 * 3 * 4);
  EXPECT_EQ(c.params, 3 * 4 + 3);
  EXPECT_EQ(c.other_ops, 2 * 3 * 2);
}

TEST(Cost, ProductOfTwoInputsCountsMacs) {
  auto op = parse("Y[b,m,n] = sum{k} X[b,m,k] * Z[b,k,n]", "b<2, m<3, k<4, n<5, in X[2,3,4], in Z[2,4,5]");
  EXPECT_EQ(cost(op).macs, 2 * 3 * 4 * 5);
  EXPECT_EQ(cost(op).params, 0);
}

}  // namespace
}  // namespace gos::ir
