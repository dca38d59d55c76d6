#pragma once
// Running the calls of a TorchProgram (torch_program.h) eagerly with libtorch, differentiably.
// The graph part runs its structural nodes' calls through the same function.
#include <torch/types.h>

#include <functional>

#include "lowering/torch_program.h"

namespace gos::lowering {

struct TorchContext {
  // The tensor a call reads (a program value, or a learned weight of the node being run).
  std::function<const torch::Tensor&(const ValueRef&)> lookup;
  bool training = false;  // BatchNorm: batch statistics and running-stat updates
};

torch::Tensor run_call(const TorchCall& call, const TorchContext& context);

}  // namespace gos::lowering
