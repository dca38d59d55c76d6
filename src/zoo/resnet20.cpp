// ResNet-20 as He et al. (2016, section 4.2) built it for CIFAR-10, here on 28x28 Fashion-MNIST:
// a 3x3 stem of 16 channels, three stages of three basic blocks (16, 32, 64 channels at 28, 14 and
// 7 pixels), global average pooling and a linear classifier. Stages 2 and 3 halve the resolution
// in their first block, whose shortcut is a strided 1x1 convolution with batch norm (option B):
// it keeps every operator a convolution that kernels and exporters know.
#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

std::string basic_block(GraphBuilder& builder, const std::string& prefix, const std::string& x, int64_t width,
                        int64_t stride) {
  std::string y = conv_bn(builder, prefix + ".conv1", x, {.out_channels = width, .stride = stride},
                          ir::Activation::Relu);
  y = conv_bn(builder, prefix + ".conv2", y, {.out_channels = width}, ir::Activation::None);
  std::string shortcut = x;
  if (stride != 1 || builder.shape(x)[1] != width) {
    shortcut = conv_bn(builder, prefix + ".shortcut", x, {.out_channels = width, .kernel = 1, .stride = stride},
                       ir::Activation::None);
  }
  return add(builder, prefix + ".add", y, shortcut, ir::Activation::Relu);
}

}  // namespace

graph::Graph build_resnet20(uint64_t seed) {
  constexpr int64_t kStageWidths[] = {16, 32, 64};
  constexpr int kBlocksPerStage = 3;
  GraphBuilder builder("resnet20", seed);
  std::string x = builder.input("input", {1, 1, 28, 28});
  x = normalize(builder, "normalize", x, kFashionMnistMean, kFashionMnistStd);
  x = conv_bn(builder, "stem", x, {.out_channels = kStageWidths[0]}, ir::Activation::Relu);
  for (int stage = 0; stage < 3; ++stage) {
    for (int block = 0; block < kBlocksPerStage; ++block) {
      const int64_t stride = stage > 0 && block == 0 ? 2 : 1;
      const std::string prefix = "stage" + std::to_string(stage + 1) + ".block" + std::to_string(block + 1);
      x = basic_block(builder, prefix, x, kStageWidths[stage], stride);
    }
  }
  x = global_pool(builder, "pool", x);
  x = linear(builder, "fc", x, kFashionMnistClasses);
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
