// Narrowing an axis: the linked axes found on the operator kinds the zoo uses, and the narrowed
// operator checked against the interpreter on the original with the dropped positions zeroed.
#include <gtest/gtest.h>

#include <random>

#include "ir/ir.h"

namespace gos::ir {
namespace {

Tensor random_tensor(const std::vector<int64_t>& shape, std::mt19937& rng) {
  Tensor tensor(shape);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (auto& value : tensor.data) value = uniform(rng);
  return tensor;
}

TensorMap random_bindings(const OpExpr& op, uint32_t seed) {
  std::mt19937 rng(seed);
  TensorMap bindings;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == Role::Input || tensor.role == Role::Param) bindings[tensor.name] = random_tensor(tensor.shape, rng);
  }
  return bindings;
}

// Zeroes the positions of `axis` that `kept` leaves out.
Tensor zero_dropped(Tensor tensor, int axis, const std::vector<int64_t>& kept) {
  int64_t inner = 1;
  for (size_t d = axis + 1; d < tensor.shape.size(); ++d) inner *= tensor.shape[d];
  const int64_t extent = tensor.shape[axis];
  for (int64_t i = 0; i < tensor.elements(); ++i) {
    const int64_t position = (i / inner) % extent;
    if (std::find(kept.begin(), kept.end(), position) == kept.end()) tensor.data[i] = 0;
  }
  return tensor;
}

// The positions `kept` of `axis` (what narrow_tensors does, written out plainly here).
Tensor kept_slice(const Tensor& tensor, int axis, const std::vector<int64_t>& kept) {
  std::vector<int64_t> shape = tensor.shape;
  shape[axis] = static_cast<int64_t>(kept.size());
  Tensor slice(shape);
  int64_t inner = 1;
  for (size_t d = axis + 1; d < tensor.shape.size(); ++d) inner *= tensor.shape[d];
  const int64_t extent = tensor.shape[axis];
  int64_t out = 0;
  for (int64_t i = 0; i < tensor.elements(); ++i) {
    const int64_t position = (i / inner) % extent;
    if (std::find(kept.begin(), kept.end(), position) != kept.end()) slice.data[out++] = tensor.data[i];
  }
  return slice;
}

void expect_near(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.shape, expected.shape);
  for (int64_t i = 0; i < actual.elements(); ++i) ASSERT_NEAR(actual.data[i], expected.data[i], 1e-4) << "element " << i;
}

const char* kConv =
    "Y[n,k,h,w] = relu(sum{c,r,s} X[n,c,h+r-1,w+s-1] * W[k,c,r,s] + B[k]) "
    "where n<2, k<6, h<5, w<5, c<5, r<3, s<3, in X[2,5,5,5], param W[6,5,3,3], param B[6]";

TEST(Narrow, AConvolutionsInputChannelsNarrowAsIfTheDroppedOnesWereZero) {
  const OpExpr conv = parse(kConv);
  const TensorAxis channels{"X", 1};
  EXPECT_EQ(linked_axes(conv, channels), (std::vector<TensorAxis>{{"W", 1}, {"X", 1}}));
  const std::vector<int64_t> kept{0, 2, 3};
  const TensorMap bindings = random_bindings(conv, 1);
  TensorMap zeroed = bindings;
  zeroed["X"] = zero_dropped(bindings.at("X"), 1, kept);
  const OpExpr narrowed = narrow(conv, channels, kept);
  EXPECT_EQ(narrowed.tensor("W").shape, (std::vector<int64_t>{6, 3, 3, 3}));
  expect_near(evaluate(narrowed, narrow_tensors(conv, channels, kept, bindings)), evaluate(conv, zeroed));
}

TEST(Narrow, AConvolutionsOutputChannelsNarrowToASliceOfItsOutput) {
  const OpExpr conv = parse(kConv);
  const TensorAxis channels{"Y", 1};
  EXPECT_EQ(linked_axes(conv, channels), (std::vector<TensorAxis>{{"B", 0}, {"W", 0}, {"Y", 1}}));
  const std::vector<int64_t> kept{1, 4, 5};
  const TensorMap bindings = random_bindings(conv, 2);
  const OpExpr narrowed = narrow(conv, channels, kept);
  EXPECT_EQ(narrowed.output().shape, (std::vector<int64_t>{2, 3, 5, 5}));
  expect_near(evaluate(narrowed, narrow_tensors(conv, channels, kept, bindings)), kept_slice(evaluate(conv, bindings), 1, kept));
  EXPECT_EQ(linked_axes(conv, {"W", 0}), linked_axes(conv, channels)) << "any member of a link finds the same axes";
}

TEST(Narrow, ADepthwiseConvolutionLinksItsInputAndOutputChannels) {
  const OpExpr depthwise = parse(
      "Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * W[c,0,r,s] + B[c] "
      "where n<1, c<4, h<5, w<5, r<3, s<3, in X[1,4,5,5], param W[4,1,3,3], param B[4]");
  EXPECT_EQ(linked_axes(depthwise, {"Y", 1}), (std::vector<TensorAxis>{{"B", 0}, {"W", 0}, {"X", 1}, {"Y", 1}}));
  const std::vector<int64_t> kept{0, 3};
  const TensorMap bindings = random_bindings(depthwise, 3);
  const OpExpr narrowed = narrow(depthwise, {"X", 1}, kept);
  expect_near(evaluate(narrowed, narrow_tensors(depthwise, {"X", 1}, kept, bindings)), kept_slice(evaluate(depthwise, bindings), 1, kept));
}

// A rank split's inner channels (the intermediate T's axis 1) link the first statement's output
// channels to the second's input channels.
TEST(Narrow, AnIntermediateLinksTheStatementsThatWriteAndReadIt) {
  const OpExpr split = parse(
      "T[n,p,h,w] = sum{c} X[n,c,h,w] * A[p,c,0,0]; Y[n,k,h,w] = sum{p,r,s} T[n,p,h+r-1,w+s-1] * W[k,p,r,s] "
      "where n<1, p<4, c<3, k<5, h<4, w<4, r<3, s<3, param A[4,3,1,1], param W[5,4,3,3]");
  EXPECT_EQ(linked_axes(split, {"A", 0}), (std::vector<TensorAxis>{{"A", 0}, {"T", 1}, {"W", 1}}));
  const std::vector<int64_t> kept{1, 2};
  const TensorMap bindings = random_bindings(split, 4);
  TensorMap zeroed = bindings;
  zeroed["A"] = zero_dropped(bindings.at("A"), 0, kept);  // a dropped inner channel is all zero
  expect_near(evaluate(narrow(split, {"T", 1}, kept), narrow_tensors(split, {"T", 1}, kept, bindings)), evaluate(split, zeroed));
}

TEST(Narrow, WindowsGroupChannelsAndMaxOrMeanReductionsDoNotNarrow) {
  const OpExpr conv = parse(kConv);
  EXPECT_TRUE(linked_axes(conv, {"X", 2}).empty()) << "a window's rows are read through h+r-1";
  EXPECT_TRUE(linked_axes(conv, {"Y", 2}).empty()) << "h also appears in X's window subscript";
  const OpExpr grouped = parse(
      "Y[n,4*q+kg,h,w] = sum{cg} X[n,2*q+cg,h,w] * W[4*q+kg,cg,0,0] where n<1, q<2, kg<4, cg<2, h<3, w<3, in X[1,4,3,3], "
      "param W[8,2,1,1]");
  EXPECT_TRUE(linked_axes(grouped, {"Y", 1}).empty()) << "a group's channels are (group, channel in group)";
  EXPECT_TRUE(linked_axes(grouped, {"W", 1}).empty()) << "cg also appears in X's compound subscript";
  const OpExpr channel_max = parse("Y[n,h] = max{c} X[n,c,h] where n<1, c<4, h<3, in X[1,4,3]");
  EXPECT_TRUE(linked_axes(channel_max, {"X", 1}).empty());
  const OpExpr channel_mean = parse("Y[n,h] = mean{c} X[n,c,h] where n<1, c<4, h<3, in X[1,4,3]");
  EXPECT_TRUE(linked_axes(channel_mean, {"X", 1}).empty());
  const OpExpr pool = parse("Y[n,c,h,w] = max{r,s} X[n,c,2*h+r,2*w+s] where n<1, c<4, h<2, w<2, r<2, s<2, in X[1,4,4,4]");
  EXPECT_EQ(linked_axes(pool, {"X", 1}), (std::vector<TensorAxis>{{"X", 1}, {"Y", 1}})) << "a max over a window keeps channels apart";
}

TEST(Narrow, ABadSelectionIsRefusedSayingWhy) {
  const OpExpr conv = parse(kConv);
  EXPECT_THROW(narrow(conv, {"X", 2}, {0}), IrError);
  EXPECT_THROW(narrow(conv, {"X", 1}, {}), IrError);
  EXPECT_THROW(narrow(conv, {"X", 1}, {2, 1}), IrError);
  EXPECT_THROW(narrow(conv, {"X", 1}, {0, 5}), IrError);
  EXPECT_THROW(narrow(conv, {"Z", 1}, {0}), IrError);
}

}  // namespace
}  // namespace gos::ir
