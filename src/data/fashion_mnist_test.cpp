// Fashion-MNIST loading: the real files as Debian installs them, and small files written here to
// check the split exactly and every way a file can be wrong.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/data.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> class_histogram(const ImageDataset& dataset) {
  std::vector<int64_t> histogram(dataset.classes, 0);
  for (int64_t label : dataset.labels) ++histogram.at(label);
  return histogram;
}

void expect_unit_range(const ImageDataset& dataset) {
  auto [lowest, highest] = std::minmax_element(dataset.images.data.begin(), dataset.images.data.end());
  EXPECT_EQ(*lowest, 0.0f);
  EXPECT_EQ(*highest, 1.0f);
}

// ---- The real data set ----------------------------------------------------------------------------

const std::string kRealDir{kFashionMnistDefaultDir};

TEST(RealFashionMnist, TestSplitHasTenThousandImagesInUnitRange) {
  ImageDataset test = load_fashion_mnist(kRealDir, Split::Test);
  EXPECT_EQ(test.images.shape, (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(test.classes, 10);
  EXPECT_EQ(class_histogram(test), std::vector<int64_t>(10, 1000));
  expect_unit_range(test);
}

TEST(RealFashionMnist, TrainAndValidationSplitSixtyThousandStratifiedAndDeterministically) {
  ImageDataset train = load_fashion_mnist(kRealDir, Split::Train);
  ImageDataset validation = load_fashion_mnist(kRealDir, Split::Validation);
  EXPECT_EQ(train.images.shape, (std::vector<int64_t>{55000, 1, 28, 28}));
  EXPECT_EQ(validation.images.shape, (std::vector<int64_t>{5000, 1, 28, 28}));
  EXPECT_EQ(class_histogram(train), std::vector<int64_t>(10, 5500));
  EXPECT_EQ(class_histogram(validation), std::vector<int64_t>(10, 500));
  expect_unit_range(train);

  ImageDataset again = load_fashion_mnist(kRealDir, Split::Validation);
  EXPECT_EQ(again.labels, validation.labels);
  EXPECT_EQ(again.images.data, validation.images.data);
}

// ---- Files written by the test --------------------------------------------------------------------

constexpr int64_t kSide = 28;

std::vector<uint8_t> idx_header(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> bytes;
  auto append = [&](uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<uint8_t>(value >> shift));
  };
  append(magic);
  for (uint32_t dim : dims) append(dim);
  return bytes;
}

// Image i carries its number in its first two pixels, so splits can be checked image by image.
std::vector<uint8_t> images_file(uint32_t count, uint32_t magic = 0x00000803) {
  std::vector<uint8_t> bytes = idx_header(magic, {count, kSide, kSide});
  for (uint32_t i = 0; i < count; ++i) {
    std::vector<uint8_t> pixels(kSide * kSide, 0);
    pixels[0] = static_cast<uint8_t>(i % 256);
    pixels[1] = static_cast<uint8_t>(i / 256);
    pixels.back() = 255;
    bytes.insert(bytes.end(), pixels.begin(), pixels.end());
  }
  return bytes;
}

std::vector<uint8_t> labels_file(uint32_t count, uint8_t first_label = 0) {
  std::vector<uint8_t> bytes = idx_header(0x00000801, {count});
  for (uint32_t i = 0; i < count; ++i) bytes.push_back(i == 0 ? first_label : static_cast<uint8_t>(i % 10));
  return bytes;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& bytes) {
  uLongf size = compressBound(bytes.size()) + 32;
  std::vector<uint8_t> compressed(size);
  z_stream stream{};
  deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // +16: gzip wrapper
  stream.next_in = const_cast<uint8_t*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = compressed.data();
  stream.avail_out = static_cast<uInt>(compressed.size());
  deflate(&stream, Z_FINISH);
  compressed.resize(stream.total_out);
  deflateEnd(&stream);
  return compressed;
}

class WrittenFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gos_data_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream file(dir_ / name, std::ios::binary);
    file.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  void write_test_split(uint32_t images, uint32_t labels) {
    write("t10k-images-idx3-ubyte.gz", gzip(images_file(images)));
    write("t10k-labels-idx1-ubyte.gz", gzip(labels_file(labels)));
  }
  std::string dir() const { return dir_.string(); }

  std::string error_loading_test_split() {
    try {
      load_fashion_mnist(dir(), Split::Test);
    } catch (const DataError& error) {
      return error.what();
    }
    return "(no error)";
  }

 private:
  fs::path dir_;
};

int64_t image_number(const ImageDataset& dataset, int64_t i) {
  const float* pixels = dataset.images.data.data() + i * kSide * kSide;
  return std::lround(pixels[0] * 255.0f) + 256 * std::lround(pixels[1] * 255.0f);
}

TEST_F(WrittenFiles, SplitHoldsOutATwelfthOfEachClassDisjointlyAndDeterministically) {
  constexpr uint32_t kCount = 600;  // 60 per class: 5 held out from each
  write("train-images-idx3-ubyte.gz", gzip(images_file(kCount)));
  write("train-labels-idx1-ubyte.gz", gzip(labels_file(kCount)));
  ImageDataset train = load_fashion_mnist(dir(), Split::Train);
  ImageDataset validation = load_fashion_mnist(dir(), Split::Validation);
  EXPECT_EQ(class_histogram(validation), std::vector<int64_t>(10, 5));
  EXPECT_EQ(class_histogram(train), std::vector<int64_t>(10, 55));

  std::set<int64_t> seen;
  for (const auto* split : {&train, &validation}) {
    for (int64_t i = 0; i < split->size(); ++i) {
      int64_t number = image_number(*split, i);
      EXPECT_TRUE(seen.insert(number).second) << "image " << number << " is in both splits";
      EXPECT_EQ(split->labels[i], number % 10) << "image " << number << " lost its label";
    }
  }
  EXPECT_EQ(seen.size(), kCount);
  EXPECT_EQ(load_fashion_mnist(dir(), Split::Validation).images.data, validation.images.data);
}

TEST_F(WrittenFiles, PixelsAreScaledToUnitRange) {
  write_test_split(20, 20);
  ImageDataset test = load_fashion_mnist(dir(), Split::Test);
  EXPECT_EQ(test.size(), 20);
  EXPECT_EQ(test.images.data[kSide * kSide - 1], 1.0f);
  EXPECT_EQ(image_number(test, 13), 13);
}

TEST_F(WrittenFiles, MissingDirectorySaysHowToInstall) {
  const std::string missing = dir() + "/nowhere";
  try {
    load_fashion_mnist(missing, Split::Test);
    FAIL() << "no error";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()),
              "Fashion-MNIST not found in " + missing +
                  ": install it with `make setup` (Debian package dataset-fashion-mnist) or pass --data "
                  "fashion-mnist:DIR");
  }
}

TEST_F(WrittenFiles, MissingFileIsNamed) {
  write("t10k-images-idx3-ubyte.gz", gzip(images_file(5)));
  EXPECT_NE(error_loading_test_split().find("t10k-labels-idx1-ubyte.gz is missing"), std::string::npos);
}

TEST_F(WrittenFiles, TruncatedGzipIsReported) {
  write_test_split(50, 50);
  std::vector<uint8_t> compressed = gzip(images_file(50));
  compressed.resize(compressed.size() / 2);
  write("t10k-images-idx3-ubyte.gz", compressed);
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("t10k-images-idx3-ubyte.gz: corrupt or truncated gzip data"), std::string::npos) << message;
}

TEST_F(WrittenFiles, CorruptGzipIsReported) {
  write_test_split(50, 50);
  std::vector<uint8_t> compressed = gzip(images_file(50));
  for (size_t i = 20; i < 60; ++i) compressed[i] ^= 0x5A;
  write("t10k-images-idx3-ubyte.gz", compressed);
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("corrupt or truncated gzip data"), std::string::npos) << message;
}

TEST_F(WrittenFiles, WrongMagicIsReported) {
  write_test_split(5, 5);
  write("t10k-images-idx3-ubyte.gz", gzip(images_file(5, 0x00000804)));
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("t10k-images-idx3-ubyte.gz: magic 0x00000804; expected an IDX file of images (magic "
                         "0x00000803)"),
            std::string::npos)
      << message;
}

TEST_F(WrittenFiles, UncompressedGarbageFailsTheMagicCheck) {
  write_test_split(5, 5);
  write("t10k-labels-idx1-ubyte.gz", {'h', 'e', 'l', 'l', 'o', '!'});
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("t10k-labels-idx1-ubyte.gz: magic 0x68656c6c; expected an IDX file of labels"),
            std::string::npos)
      << message;
}

TEST_F(WrittenFiles, TruncatedIdxPayloadIsReported) {
  write_test_split(5, 5);
  std::vector<uint8_t> images = images_file(5);
  images.resize(images.size() - 100);
  write("t10k-images-idx3-ubyte.gz", gzip(images));
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("the IDX header promises 3920 values but the file holds 3820 (truncated)"), std::string::npos)
      << message;
}

TEST_F(WrittenFiles, CountMismatchBetweenImagesAndLabelsIsReported) {
  write_test_split(6, 5);
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("holds 6 images but"), std::string::npos) << message;
  EXPECT_NE(message.find("holds 5 labels"), std::string::npos) << message;
}

TEST_F(WrittenFiles, LabelOutsideTheClassesIsReported) {
  write("t10k-images-idx3-ubyte.gz", gzip(images_file(5)));
  write("t10k-labels-idx1-ubyte.gz", gzip(labels_file(5, /*first_label=*/10)));
  std::string message = error_loading_test_split();
  EXPECT_NE(message.find("label 10 of image 0 is not a class"), std::string::npos) << message;
}

}  // namespace
}  // namespace gos::data
