// .npy files (NumPy's format description, numpy/lib/format.py): a magic string, a version, the
// length of a header that is a Python dict literal, the header, then the raw elements.
#include "data/npy.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/data.h"

namespace gos::data {

// Elements are copied as they lie in the file; a big-endian host would need byte swaps.
static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
// numpy aligns the data to 64 bytes so that it can be memory-mapped.
constexpr size_t kAlignment = 64;

struct Dtype {
  const char* descr;
  NpyType type;
  size_t bytes;
};
// One-byte types have no byte order: numpy writes them with '|'.
constexpr Dtype kDtypes[] = {{"<f4", NpyType::Float32, 4}, {"<f8", NpyType::Float64, 8}, {"<i4", NpyType::Int32, 4},
                             {"<i8", NpyType::Int64, 8},   {"|u1", NpyType::UInt8, 1},   {"|i1", NpyType::Int8, 1},
                             {"|b1", NpyType::Bool, 1}};

std::ifstream open(const std::string& path) {
  // A folder opens as a stream on Linux, and its "size" can be absurd.
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) throw DataError(path + ": a folder, not a .npy file");
  std::ifstream file(path, std::ios::binary);
  if (!file) throw DataError(path + ": cannot open the file (missing or unreadable)");
  return file;
}

// Sized up front: growing a buffer byte by byte would briefly hold twice a large array.
std::vector<char> read_bytes(const std::string& path) {
  std::ifstream file = open(path);
  file.seekg(0, std::ios::end);
  const std::streamoff size = file.tellg();
  file.seekg(0, std::ios::beg);
  if (size < 0 || !file) throw DataError(path + ": cannot read the file");
  std::vector<char> bytes(static_cast<size_t>(size));
  file.read(bytes.data(), size);
  if (file.gcount() != size) throw DataError(path + ": cannot read the file (it changed while being read)");
  return bytes;
}

uint32_t little_endian(const char* bytes, size_t count) {
  uint32_t value = 0;
  for (size_t i = 0; i < count; ++i) value |= uint32_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  return value;
}

// Enough bytes to know where the header ends: magic, version and the longest length field.
constexpr size_t kPrefixBytes = kMagicBytes + 2 + 4;

// Where the header's text starts, and its length, after checking the magic and the version.
struct HeaderBounds {
  size_t start = 0;
  size_t length = 0;
};
HeaderBounds header_bounds(const std::string& path, std::span<const char> bytes) {
  if (bytes.size() < kMagicBytes + 2 || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0) {
    throw DataError(path + ": not a .npy file (no \\x93NUMPY magic); write it with numpy.save");
  }
  const int major = static_cast<uint8_t>(bytes[6]);
  const int minor = static_cast<uint8_t>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0) {
    throw DataError(path + ": .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    "; gos reads 1.0, 2.0 and 3.0");
  }
  // Version 1.0 has a 2-byte header length; 2.0 and 3.0 (UTF-8 header) a 4-byte one.
  const size_t length_bytes = major == 1 ? 2 : 4;
  const size_t header_start = kMagicBytes + 2 + length_bytes;
  if (bytes.size() < header_start) throw DataError(path + ": truncated .npy header");
  return {header_start, little_endian(bytes.data() + kMagicBytes + 2, length_bytes)};
}

// The header's text, after checking the magic and the version.
std::string_view header_text(const std::string& path, std::span<const char> bytes, size_t& data_offset) {
  const HeaderBounds bounds = header_bounds(path, bytes);
  if (bytes.size() < bounds.start + bounds.length) throw DataError(path + ": truncated .npy header");
  data_offset = bounds.start + bounds.length;
  return {bytes.data() + bounds.start, bounds.length};
}

// The text after `'key':` in the header dict, leading spaces skipped.
std::string_view value_of(const std::string& path, std::string_view header, std::string_view key) {
  for (char quote : {'\'', '"'}) {
    const std::string quoted = quote + std::string(key) + quote;
    size_t at = header.find(quoted);
    if (at == std::string_view::npos) continue;
    at = header.find(':', at + quoted.size());
    if (at == std::string_view::npos) break;
    std::string_view rest = header.substr(at + 1);
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
    return rest;
  }
  throw DataError(path + ": the .npy header has no '" + std::string(key) + "'");
}

const Dtype& parse_dtype(const std::string& path, std::string_view header) {
  std::string_view value = value_of(path, header, "descr");
  if (value.empty() || (value.front() != '\'' && value.front() != '"')) {
    throw DataError(path + ": the .npy dtype is not a simple type (structured arrays are not supported)");
  }
  const size_t end = value.find(value.front(), 1);
  if (end == std::string_view::npos) throw DataError(path + ": malformed .npy header");
  const std::string_view descr = value.substr(1, end - 1);
  for (const Dtype& dtype : kDtypes) {
    if (descr == dtype.descr) return dtype;
  }
  if (!descr.empty() && descr.front() == '>') {
    throw DataError(path + ": big-endian dtype '" + std::string(descr) +
                    "'; save it little-endian (array.astype('<f4'))");
  }
  throw DataError(path + ": dtype '" + std::string(descr) +
                  "' is not supported; save float32, float64, int32, int64, uint8, int8 or bool (array.astype('float32'))");
}

bool parse_fortran_order(const std::string& path, std::string_view header) {
  std::string_view value = value_of(path, header, "fortran_order");
  if (value.starts_with("True")) return true;
  if (value.starts_with("False")) return false;
  throw DataError(path + ": malformed .npy header (fortran_order is neither True nor False)");
}

std::vector<int64_t> parse_shape(const std::string& path, std::string_view header) {
  std::string_view value = value_of(path, header, "shape");
  const std::string malformed = path + ": malformed .npy header (shape is not a tuple of sizes)";
  if (value.empty() || value.front() != '(') throw DataError(malformed);
  const size_t close = value.find(')');
  if (close == std::string_view::npos) throw DataError(malformed);
  std::string_view inside = value.substr(1, close - 1);
  std::vector<int64_t> shape;
  while (true) {
    while (!inside.empty() && (std::isspace(static_cast<unsigned char>(inside.front())) || inside.front() == ',')) {
      inside.remove_prefix(1);
    }
    if (inside.empty()) return shape;
    int64_t size = 0;
    size_t digits = 0;
    while (digits < inside.size() && std::isdigit(static_cast<unsigned char>(inside[digits]))) {
      if (size > (std::numeric_limits<int64_t>::max() - 9) / 10) throw DataError(malformed);
      size = size * 10 + (inside[digits++] - '0');
    }
    if (digits == 0) throw DataError(malformed);
    inside.remove_prefix(digits);
    if (!inside.empty() && inside.front() == 'L') inside.remove_prefix(1);  // Python 2's long literals
    shape.push_back(size);
  }
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

template <typename Stored>
void convert(const char* data, int64_t count, std::vector<float>& values) {
  values.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    Stored element;
    std::memcpy(&element, data + i * static_cast<int64_t>(sizeof(Stored)), sizeof(Stored));
    values[static_cast<size_t>(i)] = static_cast<float>(element);
  }
}

// numpy's bool is one byte; any nonzero byte is true (copying it into a C++ bool would be undefined).
void convert_bool(const char* data, int64_t count, std::vector<float>& values) {
  values.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[static_cast<size_t>(i)] = data[i] != 0 ? 1.0f : 0.0f;
}

// The dtype and shape the header declares; Fortran order is refused.
const Dtype& parse_header(const std::string& path, std::string_view header, std::vector<int64_t>& shape) {
  const Dtype& dtype = parse_dtype(path, header);
  if (parse_fortran_order(path, header)) {
    throw DataError(path + ": the array is in Fortran order; save it in C order (numpy.ascontiguousarray)");
  }
  shape = parse_shape(path, header);
  return dtype;
}

std::string header_for(const char* descr, const std::vector<int64_t>& shape) {
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape_text(shape) +
                       ", }";
  // Magic, version, 2-byte length, the dict, spaces, then a newline: a multiple of kAlignment.
  const size_t unpadded = kMagicBytes + 2 + 2 + header.size() + 1;
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  return header + "\n";
}

int64_t element_count(const std::string& path, const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t size : shape) {
    if (size < 0 || (size > 0 && count > std::numeric_limits<int64_t>::max() / size)) {
      throw DataError(path + ": cannot write an array of shape " + shape_text(shape));
    }
    count *= size;
  }
  return count;
}

void write_raw(const std::string& path, const char* descr, const std::vector<int64_t>& shape, const void* data,
               size_t element_bytes, size_t count) {
  if (element_count(path, shape) != static_cast<int64_t>(count)) {
    throw DataError(path + ": " + std::to_string(count) + " values do not fill shape " + shape_text(shape));
  }
  const std::string header = header_for(descr, shape);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  const char version[] = {1, 0};
  const char length[] = {static_cast<char>(header.size() & 0xFF), static_cast<char>(header.size() >> 8)};
  file.write(kMagic, kMagicBytes);
  file.write(version, 2);
  file.write(length, 2);
  file.write(header.data(), static_cast<std::streamsize>(header.size()));
  file.write(static_cast<const char*>(data), static_cast<std::streamsize>(element_bytes * count));
  file.close();
  if (!file) throw DataError(path + ": cannot write the file (check that its folder exists and is writable)");
}

}  // namespace

std::string_view to_string(NpyType type) {
  switch (type) {
    case NpyType::Float32: return "float32";
    case NpyType::Float64: return "float64";
    case NpyType::Int32: return "int32";
    case NpyType::Int64: return "int64";
    case NpyType::UInt8: return "uint8";
    case NpyType::Int8: return "int8";
    case NpyType::Bool: return "bool";
  }
  return "unknown";
}

bool is_float(NpyType type) { return type == NpyType::Float32 || type == NpyType::Float64; }

NpyArray read_npy(const std::string& path) { return parse_npy(read_bytes(path), path); }

NpyArray parse_npy(std::span<const char> bytes, const std::string& path) {
  size_t data_offset = 0;
  const std::string_view header = header_text(path, bytes, data_offset);
  NpyArray array;
  const Dtype& dtype = parse_header(path, header, array.shape);
  array.stored = dtype.type;

  // Counted against the elements present, so an absurd shape can neither overflow nor allocate.
  const uint64_t available = bytes.size() - data_offset;
  const uint64_t present = available / dtype.bytes;
  const bool empty = std::find(array.shape.begin(), array.shape.end(), 0) != array.shape.end();
  uint64_t count = empty ? 0 : 1;
  bool truncated = false;
  for (int64_t size : array.shape) {
    if (empty) break;
    if (count > present / static_cast<uint64_t>(size)) truncated = true;
    if (truncated) break;
    count *= static_cast<uint64_t>(size);
  }
  if (truncated) {
    throw DataError(path + ": truncated: shape " + shape_text(array.shape) + " of " + dtype.descr + " needs more than the " +
                    std::to_string(available) + " bytes of data the file holds");
  }
  const char* data = bytes.data() + data_offset;
  const auto elements = static_cast<int64_t>(count);
  switch (dtype.type) {
    case NpyType::Float32: convert<float>(data, elements, array.values); break;
    case NpyType::Float64: convert<double>(data, elements, array.values); break;
    case NpyType::Int32: convert<int32_t>(data, elements, array.values); break;
    case NpyType::Int64: convert<int64_t>(data, elements, array.values); break;
    case NpyType::UInt8: convert<uint8_t>(data, elements, array.values); break;
    case NpyType::Int8: convert<int8_t>(data, elements, array.values); break;
    case NpyType::Bool: convert_bool(data, elements, array.values); break;
  }
  return array;
}

NpyHeader read_npy_header(const std::function<size_t(char* buffer, size_t count)>& read, const std::string& path) {
  std::vector<char> bytes(kPrefixBytes);
  bytes.resize(read(bytes.data(), bytes.size()));
  const HeaderBounds bounds = header_bounds(path, bytes);
  const size_t end = bounds.start + bounds.length;
  if (end > bytes.size()) {
    const size_t have = bytes.size();
    bytes.resize(end);
    bytes.resize(have + read(bytes.data() + have, end - have));
  }
  size_t data_offset = 0;
  const std::string_view header = header_text(path, bytes, data_offset);
  NpyHeader result;
  result.stored = parse_header(path, header, result.shape).type;
  return result;
}

NpyHeader read_npy_header(const std::string& path) {
  std::ifstream file = open(path);
  return read_npy_header(
      [&file](char* buffer, size_t count) {
        file.read(buffer, static_cast<std::streamsize>(count));
        return static_cast<size_t>(file.gcount());
      },
      path);
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> values) {
  write_raw(path, "<f4", shape, values.data(), sizeof(float), values.size());
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const double> values) {
  write_raw(path, "<f8", shape, values.data(), sizeof(double), values.size());
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const int32_t> values) {
  write_raw(path, "<i4", shape, values.data(), sizeof(int32_t), values.size());
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const int64_t> values) {
  write_raw(path, "<i8", shape, values.data(), sizeof(int64_t), values.size());
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const uint8_t> values) {
  write_raw(path, "|u1", shape, values.data(), sizeof(uint8_t), values.size());
}

}  // namespace gos::data
