// Training with libtorch: SGD (Nesterov) or AdamW, a linear warm-up then cosine annealing per
// step, label cross-entropy, light augmentation. The graph's own instructions run through
// graph::GraphModule, so what is trained is exactly what gets exported.
#include "train/train.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

#include "graph/torch_module.h"
#include "lowering/torch_lowering.h"

namespace gos::train {

namespace {

// The images and labels of `indices`, as one batch.
std::pair<torch::Tensor, torch::Tensor> gather(const torch::Tensor& images, const torch::Tensor& labels,
                                               const std::vector<int64_t>& indices, size_t begin, size_t end) {
  auto index = torch::tensor(std::vector<int64_t>(indices.begin() + begin, indices.begin() + end), torch::kLong);
  return {images.index_select(0, index), labels.index_select(0, index)};
}

// Random shifts of up to two pixels (zero fill) and horizontal flips: the standard light
// augmentation for 28x28 clothing images, which are left-right symmetric in meaning.
torch::Tensor augment(const torch::Tensor& batch, std::mt19937_64& rng) {
  const int64_t pad = 2;
  auto padded = torch::constant_pad_nd(batch, {pad, pad, pad, pad}, 0.0);
  auto shifted = torch::empty_like(batch);
  const int64_t height = batch.size(2), width = batch.size(3);
  std::uniform_int_distribution<int64_t> offset(0, 2 * pad);
  std::bernoulli_distribution flip(0.5);
  for (int64_t i = 0; i < batch.size(0); ++i) {
    auto crop = padded[i].narrow(1, offset(rng), height).narrow(2, offset(rng), width);
    shifted[i].copy_(flip(rng) ? crop.flip({2}) : crop);
  }
  return shifted;
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
torch::Tensor distillation_loss(const torch::Tensor& logits, graph::GraphModule& teacher, const torch::Tensor& x,
                                const torch::Tensor& label_loss, const Distillation& distillation) {
  torch::Tensor soft_targets;
  {
    torch::NoGradGuard no_grad;
    soft_targets = torch::softmax(teacher.forward(x) / distillation.temperature, 1);
  }
  const double t = distillation.temperature;
  torch::Tensor kl = torch::nn::functional::kl_div(torch::log_softmax(logits / t, 1), soft_targets,
                                                   torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean));
  return distillation.alpha * t * t * kl + (1 - distillation.alpha) * label_loss;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double rate) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(rate);
}

double accuracy_of(graph::GraphModule& module, const data::ImageDataset& dataset, int64_t batch) {
  torch::NoGradGuard no_grad;
  module.eval();
  auto images = lowering::to_torch(dataset.images);
  auto labels = torch::tensor(dataset.labels, torch::kLong);
  int64_t correct = 0;
  for (int64_t begin = 0; begin < dataset.size(); begin += batch) {
    int64_t count = std::min(batch, dataset.size() - begin);
    auto logits = module.forward(images.narrow(0, begin, count));
    correct += logits.argmax(1).eq(labels.narrow(0, begin, count)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(1, dataset.size()));
}

}  // namespace

TrainResult train_classifier(const graph::Graph& model, const data::ImageDataset& train_set,
                             const data::ImageDataset& validation_set, const TrainOptions& options,
                             const TrainCallbacks& callbacks) {
  if (options.epochs <= 0 || options.batch <= 0 || options.learning_rate <= 0) {
    throw std::invalid_argument("epochs, batch and learning rate must be positive");
  }
  if (options.threads > 0) torch::set_num_threads(options.threads);
  torch::manual_seed(options.seed);
  std::mt19937_64 rng(options.seed);

  graph::GraphModule module(model);
  auto optimizer = make_optimizer(module, options);
  std::unique_ptr<graph::GraphModule> teacher;
  if (options.distillation) {
    teacher = std::make_unique<graph::GraphModule>(options.distillation->teacher);
    teacher->eval();
  }
  const auto run_start = std::chrono::steady_clock::now();
  auto images = lowering::to_torch(train_set.images);
  auto labels = torch::tensor(train_set.labels, torch::kLong);
  std::vector<int64_t> order(train_set.size());
  std::iota(order.begin(), order.end(), 0);
  const int64_t batches = (train_set.size() + options.batch - 1) / options.batch;
  const int64_t total_steps = batches * options.epochs;

  TrainResult result;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    auto start = std::chrono::steady_clock::now();
    module.train();
    std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t b = 0; b < batches; ++b) {
      size_t begin = static_cast<size_t>(b * options.batch);
      size_t end = std::min(order.size(), begin + static_cast<size_t>(options.batch));
      auto [x, y] = gather(images, labels, order, begin, end);
      if (options.augment) x = augment(x, rng);
      set_learning_rate(*optimizer, learning_rate_at(options, (epoch - 1) * batches + b, total_steps));
      optimizer->zero_grad();
      auto logits = module.forward(x);
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      if (teacher) loss = distillation_loss(logits, *teacher, x, loss, *options.distillation);
      loss.backward();
      optimizer->step();
      loss_sum += loss.item<double>() * static_cast<double>(end - begin);
      correct += logits.argmax(1).eq(y).sum().item<int64_t>();
      if (callbacks.on_batch) callbacks.on_batch(b + 1, batches, loss.item<double>());
      if (options.budget_seconds > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count() > options.budget_seconds) {
        result.stopped_by_budget = true;
        break;
      }
    }
    EpochReport report{epoch, options.epochs, loss_sum / static_cast<double>(train_set.size()),
                       static_cast<double>(correct) / static_cast<double>(train_set.size()),
                       accuracy_of(module, validation_set, 500),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
    result.epochs.push_back(report);
    if (callbacks.on_epoch) callbacks.on_epoch(report);
    if (result.stopped_by_budget) break;
  }
  result.model = graph::fold_batch_norms(module.to_graph());
  return result;
}

double classification_accuracy(const graph::Graph& model, const data::ImageDataset& dataset, int64_t batch) {
  graph::GraphModule module(model);
  return accuracy_of(module, dataset, batch);
}

}  // namespace gos::train
