#pragma once
// The public face of gos's data: the image sets models are trained, validated and tested on, and
// the wristband pulse-rate windows (PPG and accelerometer -> heart rate; docs/ppg.md).
//
// Input convention (docs/data.md): images are float pixels in [0,1], NCHW (one channel of 28x28
// for Fashion-MNIST), then normalised per channel only when the user asks (--mean/--std, applied as
// the samples are fed to the model, never written into it); a user's own images (images:DIR) and
// arrays (arrays:DIR) are brought to the model's input shape.
#include <cstdint>
#include <memory>
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
// The name users' files and folders give a split (torchvision's and Keras's): train, val, test.
std::string_view short_name(Split split);

// Samples kept as bytes, [N, ...] (a byte b is the value b / 255): a user's images decoded once at
// the model's size. Mapped from the decoded-image cache file when there is one, so that a set
// larger than memory is paged in from disk as batches read it and never loaded whole; held in
// memory otherwise.
class SampleBytes {
 public:
  SampleBytes(std::vector<int64_t> shape, std::vector<uint8_t> bytes);  // in memory; bytes fill shape
  // Maps `shape`'s bytes starting `offset` bytes into `path` (read-only). Throws DataError when
  // the file cannot be mapped or is shorter.
  static std::shared_ptr<const SampleBytes> map(const std::string& path, size_t offset, std::vector<int64_t> shape);
  ~SampleBytes();
  SampleBytes(const SampleBytes&) = delete;
  SampleBytes& operator=(const SampleBytes&) = delete;

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t count() const { return shape_.empty() ? 0 : shape_[0]; }
  size_t sample_bytes() const { return sample_bytes_; }
  const uint8_t* sample(int64_t i) const { return data_ + static_cast<size_t>(i) * sample_bytes_; }
  bool mapped() const { return mapping_ != nullptr; }

 private:
  SampleBytes() = default;
  std::vector<int64_t> shape_;
  size_t sample_bytes_ = 0;
  std::vector<uint8_t> owned_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  const uint8_t* data_ = nullptr;
};

// Samples with class labels: images [N,C,H,W] (float pixels in [0,1] before normalisation), or
// any arrays [N,...] a classifier reads (arrays:DIR). Read them through rows(): the samples are
// either floats in `images` or bytes in `bytes`, converted and normalised batch by batch.
struct ImageDataset {
  ir::Tensor images;             // [N, ...the model's input shape after the batch axis]; empty when `bytes` holds them
  std::shared_ptr<const SampleBytes> bytes;  // images:DIR
  std::vector<float> mean, std;  // with `bytes`: the normalisation rows() applies (InputFormat's)
  std::vector<int64_t> labels;   // N class indices in [0, classes)
  int64_t classes = 0;
  std::vector<std::string> class_names;  // `classes` names when the data has them (images:DIR), else empty

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  // One sample's shape with a batch axis of 1.
  std::vector<int64_t> sample_shape() const;
  // Samples [begin, end), or the samples at `indices` in that order, as normalised floats.
  ir::Tensor rows(int64_t begin, int64_t end) const;
  ir::Tensor rows(std::span<const int64_t> indices) const;
  // The samples and labels at `indices`, in memory (bytes stay bytes).
  ImageDataset subset(std::span<const int64_t> indices) const;
};

// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr std::string_view kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`. Throws DataError when the
// files are missing, not gzip, truncated, not IDX, or disagree with each other.
ImageDataset load_fashion_mnist(const std::string& dir, Split split);

// A tiny, easily separable 10-class set of 28x28 images (one oriented grating per class plus
// noise) for fast tests: `count` images per split, a different deterministic draw for each split.
ImageDataset synthetic_images(int64_t count, Split split);

// Samples with float targets [N,K] (regression: mean absolute error over every target).
struct RegressionDataset {
  ir::Tensor inputs;   // [N, ...the model's input shape after the batch axis]
  ir::Tensor targets;  // [N, K]
  int64_t size() const { return inputs.shape.empty() ? 0 : inputs.shape[0]; }
};

// How samples are brought to what the model reads (set by the command from the model and options).
struct InputFormat {
  // The model's input at batch 1 ([1,C,H,W] for an image model). Empty: the data's own shape.
  std::vector<int64_t> shape;
  // images:DIR: the shorter side resized to this before the centre crop to the model's height and
  // width (torchvision's Resize(S) + CenterCrop); 0: resized to the crop itself.
  int64_t resize = 0;
  // Per channel (axis 1), x -> (x - mean[c]) / std[c] as the samples are fed to the model; empty:
  // none. One value applies to every channel.
  std::vector<float> mean, std;
  // images:DIR: where decoded images are kept, so that a folder is decoded once (empty: not kept).
  std::string cache_dir;
};
// ImageNet's per-channel statistics (torchvision's transforms), for --preprocess imagenet.
inline const std::vector<float> kImagenetMean{0.485f, 0.456f, 0.406f};
inline const std::vector<float> kImagenetStd{0.229f, 0.224f, 0.225f};
// Normalises `samples` [N,C,...] in place as `format` says. Throws DataError when the mean or std
// has neither one value nor one per channel, or a std is not positive.
void normalize(ir::Tensor& samples, const InputFormat& format);

// What a `--data` option names: "fashion-mnist", "fashion-mnist:DIR", "synthetic", "synthetic:N",
// "ppg:DIR", "images:DIR", "arrays:DIR" or "arrays:FILE.npz".
struct DataSpec {
  enum class Kind { FashionMnist, Synthetic, Ppg, Images, Arrays };
  Kind kind = Kind::FashionMnist;
  std::string dir{kFashionMnistDefaultDir};  // FashionMnist, Ppg, Images, Arrays (a folder or an .npz file)
  int64_t synthetic_count = 1000;            // Synthetic: images per split
  InputFormat input;
};
DataSpec parse_data_spec(std::string_view text);  // throws DataError for anything else

// What the data is for: PPG windows and arrays with float targets are regression; the rest
// classification (arrays: by y_train's dtype, read from its header only).
enum class Objective { Classification, Regression };
Objective objective_of(const DataSpec& spec);

// The labelled samples of a classification spec, normalised as spec.input says; a regression spec
// throws DataError (load_regression, load_ppg). Throws DataError when the samples' shape is not
// spec.input.shape after the batch axis (naming both).
ImageDataset load(const DataSpec& spec, Split split);
// The samples and float targets of arrays:DIR with float y (normalised as spec.input says), or of
// ppg:DIR (windows and heart rates [N,1]); anything else throws DataError.
RegressionDataset load_regression(const DataSpec& spec, Split split);

// ---- Your own data: image folders and arrays -------------------------------------------------------

// images:DIR, torchvision's ImageFolder convention: DIR/{train,val,test}/<class>/<image>, or only
// DIR/<class>/<image> (split 80/10/10 per class with a fixed seed, the same on every machine).
// Classes are the sorted folder names. PNG and JPEG (grey, grey+alpha, RGB, RGBA; alpha dropped),
// resized (format.resize) and centre-cropped to format.shape's height and width, converted to its
// channels (grey -> repeated, RGB -> grey by ITU-R BT.601 luma), float pixels in [0,1], not
// normalised. format.shape must be [1,C,H,W] with C 1 or 3. Throws DataError naming the file or
// folder for anything unreadable.
ImageDataset load_image_folder(const std::string& dir, Split split, const InputFormat& format);

// arrays:DIR (or an .npz file holding the same names): x_{train,val,test}.npy float32 or uint8
// (bytes become [0,1]), y_{train,val,test}.npy int64/int32 class labels or float32 targets ([N] or
// [N,K]). Not normalised.
ImageDataset load_array_classes(const std::string& path, Split split);
RegressionDataset load_array_targets(const std::string& path, Split split);
// True when y_train holds class labels (an integer dtype), false for float targets.
bool array_targets_are_classes(const std::string& path);

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

// The windows as samples and their heart rates as targets [N,1]: what regression trains on.
RegressionDataset as_regression(PpgDataset dataset);

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
