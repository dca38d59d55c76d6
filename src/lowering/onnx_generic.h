#pragma once
// Internal to the lowering part: the generic ONNX lowering of one statement (views per read,
// Einsum, masked ReduceMax), used for every statement that is not a recognised kernel.
#include <map>
#include <string>

#include "ir/ir.h"
#include "lowering/onnx_builder.h"

namespace gos::lowering::detail {

// ONNX value name of each tensor of the operator that exists when the statement runs.
using ValueNames = std::map<std::string, std::string>;

// Appends the nodes computing the statement's reduction plus addends (its activation excluded)
// and returns the value holding the result in the output tensor's shape.
std::string lower_generic_statement(const ir::OpExpr& op, const ir::Statement& statement, const ValueNames& values,
                                    OnnxBuilder& builder);

}  // namespace gos::lowering::detail
