#pragma once
// NumPy's .npy files: the arrays the PPG layout stores (docs/ppg.md), read and written without
// Python. Reads format versions 1.0, 2.0 and 3.0 of little-endian float32, float64, int32 and
// int64 arrays in C order, of any shape; writes version 1.0, C order.
//
//   NpyArray hr = read_npy("S1/hr.npy");       // hr.shape == {N}, hr.values[i] as float
//   write_npy("S1/hr.npy", {n}, bpm);          // float32
//
// Every problem (missing file, not .npy, truncated, a dtype or order it does not read) is a
// DataError with one line that names the file.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace gos::data {

enum class NpyType { Float32, Float64, Int32, Int64 };

struct NpyArray {
  std::vector<int64_t> shape;  // {} for a scalar
  NpyType stored = NpyType::Float32;  // the file's dtype
  // Every element in C order as float: float64 is rounded, integers are converted (exact up to
  // 2^24, plenty for labels and ids).
  std::vector<float> values;

  int64_t elements() const { return static_cast<int64_t>(values.size()); }
};

NpyArray read_npy(const std::string& path);

// Writes `values` (C order, as many as `shape` holds) as '<f4' or '<i4'. Throws DataError when
// the count does not match the shape or the file cannot be written.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> values);
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::span<const int32_t> values);

}  // namespace gos::data
