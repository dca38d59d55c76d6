// OpExpr construction and validation, and the small value types' helpers.
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <set>

#include "ir/ir.h"
#include "ir/parts.h"

namespace gos::ir {

namespace {

constexpr std::array<std::pair<Reduction, std::string_view>, 3> kReductionNames{{
    {Reduction::Sum, "sum"}, {Reduction::Max, "max"}, {Reduction::Mean, "mean"}}};

constexpr std::array<std::pair<Activation, std::string_view>, 9> kActivationNames{{
    {Activation::None, "none"},
    {Activation::Relu, "relu"},
    {Activation::Relu6, "relu6"},
    {Activation::Sigmoid, "sigmoid"},
    {Activation::Silu, "silu"},
    {Activation::HardSwish, "hardswish"},
    {Activation::HardSigmoid, "hardsigmoid"},
    {Activation::Gelu, "gelu"},
    {Activation::Tanh, "tanh"},
}};

template <typename Enum, size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "?";
}

template <typename Enum, size_t N>
std::optional<Enum> value_of(const std::array<std::pair<Enum, std::string_view>, N>& table, std::string_view name) {
  for (const auto& [candidate, candidate_name] : table) {
    if (candidate_name == name) return candidate;
  }
  return std::nullopt;
}

// Far above any real operator; keeps every element count and offset inside int64_t.
constexpr int64_t kMaxElements = int64_t{1} << 40;

IrError statement_error(size_t position, const Statement& statement, const std::string& message) {
  return IrError("statement " + std::to_string(position + 1) + " (writing " + statement.output.tensor +
                 "): " + message);
}

// Checks the output subscripts and returns the output tensor's shape. Each subscript must be a
// mixed-radix combination of output indices (coefficients 1, e1, e1*e2, ...), and every output
// index must be used exactly once, so that each output element is written exactly once.
std::vector<int64_t> output_shape(size_t position, const Statement& statement) {
  std::map<std::string, int> uses;
  for (const auto& index : statement.output_indices) uses[index.name] = 0;
  std::vector<int64_t> shape;
  for (const auto& subscript : statement.output.subscripts) {
    if (subscript.constant_term() != 0 || subscript.terms().empty()) {
      throw statement_error(position, statement, "output subscripts must be indices without constants");
    }
    auto terms = subscript.terms();
    std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    int64_t stride = 1;
    for (const auto& [name, coefficient] : terms) {
      auto use = uses.find(name);
      if (use == uses.end()) {
        throw statement_error(position, statement, "output subscript uses '" + name + "', which is not an output index");
      }
      if (coefficient != stride) {
        throw statement_error(position, statement,
                              "output subscript " + print(subscript) +
                                  " is not a mixed-radix combination (each coefficient must be the product of "
                                  "the extents of the indices with smaller coefficients)");
      }
      ++use->second;
      if (__builtin_mul_overflow(stride, statement.extent_of(name), &stride) || stride > kMaxElements) {
        throw statement_error(position, statement, "output has more than 2^40 elements");
      }
    }
    shape.push_back(stride);
  }
  for (const auto& [name, count] : uses) {
    if (count != 1) {
      throw statement_error(position, statement,
                            "output index '" + name + "' must appear exactly once in the output subscripts");
    }
  }
  return shape;
}

void check_index_lists(size_t position, const Statement& statement) {
  std::set<std::string> seen;
  auto check = [&](const IndexVar& index) {
    if (index.name.empty()) throw statement_error(position, statement, "an index has no name");
    if (index.extent <= 0) {
      throw statement_error(position, statement,
                            "index '" + index.name + "' has extent " + std::to_string(index.extent) + "; extents must be positive");
    }
    if (!seen.insert(index.name).second) {
      throw statement_error(position, statement, "index '" + index.name + "' is bound twice");
    }
  };
  std::for_each(statement.output_indices.begin(), statement.output_indices.end(), check);
  std::for_each(statement.reduction_indices.begin(), statement.reduction_indices.end(), check);
}

void check_read(size_t position, const Statement& statement, const Access& access,
                const std::map<std::string, TensorDecl>& available, bool addend) {
  auto tensor = available.find(access.tensor);
  if (tensor == available.end()) {
    throw statement_error(position, statement,
                          "reads '" + access.tensor + "', which is neither declared nor written by an earlier statement");
  }
  if (tensor->second.shape.size() != access.subscripts.size()) {
    throw statement_error(position, statement,
                          "reads " + access.tensor + " with " + std::to_string(access.subscripts.size()) +
                              " subscripts but it has rank " + std::to_string(tensor->second.shape.size()));
  }
  for (const auto& subscript : access.subscripts) {
    for (const auto& [name, coefficient] : subscript.terms()) {
      bool is_output = std::any_of(statement.output_indices.begin(), statement.output_indices.end(),
                                   [&](const IndexVar& index) { return index.name == name; });
      bool is_reduction = std::any_of(statement.reduction_indices.begin(), statement.reduction_indices.end(),
                                      [&](const IndexVar& index) { return index.name == name; });
      if (!is_output && !is_reduction) {
        throw statement_error(position, statement, "index '" + name + "' in " + access.tensor + " is not bound");
      }
      if (addend && is_reduction) {
        throw statement_error(position, statement,
                              "addend " + access.tensor + " uses reduction index '" + name +
                                  "'; addends are added after the reduction");
      }
    }
  }
}

void check_declared(const TensorDecl& tensor) {
  if (tensor.name.empty()) throw IrError("a declared tensor has no name");
  if (tensor.role == Role::Intermediate || tensor.role == Role::Output) {
    throw IrError("tensor '" + tensor.name + "' is declared as " + std::string(to_string(tensor.role)) +
                  "; only inputs, params and consts are declared, written tensors are derived");
  }
  int64_t elements = 1;
  for (int64_t extent : tensor.shape) {
    if (extent <= 0) throw IrError("tensor '" + tensor.name + "' has a non-positive dimension");
    if (__builtin_mul_overflow(elements, extent, &elements) || elements > kMaxElements) {
      throw IrError("tensor '" + tensor.name + "' has more than 2^40 elements");
    }
  }
  if (tensor.role == Role::Const) {
    if (!tensor.values || static_cast<int64_t>(tensor.values->size()) != tensor.elements()) {
      throw IrError("const tensor '" + tensor.name + "' needs exactly " + std::to_string(tensor.elements()) + " values");
    }
  } else if (tensor.values) {
    throw IrError("tensor '" + tensor.name + "' has values but is not a const");
  }
}

}  // namespace

std::string_view to_string(Reduction reduction) { return name_of(kReductionNames, reduction); }
std::string_view to_string(Activation activation) { return name_of(kActivationNames, activation); }
std::optional<Reduction> reduction_from_string(std::string_view name) { return value_of(kReductionNames, name); }
std::optional<Activation> activation_from_string(std::string_view name) {
  auto activation = value_of(kActivationNames, name);
  if (activation == Activation::None) return std::nullopt;  // `none` is not written in the notation
  return activation;
}

std::string_view to_string(Role role) {
  switch (role) {
    case Role::Input: return "input";
    case Role::Param: return "param";
    case Role::Const: return "const";
    case Role::Intermediate: return "intermediate";
    case Role::Output: return "output";
  }
  return "?";
}

float apply_activation(Activation activation, float x) {
  switch (activation) {
    case Activation::None: return x;
    case Activation::Relu: return std::max(x, 0.0f);
    case Activation::Relu6: return std::clamp(x, 0.0f, 6.0f);
    case Activation::Sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case Activation::Silu: return x / (1.0f + std::exp(-x));
    case Activation::HardSwish: return x * std::clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    case Activation::HardSigmoid: return std::clamp(x / 6.0f + 0.5f, 0.0f, 1.0f);
    case Activation::Gelu: return 0.5f * x * (1.0f + std::erf(x / std::sqrt(2.0f)));
    case Activation::Tanh: return std::tanh(x);
  }
  return x;
}

int64_t Statement::extent_of(std::string_view index) const {
  for (const auto* list : {&output_indices, &reduction_indices}) {
    for (const auto& candidate : *list) {
      if (candidate.name == index) return candidate.extent;
    }
  }
  throw IrError("index '" + std::string(index) + "' is not bound in the statement writing " + output.tensor);
}

int64_t TensorDecl::elements() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

bool operator==(const TensorDecl& a, const TensorDecl& b) {
  if (a.name != b.name || a.role != b.role || a.shape != b.shape) return false;
  if (!a.values || !b.values) return !a.values && !b.values;
  return *a.values == *b.values;
}

Tensor::Tensor(std::vector<int64_t> shape_, float fill) : shape(std::move(shape_)) {
  data.assign(std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()), fill);
}

Tensor::Tensor(std::vector<int64_t> shape_, std::vector<float> data_) : shape(std::move(shape_)), data(std::move(data_)) {
  if (std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()) != static_cast<int64_t>(data.size())) {
    throw IrError("tensor data has " + std::to_string(data.size()) + " values, which does not match its shape");
  }
}

OpExpr OpExpr::make(std::vector<TensorDecl> tensors, std::vector<Statement> statements) {
  if (statements.empty()) throw IrError("an operator needs at least one statement");
  std::map<std::string, TensorDecl> available;
  std::set<std::string> unread;
  for (const auto& tensor : tensors) {
    check_declared(tensor);
    if (!available.emplace(tensor.name, tensor).second) throw IrError("tensor '" + tensor.name + "' is declared twice");
    unread.insert(tensor.name);
  }
  for (size_t position = 0; position < statements.size(); ++position) {
    const Statement& statement = statements[position];
    check_index_lists(position, statement);
    if (statement.factors.empty()) throw statement_error(position, statement, "has no factors");
    for (const auto& factor : statement.factors) check_read(position, statement, factor, available, false);
    for (const auto& addend : statement.addends) check_read(position, statement, addend, available, true);
    for (const auto* list : {&statement.factors, &statement.addends}) {
      for (const auto& access : *list) unread.erase(access.tensor);
    }
    if (available.count(statement.output.tensor)) {
      throw statement_error(position, statement, "writes '" + statement.output.tensor + "', which already exists");
    }
    bool last = position + 1 == statements.size();
    TensorDecl written{statement.output.tensor, last ? Role::Output : Role::Intermediate,
                       output_shape(position, statement), nullptr};
    available.emplace(written.name, written);
    if (!last) unread.insert(written.name);
    tensors.push_back(std::move(written));
  }
  if (!unread.empty()) throw IrError("tensor '" + *unread.begin() + "' is never read");

  OpExpr op;
  op.tensors_ = std::move(tensors);
  op.statements_ = std::move(statements);
  detail::Parts parts{op.tensors_, op.statements_};
  op.canonical_key_ = std::make_shared<const std::string>(detail::print_parts(detail::canonical_parts(parts)));
  return op;
}

const TensorDecl* OpExpr::find_tensor(std::string_view name) const {
  for (const auto& tensor : tensors_) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

const TensorDecl& OpExpr::tensor(std::string_view name) const {
  if (const auto* found = find_tensor(name)) return *found;
  throw IrError("the operator has no tensor '" + std::string(name) + "'");
}

std::vector<TensorDecl> OpExpr::tensors_with_role(Role role) const {
  std::vector<TensorDecl> selected;
  std::copy_if(tensors_.begin(), tensors_.end(), std::back_inserter(selected),
               [role](const TensorDecl& tensor) { return tensor.role == role; });
  return selected;
}

const TensorDecl& OpExpr::output() const { return tensors_.back(); }

namespace detail {

std::vector<TensorDecl> declared_tensors(const std::vector<TensorDecl>& tensors) {
  std::vector<TensorDecl> declared;
  std::copy_if(tensors.begin(), tensors.end(), std::back_inserter(declared), [](const TensorDecl& tensor) {
    return tensor.role == Role::Input || tensor.role == Role::Param || tensor.role == Role::Const;
  });
  return declared;
}

}  // namespace detail

}  // namespace gos::ir
