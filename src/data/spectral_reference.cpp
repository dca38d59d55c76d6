// The classical reference (docs/ppg.md, "Classical reference"): spectral peak tracking of the PPG
// after removing the accelerometer's dominant frequencies. Simple on purpose: it shows what a
// network adds, above all where the motion's cadence sits near the heart rate and removing the
// motion removes the pulse too.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "data/data.h"

namespace gos::data {

namespace {

// The spectrum is evaluated by a direct DFT on a 1-BPM grid over the plausible heart rates
// (0.5-4 Hz): finer than the 7.5 BPM an 8 s window resolves, which zero-padding would also give.
constexpr int kLowBpm = 30, kHighBpm = 240;
constexpr int kBins = kHighBpm - kLowBpm + 1;
constexpr int64_t kSamples = kPpgWindowSamples;
// Below this motion the accelerometer is not consulted: at rest its spectrum holds only noise and
// small postural lines, whose harmonics would remove the pulse for nothing.
constexpr double kMotionThresholdG = 0.05;
// The accelerometer's spectrum, both scaled to a largest bin of 1, is subtracted from the PPG's;
// it holds the rhythm's harmonics itself. Light motion couples weakly into the PPG, so the
// subtraction grows with the motion up to kFullSubtractionG. (Subtracting it once more at twice
// its frequencies, for the artefact's own harmonics, was tried and made the error worse: it removes
// the pulse wherever the heart beats at twice the arm swing; docs/ppg.md.)
constexpr double kSubtractWeight = 1.0;
constexpr double kFullSubtractionG = 0.2;
// Tracking: the next estimate is the highest candidate within this of the previous one.
constexpr double kTrackWithinBpm = 15.0;
constexpr double kLeaveTrackRatio = 4.0;

// A Hann-windowed DFT basis, row b for kLowBpm + b beats per minute.
struct Basis {
  std::vector<float> cosine, sine;  // [kBins * kSamples]
  Basis() : cosine(kBins * kSamples), sine(kBins * kSamples) {
    for (int b = 0; b < kBins; ++b) {
      const double hz = (kLowBpm + b) / 60.0;
      for (int64_t n = 0; n < kSamples; ++n) {
        const double hann = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(n) / kSamples);
        const double angle = 2 * std::numbers::pi * hz * static_cast<double>(n) / kPpgHz;
        cosine[b * kSamples + n] = static_cast<float>(hann * std::cos(angle));
        sine[b * kSamples + n] = static_cast<float>(hann * std::sin(angle));
      }
    }
  }
};

const Basis& basis() {
  static const Basis instance;
  return instance;
}

// Eight independent partial sums, so the compiler can vectorise without reassociating.
float dot(const float* a, const float* b) {
  float lanes[8] = {};
  for (int64_t n = 0; n < kSamples; n += 8) {
    for (int k = 0; k < 8; ++k) lanes[k] += a[n + k] * b[n + k];
  }
  float sum = 0;
  for (float lane : lanes) sum += lane;
  return sum;
}

// Power per bin of one channel (its mean removed first, so no DC leaks into the low bins).
std::vector<double> power_spectrum(const float* samples) {
  double mean = 0;
  for (int64_t n = 0; n < kSamples; ++n) mean += samples[n];
  mean /= kSamples;
  float centred[kSamples];
  for (int64_t n = 0; n < kSamples; ++n) centred[n] = static_cast<float>(samples[n] - mean);
  const Basis& dft = basis();
  std::vector<double> power(kBins);
  for (int b = 0; b < kBins; ++b) {
    const double re = dot(centred, dft.cosine.data() + b * kSamples);
    const double im = dot(centred, dft.sine.data() + b * kSamples);
    power[b] = re * re + im * im;
  }
  return power;
}

// A peak inside the band: the band's edges are where low-frequency wander and the harmonics above
// leak in, not peaks.
bool is_local_maximum(const std::vector<double>& power, int b) {
  return b > 0 && b + 1 < kBins && power[b] >= power[b - 1] && power[b] > power[b + 1];
}

double bpm_of(int bin) { return kLowBpm + bin; }

// The summed axes' power per bin, scaled to a largest bin of 1.
std::vector<double> motion_spectrum(std::span<const float> window) {
  std::vector<double> power(kBins, 0.0);
  for (int axis = 1; axis <= 3; ++axis) {
    const std::vector<double> axis_power = power_spectrum(window.data() + axis * kSamples);
    for (int b = 0; b < kBins; ++b) power[b] += axis_power[b];
  }
  const double largest = *std::max_element(power.begin(), power.end());
  for (double& p : power) p = largest > 0 ? p / largest : 0.0;
  return power;
}

// The PPG's power scaled to a largest bin of 1, less the motion's where the wrist moves.
std::vector<double> cleaned_spectrum(std::span<const float> window, double acc_rms_g) {
  std::vector<double> power = power_spectrum(window.data());
  const double largest = *std::max_element(power.begin(), power.end());
  for (double& p : power) p = largest > 0 ? p / largest : 0.0;
  if (acc_rms_g < kMotionThresholdG) return power;
  const std::vector<double> motion = motion_spectrum(window);
  const double strength = std::min(1.0, acc_rms_g / kFullSubtractionG);
  for (int b = 0; b < kBins; ++b) power[b] -= strength * kSubtractWeight * motion[b];
  return power;
}

// The peak's position refined by a parabola through the log power of it and its neighbours.
double refined_bpm(const std::vector<double>& power, int b) {
  if (b == 0 || b + 1 == kBins || power[b - 1] <= 0 || power[b + 1] <= 0 || power[b] <= 0) return bpm_of(b);
  const double left = std::log(power[b - 1]), centre = std::log(power[b]), right = std::log(power[b + 1]);
  const double curvature = left - 2 * centre + right;
  if (curvature >= 0) return bpm_of(b);
  return bpm_of(b) + std::clamp(0.5 * (left - right) / curvature, -0.5, 0.5);
}

}  // namespace

double spectral_reference_bpm(std::span<const float> window, double acc_rms_g, std::optional<double> previous_bpm) {
  if (window.size() != static_cast<size_t>(kPpgChannels * kSamples)) {
    throw std::invalid_argument("spectral_reference_bpm: a window holds 4 x 512 samples; got " +
                                std::to_string(window.size()));
  }
  const std::vector<double> power = cleaned_spectrum(window, acc_rms_g);
  int strongest = -1, tracked = -1;
  for (int b = 0; b < kBins; ++b) {
    if (!is_local_maximum(power, b) || power[b] <= 0) continue;
    if (strongest < 0 || power[b] > power[strongest]) strongest = b;
    if (previous_bpm && std::abs(bpm_of(b) - *previous_bpm) <= kTrackWithinBpm &&
        (tracked < 0 || power[b] > power[tracked])) {
      tracked = b;
    }
  }
  // Stay on the track unless a peak elsewhere dwarfs it: the way back after the track was lost.
  if (tracked >= 0 && power[strongest] <= kLeaveTrackRatio * power[tracked]) return refined_bpm(power, tracked);
  if (strongest >= 0) return refined_bpm(power, strongest);
  // Nothing left to choose from: keep the track, or (first window) take the strongest bin.
  if (previous_bpm) return *previous_bpm;
  return refined_bpm(power, static_cast<int>(std::max_element(power.begin(), power.end()) - power.begin()));
}

std::vector<float> spectral_reference(const PpgDataset& dataset) {
  std::vector<float> estimates;
  estimates.reserve(static_cast<size_t>(dataset.size()));
  const int64_t stride = kPpgChannels * kSamples;
  std::optional<double> previous;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    if (i > 0 && dataset.subject[i] != dataset.subject[i - 1]) previous.reset();
    std::span<const float> window(dataset.windows.data.data() + i * stride, static_cast<size_t>(stride));
    previous = spectral_reference_bpm(window, dataset.acc_rms_g[i], previous);
    estimates.push_back(static_cast<float>(*previous));
  }
  return estimates;
}

PpgMae ppg_mae(const PpgDataset& dataset, std::span<const float> estimates, const std::vector<bool>& include) {
  if (estimates.size() != dataset.bpm.size() || (!include.empty() && include.size() != dataset.bpm.size())) {
    throw std::invalid_argument("ppg_mae: " + std::to_string(estimates.size()) + " estimates and " +
                                std::to_string(include.size()) + " flags for " + std::to_string(dataset.size()) +
                                " windows");
  }
  PpgMae mae;
  double total = 0;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    if (!include.empty() && !include[i]) continue;
    const double error = std::abs(static_cast<double>(estimates[i]) - dataset.bpm[i]);
    if (mae.subjects.empty() || mae.subjects.back().subject != dataset.subject[i]) {
      mae.subjects.push_back({dataset.subject[i], 0.0, 0});
    }
    mae.subjects.back().mae_bpm += error;
    ++mae.subjects.back().windows;
    total += error;
    ++mae.windows;
  }
  if (mae.windows > 0) mae.mae_bpm = total / static_cast<double>(mae.windows);
  for (auto& subject : mae.subjects) {
    subject.mae_bpm /= static_cast<double>(subject.windows);
    mae.mean_subject_mae_bpm += subject.mae_bpm / static_cast<double>(mae.subjects.size());
  }
  return mae;
}

}  // namespace gos::data
