#pragma once
// Internal to data: a tiny seeded generator whose sequence is the same on every platform (the
// standard distributions are implementation-defined), so splits and synthetic sets are
// reproducible everywhere.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <utility>
#include <vector>

namespace gos::data::detail {

// SplitMix64 (Steele, Lea and Flood, 2014).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  // Standard normal by Box-Muller on this generator (one of the pair; simplicity over speed).
  double normal() {
    const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));  // 1 - u is in (0, 1]
    return radius * std::cos(2.0 * std::numbers::pi * uniform());
  }
  // Uniform in [0, bound); the modulo bias is below 2^-40 for the bounds used here.
  uint64_t below(uint64_t bound) { return next() % bound; }

  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace gos::data::detail
