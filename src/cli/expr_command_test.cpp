// `gos expr` as a user runs it: the binary, its output and its exit codes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_binary.h"

namespace gos::cli {
namespace {

using testing::run_gos;

TEST(ExprCommand, PrintsCanonicalFormAndCostAsJson) {
  auto run = run_gos({"expr", "Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s]", "--extents",
                      "n<1, k<64, c<32, h<14, w<14, r<3, s<3", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto json = nlohmann::json::parse(run.out);
  EXPECT_EQ(json.at("macs"), 64 * 14 * 14 * 32 * 9);
  EXPECT_EQ(json.at("params"), 64 * 32 * 9);
  EXPECT_GT(json.at("bytes").get<int64_t>(), 0);
  EXPECT_EQ(json.at("canonical").get<std::string>().rfind("Y[i0,i1,i2,i3] = sum{i4,i5,i6} X0[", 0), 0u) << json.at("canonical");
  EXPECT_TRUE(run.err.empty()) << run.err;
}

TEST(ExprCommand, RenamedExpressionsHaveTheSameCanonicalForm) {
  auto a = run_gos({"expr", "Y[n,k] = sum{c} X[n,c] * W[k,c]", "--extents", "n<1, k<8, c<4", "--json"});
  auto b = run_gos({"expr", "Out[b,o] = sum{i} Wt[o,i] * In[b,i]", "--extents", "b<1, o<8, i<4, in In[1,4]", "--json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(a.out).at("canonical"), nlohmann::json::parse(b.out).at("canonical"));
}

TEST(ExprCommand, HumanOutputGroupsThousands) {
  auto run = run_gos({"expr", "Y[n,k] = sum{c} X[n,c] * W[k,c]", "--extents", "n<1, k<1000, c<1000"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("MACs        1,000,000"), std::string::npos) << run.out;
}

TEST(ExprCommand, ParseErrorExitsTwoWithOneLineNamingTheColumn) {
  auto run = run_gos({"expr", "Y[n,k] = sum{c} X[n,c * W[k,c]", "--extents", "n<1, k<8, c<4"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(run.out.empty());
  EXPECT_NE(run.err.find("column"), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST(ExprCommand, MissingExtentIsABadInputError) {
  auto run = run_gos({"expr", "Y[n,k] = sum{c} X[n,c] * W[k,c]", "--extents", "n<1, k<8"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("index c"), std::string::npos) << run.err;
}

TEST(ExprCommand, UnknownOptionIsAUsageError) {
  auto run = run_gos({"expr", "Y[n] = X[n]", "--frobnicate"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("gos --help"), std::string::npos) << run.err;
}

TEST(ExprCommand, HelpExitsZero) {
  auto run = run_gos({"expr", "--help"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find("--extents"), std::string::npos);
}

}  // namespace
}  // namespace gos::cli
