// `gos train`: train a zoo model with libtorch and write it as ONNX.
#include <fmt/core.h>
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "data/data.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "train/train.h"
#include "util/progress.h"
#include "zoo/zoo.h"

namespace gos::cli {

namespace {

struct TrainCommandOptions {
  std::string model;
  std::string data = "fashion-mnist";
  std::string output;
  train::TrainOptions train;
  bool no_augment = false;
  bool json = false;
  bool quiet = false;
};

nlohmann::json epoch_json(const train::EpochReport& epoch) {
  return {{"epoch", epoch.epoch},
          {"loss", epoch.loss},
          {"train_accuracy", 100 * epoch.train_accuracy},  // percent, as everywhere in gos's reports
          {"validation_accuracy", 100 * epoch.validation_accuracy},
          {"seconds", epoch.seconds}};
}

int run_train(const TrainCommandOptions& options) {
  const auto& info = zoo::model_info(options.model);
  if (info.task != zoo::Task::Classification) {
    throw data::DataError("model " + info.name + " is a regression model; gos train supports image classification (" +
                          "fashion-mnist, synthetic) for now");
  }
  auto spec = data::parse_data_spec(options.data);
  auto train_set = data::load(spec, data::Split::Train);
  auto validation_set = data::load(spec, data::Split::Validation);
  auto test_set = data::load(spec, data::Split::Test);

  train::TrainOptions train_options = options.train;
  train_options.augment = !options.no_augment;
  const bool chatty = !options.json && !options.quiet;
  std::unique_ptr<util::Progress> progress;
  train::TrainCallbacks callbacks;
  int epoch_in_progress = 1;
  callbacks.on_batch = [&](int64_t done, int64_t total, double loss) {
    if (!progress) {
      progress = std::make_unique<util::Progress>(
          fmt::format("train {} epoch {}/{}", info.name, epoch_in_progress, train_options.epochs), total, chatty);
    }
    progress->update(done, fmt::format("loss {:.3f}", loss));
  };
  callbacks.on_epoch = [&](const train::EpochReport& epoch) {
    if (progress) progress->finish();
    progress.reset();
    epoch_in_progress = epoch.epoch + 1;
    if (chatty) {
      fmt::print("epoch {:>3}/{}  loss {:.4f}  train {:.2f}%  validation {:.2f}%  {:.1f}s\n", epoch.epoch, epoch.epochs,
                 epoch.loss, 100 * epoch.train_accuracy, 100 * epoch.validation_accuracy, epoch.seconds);
      std::fflush(stdout);
    }
  };

  auto start = std::chrono::steady_clock::now();
  auto result = train::train_classifier(zoo::build_model(info.name, train_options.seed), train_set, validation_set,
                                        train_options, callbacks);
  graph::write_onnx(result.model, options.output);
  // Accuracy of the file as written, read back: what `gos eval` and any runtime will see.
  auto exported = graph::import_onnx(options.output).graph;
  double test_accuracy = train::classification_accuracy(exported, test_set);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (options.json) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& epoch : result.epochs) epochs.push_back(epoch_json(epoch));
    fmt::print("{}\n", nlohmann::json{{"model", info.name},
                                      {"output", options.output},
                                      {"test_accuracy", 100 * test_accuracy},
                                      {"test_images", test_set.size()},
                                      {"seconds", seconds},
                                      {"epochs", epochs}}
                           .dump(2));
  } else if (!options.quiet) {
    fmt::print("test accuracy {:.2f}% on {} images; wrote {} ({:.0f}s)\n", 100 * test_accuracy, test_set.size(),
               options.output, seconds);
  }
  return kSuccess;
}

}  // namespace

Action add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  auto* command = app.add_subcommand("train", "Train a zoo model with libtorch and write it as ONNX");
  command->add_option("--model", options->model, "zoo model: " + fmt::format("{}", fmt::join(zoo::model_names(), ", ")))
      ->required();
  command->add_option("--data", options->data, "fashion-mnist, fashion-mnist:DIR, synthetic or synthetic:N")
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "the ONNX file to write")->required();
  command->add_option("--epochs", options->train.epochs, "passes over the training set")->capture_default_str();
  command->add_option("--batch", options->train.batch, "images per step")->capture_default_str();
  command->add_option("--lr", options->train.learning_rate, "peak learning rate (warm-up, then cosine)")
      ->capture_default_str();
  command->add_option("--optimizer", options->train.optimizer, "sgd (Nesterov momentum) or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  command->add_option("--weight-decay", options->train.weight_decay, "on weights, not biases")->capture_default_str();
  command->add_flag("--no-augment", options->no_augment, "train without random shifts and flips");
  command->add_option("--seed", options->train.seed, "initialisation, order and augmentation")->capture_default_str();
  command->add_option("--threads", options->train.threads, "libtorch threads (0: every core)")->capture_default_str();
  command->add_flag("--json", options->json, "print only a JSON report");
  command->add_flag("--quiet", options->quiet, "print nothing but errors");
  return [options] { return run_train(*options); };
}

}  // namespace gos::cli
