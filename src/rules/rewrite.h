#pragma once
// Internal to the rules: small passes over statements that every rule uses (substitution,
// simplification, shape inference), index-space iteration, and reading and writing weight
// elements through accesses, which is how weights are inherited whatever their layout.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::rules::detail {

using Env = std::map<std::string, int64_t>;  // index name -> value
using Substitution = std::map<std::string, ir::Affine>;

int64_t evaluate(const ir::Affine& affine, const Env& env);

ir::Affine substitute(const ir::Affine& affine, const Substitution& substitution);
ir::Access substitute(const ir::Access& access, const Substitution& substitution);

// Rewrites a subscript over written or learned tensors as a dense mixed-radix form: its terms in
// order of decreasing coefficient get coefficients ..., e2*e3, e3, 1 and the constant 0, so that
// its extent is the product of its indices' extents (no holes, as OpExpr requires of outputs).
ir::Affine dense(const ir::Affine& affine, const std::map<std::string, int64_t>& extents);

// Extents of every index of a statement, by name.
std::map<std::string, int64_t> extents_of(const ir::Statement& statement);

// A statement tidied into the constructors' forms: unit-extent indices become 0, and two indices
// that always appear together as e2*i1 + i2 (times a common factor) fuse into one index of extent
// e1*e2 (a group of groups is one group). Written and learned subscripts stay dense.
ir::Statement simplify(ir::Statement statement);

// The smallest shape that holds every element the access reaches (subscripts must not go
// negative: written and learned tensors only).
std::vector<int64_t> reached_shape(const ir::Access& access, const std::map<std::string, int64_t>& extents);

// Calls `visit` for every assignment of the indices (row-major, the last index fastest).
void for_each_point(const std::vector<ir::IndexVar>& indices, const std::function<void(const Env&)>& visit);

// Element of `tensor` that `access` reaches at `env`; 0 outside the tensor (padding semantics).
float read(const ir::Tensor& tensor, const ir::Access& access, const Env& env);
// Sets that element; out-of-range writes are ignored.
void write(ir::Tensor& tensor, const ir::Access& access, const Env& env, float value);

// The values of a weight read through `new_access` that stands for `old_access` of `old_values`,
// where `old_from_new` gives the old indices in terms of the new ones (the others are shared):
// each new element takes the old element it replaces (a block-diagonal part, kept taps).
ir::Tensor inherit_by_substitution(const ir::Tensor& old_values, const ir::Access& old_access,
                                   const ir::Access& new_access, const std::map<std::string, int64_t>& extents,
                                   const Substitution& old_from_new);

// A name not in `used` ("base", "base1", "base2", ...), which is then added to `used`.
std::string fresh_name(std::set<std::string>& used, const std::string& base);
std::set<std::string> tensor_names(const ir::OpExpr& op);
std::set<std::string> index_names(const ir::Statement& statement);

// `op` with statement `index` replaced by `replacement` (statements in order), declaring the
// params and consts in `added` and dropping declarations no statement reads any more. Inputs
// are kept as they are: they are the operator's signature.
ir::OpExpr replace_statement(const ir::OpExpr& op, size_t index, const std::vector<ir::Statement>& replacement,
                             const std::vector<ir::TensorDecl>& added);

}  // namespace gos::rules::detail
