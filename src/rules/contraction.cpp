// Reading the roles of a contraction's indices off its subscripts (see contraction.h).
#include "rules/contraction.h"

#include <algorithm>
#include <set>

namespace gos::rules::detail {

namespace {

std::set<std::string> indices_in(const ir::Access& access) {
  std::set<std::string> names;
  for (const auto& subscript : access.subscripts) {
    for (const auto& term : subscript.terms()) names.insert(term.first);
  }
  return names;
}

bool only_terms_in(const ir::Affine& subscript, const std::set<std::string>& allowed) {
  return std::all_of(subscript.terms().begin(), subscript.terms().end(), [&](const auto& term) {
    return allowed.count(term.first) && term.second > 0;
  });
}

class Analysis {
 public:
  Analysis(const ir::OpExpr& op, size_t index) : op_(op), s_(op.statements()[index]) { result_.statement = index; }

  std::optional<Contraction> run() {
    if (!find_factors() || !classify_indices() || !read_output() || !read_data() || !read_weight()) return std::nullopt;
    return result_;
  }

 private:
  bool find_factors() {
    if (s_.reduction != ir::Reduction::Sum || s_.factors.size() != 2) return false;
    for (size_t i = 0; i < 2; ++i) {
      ir::Role role = op_.tensor(s_.factors[i].tensor).role;
      if (role == ir::Role::Param) result_.weight_factor = i;
      else if (role == ir::Role::Input || role == ir::Role::Intermediate) result_.data_factor = i;
      else return false;
    }
    if (result_.weight_factor == result_.data_factor) return false;
    x_ = &s_.factors[result_.data_factor];
    w_ = &s_.factors[result_.weight_factor];
    result_.data = x_->tensor;
    result_.weight = w_->tensor;
    return x_->tensor != w_->tensor;
  }

  // The one dimension of the data access that uses `name`, if exactly one does.
  std::optional<size_t> data_dim_of(const std::string& name) const {
    std::optional<size_t> found;
    for (size_t dim = 0; dim < x_->subscripts.size(); ++dim) {
      if (x_->subscripts[dim].coefficient(name) == 0) continue;
      if (found) return std::nullopt;
      found = dim;
    }
    return found;
  }

  bool classify_indices() {
    const auto in_w = indices_in(*w_), in_x = indices_in(*x_);
    for (const auto& index : s_.output_indices) {
      bool w = in_w.count(index.name) > 0, x = in_x.count(index.name) > 0;
      if (w && x) {
        if (result_.group) return false;
        result_.group = index;
      } else if (w) {
        if (result_.out) return false;
        result_.out = index;
      } else if (x) {
        positions_.insert(index.name);
      } else {
        return false;
      }
    }
    for (const auto& index : s_.reduction_indices) {
      if (!in_w.count(index.name) || !in_x.count(index.name)) return false;
      auto dim = data_dim_of(index.name);
      if (!dim) return false;
      bool beside_position = std::any_of(x_->subscripts[*dim].terms().begin(), x_->subscripts[*dim].terms().end(),
                                         [&](const auto& term) { return positions_.count(term.first) > 0; });
      if (beside_position) {
        taps_.insert(index.name);
      } else {
        if (result_.in) return false;
        result_.in = index;
      }
    }
    return true;
  }

  std::set<std::string> channel_indices(bool output_side) const {
    std::set<std::string> names;
    if (result_.group) names.insert(result_.group->name);
    if (output_side && result_.out) names.insert(result_.out->name);
    if (!output_side && result_.in) names.insert(result_.in->name);
    return names;
  }

  bool read_output() {
    const auto channels = channel_indices(true);
    for (size_t dim = 0; dim < s_.output.subscripts.size(); ++dim) {
      const ir::Affine& subscript = s_.output.subscripts[dim];
      if (only_terms_in(subscript, channels)) {
        if (result_.output_channel_dim) return false;
        result_.output_channel_dim = dim;
      } else if (auto position = subscript.plain_index(); position && positions_.count(*position)) {
        output_dim_of_[*position] = dim;
      } else {
        return false;
      }
    }
    return output_dim_of_.size() == positions_.size();
  }

  bool read_data() {
    const auto channels = channel_indices(false);
    std::set<std::string> taps_seen;
    for (size_t dim = 0; dim < x_->subscripts.size(); ++dim) {
      const ir::Affine& subscript = x_->subscripts[dim];
      if (subscript.terms().empty()) continue;  // a constant read, e.g. the single channel of X[n,0,h,w]
      if (only_terms_in(subscript, channels)) {
        if (result_.data_channel_dim || subscript.constant_term() != 0) return false;
        result_.data_channel_dim = dim;
        continue;
      }
      Axis axis;
      axis.data_dim = dim;
      axis.offset = subscript.constant_term();
      for (const auto& [name, coefficient] : subscript.terms()) {
        if (coefficient <= 0) return false;
        if (positions_.count(name)) {
          if (!axis.position.empty()) return false;
          axis.position = name;
          axis.stride = coefficient;
        } else if (taps_.count(name)) {
          axis.taps.push_back({name, s_.extent_of(name), coefficient});
          taps_seen.insert(name);
        } else {
          return false;
        }
      }
      if (axis.position.empty()) return false;
      axis.extent = s_.extent_of(axis.position);
      axis.output_dim = output_dim_of_.at(axis.position);
      result_.axes.push_back(axis);
    }
    return taps_seen == taps_ && result_.axes.size() == positions_.size();
  }

  bool read_weight() {
    const auto out_channels = channel_indices(true);
    std::optional<size_t> free_slot;
    for (size_t dim = 0; dim < w_->subscripts.size(); ++dim) {
      const ir::Affine& subscript = w_->subscripts[dim];
      if (subscript.terms().empty()) {
        if (subscript.constant_term() != 0) return false;
        if (!free_slot) free_slot = dim;
      } else if (subscript.constant_term() != 0) {
        return false;
      } else if (only_terms_in(subscript, out_channels)) {
        if (result_.weight_out_dim) return false;
        result_.weight_out_dim = dim;
      } else if (result_.in && subscript.plain_index() == result_.in->name) {
        result_.weight_in_dim = dim;
      } else if (!only_terms_in(subscript, taps_)) {
        return false;
      }
    }
    if (!result_.weight_in_dim) result_.weight_in_dim = free_slot;
    return true;
  }

  const ir::OpExpr& op_;
  const ir::Statement& s_;
  const ir::Access* x_ = nullptr;
  const ir::Access* w_ = nullptr;
  std::set<std::string> taps_, positions_;
  std::map<std::string, size_t> output_dim_of_;
  Contraction result_;
};

}  // namespace

std::vector<Tap> Contraction::taps() const {
  std::vector<Tap> all;
  for (const auto& axis : axes) all.insert(all.end(), axis.taps.begin(), axis.taps.end());
  return all;
}

std::optional<Contraction> analyse(const ir::OpExpr& op, size_t statement) {
  if (statement >= op.statements().size()) return std::nullopt;
  return Analysis(op, statement).run();
}

}  // namespace gos::rules::detail
