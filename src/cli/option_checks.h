#pragma once
// Internal to the CLI: checks for numeric options whose messages say what is wanted. CLI11's own
// (PositiveNumber) says "Value 0 not in range 0.000000 to 1797693134862315708145274237317043567980..."
#include <CLI/CLI.hpp>

#include <charconv>
#include <string>

namespace gos::cli {

// A whole number of at least `lowest`; `meaning` (e.g. "0: every core") is added in brackets.
inline CLI::Validator whole_number_at_least(long long lowest, const std::string& meaning = {}) {
  const std::string wanted = "must be a whole number of at least " + std::to_string(lowest) +
                             (meaning.empty() ? "" : " (" + meaning + ")");
  return CLI::Validator(
      [lowest, wanted](std::string& text) -> std::string {
        long long value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (error != std::errc() || end != text.data() + text.size() || value < lowest) return wanted + ", not " + text;
        return {};
      },
      lowest == 1 ? "POSITIVE" : lowest == 0 ? "NON-NEGATIVE" : ">=" + std::to_string(lowest));
}

// A number above zero (`positive`) or of zero or more.
inline CLI::Validator number_from_zero(bool positive, const std::string& meaning = {}) {
  const std::string wanted = std::string(positive ? "must be a number above 0" : "must be a number of 0 or more") +
                             (meaning.empty() ? "" : " (" + meaning + ")");
  return CLI::Validator(
      [positive, wanted](std::string& text) -> std::string {
        double value = 0;
        const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
        const bool in_range = positive ? value > 0 : value >= 0;
        if (error != std::errc() || end != text.data() + text.size() || !in_range) return wanted + ", not " + text;
        return {};
      },
      positive ? "POSITIVE" : "NON-NEGATIVE");
}

}  // namespace gos::cli
