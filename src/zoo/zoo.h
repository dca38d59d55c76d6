#pragma once
// The public face of gos's model zoo: the baseline networks, built in C++ as graphs whose compute
// nodes are mathematical instructions, with freshly initialised weights.
//
// Conventions every model follows (docs/zoo.md):
//   - one graph input "input" and one graph output "output", nominal batch 1;
//   - image models read [1,1,28,28] float pixels in [0,1] (docs/data.md) and normalise them in the
//     graph's first node, so exported files need no preprocessing;
//   - BatchNormalization stays a structural node (training uses batch statistics) until
//     graph::fold_batch_norms; the activation after it is its own compute node;
//   - weights are Kaiming-normal (std sqrt(2/fan_in)) and biases zero, a pure function of the seed.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::zoo {

// An unknown model name; `what()` is one line listing the known ones.
class ZooError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Task { Classification, Regression };

struct ModelInfo {
  std::string name;
  Task task = Task::Classification;
  graph::Shape input_shape;  // nominal batch 1
  int64_t outputs = 0;       // classes, or regression targets
  std::string summary;       // one line
};

const std::vector<ModelInfo>& models();
std::vector<std::string> model_names();
const ModelInfo& model_info(const std::string& name);  // throws ZooError

// The model's graph; equal seeds give identical weights. Throws ZooError for an unknown name.
graph::Graph build_model(const std::string& name, uint64_t seed);

// The model as gos reads back its ONNX export, which is what inference, measurement and the
// search see: batch norms folded and each activation or bias add fused into its producer
// (graph::fuse_epilogues), so a convolution and its ReLU are one operator, `Y = relu(sum ...)`.
graph::Graph inference_graph(const std::string& name, uint64_t seed);

}  // namespace gos::zoo
