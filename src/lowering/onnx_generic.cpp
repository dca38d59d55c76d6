// Generic ONNX lowering of one statement. Every read becomes a *view*: a tensor with one axis per
// index, holding the read value where the subscript is in range and zero where it is padding.
// An Einsum over the views then computes the product and, for sum and mean, the reduction; a
// max reduction materialises the product and masks out-of-range terms with a constant table
// before ReduceMax, since zero is not neutral for max. Exact for every statement the IR accepts,
// which is what the fallback must be; recognised kernels take the fast path instead.
#include "lowering/onnx_generic.h"

#include <algorithm>
#include <climits>
#include <limits>
#include <numeric>
#include <optional>

namespace gos::lowering::detail {

namespace {

using ir::Access;
using ir::Affine;
using ir::Role;
using ir::Statement;

constexpr char kNoLetter = '\0';  // an axis read at a constant position, squeezed away
constexpr int64_t kMaxTaps = 1024;

// A tensor whose axes are each indexed by one index letter.
struct View {
  std::string value;
  std::vector<char> letters;
  std::vector<int64_t> shape;  // static extents (the batch axis: its nominal extent)
};

struct Range {
  int64_t lo, hi;
};

Range range_of(const Affine& subscript, const Statement& statement) {
  Range range{subscript.constant_term(), subscript.constant_term()};
  for (const auto& [name, coefficient] : subscript.terms()) {
    int64_t span = coefficient * (statement.extent_of(name) - 1);
    (span < 0 ? range.lo : range.hi) += span;
  }
  return range;
}

// Largest coefficient first: the order in which a mixed-radix subscript's indices lay out its axis.
std::vector<Affine::Term> by_coefficient_descending(const Affine& subscript) {
  auto terms = subscript.terms();
  std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return terms;
}

bool may_leave(const Affine& subscript, int64_t extent, const Statement& statement) {
  Range range = range_of(subscript, statement);
  return range.lo < 0 || range.hi >= extent;
}

// The index that the statement uses only as the first subscript of data operands, read whole: the
// batch, which the lowering leaves free so that its nodes run at any batch size.
std::optional<std::string> batch_index(const ir::OpExpr& op, const Statement& statement) {
  if (statement.output.subscripts.empty()) return std::nullopt;
  auto batch = statement.output.subscripts[0].plain_index();
  if (!batch) return std::nullopt;
  bool read_by_a_factor = false;
  for (const auto* list : {&statement.factors, &statement.addends}) {
    for (const auto& access : *list) {
      const auto& tensor = op.tensor(access.tensor);
      for (size_t dim = 0; dim < access.subscripts.size(); ++dim) {
        if (access.subscripts[dim].coefficient(*batch) == 0) continue;
        bool whole_first_dim = dim == 0 && access.subscripts[dim].plain_index() == batch &&
                               (tensor.role == Role::Input || tensor.role == Role::Intermediate) &&
                               tensor.shape[0] == statement.extent_of(*batch);
        if (!whole_first_dim) return std::nullopt;
        if (list == &statement.factors) read_by_a_factor = true;
      }
    }
  }
  return read_by_a_factor ? batch : std::nullopt;
}

class StatementLowering {
 public:
  StatementLowering(const ir::OpExpr& op, const Statement& statement, const ValueNames& values, OnnxBuilder& builder)
      : op_(op), statement_(statement), values_(values), builder_(builder) {
    assign_letters();
  }

  std::string lower() {
    std::vector<View> views;
    for (const auto& factor : statement_.factors) views.push_back(view_of(factor));
    add_unread_indices(views);
    std::string value = statement_.reduction == ir::Reduction::Max ? reduce_max(views) : reduce_sum(views);
    for (const auto& addend : statement_.addends) value = builder_.node_value("Add", {value, aligned_to_output(view_of(addend))});
    return to_output_shape(value);
  }

 private:
  // ---- Letters ----------------------------------------------------------------------------------

  void assign_letters() {
    std::vector<std::string> names;
    for (const auto& subscript : statement_.output.subscripts) {
      for (const auto& term : by_coefficient_descending(subscript)) names.push_back(term.first);
    }
    const size_t output_count = names.size();
    for (const auto& index : statement_.reduction_indices) names.push_back(index.name);
    if (names.size() > 52) {
      throw ir::IrError("statement writing " + statement_.output.tensor + " has " + std::to_string(names.size()) +
                        " indices; ONNX Einsum names at most 52");
    }
    for (size_t i = 0; i < names.size(); ++i) {
      char letter = static_cast<char>(i < 26 ? 'a' + i : 'A' + (i - 26));
      letters_[names[i]] = letter;
      names_[letter] = names[i];
      (i < output_count ? output_letters_ : reduction_letters_).push_back(letter);
    }
    if (auto batch = batch_index(op_, statement_)) batch_letter_ = letters_.at(*batch);
  }

  int64_t extent(char letter) const { return statement_.extent_of(names_.at(letter)); }

  // A Reshape target for axes `letters` of the given extents, with the batch axis left free.
  std::vector<int64_t> reshape_target(const std::vector<char>& letters, std::vector<int64_t> shape) const {
    for (size_t axis = 0; axis < letters.size(); ++axis) {
      if (batch_letter_ && letters[axis] == *batch_letter_) shape[axis] = -1;
    }
    return shape;
  }

  // ---- Views ------------------------------------------------------------------------------------

  View view_of(const Access& access) {
    const auto& tensor = op_.tensor(access.tensor);
    View view{values_.at(access.tensor), std::vector<char>(tensor.shape.size(), kNoLetter), tensor.shape};
    size_t axis = 0;
    for (const auto& subscript : access.subscripts) axis += read_axis(view, axis, subscript);
    squeeze_constant_reads(view);
    return view;
  }

  // Replaces `axis` by the axes of the indices in `subscript`; returns how many there are.
  size_t read_axis(View& view, size_t axis, const Affine& subscript) {
    auto terms = subscript.terms();
    const int64_t constant = subscript.constant_term();
    if (terms.empty()) {
      window(view, axis, constant, 1, 1);
      return 1;
    }
    if (terms.size() == 1) {
      const auto& [name, coefficient] = terms[0];
      window(view, axis, constant, statement_.extent_of(name), coefficient);
      view.letters[axis] = letters_.at(name);
      return 1;
    }
    terms = by_coefficient_descending(subscript);
    if (is_dense_mixed_radix(terms)) {
      int64_t count = 1;
      std::vector<char> letters;
      std::vector<int64_t> extents;
      for (const auto& [name, coefficient] : terms) {
        letters.push_back(letters_.at(name));
        extents.push_back(statement_.extent_of(name));
        count *= extents.back();
      }
      window(view, axis, constant, count, terms.back().second);
      split_axis(view, axis, letters, extents);
      return terms.size();
    }
    return read_taps(view, axis, terms, constant);
  }

  // `8*g + c` with c < 8: consecutive positions that a Reshape splits into (g, c).
  bool is_dense_mixed_radix(const std::vector<Affine::Term>& terms) const {
    if (terms.back().second <= 0) return false;
    for (size_t i = 0; i + 1 < terms.size(); ++i) {
      if (terms[i].second != terms[i + 1].second * statement_.extent_of(terms[i + 1].first)) return false;
    }
    return true;
  }

  // Overlapping subscripts (windows such as `2*h + r - 1`): one strided Slice per value of the
  // other indices (a kernel tap), concatenated and split into one axis per index.
  size_t read_taps(View& view, size_t axis, std::vector<Affine::Term> terms, int64_t constant) {
    auto fast = std::max_element(terms.begin(), terms.end(), [&](const auto& a, const auto& b) {
      return statement_.extent_of(a.first) < statement_.extent_of(b.first);
    });
    const Affine::Term fast_term = *fast;
    terms.erase(fast);
    std::vector<int64_t> tap_extents;
    int64_t taps = 1;
    for (const auto& [name, coefficient] : terms) {
      tap_extents.push_back(statement_.extent_of(name));
      taps *= tap_extents.back();
    }
    if (taps > kMaxTaps) {
      throw ir::IrError("a read of the statement writing " + statement_.output.tensor + " has " +
                        std::to_string(taps) + " window taps; the ONNX lowering handles at most " +
                        std::to_string(kMaxTaps));
    }
    Affine all_terms(terms, constant);
    all_terms = all_terms + Affine::index(fast_term.first, fast_term.second);
    Range range = range_of(all_terms, statement_);
    const int64_t before = std::max<int64_t>(0, -range.lo);
    pad_axis(view, axis, before, std::max<int64_t>(0, range.hi - (view.shape[axis] - 1)));

    const int64_t fast_extent = statement_.extent_of(fast_term.first);
    std::vector<std::string> slices;
    std::vector<int64_t> tap(terms.size(), 0);
    for (int64_t t = 0; t < taps; ++t) {
      int64_t start = constant + before;
      for (size_t k = 0; k < terms.size(); ++k) start += terms[k].second * tap[k];
      slices.push_back(slice(view.value, axis, start, fast_extent, fast_term.second));
      for (size_t k = terms.size(); k-- > 0;) {
        if (++tap[k] < tap_extents[k]) break;
        tap[k] = 0;
      }
    }
    if (slices.size() == 1) {
      view.value = slices[0];
    } else {
      view.value = builder_.node_value("Concat", slices);
      set_attribute(builder_.last_node(), "axis", static_cast<int64_t>(axis));
    }
    view.shape[axis] = taps * fast_extent;
    std::vector<char> letters;
    for (const auto& term : terms) letters.push_back(letters_.at(term.first));
    letters.push_back(letters_.at(fast_term.first));
    tap_extents.push_back(fast_extent);
    split_axis(view, axis, letters, tap_extents);
    return letters.size();
  }

  // Makes `axis` hold positions start, start+step, ... (count of them), zero where out of range.
  void window(View& view, size_t axis, int64_t start, int64_t count, int64_t step) {
    const int64_t last = start + step * (count - 1);
    const int64_t before = std::max<int64_t>(0, -std::min(start, last));
    pad_axis(view, axis, before, std::max<int64_t>(0, std::max(start, last) - (view.shape[axis] - 1)));
    const int64_t padded_start = start + before;
    if (padded_start == 0 && step == 1 && count == view.shape[axis]) return;
    view.value = slice(view.value, axis, padded_start, count, step);
    view.shape[axis] = count;
  }

  void pad_axis(View& view, size_t axis, int64_t before, int64_t after) {
    if (before == 0 && after == 0) return;
    std::vector<int64_t> pads(2 * view.shape.size(), 0);
    pads[axis] = before;
    pads[view.shape.size() + axis] = after;
    view.value = builder_.node_value("Pad", {view.value, builder_.int64_vector(pads)});
    view.shape[axis] += before + after;
  }

  std::string slice(const std::string& value, size_t axis, int64_t start, int64_t count, int64_t step) {
    int64_t end = start + step * count;
    if (step < 0 && end < 0) end = std::numeric_limits<int64_t>::min();  // through position 0
    return builder_.node_value("Slice", {value, builder_.int64_vector({start}), builder_.int64_vector({end}),
                                         builder_.int64_vector({static_cast<int64_t>(axis)}),
                                         builder_.int64_vector({step})});
  }

  void split_axis(View& view, size_t axis, const std::vector<char>& letters, const std::vector<int64_t>& extents) {
    view.letters.erase(view.letters.begin() + axis);
    view.letters.insert(view.letters.begin() + axis, letters.begin(), letters.end());
    view.shape.erase(view.shape.begin() + axis);
    view.shape.insert(view.shape.begin() + axis, extents.begin(), extents.end());
    if (letters.size() == 1) return;
    view.value = builder_.node_value("Reshape", {view.value, builder_.int64_vector(reshape_target(view.letters, view.shape))});
  }

  void squeeze_constant_reads(View& view) {
    std::vector<int64_t> axes;
    for (size_t axis = view.letters.size(); axis-- > 0;) {
      if (view.letters[axis] != kNoLetter) continue;
      axes.insert(axes.begin(), static_cast<int64_t>(axis));
      view.letters.erase(view.letters.begin() + axis);
      view.shape.erase(view.shape.begin() + axis);
    }
    if (!axes.empty()) view.value = builder_.node_value("Squeeze", {view.value, builder_.int64_vector(axes)});
  }

  // An index that no factor reads still counts: a sum adds the product once per value of it, and
  // the output repeats along it. A view of ones gives Einsum that axis.
  void add_unread_indices(std::vector<View>& views) {
    auto all = output_letters_;
    all.insert(all.end(), reduction_letters_.begin(), reduction_letters_.end());
    for (char letter : all) {
      bool read = std::any_of(views.begin(), views.end(), [&](const View& view) {
        return std::find(view.letters.begin(), view.letters.end(), letter) != view.letters.end();
      });
      if (read) continue;
      ir::Tensor ones({extent(letter)}, 1.0f);
      views.push_back({builder_.float_tensor("ones", ones), {letter}, ones.shape});
    }
  }

  // ---- Product and reduction --------------------------------------------------------------------

  // Views whose axes all appear in `result`, in its order: their product is a chain of
  // broadcasting Muls, which every runtime (and gos's own import) reads as plain elementwise
  // operators, where Einsum is the fallback for real contractions.
  std::optional<std::string> broadcast_product(const std::vector<View>& views, const std::vector<char>& result) {
    std::vector<std::vector<int64_t>> missing_axes;
    for (const auto& view : views) {
      size_t next = 0;
      std::vector<int64_t> missing;
      for (char letter : view.letters) {
        auto found = std::find(result.begin() + static_cast<std::ptrdiff_t>(next), result.end(), letter);
        if (found == result.end()) return std::nullopt;
        for (; result.begin() + static_cast<std::ptrdiff_t>(next) != found; ++next) missing.push_back(static_cast<int64_t>(next));
        ++next;
      }
      for (; next < result.size(); ++next) missing.push_back(static_cast<int64_t>(next));
      missing_axes.push_back(view.letters.empty() ? std::vector<int64_t>{} : missing);  // scalars broadcast as they are
    }
    std::string product;
    for (size_t i = 0; i < views.size(); ++i) {
      std::string value = views[i].value;
      if (!missing_axes[i].empty()) value = builder_.node_value("Unsqueeze", {value, builder_.int64_vector(missing_axes[i])});
      product = product.empty() ? value : builder_.node_value("Mul", {product, value});
    }
    return product;
  }

  // ONNX 1.12's shape inference gives Einsum no output shape, which would leave every value after
  // it without one; declaring it keeps the file's shapes complete for any reader (gos's import
  // included). The batch axis is symbolic, as in the graph's inputs.
  void declare_shape(const std::string& value, const std::vector<char>& letters) {
    auto& info = *builder_.graph().add_value_info();
    info.set_name(value);
    auto& tensor_type = *info.mutable_type()->mutable_tensor_type();
    tensor_type.set_elem_type(onnx::TensorProto_DataType_FLOAT);
    auto& dims = *tensor_type.mutable_shape();
    for (char letter : letters) {
      if (batch_letter_ && letter == *batch_letter_) {
        dims.add_dim()->set_dim_param("N");
      } else {
        dims.add_dim()->set_dim_value(extent(letter));
      }
    }
  }

  std::string einsum(const std::vector<View>& views, const std::vector<char>& result) {
    if (views.size() == 1 && views[0].letters == result) return views[0].value;
    if (views.size() > 1) {
      if (auto product = broadcast_product(views, result)) return *product;
    }
    std::string equation;
    std::vector<std::string> inputs;
    for (const auto& view : views) {
      equation += (inputs.empty() ? "" : ",") + std::string(view.letters.begin(), view.letters.end());
      inputs.push_back(view.value);
    }
    equation += "->" + std::string(result.begin(), result.end());
    std::string value = builder_.node_value("Einsum", inputs);
    set_attribute(builder_.last_node(), "equation", equation);
    declare_shape(value, result);
    return value;
  }

  std::string reduce_sum(const std::vector<View>& views) {
    if (auto mean = mean_in_place(views)) return *mean;
    std::string value = einsum(views, output_letters_);
    if (statement_.reduction != ir::Reduction::Mean) return value;
    double count = 1;
    for (char letter : reduction_letters_) count *= static_cast<double>(extent(letter));
    if (count == 1) return value;
    return builder_.node_value("Mul", {value, builder_.float_scalar(static_cast<float>(1.0 / count))});
  }

  // The mean of one read whose kept axes are the output's, in order (with unit axes where the
  // reduced ones were, or without them): ReduceMean over the others, one reduction that runtimes
  // run as such and gos's import reads back as this statement, where the general path writes a
  // contraction and a scale. Any further views are the unit output axes the read leaves unread.
  std::optional<std::string> mean_in_place(const std::vector<View>& views) {
    if (statement_.reduction != ir::Reduction::Mean || statement_.factors.size() != 1 || reduction_letters_.empty()) {
      return std::nullopt;
    }
    constexpr char kUnitAxis = '\1';
    const View& read = views[0];
    auto is_read = [&](char letter) { return std::ranges::find(read.letters, letter) != read.letters.end(); };
    std::vector<char> dropping, keeping;  // the mean's axes with keepdims 0 and 1
    std::vector<int64_t> axes;
    for (size_t axis = 0; axis < read.letters.size(); ++axis) {
      const char letter = read.letters[axis];
      const bool reduced = std::ranges::find(reduction_letters_, letter) != reduction_letters_.end();
      if (reduced) {
        axes.push_back(static_cast<int64_t>(axis));
      } else {
        dropping.push_back(letter);
      }
      keeping.push_back(reduced ? kUnitAxis : letter);
    }
    std::vector<char> output;
    for (char letter : output_letters_) {
      if (!is_read(letter) && extent(letter) != 1) return std::nullopt;
      output.push_back(is_read(letter) ? letter : kUnitAxis);
    }
    const bool keep_dims = output == keeping;
    if (!keep_dims && output != dropping) return std::nullopt;
    std::string value = builder_.node_value("ReduceMean", {read.value});
    set_attribute(builder_.last_node(), "axes", axes);
    set_attribute(builder_.last_node(), "keepdims", int64_t{keep_dims ? 1 : 0});
    return value;
  }

  std::string reduce_max(const std::vector<View>& views) {
    auto all = output_letters_;
    all.insert(all.end(), reduction_letters_.begin(), reduction_letters_.end());
    std::string value = einsum(views, all);
    if (reduction_letters_.empty()) return value;  // a single term: padding reads zero, as defined
    auto valid = term_validity(all);
    if (valid) {
      value = builder_.node_value("Where", {builder_.bool_tensor("in_range", valid->shape, valid->values), value,
                                            builder_.float_scalar(-std::numeric_limits<float>::infinity())});
    }
    std::vector<int64_t> axes(reduction_letters_.size());
    std::iota(axes.begin(), axes.end(), static_cast<int64_t>(output_letters_.size()));
    value = builder_.node_value("ReduceMax", {value});
    set_attribute(builder_.last_node(), "axes", axes);
    set_attribute(builder_.last_node(), "keepdims", int64_t{0});
    if (valid && !valid->any_per_output.empty()) {
      value = builder_.node_value("Where", {builder_.bool_tensor("any_in_range", valid->output_shape, valid->any_per_output),
                                            value, builder_.float_scalar(0.0f)});
    }
    return value;
  }

  // Which terms of a max reduction read only in-range elements, over the axes `all` (extent 1
  // on every axis the answer does not depend on), and for each output whether any term does
  // (empty when every output has one).
  struct Validity {
    std::vector<int64_t> shape;
    std::vector<bool> values;
    std::vector<int64_t> output_shape;
    std::vector<bool> any_per_output;
  };

  std::optional<Validity> term_validity(const std::vector<char>& all) const {
    std::vector<std::pair<const Affine*, int64_t>> checks;  // subscripts that may leave their tensor
    for (const auto& factor : statement_.factors) {
      const auto& shape = op_.tensor(factor.tensor).shape;
      for (size_t dim = 0; dim < shape.size(); ++dim) {
        if (may_leave(factor.subscripts[dim], shape[dim], statement_)) checks.emplace_back(&factor.subscripts[dim], shape[dim]);
      }
    }
    if (checks.empty()) return std::nullopt;
    Validity validity;
    for (char letter : all) {
      bool checked = std::any_of(checks.begin(), checks.end(),
                                 [&](const auto& check) { return check.first->coefficient(names_.at(letter)) != 0; });
      validity.shape.push_back(checked ? extent(letter) : 1);
    }
    const size_t outputs = output_letters_.size();
    validity.output_shape.assign(validity.shape.begin(), validity.shape.begin() + outputs);
    int64_t output_count = 1, reduction_count = 1;
    for (size_t axis = 0; axis < all.size(); ++axis) (axis < outputs ? output_count : reduction_count) *= validity.shape[axis];
    validity.values.assign(output_count * reduction_count, false);
    std::vector<bool> any(output_count, false);
    std::map<std::string, int64_t> point;
    for (int64_t flat = 0; flat < output_count * reduction_count; ++flat) {
      int64_t rest = flat;
      for (size_t axis = all.size(); axis-- > 0;) {
        point[names_.at(all[axis])] = rest % validity.shape[axis];
        rest /= validity.shape[axis];
      }
      bool in_range = std::all_of(checks.begin(), checks.end(), [&](const auto& check) {
        int64_t position = check.first->constant_term();
        for (const auto& [name, coefficient] : check.first->terms()) position += coefficient * point[name];
        return position >= 0 && position < check.second;
      });
      validity.values[flat] = in_range;
      if (in_range) any[flat / reduction_count] = true;
    }
    if (!std::all_of(any.begin(), any.end(), [](bool value) { return value; })) validity.any_per_output = any;
    return validity;
  }

  // ---- Addends and output -----------------------------------------------------------------------

  // The addend's axes in output order, with extent-1 axes for the output indices it lacks, so
  // that Add broadcasts it.
  std::string aligned_to_output(const View& view) {
    std::vector<char> present;
    std::vector<int64_t> missing;
    for (size_t axis = 0; axis < output_letters_.size(); ++axis) {
      char letter = output_letters_[axis];
      bool read = std::find(view.letters.begin(), view.letters.end(), letter) != view.letters.end();
      if (read) {
        present.push_back(letter);
      } else {
        missing.push_back(static_cast<int64_t>(axis));
      }
    }
    std::string value = einsum({view}, present);
    if (missing.empty()) return value;
    return builder_.node_value("Unsqueeze", {value, builder_.int64_vector(missing)});
  }

  std::string to_output_shape(const std::string& value) {
    const auto& shape = op_.tensor(statement_.output.tensor).shape;
    std::vector<int64_t> current;
    for (char letter : output_letters_) current.push_back(extent(letter));
    if (current == shape) return value;
    std::vector<char> letters;  // the batch's axis keeps its letter; merged axes have none
    for (const auto& subscript : statement_.output.subscripts) {
      auto plain = subscript.plain_index();
      letters.push_back(plain ? letters_.at(*plain) : kNoLetter);
    }
    return builder_.node_value("Reshape", {value, builder_.int64_vector(reshape_target(letters, shape))});
  }

  const ir::OpExpr& op_;
  const Statement& statement_;
  const ValueNames& values_;
  OnnxBuilder& builder_;
  std::map<std::string, char> letters_;
  std::map<char, std::string> names_;
  std::vector<char> output_letters_, reduction_letters_;
  std::optional<char> batch_letter_;
};

}  // namespace

std::string lower_generic_statement(const ir::OpExpr& op, const ir::Statement& statement, const ValueNames& values,
                                    OnnxBuilder& builder) {
  return StatementLowering(op, statement, values, builder).lower();
}

}  // namespace gos::lowering::detail
