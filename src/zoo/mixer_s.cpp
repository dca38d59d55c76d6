// MLP-Mixer (Tolstikhin et al., 2021), small, for 28x28 Fashion-MNIST: 4x4 patches embedded into
// 64 channels give 7x7 = 49 tokens; four mixer layers each mix tokens (an MLP across the 49
// tokens, 32 hidden) and then channels (an MLP across the 64 channels, 256 hidden), with GELU,
// pre-LayerNorm and residual adds; a final LayerNorm, the mean over tokens and a linear head.
// The token and channel MLPs are written directly as instructions over [N, tokens, channels], so
// no transposes are needed between them.
#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

constexpr int64_t kPatch = 4;
constexpr int64_t kChannels = 64;
constexpr int64_t kTokenHidden = 32;
constexpr int64_t kChannelHidden = 256;
constexpr int kLayers = 4;

std::string extent(std::string_view index, int64_t value) { return std::string(index) + "<" + std::to_string(value); }

// The right-hand side `inner`, wrapped in the activation if there is one.
std::string activated(ir::Activation act, const std::string& inner) {
  return act == ir::Activation::None ? inner : std::string(ir::to_string(act)) + "(" + inner + ")";
}

// Y[n,u,c] = act(sum{t} X[n,t,c] * W[u,t] + B[u]): a linear layer along the token dimension.
std::string token_linear(GraphBuilder& builder, const std::string& name, const std::string& x, int64_t out_tokens,
                         ir::Activation act) {
  const graph::Shape& shape = builder.shape(x);
  const std::string text = "Y[n,u,c] = " + activated(act, "sum{t} X[n,t,c] * W[u,t] + B[u]");
  const std::string extents = extent("n", shape[0]) + ", " + extent("u", out_tokens) + ", " + extent("t", shape[1]) +
                              ", " + extent("c", shape[2]);
  return instructions(builder, name, "MatMul", text, extents, {x});
}

// Y[n,t,k] = act(sum{c} X[n,t,c] * W[k,c] + B[k]): a linear layer along the channel dimension.
std::string channel_linear(GraphBuilder& builder, const std::string& name, const std::string& x,
                           int64_t out_channels, ir::Activation act) {
  const graph::Shape& shape = builder.shape(x);
  const std::string text = "Y[n,t,k] = " + activated(act, "sum{c} X[n,t,c] * W[k,c] + B[k]");
  const std::string extents = extent("n", shape[0]) + ", " + extent("t", shape[1]) + ", " + extent("k", out_channels) +
                              ", " + extent("c", shape[2]);
  return instructions(builder, name, "MatMul", text, extents, {x});
}

// [N,1,28,28] -> Conv 4x4 stride 4 -> [N,64,7,7] -> Reshape [N,64,49] -> Transpose -> [N,49,64].
std::string patch_embedding(GraphBuilder& builder, const std::string& x) {
  const ConvOptions patchify{.out_channels = kChannels, .kernel = kPatch, .stride = kPatch, .padding = 0, .bias = true};
  std::string patches = conv(builder, "patch_embed.conv", x, patchify);
  const graph::Shape& grid = builder.shape(patches);
  const int64_t tokens = grid[2] * grid[3];
  // 0 keeps the batch dimension, so the graph runs at any batch size.
  std::string target = builder.constant("patch_embed.shape", ir::Tensor({3}, {0.0f, float(kChannels), float(tokens)}));
  std::string flat = builder.structural("patch_embed.reshape", "Reshape", {patches, target},
                                        {grid[0], kChannels, tokens});
  return builder.structural("patch_embed.transpose", "Transpose", {flat}, {grid[0], tokens, kChannels}, {},
                            {{"perm", std::vector<int64_t>{0, 2, 1}}});
}

std::string mixer_layer(GraphBuilder& builder, const std::string& prefix, const std::string& x) {
  const int64_t tokens = builder.shape(x)[1];
  std::string y = layer_norm(builder, prefix + ".token_norm", x);
  y = token_linear(builder, prefix + ".token_mlp1", y, kTokenHidden, ir::Activation::Gelu);
  y = token_linear(builder, prefix + ".token_mlp2", y, tokens, ir::Activation::None);
  std::string mixed = add(builder, prefix + ".token_add", x, y);
  y = layer_norm(builder, prefix + ".channel_norm", mixed);
  y = channel_linear(builder, prefix + ".channel_mlp1", y, kChannelHidden, ir::Activation::Gelu);
  y = channel_linear(builder, prefix + ".channel_mlp2", y, kChannels, ir::Activation::None);
  return add(builder, prefix + ".channel_add", mixed, y);
}

}  // namespace

graph::Graph build_mixer_s(uint64_t seed) {
  GraphBuilder builder("mixer-s", seed);
  std::string x = builder.input("input", {1, 1, 28, 28});
  x = normalize(builder, "normalize", x, kFashionMnistMean, kFashionMnistStd);
  x = patch_embedding(builder, x);
  for (int layer = 0; layer < kLayers; ++layer) x = mixer_layer(builder, "mixer" + std::to_string(layer + 1), x);
  x = layer_norm(builder, "norm", x);
  const graph::Shape& shape = builder.shape(x);
  x = instructions(builder, "pool", "ReduceMean", "Y[n,c] = mean{t} X[n,t,c]",
                   extent("n", shape[0]) + ", " + extent("t", shape[1]) + ", " + extent("c", shape[2]), {x});
  x = linear(builder, "head", x, kFashionMnistClasses);
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
