// Passes over statements that the rules share; see rewrite.h.
#include "rules/rewrite.h"

#include <algorithm>

namespace gos::rules::detail {

int64_t evaluate(const ir::Affine& affine, const Env& env) {
  int64_t value = affine.constant_term();
  for (const auto& [name, coefficient] : affine.terms()) value += coefficient * env.at(name);
  return value;
}

ir::Affine substitute(const ir::Affine& affine, const Substitution& substitution) {
  ir::Affine result = ir::Affine::constant(affine.constant_term());
  for (const auto& [name, coefficient] : affine.terms()) {
    auto found = substitution.find(name);
    result = result + (found == substitution.end() ? ir::Affine::index(name, coefficient) : found->second * coefficient);
  }
  return result;
}

ir::Access substitute(const ir::Access& access, const Substitution& substitution) {
  ir::Access result{access.tensor, {}};
  for (const auto& subscript : access.subscripts) result.subscripts.push_back(substitute(subscript, substitution));
  return result;
}

ir::Affine dense(const ir::Affine& affine, const std::map<std::string, int64_t>& extents) {
  auto terms = affine.terms();
  std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<ir::Affine::Term> result;
  int64_t coefficient = 1;
  for (size_t i = terms.size(); i-- > 0;) {
    result.push_back({terms[i].first, coefficient});
    coefficient *= extents.at(terms[i].first);
  }
  return ir::Affine(std::move(result), 0);
}

std::map<std::string, int64_t> extents_of(const ir::Statement& statement) {
  std::map<std::string, int64_t> extents;
  for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (const auto& index : *list) extents[index.name] = index.extent;
  }
  return extents;
}

namespace {

std::vector<ir::Access*> accesses_of(ir::Statement& statement) {
  std::vector<ir::Access*> accesses{&statement.output};
  for (auto& factor : statement.factors) accesses.push_back(&factor);
  for (auto& addend : statement.addends) accesses.push_back(&addend);
  return accesses;
}

void substitute_everywhere(ir::Statement& statement, const Substitution& substitution) {
  for (ir::Access* access : accesses_of(statement)) *access = substitute(*access, substitution);
}

void unbind(std::vector<ir::IndexVar>& list, const std::string& name) {
  std::erase_if(list, [&](const ir::IndexVar& index) { return index.name == name; });
}

// A unit-extent output index may go only where other indices share its output subscript: an
// output subscript must keep at least one index.
bool removable_unit_index(const ir::Statement& statement, const ir::IndexVar& index) {
  if (index.extent != 1) return false;
  for (const auto& subscript : statement.output.subscripts) {
    if (subscript.coefficient(index.name) != 0) return subscript.terms().size() > 1;
  }
  return true;
}

void drop_unit_indices(ir::Statement& statement) {
  Substitution zero;
  for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (const auto& index : *list) {
      if (removable_unit_index(statement, index)) zero[index.name] = ir::Affine::constant(0);
    }
  }
  substitute_everywhere(statement, zero);
  for (const auto& [name, unused] : zero) {
    unbind(statement.output_indices, name);
    unbind(statement.reduction_indices, name);
  }
}

// Whether `outer` and `inner` always appear as e_inner*outer + inner (times a common factor).
bool fusable(ir::Statement& statement, const ir::IndexVar& outer, const ir::IndexVar& inner) {
  bool seen = false;
  for (ir::Access* access : accesses_of(statement)) {
    for (const auto& subscript : access->subscripts) {
      int64_t a = subscript.coefficient(outer.name), b = subscript.coefficient(inner.name);
      if (a == 0 && b == 0) continue;
      if (a == 0 || b == 0 || a != inner.extent * b) return false;
      seen = true;
    }
  }
  return seen;
}

void fuse(ir::Statement& statement, std::vector<ir::IndexVar>& list, size_t outer, size_t inner) {
  const std::string outer_name = list[outer].name, inner_name = list[inner].name;
  for (ir::Access* access : accesses_of(statement)) {
    for (auto& subscript : access->subscripts) {
      int64_t b = subscript.coefficient(inner_name);
      if (b == 0) continue;
      std::vector<ir::Affine::Term> terms;
      for (const auto& term : subscript.terms()) {
        if (term.first != outer_name && term.first != inner_name) terms.push_back(term);
      }
      terms.push_back({outer_name, b});
      subscript = ir::Affine(std::move(terms), subscript.constant_term());
    }
  }
  list[outer].extent *= list[inner].extent;
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(inner));
}

bool fuse_one_pair(ir::Statement& statement) {
  for (auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (size_t outer = 0; outer < list->size(); ++outer) {
      for (size_t inner = 0; inner < list->size(); ++inner) {
        if (outer != inner && fusable(statement, (*list)[outer], (*list)[inner])) {
          fuse(statement, *list, outer, inner);
          return true;
        }
      }
    }
  }
  return false;
}

}  // namespace

ir::Statement simplify(ir::Statement statement) {
  drop_unit_indices(statement);
  while (fuse_one_pair(statement)) {
  }
  return statement;
}

std::vector<int64_t> reached_shape(const ir::Access& access, const std::map<std::string, int64_t>& extents) {
  std::vector<int64_t> shape;
  for (const auto& subscript : access.subscripts) {
    int64_t low = subscript.constant_term(), high = subscript.constant_term();
    for (const auto& [name, coefficient] : subscript.terms()) {
      int64_t span = coefficient * (extents.at(name) - 1);
      (span > 0 ? high : low) += span;
    }
    if (low < 0) throw ir::IrError("rules: subscript " + ir::print(subscript) + " of " + access.tensor + " goes negative");
    shape.push_back(high + 1);
  }
  return shape;
}

void for_each_point(const std::vector<ir::IndexVar>& indices, const std::function<void(const Env&)>& visit) {
  Env env;
  for (const auto& index : indices) {
    if (index.extent <= 0) return;
    env[index.name] = 0;
  }
  while (true) {
    visit(env);
    bool wrapped_around = true;
    for (size_t dim = indices.size(); dim-- > 0;) {
      if (++env[indices[dim].name] < indices[dim].extent) {
        wrapped_around = false;
        break;
      }
      env[indices[dim].name] = 0;
    }
    if (wrapped_around) return;
  }
}

namespace {

int64_t offset_of(const ir::Tensor& tensor, const ir::Access& access, const Env& env) {
  int64_t flat = 0;
  for (size_t dim = 0; dim < access.subscripts.size(); ++dim) {
    int64_t position = evaluate(access.subscripts[dim], env);
    if (position < 0 || position >= tensor.shape[dim]) return -1;
    flat = flat * tensor.shape[dim] + position;
  }
  return flat;
}

}  // namespace

float read(const ir::Tensor& tensor, const ir::Access& access, const Env& env) {
  int64_t flat = offset_of(tensor, access, env);
  return flat < 0 ? 0.0f : tensor.data[static_cast<size_t>(flat)];
}

void write(ir::Tensor& tensor, const ir::Access& access, const Env& env, float value) {
  int64_t flat = offset_of(tensor, access, env);
  if (flat >= 0) tensor.data[static_cast<size_t>(flat)] = value;
}

ir::Tensor inherit_by_substitution(const ir::Tensor& old_values, const ir::Access& old_access,
                                   const ir::Access& new_access, const std::map<std::string, int64_t>& extents,
                                   const Substitution& old_from_new) {
  ir::Tensor values(reached_shape(new_access, extents));
  std::vector<ir::IndexVar> indices;
  for (const auto& [name, extent] : extents) {
    bool in_weight = std::any_of(new_access.subscripts.begin(), new_access.subscripts.end(),
                                 [&](const ir::Affine& a) { return a.coefficient(name) != 0; });
    if (in_weight) indices.push_back({name, extent});
  }
  for_each_point(indices, [&](const Env& env) {
    Env old = env;
    for (const auto& [name, affine] : old_from_new) old[name] = evaluate(affine, env);
    write(values, new_access, env, read(old_values, old_access, old));
  });
  return values;
}

std::string fresh_name(std::set<std::string>& used, const std::string& base) {
  std::string name = base;
  for (int suffix = 1; used.count(name); ++suffix) name = base + std::to_string(suffix);
  used.insert(name);
  return name;
}

std::set<std::string> tensor_names(const ir::OpExpr& op) {
  std::set<std::string> names;
  for (const auto& tensor : op.tensors()) names.insert(tensor.name);
  return names;
}

std::set<std::string> index_names(const ir::Statement& statement) {
  std::set<std::string> names;
  for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (const auto& index : *list) names.insert(index.name);
  }
  return names;
}

ir::OpExpr replace_statement(const ir::OpExpr& op, size_t index, const std::vector<ir::Statement>& replacement,
                             const std::vector<ir::TensorDecl>& added) {
  std::vector<ir::Statement> statements;
  for (size_t i = 0; i < op.statements().size(); ++i) {
    if (i == index) {
      statements.insert(statements.end(), replacement.begin(), replacement.end());
    } else {
      statements.push_back(op.statements()[i]);
    }
  }
  std::set<std::string> read;
  for (const auto& statement : statements) {
    for (const auto* list : {&statement.factors, &statement.addends}) {
      for (const auto& access : *list) read.insert(access.tensor);
    }
  }
  std::vector<ir::TensorDecl> declared;
  for (const auto& tensor : op.tensors()) {
    bool is_declared = tensor.role == ir::Role::Input || tensor.role == ir::Role::Param || tensor.role == ir::Role::Const;
    if (is_declared && (tensor.role == ir::Role::Input || read.count(tensor.name))) declared.push_back(tensor);
  }
  declared.insert(declared.end(), added.begin(), added.end());
  return ir::OpExpr::make(std::move(declared), std::move(statements));
}

}  // namespace gos::rules::detail
