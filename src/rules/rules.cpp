// The rule set, the derivation of candidates to depth 2, deduplication and the cost filter.
#include "rules/rules.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

#include "rules/contraction.h"
#include "rules/rewrite.h"
#include "rules/two_stage.h"

namespace gos::rules {

using detail::Bridge;
using detail::Contraction;
using detail::TwoStageSpec;

std::string RuleStep::text() const {
  if (params.empty()) return rule;
  std::string text = rule + "(";
  for (size_t i = 0; i < params.size(); ++i) {
    if (i) text += ", ";
    text += params[i].second.empty() ? params[i].first : params[i].first + "=" + params[i].second;
  }
  return text + ")";
}

std::string Candidate::derivation_text() const {
  if (derivation.empty()) return "original";
  std::string text;
  for (const auto& step : derivation) text += (text.empty() ? "" : " then ") + step.text();
  return text;
}

Candidate original(const ir::OpExpr& op, const ir::TensorMap& weights) {
  Candidate root{op, {}, {}};
  for (const auto& param : op.tensors_with_role(ir::Role::Param)) {
    auto found = weights.find(param.name);
    if (found == weights.end()) throw ir::IrError("rules: no value for the weight '" + param.name + "'");
    if (found->second.shape != param.shape) {
      throw ir::IrError("rules: weight '" + param.name + "' has shape " + ir::shape_text(found->second.shape) +
                        "; the operator declares " + ir::shape_text(param.shape));
    }
    root.weights.emplace(param.name, found->second);
  }
  return root;
}

namespace {

using Rule = std::function<std::vector<Candidate>(const Candidate&, const Contraction&, const RuleOptions&)>;

int64_t extent_product(const std::vector<detail::Tap>& taps, const std::set<std::string>& selected, bool inside) {
  int64_t product = 1;
  for (const auto& tap : taps) {
    if (selected.count(tap.index) == static_cast<size_t>(inside)) product *= tap.extent;
  }
  return product;
}

std::set<std::string> all_taps(const Contraction& c) {
  std::set<std::string> names;
  for (const auto& tap : c.taps()) names.insert(tap.index);
  return names;
}

std::string window_text(const std::vector<int64_t>& sizes) {
  std::string text;
  for (int64_t size : sizes) text += (text.empty() ? "" : "x") + std::to_string(size);
  return text;
}

std::vector<int64_t> rank_choices(int64_t full_rank, const RuleOptions& options) {
  if (options.ranks) return *options.ranks;
  std::vector<int64_t> ranks;
  for (double fraction : options.rank_fractions) {
    int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::lround(fraction * static_cast<double>(full_rank))));
    if (rank < full_rank && std::find(ranks.begin(), ranks.end(), rank) == ranks.end()) ranks.push_back(rank);
  }
  return ranks;
}

// Rank split of W between the output side (k and the taps of stage 2) and the input side.
std::vector<Candidate> factor_by_rank(const Candidate& from, const Contraction& c, const RuleOptions& options,
                                      const std::set<std::string>& first_taps, RuleStep step) {
  const auto taps = c.taps();
  int64_t rows = (c.out ? c.out->extent : 1) * extent_product(taps, first_taps, false);
  int64_t cols = (c.in ? c.in->extent : 1) * extent_product(taps, first_taps, true);
  std::vector<Candidate> result;
  for (int64_t rank : rank_choices(std::min(rows, cols), options)) {
    RuleStep ranked = step;
    ranked.params.insert(ranked.params.begin(), {"r", std::to_string(rank)});
    auto candidate = detail::two_stage(from, c, {Bridge::Rank, rank, first_taps, false}, ranked);
    if (candidate) result.push_back(std::move(*candidate));
  }
  return result;
}

std::vector<Candidate> rank_split(const Candidate& from, const Contraction& c, const RuleOptions& options) {
  if (!c.out) return {};
  auto result = factor_by_rank(from, c, options, all_taps(c), {"rank_split", {}});
  if (c.has_taps() && c.in) {
    auto at_input = factor_by_rank(from, c, options, {}, {"rank_split", {{"at", "input"}}});
    result.insert(result.end(), at_input.begin(), at_input.end());
  }
  return result;
}

std::vector<Candidate> shared_index(const Candidate& from, const Contraction& c, const RuleOptions&) {
  if (!c.has_taps() || !c.in || !c.out) return {};
  std::vector<Candidate> result;
  if (auto shared_c = detail::two_stage(from, c, {Bridge::SharedIn, 1, all_taps(c), false},
                                        {"shared_index", {{"index", "c"}}})) {
    result.push_back(std::move(*shared_c));
  }
  if (auto shared_k = detail::two_stage(from, c, {Bridge::SharedOut, 1, {}, false}, {"shared_index", {{"index", "k"}}})) {
    result.push_back(std::move(*shared_k));
  }
  return result;
}

// A 1-D window of R = R1*R2 taps read as t = t1 + R1*t2: the same operator, now with two taps on
// the axis, which window_split can separate.
std::optional<Candidate> split_tap(const Candidate& from, const Contraction& c, const detail::Tap& tap, int64_t r1) {
  ir::Statement statement = from.op.statements()[c.statement];
  std::set<std::string> used = detail::index_names(statement);
  std::string t1 = detail::fresh_name(used, tap.index + "1"), t2 = detail::fresh_name(used, tap.index + "2");
  detail::Substitution split{{tap.index, ir::Affine::index(t1) + ir::Affine::index(t2, r1)}};
  for (auto* access : {&statement.factors[0], &statement.factors[1]}) *access = detail::substitute(*access, split);
  std::erase_if(statement.reduction_indices, [&](const ir::IndexVar& index) { return index.name == tap.index; });
  statement.reduction_indices.push_back({t1, r1});
  statement.reduction_indices.push_back({t2, tap.extent / r1});
  return Candidate{detail::replace_statement(from.op, c.statement, {statement}, {}), from.weights, from.derivation};
}

std::vector<Candidate> window_split(const Candidate& from, const Contraction& c, const RuleOptions& options) {
  if (!c.out) return {};
  std::vector<const detail::Axis*> windowed;
  for (const auto& axis : c.axes) {
    if (!axis.taps.empty()) windowed.push_back(&axis);
  }
  if (windowed.size() >= 2) {  // k x 1 then 1 x k: the first windowed axis in stage 1
    std::set<std::string> first;
    for (const auto& tap : windowed[0]->taps) first.insert(tap.index);
    return factor_by_rank(from, c, options, first, {"window_split", {}});
  }
  if (windowed.size() != 1 || windowed[0]->taps.size() != 1) return {};
  const detail::Tap tap = windowed[0]->taps[0];
  std::vector<Candidate> result;
  for (int64_t r1 = 2; r1 * 2 <= tap.extent; ++r1) {
    if (tap.extent % r1 != 0) continue;
    auto split = split_tap(from, c, tap, r1);
    auto analysed = split ? detail::analyse(split->op, c.statement) : std::nullopt;
    if (!analysed) continue;
    // Stage 1 takes t1, the new tap with the original dilation; stage 2 takes t2, dilated by R1.
    const auto new_taps = analysed->taps();
    auto t1 = std::min_element(new_taps.begin(), new_taps.end(),
                               [](const auto& a, const auto& b) { return a.dilation < b.dilation; });
    if (new_taps.size() != 2) continue;
    const std::string first_tap = t1->index;
    auto pieces = factor_by_rank(*split, *analysed, options, {first_tap},
                                 {"window_split", {{"taps", std::to_string(r1) + "x" + std::to_string(tap.extent / r1)}}});
    result.insert(result.end(), pieces.begin(), pieces.end());
  }
  return result;
}

std::vector<int64_t> group_choices(int64_t out, int64_t in, const RuleOptions& options) {
  if (options.groups) return *options.groups;
  std::vector<int64_t> groups;
  int64_t common = std::gcd(out, in);
  for (int64_t g = 2; g <= common && static_cast<int>(groups.size()) < options.max_group_choices; ++g) {
    if (common % g == 0) groups.push_back(g);
  }
  return groups;
}

// k -> (q, k'), c -> (q, c') with the weight only where the q's match: the block-diagonal part.
std::optional<Candidate> grouped(const Candidate& from, const Contraction& c, int64_t groups, bool shuffle) {
  const int64_t out = c.out->extent, in = c.in->extent;
  if (groups <= 0 || out % groups != 0 || in % groups != 0) return std::nullopt;
  const int64_t out_per_group = out / groups, in_per_group = in / groups;
  const ir::Statement& original = from.op.statements()[c.statement];
  std::set<std::string> used = detail::index_names(original);
  std::set<std::string> tensors = detail::tensor_names(from.op);
  const std::string q = detail::fresh_name(used, "q"), k2 = detail::fresh_name(used, c.out->name + "g"),
                    c2 = detail::fresh_name(used, c.in->name + "g");
  const ir::Affine new_out = ir::Affine::index(q, out_per_group) + ir::Affine::index(k2);
  const ir::Affine new_in = shuffle ? ir::Affine::index(c2, groups) + ir::Affine::index(q)
                                    : ir::Affine::index(q, in_per_group) + ir::Affine::index(c2);
  ir::Statement s = original;
  const ir::Access w = original.factors[c.weight_factor];
  s.output = detail::substitute(s.output, {{c.out->name, new_out}});
  for (auto& addend : s.addends) addend = detail::substitute(addend, {{c.out->name, new_out}});
  ir::Access& x = s.factors[c.data_factor];
  x = detail::substitute(x, {{c.in->name, new_in}});
  const std::string w_name = detail::fresh_name(tensors, "W");
  ir::Access new_w = detail::substitute(w, {{c.out->name, new_out}, {c.in->name, ir::Affine::index(c2)}});
  new_w.tensor = w_name;
  s.factors[c.weight_factor] = new_w;
  std::erase_if(s.output_indices, [&](const ir::IndexVar& index) { return index.name == c.out->name; });
  std::erase_if(s.reduction_indices, [&](const ir::IndexVar& index) { return index.name == c.in->name; });
  s.output_indices.push_back({q, groups});
  s.output_indices.push_back({k2, out_per_group});
  s.reduction_indices.push_back({c2, in_per_group});

  ir::Tensor values = detail::inherit_by_substitution(from.weights.at(w.tensor), w, new_w, detail::extents_of(s),
                                                     {{c.out->name, new_out}, {c.in->name, new_in}});
  ir::TensorDecl decl{w_name, ir::Role::Param, values.shape, nullptr};
  Candidate result{detail::replace_statement(from.op, c.statement, {detail::simplify(s)}, {decl}), from.weights,
                   from.derivation};
  if (!result.op.find_tensor(w.tensor)) result.weights.erase(w.tensor);
  result.weights[w_name] = std::move(values);
  RuleStep step{"group", {{"g", std::to_string(groups)}}};
  if (shuffle) step.params.push_back({"shuffle", ""});
  result.derivation.push_back(step);
  return result;
}

std::vector<Candidate> group(const Candidate& from, const Contraction& c, const RuleOptions& options) {
  if (!c.out || !c.in) return {};
  std::vector<Candidate> result;
  for (int64_t groups : group_choices(c.out->extent, c.in->extent, options)) {
    for (bool shuffle : {false, true}) {
      if (shuffle && (groups == 1 || c.in->extent / groups == 1)) continue;  // nothing to shuffle
      if (auto candidate = grouped(from, c, groups, shuffle)) result.push_back(std::move(*candidate));
    }
  }
  return result;
}

std::vector<Candidate> share(const Candidate& from, const Contraction& c, const RuleOptions&) {
  if (!c.has_taps()) return {};
  auto candidate = detail::two_stage(from, c, {Bridge::Dropped, 1, all_taps(c), false}, {"share", {{"drop", "c"}}});
  return candidate ? std::vector<Candidate>{std::move(*candidate)} : std::vector<Candidate>{};
}

std::vector<Candidate> shift(const Candidate& from, const Contraction& c, const RuleOptions&) {
  if (!c.has_taps()) return {};
  std::vector<int64_t> window;
  for (const auto& tap : c.taps()) window.push_back(tap.extent);
  auto candidate = detail::two_stage(from, c, {Bridge::SharedIn, 1, all_taps(c), true}, {"shift", {{"window", window_text(window)}}});
  return candidate ? std::vector<Candidate>{std::move(*candidate)} : std::vector<Candidate>{};
}

// A tap's new reading t = scale*t' + offset with t' < extent.
struct TapChoice {
  int64_t extent, scale, offset;
};

// Whether an axis read as stride*o + sum(dilation*t) + offset with the given taps is a standard
// window: the first read at or before the input's start (a begin padding >= 0) and exactly
// `axis.extent` positions when the end is padded as little as possible (what conv constructors
// and every runtime's convolution compute).
bool standard_window(const detail::Axis& axis, const std::vector<detail::Tap>& taps, int64_t input) {
  int64_t begin_pad = -axis.offset, span = 1;
  for (const auto& tap : taps) span += tap.dilation * (tap.extent - 1);
  if (begin_pad < 0) return false;
  int64_t end_pad = std::max<int64_t>(0, (axis.extent - 1) * axis.stride + span - input - begin_pad);
  return (input + begin_pad + end_pad - span) / axis.stride + 1 == axis.extent;
}

// The axis after reading its taps through `choice` (tap by tap, as in `taps`).
detail::Axis shrunk_axis(detail::Axis axis, const std::vector<detail::Tap>& taps, const std::vector<TapChoice>& choice) {
  for (auto& tap : axis.taps) {
    for (size_t i = 0; i < taps.size(); ++i) {
      if (tap.index != taps[i].index) continue;
      axis.offset += tap.dilation * choice[i].offset;
      tap.dilation *= choice[i].scale;
      tap.extent = choice[i].extent;
    }
  }
  return axis;
}

// Per tap: keep, a cropped window (centred when that stays standard, else the nearest offset
// that does, e.g. the latest taps of a causal convolution), the centre tap alone, or every other
// tap (dilated by 2, the same span).
std::vector<TapChoice> tap_choices(const detail::Tap& tap, const detail::Axis& axis, int64_t input) {
  std::vector<TapChoice> choices{{tap.extent, 1, 0}};
  auto standard = [&](const TapChoice& choice) {
    return standard_window(shrunk_axis(axis, {tap}, {choice}), shrunk_axis(axis, {tap}, {choice}).taps, input);
  };
  auto add_crop = [&](int64_t extent) {
    const int64_t room = tap.extent - extent, centre = room / 2;
    for (int64_t distance = 0; distance <= room; ++distance) {
      for (int64_t offset : {centre + distance, centre - distance}) {
        if (offset < 0 || offset > room) continue;
        if (standard({extent, 1, offset})) return choices.push_back({extent, 1, offset});
      }
    }
  };
  if (tap.extent >= 3) add_crop(tap.extent - 2);
  if (tap.extent >= 5) add_crop(1);
  if (tap.extent >= 3 && tap.extent % 2 == 1) choices.push_back({(tap.extent + 1) / 2, 2, 0});
  return choices;
}

std::optional<Candidate> shrunk(const Candidate& from, const Contraction& c, const std::vector<detail::Tap>& taps,
                                const std::vector<TapChoice>& choice) {
  const ir::Statement& original = from.op.statements()[c.statement];
  ir::Statement s = original;
  const ir::Access w = original.factors[c.weight_factor];
  detail::Substitution in_data;
  for (size_t i = 0; i < taps.size(); ++i) {
    in_data[taps[i].index] = ir::Affine::index(taps[i].index, choice[i].scale) + ir::Affine::constant(choice[i].offset);
  }
  s.factors[c.data_factor] = detail::substitute(s.factors[c.data_factor], in_data);
  for (auto& index : s.reduction_indices) {
    for (size_t i = 0; i < taps.size(); ++i) {
      if (index.name == taps[i].index) index.extent = choice[i].extent;
    }
  }
  std::set<std::string> tensors = detail::tensor_names(from.op);
  ir::Access new_w = w;
  new_w.tensor = detail::fresh_name(tensors, "W");
  s.factors[c.weight_factor] = new_w;
  ir::Tensor values = detail::inherit_by_substitution(from.weights.at(w.tensor), w, new_w, detail::extents_of(s), in_data);
  ir::TensorDecl decl{new_w.tensor, ir::Role::Param, values.shape, nullptr};
  Candidate result{detail::replace_statement(from.op, c.statement, {detail::simplify(s)}, {decl}), from.weights,
                   from.derivation};
  if (!result.op.find_tensor(w.tensor)) result.weights.erase(w.tensor);
  result.weights[new_w.tensor] = std::move(values);
  std::vector<int64_t> window, dilation;
  bool dilated = false;
  for (size_t i = 0; i < taps.size(); ++i) {
    window.push_back(choice[i].extent);
    dilation.push_back(choice[i].scale);
    dilated = dilated || choice[i].scale != 1;
  }
  RuleStep step{"shrink", {{"window", window_text(window)}}};
  if (dilated) step.params.push_back({"dilation", window_text(dilation)});
  result.derivation.push_back(step);
  return result;
}

std::vector<Candidate> shrink(const Candidate& from, const Contraction& c, const RuleOptions&) {
  const auto taps = c.taps();
  if (taps.empty()) return {};
  const ir::Statement& statement = from.op.statements()[c.statement];
  const auto& data_shape = from.op.tensor(statement.factors[c.data_factor].tensor).shape;
  std::vector<std::vector<TapChoice>> per_tap;
  std::vector<const detail::Axis*> axis_of_tap;
  for (const auto& tap : taps) {
    for (const auto& axis : c.axes) {
      for (const auto& axis_tap : axis.taps) {
        if (axis_tap.index == tap.index) axis_of_tap.push_back(&axis);
      }
    }
    per_tap.push_back(tap_choices(tap, *axis_of_tap.back(), data_shape[axis_of_tap.back()->data_dim]));
  }
  std::vector<Candidate> result;
  std::vector<size_t> pick(taps.size(), 0);
  while (true) {
    size_t dim = 0;
    while (dim < pick.size() && ++pick[dim] >= per_tap[dim].size()) pick[dim++] = 0;
    if (dim == pick.size()) break;  // every combination but "keep all" visited
    std::vector<TapChoice> choice;
    for (size_t i = 0; i < taps.size(); ++i) choice.push_back(per_tap[i][pick[i]]);
    // Taps sharing an axis (a split 1-D window) must stay standard together.
    bool standard = std::all_of(c.axes.begin(), c.axes.end(), [&](const detail::Axis& axis) {
      detail::Axis after = shrunk_axis(axis, taps, choice);
      return axis.taps.empty() || standard_window(after, after.taps, data_shape[axis.data_dim]);
    });
    if (!standard) continue;
    if (auto candidate = shrunk(from, c, taps, choice)) result.push_back(std::move(*candidate));
  }
  return result;
}

const std::vector<std::pair<std::string, Rule>>& rule_table() {
  static const std::vector<std::pair<std::string, Rule>> table{
      {"rank_split", rank_split}, {"shared_index", shared_index}, {"window_split", window_split},
      {"group", group},           {"share", share},               {"shift", shift},
      {"shrink", shrink},
  };
  return table;
}

bool cheaper(const ir::Cost& candidate, const ir::Cost& original) {
  return candidate.macs < original.macs || candidate.params < original.params;
}

}  // namespace

const std::vector<std::string>& rule_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> list;
    for (const auto& [name, rule] : rule_table()) list.push_back(name);
    return list;
  }();
  return names;
}

std::vector<Candidate> apply_rule(const std::string& rule, const Candidate& from, size_t statement,
                                  const RuleOptions& options) {
  const auto& table = rule_table();
  auto found = std::find_if(table.begin(), table.end(), [&](const auto& entry) { return entry.first == rule; });
  if (found == table.end()) throw std::invalid_argument("unknown rule '" + rule + "'");
  auto contraction = detail::analyse(from.op, statement);
  if (!contraction) return {};
  auto candidates = found->second(from, *contraction, options);
  if (from.op.statements().size() > 1) {  // say which statement the rule rewrote
    for (auto& candidate : candidates) candidate.derivation.back().params.push_back({"stage", std::to_string(statement + 1)});
  }
  return candidates;
}

std::vector<Candidate> derive_candidates(const ir::OpExpr& op, const ir::TensorMap& weights, const RuleOptions& options) {
  for (const auto& rule : options.rules) {
    if (std::find(rule_names().begin(), rule_names().end(), rule) == rule_names().end()) {
      throw std::invalid_argument("unknown rule '" + rule + "'");
    }
  }
  const std::vector<std::string>& rules = options.rules.empty() ? rule_names() : options.rules;
  std::unordered_set<std::string> seen{op.canonical_key()};
  std::vector<Candidate> level{original(op, weights)}, all;
  for (int depth = 0; depth < options.depth; ++depth) {
    std::vector<Candidate> next;
    for (const auto& from : level) {
      for (size_t statement = 0; statement < from.op.statements().size(); ++statement) {
        for (const auto& rule : rules) {
          for (auto& candidate : apply_rule(rule, from, statement, options)) {
            if (seen.insert(candidate.op.canonical_key()).second) next.push_back(std::move(candidate));
          }
        }
      }
    }
    all.insert(all.end(), next.begin(), next.end());
    level = std::move(next);
  }
  const ir::Cost reference = ir::cost(op);
  if (!options.keep_costlier) {
    std::erase_if(all, [&](const Candidate& candidate) { return !cheaper(ir::cost(candidate.op), reference); });
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return ir::cost(a.op).macs < ir::cost(b.op).macs;
  });
  return all;
}

std::string why_not_searchable(const ir::OpExpr& op) {
  for (size_t statement = 0; statement < op.statements().size(); ++statement) {
    if (detail::analyse(op, statement)) return {};
  }
  return "no statement is a sum of products of a data tensor with one learned weight (Y = sum X * W), which is what "
         "the rewrite rules transform";
}

}  // namespace gos::rules
