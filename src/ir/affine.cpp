#include "ir/ir.h"

#include <algorithm>

namespace gos::ir {

namespace {

// Sorts by index name and merges repeated indices, dropping zero coefficients, so that equal
// forms have equal representations.
std::vector<Affine::Term> normalise(std::vector<Affine::Term> terms) {
  std::sort(terms.begin(), terms.end());
  std::vector<Affine::Term> merged;
  for (auto& [name, coefficient] : terms) {
    if (!merged.empty() && merged.back().first == name) {
      merged.back().second += coefficient;
    } else {
      merged.emplace_back(std::move(name), coefficient);
    }
  }
  std::erase_if(merged, [](const Affine::Term& term) { return term.second == 0; });
  return merged;
}

}  // namespace

Affine::Affine(std::vector<Term> terms, int64_t constant) : terms_(normalise(std::move(terms))), constant_(constant) {}

Affine Affine::index(std::string name, int64_t coefficient) { return Affine({{std::move(name), coefficient}}, 0); }

Affine Affine::constant(int64_t value) { return Affine({}, value); }

int64_t Affine::coefficient(std::string_view index) const {
  for (const auto& [name, coefficient] : terms_) {
    if (name == index) return coefficient;
  }
  return 0;
}

std::optional<std::string> Affine::plain_index() const {
  if (terms_.size() == 1 && terms_[0].second == 1 && constant_ == 0) return terms_[0].first;
  return std::nullopt;
}

Affine Affine::operator+(const Affine& other) const {
  std::vector<Term> terms = terms_;
  terms.insert(terms.end(), other.terms_.begin(), other.terms_.end());
  return Affine(std::move(terms), constant_ + other.constant_);
}

Affine Affine::operator-(const Affine& other) const { return *this + other * -1; }

Affine Affine::operator*(int64_t factor) const {
  std::vector<Term> terms = terms_;
  for (auto& term : terms) term.second *= factor;
  return Affine(std::move(terms), constant_ * factor);
}

Affine Affine::rename(const std::map<std::string, std::string>& names) const {
  std::vector<Term> terms = terms_;
  for (auto& term : terms) {
    if (auto found = names.find(term.first); found != names.end()) term.first = found->second;
  }
  return Affine(std::move(terms), constant_);
}

}  // namespace gos::ir
