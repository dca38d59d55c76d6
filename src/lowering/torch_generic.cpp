// The generic lowering of one statement to libtorch calls: every read becomes a view whose
// dimensions are the statement's indices, reduced by einsum (sum, mean) or a masked amax (max).
#include <algorithm>
#include <optional>
#include <set>

#include "lowering/torch_program_builder.h"

namespace gos::lowering::detail {

namespace {

using ir::Access;
using ir::Statement;

struct Index {
  std::string name;
  int64_t extent = 1;
};

// Output indices in the output's memory order (dimension by dimension, the largest mixed-radix
// coefficient first), so that merging neighbours by a reshape writes `4*g + k` subscripts.
std::vector<Index> output_layout_order(const Statement& statement) {
  std::vector<Index> order;
  for (const auto& subscript : statement.output.subscripts) {
    auto terms = subscript.terms();
    std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    for (const auto& [name, coefficient] : terms) order.push_back({name, statement.extent_of(name)});
  }
  return order;
}

bool uses(const Access& access, const std::string& index) {
  return std::any_of(access.subscripts.begin(), access.subscripts.end(),
                     [&](const ir::Affine& subscript) { return subscript.coefficient(index) != 0; });
}

std::vector<const Access*> reads_of(const Statement& statement) {
  std::vector<const Access*> reads;
  for (const auto* list : {&statement.factors, &statement.addends}) {
    for (const auto& access : *list) reads.push_back(&access);
  }
  return reads;
}

// The batch rule of torch_program.h. Returns the batch index and the read whose size(0) it takes.
std::optional<std::pair<std::string, std::string>> batch_index(const ir::OpExpr& op, const Statement& statement) {
  if (statement.output.subscripts.empty()) return std::nullopt;
  auto batch = statement.output.subscripts[0].plain_index();
  if (!batch) return std::nullopt;
  std::optional<std::string> source;
  for (const Access* access : reads_of(statement)) {
    if (!uses(*access, *batch)) continue;
    const ir::TensorDecl& tensor = op.tensor(access->tensor);
    bool is_data = tensor.role != ir::Role::Param && tensor.role != ir::Role::Const;
    bool only_in_dim0 = access->subscripts[0].plain_index() == batch &&
                        std::none_of(access->subscripts.begin() + 1, access->subscripts.end(),
                                     [&](const ir::Affine& subscript) { return subscript.coefficient(*batch) != 0; });
    if (!is_data || !only_in_dim0 || tensor.shape[0] != statement.extent_of(*batch)) return std::nullopt;
    if (!source) source = access->tensor;
  }
  if (!source) return std::nullopt;
  return std::make_pair(*batch, *source);
}

// Contiguous strides of `shape`: valid at any size of dimension 0.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t dim = shape.size(); dim-- > 1;) strides[dim - 1] = strides[dim] * shape[dim];
  return strides;
}

// How a read's tensor is padded so that every position it reads exists.
struct Padding {
  std::vector<int64_t> begins, ends, padded_shape;
  bool any() const {
    return std::any_of(begins.begin(), begins.end(), [](int64_t pad) { return pad > 0; }) ||
           std::any_of(ends.begin(), ends.end(), [](int64_t pad) { return pad > 0; });
  }
};

class GenericStatement {
 public:
  GenericStatement(const ir::OpExpr& op, const Statement& statement, ProgramBuilder& builder)
      : op_(op), statement_(statement), builder_(builder), order_(output_layout_order(statement)) {
    output_count_ = order_.size();
    for (const auto& index : statement.reduction_indices) order_.push_back({index.name, index.extent});
    if (order_.size() > 52) {
      throw ir::IrError("the generic libtorch lowering supports at most 52 indices per statement; statement writing " +
                        statement.output.tensor + " has " + std::to_string(order_.size()));
    }
    if (auto batch = batch_index(op, statement)) {
      batch_ = position(batch->first);
      batch_source_ = batch->second;
    }
  }

  std::string plan() {
    std::string result = statement_.reduction == ir::Reduction::Max ? reduce_by_max() : reduce_by_einsum();
    std::set<size_t> present = used_positions(statement_.factors);
    std::vector<size_t> output_dims = first_positions(output_count_);
    for (const auto& addend : statement_.addends) {
      result = builder_.call(TorchFn::Add, {value(result), value(view(addend, output_dims, addend.tensor))});
      for (size_t dim : used_positions({addend})) present.insert(dim);
    }
    bool broadcast = std::any_of(output_dims.begin(), output_dims.end(),
                                 [&](size_t dim) { return !present.count(dim) && order_[dim].extent > 1; });
    if (broadcast) result = builder_.call(TorchFn::Expand, {value(result), output_index_sizes(output_dims)});
    const auto& output_shape = op_.tensor(statement_.output.tensor).shape;
    if (output_shape.size() != output_count_) {
      result = builder_.call(TorchFn::Reshape, {value(result), batched(output_shape, batch_ ? 0 : -1)});
    }
    return result;
  }

 private:
  size_t position(const std::string& index) const {
    for (size_t i = 0; i < order_.size(); ++i) {
      if (order_[i].name == index) return i;
    }
    throw ir::IrError("index " + index + " is not bound by the statement");
  }

  static std::vector<size_t> first_positions(size_t count) {
    std::vector<size_t> positions(count);
    for (size_t i = 0; i < count; ++i) positions[i] = i;
    return positions;
  }

  std::set<size_t> used_positions(const std::vector<Access>& accesses) const {
    std::set<size_t> positions;
    for (const auto& access : accesses) {
      for (size_t i = 0; i < order_.size(); ++i) {
        if (uses(access, order_[i].name)) positions.insert(i);
      }
    }
    return positions;
  }

  static char letter(size_t position) {
    return static_cast<char>(position < 26 ? 'a' + position : 'A' + (position - 26));
  }

  // `sizes` with entry `batch_position` (when >= 0 and the batch rule applies) taken at run time.
  RuntimeSizes batched(const std::vector<int64_t>& sizes, int64_t batch_position) const {
    RuntimeSizes runtime{sizes, {}, ValueRef{batch_source_}};
    if (batch_ && batch_position >= 0) runtime.copied[static_cast<size_t>(batch_position)] = 0;
    return runtime;
  }

  // The sizes of the output indices, 1 where `dims` lacks one.
  RuntimeSizes output_index_sizes(const std::vector<size_t>& dims) const {
    std::vector<int64_t> sizes(output_count_, 1);
    for (size_t dim : dims) sizes[dim] = order_[dim].extent;
    bool has_batch = batch_ && std::find(dims.begin(), dims.end(), *batch_) != dims.end();
    return batched(sizes, has_batch ? static_cast<int64_t>(*batch_) : -1);
  }

  // A read whose dimension 0 is the plain batch index: dimension 0 follows the batch at run time.
  bool per_sample(const Access& access) const { return batch_ && uses(access, order_[*batch_].name); }

  Padding padding_of(const Access& access) const {
    const auto& shape = op_.tensor(access.tensor).shape;
    Padding padding{std::vector<int64_t>(shape.size()), std::vector<int64_t>(shape.size()), shape};
    for (size_t dim = per_sample(access) ? 1 : 0; dim < shape.size(); ++dim) {
      int64_t low = access.subscripts[dim].constant_term(), high = low;
      for (const auto& [name, coefficient] : access.subscripts[dim].terms()) {
        int64_t reach = coefficient * (statement_.extent_of(name) - 1);
        (reach < 0 ? low : high) += reach;
      }
      padding.begins[dim] = std::max<int64_t>(0, -low);
      padding.ends[dim] = std::max<int64_t>(0, high - (shape[dim] - 1));
      padding.padded_shape[dim] += padding.begins[dim] + padding.ends[dim];
    }
    return padding;
  }

  // `access` as a tensor whose dimension i is index order_[dims[i]] (size 1, a broadcast, where
  // the access does not use it), read from `source` (the tensor, or ones shaped like it for a
  // validity mask). Out-of-range reads are 0. Non-negative coefficients make a strided view of the
  // zero-padded source; otherwise a gather by a table of flat positions.
  std::string view(const Access& access, const std::vector<size_t>& dims, const std::string& source) {
    Padding padding = padding_of(access);
    std::vector<int64_t> strides = contiguous_strides(padding.padded_shape);
    std::vector<int64_t> sizes, view_strides;
    bool negative = false;
    for (size_t dim : dims) {
      int64_t stride = 0;
      for (size_t d = 0; d < access.subscripts.size(); ++d) {
        int64_t coefficient = access.subscripts[d].coefficient(order_[dim].name);
        stride += coefficient * strides[d];
        negative = negative || coefficient < 0;
      }
      sizes.push_back(uses(access, order_[dim].name) ? order_[dim].extent : 1);
      view_strides.push_back(stride);
    }
    int64_t offset = 0;
    for (size_t d = 0; d < access.subscripts.size(); ++d) {
      offset += (access.subscripts[d].constant_term() + padding.begins[d]) * strides[d];
    }
    auto batch_at = std::find(dims.begin(), dims.end(), batch_.value_or(order_.size()));
    int64_t batch_position = per_sample(access) ? batch_at - dims.begin() : -1;
    RuntimeSizes runtime = batched(sizes, batch_position);
    runtime.source = ValueRef{access.tensor};

    if (is_whole_tensor(access, dims, padding)) return source;
    std::string x = source;
    if (padding.any()) {
      x = builder_.call(TorchFn::ConstantPad, {value(x), torch_pad_order(padding.begins, padding.ends), 0.0});
    }
    if (!negative) {
      // constant_pad_nd keeps a channels-last input's layout, so padded tensors need it too.
      x = builder_.call(TorchFn::Contiguous, {value(x)});
      return builder_.call(TorchFn::AsStrided, {value(x), runtime, view_strides, offset});
    }
    std::string table = builder_.index_table(flat_positions(sizes, view_strides, offset, batch_position));
    return builder_.call(batch_position >= 0 ? TorchFn::GatherPerSample : TorchFn::Gather, {value(x), value(table), runtime});
  }

  // A read of every element in the tensor's own order needs no view (a plain index over fewer
  // positions than the dimension holds reads a leading part of it: a crop, which does).
  bool is_whole_tensor(const Access& access, const std::vector<size_t>& dims, const Padding& padding) const {
    if (padding.any() || dims.size() != access.subscripts.size()) return false;
    const auto& shape = op_.tensor(access.tensor).shape;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (access.subscripts[d].plain_index() != order_[dims[d]].name) return false;
      if (order_[dims[d]].extent != shape[d] && !(per_sample(access) && d == 0)) return false;
    }
    return true;
  }

  // The positions of the indices `access` uses, in order of first use: the view that keeps a plain
  // read as it is.
  std::vector<size_t> positions_in_access_order(const Access& access) const {
    std::vector<size_t> dims;
    for (const auto& subscript : access.subscripts) {
      for (const auto& [name, coefficient] : subscript.terms()) {
        size_t dim = position(name);
        if (std::find(dims.begin(), dims.end(), dim) == dims.end()) dims.push_back(dim);
      }
    }
    return dims;
  }

  // Row-major enumeration of offset + sum(index * stride) over `sizes`, skipping the per-sample
  // batch dimension (the gather runs per sample).
  static std::vector<int64_t> flat_positions(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
                                             int64_t offset, int64_t skipped) {
    std::vector<int64_t> positions{offset};
    for (size_t dim = 0; dim < sizes.size(); ++dim) {
      if (static_cast<int64_t>(dim) == skipped) continue;
      std::vector<int64_t> extended;
      extended.reserve(positions.size() * sizes[dim]);
      for (int64_t base : positions) {
        for (int64_t i = 0; i < sizes[dim]; ++i) extended.push_back(base + i * strides[dim]);
      }
      positions = std::move(extended);
    }
    return positions;
  }

  std::string reduce_by_einsum() {
    std::vector<ValueRef> operands;
    std::string equation;
    for (const auto& factor : statement_.factors) {
      std::vector<size_t> dims = positions_in_access_order(factor);
      operands.push_back(ValueRef{view(factor, dims, factor.tensor)});
      equation += (equation.empty() ? "" : ",") + letters(dims);
    }
    std::set<size_t> present = used_positions(statement_.factors);
    std::vector<size_t> outputs;
    for (size_t dim : present) {
      if (dim < output_count_) outputs.push_back(dim);
    }
    std::string result = operands.size() == 1 && equation == letters(outputs)
                             ? operands[0].name
                             : builder_.call(TorchFn::Einsum, {equation + "->" + letters(outputs), operands});
    double scale = 1.0;
    for (size_t dim = output_count_; dim < order_.size(); ++dim) {
      if (!present.count(dim)) scale *= static_cast<double>(order_[dim].extent);  // summed, yet read by no factor
      if (statement_.reduction == ir::Reduction::Mean) scale /= static_cast<double>(order_[dim].extent);
    }
    if (scale != 1.0) result = builder_.call(TorchFn::Scale, {value(result), scale});
    if (outputs.size() != output_count_) result = builder_.call(TorchFn::Reshape, {value(result), output_index_sizes(outputs)});
    return result;
  }

  // Out-of-range reads must not take part in a max: products are masked by the reads' validity.
  std::string reduce_by_max() {
    std::vector<size_t> all = first_positions(order_.size());
    bool masked = std::any_of(statement_.factors.begin(), statement_.factors.end(),
                              [&](const Access& factor) { return padding_of(factor).any(); });
    std::optional<std::string> product, mask;
    for (const auto& factor : statement_.factors) {
      std::string term = view(factor, all, factor.tensor);
      product = product ? builder_.call(TorchFn::Mul, {value(*product), value(term)}) : term;
      if (!padding_of(factor).any()) continue;  // always valid
      std::string ones = builder_.call(TorchFn::OnesLike, {value(factor.tensor)});
      std::string valid = view(factor, all, ones);
      mask = mask ? builder_.call(TorchFn::Mul, {value(*mask), value(valid)}) : valid;
    }
    if (order_.size() == output_count_) return *product;
    std::vector<int64_t> reduced;
    for (size_t dim = output_count_; dim < order_.size(); ++dim) reduced.push_back(static_cast<int64_t>(dim));
    if (!masked) return builder_.call(TorchFn::Amax, {value(*product), reduced});
    return builder_.call(TorchFn::MaskedMax, {value(*product), value(*mask), reduced});
  }

  static std::string letters(const std::vector<size_t>& dims) {
    std::string text;
    for (size_t dim : dims) text += letter(dim);
    return text;
  }

  const ir::OpExpr& op_;
  const Statement& statement_;
  ProgramBuilder& builder_;
  std::vector<Index> order_;  // output indices in layout order, then reduction indices
  size_t output_count_ = 0;
  std::optional<size_t> batch_;  // position of the batch index in order_
  std::string batch_source_;
};

}  // namespace

std::string plan_generic_statement(const ir::OpExpr& op, const Statement& statement, ProgramBuilder& builder) {
  return GenericStatement(op, statement, builder).plan();
}

}  // namespace gos::lowering::detail
