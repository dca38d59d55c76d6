#pragma once
// The public face of candidate scoring: an operator of a model, its replacement candidates from
// the rewrite rules, and how close each starts to the original on the inputs the operator really
// sees in the model. libtorch stays in the .cpp.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "ir/ir.h"
#include "rules/rules.h"

namespace gos::search {

class SearchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The compute node named `name`, or the only one whose name starts with it. Throws SearchError
// listing the model's compute nodes when none (or several) match, or naming why a matched node
// has no candidates (a structural node, or no learned contraction).
const graph::Node& searchable_node(const graph::Graph& graph, const std::string& name);

// The node's inputs (in its input order) when the graph runs on `model_inputs` (one tensor per
// graph input, any batch size), by libtorch.
std::vector<ir::Tensor> record_node_inputs(const graph::Graph& graph, const graph::Node& node,
                                           const std::vector<ir::Tensor>& model_inputs);

// How many of `available` samples the node's inputs are recorded on: all of them while their
// per-sample inputs (the activations it reads, not its constants) fit `max_bytes` as floats, else
// as many as fit, but at least `min_samples`. A convolution learns from every position of an
// image, so a larger image needs fewer of them.
inline constexpr int64_t kMaxRecordedBytes = int64_t{64} << 20;
int64_t samples_to_record(const graph::Graph& graph, const graph::Node& node, int64_t available,
                          int64_t max_bytes = kMaxRecordedBytes, int64_t min_samples = 16);

struct ScoredCandidate {
  rules::Candidate candidate;
  ir::Cost cost;
  // ||candidate(x) - original(x)|| / ||original(x)|| over the recorded inputs x, with the
  // inherited weights, before any training.
  double init_rel_error = 0;
};

// Scores every candidate against `original` on `inputs` (the operator's inputs, batched), by
// libtorch. `on_progress(done, total)` is called after each candidate.
std::vector<ScoredCandidate> score_candidates(const rules::Candidate& original,
                                              const std::vector<rules::Candidate>& candidates,
                                              const std::vector<ir::Tensor>& inputs,
                                              const std::function<void(size_t, size_t)>& on_progress = {});

// Fidelity: the candidate trained briefly (Adam) to reproduce the original operator's outputs on
// recorded inputs (local distillation), starting from its inherited weights. Returns the trained
// weights and the normalised output error ||candidate(x) - original(x)|| / ||original(x)|| on
// `held_out_inputs` (inputs not trained on) before and after.
struct DistillOptions {
  int steps = 300;
  int64_t batch = 32;
  double learning_rate = 1e-3;
  uint64_t seed = 1;
  // What one pass may write (the operator's intermediates and output over its samples): batches and
  // error evaluations take fewer samples where an operator writes more (high resolutions).
  int64_t max_pass_bytes = int64_t{256} << 20;
};
struct Distilled {
  ir::TensorMap weights;
  double error_before = 0;
  double error_after = 0;
};
Distilled distill_candidate(const rules::Candidate& original, const rules::Candidate& candidate,
                            const std::vector<ir::Tensor>& train_inputs, const std::vector<ir::Tensor>& held_out_inputs,
                            const DistillOptions& options = {});

// The candidates on the Pareto front of (MACs, init error): none other is at least as good in
// both and better in one. Indices into `scored`, by increasing MACs.
std::vector<size_t> pareto_front(const std::vector<ScoredCandidate>& scored);

}  // namespace gos::search
