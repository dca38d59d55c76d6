#pragma once
// NumPy's .npy files: the arrays the PPG layout stores (docs/ppg.md) and a user's own arrays
// (arrays:DIR, docs/data.md), read and written without Python. Reads format versions 1.0, 2.0 and
// 3.0 of little-endian float32, float64, int32 and int64 arrays and of uint8, int8 and bool arrays,
// in C order, of any shape, from a file or from bytes in memory (an .npz member); writes version
// 1.0, C order.
//
//   NpyArray hr = read_npy("S1/hr.npy");       // hr.shape == {N}, hr.values[i] as float
//   write_npy("S1/hr.npy", {n}, bpm);          // float32
//
// Every problem (missing file, not .npy, truncated, a dtype or order it does not read) is a
// DataError with one line that names the file.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gos::data {

enum class NpyType { Float32, Float64, Int32, Int64, UInt8, Int8, Bool };
std::string_view to_string(NpyType type);  // NumPy's name: "float32", "uint8", "bool"...
bool is_float(NpyType type);               // Float32 or Float64

struct NpyArray {
  std::vector<int64_t> shape;  // {} for a scalar
  NpyType stored = NpyType::Float32;  // the file's dtype
  // Every element in C order as float: float64 is rounded, integers are converted (exact up to
  // 2^24, plenty for labels and ids), bool is 0 or 1.
  std::vector<float> values;

  int64_t elements() const { return static_cast<int64_t>(values.size()); }
};

NpyArray read_npy(const std::string& path);
// The same from the bytes of a whole .npy file; `name` is what errors call it.
NpyArray parse_npy(std::span<const char> bytes, const std::string& name);

// The shape and dtype alone, without reading the elements (a large array's shape checked cheaply).
struct NpyHeader {
  std::vector<int64_t> shape;
  NpyType stored = NpyType::Float32;
};
NpyHeader read_npy_header(const std::string& path);
// The same from a stream (a zip member): `read(buffer, count)` fills up to `count` bytes and returns
// how many it filled, fewer only at the end.
NpyHeader read_npy_header(const std::function<size_t(char* buffer, size_t count)>& read, const std::string& name);

// Writes `values` (C order, as many as `shape` holds) as '<f4', '<f8', '<i4', '<i8' or '|u1'.
// Throws DataError when the count does not match the shape or the file cannot be written.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> values);
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const double> values);
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const int32_t> values);
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const int64_t> values);
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const uint8_t> values);

}  // namespace gos::data
