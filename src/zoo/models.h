#pragma once
// Internal to the zoo: one builder per model (zoo.cpp lists them).
#include "graph/graph.h"

namespace gos::zoo::detail {

// Fashion-MNIST's pixel mean and standard deviation over the training images, which image models
// subtract and divide by in their first node.
inline constexpr double kFashionMnistMean = 0.2860;
inline constexpr double kFashionMnistStd = 0.3530;
inline constexpr int64_t kFashionMnistClasses = 10;

graph::Graph build_resnet20(uint64_t seed);
graph::Graph build_vgg11s(uint64_t seed);
graph::Graph build_mobilenetv2s(uint64_t seed);
graph::Graph build_mixer_s(uint64_t seed);
graph::Graph build_tcn_ppg(uint64_t seed);

}  // namespace gos::zoo::detail
