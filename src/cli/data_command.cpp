// `gos data`: data sets gos makes itself. `gos data synth-ppg` writes a synthetic wristband set in
// the layout `--data ppg:DIR` reads (docs/ppg.md).
#include <fmt/core.h>
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "data/data.h"

namespace gos::cli {

namespace {

struct SynthPpgCommandOptions {
  data::PpgSynthOptions synth;
  std::string output;
  bool json = false;
};

// Every set gos reads is split by subject into training, validation and test (docs/ppg.md).
constexpr int kFewestSubjects = 3;

int run_synth_ppg(const SynthPpgCommandOptions& options) {
  if (options.synth.subjects < kFewestSubjects) {
    throw data::DataError(fmt::format("--subjects must be at least {}: the subjects are split into training, validation and test, "
                                      "at least one each (docs/ppg.md)",
                                      kFewestSubjects));
  }
  const auto start = std::chrono::steady_clock::now();
  const data::PpgSynthSummary summary = data::synthesize_ppg(options.synth, options.output);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"subjects", summary.subjects},
                                      {"minutes", summary.minutes},
                                      {"windows", summary.windows},
                                      {"seed", options.synth.seed},
                                      {"dir", options.output},
                                      {"seconds", seconds}}
                           .dump(2));
  } else {
    fmt::print("wrote {} synthetic subjects x {} min ({} windows of 8 s, seed {}) to {} ({:.1f}s)\n", summary.subjects,
               summary.minutes, summary.windows, options.synth.seed, options.output, seconds);
  }
  return kSuccess;
}

}  // namespace

Action add_data_command(CLI::App& app) {
  auto options = std::make_shared<SynthPpgCommandOptions>();
  auto* command = app.add_subcommand("data", "Make data sets: a synthetic wristband PPG set (synth-ppg)");
  command->require_subcommand(1);
  auto* synth = command->add_subcommand(
      "synth-ppg", "Write a synthetic wristband set (PPG at 64 Hz, accelerometer at 32 Hz, heart rate per 8 s window) "
                   "in the layout --data ppg:DIR reads (docs/ppg.md)");
  synth->add_option("--subjects", options->synth.subjects, "subjects S1..S<n>, 3 to 15")
      ->check(CLI::Range(1, data::kPpgSubjects))
      ->capture_default_str();
  synth->add_option("--minutes", options->synth.minutes, "minutes per subject")
      ->check(CLI::Range(1, data::kPpgSynthMaxMinutes))
      ->capture_default_str();
  synth->add_option("--seed", options->synth.seed, "the same seed writes the same bytes")->capture_default_str();
  synth->add_option("-o,--output", options->output, "the folder to write (created if needed; subjects' files are replaced)")
      ->required();
  synth->add_flag("--json", options->json, "print a JSON summary");
  return [options, synth] {
    if (synth->parsed()) return run_synth_ppg(*options);
    return static_cast<int>(kInternalError);
  };
}

}  // namespace gos::cli
