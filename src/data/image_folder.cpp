// images:DIR: a user's PNG and JPEG images in torchvision's ImageFolder layout, decoded with stb.
// Debian's libstb-dev compiles stb's implementations into libstb.so, so none is compiled here.
#include <stb_image.h>
#include <stb_image_resize.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>

#include "data/data.h"
#include "data/random.h"
#include "util/stable_hash.h"

namespace gos::data {

namespace {

namespace fs = std::filesystem;

// Each class keeps 1/10 of its images (rounded down) for validation and as many for test.
constexpr size_t kHeldOutDivisor = 10;
constexpr uint64_t kSplitSeed = 0x1A6EF01DE5ull;
// Part of every cache key: raise it whenever the same files would decode to other bytes (the
// split, the filter, the rounding), so that no cache written before is read.
constexpr int kFormatVersion = 1;
constexpr char kCacheMagic[8] = {'g', 'o', 's', 'i', 'm', 'g', 's', '\0'};

std::string layout_hint() {
  return "images:DIR reads DIR/<class>/<image>.png|.jpg, or DIR/train/<class>/..., DIR/val/..., DIR/test/... (docs/data.md)";
}

// The model's input as images are brought to it.
struct Geometry {
  int64_t channels = 0, height = 0, width = 0;
  int64_t resize = 0;  // 0: resized to cover height x width exactly
};

Geometry geometry_of(const std::string& dir, const InputFormat& format) {
  const auto& shape = format.shape;
  // Bounds keep every size computed from them (and stb's int sizes) far from overflow.
  constexpr int64_t kMaxSide = 1 << 14;
  const bool valid = shape.size() == 4 && shape[0] == 1 && (shape[1] == 1 || shape[1] == 3) && shape[2] > 0 &&
                     shape[3] > 0 && shape[2] <= kMaxSide && shape[3] <= kMaxSide;
  if (!valid) {
    throw DataError("images:" + dir + ": the model's input is " + ir::shape_text(shape) +
                    "; images are brought to [1,C,H,W] with C 1 (grey) or 3 (RGB)");
  }
  if (format.resize < 0 || format.resize > kMaxSide) {
    throw DataError("images:" + dir + ": resize " + std::to_string(format.resize) + " is not a side from 1 to " +
                    std::to_string(kMaxSide) + " (or 0: resized to the crop)");
  }
  return {shape[1], shape[2], shape[3], format.resize};
}

bool is_hidden(const fs::path& path) { return path.filename().string().starts_with('.'); }

bool has_image_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".png" || extension == ".jpg" || extension == ".jpeg";
}

bool is_folder(const fs::path& path) {
  std::error_code ignored;
  return fs::is_directory(path, ignored);
}

// The class folders in `folder`: visible subfolders in byte order (torchvision's sorted()).
std::vector<std::string> class_folders(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    std::error_code ignored;
    if (!is_hidden(it->path()) && it->is_directory(ignored)) names.push_back(it->path().filename().string());
  }
  if (error) throw DataError(folder.string() + ": cannot list the folder (" + error.message() + ")");
  std::sort(names.begin(), names.end());
  return names;
}

struct ImageFile {
  fs::path path;
  std::string relative;  // to DIR, for the cache key
  int64_t label = 0;
};

// The images of one class folder, subfolders included, in torchvision's order: folder by folder
// (sorted by path), then by name. Hidden files and folders are skipped: they are never images
// (macOS's "._name.jpg" companions are not even decodable).
std::vector<ImageFile> images_in(const fs::path& folder, const std::string& relative_folder, int64_t label) {
  std::vector<std::pair<std::string, std::string>> found;  // (folder, name)
  std::string ignored_example;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink, error), end;
  for (; !error && it != end; it.increment(error)) {
    const fs::path& path = it->path();
    std::error_code ignored;
    if (is_hidden(path)) {
      if (it->is_directory(ignored)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ignored)) continue;
    if (!has_image_extension(path)) {
      if (ignored_example.empty()) ignored_example = path.filename().string();
      continue;
    }
    found.emplace_back(path.parent_path().string(), path.filename().string());
  }
  if (error) throw DataError(folder.string() + ": cannot list the folder (" + error.message() + ")");
  if (found.empty()) {
    throw DataError(folder.string() + ": no .png, .jpg or .jpeg images in this class folder" +
                    (ignored_example.empty() ? "" : " (other files such as " + ignored_example + " are ignored)"));
  }
  std::sort(found.begin(), found.end());
  std::vector<ImageFile> files;
  files.reserve(found.size());
  for (auto& [parent, name] : found) {
    fs::path path = fs::path(parent) / name;
    std::string relative = (fs::path(relative_folder) / path.lexically_relative(folder)).generic_string();
    files.push_back({std::move(path), std::move(relative), label});
  }
  return files;
}

struct Listing {
  std::vector<std::string> classes;
  std::vector<ImageFile> files;  // by class, then in each class's order
};

// DIR/{train,val,test}/<class>/...: the classes are train's.
Listing list_split_folders(const fs::path& root, Split split) {
  const fs::path train = root / "train";
  Listing listing;
  listing.classes = class_folders(train);
  if (listing.classes.empty()) throw DataError(train.string() + ": no class folders; " + layout_hint());

  const std::string split_name(short_name(split));
  const fs::path folder = root / split_name;
  if (!is_folder(folder)) {
    throw DataError(folder.string() + ": no such folder; " + root.string() + " has train/, so the " +
                    std::string(to_string(split)) + " images are read from " + split_name + "/<class>/");
  }
  const std::vector<std::string> present = class_folders(folder);
  for (const std::string& name : present) {
    if (!std::binary_search(listing.classes.begin(), listing.classes.end(), name)) {
      throw DataError((folder / name).string() + ": class '" + name + "' has no folder in " + train.string() +
                      " (the classes are train's folders)");
    }
  }
  for (size_t label = 0; label < listing.classes.size(); ++label) {
    const std::string& name = listing.classes[label];
    if (!std::binary_search(present.begin(), present.end(), name)) continue;  // no images of this class here
    std::vector<ImageFile> files = images_in(folder / name, split_name + "/" + name, static_cast<int64_t>(label));
    listing.files.insert(listing.files.end(), std::make_move_iterator(files.begin()), std::make_move_iterator(files.end()));
  }
  if (listing.files.empty()) throw DataError(folder.string() + ": no class folders; " + layout_hint());
  return listing;
}

// The members of `split` among a class's `count` files (sorted by name), in name order. The
// shuffle is seeded by the class's name, so a class's split does not depend on the other classes.
std::vector<size_t> split_members(size_t count, const std::string& class_name, Split split) {
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), size_t{0});
  detail::Random random(kSplitSeed ^ util::stable_hash(class_name));
  random.shuffle(order);
  const size_t held_out = count / kHeldOutDivisor;
  auto first = order.begin(), last = order.end();
  switch (split) {
    case Split::Validation: last = first + held_out; break;
    case Split::Test:
      first += held_out;
      last = first + held_out;
      break;
    case Split::Train: first += 2 * held_out; break;
  }
  std::vector<size_t> members(first, last);
  std::sort(members.begin(), members.end());
  return members;
}

// DIR/<class>/...: each class split 80/10/10.
Listing list_class_folders(const fs::path& root, Split split) {
  Listing listing;
  listing.classes = class_folders(root);
  if (listing.classes.empty()) throw DataError(root.string() + ": no class folders; " + layout_hint());
  for (size_t label = 0; label < listing.classes.size(); ++label) {
    const std::string& name = listing.classes[label];
    std::vector<ImageFile> files = images_in(root / name, name, static_cast<int64_t>(label));
    for (size_t member : split_members(files.size(), name, split)) listing.files.push_back(std::move(files[member]));
  }
  if (listing.files.empty()) {
    throw DataError(root.string() + ": no " + std::string(to_string(split)) +
                    " images: each class of n images gives n/10 (rounded down) to validation and as many to test, and "
                    "every class has fewer than 10");
  }
  return listing;
}

Listing list_images(const std::string& dir, Split split) {
  const fs::path root(dir);
  if (!is_folder(root)) throw DataError(dir + ": no such folder; " + layout_hint());
  if (is_folder(root / "train")) return list_split_folders(root, split);
  for (const char* name : {"val", "test"}) {
    if (is_folder(root / name)) {
      throw DataError((root / name).string() + " exists but " + (root / "train").string() +
                      " does not: with split folders, the training images go in train/<class>/");
    }
  }
  return list_class_folders(root, split);
}

// ---- Decoding ----------------------------------------------------------------------------------

// torchvision's Resize(S): the shorter side becomes S and the longer S * long / short, rounded
// down. With no S, the smallest size that covers the crop (the same rounding).
std::pair<int64_t, int64_t> resized_size(int64_t width, int64_t height, const Geometry& geometry) {
  const int64_t side = geometry.resize;
  if (side > 0) return width <= height ? std::pair{side, side * height / width} : std::pair{side * width / height, side};
  if (geometry.height * width >= geometry.width * height) return {width * geometry.height / height, geometry.height};
  return {geometry.width, height * geometry.width / width};
}

// Where the crop starts in a resized side, as torchvision's CenterCrop: round((size - crop) / 2)
// with Python's round (halves to even). A crop larger than the side pads it with zeros, (crop -
// size) / 2 of them (rounded down) before it: a negative start.
int64_t crop_start(int64_t size, int64_t crop) {
  if (crop > size) return -((crop - size) / 2);
  const int64_t excess = size - crop;
  int64_t start = excess / 2;
  if (excess % 2 == 1 && start % 2 == 1) ++start;
  return start;
}

// ITU-R BT.601 luma, rounded to the nearest byte (the weights sum to 1000: white stays 255).
uint8_t luma(const uint8_t* rgb) {
  return static_cast<uint8_t>((299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] + 500) / 1000);
}

using StbPixels = std::unique_ptr<stbi_uc, void (*)(void*)>;

// One image brought to the geometry: C x H x W bytes, planar.
void decode(const ImageFile& file, const Geometry& geometry, std::vector<uint8_t>& out) {
  const std::string path = file.path.string();
  int width = 0, height = 0, stored = 0;
  StbPixels pixels(stbi_load(path.c_str(), &width, &height, &stored, 0), stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw DataError(path + ": cannot decode the image as PNG or JPEG (" + (reason ? reason : "unknown reason") + ")");
  }

  // Channels are converted before resizing: fewer to resize, and luma, being linear, comes out
  // the same either way but for rounding. A grey image stays one channel until it is written out.
  const bool grey = stored <= 2;
  const int channels = grey || geometry.channels == 1 ? 1 : 3;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height);
  std::vector<uint8_t> source(count * static_cast<size_t>(channels));
  const stbi_uc* in = pixels.get();
  for (size_t i = 0; i < count; ++i, in += stored) {
    if (channels == 3) {
      std::copy(in, in + 3, source.begin() + 3 * i);
    } else {
      source[i] = grey ? in[0] : luma(in);
    }
  }
  pixels.reset();

  const auto [resized_width, resized_height] = resized_size(width, height, geometry);
  if (resized_width * resized_height * channels > std::numeric_limits<int>::max()) {
    throw DataError(path + ": " + std::to_string(width) + "x" + std::to_string(height) + " is too far from square to resize to " +
                    std::to_string(resized_width) + "x" + std::to_string(resized_height));
  }
  std::vector<uint8_t> resized;
  const uint8_t* image = source.data();
  if (resized_width != width || resized_height != height) {
    resized.resize(static_cast<size_t>(resized_width * resized_height * channels));
    // stb's default filters: Mitchell-Netravali when shrinking (widened by the scale, so it
    // antialiases), Catmull-Rom when enlarging, edges clamped, on the bytes as stored (no gamma),
    // as PIL does. Not stb's triangle filter, which would be PIL's bilinear: Debian's build aborts
    // on an assertion for many sizes with it (nothings/stb#1449).
    const int done = stbir_resize_uint8(source.data(), width, height, 0, resized.data(), static_cast<int>(resized_width),
                                        static_cast<int>(resized_height), 0, channels);
    if (!done) throw DataError(path + ": out of memory resizing the image");
    image = resized.data();
  }

  const int64_t top = crop_start(resized_height, geometry.height);
  const int64_t left = crop_start(resized_width, geometry.width);
  out.assign(static_cast<size_t>(geometry.channels * geometry.height * geometry.width), 0);
  auto written = out.begin();
  for (int64_t c = 0; c < geometry.channels; ++c) {
    const int64_t source_channel = channels == 1 ? 0 : c;
    for (int64_t y = 0; y < geometry.height; ++y, written += geometry.width) {
      const int64_t row = top + y;
      if (row < 0 || row >= resized_height) continue;
      for (int64_t x = 0; x < geometry.width; ++x) {
        const int64_t column = left + x;
        if (column >= 0 && column < resized_width) {
          written[x] = image[(row * resized_width + column) * channels + source_channel];
        }
      }
    }
  }
}

// ---- The cache ---------------------------------------------------------------------------------
//
// A file holds a header (magic, the key's hash, N, C, H, W), the N images' bytes, and a checksum:
// the hash of the images' hashes. Machine-local, so in the machine's byte order.

struct CacheHeader {
  char magic[8];
  uint64_t key;
  int64_t count, channels, height, width;
};

// Everything that determines the bytes of the split, so that any change reads to a new file.
std::string cache_key(const std::string& dir, Split split, const Geometry& geometry, const std::vector<ImageFile>& files) {
  std::error_code error;
  fs::path absolute = fs::absolute(dir, error);
  std::string key = "gos images:DIR cache " + std::to_string(kFormatVersion) + '\0' + absolute.lexically_normal().string() +
                    '\0' + std::string(to_string(split)) + '\0' + std::to_string(geometry.channels) + ' ' +
                    std::to_string(geometry.height) + ' ' + std::to_string(geometry.width) + ' ' +
                    std::to_string(geometry.resize) + '\0';
  for (const ImageFile& file : files) {
    const uintmax_t size = fs::file_size(file.path, error);
    if (error) throw DataError(file.path.string() + ": cannot read the file (" + error.message() + ")");
    const auto modified = fs::last_write_time(file.path, error);
    if (error) throw DataError(file.path.string() + ": cannot read the file (" + error.message() + ")");
    key += file.relative + '\0' + std::to_string(size) + ' ' + std::to_string(modified.time_since_epoch().count()) + '\0';
  }
  return key;
}

CacheHeader cache_header(uint64_t key, int64_t count, const Geometry& geometry) {
  CacheHeader header{};
  std::memcpy(header.magic, kCacheMagic, sizeof header.magic);
  header.key = key;
  header.count = count;
  header.channels = geometry.channels;
  header.height = geometry.height;
  header.width = geometry.width;
  return header;
}

// True when the cache file holds the images of `expected`: its size, header and checksum agree.
// Read in chunks, so a file larger than memory is checked without loading it.
bool cache_is_whole(const fs::path& path, const CacheHeader& expected) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const size_t image_bytes = static_cast<size_t>(expected.channels * expected.height * expected.width);
  std::error_code error;
  const uintmax_t size = fs::file_size(path, error);
  if (error || size != sizeof(CacheHeader) + image_bytes * static_cast<size_t>(expected.count) + sizeof(uint64_t)) return false;
  CacheHeader header;
  if (!in.read(reinterpret_cast<char*>(&header), sizeof header) || std::memcmp(&header, &expected, sizeof header) != 0) {
    return false;
  }
  std::string hashes;
  std::string bytes(image_bytes, '\0');
  for (int64_t i = 0; i < expected.count; ++i) {
    if (!in.read(bytes.data(), static_cast<std::streamsize>(image_bytes))) return false;
    const uint64_t hash = util::stable_hash(bytes);
    hashes.append(reinterpret_cast<const char*>(&hash), sizeof hash);
  }
  uint64_t checksum = 0;
  if (!in.read(reinterpret_cast<char*>(&checksum), sizeof checksum)) return false;
  return checksum == util::stable_hash(hashes);
}

// Writes the cache file under a temporary name, renamed into place only once complete, so that a
// run stopped half-way leaves no half file behind. A cache that cannot be written is given up
// quietly: it only saves time, and the images are still loaded.
class CacheWriter {
 public:
  CacheWriter(fs::path path, const CacheHeader& header) : path_(std::move(path)) {
    static std::atomic<int> serial{0};
    temporary_ = path_;
    temporary_ += ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(serial++);
    std::error_code ignored;
    fs::create_directories(path_.parent_path(), ignored);
    out_.open(temporary_, std::ios::binary | std::ios::trunc);
    out_.write(reinterpret_cast<const char*>(&header), sizeof header);
  }
  ~CacheWriter() {
    if (committed_) return;
    out_.close();
    std::error_code ignored;
    fs::remove(temporary_, ignored);
  }
  CacheWriter(const CacheWriter&) = delete;
  CacheWriter& operator=(const CacheWriter&) = delete;

  bool writing() const { return static_cast<bool>(out_); }

  void add(const std::vector<uint8_t>& image) {
    if (!out_) return;
    const std::string_view bytes(reinterpret_cast<const char*>(image.data()), image.size());
    const uint64_t hash = util::stable_hash(bytes);
    hashes_.append(reinterpret_cast<const char*>(&hash), sizeof hash);
    out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  // True when the file is in place.
  bool commit() {
    if (!out_) return false;
    const uint64_t checksum = util::stable_hash(hashes_);
    out_.write(reinterpret_cast<const char*>(&checksum), sizeof checksum);
    out_.close();
    if (!out_) return false;
    std::error_code error;
    fs::rename(temporary_, path_, error);
    committed_ = !error;
    return committed_;
  }

 private:
  fs::path path_, temporary_;
  std::ofstream out_;
  std::string hashes_;
  bool committed_ = false;
};

}  // namespace

ImageDataset load_image_folder(const std::string& dir, Split split, const InputFormat& format) {
  const Geometry geometry = geometry_of(dir, format);
  Listing listing = list_images(dir, split);

  ImageDataset dataset;
  dataset.classes = static_cast<int64_t>(listing.classes.size());
  dataset.class_names = std::move(listing.classes);
  dataset.labels.reserve(listing.files.size());
  for (const ImageFile& file : listing.files) dataset.labels.push_back(file.label);
  const auto count = static_cast<int64_t>(listing.files.size());
  const std::vector<int64_t> shape{count, geometry.channels, geometry.height, geometry.width};

  // With a cache folder the images are decoded into the cache file and read from it as mapped
  // memory (a set larger than memory is never held whole); without one, or when it cannot be
  // written, they are held in memory as bytes.
  if (!format.cache_dir.empty()) {
    const std::string key = cache_key(dir, split, geometry, listing.files);
    const CacheHeader header = cache_header(util::stable_hash(key), count, geometry);
    const fs::path cache_file = fs::path(format.cache_dir) / ("images-" + util::stable_hash_hex(key) + ".u8");
    bool whole = cache_is_whole(cache_file, header);
    if (!whole) {
      CacheWriter cache(cache_file, header);
      if (cache.writing()) {
        std::vector<uint8_t> image;
        for (const ImageFile& file : listing.files) {
          if (!cache.writing()) break;  // a full disk: held in memory below instead
          decode(file, geometry, image);
          cache.add(image);
        }
        whole = cache.commit();
      }
    }
    if (whole) {
      dataset.bytes = SampleBytes::map(cache_file.string(), sizeof(CacheHeader), shape);
      return dataset;
    }
  }
  const size_t image_bytes = static_cast<size_t>(geometry.channels * geometry.height * geometry.width);
  std::vector<uint8_t> bytes, image;
  bytes.reserve(image_bytes * listing.files.size());
  for (const ImageFile& file : listing.files) {
    decode(file, geometry, image);
    bytes.insert(bytes.end(), image.begin(), image.end());
  }
  dataset.bytes = std::make_shared<const SampleBytes>(shape, std::move(bytes));
  return dataset;
}

}  // namespace gos::data
