#pragma once
// Internal to `gos candidates`: its options, shared by the operator listing
// (candidates_command.cpp) and the channel group's widths (candidates_group.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "cli/data_options.h"
#include "graph/graph.h"

namespace gos::cli {

struct CandidatesOptions {
  std::string model;
  std::string op;
  std::string group;  // instead of op: a channel group's widths
  int depth = 2;
  size_t max = 20;
  std::string sort = "pareto";
  std::vector<std::string> rules;
  DataOptions data;  // data.data empty: random normal model inputs
  int64_t batch = 32;
  uint32_t seed = 1;
  bool keep_costlier = false;
  int64_t subsample = 1;
  std::string backend;  // empty: no latency
  int threads = 1;
  std::string cache;
  std::string device;  // with backend: a paired board times the candidates
  bool json = false;
};

// A batch of the model's inputs: the first images of the data's validation split, or random normal
// values of the model's input shape.
std::vector<ir::Tensor> model_inputs(const graph::Graph& model, const CandidatesOptions& options);

// --group: the widths a channel group may narrow to, each with the model's output error when the
// channels are kept by weight norm, by contribution, and with the consumers refitted.
int run_group_widths(const CandidatesOptions& options);

}  // namespace gos::cli
