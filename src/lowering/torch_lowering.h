#pragma once
// Lowering an operator to libtorch: TorchOp runs an OpExpr with efficient kernels where its
// statements are recognised (conv, linear, matmul, pools, activations, add) and the generic
// einsum-over-views lowering elsewhere, differentiably, at any batch size (the batch rule is in
// torch_program.h). The same plan prints as TorchScript (torchscript_lowering.h).
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "ir/ir.h"
#include "lowering/torch_program.h"

namespace gos::lowering {

class TorchOp {
 public:
  // Recognises the kernels once; `choice` can force the generic lowering everywhere.
  explicit TorchOp(ir::OpExpr op, KernelChoice choice = KernelChoice::Recognise);

  // `inputs` in the operator's signature order; `params` by the operator's param names. Throws
  // std::invalid_argument naming what is missing.
  torch::Tensor forward(const std::vector<torch::Tensor>& inputs, const std::map<std::string, torch::Tensor>& params) const;

  // The most a forward pass holds per sample of the operator's nominal batch (1 for graph nodes),
  // in bytes: every statement's output, and the largest iteration space of a statement lowered
  // generically, which einsum may copy whole from its strided views (a 7x7 depthwise window over
  // 64x112x112 outputs is 49 values an output). Callers size batches of large inputs by it.
  int64_t bytes_per_sample() const;

  const ir::OpExpr& op() const { return op_; }
  const TorchProgram& program() const { return program_; }
  // The operator's const tables and the generated index tables, by program value name.
  const std::map<std::string, torch::Tensor>& constants() const { return constants_; }

 private:
  ir::OpExpr op_;
  TorchProgram program_;
  std::map<std::string, torch::Tensor> constants_;
};

// Copies between the interpreter's tensors and float32 CPU torch tensors.
torch::Tensor to_torch(const ir::Tensor& tensor);
ir::Tensor from_torch(const torch::Tensor& tensor);

}  // namespace gos::lowering
