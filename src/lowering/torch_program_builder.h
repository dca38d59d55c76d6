#pragma once
// Internal to the lowering part: appends calls to a TorchProgram under fresh value names, and the
// generic lowering of one statement (torch_generic.cpp).
#include <string>
#include <vector>

#include "lowering/torch_program.h"

namespace gos::lowering::detail {

class ProgramBuilder {
 public:
  explicit ProgramBuilder(TorchProgram& program) : program_(program) {}

  // Appends `function(args)` and returns the fresh value holding its result. Fresh names start
  // with '$', which no IR tensor name can, so they never shadow the operator's tensors.
  std::string call(TorchFn function, std::vector<TorchArg> args);
  // A generated int64 table of flat positions, as a fresh value.
  std::string index_table(std::vector<int64_t> positions);
  // Makes `value` (the result of the statement) available under the statement's output name.
  void define(const std::string& output, const std::string& value);

 private:
  std::string fresh();
  TorchProgram& program_;
  int next_ = 0;
};

inline TorchArg value(const std::string& name) { return ValueRef{name}; }

// torch::constant_pad_nd's pad list, last dimension first, from per-dimension begins and ends.
std::vector<int64_t> torch_pad_order(const std::vector<int64_t>& begins, const std::vector<int64_t>& ends);

// Appends the calls computing `statement`'s reduction and addends (not its activation) with the
// generic lowering and returns the value holding them in the output tensor's shape.
std::string plan_generic_statement(const ir::OpExpr& op, const ir::Statement& statement, ProgramBuilder& builder);

}  // namespace gos::lowering::detail
