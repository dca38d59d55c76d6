// How a data set's samples are read: floats held in memory, or bytes mapped from a cache file and
// converted batch by batch (data.h: SampleBytes, ImageDataset::rows).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "data/data.h"

namespace gos::data {

namespace {

size_t bytes_per_sample(const std::vector<int64_t>& shape) {
  if (shape.empty()) return 0;
  return static_cast<size_t>(std::accumulate(shape.begin() + 1, shape.end(), int64_t{1}, std::multiplies<>()));
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void check_index(int64_t index, int64_t available) {
  if (index < 0 || index >= available) throw std::out_of_range("sample " + std::to_string(index) + " of a set of " + std::to_string(available));
}

}  // namespace

SampleBytes::SampleBytes(std::vector<int64_t> shape, std::vector<uint8_t> bytes)
    : shape_(std::move(shape)), sample_bytes_(bytes_per_sample(shape_)), owned_(std::move(bytes)), data_(owned_.data()) {
  if (owned_.size() != sample_bytes_ * static_cast<size_t>(count())) {
    throw std::invalid_argument("SampleBytes: " + std::to_string(owned_.size()) + " bytes do not fill " + ir::shape_text(shape_));
  }
}

std::shared_ptr<const SampleBytes> SampleBytes::map(const std::string& path, size_t offset, std::vector<int64_t> shape) {
  std::shared_ptr<SampleBytes> samples(new SampleBytes());
  samples->shape_ = std::move(shape);
  samples->sample_bytes_ = bytes_per_sample(samples->shape_);
  const size_t length = samples->sample_bytes_ * static_cast<size_t>(samples->count());
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) throw DataError(path + ": cannot open the decoded images (" + std::strerror(errno) + ")");
  struct stat status {};
  if (::fstat(file.get(), &status) != 0 || static_cast<size_t>(status.st_size) < offset + length) {
    throw DataError(path + ": the decoded images are shorter than " + std::to_string(offset + length) + " bytes");
  }
  if (length == 0) return samples;
  // Mappings start on a page; the samples start `offset` bytes in.
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t start = offset / page * page;
  samples->mapping_size_ = offset - start + length;
  void* mapping = ::mmap(nullptr, samples->mapping_size_, PROT_READ, MAP_SHARED, file.get(), static_cast<off_t>(start));
  if (mapping == MAP_FAILED) throw DataError(path + ": cannot map the decoded images (" + std::strerror(errno) + ")");
  samples->mapping_ = mapping;
  samples->data_ = static_cast<const uint8_t*>(mapping) + (offset - start);
  return samples;
}

SampleBytes::~SampleBytes() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

std::vector<int64_t> ImageDataset::sample_shape() const {
  std::vector<int64_t> shape = bytes ? bytes->shape() : images.shape;
  if (!shape.empty()) shape[0] = 1;
  return shape;
}

ir::Tensor ImageDataset::rows(std::span<const int64_t> indices) const {
  std::vector<int64_t> shape = sample_shape();
  if (shape.empty()) return {};
  shape[0] = static_cast<int64_t>(indices.size());
  ir::Tensor gathered(shape);
  const int64_t available = bytes ? bytes->count() : images.shape[0];
  const size_t per_sample = bytes ? bytes->sample_bytes() : static_cast<size_t>(images.elements() / std::max<int64_t>(1, available));
  auto out = gathered.data.begin();
  for (int64_t index : indices) {
    check_index(index, available);
    if (bytes) {
      const uint8_t* sample = bytes->sample(index);
      out = std::transform(sample, sample + per_sample, out, [](uint8_t b) { return static_cast<float>(b) / 255.0f; });
    } else {
      const auto sample = images.data.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(index) * per_sample);
      out = std::copy(sample, sample + static_cast<std::ptrdiff_t>(per_sample), out);
    }
  }
  // Floats in `images` were normalised as they were loaded.
  if (bytes) normalize(gathered, InputFormat{.mean = mean, .std = std});
  return gathered;
}

ir::Tensor ImageDataset::rows(int64_t begin, int64_t end) const {
  std::vector<int64_t> indices(static_cast<size_t>(std::max<int64_t>(0, end - begin)));
  std::iota(indices.begin(), indices.end(), begin);
  return rows(indices);
}

ImageDataset ImageDataset::subset(std::span<const int64_t> indices) const {
  ImageDataset selected;
  selected.classes = classes;
  selected.class_names = class_names;
  selected.mean = mean;
  selected.std = std;
  for (int64_t index : indices) selected.labels.push_back(labels.at(static_cast<size_t>(index)));
  if (!bytes) {
    selected.images = rows(indices);
    return selected;
  }
  std::vector<int64_t> shape = bytes->shape();
  shape[0] = static_cast<int64_t>(indices.size());
  std::vector<uint8_t> kept;
  kept.reserve(bytes->sample_bytes() * indices.size());
  for (int64_t index : indices) {
    check_index(index, bytes->count());
    kept.insert(kept.end(), bytes->sample(index), bytes->sample(index) + bytes->sample_bytes());
  }
  selected.bytes = std::make_shared<const SampleBytes>(std::move(shape), std::move(kept));
  return selected;
}

}  // namespace gos::data
