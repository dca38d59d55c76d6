#pragma once
// Loading a TorchScript file (fp32, or written by write_quantized_torchscript) to run it: the
// libtorch side of quant.h, for the parts that already hold torch tensors.
#include <torch/script.h>

#include <filesystem>
#include <vector>

namespace gos::quant {

// Loads the module in eval mode with the platform's quantized engine, ready for batches of any
// size. `example_inputs` are inputs of the shape it will run on (any batch).
torch::jit::Module load_torchscript(const std::filesystem::path& path, const std::vector<torch::Tensor>& example_inputs);

}  // namespace gos::quant
