#pragma once
// Fake quantization inside libtorch's graph module (quant/quant.h's scheme): values and weights
// rounded to their int8 grids as they are computed, gradients passed straight through, so that a
// model trains (quantization-aware training) and is evaluated as its int8 form will compute.
#include "graph/torch_module.h"
#include "quant/quant.h"

namespace gos::quant {

// Installs the rounding in `module`, a graph module of `form` (the quantizable_form the plan was
// made for) or of `form` with batch norms restored for training (graph::insert_batch_norms keeps
// the node and value names this reads): each weight of an int8 node rounded per output channel to
// its int8 grid at its current largest magnitude, each planned value to its uint8 grid. With
// `observe`, the value ranges start at the plan's and follow what training sees: moving averages
// of each batch's min and max (momentum 0.01, as PyTorch's MovingAverageMinMaxObserver), updated
// while gradients are recorded; evaluation leaves them as they are.
void fake_quantize(graph::GraphModule& module, const graph::Graph& form, const QuantPlan& plan, bool observe);

// The outputs of `form` over `inputs` [N, ...] (its single input), fake-quantized as the plan
// says, computed in batches.
ir::Tensor fake_quantized_outputs(const graph::Graph& form, const QuantPlan& plan, const ir::Tensor& inputs, int64_t batch = 250);

}  // namespace gos::quant
