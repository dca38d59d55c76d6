// MobileNetV2 (Sandler et al., 2018) at width 0.5 for 28x28 Fashion-MNIST: inverted residual
// blocks (1x1 expansion by 6, 3x3 depthwise, linear 1x1 projection, a residual add when the shape
// is kept), batch norm after every convolution and ReLU6. Widths follow torchvision's rule
// (channels * 0.5 rounded to a multiple of 8; the last 1x1 keeps 1280). As CIFAR versions do, the
// stem and the second stage keep stride 1, so the resolutions are 28, 28, 28, 14, 7, 7, 4, 4.
#include <algorithm>

#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

constexpr double kWidth = 0.5;
constexpr int64_t kStemChannels = 32;
constexpr int64_t kLastChannels = 1280;

struct Stage {
  int64_t expansion;
  int64_t channels;  // at width 1
  int blocks;
  int64_t stride;    // of the first block
};
// The paper's table 2, with stage 2's stride 2 turned into 1 for the small input.
constexpr Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

// torchvision's _make_divisible: the nearest multiple of 8, never below 90% of the scaled width.
int64_t scaled(int64_t channels, double width = kWidth) {
  const double target = static_cast<double>(channels) * width;
  int64_t rounded = std::max<int64_t>(8, static_cast<int64_t>(target + 4) / 8 * 8);
  return rounded < 0.9 * target ? rounded + 8 : rounded;
}

std::string inverted_residual(GraphBuilder& builder, const std::string& prefix, const std::string& x,
                              int64_t out_channels, int64_t stride, int64_t expansion) {
  const int64_t in_channels = builder.shape(x)[1];
  const int64_t hidden = in_channels * expansion;
  std::string y = x;
  if (expansion != 1) {
    y = conv_bn(builder, prefix + ".expand", y, {.out_channels = hidden, .kernel = 1}, ir::Activation::Relu6);
  }
  y = conv_bn(builder, prefix + ".depthwise", y, {.out_channels = hidden, .stride = stride, .groups = hidden},
              ir::Activation::Relu6);
  y = conv_bn(builder, prefix + ".project", y, {.out_channels = out_channels, .kernel = 1}, ir::Activation::None);
  if (stride == 1 && in_channels == out_channels) y = add(builder, prefix + ".add", y, x);
  return y;
}

}  // namespace

graph::Graph build_mobilenetv2s(uint64_t seed) {
  GraphBuilder builder("mobilenetv2s", seed);
  std::string x = builder.input("input", {1, 1, 28, 28});
  x = normalize(builder, "normalize", x, kFashionMnistMean, kFashionMnistStd);
  x = conv_bn(builder, "stem", x, {.out_channels = scaled(kStemChannels)}, ir::Activation::Relu6);
  int block_number = 0;
  for (const Stage& stage : kStages) {
    for (int block = 0; block < stage.blocks; ++block) {
      x = inverted_residual(builder, "block" + std::to_string(++block_number), x, scaled(stage.channels),
                            block == 0 ? stage.stride : 1, stage.expansion);
    }
  }
  x = conv_bn(builder, "last", x, {.out_channels = scaled(kLastChannels, std::max(1.0, kWidth)), .kernel = 1},
              ir::Activation::Relu6);
  x = global_pool(builder, "pool", x);
  x = linear(builder, "classifier", x, kFashionMnistClasses);
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
