// Training with libtorch: SGD (Nesterov) or AdamW, a linear warm-up then cosine annealing per
// step, label cross-entropy, light augmentation. The graph's own instructions run through
// graph::GraphModule, so what is trained is exactly what gets exported.
#include "train/train.h"

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <map>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <span>

#include "graph/torch_module.h"
#include "lowering/compute_threads.h"
#include "lowering/torch_lowering.h"
#include "dist/dist.h"
#include "util/interrupt.h"

namespace gos::train {

namespace {

// Random shifts (zero fill) of up to a sixteenth of the image (two pixels at 28x28 or 32x32) and
// horizontal flips: the standard light augmentation for small images whose meaning is left-right
// symmetric. Drawn for the whole global batch, so that a rank holding a shard of it augments its
// rows as one process would.
struct Shift {
  int64_t dy = 0, dx = 0;
  bool flipped = false;
};

int64_t shift_pad(int64_t height, int64_t width) {
  return std::max<int64_t>(2, std::llround(static_cast<double>(std::min(height, width)) / 16));
}

std::vector<Shift> draw_shifts(std::mt19937_64& rng, int64_t rows, int64_t pad) {
  std::uniform_int_distribution<int64_t> offset(0, 2 * pad);
  std::bernoulli_distribution flip(0.5);
  std::vector<Shift> shifts(static_cast<size_t>(rows));
  for (auto& shift : shifts) {
    shift.dy = offset(rng);
    shift.dx = offset(rng);
    shift.flipped = flip(rng);
  }
  return shifts;
}

// Row i of the batch shifted by shifts[i].
torch::Tensor shifted(const torch::Tensor& batch, int64_t pad, std::span<const Shift> shifts) {
  const int64_t height = batch.size(2), width = batch.size(3);
  auto padded = torch::constant_pad_nd(batch, {pad, pad, pad, pad}, 0.0);
  auto result = torch::empty_like(batch);
  for (int64_t i = 0; i < batch.size(0); ++i) {
    const Shift& shift = shifts[static_cast<size_t>(i)];
    auto crop = padded[i].narrow(1, shift.dy, height).narrow(2, shift.dx, width);
    result[i].copy_(shift.flipped ? crop.flip({2}) : crop);
  }
  return result;
}

dist::Group* group_of(const TrainOptions& options) {
  return options.group && options.group->size() > 1 ? options.group : nullptr;
}

double learning_rate_at(const TrainOptions& options, int64_t step, int64_t total_steps) {
  const int64_t warmup = std::min<int64_t>(total_steps / 20, 500);
  if (step < warmup) return options.learning_rate * static_cast<double>(step + 1) / static_cast<double>(warmup);
  double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
  return 0.5 * options.learning_rate * (1.0 + std::cos(M_PI * progress));
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(graph::GraphModule& module, const TrainOptions& options) {
  // Decay weights, not biases or normalisation parameters: the usual recipe for small CNNs.
  std::vector<torch::Tensor> decayed, plain;
  for (const auto& parameter : module.parameters()) (parameter.dim() > 1 ? decayed : plain).push_back(parameter);
  if (options.optimizer == "adamw") {
    std::vector<torch::optim::OptimizerParamGroup> groups{
        {decayed, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay))},
        {plain, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options.learning_rate).weight_decay(0))}};
    return std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(options.learning_rate));
  }
  if (options.optimizer != "sgd") throw std::invalid_argument("unknown optimizer '" + options.optimizer + "' (sgd or adamw)");
  auto sgd = [&](double decay) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(options.learning_rate).momentum(0.9).nesterov(true).weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups{{decayed, sgd(options.weight_decay)}, {plain, sgd(0)}};
  return std::make_unique<torch::optim::SGD>(std::move(groups), torch::optim::SGDOptions(options.learning_rate));
}

// Soft targets from the teacher at temperature T (Hinton et al., 2015), mixed with the label loss.
torch::Tensor distillation_loss(const torch::Tensor& logits, const torch::Tensor& teacher_logits,
                                const torch::Tensor& label_loss, const Distillation& distillation) {
  const double t = distillation.temperature;
  const torch::Tensor soft_targets = torch::softmax(teacher_logits / t, 1);
  torch::Tensor kl = torch::nn::functional::kl_div(torch::log_softmax(logits / t, 1), soft_targets,
                                                   torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean));
  return distillation.alpha * t * t * kl + (1 - distillation.alpha) * label_loss;
}

// What differs between training a classifier and a regressor; fit() does the rest.
struct Objective {
  int64_t samples = 0;
  // The inputs of these samples as one batch: a set read from disk is read batch by batch.
  std::function<torch::Tensor(std::span<const int64_t> indices)> inputs;
  torch::Tensor targets;
  bool images = true;  // augmentation applies to images only
  // A batch's loss; `teacher_outputs` is undefined unless distilling.
  std::function<torch::Tensor(const torch::Tensor& outputs, const torch::Tensor& targets,
                              const torch::Tensor& teacher_outputs)>
      loss;
  // A batch's correct count (classification) or absolute-error sum (regression).
  std::function<double(const torch::Tensor& outputs, const torch::Tensor& targets)> score;
  // Fills the epoch report's metrics from the summed score and the model (eval mode).
  std::function<void(EpochReport&, double score_sum, int64_t samples, graph::GraphModule&)> report;
};

void set_learning_rate(torch::optim::Optimizer& optimizer, double rate) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(rate);
}

// At most `batch` samples per evaluation pass, fewer where the model's activations are large: its
// largest value, three times over (an operator's input, its output and a temporary), within
// 128 MiB: 13 images per pass for a ResNet-18 at 224x224, 148 for mobilenetv2s at 28x28 (its
// 96x28x28 expansions), 500 for the rest of the zoo.
int64_t evaluation_batch(const graph::Graph& model, int64_t batch) {
  constexpr int64_t kPassBytes = int64_t{128} << 20;
  int64_t largest = 1;
  for (const auto& [name, shape] : model.shapes) {
    if (model.constants.contains(name)) continue;
    largest = std::max(largest, std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()));
  }
  return std::clamp<int64_t>(kPassBytes / (3 * largest * static_cast<int64_t>(sizeof(float))), 1, batch);
}

// This rank's contiguous share [first, last) of `size` rows; alone, all of them.
std::pair<int64_t, int64_t> share_of(int64_t size, const dist::Group* group) {
  if (!group) return {0, size};
  return {size * group->rank() / group->size(), size * (group->rank() + 1) / group->size()};
}

// Calls `use(begin, logits)` for each batch of the data set's rows [first, last) in order (eval mode).
void for_each_batch(graph::GraphModule& module, const data::ImageDataset& dataset, int64_t batch,
                    const std::function<void(int64_t begin, const torch::Tensor& logits)>& use, int64_t first = 0,
                    int64_t last = -1) {
  torch::NoGradGuard no_grad;
  module.eval();
  if (last < 0) last = dataset.size();
  for (int64_t begin = first; begin < last; begin += batch) {
    util::stop_if_interrupted();  // evaluating a test set takes seconds
    const int64_t end = std::min(last, begin + batch);
    use(begin, module.forward(lowering::to_torch(dataset.rows(begin, end))));
  }
}

// With a group, each rank scores its share and the counts are summed.
double accuracy_of(graph::GraphModule& module, const data::ImageDataset& dataset, int64_t batch, dist::Group* group = nullptr) {
  auto labels = torch::tensor(dataset.labels, torch::kLong);
  int64_t correct = 0;
  const auto [first, last] = share_of(dataset.size(), group);
  for_each_batch(
      module, dataset, batch,
      [&](int64_t begin, const torch::Tensor& logits) {
        correct += logits.argmax(1).eq(labels.narrow(0, begin, logits.size(0))).sum().item<int64_t>();
      },
      first, last);
  const double total = group ? group->sum(static_cast<double>(correct)) : static_cast<double>(correct);
  return total / static_cast<double>(std::max<int64_t>(1, dataset.size()));
}

// Sets each inserted batch norm to its input's per-channel mean and variance over `samples`, and
// its scale and shift to undo them: the network computes what it did before the insertion. The
// samples pass in parts (evaluation_batch, at most `max_part`): every value of the graph is kept
// for each part, which for 512 images at 224x224 would be gigabytes at once.
graph::Graph with_batch_norm_statistics(graph::WithBatchNorms inserted, const Objective& objective, std::span<const int64_t> samples,
                                        int64_t max_part) {
  torch::NoGradGuard no_grad;
  graph::GraphModule module(inserted.graph);
  module.eval();
  const std::set<std::string> inserted_names(inserted.batch_norms.begin(), inserted.batch_norms.end());
  struct Moments {
    torch::Tensor sum, squares;  // per channel, in double
    int64_t count = 0;
  };
  std::map<std::string, Moments> moments;
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> mean_and_var;
  const int64_t part = evaluation_batch(inserted.graph, max_part);
  if (static_cast<int64_t>(samples.size()) <= part) {
    // One pass (every zoo model at 28x28): in float, as libtorch's batch norm computes them.
    const auto values = module.forward_values({objective.inputs(samples)});
    for (const auto& node : inserted.graph.nodes) {
      if (!inserted_names.count(node.name)) continue;
      const torch::Tensor& x = values.at(node.inputs[0]);
      std::vector<int64_t> reduced;
      for (int64_t d = 0; d < x.dim(); ++d) {
        if (d != 1) reduced.push_back(d);
      }
      mean_and_var[node.name] = {x.mean(reduced), x.var(reduced, /*unbiased=*/false)};
    }
    samples = {};
  }
  for (size_t begin = 0; begin < samples.size(); begin += static_cast<size_t>(part)) {
    const auto values = module.forward_values({objective.inputs(samples.subspan(begin, std::min(samples.size() - begin, static_cast<size_t>(part))))});
    for (const auto& node : inserted.graph.nodes) {
      if (!inserted_names.count(node.name)) continue;
      const torch::Tensor x = values.at(node.inputs[0]).to(torch::kDouble);
      std::vector<int64_t> reduced;
      for (int64_t d = 0; d < x.dim(); ++d) {
        if (d != 1) reduced.push_back(d);
      }
      Moments& m = moments[node.name];
      const torch::Tensor sum = x.sum(reduced), squares = x.pow(2).sum(reduced);
      m.sum = m.count == 0 ? sum : m.sum + sum;
      m.squares = m.count == 0 ? squares : m.squares + squares;
      m.count += x.numel() / x.size(1);
    }
  }
  for (const auto& [name, m] : moments) {
    const auto n = static_cast<double>(m.count);
    // Biased, as batch norm's.
    mean_and_var[name] = {(m.sum / n).to(torch::kFloat), (m.squares / n - (m.sum / n).pow(2)).clamp_min(0).to(torch::kFloat)};
  }
  for (auto& node : inserted.graph.nodes) {
    if (!inserted_names.count(node.name)) continue;
    const auto& [mean, var] = mean_and_var.at(node.name);
    const double epsilon = std::get<double>(node.attributes.at("epsilon"));
    node.weights["mean"] = lowering::from_torch(mean);
    node.weights["var"] = lowering::from_torch(var);
    node.weights["scale"] = lowering::from_torch(torch::sqrt(var + epsilon));
    node.weights["B"] = lowering::from_torch(mean);
  }
  return inserted.graph;
}

// Statistics from samples spread evenly over the training set: a set stored in order (the PPG
// windows, subject by subject) would otherwise give one subject's statistics.
graph::Graph with_restored_batch_norms(const graph::Graph& model, const Objective& objective, const TrainOptions& options) {
  constexpr int64_t kStatisticsSamples = 512;
  const int64_t count = std::min(kStatisticsSamples, objective.samples);
  std::vector<int64_t> spread(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) spread[static_cast<size_t>(i)] = count == 1 ? 0 : i * (objective.samples - 1) / (count - 1);
  return with_batch_norm_statistics(graph::insert_batch_norms(model), objective, spread,
                                    options.micro_batch > 0 ? options.micro_batch : kStatisticsSamples);
}

TrainResult fit(const graph::Graph& model, const Objective& objective, const TrainOptions& options,
               const TrainCallbacks& callbacks) {
  if (options.epochs <= 0 || options.batch <= 0 || options.learning_rate <= 0) {
    throw std::invalid_argument("epochs, batch and learning rate must be positive");
  }
  if (options.threads > 0) lowering::set_compute_threads(options.threads);
  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);

  graph::GraphModule module(options.restore_batch_norms ? with_restored_batch_norms(model, objective, options) : model);
  if (options.prepare_student) options.prepare_student(module);
  // Data-parallel (docs/distributed.md): every rank starts from rank 0's parameters and buffers
  // (restored batch-norm statistics computed on several machines can differ in the last bits).
  dist::Group* group = group_of(options);
  std::vector<torch::Tensor> parameters = module.parameters();
  std::vector<torch::Tensor> statistics;  // floating-point buffers: batch-norm running statistics, observed ranges
  for (const auto& buffer : module.named_buffers()) {
    if (buffer.key().rfind("constants.", 0) != 0 && buffer.value().is_floating_point()) statistics.push_back(buffer.value());
  }
  if (group) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> state = parameters;
    state.insert(state.end(), statistics.begin(), statistics.end());
    group->broadcast_from_root(state);
  }
  auto optimizer = make_optimizer(module, options);
  std::unique_ptr<graph::GraphModule> teacher;
  if (options.distillation) {
    teacher = std::make_unique<graph::GraphModule>(options.distillation->teacher);
    teacher->eval();
  }
  const auto run_start = std::chrono::steady_clock::now();
  const int64_t samples = objective.samples;
  const int64_t micro_batch = options.micro_batch > 0 ? options.micro_batch : training_micro_batch(model, options.batch);
  std::vector<int64_t> order(samples);
  std::iota(order.begin(), order.end(), 0);
  const int64_t batches = (samples + options.batch - 1) / options.batch;
  const int64_t total_steps = batches * options.epochs;
  const bool image_rows = model.inputs.size() == 1 && model.inputs[0].shape.size() == 4;
  const int64_t image_pad = image_rows ? shift_pad(model.inputs[0].shape[2], model.inputs[0].shape[3]) : 0;

  TrainResult result;
  result.batches_per_epoch = batches;
  int64_t batches_done = 0;
  std::chrono::steady_clock::time_point after_first_batch;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    auto start = std::chrono::steady_clock::now();
    module.train();
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0, score_sum = 0;
    for (int64_t b = 0; b < batches; ++b) {
      size_t begin = static_cast<size_t>(b * options.batch);
      size_t end = std::min(order.size(), begin + static_cast<size_t>(options.batch));
      // Each rank takes its contiguous share of the global batch; alone, the whole of it.
      const auto rows = static_cast<int64_t>(end - begin);
      const int64_t first = group ? rows * group->rank() / group->size() : 0;
      const int64_t last = group ? rows * (group->rank() + 1) / group->size() : rows;
      const std::span<const int64_t> indices(order.data() + begin + first, static_cast<size_t>(last - first));
      const bool augmented = options.augment && objective.images && image_rows;
      const auto shifts = augmented ? draw_shifts(rng, rows, image_pad) : std::vector<Shift>{};
      torch::Tensor x, y;
      if (last > first) {
        x = objective.inputs(indices);
        y = objective.targets.index_select(0, torch::tensor(std::vector<int64_t>(indices.begin(), indices.end()), torch::kLong));
        if (augmented) x = shifted(x, image_pad, std::span(shifts).subspan(static_cast<size_t>(first)));
      }
      set_learning_rate(*optimizer, learning_rate_at(options, (epoch - 1) * batches + b, total_steps));
      optimizer->zero_grad();
      // The batch's mean loss is the parts' losses weighted by their share of the global batch.
      const int64_t local_rows = last - first;
      double batch_loss = 0, batch_score = 0;
      for (int64_t part = 0; part < local_rows; part += micro_batch) {
        const int64_t part_rows = std::min(micro_batch, local_rows - part);
        const torch::Tensor xp = part_rows == rows ? x : x.narrow(0, part, part_rows);
        const torch::Tensor yp = part_rows == rows ? y : y.narrow(0, part, part_rows);
        auto outputs = module.forward(xp);
        torch::Tensor teacher_outputs;
        if (teacher) {
          torch::NoGradGuard no_grad;
          teacher_outputs = teacher->forward(xp);
        }
        auto loss = objective.loss(outputs, yp, teacher_outputs);
        if (part_rows != rows) loss = loss * (static_cast<double>(part_rows) / static_cast<double>(rows));
        loss.backward();
        batch_loss += loss.item<double>();
        batch_score += objective.score(outputs.detach(), yp);
      }
      // Stopped by the budget after this batch: decided before the step, so that every rank decides alike.
      bool over_budget = options.budget_seconds > 0 &&
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() > options.budget_seconds;
      if (group) {
        // Gradients summed over the ranks are the global batch's (each rank's loss weighted by its share).
        std::vector<torch::Tensor> reduced;
        for (auto& parameter : parameters) {
          if (!parameter.grad().defined()) parameter.mutable_grad() = torch::zeros_like(parameter);
          reduced.push_back(parameter.grad());
        }
        reduced.push_back(torch::tensor({batch_loss, batch_score, over_budget ? 1.0 : 0.0}, torch::kDouble));
        group->all_reduce_sum(reduced);
        const auto totals = reduced.back();
        batch_loss = totals[0].item<double>();
        batch_score = totals[1].item<double>();
        over_budget = totals[2].item<double>() > 0;
      }
      score_sum += batch_score;
      optimizer->step();
      if (group) {
        // As DDP broadcasts buffers before each forward pass: rank 0's running statistics on every
        // rank (each rank normalises by its own shard's batch statistics, as without SyncBatchNorm).
        torch::NoGradGuard no_grad;
        group->broadcast_from_root(statistics);
      }
      loss_sum += batch_loss * static_cast<double>(end - begin);
      util::stop_if_interrupted();
      if (callbacks.on_batch) callbacks.on_batch(b + 1, batches, batch_loss);
      if (++batches_done == 1) after_first_batch = std::chrono::steady_clock::now();
      if (options.timing_batches > 0 && batches_done >= options.timing_batches) break;
      if (over_budget) {
        result.stopped_by_budget = true;
        break;
      }
    }
    if (options.timing_batches > 0) break;
    EpochReport report{.epoch = epoch, .epochs = options.epochs, .loss = loss_sum / static_cast<double>(samples)};
    objective.report(report, score_sum, samples, module);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.epochs.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
    if (result.stopped_by_budget) break;
  }
  const auto end = std::chrono::steady_clock::now();
  result.seconds_per_batch = batches_done > 1 ? std::chrono::duration<double>(end - after_first_batch).count() / static_cast<double>(batches_done - 1)
                                              : std::chrono::duration<double>(end - run_start).count();
  result.model = graph::fold_batch_norms(module.to_graph());
  if (options.restore_batch_norms) graph::fuse_epilogues(result.model);
  return result;
}

}  // namespace

int64_t training_micro_batch(const graph::Graph& model, int64_t batch) {
  constexpr int64_t kPassBytes = int64_t{4} << 30;
  // Each value, its gradient, and a restored batch norm's output beside it.
  constexpr int64_t kCopiesPerValue = 3;
  int64_t elements = 0;
  for (const auto& [name, shape] : model.shapes) {
    if (!model.constants.contains(name)) elements += std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  }
  const int64_t per_sample = std::max<int64_t>(1, kCopiesPerValue * elements * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(kPassBytes / per_sample, 1, std::max<int64_t>(1, batch));
}

TrainResult train_classifier(const graph::Graph& model, const data::ImageDataset& train_set,
                             const data::ImageDataset& validation_set, const TrainOptions& options,
                             const TrainCallbacks& callbacks) {
  Objective objective;
  objective.samples = train_set.size();
  objective.inputs = [&](std::span<const int64_t> indices) { return lowering::to_torch(train_set.rows(indices)); };
  objective.targets = torch::tensor(train_set.labels, torch::kLong);
  objective.loss = [&](const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& teacher_logits) {
    auto loss = torch::nn::functional::cross_entropy(logits, labels);
    return teacher_logits.defined() ? distillation_loss(logits, teacher_logits, loss, *options.distillation) : loss;
  };
  objective.score = [](const torch::Tensor& logits, const torch::Tensor& labels) {
    return static_cast<double>(logits.argmax(1).eq(labels).sum().item<int64_t>());
  };
  objective.report = [&](EpochReport& report, double correct, int64_t samples, graph::GraphModule& module) {
    report.train_accuracy = correct / static_cast<double>(samples);
    report.validation_accuracy = accuracy_of(module, validation_set, evaluation_batch(model, 500), group_of(options));
  };
  return fit(model, objective, options, callbacks);
}

namespace {

torch::Tensor huber(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::nn::functional::huber_loss(a, b, torch::nn::functional::HuberLossFuncOptions().delta(1.0));
}

// Every output of every sample, in order, flat.
torch::Tensor predictions_of(graph::GraphModule& module, const torch::Tensor& inputs, int64_t batch) {
  torch::NoGradGuard no_grad;
  module.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < inputs.size(0); begin += batch) {
    util::stop_if_interrupted();
    parts.push_back(module.forward(inputs.narrow(0, begin, std::min(batch, inputs.size(0) - begin))).reshape({-1}));
  }
  return parts.empty() ? torch::empty({0}) : torch::cat(parts).contiguous();
}

// The mean absolute error of every output against its target.
double mean_absolute_error(const torch::Tensor& predicted, const torch::Tensor& targets) {
  return (predicted.reshape({-1}) - targets.reshape({-1})).abs().mean().item<double>();
}

}  // namespace

TrainResult train_regressor(const graph::Graph& model, const data::RegressionDataset& train_set,
                            const data::RegressionDataset& validation_set, const TrainOptions& options,
                            const TrainCallbacks& callbacks) {
  Objective objective;
  const torch::Tensor inputs = lowering::to_torch(train_set.inputs);
  objective.samples = inputs.size(0);
  objective.inputs = [&](std::span<const int64_t> indices) {
    return inputs.index_select(0, torch::tensor(std::vector<int64_t>(indices.begin(), indices.end()), torch::kLong));
  };
  objective.targets = lowering::to_torch(train_set.targets);
  objective.images = false;
  const torch::Tensor validation_inputs = lowering::to_torch(validation_set.inputs);
  const torch::Tensor validation_targets = lowering::to_torch(validation_set.targets);
  objective.loss = [&](const torch::Tensor& outputs, const torch::Tensor& reference, const torch::Tensor& teacher_outputs) {
    const auto predicted = outputs.reshape({-1});
    auto loss = huber(predicted, reference.reshape({-1}));
    if (!teacher_outputs.defined()) return loss;
    const double alpha = options.distillation->alpha;
    return alpha * huber(predicted, teacher_outputs.reshape({-1})) + (1 - alpha) * loss;
  };
  // Per sample: the mean absolute error over its targets.
  const int64_t per_sample = std::max<int64_t>(1, train_set.targets.elements() / std::max<int64_t>(1, train_set.size()));
  objective.score = [per_sample](const torch::Tensor& outputs, const torch::Tensor& reference) {
    return (outputs.reshape({-1}) - reference.reshape({-1})).abs().sum().item<double>() / static_cast<double>(per_sample);
  };
  objective.report = [&](EpochReport& report, double error_sum, int64_t samples, graph::GraphModule& module) {
    report.train_mae = error_sum / static_cast<double>(samples);
    dist::Group* group = group_of(options);
    if (!group) {
      report.validation_mae = mean_absolute_error(predictions_of(module, validation_inputs, evaluation_batch(model, 500)), validation_targets);
      return;
    }
    const auto [first, last] = share_of(validation_inputs.size(0), group);
    const auto predicted = predictions_of(module, validation_inputs.narrow(0, first, last - first), evaluation_batch(model, 500));
    const auto per_sample = validation_targets.numel() / std::max<int64_t>(1, validation_targets.size(0));
    const auto targets = validation_targets.reshape({validation_targets.size(0), per_sample}).narrow(0, first, last - first);
    const double validation_error_sum = (predicted.reshape({-1}) - targets.reshape({-1})).abs().sum().item<double>();
    const auto outputs = static_cast<double>(validation_targets.numel());
    report.validation_mae = group->sum(validation_error_sum) / std::max(1.0, outputs);
  };
  return fit(model, objective, options, callbacks);
}

TrainResult train_regressor(const graph::Graph& model, const data::PpgDataset& train_set,
                            const data::PpgDataset& validation_set, const TrainOptions& options,
                            const TrainCallbacks& callbacks) {
  return train_regressor(model, data::as_regression(train_set), data::as_regression(validation_set), options, callbacks);
}

std::vector<float> predict(const graph::Graph& model, const ir::Tensor& inputs, int64_t batch) {
  graph::GraphModule module(model);
  const auto predicted = predictions_of(module, lowering::to_torch(inputs), evaluation_batch(model, batch));
  return {predicted.data_ptr<float>(), predicted.data_ptr<float>() + predicted.numel()};
}

std::vector<float> predict(const graph::Graph& model, const data::PpgDataset& dataset, int64_t batch) {
  return predict(model, dataset.windows, batch);
}

double mean_absolute_error(std::span<const float> predicted, const std::vector<float>& reference) {
  double sum = 0;
  for (size_t i = 0; i < reference.size(); ++i) sum += std::abs(static_cast<double>(predicted[i]) - reference[i]);
  return sum / static_cast<double>(std::max<size_t>(1, reference.size()));
}

double mean_absolute_error(const graph::Graph& model, const data::PpgDataset& dataset, int64_t batch) {
  return mean_absolute_error(predict(model, dataset, batch), dataset.bpm);
}

double mean_absolute_error(const graph::Graph& model, const data::RegressionDataset& dataset, int64_t batch) {
  return mean_absolute_error(predict(model, dataset.inputs, batch), dataset.targets.data);
}

double classification_accuracy(const graph::Graph& model, const data::ImageDataset& dataset, int64_t batch) {
  graph::GraphModule module(model);
  return accuracy_of(module, dataset, evaluation_batch(model, batch));
}

std::vector<ClassAccuracy> per_class_accuracy(const graph::Graph& model, const data::ImageDataset& dataset) {
  std::vector<ClassAccuracy> classes(static_cast<size_t>(dataset.classes));
  for (size_t c = 0; c < classes.size(); ++c) classes[c].name = c < dataset.class_names.size() ? dataset.class_names[c] : std::to_string(c);
  graph::GraphModule module(model);
  for_each_batch(module, dataset, evaluation_batch(model, 500), [&](int64_t begin, const torch::Tensor& logits) {
    const torch::Tensor argmax = logits.argmax(1).contiguous();
    const int64_t* predicted = argmax.data_ptr<int64_t>();
    for (int64_t i = 0; i < argmax.size(0); ++i) {
      const int64_t label = dataset.labels[static_cast<size_t>(begin + i)];
      ClassAccuracy& truth = classes.at(static_cast<size_t>(label));
      ++truth.images;
      truth.correct += predicted[i] == label;
    }
  });
  return classes;
}

}  // namespace gos::train
