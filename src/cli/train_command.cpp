// `gos train`: train a zoo model with libtorch and write it as ONNX.
#include <fmt/core.h>
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/option_checks.h"
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
  bool lr_given = false, optimizer_given = false, weight_decay_given = false;
  bool json = false;
  bool quiet = false;
};

nlohmann::json epoch_json(const train::EpochReport& epoch, bool regression) {
  if (regression) {
    return {{"epoch", epoch.epoch}, {"loss", epoch.loss}, {"train_mae_bpm", epoch.train_mae},
            {"validation_mae_bpm", epoch.validation_mae}, {"seconds", epoch.seconds}};
  }
  return {{"epoch", epoch.epoch},
          {"loss", epoch.loss},
          {"train_accuracy", 100 * epoch.train_accuracy},  // percent, as everywhere in gos's reports
          {"validation_accuracy", 100 * epoch.validation_accuracy},
          {"seconds", epoch.seconds}};
}

// A progress line per epoch on a terminal, then the epoch's figures.
train::TrainCallbacks progress_callbacks(const std::string& model, const train::TrainOptions& train_options, bool chatty,
                                         bool regression) {
  struct State {
    std::unique_ptr<util::Progress> line;
    int epoch_in_progress = 1;
  };
  auto state = std::make_shared<State>();
  train::TrainCallbacks callbacks;
  callbacks.on_batch = [=](int64_t done, int64_t total, double loss) {
    if (!state->line) {
      state->line = std::make_unique<util::Progress>(
          fmt::format("train {} epoch {}/{}", model, state->epoch_in_progress, train_options.epochs), total, chatty);
    }
    state->line->update(done, fmt::format("loss {:.3f}", loss));
  };
  callbacks.on_epoch = [=](const train::EpochReport& epoch) {
    if (state->line) state->line->finish();
    state->line.reset();
    state->epoch_in_progress = epoch.epoch + 1;
    if (!chatty) return;
    if (regression) {
      fmt::print("epoch {:>3}/{}  loss {:.4f}  train MAE {:.2f} BPM  validation MAE {:.2f} BPM  {:.1f}s\n", epoch.epoch,
                 epoch.epochs, epoch.loss, epoch.train_mae, epoch.validation_mae, epoch.seconds);
    } else {
      fmt::print("epoch {:>3}/{}  loss {:.4f}  train {:.2f}%  validation {:.2f}%  {:.1f}s\n", epoch.epoch, epoch.epochs,
                 epoch.loss, 100 * epoch.train_accuracy, 100 * epoch.validation_accuracy, epoch.seconds);
    }
    std::fflush(stdout);
  };
  return callbacks;
}

// tcn-ppg on PPG windows: Huber loss on BPM, the MAE of the written file on the test subjects.
int run_train_regressor(const TrainCommandOptions& options, const zoo::ModelInfo& info, const data::DataSpec& spec) {
  if (spec.kind != data::DataSpec::Kind::Ppg) {
    throw data::DataError("model " + info.name + " estimates the pulse rate from PPG windows; give --data ppg:DIR " +
                          "(make a synthetic set with `gos data synth-ppg -o DIR`)");
  }
  const auto train_set = data::load_ppg(spec, data::Split::Train);
  const auto validation_set = data::load_ppg(spec, data::Split::Validation);
  const auto test_set = data::load_ppg(spec, data::Split::Test);
  const bool chatty = !options.json && !options.quiet;
  const auto start = std::chrono::steady_clock::now();
  auto result = train::train_regressor(zoo::build_model(info.name, options.train.seed), train_set, validation_set, options.train,
                                       progress_callbacks(info.name, options.train, chatty, true));
  graph::write_onnx(result.model, options.output);
  auto exported = graph::import_onnx(options.output).graph;
  const auto mae = data::ppg_mae(test_set, train::predict(exported, test_set));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.json) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const auto& epoch : result.epochs) epochs.push_back(epoch_json(epoch, true));
    fmt::print("{}\n", nlohmann::json{{"model", info.name},
                                      {"output", options.output},
                                      {"test_mae_bpm", mae.mae_bpm},
                                      {"test_mean_subject_mae_bpm", mae.mean_subject_mae_bpm},
                                      {"test_windows", test_set.size()},
                                      {"seconds", seconds},
                                      {"epochs", epochs}}
                           .dump(2));
  } else if (!options.quiet) {
    fmt::print("test MAE {:.2f} BPM on {} windows of {} subjects; wrote {} ({:.0f}s)\n", mae.mae_bpm, test_set.size(),
               mae.subjects.size(), options.output, seconds);
  }
  return kSuccess;
}

int run_train(TrainCommandOptions options) {
  const auto& info = zoo::model_info(options.model);
  auto spec = data::parse_data_spec(options.data);
  options.train.augment = !options.no_augment;
  if (info.task == zoo::Task::Regression) {
    // Unless told otherwise, the recipe of models/README.md for the pulse-rate model.
    if (!options.lr_given) options.train.learning_rate = 0.002;
    if (!options.optimizer_given) options.train.optimizer = "adamw";
    if (!options.weight_decay_given) options.train.weight_decay = 1e-4;
    return run_train_regressor(options, info, spec);
  }
  if (spec.kind == data::DataSpec::Kind::Ppg) {
    throw data::DataError("model " + info.name + " classifies images; ppg:DIR holds PPG windows (for tcn-ppg)");
  }
  auto train_set = data::load(spec, data::Split::Train);
  auto validation_set = data::load(spec, data::Split::Validation);
  auto test_set = data::load(spec, data::Split::Test);

  const train::TrainOptions& train_options = options.train;
  const bool chatty = !options.json && !options.quiet;
  const auto callbacks = progress_callbacks(info.name, train_options, chatty, false);

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
    for (const auto& epoch : result.epochs) epochs.push_back(epoch_json(epoch, false));
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
  command->add_option("--data", options->data, "fashion-mnist, fashion-mnist:DIR, synthetic, synthetic:N, or ppg:DIR for tcn-ppg")
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "the ONNX file to write")->required();
  command->add_option("--epochs", options->train.epochs, "passes over the training set")->capture_default_str();
  command->add_option("--batch", options->train.batch, "images per step")->capture_default_str();
  command->add_option("--lr", options->train.learning_rate, "peak learning rate (warm-up, then cosine; tcn-ppg: 0.002 with adamw)")
      ->capture_default_str();
  command->add_option("--optimizer", options->train.optimizer, "sgd (Nesterov momentum) or adamw")
      ->check(CLI::IsMember({"sgd", "adamw"}))
      ->capture_default_str();
  command->add_option("--weight-decay", options->train.weight_decay, "on weights, not biases")
      ->check(number_from_zero(/*positive=*/false))
      ->capture_default_str();
  command->add_flag("--no-augment", options->no_augment, "train without random shifts and flips");
  command->add_option("--seed", options->train.seed, "initialisation, order and augmentation")->capture_default_str();
  command->add_option("--threads", options->train.threads, "libtorch threads (0: every core)")
      ->check(whole_number_at_least(0, "0: every core"))
      ->capture_default_str();
  command->add_flag("--json", options->json, "print only a JSON report");
  command->add_flag("--quiet", options->quiet, "print nothing but errors");
  return [options, command] {
    options->lr_given = command->count("--lr") > 0;
    options->optimizer_given = command->count("--optimizer") > 0;
    options->weight_decay_given = command->count("--weight-decay") > 0;
    return run_train(*options);
  };
}

}  // namespace gos::cli
