#pragma once
// The public face of the adapt report: what `gos adapt` found and measured, as plain data, written
// as OUT/report.json (machine-read; read back to resume or compare runs) and OUT/report.html (one
// self-contained page for a person who has never seen gos: no network, plots as inline SVG).
// Plain C++: it knows nothing of graphs, tensors or libtorch.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gos::report {

// One model (the original or the adapted one) as verified at the end of the run.
struct ModelSummary {
  std::optional<double> accuracy;  // test accuracy in percent (classifiers)
  std::optional<double> mae;       // mean absolute error (regression models, e.g. BPM)
  double median_ms = 0, p10_ms = 0, p90_ms = 0;  // whole model on the backend, same interleaved run
  int runs = 0;
  int64_t macs = 0;
  int64_t params = 0;
};

// One searched operator and what the run chose for it.
struct LayerChoice {
  std::string node;           // graph node name, e.g. "stage3.block3.conv2"
  std::string op_type;        // e.g. "Conv"
  std::string original_expr;  // the original instructions (ir::print)
  std::string chosen_expr;    // equal to original_expr when the layer is kept
  std::string derivation;     // e.g. "rank_split(r=8)"; "original" when kept
  bool kept = true;
  double latency_ms_before = 0;  // the operator alone on the backend
  double latency_ms_after = 0;
  int64_t macs_before = 0, macs_after = 0;
  double fidelity = 0;     // normalised output error of the chosen candidate after local distillation; 0 when kept
  double sensitivity = 0;  // validation accuracy drop (points) with this layer's best candidate alone
  int candidates = 0;      // how many candidates were considered for this layer
  // How many were not timed because the latency predictor put them far slower than the operator.
  int predicted_slower = 0;
  // Of the candidates distilled, how many had their effect estimated from their distilled error
  // instead of measured, because the budget ran short (0: every one measured).
  int sensitivity_estimated = 0;
};

// One point of the Pareto front of the search (predicted, before fine-tuning).
struct FrontPoint {
  double predicted_latency_ms = 0;
  double predicted_loss = 0;  // predicted accuracy drop in points (or MAE increase)
  int changed_layers = 0;
  bool chosen = false;  // the configuration that was fine-tuned and exported
  // Original over this configuration's whole-model latency, timed side by side before any
  // fine-tuning (only the points the choice looked at are timed).
  std::optional<double> measured_speedup;
};

// One configuration that was fine-tuned and verified (several when the first missed the constraint).
struct Attempt {
  int front_index = 0;  // into AdaptReport::front
  double speedup = 0;   // measured, side by side
  double quality_drop = 0;  // accuracy points lost (or MAE increase)
  bool meets_constraint = false;
  std::string outcome;  // one sentence, e.g. "accuracy dropped 0.8 points > 0.5: trying a slower point"
  // Node -> derivation of each operator the configuration replaced: what the attempt changed,
  // so that attempts can be compared layer by layer (the layer table shows the best one only).
  std::map<std::string, std::string> changes;
};

// A classifier's test accuracy on one class, the original's and the adapted model's.
struct ClassResult {
  std::string name;  // the data's name for the class (an image folder's name), or its label number
  int64_t images = 0;
  double original = 0, adapted = 0;  // percent
};

struct StageTime {
  std::string stage;  // "profile", "candidates", "fidelity", "sensitivity", "search", "finetune", "verify",
                     // "export"; a repeated fine-tune and verify: "finetune (attempt 2)", ...
  double seconds = 0;
};

// In an int8 run, one of the four models timed side by side and scored on the test set.
struct PrecisionPoint {
  std::string model;      // "original" or "adapted"
  std::string precision;  // "fp32" or "int8"
  ModelSummary summary;
};

struct AdaptReport {
  // What was run.
  std::string model;    // the MODEL argument
  std::string data;     // data spec
  std::string target;   // e.g. "host"
  std::string backend;  // torch | mobile | ort
  int threads = 1;
  std::string machine;  // measure::machine_fingerprint()
  // The cores other processes kept busy on average while the run (its latest start) worked, of
  // machine_cores: over half a core, the machine was loaded and every stage took longer.
  std::optional<double> machine_load;
  int machine_cores = 0;
  uint64_t seed = 1;
  std::string metric = "accuracy";  // "accuracy" (higher is better, percent) or "mae" (lower is better)
  // The constraint the user asked for.
  std::optional<double> target_speedup;
  std::optional<double> target_latency_ms;
  double max_quality_drop = 0.5;  // accuracy points (or MAE increase)

  // What the adapted model runs in: "fp32", or "int8" (gos adapt --precision int8). In int8,
  // `original` is timed as its post-training int8 form runs (speedup is over it) and scored in
  // fp32 (quality_drop counts from it), `adapted` is the int8 adapted model, and `points` holds
  // all four: the original and the adapted model, each in fp32 and in int8.
  std::string precision = "fp32";
  std::vector<PrecisionPoint> points;
  ModelSummary original, adapted;
  double speedup = 0;       // original.median_ms / adapted.median_ms, measured in one interleaved run
  double quality_drop = 0;  // accuracy points lost (original - adapted), or MAE increase (adapted - original)
  bool constraint_met = false;
  std::string verdict;  // one or two sentences a user reads first

  // gos adapt --narrow: each narrowed channel group (named by its first producer's output
  // channels) -> its derivation, e.g. "narrow(stage2.block1.conv1.conv:k, 16)", and each dropped
  // residual branch or operator (by the addition or operator) -> "drop(stage3.block2.add)".
  std::map<std::string, std::string> narrowed;
  // Classifiers in fp32: each class's test accuracy before and after, in label order, so that a
  // class the adapted model lost more on than the average shows up.
  std::vector<ClassResult> classes;
  std::vector<LayerChoice> layers;
  std::vector<FrontPoint> front;
  std::vector<Attempt> attempts;
  std::vector<StageTime> stages;
  std::vector<std::string> notes;  // anything the user should know (skipped nodes, budget cuts, ...)
  std::string finished_at;  // UTC, ISO 8601
};

// The report as JSON. Keys are the member names above, plus the ones the issue promises:
// "acc_drop" (= quality_drop for classifiers), and per model "accuracy" / "mae" only when set.
nlohmann::json to_json(const AdaptReport& report);
// Reads what to_json wrote; throws std::runtime_error naming the missing or mistyped key.
AdaptReport from_json(const nlohmann::json& json);

// One self-contained HTML page (inline CSS and SVG, no scripts or links to fetch).
std::string to_html(const AdaptReport& report);

// Writes DIR/report.json and DIR/report.html, each through a temporary file renamed into place,
// so a reader never sees half a report. Throws std::runtime_error when DIR cannot be written.
void write_report(const AdaptReport& report, const std::filesystem::path& dir);

}  // namespace gos::report
