// TorchScript text of a TorchProgram.
#include "lowering/torchscript_lowering.h"

namespace gos::lowering {

namespace {

// Program values as Python identifiers: generated values ('$3') become t_3 and operator tensors
// get a v_ prefix, so neither can meet a keyword or each other.
std::string identifier(const std::string& value) {
  return value.starts_with('$') ? "t_" + value.substr(1) : "v_" + value;
}

}  // namespace

TorchScriptFunction torchscript_function(const TorchProgram& program, const std::string& name) {
  TorchScriptFunction function{name, {}, {}};
  for (const auto* list : {&program.inputs, &program.params, &program.consts}) {
    function.arguments.insert(function.arguments.end(), list->begin(), list->end());
  }
  for (const auto& [table, positions] : program.index_tables) function.arguments.push_back(table);

  function.source = "def " + name + "(self";
  for (const auto& argument : function.arguments) function.source += ", " + identifier(argument);
  function.source += "):\n";
  ScriptNames names = [](const ValueRef& ref) { return identifier(ref.name); };
  for (const auto& call : program.calls) {
    function.source += "    " + identifier(call.result) + " = " + script_expression(call, names) + "\n";
  }
  function.source += "    return " + identifier(program.output) + "\n";
  return function;
}

TorchScriptFunction torchscript_function(const ir::OpExpr& op, const std::string& name) {
  return torchscript_function(plan_torch_program(op), name);
}

}  // namespace gos::lowering
