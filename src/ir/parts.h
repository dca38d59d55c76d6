#pragma once
// Internal to the IR: passes that work on an operator's raw parts, so that OpExpr::make can use
// them (to compute the canonical key) before an OpExpr exists.
#include "ir/ir.h"

namespace gos::ir::detail {

struct Parts {
  std::vector<TensorDecl> tensors;  // declared (inputs, params, consts) then written ones
  std::vector<Statement> statements;
};

Parts canonical_parts(const Parts& parts);
std::string print_parts(const Parts& parts);
std::vector<TensorDecl> declared_tensors(const std::vector<TensorDecl>& tensors);

}  // namespace gos::ir::detail
