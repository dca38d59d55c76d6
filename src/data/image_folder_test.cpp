// images:DIR: folders of PNG and JPEG images written here with stb_image_write, loaded back.
#include <gtest/gtest.h>
#include <stb_image_write.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "data/data.h"
#include "util/scratch_folder.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;

// Pixel (x, y, channel) of an image written to disk.
using Painter = std::function<uint8_t(int x, int y, int channel)>;

void write_image(const fs::path& path, int width, int height, int channels, const Painter& paint) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width * height * channels));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) pixels[(y * width + x) * channels + c] = paint(x, y, c);
    }
  }
  fs::create_directories(path.parent_path());
  const std::string name = path.string();
  const std::string extension = path.extension().string();
  const int written = extension == ".png" || extension == ".PNG"
                          ? stbi_write_png(name.c_str(), width, height, channels, pixels.data(), width * channels)
                          : stbi_write_jpg(name.c_str(), width, height, channels, pixels.data(), 100);
  ASSERT_NE(written, 0) << name;
}

Painter solid(std::vector<uint8_t> colour) {
  return [colour](int, int, int c) { return colour[c]; };
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

InputFormat format_of(int64_t channels, int64_t height, int64_t width, int64_t resize = 0, std::string cache_dir = "") {
  InputFormat format;
  format.shape = {1, channels, height, width};
  format.resize = resize;
  format.cache_dir = std::move(cache_dir);
  return format;
}

// Every sample, as the rest of gos reads them.
ir::Tensor all(const ImageDataset& dataset) { return dataset.rows(0, dataset.size()); }

float at(const ImageDataset& dataset, int64_t n, int64_t c, int64_t y, int64_t x) {
  const ir::Tensor images = dataset.rows(n, n + 1);
  const auto& shape = images.shape;
  return images.data.at((c * shape[2] + y) * shape[3] + x);
}

float byte(int value) { return static_cast<float>(value) / 255.0f; }

// Every pixel of image n, channel c, is `expected`.
void expect_solid(const ImageDataset& dataset, int64_t n, int64_t c, float expected) {
  const auto shape = dataset.sample_shape();
  for (int64_t y = 0; y < shape[2]; ++y) {
    for (int64_t x = 0; x < shape[3]; ++x) {
      ASSERT_EQ(at(dataset, n, c, y, x), expected) << "image " << n << " channel " << c << " at " << x << "," << y;
    }
  }
}

std::string error_of(const std::function<void()>& load) {
  try {
    load();
  } catch (const DataError& error) {
    return error.what();
  }
  ADD_FAILURE() << "no DataError";
  return {};
}

class ImageFolder : public ::testing::Test {
 protected:
  util::ScratchFolder scratch{"gos-image-folder-test"};
  fs::path root() const { return scratch.path() / "images"; }
};

// ---- Layout and classes ------------------------------------------------------------------------

TEST_F(ImageFolder, ClassesAreTheSortedFolderNamesAndOtherFilesAreIgnored) {
  // Byte order: upper case before lower case.
  write_image(root() / "b" / "2.png", 8, 8, 1, solid({20}));
  write_image(root() / "b" / "1.PNG", 8, 8, 1, solid({10}));
  write_image(root() / "a" / "x.jpeg", 8, 8, 1, solid({128}));
  write_image(root() / "a" / "sub" / "y.png", 8, 8, 1, solid({40}));  // subfolders belong to the class
  write_image(root() / "C" / "z.JPG", 8, 8, 1, solid({64}));
  write_text(root() / "a" / "notes.txt", "not an image");
  write_text(root() / "a" / "._x.jpeg", "macOS metadata, not decodable");
  write_text(root() / ".cache" / "w.png", "hidden folder, not a class");
  write_text(root() / "README.png", "a file at the top is not a class");

  // Classes of fewer than 10 images go entirely to training.
  ImageDataset train = load_image_folder(root().string(), Split::Train, format_of(1, 8, 8));
  EXPECT_EQ(train.classes, 3);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"C", "a", "b"}));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 1, 1, 2, 2}));
  ASSERT_EQ(all(train).shape, (std::vector<int64_t>{5, 1, 8, 8}));
  // In each class, by name: a/x.jpeg before a/sub/y.png (folder by folder), b/1.PNG before b/2.png.
  EXPECT_NEAR(at(train, 0, 0, 4, 4), byte(64), 1.5f / 255);
  EXPECT_NEAR(at(train, 1, 0, 4, 4), byte(128), 1.5f / 255);
  EXPECT_EQ(at(train, 2, 0, 4, 4), byte(40));
  EXPECT_EQ(at(train, 3, 0, 4, 4), byte(10));
  EXPECT_EQ(at(train, 4, 0, 4, 4), byte(20));
}

TEST_F(ImageFolder, TrainValAndTestFoldersAreTheSplitsWithTrainsClasses) {
  write_image(root() / "train" / "dog" / "d1.png", 20, 30, 3, solid({1, 2, 3}));
  write_image(root() / "train" / "cat" / "c1.png", 20, 30, 3, solid({4, 5, 6}));
  write_image(root() / "train" / "cat" / "c2.png", 20, 30, 3, solid({7, 8, 9}));
  write_image(root() / "val" / "dog" / "d2.png", 20, 30, 3, solid({10, 11, 12}));
  write_image(root() / "test" / "cat" / "c3.png", 20, 30, 3, solid({13, 14, 15}));
  write_image(root() / "test" / "dog" / "d3.png", 20, 30, 3, solid({16, 17, 18}));
  const InputFormat format = format_of(3, 30, 20);

  ImageDataset train = load_image_folder(root().string(), Split::Train, format);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(at(train, 0, 0, 0, 0), byte(4));
  EXPECT_EQ(at(train, 2, 2, 29, 19), byte(3));

  ImageDataset validation = load_image_folder(root().string(), Split::Validation, format);
  EXPECT_EQ(validation.classes, 2);  // train's classes, though val/ has only dogs
  EXPECT_EQ(validation.class_names, train.class_names);
  EXPECT_EQ(validation.labels, (std::vector<int64_t>{1}));
  EXPECT_EQ(at(validation, 0, 1, 5, 5), byte(11));

  ImageDataset test = load_image_folder(root().string(), Split::Test, format);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(at(test, 1, 0, 0, 0), byte(16));
}

// ---- The 80/10/10 split ------------------------------------------------------------------------

TEST_F(ImageFolder, WithoutSplitFoldersEachClassIsSplitDeterministicallyAndCompletely) {
  // Image i of class "many" is solid grey i, so that each image can be recognised.
  for (int i = 0; i < 25; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%02d.png", i);
    write_image(root() / "many" / name, 4, 4, 1, solid({static_cast<uint8_t>(i)}));
  }
  for (int i = 0; i < 3; ++i) write_image(root() / "few" / (std::to_string(i) + ".png"), 4, 4, 1, solid({static_cast<uint8_t>(100 + i)}));
  const InputFormat format = format_of(1, 4, 4);

  auto members = [&](Split split) {
    ImageDataset dataset = load_image_folder(root().string(), split, format);
    EXPECT_EQ(dataset.class_names, (std::vector<std::string>{"few", "many"}));
    std::vector<std::pair<int64_t, int>> found;  // (label, grey)
    for (int64_t n = 0; n < dataset.size(); ++n) {
      found.emplace_back(dataset.labels[n], static_cast<int>(std::lround(at(dataset, n, 0, 0, 0) * 255)));
    }
    return found;
  };
  const auto train = members(Split::Train), validation = members(Split::Validation), test = members(Split::Test);

  // 25 images: 25/10 = 2 (rounded down) each for validation and test, 21 for training; 3 images:
  // none held out.
  EXPECT_EQ(train.size(), 21u + 3u);
  EXPECT_EQ(validation.size(), 2u);
  EXPECT_EQ(test.size(), 2u);
  std::set<std::pair<int64_t, int>> all;
  for (const auto* split : {&train, &validation, &test}) {
    EXPECT_TRUE(std::is_sorted(split->begin(), split->end())) << "each split keeps class and name order";
    all.insert(split->begin(), split->end());
  }
  EXPECT_EQ(all.size(), 25u + 3u) << "disjoint and complete";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(all.count({0, 100 + i}));
  for (int i = 0; i < 25; ++i) EXPECT_TRUE(all.count({1, i}));

  // The same on every run and machine: pinned, so that a change of the rule shows here.
  EXPECT_EQ(members(Split::Validation), validation);
  EXPECT_EQ(validation, (std::vector<std::pair<int64_t, int>>{{1, 3}, {1, 17}}));
  EXPECT_EQ(test, (std::vector<std::pair<int64_t, int>>{{1, 9}, {1, 10}}));
}

// ---- Pixels --------------------------------------------------------------------------------------

TEST_F(ImageFolder, ColoursConvertExactly) {
  // Sizes differ from the model's, so each is resized too: a solid colour stays exact.
  write_image(root() / "k" / "1-rgb.png", 20, 30, 3, solid({200, 100, 50}));
  write_image(root() / "k" / "2-grey.png", 64, 48, 1, solid({77}));
  write_image(root() / "k" / "3-rgba.png", 32, 32, 4, solid({10, 20, 30, 0}));  // transparent: alpha is dropped
  write_image(root() / "k" / "4-grey-alpha.png", 16, 16, 2, solid({250, 128}));
  write_image(root() / "k" / "5-grey.jpg", 32, 32, 1, solid({128}));

  ImageDataset rgb = load_image_folder(root().string(), Split::Train, format_of(3, 16, 16));
  ASSERT_EQ(all(rgb).shape, (std::vector<int64_t>{5, 3, 16, 16}));
  const int expected_rgb[5][3] = {{200, 100, 50}, {77, 77, 77}, {10, 20, 30}, {250, 250, 250}, {128, 128, 128}};
  for (int n = 0; n < 5; ++n) {
    for (int c = 0; c < 3; ++c) expect_solid(rgb, n, c, byte(expected_rgb[n][c]));
  }

  // BT.601 luma rounded: 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2; 0.299 * 10 + 0.587 * 20 +
  // 0.114 * 30 = 18.15.
  ImageDataset grey = load_image_folder(root().string(), Split::Train, format_of(1, 16, 16));
  ASSERT_EQ(all(grey).shape, (std::vector<int64_t>{5, 1, 16, 16}));
  const int expected_grey[5] = {124, 77, 18, 250, 128};
  for (int n = 0; n < 5; ++n) expect_solid(grey, n, 0, byte(expected_grey[n]));
}

TEST_F(ImageFolder, JpegColoursArriveWithinJpegsRounding) {
  write_image(root() / "k" / "rgb.jpg", 24, 24, 3, solid({200, 100, 50}));
  ImageDataset dataset = load_image_folder(root().string(), Split::Train, format_of(3, 24, 24));
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(at(dataset, 0, c, 12, 12), byte(std::vector{200, 100, 50}[c]), 3.0f / 255);
}

TEST_F(ImageFolder, AWideImageIsCroppedToItsMiddle) {
  // 64x32, black, white, white, black quarters: the middle square is white.
  write_image(root() / "k" / "wide.png", 64, 32, 1, [](int x, int, int) { return uint8_t(x >= 16 && x < 48 ? 255 : 0); });
  ImageDataset square = load_image_folder(root().string(), Split::Train, format_of(1, 32, 32));
  expect_solid(square, 0, 0, 1.0f);

  // Resized to 32x16 first: the boundary blurs over a column on each side only.
  ImageDataset smaller = load_image_folder(root().string(), Split::Train, format_of(1, 16, 16));
  for (int64_t y = 0; y < 16; ++y) {
    for (int64_t x = 1; x < 15; ++x) ASSERT_EQ(at(smaller, 0, 0, y, x), 1.0f) << x << "," << y;
    EXPECT_NEAR(at(smaller, 0, 0, y, 0), at(smaller, 0, 0, y, 15), 1e-6f) << "symmetric";
    EXPECT_GT(at(smaller, 0, 0, y, 0), 0.5f);
  }
}

TEST_F(ImageFolder, LeftBlackRightWhiteKeepsTheSplitInTheMiddle) {
  write_image(root() / "k" / "half.png", 60, 30, 3, [](int x, int, int) { return uint8_t(x < 30 ? 0 : 255); });
  ImageDataset dataset = load_image_folder(root().string(), Split::Train, format_of(3, 20, 20));
  // Resized to 40x20 and cropped from column 10: the edge falls between columns 9 and 10.
  for (int c = 0; c < 3; ++c) {
    for (int64_t x = 0; x < 20; ++x) {
      const float value = at(dataset, 0, c, 7, x);
      if (x < 9) {
        EXPECT_EQ(value, 0.0f) << x;
      } else if (x > 10) {
        EXPECT_EQ(value, 1.0f) << x;
      }
    }
    EXPECT_NEAR(at(dataset, 0, c, 7, 9) + at(dataset, 0, c, 7, 10), 1.0f, 1.5f / 255) << "the edge is centred";
  }
}

TEST_F(ImageFolder, CropOffsetsRoundHalvesToEvenAsTorchvision) {
  // Column x is grey 5x; no resize (the height already fits). 37 - 32 = 5: round(2.5) = 2;
  // 35 - 32 = 3: round(1.5) = 2; 34 - 32 = 2: 1.
  write_image(root() / "k" / "a37.png", 37, 32, 1, [](int x, int, int) { return uint8_t(5 * x); });
  write_image(root() / "k" / "b35.png", 35, 32, 1, [](int x, int, int) { return uint8_t(5 * x); });
  write_image(root() / "k" / "c34.png", 34, 32, 1, [](int x, int, int) { return uint8_t(5 * x); });
  ImageDataset dataset = load_image_folder(root().string(), Split::Train, format_of(1, 32, 32));
  EXPECT_EQ(at(dataset, 0, 0, 0, 0), byte(10));
  EXPECT_EQ(at(dataset, 1, 0, 0, 0), byte(10));
  EXPECT_EQ(at(dataset, 2, 0, 0, 0), byte(5));
  EXPECT_EQ(at(dataset, 2, 0, 31, 31), byte(5 * 32));
}

TEST_F(ImageFolder, ResizeLargerThanTheCropKeepsTheCentre) {
  // 64x48 gradients: red 4x, green 5y. Resize 32: 42x32 (32 * 64 / 48 = 42.7, rounded down), then
  // the 24x24 crop starts at column round(18 / 2) = 9 and row round(8 / 2) = 4. Linear ramps
  // survive the filter, so output (x, y) holds the ramps at the sampled input position.
  write_image(root() / "k" / "ramp.png", 64, 48, 3, [](int x, int y, int c) { return uint8_t(c == 0 ? 4 * x : c == 1 ? 5 * y : 0); });
  ImageDataset dataset = load_image_folder(root().string(), Split::Train, format_of(3, 24, 24, 32));
  ASSERT_EQ(all(dataset).shape, (std::vector<int64_t>{1, 3, 24, 24}));
  for (int64_t y = 0; y < 24; ++y) {
    for (int64_t x = 0; x < 24; ++x) {
      const double source_x = (x + 9 + 0.5) * 64.0 / 42.0 - 0.5, source_y = (y + 4 + 0.5) * 48.0 / 32.0 - 0.5;
      ASSERT_NEAR(at(dataset, 0, 0, y, x) * 255, 4 * source_x, 1.0) << x << "," << y;
      ASSERT_NEAR(at(dataset, 0, 1, y, x) * 255, 5 * source_y, 1.0) << x << "," << y;
      ASSERT_EQ(at(dataset, 0, 2, y, x), 0.0f);
    }
  }

  // Without a resize the image is scaled to cover the crop: 32x24, cropped from column 4.
  ImageDataset covered = load_image_folder(root().string(), Split::Train, format_of(3, 24, 24));
  for (int64_t x = 0; x < 24; ++x) {
    const double source_x = (x + 4 + 0.5) * 2.0 - 0.5;
    ASSERT_NEAR(at(covered, 0, 0, 12, x) * 255, 4 * source_x, 1.0) << x;
  }
}

TEST_F(ImageFolder, ACropLargerThanTheResizedImageIsPaddedWithBlack) {
  write_image(root() / "k" / "white.png", 20, 20, 1, solid({255}));
  // Resized to 8x8, centred in 16x16: 4 black columns and rows on each side.
  ImageDataset dataset = load_image_folder(root().string(), Split::Train, format_of(1, 16, 16, 8));
  for (int64_t y = 0; y < 16; ++y) {
    for (int64_t x = 0; x < 16; ++x) {
      const bool inside = x >= 4 && x < 12 && y >= 4 && y < 12;
      ASSERT_EQ(at(dataset, 0, 0, y, x), inside ? 1.0f : 0.0f) << x << "," << y;
    }
  }
}

// ---- The cache -----------------------------------------------------------------------------------

std::vector<fs::path> files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) files.push_back(entry.path());
  return files;
}

// Same size, same modification time, other bytes: only the cache can still give the images.
void spoil_keeping_size_and_time(const fs::path& path) {
  const auto size = fs::file_size(path);
  const auto modified = fs::last_write_time(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string(size, 'x');
  fs::last_write_time(path, modified);
}

TEST_F(ImageFolder, TheCacheIsReadTheSecondTimeAndAChangedFileIsDecodedAgain) {
  write_image(root() / "a" / "1.png", 20, 30, 3, solid({200, 100, 50}));
  write_image(root() / "a" / "2.jpg", 64, 48, 1, solid({77}));
  write_image(root() / "b" / "3.png", 32, 32, 4, solid({10, 20, 30, 255}));
  const fs::path cache = scratch.path() / "cache" / "images";  // made when needed
  const InputFormat format = format_of(3, 16, 16, 20, cache.string());

  const ImageDataset first = load_image_folder(root().string(), Split::Train, format);
  const ImageDataset uncached = load_image_folder(root().string(), Split::Train, format_of(3, 16, 16, 20));
  EXPECT_EQ(all(first).data, all(uncached).data);
  ASSERT_EQ(files_in(cache).size(), 1u) << "one file, no temporary left";

  for (const char* name : {"a/1.png", "a/2.jpg", "b/3.png"}) spoil_keeping_size_and_time(root() / name);
  const ImageDataset second = load_image_folder(root().string(), Split::Train, format);
  EXPECT_EQ(all(second).shape, all(first).shape);
  EXPECT_EQ(all(second).data, all(first).data);
  EXPECT_EQ(second.labels, first.labels);
  EXPECT_EQ(second.class_names, first.class_names);

  // A file with a new modification time is decoded again (and is not an image now).
  const fs::path changed = root() / "a" / "1.png";
  fs::last_write_time(changed, fs::last_write_time(changed) + std::chrono::seconds(10));
  EXPECT_NE(error_of([&] { load_image_folder(root().string(), Split::Train, format); }).find(changed.string()), std::string::npos);

  // So is every file for another geometry, which is another cache file.
  write_image(changed, 20, 30, 3, solid({0, 0, 255}));
  EXPECT_NE(error_of([&] { load_image_folder(root().string(), Split::Train, format_of(3, 16, 16, 0, cache.string())); })
                .find("2.jpg"),
            std::string::npos);

  write_image(root() / "a" / "2.jpg", 64, 48, 1, solid({77}));
  write_image(root() / "b" / "3.png", 32, 32, 4, solid({10, 20, 30, 255}));
  const ImageDataset third = load_image_folder(root().string(), Split::Train, format);
  EXPECT_EQ(all(third).data, all(load_image_folder(root().string(), Split::Train, format_of(3, 16, 16, 20))).data);
  expect_solid(third, 0, 0, 0.0f);
  expect_solid(third, 0, 2, 1.0f);
}

TEST_F(ImageFolder, WithACacheTheImagesAreReadFromTheMappedFileAndNormalisedBatchByBatch) {
  for (int i = 0; i < 6; ++i) write_image(root() / (i < 3 ? "a" : "b") / (std::to_string(i) + ".png"), 12, 12, 3, solid({uint8_t(40 * i), 0, 255}));
  DataSpec spec = parse_data_spec("images:" + root().string());
  spec.input = format_of(3, 8, 8, 0, (scratch.path() / "cache").string());
  spec.input.mean = {0.5f, 0.0f, 0.5f};
  spec.input.std = {0.5f, 1.0f, 0.25f};

  const ImageDataset dataset = load(spec, Split::Train);
  ASSERT_TRUE(dataset.bytes && dataset.bytes->mapped()) << "a set larger than memory is paged in, never held whole";
  EXPECT_TRUE(dataset.images.data.empty());
  EXPECT_EQ(dataset.sample_shape(), (std::vector<int64_t>{1, 3, 8, 8}));

  const std::vector<int64_t> picked{4, 1};
  const ir::Tensor batch = dataset.rows(picked);
  ASSERT_EQ(batch.shape, (std::vector<int64_t>{2, 3, 8, 8}));
  const int64_t plane = 64;
  EXPECT_FLOAT_EQ(batch.data[0], (byte(160) - 0.5f) / 0.5f);           // image 4, red
  EXPECT_FLOAT_EQ(batch.data[2 * plane], (1.0f - 0.5f) / 0.25f);       // image 4, blue
  EXPECT_FLOAT_EQ(batch.data[3 * plane], (byte(40) - 0.5f) / 0.5f);    // image 1, red
  EXPECT_FLOAT_EQ(batch.data[4 * plane], 0.0f);                        // image 1, green

  // A subset is held in memory and reads the same, normalisation included.
  const ImageDataset kept = dataset.subset(picked);
  EXPECT_FALSE(kept.bytes->mapped());
  EXPECT_EQ(kept.labels, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(kept.rows(0, 2).data, batch.data);
  EXPECT_THROW(dataset.rows(std::vector<int64_t>{6}), std::out_of_range);

  // Without a cache folder the bytes are held in memory and read the same.
  spec.input.cache_dir.clear();
  EXPECT_EQ(load(spec, Split::Train).rows(picked).data, batch.data);
}

TEST_F(ImageFolder, ADamagedCacheFileIsIgnoredAndWrittenAgain) {
  for (int i = 0; i < 4; ++i) write_image(root() / "a" / (std::to_string(i) + ".png"), 20, 20, 3, solid({uint8_t(i), 9, 9}));
  const fs::path cache = scratch.path() / "cache";
  const InputFormat format = format_of(3, 8, 8, 0, cache.string());
  // Copied out of the mapped cache file, which is damaged below.
  const ir::Tensor first = all(load_image_folder(root().string(), Split::Train, format));
  const fs::path cache_file = files_in(cache).at(0);
  const auto full_size = fs::file_size(cache_file);

  fs::resize_file(cache_file, full_size / 2);  // cut off
  EXPECT_EQ(all(load_image_folder(root().string(), Split::Train, format)).data, first.data);
  EXPECT_EQ(fs::file_size(cache_file), full_size);

  {
    std::fstream file(cache_file, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(full_size / 2));
    file.put('\x7f');  // one pixel changed: the checksum no longer agrees
  }
  EXPECT_EQ(all(load_image_folder(root().string(), Split::Train, format)).data, first.data);
  for (const char* name : {"0.png", "1.png", "2.png", "3.png"}) spoil_keeping_size_and_time(root() / "a" / name);
  EXPECT_EQ(all(load_image_folder(root().string(), Split::Train, format)).data, first.data)
      << "the rewritten cache is read";
}

// ---- Errors --------------------------------------------------------------------------------------

TEST_F(ImageFolder, EveryProblemIsADataErrorNamingTheFileOrFolder) {
  const InputFormat format = format_of(3, 8, 8);
  auto error = [&](const fs::path& dir, Split split = Split::Train, const InputFormat& used = format_of(3, 8, 8)) {
    return error_of([&] { load_image_folder(dir.string(), split, used); });
  };
  auto expect_names = [](const std::string& message, const fs::path& path) {
    EXPECT_NE(message.find(path.string()), std::string::npos) << message << " should name " << path;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  };

  expect_names(error(scratch.path() / "missing"), scratch.path() / "missing");

  fs::create_directories(scratch.path() / "empty");
  expect_names(error(scratch.path() / "empty"), scratch.path() / "empty");

  const fs::path flat = scratch.path() / "flat";
  write_image(flat / "cat" / "1.png", 8, 8, 3, solid({1, 2, 3}));
  fs::create_directories(flat / "dog");
  expect_names(error(flat), flat / "dog");  // an empty class folder
  write_text(flat / "dog" / "1.bmp", "BM");
  const std::string only_other_files = error(flat);
  expect_names(only_other_files, flat / "dog");
  EXPECT_NE(only_other_files.find("1.bmp"), std::string::npos) << only_other_files;

  write_text(flat / "dog" / "2.png", "not a PNG at all");
  const std::string undecodable = error(flat);
  expect_names(undecodable, flat / "dog" / "2.png");
  EXPECT_NE(undecodable.find('('), std::string::npos) << "stb's reason: " << undecodable;

  fs::remove(flat / "dog" / "2.png");
  write_image(flat / "dog" / "2.png", 8, 8, 3, solid({1, 2, 3}));
  expect_names(error(flat, Split::Validation), flat);  // fewer than 10 images per class: no validation images

  const fs::path split = scratch.path() / "split";
  write_image(split / "train" / "cat" / "1.png", 8, 8, 3, solid({1, 2, 3}));
  expect_names(error(split, Split::Validation), split / "val");  // no val/
  write_image(split / "val" / "bird" / "1.png", 8, 8, 3, solid({1, 2, 3}));
  expect_names(error(split, Split::Validation), split / "val" / "bird");  // not a class of train/
  write_image(split / "test" / "cat" / "1.png", 8, 8, 3, solid({1, 2, 3}));
  EXPECT_EQ(load_image_folder(split.string(), Split::Test, format).size(), 1);

  const fs::path no_train = scratch.path() / "no-train";
  write_image(no_train / "val" / "cat" / "1.png", 8, 8, 3, solid({1, 2, 3}));
  expect_names(error(no_train), no_train / "train");

  // The model's input must be an image of 1 or 3 channels.
  for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{}, {1, 2, 8, 8}, {1, 3, 8}, {2, 3, 8, 8}, {1, 3, 0, 8}}) {
    InputFormat wrong = format;
    wrong.shape = shape;
    expect_names(error(split, Split::Train, wrong), split);
  }
  InputFormat negative = format;
  negative.resize = -1;
  expect_names(error(split, Split::Train, negative), split);
}

}  // namespace
}  // namespace gos::data
