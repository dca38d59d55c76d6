// Fashion-MNIST from its IDX files (Debian's dataset-fashion-mnist ships them gzip-compressed).
// Every way a file can be wrong ends in a one-line DataError that names the file.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "data/data.h"
#include "data/random.h"

namespace gos::data {

namespace {

constexpr int64_t kClasses = 10;
constexpr int64_t kImageSide = 28;
// 1/12 of each class is held out: 500 of 6,000 per class, 5,000 of the 60,000 training images.
constexpr int64_t kValidationDivisor = 12;
constexpr uint64_t kValidationSeed = 0x5EEDF00D2023ull;

// IDX magic: two zero bytes, the element type (0x08 unsigned byte) and the number of dimensions.
constexpr uint8_t kUnsignedByteType = 0x08;
constexpr size_t kIdxHeaderBytes = 4;

struct SplitFiles {
  std::string images;
  std::string labels;
};

SplitFiles files_of(Split split) {
  if (split == Split::Test) return {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
  return {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"};
}

std::string not_found_message(const std::string& dir) {
  return "Fashion-MNIST not found in " + dir +
         ": install it with `make setup` (Debian package dataset-fashion-mnist) or pass --data fashion-mnist:DIR";
}

void require_files(const std::string& dir, const SplitFiles& files) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  if (!fs::is_directory(dir, ignored)) throw DataError(not_found_message(dir));
  for (const auto& name : {files.images, files.labels}) {
    if (!fs::is_regular_file(fs::path(dir) / name, ignored)) {
      throw DataError(not_found_message(dir) + " (" + name + " is missing)");
    }
  }
}

// The whole decompressed file. zlib reads a file that is not gzip as it is, so a wrong file is
// caught by the IDX checks; a cut-off gzip stream is reported here, by zlib.
std::vector<uint8_t> read_gzip(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) throw DataError(path + ": cannot open the file");
  std::vector<uint8_t> bytes;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    size_t used = bytes.size();
    bytes.resize(used + kChunk);
    int got = gzread(file.get(), bytes.data() + used, kChunk);
    int status = Z_OK;
    std::string_view message = gzerror(file.get(), &status);
    if (got < 0 || (status != Z_OK && status != Z_STREAM_END)) {
      if (message.starts_with(path + ": ")) message.remove_prefix(path.size() + 2);  // zlib names the file too
      throw DataError(path + ": corrupt or truncated gzip data (" + std::string(message) + ")");
    }
    bytes.resize(used + static_cast<size_t>(got));
    if (got == 0) return bytes;
  }
}

uint32_t big_endian_u32(const uint8_t* bytes) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

std::string hex32(uint32_t value) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

// An IDX array of unsigned bytes: its dimensions and where its values start in the file.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;  // the whole file
  size_t values_offset = 0;

  const uint8_t* values() const { return bytes.data() + values_offset; }
};

IdxArray read_idx(const std::string& path, size_t rank, std::string_view what) {
  IdxArray array;
  array.bytes = read_gzip(path);
  const uint32_t expected_magic = (uint32_t{kUnsignedByteType} << 8) | static_cast<uint32_t>(rank);
  const std::string idx_kind = "an IDX file of " + std::string(what) + " (magic " + hex32(expected_magic) + ")";
  if (array.bytes.size() < kIdxHeaderBytes) throw DataError(path + ": too short to be " + idx_kind);
  const uint32_t magic = big_endian_u32(array.bytes.data());
  if (magic != expected_magic) throw DataError(path + ": magic " + hex32(magic) + "; expected " + idx_kind);

  array.values_offset = kIdxHeaderBytes + 4 * rank;
  if (array.bytes.size() < array.values_offset) throw DataError(path + ": truncated in the IDX header");
  int64_t elements = 1;
  for (size_t dim = 0; dim < rank; ++dim) {
    array.dims.push_back(big_endian_u32(array.bytes.data() + kIdxHeaderBytes + 4 * dim));
    elements *= array.dims.back();
  }
  const int64_t present = static_cast<int64_t>(array.bytes.size() - array.values_offset);
  if (present != elements) {
    throw DataError(path + ": the IDX header promises " + std::to_string(elements) + " values but the file holds " +
                    std::to_string(present) + (present < elements ? " (truncated)" : ""));
  }
  return array;
}

ImageDataset read_split_files(const std::string& dir, const SplitFiles& files) {
  const std::string images_path = (std::filesystem::path(dir) / files.images).string();
  const std::string labels_path = (std::filesystem::path(dir) / files.labels).string();
  IdxArray images = read_idx(images_path, 3, "images");
  IdxArray labels = read_idx(labels_path, 1, "labels");
  if (images.dims[1] != kImageSide || images.dims[2] != kImageSide) {
    throw DataError(images_path + ": images are " + std::to_string(images.dims[1]) + "x" +
                    std::to_string(images.dims[2]) + "; expected 28x28");
  }
  if (images.dims[0] != labels.dims[0]) {
    throw DataError(images_path + " holds " + std::to_string(images.dims[0]) + " images but " + labels_path +
                    " holds " + std::to_string(labels.dims[0]) + " labels");
  }

  ImageDataset dataset;
  dataset.classes = kClasses;
  // The data set's own names for its labels 0 to 9 (Zalando's README).
  dataset.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  dataset.labels.reserve(labels.dims[0]);
  for (int64_t i = 0; i < labels.dims[0]; ++i) {
    int64_t label = labels.values()[i];
    if (label >= kClasses) {
      throw DataError(labels_path + ": label " + std::to_string(label) + " of image " + std::to_string(i) +
                      " is not a class (expected 0 to 9)");
    }
    dataset.labels.push_back(label);
  }
  dataset.images = ir::Tensor({images.dims[0], 1, kImageSide, kImageSide});
  std::transform(images.values(), images.values() + dataset.images.elements(), dataset.images.data.begin(),
                 [](uint8_t pixel) { return static_cast<float>(pixel) / 255.0f; });
  return dataset;
}

// The held-out training images, in file order: a seeded random 1/12 of each class.
std::vector<int64_t> validation_indices(const std::vector<int64_t>& labels, int64_t classes) {
  std::vector<std::vector<int64_t>> by_class(classes);
  for (int64_t i = 0; i < static_cast<int64_t>(labels.size()); ++i) by_class[labels[i]].push_back(i);
  detail::Random random(kValidationSeed);
  std::vector<int64_t> held_out;
  for (auto& members : by_class) {
    random.shuffle(members);
    held_out.insert(held_out.end(), members.begin(), members.begin() + members.size() / kValidationDivisor);
  }
  std::sort(held_out.begin(), held_out.end());
  return held_out;
}

// The training images that are not held out.
std::vector<int64_t> complement(const std::vector<int64_t>& sorted_indices, int64_t count) {
  std::vector<int64_t> rest;
  auto next_held_out = sorted_indices.begin();
  for (int64_t i = 0; i < count; ++i) {
    if (next_held_out != sorted_indices.end() && *next_held_out == i) {
      ++next_held_out;
    } else {
      rest.push_back(i);
    }
  }
  return rest;
}

}  // namespace

std::string_view to_string(Split split) {
  switch (split) {
    case Split::Train: return "train";
    case Split::Validation: return "validation";
    case Split::Test: return "test";
  }
  return "unknown";
}

std::string_view short_name(Split split) { return split == Split::Validation ? "val" : to_string(split); }

ImageDataset load_fashion_mnist(const std::string& dir, Split split) {
  const SplitFiles files = files_of(split);
  require_files(dir, files);
  ImageDataset dataset = read_split_files(dir, files);
  if (split == Split::Test) return dataset;
  std::vector<int64_t> held_out = validation_indices(dataset.labels, dataset.classes);
  if (split == Split::Validation) return dataset.subset(held_out);
  return dataset.subset(complement(held_out, dataset.size()));
}

}  // namespace gos::data
