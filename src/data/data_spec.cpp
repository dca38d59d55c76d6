// `--data` specs: which data set, and where it lives or how big it is.
#include <charconv>

#include "data/data.h"

namespace gos::data {

namespace {

constexpr std::string_view kFashionMnist = "fashion-mnist";
constexpr std::string_view kSynthetic = "synthetic";
constexpr std::string_view kPpg = "ppg";
// Each synthetic image is 3 KiB of floats; a million would be 3 GiB.
constexpr int64_t kMaxSyntheticCount = 100'000;

std::string usage(std::string_view text) {
  return "unknown --data '" + std::string(text) +
         "': expected fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N or ppg:DIR";
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
  throw DataError(usage(text));
}

ImageDataset load(const DataSpec& spec, Split split) {
  switch (spec.kind) {
    case DataSpec::Kind::Synthetic: return synthetic_images(spec.synthetic_count, split);
    case DataSpec::Kind::FashionMnist: return load_fashion_mnist(spec.dir, split);
    case DataSpec::Kind::Ppg: break;
  }
  throw DataError("--data ppg:" + spec.dir +
                  " holds signal windows, not images: this command needs an image set (fashion-mnist or synthetic)");
}

PpgDataset load_ppg(const DataSpec& spec, Split split) {
  if (spec.kind != DataSpec::Kind::Ppg) {
    throw DataError("this command needs PPG windows (--data ppg:DIR); --data " +
                    std::string(spec.kind == DataSpec::Kind::Synthetic ? kSynthetic : kFashionMnist) + " holds images");
  }
  return load_ppg(spec.dir, split);
}

}  // namespace gos::data
