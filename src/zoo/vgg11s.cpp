// VGG-11 (Simonyan and Zisserman, 2015, configuration A) slimmed for 28x28 Fashion-MNIST: the same
// eight 3x3 convolutions and five max pools, at widths 16-32-64-64-128-128-128-128 instead of
// 64-...-512, each convolution followed by batch norm and ReLU. The third pool rounds up
// (7 -> 4 pixels) so that the five pools end at 1x1 (28, 14, 7, 4, 2, 1); the classifier is
// 128 -> 128 -> 10.
#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

// A convolution width, or a pool (0), in the order VGG's configuration table lists them.
constexpr int64_t kPool = 0;
constexpr int64_t kLayout[] = {16, kPool, 32, kPool, 64, 64, kPool, 128, 128, kPool, 128, 128, kPool};
constexpr int64_t kClassifierWidth = 128;

}  // namespace

graph::Graph build_vgg11s(uint64_t seed) {
  GraphBuilder builder("vgg11s", seed);
  std::string x = builder.input("input", {1, 1, 28, 28});
  x = normalize(builder, "normalize", x, kFashionMnistMean, kFashionMnistStd);
  int conv_number = 0;
  int pool_number = 0;
  for (int64_t width : kLayout) {
    if (width == kPool) {
      const bool odd_side = builder.shape(x)[2] % 2 == 1;  // round up rather than drop the last row
      x = max_pool(builder, "pool" + std::to_string(++pool_number), x, /*ceil_mode=*/odd_side);
    } else {
      x = conv_bn(builder, "conv" + std::to_string(++conv_number), x, {.out_channels = width}, ir::Activation::Relu);
    }
  }
  x = flatten(builder, "flatten", x);
  x = linear(builder, "fc1", x, kClassifierWidth, ir::Activation::Relu);
  x = linear(builder, "fc2", x, kFashionMnistClasses);
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
