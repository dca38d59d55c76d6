#pragma once
// Constructors that write the familiar neural-network operators, with all their attributes, as
// OpExprs. Each is exact: the interpreter's output equals the framework operator's (tested against
// libtorch in ops_torch_test.cpp). Tensor names follow one convention so that users and rules can
// find them: data inputs X (and Z for a second one), weight W, bias B, fixed tables C, output Y.
// Shapes are NCHW / NCL; invalid attributes (non-positive sizes, channels not divisible by
// groups, an empty output) throw IrError naming the attribute.
#include "ir/ir.h"

#include <array>
#include <functional>

namespace gos::ir {

struct Conv2dSpec {
  int64_t batch = 1;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  std::array<int64_t, 2> input_size{1, 1};    // H, W
  std::array<int64_t, 2> kernel{1, 1};        // R, S
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 4> padding{0, 0, 0, 0};  // top, left, bottom, right (ONNX: begins, ends)
  std::array<int64_t, 2> dilation{1, 1};
  int64_t groups = 1;
  bool bias = false;
  Activation activation = Activation::None;
  // Group g reads input channels g + G*c (c < C/G) instead of g*C/G + c: the channels shuffled
  // before the grouped convolution (ShuffleNet), so that every group sees every other group.
  bool shuffle = false;
};
// Y[n,k,h,w] = act(sum{c,r,s} X[n, g(k)*C/G + c, sh*h + dh*r - pt, sw*w + dw*s - pl] * W[k,c,r,s] + B[k])
// (with groups the channel subscript is written with split indices so it stays affine; shuffled,
// the input channel is g(k) + G*c).
OpExpr conv2d(const Conv2dSpec& spec);

struct Conv1dSpec {
  int64_t batch = 1;
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t input_length = 1;
  int64_t kernel = 1;
  int64_t stride = 1;
  std::array<int64_t, 2> padding{0, 0};  // begin, end
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = false;
  Activation activation = Activation::None;
  bool shuffle = false;  // as Conv2dSpec's
};
OpExpr conv1d(const Conv1dSpec& spec);

// Depthwise convolution: groups == in_channels, out_channels = in_channels * multiplier.
OpExpr depthwise_conv2d(Conv2dSpec spec, int64_t multiplier = 1);

// ONNX Gemm / torch Linear: Y = act(op(A) * op(B) + C) where A is the input X and B the weight W.
// `trans_a`: X is stored [in, batch]; `trans_b`: W is stored [out, in] (torch Linear's layout).
struct LinearSpec {
  int64_t batch = 1;
  int64_t in_features = 1;
  int64_t out_features = 1;
  bool trans_a = false;
  bool trans_b = true;
  bool bias = false;
  Activation activation = Activation::None;
};
OpExpr linear(const LinearSpec& spec);

// Batched MatMul of two data inputs: Y[b..., m, n] = sum{k} X[b..., m, k] * Z[b..., k, n].
// `batch_dims` may be empty. With `weight_rhs` the right operand is a learned W[k, n] shared
// across the batch (how exporters write Linear on 3-D inputs), or with `weight_transposed` a
// W[n, k] (how Linear layers store it: MLP-Mixer's channel mixing, a transformer's projections),
// optionally plus a bias B[n] per column. With `weight_lhs` the left operand is a learned W[m, k]
// and the data X[b..., k, n] is on the right, optionally plus a bias B[m] per row (MLP-Mixer's
// token mixing: Y[n,u,c] = sum{t} W[u,t] * X[n,t,c] + B[u]).
struct MatMulSpec {
  std::vector<int64_t> batch_dims;
  int64_t m = 1;
  int64_t k = 1;
  int64_t n = 1;
  bool weight_rhs = false;
  bool weight_lhs = false;
  bool weight_transposed = false;  // weight_rhs only
  bool bias = false;               // with a weight only
};
OpExpr matmul(const MatMulSpec& spec);

// Pooling over the trailing 1 or 2 spatial dimensions of NC(H)W inputs.
struct PoolSpec {
  int64_t batch = 1;
  int64_t channels = 1;
  std::vector<int64_t> input_size{1, 1};  // 1 or 2 spatial dims
  std::vector<int64_t> kernel{1, 1};
  // Empty stride, padding and dilation take the ONNX defaults (1, 0, 1 in every dimension), so a
  // 1-D pool needs to set only what it uses.
  std::vector<int64_t> stride;
  std::vector<int64_t> padding;   // begins then ends (ONNX pads order)
  std::vector<int64_t> dilation;  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = false;  // average pooling only
};
OpExpr max_pool(const PoolSpec& spec);
OpExpr average_pool(const PoolSpec& spec);
// Y[n,c] = mean{h,w} X[n,c,h,w] (keep_dims writes Y[n,c,1,1]).
OpExpr global_average_pool(int64_t batch, int64_t channels, std::vector<int64_t> spatial, bool keep_dims = true);
// The mean of X over some of its axes, not the first (the batch): Y[n,c] = mean{t} X[n,t,c] for
// axes {1} of a rank-3 X (keep_dims writes Y[n,1,c]).
OpExpr mean_over_axes(const std::vector<int64_t>& shape, const std::vector<int64_t>& axes, bool keep_dims);

// Elementwise: Y = act(X), and the residual Y = act(X + Z) of two equal shapes.
OpExpr activation(const std::vector<int64_t>& shape, Activation activation);
OpExpr add(const std::vector<int64_t>& shape, Activation activation = Activation::None);

// Inference-mode batch normalisation folded into the preceding convolution or linear operator:
// returns its weight rescaled (W[k,...] * gamma/sqrt(var+eps)) and its bias shifted, and the
// operator, which gains a bias B[k] if it had none. The normalisation applies to the output's
// channel dimension (Y's dimension 1); the weight is the last statement's one param indexed by
// that channel (conv W[k,c,r,s]; linear W[k,c] with trans_b, W[c,k] without; W2[k,p,r,s] of a
// factorised candidate). Throws for an operator with an activation or an addend other than B[k].
struct BatchNormParams {
  std::vector<float> gamma, beta, mean, var;
  float epsilon = 1e-5f;
};
struct FoldedOp {
  OpExpr op;
  TensorMap weights;  // the rescaled weight and B
};
FoldedOp fold_batch_norm(const OpExpr& op, const TensorMap& weights, const BatchNormParams& bn);

// The same operator with its last statement's activation removed (to put something between the
// two, e.g. a batch norm for training).
OpExpr without_activation(const OpExpr& op);

}  // namespace gos::ir
