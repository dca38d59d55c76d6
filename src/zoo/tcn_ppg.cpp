// The pulse-rate TCN (in the spirit of TimePPG / PIT): a window of 4 channels x 512 samples (wrist
// PPG and accelerometer x, y, z over 8 s at 64 Hz, each normalised per window: data/data.h)
// regressed to the heart rate in BPM. Six dilated 3-tap Conv1d layers of 32 channels (dilations
// 1 to 32: a receptive field of 127 samples), each with batch norm and ReLU, then global average
// pooling, a linear output, and a fixed affine map to BPM (the output scale is part of the graph,
// as the image models' input normalisation is: the linear layer learns a standardised rate).
#include "zoo/builder.h"
#include "zoo/models.h"

namespace gos::zoo::detail {

namespace {

constexpr int64_t kInputChannels = 4;
constexpr int64_t kSamples = 512;
constexpr int64_t kChannels = 32;
constexpr int64_t kDilations[] = {1, 2, 4, 8, 16, 32};
// Heart rates over daily activities, roughly: 90 +- 30 BPM.
constexpr const char* kBpmScale = "30";
constexpr const char* kBpmCentre = "90";

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
  x = instructions(builder, "bpm", "Denormalize", "Y[n,k] = X[n,k] * C0[] + C1[]",
                   std::string("n<1, k<1, const C0[] = {") + kBpmScale + "}, const C1[] = {" + kBpmCentre + "}", {x});
  return builder.finish(x);
}

}  // namespace gos::zoo::detail
