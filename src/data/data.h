#pragma once
// The public face of gos's data: the image sets models are trained, validated and tested on.
//
// Input convention (docs/data.md): images are float pixels in [0,1], NCHW, one channel of 28x28
// for Fashion-MNIST. Data is never normalised here: any normalisation is part of the model graph,
// so that every runtime given an exported model gets the same answers without knowing gos.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ir/ir.h"

namespace gos::data {

// Missing, unreadable or malformed data; `what()` is one line meant for the user.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Train and Validation partition the 60,000 training images (Validation holds out a seeded,
// class-stratified 1/12 of each class: 5,000 images); Test is the separate 10,000.
enum class Split { Train, Validation, Test };
std::string_view to_string(Split split);

struct ImageDataset {
  ir::Tensor images;             // [N,1,28,28], float pixels in [0,1]
  std::vector<int64_t> labels;   // N class indices in [0, classes)
  int64_t classes = 0;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr std::string_view kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`. Throws DataError when the
// files are missing, not gzip, truncated, not IDX, or disagree with each other.
ImageDataset load_fashion_mnist(const std::string& dir, Split split);

// A tiny, easily separable 10-class set of 28x28 images (one oriented grating per class plus
// noise) for fast tests: `count` images per split, a different deterministic draw for each split.
ImageDataset synthetic_images(int64_t count, Split split);

// What a `--data` option names: "fashion-mnist", "fashion-mnist:DIR", "synthetic", "synthetic:N".
struct DataSpec {
  enum class Kind { FashionMnist, Synthetic };
  Kind kind = Kind::FashionMnist;
  std::string dir{kFashionMnistDefaultDir};  // FashionMnist
  int64_t synthetic_count = 1000;            // Synthetic: images per split
};
DataSpec parse_data_spec(std::string_view text);  // throws DataError for anything else
ImageDataset load(const DataSpec& spec, Split split);

}  // namespace gos::data
