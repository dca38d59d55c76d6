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

// The notation with long const tables (a shift's one-hot table) cut to their first values:
// "const C[64,1,3,3] = {0, 1, 0, ...}". For people; --json keeps the full, parseable text.
inline std::string abbreviate_constants(const std::string& text, size_t keep = 24) {
  std::string out;
  size_t at = 0;
  while (true) {
    size_t open = text.find("= {", at);
    if (open == std::string::npos) break;
    size_t close = text.find('}', open);
    if (close == std::string::npos) break;
    out += text.substr(at, open + 3 - at);
    std::string values = text.substr(open + 3, close - open - 3);
    out += values.size() > keep ? values.substr(0, values.rfind(',', keep)) + ", ..." : values;
    out += "}";
    at = close + 1;
  }
  return out + text.substr(at);
}

}  // namespace gos::cli
