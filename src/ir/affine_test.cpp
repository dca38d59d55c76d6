#include <gtest/gtest.h>

#include "ir/ir.h"

namespace gos::ir {
namespace {

TEST(Affine, NormalisesTermOrderAndDropsZeroCoefficients) {
  Affine a({{"r", 1}, {"h", 2}, {"w", 0}}, -1);
  Affine b = Affine::index("h", 2) + Affine::index("r") - Affine::constant(1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.terms().size(), 2u);
  EXPECT_EQ(a.coefficient("w"), 0);
}

TEST(Affine, MergesRepeatedIndices) {
  Affine a = Affine::index("h") + Affine::index("h", 3) - Affine::index("h", 4);
  EXPECT_TRUE(a.terms().empty());
  EXPECT_EQ(a, Affine::constant(0));
}

TEST(Affine, RecognisesPlainIndexOnly) {
  EXPECT_EQ(Affine::index("k").plain_index(), "k");
  EXPECT_FALSE(Affine::index("k", 2).plain_index());
  EXPECT_FALSE((Affine::index("k") + Affine::constant(1)).plain_index());
}

TEST(Affine, PrintsLargestCoefficientFirst) {
  EXPECT_EQ(print(Affine({{"r", 1}, {"h", 2}}, -1)), "2*h+r-1");
  EXPECT_EQ(print(Affine::index("c", -1)), "-c");
  EXPECT_EQ(print(Affine::constant(0)), "0");
  EXPECT_EQ(print(Affine::index("g", 8) + Affine::index("c") + Affine::constant(3)), "8*g+c+3");
}

TEST(Affine, RenameKeepsNormalForm) {
  Affine a = Affine::index("a", 2) + Affine::index("b");
  Affine renamed = a.rename({{"a", "z"}});
  EXPECT_EQ(renamed, Affine::index("b") + Affine::index("z", 2));
}

}  // namespace
}  // namespace gos::ir
