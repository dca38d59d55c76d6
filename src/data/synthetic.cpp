// A synthetic stand-in for Fashion-MNIST: class k is a grating at angle k*18 degrees, jittered in
// phase and overlaid with noise. Any model that sees orientation separates it within an epoch, so
// tests of training and evaluation run in seconds and do not need the real data.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "data/data.h"
#include "data/random.h"

namespace gos::data {

namespace {

constexpr int64_t kClasses = 10;
constexpr int64_t kSide = 28;
constexpr uint64_t kSyntheticSeed = 0x5717E71Cull;
constexpr double kCyclesPerImage = 3.0;
constexpr double kAmplitude = 0.35;
constexpr double kPhaseJitter = 0.5;  // radians, either way
constexpr double kNoise = 0.15;       // uniform, either way

void draw_image(detail::Random& random, int64_t label, float* pixels) {
  const double angle = std::numbers::pi * static_cast<double>(label) / kClasses;
  const double phase = kPhaseJitter * (2.0 * random.uniform() - 1.0);
  const double frequency = 2.0 * std::numbers::pi * kCyclesPerImage / kSide;
  for (int64_t y = 0; y < kSide; ++y) {
    for (int64_t x = 0; x < kSide; ++x) {
      double along = static_cast<double>(x) * std::cos(angle) + static_cast<double>(y) * std::sin(angle);
      double value = 0.5 + kAmplitude * std::cos(frequency * along + phase) + kNoise * (2.0 * random.uniform() - 1.0);
      pixels[y * kSide + x] = static_cast<float>(std::clamp(value, 0.0, 1.0));
    }
  }
}

}  // namespace

ImageDataset synthetic_images(int64_t count, Split split) {
  if (count <= 0) throw DataError("synthetic data needs a positive image count; got " + std::to_string(count));
  detail::Random random(kSyntheticSeed + static_cast<uint64_t>(split));
  ImageDataset dataset;
  dataset.classes = kClasses;
  dataset.images = ir::Tensor({count, 1, kSide, kSide});
  for (int64_t i = 0; i < count; ++i) {
    int64_t label = static_cast<int64_t>(random.below(kClasses));
    dataset.labels.push_back(label);
    draw_image(random, label, dataset.images.data.data() + i * kSide * kSide);
  }
  return dataset;
}

}  // namespace gos::data
