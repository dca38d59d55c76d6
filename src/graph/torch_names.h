#pragma once
// Internal to the graph part: graph names (ONNX names may hold any character) as torch
// parameter names and TorchScript identifiers.
#include <cctype>
#include <set>
#include <string>
#include <string_view>

namespace gos::graph::detail {

// `name` with every character outside [A-Za-z0-9_] replaced by '_' (torch forbids dots in
// parameter names) and '_' before a leading digit.
inline std::string torch_identifier(std::string_view name) {
  std::string identifier;
  for (char c : name) identifier += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (identifier.empty() || std::isdigit(static_cast<unsigned char>(identifier[0]))) identifier = "_" + identifier;
  return identifier;
}

// Hands out identifiers, suffixing _2, _3, ... where sanitising made two names meet.
class UniqueNames {
 public:
  std::string claim(std::string_view name) {
    std::string base = torch_identifier(name), candidate = base;
    for (int suffix = 2; !taken_.insert(candidate).second; ++suffix) candidate = base + "_" + std::to_string(suffix);
    return candidate;
  }

 private:
  std::set<std::string> taken_;
};

}  // namespace gos::graph::detail
