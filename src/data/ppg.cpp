// Wristband pulse-rate windows from per-subject .npy arrays (layout: docs/ppg.md). A subject's
// signals are cut into 8 s windows shifted by 2 s, window i paired with hr[i]; the accelerometer is
// brought to the PPG's 64 Hz and every channel of every window is standardised.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "data/data.h"
#include "data/npy.h"

namespace gos::data {

namespace {

namespace fs = std::filesystem;

constexpr int64_t kPpgShiftSamples = kPpgHz * kPpgShiftSeconds;  // 128
constexpr int64_t kAccWindowSamples = kAccHz * kPpgWindowSeconds;  // 256
constexpr int64_t kAccShiftSamples = kAccHz * kPpgShiftSeconds;    // 64
static_assert(kPpgHz == 2 * kAccHz, "the accelerometer is interpolated to exactly twice its rate");

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

// A per-window or per-sample series: [n] or [n,1] (PPG-DaLiA keeps BVP as a column).
std::vector<float> read_series(const fs::path& path, const char* what) {
  NpyArray array = read_npy(path.string());
  const auto& shape = array.shape;
  if (shape.size() == 1 || (shape.size() == 2 && shape[1] == 1)) return std::move(array.values);
  throw DataError(path.string() + ": shape " + shape_text(shape) + "; expected [N] (" + what + "), see docs/ppg.md");
}

std::vector<float> read_acc(const fs::path& path) {
  NpyArray array = read_npy(path.string());
  if (array.shape.size() != 2 || array.shape[1] != 3) {
    throw DataError(path.string() + ": shape " + shape_text(array.shape) +
                    "; expected [N,3] (x, y, z in g at 32 Hz), see docs/ppg.md");
  }
  return std::move(array.values);
}

struct SubjectSignals {
  std::vector<float> ppg;            // [N_ppg]
  std::vector<float> acc;            // [N_acc * 3]
  std::vector<float> hr;             // [W]
  std::vector<float> activity;       // [W] or empty
  std::vector<float> cadence_bpm;    // [W] or empty
};

void require_per_window(const fs::path& path, const std::vector<float>& values, size_t windows) {
  if (values.size() != windows) {
    throw DataError(path.string() + ": " + std::to_string(values.size()) + " values, but hr.npy has " +
                    std::to_string(windows) + " windows; they must match one to one");
  }
}

SubjectSignals read_subject(const fs::path& folder) {
  for (const char* name : {"ppg.npy", "acc.npy", "hr.npy"}) {
    if (!fs::is_regular_file(folder / name)) {
      throw DataError((folder / name).string() +
                      " is missing: a subject folder holds ppg.npy, acc.npy and hr.npy (docs/ppg.md)");
    }
  }
  SubjectSignals signals;
  signals.ppg = read_series(folder / "ppg.npy", "PPG at 64 Hz");
  signals.acc = read_acc(folder / "acc.npy");
  signals.hr = read_series(folder / "hr.npy", "heart rate in BPM per window");
  if (fs::is_regular_file(folder / "activity.npy")) {
    signals.activity = read_series(folder / "activity.npy", "activity id per window");
    require_per_window(folder / "activity.npy", signals.activity, signals.hr.size());
  }
  if (fs::is_regular_file(folder / "cadence.npy")) {
    signals.cadence_bpm = read_series(folder / "cadence.npy", "cadence in BPM per window");
    require_per_window(folder / "cadence.npy", signals.cadence_bpm, signals.hr.size());
  }
  return signals;
}

// Windows that fit in both signals and have a label.
int64_t window_count(const SubjectSignals& signals) {
  auto fitting = [](int64_t samples, int64_t window, int64_t shift) {
    return samples < window ? int64_t{0} : (samples - window) / shift + 1;
  };
  const auto ppg_samples = static_cast<int64_t>(signals.ppg.size());
  const auto acc_samples = static_cast<int64_t>(signals.acc.size() / 3);
  return std::min({static_cast<int64_t>(signals.hr.size()), fitting(ppg_samples, kPpgWindowSamples, kPpgShiftSamples),
                   fitting(acc_samples, kAccWindowSamples, kAccShiftSamples)});
}

// Accelerometer axis `axis` at 64 Hz: even samples are the 32 Hz samples, odd ones the midpoints
// (the last sample is held at the end of the recording).
std::vector<float> acc_at_ppg_rate(const std::vector<float>& acc, int axis) {
  const size_t samples = acc.size() / 3;
  std::vector<float> resampled(2 * samples);
  for (size_t m = 0; m < samples; ++m) {
    const float here = acc[3 * m + axis];
    const float next = m + 1 < samples ? acc[3 * (m + 1) + axis] : here;
    resampled[2 * m] = here;
    resampled[2 * m + 1] = 0.5f * (here + next);
  }
  return resampled;
}

// Zero mean, unit variance; a flat channel (no information) becomes zeros rather than noise / 0.
// Returns the variance it divided out.
double standardise(const float* samples, float* out) {
  double sum = 0;
  for (int64_t i = 0; i < kPpgWindowSamples; ++i) sum += samples[i];
  const double mean = sum / kPpgWindowSamples;
  double squares = 0;
  for (int64_t i = 0; i < kPpgWindowSamples; ++i) squares += (samples[i] - mean) * (samples[i] - mean);
  const double variance = squares / kPpgWindowSamples;
  const double deviation = std::sqrt(variance);
  const double scale = deviation > 1e-12 * std::max(1.0, std::abs(mean)) ? 1.0 / deviation : 0.0;
  for (int64_t i = 0; i < kPpgWindowSamples; ++i) out[i] = static_cast<float>((samples[i] - mean) * scale);
  return variance;
}

void append_subject(PpgDataset& dataset, int subject, const SubjectSignals& signals) {
  const int64_t windows = window_count(signals);
  const std::vector<float> axes[3] = {acc_at_ppg_rate(signals.acc, 0), acc_at_ppg_rate(signals.acc, 1),
                                      acc_at_ppg_rate(signals.acc, 2)};
  const int64_t first = dataset.size();
  dataset.windows.data.resize(static_cast<size_t>((first + windows) * kPpgChannels * kPpgWindowSamples));
  for (int64_t i = 0; i < windows; ++i) {
    float* out = dataset.windows.data.data() + (first + i) * kPpgChannels * kPpgWindowSamples;
    const int64_t start = i * kPpgShiftSamples;
    standardise(signals.ppg.data() + start, out);
    double acc_variance = 0;
    for (int axis = 0; axis < 3; ++axis) {
      acc_variance += standardise(axes[axis].data() + start, out + (axis + 1) * kPpgWindowSamples);
    }
    dataset.acc_rms_g.push_back(static_cast<float>(std::sqrt(acc_variance)));
    dataset.bpm.push_back(signals.hr[static_cast<size_t>(i)]);
    dataset.subject.push_back(subject);
    dataset.activity.push_back(signals.activity.empty() ? -1 : static_cast<int>(signals.activity[static_cast<size_t>(i)]));
    dataset.cadence_bpm.push_back(signals.cadence_bpm.empty() ? 0.0f : signals.cadence_bpm[static_cast<size_t>(i)]);
  }
}

void require_folder(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    throw DataError("PPG data not found: " + dir +
                    " is not a folder; convert PPG-DaLiA with scripts/dalia_to_npy.py or generate a set with "
                    "`gos data synth-ppg -o " + dir + "` (docs/ppg.md)");
  }
}

fs::path subject_folder(const std::string& dir, int subject) { return fs::path(dir) / ("S" + std::to_string(subject)); }

std::string subject_list(const std::vector<int>& subjects) {
  std::string text;
  for (int subject : subjects) text += (text.empty() ? "S" : ", S") + std::to_string(subject);
  return text;
}

}  // namespace

std::vector<int> ppg_split_subjects(Split split) {
  switch (split) {
    case Split::Train: return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    case Split::Validation: return {11, 12};
    case Split::Test: return {13, 14, 15};
  }
  return {};
}

PpgDataset load_ppg_subjects(const std::string& dir, const std::vector<int>& subjects) {
  require_folder(dir);
  PpgDataset dataset;
  bool any_cadence = false;
  for (int subject : subjects) {
    const fs::path folder = subject_folder(dir, subject);
    if (!fs::is_directory(folder)) throw DataError(folder.string() + " is missing: no subject S" + std::to_string(subject));
    SubjectSignals signals = read_subject(folder);
    any_cadence = any_cadence || !signals.cadence_bpm.empty();
    append_subject(dataset, subject, signals);
  }
  dataset.windows.shape = {dataset.size(), kPpgChannels, kPpgWindowSamples};
  if (!any_cadence) dataset.cadence_bpm.clear();
  return dataset;
}

std::vector<int> ppg_split_of(const std::vector<int>& present, Split split) {
  auto in_fixed_split = [&](Split part) {
    std::vector<int> found;
    for (int subject : ppg_split_subjects(part)) {
      if (std::find(present.begin(), present.end(), subject) != present.end()) found.push_back(subject);
    }
    return found;
  };
  const bool fixed_split_filled =
      !in_fixed_split(Split::Train).empty() && !in_fixed_split(Split::Validation).empty() && !in_fixed_split(Split::Test).empty();
  std::vector<int> sorted = present;
  std::sort(sorted.begin(), sorted.end());
  const int n = static_cast<int>(sorted.size());
  // Fewer than three cannot be split; they keep the fixed split (a folder of training subjects).
  if (fixed_split_filled || n < 3) return in_fixed_split(split);
  const int test = std::max(1, static_cast<int>(std::lround(n * 3.0 / 15)));
  const int validation = std::max(1, static_cast<int>(std::lround(n * 2.0 / 15)));
  const int train = n - test - validation;
  switch (split) {
    case Split::Train: return {sorted.begin(), sorted.begin() + train};
    case Split::Validation: return {sorted.begin() + train, sorted.begin() + train + validation};
    case Split::Test: return {sorted.end() - test, sorted.end()};
  }
  return {};
}

PpgDataset load_ppg(const std::string& dir, Split split) {
  require_folder(dir);
  std::vector<int> present;
  for (int subject = 1; subject <= kPpgSubjects; ++subject) {
    if (fs::is_directory(subject_folder(dir, subject))) present.push_back(subject);
  }
  const std::vector<int> subjects = ppg_split_of(present, split);
  if (subjects.empty()) {
    throw DataError(dir + " holds none of the " + std::string(to_string(split)) + " subjects (" +
                    subject_list(ppg_split_subjects(split)) + " as folders S<k>, or any 3 or more subjects, which are then split " +
                    "among themselves; docs/ppg.md)");
  }
  return load_ppg_subjects(dir, subjects);
}

std::string_view ppg_activity_name(int activity) {
  static constexpr std::string_view kNames[] = {"transient", "sitting", "stairs",  "table soccer", "cycling",
                                                "driving",   "lunch",   "walking", "working"};
  if (activity < 0 || activity >= static_cast<int>(std::size(kNames))) return "unknown";
  return kNames[activity];
}

bool cadence_near_heart_rate(float cadence_bpm, float heart_bpm, float within_bpm) {
  if (!(cadence_bpm > 0.0f)) return false;
  for (float multiple : {0.5f, 1.0f, 2.0f}) {
    if (std::abs(multiple * cadence_bpm - heart_bpm) <= within_bpm) return true;
  }
  return false;
}

}  // namespace gos::data
