// Canonical form: the representative of an operator's class under renaming of indices and
// tensors and reordering of commutative factors and addends. Equality and hashing of OpExpr use
// its printed text, so rules can deduplicate candidates by comparing operators.
#include <algorithm>

#include "ir/ir.h"
#include "ir/parts.h"

namespace gos::ir {

namespace {

int role_rank(Role role) {
  switch (role) {
    case Role::Input: return 0;
    case Role::Intermediate: return 1;
    case Role::Param: return 2;
    case Role::Const: return 3;
    case Role::Output: return 4;
  }
  return 5;
}

class Canonicaliser {
 public:
  explicit Canonicaliser(const detail::Parts& parts) : parts_(parts) {
    int inputs = 0;
    int intermediates = 0;
    for (const auto& tensor : parts.tensors) {
      roles_[tensor.name] = tensor.role;
      if (tensor.role == Role::Input) tensor_names_[tensor.name] = "X" + std::to_string(inputs++);
      if (tensor.role == Role::Intermediate) tensor_names_[tensor.name] = "T" + std::to_string(intermediates++);
      if (tensor.role == Role::Output) tensor_names_[tensor.name] = "Y";
    }
  }

  detail::Parts run() {
    detail::Parts canonical;
    for (const auto& statement : parts_.statements) canonical.statements.push_back(canonical_statement(statement));
    std::vector<TensorDecl> declared;
    for (auto tensor : parts_.tensors) {
      tensor.name = tensor_names_.at(tensor.name);
      declared.push_back(std::move(tensor));
    }
    // Inputs keep their (signature) order; params and consts are ordered by their new names.
    std::stable_sort(declared.begin(), declared.end(), [](const TensorDecl& a, const TensorDecl& b) {
      if (role_rank(a.role) != role_rank(b.role)) return role_rank(a.role) < role_rank(b.role);
      if (a.role == Role::Input) return false;
      return a.name.size() != b.name.size() ? a.name.size() < b.name.size() : a.name < b.name;
    });
    // Derived tensors stay after the declared ones, in statement order.
    std::stable_partition(declared.begin(), declared.end(), [](const TensorDecl& tensor) {
      return tensor.role == Role::Input || tensor.role == Role::Param || tensor.role == Role::Const;
    });
    canonical.tensors = std::move(declared);
    return canonical;
  }

  const std::map<std::string, std::string>& tensor_names() const { return tensor_names_; }

 private:
  // A name-independent sort key for a read: role, the tensor's canonical name where already
  // known, then the subscripts with canonical index names ('?' for indices not yet named).
  std::string key(const Access& access) const {
    std::string text = std::to_string(role_rank(roles_.at(access.tensor)));
    auto name = tensor_names_.find(access.tensor);
    text += name == tensor_names_.end() ? std::string("#") : name->second;
    text += "[";
    for (const auto& subscript : access.subscripts) {
      auto terms = subscript.terms();
      for (auto& term : terms) {
        auto renamed = index_names_.find(term.first);
        term.first = renamed == index_names_.end() ? "?" : renamed->second;
      }
      std::sort(terms.begin(), terms.end());
      for (const auto& [index, coefficient] : terms) text += std::to_string(coefficient) + "*" + index + "+";
      text += std::to_string(subscript.constant_term()) + ",";
    }
    return text + "]";
  }

  void sort_by_key(std::vector<Access>& accesses) const {
    std::stable_sort(accesses.begin(), accesses.end(), [&](const Access& a, const Access& b) { return key(a) < key(b); });
  }

  void name_index(const std::string& name) {
    if (!index_names_.count(name)) index_names_[name] = "i" + std::to_string(next_index_++);
  }

  // Names in order of first use, scanning subscripts left to right and, within one, the terms with
  // the largest coefficients first (the major position of a mixed-radix pair).
  void name_indices_in(const Access& access, const std::vector<IndexVar>& candidates) {
    for (const auto& subscript : access.subscripts) {
      auto terms = subscript.terms();
      std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) {
        return std::abs(a.second) > std::abs(b.second);
      });
      for (const auto& term : terms) {
        bool candidate = std::any_of(candidates.begin(), candidates.end(),
                                     [&](const IndexVar& index) { return index.name == term.first; });
        if (candidate) name_index(term.first);
      }
    }
  }

  void name_weights_in(const std::vector<Access>& accesses) {
    for (const auto& access : accesses) {
      Role role = roles_.at(access.tensor);
      if (tensor_names_.count(access.tensor)) continue;
      if (role == Role::Param) tensor_names_[access.tensor] = "W" + std::to_string(params_++);
      if (role == Role::Const) tensor_names_[access.tensor] = "C" + std::to_string(consts_++);
    }
  }

  Statement canonical_statement(const Statement& statement) {
    index_names_.clear();
    name_indices_in(statement.output, statement.output_indices);
    Statement result = statement;
    sort_by_key(result.factors);
    for (const auto& factor : result.factors) name_indices_in(factor, statement.reduction_indices);
    for (const auto& index : statement.reduction_indices) name_index(index.name);  // unused in factors
    sort_by_key(result.factors);
    sort_by_key(result.addends);
    name_weights_in(result.factors);
    name_weights_in(result.addends);
    return renamed(result);
  }

  Statement renamed(Statement statement) const {
    auto rename_access = [&](Access& access) {
      access.tensor = tensor_names_.at(access.tensor);
      for (auto& subscript : access.subscripts) subscript = subscript.rename(index_names_);
    };
    auto rename_list = [&](std::vector<IndexVar>& list) {
      for (auto& index : list) index.name = index_names_.at(index.name);
      std::sort(list.begin(), list.end(), [](const IndexVar& a, const IndexVar& b) {
        return std::stoi(a.name.substr(1)) < std::stoi(b.name.substr(1));
      });
    };
    rename_access(statement.output);
    for (auto& factor : statement.factors) rename_access(factor);
    for (auto& addend : statement.addends) rename_access(addend);
    rename_list(statement.output_indices);
    rename_list(statement.reduction_indices);
    return statement;
  }

  const detail::Parts& parts_;
  std::map<std::string, Role> roles_;
  std::map<std::string, std::string> tensor_names_;
  std::map<std::string, std::string> index_names_;
  int next_index_ = 0;
  int params_ = 0;
  int consts_ = 0;
};

}  // namespace

namespace detail {

Parts canonical_parts(const Parts& parts) { return Canonicaliser(parts).run(); }

}  // namespace detail

OpExpr canonical(const OpExpr& op) {
  auto parts = detail::canonical_parts({op.tensors(), op.statements()});
  return OpExpr::make(detail::declared_tensors(parts.tensors), parts.statements);
}

std::map<std::string, std::string> canonical_tensor_names(const OpExpr& op) {
  detail::Parts parts{op.tensors(), op.statements()};
  Canonicaliser canonicaliser(parts);
  canonicaliser.run();
  return canonicaliser.tensor_names();
}

OpExpr rename_tensors(const OpExpr& op, const std::map<std::string, std::string>& names) {
  auto rename = [&](std::string& name) {
    if (auto found = names.find(name); found != names.end()) name = found->second;
  };
  auto tensors = detail::declared_tensors(op.tensors());
  for (auto& tensor : tensors) rename(tensor.name);
  auto statements = op.statements();
  for (auto& statement : statements) {
    rename(statement.output.tensor);
    for (auto& factor : statement.factors) rename(factor.tensor);
    for (auto& addend : statement.addends) rename(addend.tensor);
  }
  return OpExpr::make(std::move(tensors), std::move(statements));
}

}  // namespace gos::ir
