#pragma once
// Lowering an operator to TorchScript source: a method `def NAME(self, <inputs>, <params>,
// <consts and index tables>)` whose body is the operator's TorchProgram (the same calls TorchOp
// runs eagerly), ready for torch::jit::Module::define. Plain C++: no libtorch header.
#include <string>
#include <vector>

#include "lowering/torch_program.h"

namespace gos::lowering {

struct TorchScriptFunction {
  std::string name;
  // The program values the method takes, in order: inputs, params, consts, index tables (the
  // caller passes tensors for them, e.g. module attributes; TorchOp::constants() holds the last two).
  std::vector<std::string> arguments;
  std::string source;
};

TorchScriptFunction torchscript_function(const TorchProgram& program, const std::string& name);
// The operator planned with recognised kernels (TorchOp(op).program()).
TorchScriptFunction torchscript_function(const ir::OpExpr& op, const std::string& name);

}  // namespace gos::lowering
