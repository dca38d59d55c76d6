// `--data` specs: which data set, and where it lives or how big it is; and the samples brought to
// what the model reads.
#include <charconv>
#include <cmath>

#include "data/data.h"

namespace gos::data {

namespace {

constexpr std::string_view kFashionMnist = "fashion-mnist";
constexpr std::string_view kSynthetic = "synthetic";
constexpr std::string_view kPpg = "ppg";
constexpr std::string_view kImages = "images";
constexpr std::string_view kArrays = "arrays";
// Each synthetic image is 3 KiB of floats; a million would be 3 GiB.
constexpr int64_t kMaxSyntheticCount = 100'000;

std::string usage(std::string_view text) {
  return "unknown --data '" + std::string(text) +
         "': expected fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N, ppg:DIR, images:DIR or arrays:DIR";
}

int64_t parse_synthetic_count(std::string_view text, std::string_view count) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(count.data(), count.data() + count.size(), value);
  if (error != std::errc() || end != count.data() + count.size() || value <= 0 || value > kMaxSyntheticCount) {
    throw DataError("--data '" + std::string(text) + "': N must be an image count from 1 to " +
                    std::to_string(kMaxSyntheticCount));
  }
  return value;
}

}  // namespace

DataSpec parse_data_spec(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const bool has_argument = colon != std::string_view::npos;
  const std::string_view argument = has_argument ? text.substr(colon + 1) : std::string_view{};
  DataSpec spec;
  if (kind == kFashionMnist) {
    spec.kind = DataSpec::Kind::FashionMnist;
    if (has_argument) {
      if (argument.empty()) throw DataError("--data '" + std::string(text) + "': the directory is empty");
      spec.dir = argument;
    }
    return spec;
  }
  if (kind == kSynthetic) {
    spec.kind = DataSpec::Kind::Synthetic;
    if (has_argument) spec.synthetic_count = parse_synthetic_count(text, argument);
    return spec;
  }
  if (kind == kPpg) {
    if (argument.empty()) {
      throw DataError("--data '" + std::string(text) +
                      "': name the folder of per-subject PPG arrays, as in ppg:DIR (docs/ppg.md)");
    }
    spec.kind = DataSpec::Kind::Ppg;
    spec.dir = argument;
    return spec;
  }
  if (kind == kImages || kind == kArrays) {
    if (argument.empty()) {
      throw DataError("--data '" + std::string(text) + "': name the folder, as in " + std::string(kind) +
                      (kind == kImages ? ":DIR (DIR/<class>/*.png, or DIR/train/<class>/..., docs/data.md)"
                                       : ":DIR (x_train.npy, y_train.npy, ...) or arrays:FILE.npz (docs/data.md)"));
    }
    spec.kind = kind == kImages ? DataSpec::Kind::Images : DataSpec::Kind::Arrays;
    spec.dir = argument;
    return spec;
  }
  throw DataError(usage(text));
}

namespace {

std::string spec_text(const DataSpec& spec) {
  switch (spec.kind) {
    case DataSpec::Kind::FashionMnist: return std::string(kFashionMnist);
    case DataSpec::Kind::Synthetic: return std::string(kSynthetic);
    case DataSpec::Kind::Ppg: return std::string(kPpg) + ":" + spec.dir;
    case DataSpec::Kind::Images: return std::string(kImages) + ":" + spec.dir;
    case DataSpec::Kind::Arrays: return std::string(kArrays) + ":" + spec.dir;
  }
  return {};
}

// Throws DataError naming both shapes when samples of `shape` [N,...] are not what the model reads.
void check_shape(const std::vector<int64_t>& shape, const DataSpec& spec) {
  const auto& wanted = spec.input.shape;
  if (wanted.empty()) return;
  const bool same = shape.size() == wanted.size() && std::equal(wanted.begin() + 1, wanted.end(), shape.begin() + 1);
  if (!same) {
    auto sample = shape;
    if (!sample.empty()) sample[0] = 1;
    throw DataError("--data " + spec_text(spec) + ": a sample is " + ir::shape_text(sample) + ", the model reads " + ir::shape_text(wanted) +
                    " (at batch 1)");
  }
}

// The samples as the model reads them: their shape checked against the model's input, normalised.
void fit_to_model(ir::Tensor& samples, const DataSpec& spec) {
  check_shape(samples.shape, spec);
  normalize(samples, spec.input);
}

// Bytes are normalised as they are read; the mean and std are checked against the channels now,
// before any work.
void fit_to_model(ImageDataset& dataset, const DataSpec& spec) {
  if (!dataset.bytes) return fit_to_model(dataset.images, spec);
  check_shape(dataset.bytes->shape(), spec);
  dataset.mean = spec.input.mean;
  dataset.std = spec.input.std;
  ir::Tensor one_sample(dataset.sample_shape());
  normalize(one_sample, spec.input);
}

}  // namespace

void normalize(ir::Tensor& samples, const InputFormat& format) {
  if (format.mean.empty() && format.std.empty()) return;
  const int64_t channels = samples.shape.size() >= 2 ? samples.shape[1] : 1;
  auto per_channel = [&](const std::vector<float>& values, const char* name, float none) {
    if (values.empty()) return std::vector<float>(static_cast<size_t>(channels), none);
    if (values.size() == 1) return std::vector<float>(static_cast<size_t>(channels), values[0]);
    if (static_cast<int64_t>(values.size()) != channels) {
      throw DataError(std::string("--") + name + " has " + std::to_string(values.size()) + " values; the samples have " +
                      std::to_string(channels) + " channels (give one value, or one per channel)");
    }
    return values;
  };
  const auto mean = per_channel(format.mean, "mean", 0.0f), std = per_channel(format.std, "std", 1.0f);
  for (float s : std) {
    if (!(s > 0) || !std::isfinite(s)) throw DataError("--std values must be positive");
  }
  const int64_t rows = samples.shape.empty() ? 0 : samples.shape[0];
  const int64_t inner = rows * channels > 0 ? samples.elements() / (rows * channels) : 0;
  for (int64_t i = 0; i < samples.elements(); ++i) {
    const auto c = static_cast<size_t>((i / inner) % channels);
    samples.data[i] = (samples.data[i] - mean[c]) / std[c];
  }
}

Objective objective_of(const DataSpec& spec) {
  switch (spec.kind) {
    case DataSpec::Kind::Ppg: return Objective::Regression;
    case DataSpec::Kind::Arrays: return array_targets_are_classes(spec.dir) ? Objective::Classification : Objective::Regression;
    default: return Objective::Classification;
  }
}

ImageDataset load(const DataSpec& spec, Split split) {
  ImageDataset dataset;
  switch (spec.kind) {
    case DataSpec::Kind::Synthetic: dataset = synthetic_images(spec.synthetic_count, split); break;
    case DataSpec::Kind::FashionMnist: dataset = load_fashion_mnist(spec.dir, split); break;
    case DataSpec::Kind::Images: dataset = load_image_folder(spec.dir, split, spec.input); break;
    case DataSpec::Kind::Arrays: dataset = load_array_classes(spec.dir, split); break;
    case DataSpec::Kind::Ppg:
      throw DataError("--data ppg:" + spec.dir + " holds signal windows, not images: this command needs an image set or class labels");
  }
  fit_to_model(dataset, spec);
  return dataset;
}

RegressionDataset load_regression(const DataSpec& spec, Split split) {
  RegressionDataset dataset;
  if (spec.kind == DataSpec::Kind::Ppg) {
    dataset = as_regression(load_ppg(spec.dir, split));
  } else if (spec.kind == DataSpec::Kind::Arrays) {
    dataset = load_array_targets(spec.dir, split);
  } else {
    throw DataError("--data " + spec_text(spec) + " holds class labels: this command needs float targets (ppg:DIR, or arrays:DIR with float y)");
  }
  fit_to_model(dataset.inputs, spec);
  return dataset;
}

RegressionDataset as_regression(PpgDataset dataset) {
  const int64_t count = dataset.size();
  return {std::move(dataset.windows), ir::Tensor({count, 1}, std::move(dataset.bpm))};
}

PpgDataset load_ppg(const DataSpec& spec, Split split) {
  if (spec.kind != DataSpec::Kind::Ppg) {
    throw DataError("this command needs PPG windows (--data ppg:DIR); --data " + spec_text(spec) + " holds other data");
  }
  return load_ppg(spec.dir, split);
}

}  // namespace gos::data
