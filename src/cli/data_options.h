#pragma once
// Internal to the CLI: the options of every command that feeds a model its data (adapt, eval,
// candidates, quantize) and the model option that fixes a dynamic input (--input-shape), with
// what they become: a data::DataSpec whose samples are brought to the model's input.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "data/data.h"
#include "graph/graph.h"
#include "measure/cache.h"

namespace gos::cli {

struct DataOptions {
  std::string data = "fashion-mnist";
  int64_t resize = 0;
  std::vector<float> mean, std;
  std::string preprocess;          // "imagenet": ImageNet's mean and std
  std::vector<int64_t> input_shape;  // fixes a model's dynamic input dimensions
};

inline constexpr const char* kDataHelp =
    "fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N, ppg:DIR, images:DIR (an ImageFolder), arrays:DIR or arrays:FILE.npz";

// `default_data`: what --data is when not given (empty: the command's own fallback).
inline void add_data_options(CLI::App& command, DataOptions& options, const std::string& default_data = "fashion-mnist") {
  options.data = default_data;
  auto* data = command.add_option("--data", options.data, kDataHelp);
  if (!default_data.empty()) data->capture_default_str();
  command.add_option("--resize", options.resize, "images:DIR: resize the shorter side to S before the centre crop (torchvision's Resize(S))")
      ->check(CLI::PositiveNumber);
  auto* mean = command.add_option("--mean", options.mean, "per-channel mean subtracted as samples are fed (e.g. 0.485,0.456,0.406)")
                   ->delimiter(',');
  auto* std = command.add_option("--std", options.std, "per-channel standard deviation divided by as samples are fed")->delimiter(',');
  command.add_option("--preprocess", options.preprocess, "imagenet: --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225")
      ->check(CLI::IsMember({"imagenet"}))
      ->excludes(mean)
      ->excludes(std);
  command.add_option("--input-shape", options.input_shape, "the model's input shape, fixing dimensions the file leaves dynamic (e.g. 1,3,224,224)")
      ->delimiter(',');
}

// Where decoded images are kept: beside the latency cache.
inline std::string default_image_cache(const std::string& latency_cache = {}) {
  const std::filesystem::path cache = latency_cache.empty() ? measure::default_cache_path() : std::filesystem::path(latency_cache);
  return (cache.parent_path() / "images").string();
}

inline data::InputFormat input_format(const DataOptions& options) {
  data::InputFormat format;
  format.resize = options.resize;
  format.mean = options.preprocess == "imagenet" ? data::kImagenetMean : options.mean;
  format.std = options.preprocess == "imagenet" ? data::kImagenetStd : options.std;
  return format;
}

// The spec of --data, its samples brought to what `model` reads (its one input).
inline data::DataSpec data_spec(const DataOptions& options, const graph::Graph& model, const std::string& latency_cache = {}) {
  data::DataSpec spec = data::parse_data_spec(options.data);
  spec.input = input_format(options);
  if (model.inputs.size() == 1) spec.input.shape = model.inputs[0].shape;
  spec.input.cache_dir = default_image_cache(latency_cache);
  return spec;
}

}  // namespace gos::cli
