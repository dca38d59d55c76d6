#pragma once
// Internal to the CLI: how numbers and shapes read in human output.
#include <fmt/format.h>

#include <algorithm>
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

// One operator of a per-operator table (`gos bench --per-op` measures its time, `gos
// latency-model predict` predicts it).
struct OperatorRow {
  std::string node, op_type;
  int64_t macs = 0;
  double ms = 0;
};

// Each operator's MACs and time beside their shares of the totals: where the shares disagree,
// MACs mislead about time.
inline void print_operator_table(const std::vector<OperatorRow>& rows, const std::string& time_heading) {
  int64_t total_macs = 0;
  double total_ms = 0;
  size_t width = 4;
  for (const auto& row : rows) {
    total_macs += row.macs;
    total_ms += row.ms;
    width = std::max(width, row.node.size());
  }
  width = std::min<size_t>(width, 40);
  const size_t time_width = std::max<size_t>(10, time_heading.size());
  fmt::print("\n{:<{}}  {:<18} {:>13} {:>8} {:>{}} {:>8}\n", "node", width, "op type", "MACs", "MACs %", time_heading,
             time_width, "time %");
  for (const auto& row : rows) {
    fmt::print("{:<{}}  {:<18} {:>13} {:>7.1f}% {:>{}.4f} {:>7.1f}%\n", row.node, width, row.op_type, grouped(row.macs),
               total_macs ? 100.0 * static_cast<double>(row.macs) / static_cast<double>(total_macs) : 0.0, row.ms,
               time_width, total_ms > 0 ? 100.0 * row.ms / total_ms : 0.0);
  }
}

}  // namespace gos::cli
