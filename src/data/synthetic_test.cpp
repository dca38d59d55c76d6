// The synthetic set: deterministic, different per split, in the input convention, and separable
// (a nearest-class-mean classifier fitted on the train split labels the test split).
#include <gtest/gtest.h>

#include <algorithm>

#include "data/data.h"

namespace gos::data {
namespace {

constexpr int64_t kPixels = 28 * 28;

TEST(Synthetic, IsDeterministicAndDiffersBetweenSplits) {
  ImageDataset first = synthetic_images(64, Split::Train);
  ImageDataset second = synthetic_images(64, Split::Train);
  ImageDataset test = synthetic_images(64, Split::Test);
  EXPECT_EQ(first.images.data, second.images.data);
  EXPECT_EQ(first.labels, second.labels);
  EXPECT_NE(first.images.data, test.images.data);
}

TEST(Synthetic, FollowsTheInputConvention) {
  ImageDataset dataset = synthetic_images(200, Split::Validation);
  EXPECT_EQ(dataset.images.shape, (std::vector<int64_t>{200, 1, 28, 28}));
  EXPECT_EQ(dataset.classes, 10);
  auto [lowest, highest] = std::minmax_element(dataset.images.data.begin(), dataset.images.data.end());
  EXPECT_GE(*lowest, 0.0f);
  EXPECT_LE(*highest, 1.0f);
  std::vector<int> histogram(10, 0);
  for (int64_t label : dataset.labels) ++histogram.at(label);
  for (int count : histogram) EXPECT_GT(count, 5);
}

std::vector<std::vector<double>> class_means(const ImageDataset& dataset) {
  std::vector<std::vector<double>> means(dataset.classes, std::vector<double>(kPixels, 0.0));
  std::vector<int64_t> counts(dataset.classes, 0);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    ++counts[dataset.labels[i]];
    for (int64_t p = 0; p < kPixels; ++p) means[dataset.labels[i]][p] += dataset.images.data[i * kPixels + p];
  }
  for (int64_t c = 0; c < dataset.classes; ++c) {
    for (double& value : means[c]) value /= static_cast<double>(counts[c]);
  }
  return means;
}

int64_t nearest_mean(const std::vector<std::vector<double>>& means, const float* pixels) {
  std::vector<double> distances;
  for (const auto& mean : means) {
    double distance = 0;
    for (int64_t p = 0; p < kPixels; ++p) distance += (pixels[p] - mean[p]) * (pixels[p] - mean[p]);
    distances.push_back(distance);
  }
  return std::min_element(distances.begin(), distances.end()) - distances.begin();
}

TEST(Synthetic, IsSeparable) {
  auto means = class_means(synthetic_images(500, Split::Train));
  ImageDataset test = synthetic_images(200, Split::Test);
  int64_t correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    correct += nearest_mean(means, test.images.data.data() + i * kPixels) == test.labels[i];
  }
  EXPECT_GE(correct, 196) << "nearest class mean labels " << correct << " of 200";
}

TEST(Synthetic, RejectsAnEmptySet) { EXPECT_THROW(synthetic_images(0, Split::Train), DataError); }

}  // namespace
}  // namespace gos::data
