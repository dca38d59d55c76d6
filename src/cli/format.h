#pragma once
// Internal to the CLI: how numbers and shapes read in human output.
#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::cli {

// 3612672 -> "3,612,672": cost figures are read by people comparing orders of magnitude.
inline std::string grouped(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int position = static_cast<int>(digits.size()) - 3; position > 0; position -= 3) digits.insert(position, ",");
  return (value < 0 ? "-" : "") + digits;
}

using ir::shape_text;

}  // namespace gos::cli
