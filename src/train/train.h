#pragma once
// The public face of training and evaluation: a graph (from the zoo or an imported ONNX file)
// trained with libtorch on an image set (classification) or on PPG windows (pulse-rate
// regression), and its accuracy or error measured.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/data.h"
#include "graph/graph.h"

namespace gos::graph {
class GraphModule;
}
namespace gos::dist {
class Group;
}

namespace gos::train {

// Knowledge distillation: the student also matches the teacher's softened outputs,
// loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(labels).
struct Distillation {
  graph::Graph teacher;
  double temperature = 4;
  double alpha = 0.9;
};

struct TrainOptions {
  int epochs = 30;
  int64_t batch = 128;
  std::string optimizer = "sgd";  // "sgd" (Nesterov momentum 0.9) or "adamw"
  double learning_rate = 0.1;     // peak; cosine-annealed to zero over the run after a short warm-up
  double weight_decay = 5e-4;
  bool augment = true;            // image batches [N,C,H,W]: random shifts (a sixteenth of the size) and horizontal flips
  uint64_t seed = 1;
  int threads = 0;                // 0: every core
  std::optional<Distillation> distillation;
  double budget_seconds = 0;      // > 0: stop after the batch that exceeds it (the schedule stays as planned)
  // Folded models (every imported one) fine-tune better with batch norms back: one after each
  // conv/linear node (graph::insert_batch_norms), set to the statistics of the first training
  // images so training starts from the same function, trained with batch statistics as the model
  // originally was (stable at larger rates), folded back at the end: the result has the same nodes.
  bool restore_batch_norms = false;
  // Called on the student's module before it trains (after the batch norms are restored): what
  // quantization-aware training installs its fake quantization with (quant/fake_quant.h). The
  // module trains and is validated with it.
  std::function<void(graph::GraphModule&)> prepare_student;
  // > 0: train this many batches only and return without evaluating, to time a batch
  // (TrainResult::seconds_per_batch): what an epoch costs on this machine now.
  int64_t timing_batches = 0;
  // Samples per forward and backward pass: a batch larger than this is run in parts whose
  // gradients add up to the batch's before one optimizer step (and restored batch norms take their
  // statistics in parts of it). 0: training_micro_batch().
  int64_t micro_batch = 0;
  // Data-parallel training over a process group (docs/distributed.md): every rank runs the same
  // call; each takes its contiguous share of every global batch (`batch` samples), the gradients
  // are summed over the ranks before each step, and all ranks follow one schedule. Batch norms
  // normalise by each rank's own shard, and rank 0's running statistics are copied to the others
  // after each step, as PyTorch's DistributedDataParallel does without SyncBatchNorm. Validation
  // is split over the ranks. Null or a group of one: this process alone.
  dist::Group* group = nullptr;
};

// How many samples of `model` one training pass takes (what autograd keeps, estimated as every
// value of the graph, its gradient and a restored batch norm's output, within 4 GiB): `batch` when
// that fits (every zoo model at 28x28), fewer at high resolutions (a ResNet-18 at 224x224), so
// that memory stops growing with the batch times the resolution. Batch norms in training mode then see each part's
// statistics, as data-parallel training without synchronised batch norms does.
int64_t training_micro_batch(const graph::Graph& model, int64_t batch);

struct EpochReport {
  int epoch = 0;  // 1-based
  int epochs = 0;
  double loss = 0;                 // mean training loss
  double train_accuracy = 0;       // classification: on the augmented training batches, in [0,1]
  double validation_accuracy = 0;  // classification: in [0,1]
  double train_mae = 0;            // regression: mean absolute error on the training batches
  double validation_mae = 0;       // regression
  double seconds = 0;
};

// Called after every batch with (batches done, batches in the epoch) and after every epoch.
struct TrainCallbacks {
  std::function<void(int64_t, int64_t, double loss)> on_batch;
  std::function<void(const EpochReport&)> on_epoch;
};

struct TrainResult {
  graph::Graph model;  // trained weights, batch norms folded: ready to export
  std::vector<EpochReport> epochs;
  bool stopped_by_budget = false;
  int64_t batches_per_epoch = 0;
  // The mean time of a batch (the first left out when there are more: it pays for allocations).
  double seconds_per_batch = 0;
};

TrainResult train_classifier(const graph::Graph& model, const data::ImageDataset& train_set,
                             const data::ImageDataset& validation_set, const TrainOptions& options,
                             const TrainCallbacks& callbacks = {});

// Share of correctly classified images, in [0,1] (eval mode, batched).
double classification_accuracy(const graph::Graph& model, const data::ImageDataset& dataset, int64_t batch = 500);

// One class's top-1 accuracy on a data set.
struct ClassAccuracy {
  std::string name;  // the data's name for it (the folder name), or the label's number
  int64_t images = 0, correct = 0;
  double percent() const { return images == 0 ? 0.0 : 100.0 * static_cast<double>(correct) / static_cast<double>(images); }
};
// Every class of the data set, in label order (the model may have more outputs than classes).
std::vector<ClassAccuracy> per_class_accuracy(const graph::Graph& model, const data::ImageDataset& dataset);

// Regression of the pulse rate from PPG windows: the model's single output per window, Huber loss
// (delta 1 BPM: absolute error beyond a beat per minute, squared below) against the reference.
// With distillation the student also matches the teacher's outputs:
// alpha * huber(student, teacher) + (1 - alpha) * huber(student, reference) (temperature unused).
// Options.augment does not apply (no augmentation of signals).
TrainResult train_regressor(const graph::Graph& model, const data::PpgDataset& train_set,
                            const data::PpgDataset& validation_set, const TrainOptions& options,
                            const TrainCallbacks& callbacks = {});

// Any number of outputs per sample (arrays:DIR with targets [N,K]): the same losses over every
// output, and the mean absolute error over every output. The PPG windows train through this too.
TrainResult train_regressor(const graph::Graph& model, const data::RegressionDataset& train_set,
                            const data::RegressionDataset& validation_set, const TrainOptions& options,
                            const TrainCallbacks& callbacks = {});

// Every output of the model for every sample, flat in sample order (eval mode, batched).
std::vector<float> predict(const graph::Graph& model, const ir::Tensor& inputs, int64_t batch = 500);
// The model's output for every window (eval mode, batched).
std::vector<float> predict(const graph::Graph& model, const data::PpgDataset& dataset, int64_t batch = 500);
// Mean absolute error of the predictions against the dataset's reference, in BPM.
double mean_absolute_error(const graph::Graph& model, const data::PpgDataset& dataset, int64_t batch = 500);
double mean_absolute_error(const graph::Graph& model, const data::RegressionDataset& dataset, int64_t batch = 500);
// The mean absolute error of predictions against their targets, in the targets' unit.
double mean_absolute_error(std::span<const float> predicted, const std::vector<float>& reference);

}  // namespace gos::train
