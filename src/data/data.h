#pragma once
// The public face of gos's data: the image sets models are trained, validated and tested on, and
// the wristband pulse-rate windows (PPG and accelerometer -> heart rate; docs/ppg.md).
//
// Input convention (docs/data.md): images are float pixels in [0,1], NCHW, one channel of 28x28
// for Fashion-MNIST. Data is never normalised here: any normalisation is part of the model graph,
// so that every runtime given an exported model gets the same answers without knowing gos.
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ir/ir.h"

namespace gos::data {

// Missing, unreadable or malformed data; `what()` is one line meant for the user.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Train and Validation partition the 60,000 training images (Validation holds out a seeded,
// class-stratified 1/12 of each class: 5,000 images); Test is the separate 10,000.
enum class Split { Train, Validation, Test };
std::string_view to_string(Split split);

struct ImageDataset {
  ir::Tensor images;             // [N,1,28,28], float pixels in [0,1]
  std::vector<int64_t> labels;   // N class indices in [0, classes)
  int64_t classes = 0;

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr std::string_view kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`. Throws DataError when the
// files are missing, not gzip, truncated, not IDX, or disagree with each other.
ImageDataset load_fashion_mnist(const std::string& dir, Split split);

// A tiny, easily separable 10-class set of 28x28 images (one oriented grating per class plus
// noise) for fast tests: `count` images per split, a different deterministic draw for each split.
ImageDataset synthetic_images(int64_t count, Split split);

// What a `--data` option names: "fashion-mnist", "fashion-mnist:DIR", "synthetic", "synthetic:N",
// "ppg:DIR".
struct DataSpec {
  enum class Kind { FashionMnist, Synthetic, Ppg };
  Kind kind = Kind::FashionMnist;
  std::string dir{kFashionMnistDefaultDir};  // FashionMnist, Ppg
  int64_t synthetic_count = 1000;            // Synthetic: images per split
};
DataSpec parse_data_spec(std::string_view text);  // throws DataError for anything else
// The images of an image spec; a ppg spec throws DataError (it holds signal windows: load_ppg).
ImageDataset load(const DataSpec& spec, Split split);

// ---- Wristband pulse rate: PPG and accelerometer windows -> heart rate ---------------------------
//
// On disk (docs/ppg.md), one folder per subject, DIR/S<k> with k = 1..15 (PPG-DaLiA's ids, any
// subset): ppg.npy float32 [N] wrist PPG at 64 Hz; acc.npy float32 [M,3] wrist accelerometer in g
// at 32 Hz; hr.npy float32 [W] the ECG's heart rate in BPM, window i covering seconds [2i, 2i+8);
// optionally activity.npy int32 [W] (PPG-DaLiA's activity ids) and, in synthetic sets only,
// cadence.npy float32 [W] (the motion's cadence in steps or pedal strokes per minute, 0 for none).

inline constexpr int kPpgHz = 64;  // PPG samples per second, and the rate of the windows
inline constexpr int kAccHz = 32;  // accelerometer samples per second on disk
inline constexpr int kPpgWindowSeconds = 8;
inline constexpr int kPpgShiftSeconds = 2;
inline constexpr int64_t kPpgChannels = 4;                                // PPG, ACC x, y, z
inline constexpr int64_t kPpgWindowSamples = kPpgHz * kPpgWindowSeconds;  // 512
inline constexpr int kPpgSubjects = 15;                                   // S1..S15

struct PpgDataset {
  // [N,4,512]: PPG and ACC x, y, z over 8 s at 64 Hz (the accelerometer linearly interpolated from
  // 32 Hz); each channel of each window normalised to zero mean and unit variance (a flat channel
  // is all zeros).
  ir::Tensor windows;
  std::vector<float> bpm;          // N targets: the ECG's mean heart rate over the window
  std::vector<int> subject;        // N subject ids; a subject's windows are contiguous, in time order
  std::vector<int> activity;       // N activity ids (ppg_activity_name), -1 where there is no activity.npy
  std::vector<float> cadence_bpm;  // N motion cadences; empty unless some subject has cadence.npy (0: none)
  // N: how much the wrist moves, which normalised windows no longer show: the accelerometer's
  // deviation from its mean over the window, x, y and z together (root of the summed variances), in g.
  std::vector<float> acc_rms_g;

  int64_t size() const { return static_cast<int64_t>(bpm.size()); }
};

// The fixed subject split (for speed, instead of leave-one-subject-out): Train S1..S10,
// Validation S11..S12, Test S13..S15.
std::vector<int> ppg_split_subjects(Split split);

// The split's subjects among those `present` (in a folder): the fixed split when each of its three
// parts has a subject present, or when fewer than three are present; otherwise (a smaller set,
// such as `gos data synth-ppg --subjects 4`) the present subjects in order, the last fifth (at
// least one) for testing, the two fifteenths before them (at least one) for validation, the rest
// for training.
std::vector<int> ppg_split_of(const std::vector<int>& present, Split split);

// Windows of the split's subjects found in `dir` (missing ones are skipped), in subject order.
// Throws DataError when `dir` is not a folder, when it holds none of the split's subjects (naming
// them), or when a subject's files are missing, malformed or disagree.
PpgDataset load_ppg(const std::string& dir, Split split);
// The windows of exactly these subjects, in this order (for leave-one-subject-out); each must exist.
PpgDataset load_ppg_subjects(const std::string& dir, const std::vector<int>& subjects);
// The same for a `--data ppg:DIR` spec; any other spec throws DataError.
PpgDataset load_ppg(const DataSpec& spec, Split split);

// PPG-DaLiA's activities: 0 transient, 1 sitting, 2 stairs, 3 table soccer, 4 cycling, 5 driving,
// 6 lunch, 7 walking, 8 working; "unknown" for anything else.
std::string_view ppg_activity_name(int activity);

// A synthetic set in the layout above, from a physiological model (docs/ppg.md, "Synthetic data"):
// per-subject activity schedules, heart rate that follows them, pulses with a dicrotic notch,
// respiration, baseline wander, and accelerometer-driven motion artefacts whose cadence sometimes
// sits near the heart rate. Deterministic given the seed, byte for byte; subject k's files do not
// depend on how many subjects are written.
inline constexpr int kPpgSynthMaxMinutes = 600;  // per subject: 15 subjects of 10 h are about 350 MB
struct PpgSynthOptions {
  int subjects = kPpgSubjects;  // S1..S<subjects>, 1 to 15
  int minutes = 30;             // per subject, 1 to kPpgSynthMaxMinutes
  uint64_t seed = 1;
};
struct PpgSynthSummary {
  int subjects = 0;
  int minutes = 0;
  int64_t windows = 0;  // hr.npy entries over all subjects
};
// Creates `dir` if needed; overwrites the subjects' files. Throws DataError for options out of
// range or a folder that cannot be written.
PpgSynthSummary synthesize_ppg(const PpgSynthOptions& options, const std::string& dir);

// True when the motion (its cadence, twice the cadence, or the arm swing at half the cadence) is
// within `within_bpm` of the heart rate: the windows where motion artefacts mimic the pulse.
bool cadence_near_heart_rate(float cadence_bpm, float heart_bpm, float within_bpm = 10.0f);

// ---- The classical reference: spectral peak tracking (docs/ppg.md, "Classical reference") ----

// The heart rate in one window [4,512] (as in PpgDataset::windows) whose accelerometer moved by
// `acc_rms_g` (PpgDataset::acc_rms_g): the highest peak of the PPG's power spectrum over 30-240 BPM
// once the accelerometer's spectrum is subtracted (when the wrist moves, in proportion to how
// much); given the previous window's estimate of the same subject, the highest peak within 15 BPM
// of it, unless a peak elsewhere is over 4 times stronger.
double spectral_reference_bpm(std::span<const float> window, double acc_rms_g,
                              std::optional<double> previous_bpm = std::nullopt);
// One estimate per window, tracking within each subject in window order.
std::vector<float> spectral_reference(const PpgDataset& dataset);

// Mean absolute error of per-window estimates, overall and per subject.
struct SubjectMae {
  int subject = 0;
  double mae_bpm = 0;
  int64_t windows = 0;
};
struct PpgMae {
  double mae_bpm = 0;               // over all counted windows
  double mean_subject_mae_bpm = 0;  // the subjects' MAEs averaged (how PPG-DaLiA papers report)
  int64_t windows = 0;
  std::vector<SubjectMae> subjects;  // in the dataset's order, subjects with counted windows only
};
// `estimates` has one value per window; `include`, when not empty, one flag per window saying
// which windows count. Throws std::invalid_argument when the sizes disagree.
PpgMae ppg_mae(const PpgDataset& dataset, std::span<const float> estimates, const std::vector<bool>& include = {});

}  // namespace gos::data
