// arrays:DIR and arrays:FILE.npz (docs/data.md, "Your own arrays"): x_{train,val,test}.npy samples
// and y_{train,val,test}.npy class labels or float targets, from a folder or from NumPy's .npz (a
// zip of .npy members, stored or deflated), read with libzip.
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "data/data.h"
#include "data/npy.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMembers[] = {"x_train.npy", "y_train.npy", "x_val.npy", "y_val.npy", "x_test.npy", "y_test.npy"};
constexpr Split kSplits[] = {Split::Train, Split::Validation, Split::Test};
// Labels travel as float (NpyArray::values), exact only up to 2^24.
constexpr float kLabelLimit = 16777216.0f;

std::string x_member(Split split) { return "x_" + std::string(short_name(split)) + ".npy"; }
std::string y_member(Split split) { return "y_" + std::string(short_name(split)) + ".npy"; }

// A sample's shape: the array's after its first (sample) axis.
std::string sample_text(const std::vector<int64_t>& shape) {
  return ir::shape_text({shape.begin() + (shape.empty() ? 0 : 1), shape.end()});
}

std::string zip_error_text(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string text = zip_error_strerror(&error);
  zip_error_fini(&error);
  return text;
}

struct ZipDiscard {
  void operator()(zip_t* zip) const { zip_discard(zip); }  // read only: nothing to write back
};
struct ZipFileClose {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};
using ZipFile = std::unique_ptr<zip_file_t, ZipFileClose>;

// The six arrays, from a folder or an .npz file; every member is checked to exist up front, so a
// missing one is reported before any large array is read.
class Arrays {
 public:
  explicit Arrays(const std::string& path) : path_(path) {
    std::error_code ignored;
    if (fs::is_directory(path, ignored)) {
      check_members();
      return;
    }
    if (!fs::exists(path, ignored)) {
      throw DataError(path + ": no such folder or .npz file (arrays:PATH names a folder of x_train.npy, y_train.npy, ... "
                             "or an .npz holding them; docs/data.md)");
    }
    int code = 0;
    zip_.reset(zip_open(path.c_str(), ZIP_RDONLY, &code));
    if (!zip_) {
      if (code == ZIP_ER_NOZIP) {
        throw DataError(path + ": not a zip file; write the arrays with numpy.savez or numpy.savez_compressed, or name "
                               "a folder of .npy files");
      }
      throw DataError(path + ": cannot read the .npz file (" + zip_error_text(code) + ")");
    }
    check_members();
  }

  const std::string& path() const { return path_; }
  // What errors call a member: its file, or the .npz followed by the member's name.
  std::string name(const std::string& member) const {
    return zip_ ? path_ + "/" + member : (fs::path(path_) / member).string();
  }

  NpyArray read(const std::string& member) const {
    const std::string where = name(member);
    if (!zip_) return read_npy(where);
    // The member's bytes live only until parsed: the floats are the one copy kept.
    return parse_npy(member_bytes(member, where), where);
  }

  NpyHeader header(const std::string& member) const {
    const std::string where = name(member);
    if (!zip_) return read_npy_header(where);
    // Only the header's bytes are inflated, however large the member.
    ZipFile file = open_member(member, where);
    return read_npy_header([&](char* buffer, size_t count) { return read_member(file.get(), buffer, count, where); },
                           where);
  }

 private:
  void check_members() const {
    std::string missing;
    for (const char* member : kMembers) {
      const bool present = zip_ ? zip_name_locate(zip_.get(), member, 0) >= 0 : fs::is_regular_file(fs::path(path_) / member);
      if (!present) missing += (missing.empty() ? "" : ", ") + std::string(member);
    }
    if (missing.empty()) return;
    if (zip_) {
      throw DataError(path_ + ": no " + missing +
                      " inside; the .npz needs x_train, y_train, x_val, y_val, x_test and y_test "
                      "(numpy.savez(FILE, x_train=..., y_train=..., ...))");
    }
    throw DataError(path_ + ": missing " + missing +
                    "; arrays:DIR holds x_train.npy, y_train.npy, x_val.npy, y_val.npy, x_test.npy and y_test.npy");
  }

  ZipFile open_member(const std::string& member, const std::string& where) const {
    ZipFile file(zip_fopen(zip_.get(), member.c_str(), 0));
    if (!file) throw DataError(where + ": cannot read it from the .npz (" + zip_strerror(zip_.get()) + ")");
    return file;
  }

  // Up to `count` bytes, fewer only at the member's end; a corrupt member (a bad CRC, broken
  // deflate data) throws.
  static size_t read_member(zip_file_t* file, char* buffer, size_t count, const std::string& where) {
    size_t have = 0;
    while (have < count) {
      const zip_int64_t got = zip_fread(file, buffer + have, count - have);
      if (got < 0) throw DataError(where + ": corrupt .npz member (" + zip_file_strerror(file) + ")");
      if (got == 0) break;
      have += static_cast<size_t>(got);
    }
    return have;
  }

  std::vector<char> member_bytes(const std::string& member, const std::string& where) const {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(zip_.get(), member.c_str(), 0, &stat) != 0 || !(stat.valid & ZIP_STAT_SIZE)) {
      throw DataError(where + ": cannot read it from the .npz (" + zip_strerror(zip_.get()) + ")");
    }
    ZipFile file = open_member(member, where);
    std::vector<char> bytes(static_cast<size_t>(stat.size));
    // A short member stays short: the .npy parser reports it as truncated.
    bytes.resize(read_member(file.get(), bytes.data(), bytes.size(), where));
    // libzip checks the CRC only once a read reaches the member's end, which an exact read does not.
    char beyond = 0;
    if (read_member(file.get(), &beyond, 1, where) != 0) {
      throw DataError(where + ": corrupt .npz member (longer than the zip's directory says)");
    }
    return bytes;
  }

  std::string path_;
  std::unique_ptr<zip_t, ZipDiscard> zip_;
};

void check_finite(const NpyArray& array, const std::string& where) {
  const int64_t count = static_cast<int64_t>(array.values.size());
  for (int64_t i = 0; i < count; ++i) {
    if (std::isfinite(array.values[static_cast<size_t>(i)])) continue;
    const int64_t sample = i / (count / array.shape[0]);
    throw DataError(where + ": NaN or infinity at sample " + std::to_string(sample) +
                    (array.stored == NpyType::Float64 ? " (or a value beyond float32's range)" : "") +
                    "; gos needs finite values");
  }
}

// A split's samples [N, ...] as float, bytes scaled to [0,1]; the same sample shape as x_train's.
ir::Tensor read_x(const Arrays& arrays, Split split) {
  const std::string member = x_member(split);
  const std::string where = arrays.name(member);
  NpyArray x = arrays.read(member);
  if (x.stored != NpyType::Float32 && x.stored != NpyType::Float64 && x.stored != NpyType::UInt8) {
    throw DataError(where + ": " + std::string(to_string(x.stored)) +
                    " samples; save x as float32, float64 or uint8 (bytes, scaled to [0,1])");
  }
  if (x.shape.size() == 1) {
    const std::string n = std::to_string(x.shape[0]);
    throw DataError(where + " is [" + n + "]: each sample needs a shape, e.g. [" + n + ",1] (x.reshape(-1, 1))");
  }
  if (x.shape.empty()) throw DataError(where + " is a scalar; x holds samples [N, ...]");
  if (x.shape[0] == 0) throw DataError(where + ": no samples (shape " + ir::shape_text(x.shape) + "); every split needs some");
  if (split != Split::Train) {
    const std::vector<int64_t> train = arrays.header("x_train.npy").shape;
    if (!std::equal(x.shape.begin() + 1, x.shape.end(), train.begin() + (train.empty() ? 0 : 1), train.end())) {
      throw DataError(arrays.path() + ": " + member + " samples are " + sample_text(x.shape) + "; x_train.npy's are " +
                      sample_text(train));
    }
  }
  if (x.stored == NpyType::UInt8) {
    for (float& value : x.values) value /= 255.0f;
  } else {
    check_finite(x, where);
  }
  return ir::Tensor(std::move(x.shape), std::move(x.values));
}

void check_count(const Arrays& arrays, Split split, int64_t samples, int64_t targets) {
  if (samples == targets) return;
  throw DataError(arrays.path() + ": " + x_member(split) + " has " + std::to_string(samples) + " samples; " +
                  y_member(split) + " has " + std::to_string(targets));
}

// One y file's class labels: integers (or bools) of shape [N], each 0 or more.
std::vector<int64_t> read_labels(const Arrays& arrays, Split split) {
  const std::string where = arrays.name(y_member(split));
  NpyArray y = arrays.read(y_member(split));
  if (is_float(y.stored)) {
    throw DataError(where + ": holds " + std::string(to_string(y.stored)) +
                    " targets (regression), not class labels; save integer labels (y.astype('int64')) to classify");
  }
  if (y.shape.size() != 1) throw DataError(where + ": shape " + ir::shape_text(y.shape) + "; class labels are [N] (y.reshape(-1))");
  std::vector<int64_t> labels(y.values.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const float label = y.values[i];
    if (label < 0 || label >= kLabelLimit) {
      throw DataError(where + ": label " + std::to_string(static_cast<int64_t>(label)) + " at sample " + std::to_string(i) +
                      "; labels are 0 to 16777215");
    }
    labels[i] = static_cast<int64_t>(label);
  }
  return labels;
}

// Targets [N,K] from float32 or float64 [N] or [N,K].
ir::Tensor read_targets(const Arrays& arrays, Split split) {
  const std::string where = arrays.name(y_member(split));
  NpyArray y = arrays.read(y_member(split));
  if (!is_float(y.stored)) {
    throw DataError(where + ": holds " + std::string(to_string(y.stored)) +
                    " class labels, not float targets; save float targets (y.astype('float32')) for regression");
  }
  if (y.shape.size() == 1) y.shape.push_back(1);
  if (y.shape.size() != 2 || y.shape[1] == 0) {
    throw DataError(where + ": shape " + ir::shape_text(y.shape) + "; targets are [N] or [N,K]");
  }
  check_finite(y, where);
  return ir::Tensor(std::move(y.shape), std::move(y.values));
}

}  // namespace

ImageDataset load_array_classes(const std::string& path, Split split) {
  const Arrays arrays(path);
  ImageDataset dataset;
  dataset.images = read_x(arrays, split);
  // Counted over every split, so that train, validation and test agree on the number of classes.
  int64_t max_label = -1;
  for (Split each : kSplits) {
    std::vector<int64_t> labels = read_labels(arrays, each);
    for (int64_t label : labels) max_label = std::max(max_label, label);
    if (each == split) dataset.labels = std::move(labels);
  }
  check_count(arrays, split, dataset.images.shape[0], dataset.size());
  dataset.classes = max_label + 1;
  return dataset;
}

RegressionDataset load_array_targets(const std::string& path, Split split) {
  const Arrays arrays(path);
  RegressionDataset dataset;
  dataset.inputs = read_x(arrays, split);
  dataset.targets = read_targets(arrays, split);
  check_count(arrays, split, dataset.inputs.shape[0], dataset.targets.shape[0]);
  if (split != Split::Train) {
    const std::vector<int64_t> train = arrays.header("y_train.npy").shape;
    const int64_t train_targets = train.size() == 2 ? train[1] : 1;
    if (dataset.targets.shape[1] != train_targets) {
      throw DataError(arrays.path() + ": " + y_member(split) + " has " + std::to_string(dataset.targets.shape[1]) +
                      " targets per sample; y_train.npy has " + std::to_string(train_targets));
    }
  }
  return dataset;
}

bool array_targets_are_classes(const std::string& path) {
  const Arrays arrays(path);
  return !is_float(arrays.header("y_train.npy").stored);
}

}  // namespace gos::data
