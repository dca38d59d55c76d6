// TorchOp: an operator's TorchProgram run eagerly.
#include "lowering/torch_lowering.h"

#include <algorithm>
#include <stdexcept>

#include "lowering/torch_functions.h"

namespace gos::lowering {

torch::Tensor to_torch(const ir::Tensor& tensor) {
  return torch::from_blob(const_cast<float*>(tensor.data.data()), tensor.shape, torch::kFloat).clone();
}

ir::Tensor from_torch(const torch::Tensor& tensor) {
  torch::Tensor values = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const float* data = values.data_ptr<float>();
  return ir::Tensor(values.sizes().vec(), std::vector<float>(data, data + values.numel()));
}

TorchOp::TorchOp(ir::OpExpr op, KernelChoice choice) : op_(std::move(op)), program_(plan_torch_program(op_, choice)) {
  for (const auto& name : program_.consts) constants_[name] = to_torch(ir::Tensor(op_.tensor(name).shape, *op_.tensor(name).values));
  for (const auto& [name, positions] : program_.index_tables) {
    constants_[name] = torch::tensor(positions, torch::kLong);
  }
}

int64_t TorchOp::bytes_per_sample() const {
  int64_t outputs = 0, largest_generic = 0;
  const auto& statements = op_.statements();
  for (size_t s = 0; s < statements.size(); ++s) {
    int64_t written = 1;
    for (const auto& index : statements[s].output_indices) written *= index.extent;
    outputs += written;
    if (program_.statement_kinds.at(s) != KernelKind::Generic) continue;
    int64_t space = written;
    for (const auto& index : statements[s].reduction_indices) space *= index.extent;
    largest_generic = std::max(largest_generic, space);
  }
  return (outputs + largest_generic) * static_cast<int64_t>(sizeof(float));
}

torch::Tensor TorchOp::forward(const std::vector<torch::Tensor>& inputs,
                               const std::map<std::string, torch::Tensor>& params) const {
  if (inputs.size() != program_.inputs.size()) {
    throw std::invalid_argument("operator takes " + std::to_string(program_.inputs.size()) + " inputs but got " +
                                std::to_string(inputs.size()));
  }
  std::map<std::string, torch::Tensor> values = constants_;
  for (size_t i = 0; i < inputs.size(); ++i) values[program_.inputs[i]] = inputs[i];
  for (const auto& name : program_.params) {
    auto found = params.find(name);
    if (found == params.end()) throw std::invalid_argument("operator param " + name + " has no value");
    values[name] = found->second;
  }
  TorchContext context{[&](const ValueRef& ref) -> const torch::Tensor& { return values.at(ref.name); }};
  for (const auto& call : program_.calls) values[call.result] = run_call(call, context);
  return values.at(program_.output);
}

}  // namespace gos::lowering
