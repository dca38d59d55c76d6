#pragma once
// Internal to the search and the CLI: what gos adapt (and gos quantize) need from the model's job
// and its data, so that one
// pipeline adapts image classifiers (quality: test accuracy in percent, higher is better) and
// pulse-rate regressors (quality: mean absolute error in BPM, lower is better).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "data/data.h"
#include "graph/graph.h"
#include "train/train.h"

namespace gos::search {

class AdaptTask {
 public:
  virtual ~AdaptTask() = default;

  virtual std::string metric() const = 0;  // report::AdaptReport::metric: "accuracy" or "mae"
  virtual std::string metric_name() const = 0;  // for people: "accuracy" or "MAE"
  // The fine-tuning recipe when the user gives none (the task's own training recipe, lower rate).
  virtual std::string default_optimizer() const = 0;
  virtual double default_learning_rate() const = 0;
  // A quality for people: "93.89%" or "5.12 BPM".
  virtual std::string format_quality(double quality) const = 0;
  // What --max-acc-drop (or --max-mae-increase) is counted in: "points" or "BPM".
  virtual std::string drop_unit() const = 0;
  virtual bool higher_is_better() const = 0;
  // The quality lost going from `original` to `adapted` (accuracy points, or MAE increase).
  double drop(double original, double adapted) const { return higher_is_better() ? original - adapted : adapted - original; }

  // One sample's shape at batch 1: what the model must read.
  virtual graph::Shape sample_shape() const = 0;
  // Why a model writing `output` (at batch 1) cannot be scored on this data, or empty when it can:
  // a classifier needs a score for every label ([1,K], K at least the classes), a regressor one
  // output per target ([1,targets]).
  virtual std::string output_misfit(const graph::Shape& output) const = 0;
  // `count` training samples drawn with `seed`, as one batch (activations are recorded on them).
  virtual ir::Tensor calibration_inputs(int64_t count, uint64_t seed) const = 0;
  // Quality on the first `count` validation samples (the sensitivity estimate).
  virtual double validation_quality(const graph::Graph& model, int64_t count) const = 0;
  virtual int64_t validation_size(int64_t count) const = 0;  // how many of them there are
  virtual int64_t test_size() const = 0;
  virtual double test_quality(const graph::Graph& model) const = 0;
  // A classifier's test accuracy per class (empty for regression).
  virtual std::vector<train::ClassAccuracy> test_per_class(const graph::Graph& model) const { return {}; }
  // Test quality of what `run` computes for batches of test samples (an exported file, run where
  // libtorch's graph module does not run it). Batches are bounded in bytes, so a large test set
  // is never one tensor; at 28x28 the whole set is one batch.
  using Runner = std::function<ir::Tensor(const ir::Tensor& inputs)>;
  virtual double test_quality_through(const Runner& run) const = 0;
  // The first `count` validation samples as one batch, and the quality of outputs computed for
  // them elsewhere (the int8 search's fake-quantized evaluation).
  virtual ir::Tensor validation_inputs(int64_t count) const = 0;
  virtual double validation_quality_of(const ir::Tensor& outputs, int64_t count) const = 0;
  // Fine-tunes on the training set, validating on the validation set.
  virtual train::TrainResult train(const graph::Graph& model, const train::TrainOptions& options,
                                   const train::TrainCallbacks& callbacks) const = 0;
  // The validation figure of an epoch, e.g. "validation 93.10%".
  virtual std::string epoch_validation(const train::EpochReport& epoch) const = 0;
};

// The task of `--data` (data::objective_of): class labels -> classification, float targets
// (ppg:DIR, arrays with float y) -> regression; samples brought to spec.input. Throws
// data::DataError when the data cannot be read or does not fit the model's input.
std::unique_ptr<AdaptTask> load_task(const data::DataSpec& spec);

}  // namespace gos::search
