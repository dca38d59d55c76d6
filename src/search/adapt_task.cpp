// The classification and regression tasks of gos adapt (adapt_task.h).
#include "search/adapt_task.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "search/run_context.h"

namespace gos::search {

namespace {

// The test batches handed to a runner at once: at most this many bytes of floats.
constexpr int64_t kRunnerBatchBytes = int64_t{256} << 20;

// Everything `run` outputs for samples [0, count), batch by batch (`rows(begin, end)` gives the
// inputs), concatenated along the batch axis.
ir::Tensor outputs_through(int64_t count, const graph::Shape& sample, const std::function<ir::Tensor(int64_t, int64_t)>& rows,
                           const AdaptTask::Runner& run) {
  const int64_t sample_bytes = std::max<int64_t>(1, ir::Tensor(sample).elements() * static_cast<int64_t>(sizeof(float)));
  const int64_t batch = std::max<int64_t>(1, kRunnerBatchBytes / sample_bytes);
  ir::Tensor all;
  for (int64_t begin = 0; begin < count; begin += batch) {
    ir::Tensor outputs = run(rows(begin, std::min(count, begin + batch)));
    if (begin == 0) {
      all = std::move(outputs);
      continue;
    }
    all.shape.at(0) += outputs.shape.at(0);
    all.data.insert(all.data.end(), outputs.data.begin(), outputs.data.end());
  }
  return all;
}

// Rows `indices` of a batch tensor, in that order.
ir::Tensor gather_rows(const ir::Tensor& batch, const std::vector<int64_t>& indices) {
  const int64_t rows = batch.shape.empty() ? 0 : batch.shape[0];
  const int64_t per_row = rows > 0 ? batch.elements() / rows : 0;
  auto shape = batch.shape;
  shape[0] = static_cast<int64_t>(indices.size());
  ir::Tensor gathered(shape);
  for (size_t i = 0; i < indices.size(); ++i) {
    std::copy_n(batch.data.begin() + indices[i] * per_row, per_row, gathered.data.begin() + static_cast<int64_t>(i) * per_row);
  }
  return gathered;
}

std::vector<int64_t> first(int64_t count, int64_t available) {
  std::vector<int64_t> indices(static_cast<size_t>(std::min(count, available)));
  std::iota(indices.begin(), indices.end(), 0);
  return indices;
}

// A seeded sample of `count` of `available` rows.
std::vector<int64_t> sample(int64_t count, int64_t available, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(available));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<size_t>(std::min(count, available)));
  return order;
}

graph::Shape at_batch_one(graph::Shape shape) {
  if (!shape.empty()) shape[0] = 1;
  return shape;
}

// Top-1 accuracy in percent of logits [N, classes] against N labels.
double accuracy_of(const ir::Tensor& outputs, const std::vector<int64_t>& labels) {
  const size_t classes = outputs.data.size() / std::max<size_t>(labels.size(), 1);
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto row = outputs.data.begin() + static_cast<std::ptrdiff_t>(i * classes);
    correct += std::max_element(row, row + static_cast<std::ptrdiff_t>(classes)) - row == labels[i];
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(std::max<size_t>(labels.size(), 1));
}

class ClassificationTask : public AdaptTask {
 public:
  explicit ClassificationTask(const data::DataSpec& spec)
      : train_(data::load(spec, data::Split::Train)),
        validation_(data::load(spec, data::Split::Validation)),
        test_(data::load(spec, data::Split::Test)) {}

  std::string metric() const override { return "accuracy"; }
  std::string metric_name() const override { return "accuracy"; }
  std::string default_optimizer() const override { return "sgd"; }
  double default_learning_rate() const override { return 0.02; }
  std::string format_quality(double quality) const override { return fmt::format("{:.2f}%", quality); }
  std::string drop_unit() const override { return "points"; }
  bool higher_is_better() const override { return true; }
  graph::Shape sample_shape() const override { return train_.sample_shape(); }
  std::string output_misfit(const graph::Shape& output) const override {
    if (output.size() == 2 && output[0] == 1 && output[1] >= train_.classes) return "";
    return fmt::format("the model writes {}, but the labels are {} classes: a classifier of this data writes [1,{}]",
                       ir::shape_text(output), train_.classes, train_.classes);
  }

  ir::Tensor calibration_inputs(int64_t count, uint64_t seed) const override {
    return train_.rows(sample(count, train_.size(), seed));
  }

  double validation_quality(const graph::Graph& model, int64_t count) const override {
    return 100 * train::classification_accuracy(model, first_images(validation_, count));
  }
  int64_t validation_size(int64_t count) const override { return std::min(count, validation_.size()); }
  int64_t test_size() const override { return test_.size(); }
  double test_quality(const graph::Graph& model) const override { return 100 * train::classification_accuracy(model, test_); }
  std::vector<train::ClassAccuracy> test_per_class(const graph::Graph& model) const override {
    return train::per_class_accuracy(model, test_);
  }
  double test_quality_through(const Runner& run) const override {
    const auto rows = [&](int64_t begin, int64_t end) { return test_.rows(begin, end); };
    return accuracy_of(outputs_through(test_.size(), test_.sample_shape(), rows, run), test_.labels);
  }
  ir::Tensor validation_inputs(int64_t count) const override {
    const auto& subset = first_images(validation_, count);
    return subset.rows(0, subset.size());
  }
  double validation_quality_of(const ir::Tensor& outputs, int64_t count) const override {
    return accuracy_of(outputs, first_images(validation_, count).labels);
  }

  train::TrainResult train(const graph::Graph& model, const train::TrainOptions& options,
                           const train::TrainCallbacks& callbacks) const override {
    return train::train_classifier(model, train_, validation_, options, callbacks);
  }
  std::string epoch_validation(const train::EpochReport& epoch) const override {
    return fmt::format("validation {:.2f}%", 100 * epoch.validation_accuracy);
  }

 private:
  // The first `count` images, in order (cached: sensitivity asks for the same subset many times).
  const data::ImageDataset& first_images(const data::ImageDataset& dataset, int64_t count) const {
    if (subset_count_ != count) {
      subset_ = dataset.subset(first(count, dataset.size()));
      subset_count_ = count;
    }
    return subset_;
  }

  data::ImageDataset train_, validation_, test_;
  mutable data::ImageDataset subset_;
  mutable int64_t subset_count_ = -1;
};

// Float targets: quality is the mean absolute error over every target (lower is better), in BPM
// for PPG windows (pulse rate), in the targets' own unit for arrays.
class RegressionTask : public AdaptTask {
 public:
  explicit RegressionTask(const data::DataSpec& spec)
      : train_(data::load_regression(spec, data::Split::Train)),
        validation_(data::load_regression(spec, data::Split::Validation)),
        test_(data::load_regression(spec, data::Split::Test)),
        unit_(spec.kind == data::DataSpec::Kind::Ppg ? "BPM" : "") {}

  std::string metric() const override { return "mae"; }
  std::string metric_name() const override { return "MAE"; }
  std::string default_optimizer() const override { return "adamw"; }
  double default_learning_rate() const override { return 0.001; }
  std::string format_quality(double quality) const override {
    return unit_.empty() ? fmt::format("{:.4g}", quality) : fmt::format("{:.2f} {}", quality, unit_);
  }
  std::string drop_unit() const override { return unit_.empty() ? "(targets' unit)" : unit_; }
  bool higher_is_better() const override { return false; }
  graph::Shape sample_shape() const override { return at_batch_one(train_.inputs.shape); }
  std::string output_misfit(const graph::Shape& output) const override {
    const int64_t targets = train_.targets.shape.size() == 2 ? train_.targets.shape[1] : 1;
    if (output == graph::Shape{1, targets}) return "";
    return fmt::format("the model writes {}, but each sample has {} target{}: a regressor of this data writes [1,{}]",
                       ir::shape_text(output), targets, targets == 1 ? "" : "s", targets);
  }

  ir::Tensor calibration_inputs(int64_t count, uint64_t seed) const override {
    return gather_rows(train_.inputs, sample(count, train_.size(), seed));
  }

  double validation_quality(const graph::Graph& model, int64_t count) const override {
    return train::mean_absolute_error(model, first_samples(count));
  }
  int64_t validation_size(int64_t count) const override { return std::min(count, validation_.size()); }
  int64_t test_size() const override { return test_.size(); }
  double test_quality(const graph::Graph& model) const override { return train::mean_absolute_error(model, test_); }
  double test_quality_through(const Runner& run) const override {
    const auto test_rows = [&](int64_t begin, int64_t end) { return rows({test_.inputs}, begin, end).front(); };
    return train::mean_absolute_error(outputs_through(test_.size(), sample_shape(), test_rows, run).data, test_.targets.data);
  }
  ir::Tensor validation_inputs(int64_t count) const override { return first_samples(count).inputs; }
  double validation_quality_of(const ir::Tensor& outputs, int64_t count) const override {
    return train::mean_absolute_error(outputs.data, first_samples(count).targets.data);
  }

  train::TrainResult train(const graph::Graph& model, const train::TrainOptions& options,
                           const train::TrainCallbacks& callbacks) const override {
    return train::train_regressor(model, train_, validation_, options, callbacks);
  }
  std::string epoch_validation(const train::EpochReport& epoch) const override {
    return "validation MAE " + format_quality(epoch.validation_mae);
  }

 private:
  // The first `count` validation samples (PPG: subjects in order), cached like the image subset.
  const data::RegressionDataset& first_samples(int64_t count) const {
    if (subset_count_ != count) {
      const auto indices = first(count, validation_.size());
      subset_ = {gather_rows(validation_.inputs, indices), gather_rows(validation_.targets, indices)};
      subset_count_ = count;
    }
    return subset_;
  }

  data::RegressionDataset train_, validation_, test_;
  std::string unit_;
  mutable data::RegressionDataset subset_;
  mutable int64_t subset_count_ = -1;
};

}  // namespace

std::unique_ptr<AdaptTask> load_task(const data::DataSpec& spec) {
  if (data::objective_of(spec) == data::Objective::Regression) return std::make_unique<RegressionTask>(spec);
  return std::make_unique<ClassificationTask>(spec);
}

}  // namespace gos::search
