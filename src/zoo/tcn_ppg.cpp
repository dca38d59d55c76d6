// A placeholder of the pulse-rate model's shape: 4 channels x 512 samples (e.g. three PPG
// wavelengths and an accelerometer magnitude over 8 s at 64 Hz) regressed to one number. Six
// dilated 3-tap Conv1d layers of 32 channels (dilations 1 to 32: a receptive field of 127
// samples), each with batch norm and ReLU, then global average pooling and a linear output.
#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

constexpr int64_t kInputChannels = 4;
constexpr int64_t kSamples = 512;
constexpr int64_t kChannels = 32;
constexpr int64_t kDilations[] = {1, 2, 4, 8, 16, 32};

}  // namespace

graph::Graph build_tcn_ppg(uint64_t seed) {
  GraphBuilder builder("tcn-ppg", seed);
  std::string x = builder.input("input", {1, kInputChannels, kSamples});
  int layer = 0;
  for (int64_t dilation : kDilations) {
    x = conv_bn(builder, "tcn" + std::to_string(++layer), x, {.out_channels = kChannels, .dilation = dilation},
                ir::Activation::Relu);
  }
  x = global_pool(builder, "pool", x);
  x = linear(builder, "head", x, 1);
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
