#pragma once
// A 64-bit FNV-1a hash of bytes: the same on every run and machine (std::hash is not), for keys
// that are stored (journal entries) or that split data reproducibly (the predictor's held-out set).
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace gos::util {

inline uint64_t stable_hash(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

// The hash as 16 hexadecimal digits.
inline std::string stable_hash_hex(std::string_view bytes) {
  char digits[17];
  std::snprintf(digits, sizeof digits, "%016llx", static_cast<unsigned long long>(stable_hash(bytes)));
  return digits;
}

}  // namespace gos::util
