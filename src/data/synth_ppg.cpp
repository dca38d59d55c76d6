// Synthetic wristband recordings in the PPG layout: a physiological model, not a replay of data.
// Every parameter is named here and listed with its value in docs/ppg.md ("Synthetic data"); keep
// the two in step. Randomness comes only from detail::Random (seeded per subject), so a seed gives
// the same bytes everywhere; this file is compiled without fused multiply-adds for the same reason.
//
// Per subject: an activity schedule (segments of a few minutes, transients between them); a heart
// rate that approaches each activity's target with first-order dynamics plus slow drift; beats
// with respiratory and random beat-to-beat variability; each beat a systolic wave and a smaller
// delayed dicrotic wave; respiration modulating the pulse amplitude; baseline wander; an
// accelerometer made of gravity, the activity's rhythm (steps, pedalling) with harmonics and arm
// swing, random limb motion and vibration; and a motion artefact in the PPG that is a low-passed
// copy of that motion, scaled per activity.
#include "data/synth_ppg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <numbers>

#include "data/data.h"
#include "data/npy.h"
#include "data/random.h"

namespace gos::data {

namespace {

using detail::SynthSegment;
using Vec3 = std::array<double, 3>;
constexpr double kPi = std::numbers::pi;
constexpr double kSampleSeconds = 1.0 / kPpgHz;

// ---- Activities ---------------------------------------------------------------------------------

enum ActivityId { kTransient = 0, kSitting = 1, kStairs = 2, kTableSoccer = 3, kCycling = 4, kDriving = 5,
                  kLunch = 6, kWalking = 7, kWorking = 8 };

struct Rhythm {              // periodic motion: steps or pedal strokes (low_hz == 0: none)
  double low_hz = 0, high_hz = 0;
  double amplitude_g = 0;    // of the fundamental
  std::array<double, 3> harmonics{};  // relative amplitudes at 1x, 2x, 3x the cadence
  double arm_swing_g = 0;    // at half the cadence: one arm swing per stride of two steps
  int locked_multiple = 0;   // which multiple of the cadence locked segments place near the heart rate (0: never)
};
struct Band {                // random motion: a sum of sinusoids in a band (rms_g == 0: none)
  double low_hz = 0, high_hz = 0, rms_g = 0;
};
struct ActivityProfile {
  int id;
  double heart_bpm;          // population-level target heart rate
  Rhythm rhythm;
  Band motion;               // limb motion
  Band vibration;            // road or engine vibration
  double artefact_gain;      // motion artefact strength in the PPG (walking: 1)
};

constexpr Band kNoBand{};
constexpr Rhythm kNoRhythm{};
constexpr ActivityProfile kProfiles[] = {
    {kTransient, 88, {1.4, 1.8, 0.20, {1.0, 0.5, 0.3}, 0.15, 1}, {0.3, 2.0, 0.03}, kNoBand, 0.8},
    {kSitting, 68, kNoRhythm, {0.1, 1.0, 0.01}, kNoBand, 0.05},
    {kStairs, 135, {1.4, 1.8, 0.25, {1.0, 0.5, 0.25}, 0.10, 0}, {0.3, 2.0, 0.03}, kNoBand, 1.0},
    {kTableSoccer, 95, kNoRhythm, {1.0, 4.0, 0.25}, kNoBand, 0.8},
    {kCycling, 120, {1.0, 1.5, 0.15, {1.0, 0.6, 0.3}, 0.0, 2}, {0.3, 2.0, 0.02}, {5.0, 12.0, 0.08}, 1.0},
    {kDriving, 78, kNoRhythm, {0.05, 0.5, 0.05}, {5.0, 12.0, 0.02}, 0.2},
    {kLunch, 82, kNoRhythm, {0.2, 1.5, 0.08}, kNoBand, 0.3},
    {kWalking, 102, {1.6, 2.0, 0.30, {1.0, 0.5, 0.3}, 0.20, 1}, {0.3, 2.0, 0.03}, kNoBand, 1.0},
    {kWorking, 75, kNoRhythm, {0.2, 2.0, 0.03}, kNoBand, 0.15},
};
// Indexed by id.
const ActivityProfile& profile(int activity) { return kProfiles[activity]; }

// ---- Parameters (docs/ppg.md lists them) ------------------------------------------------------

// Schedule
constexpr double kSegmentMinSeconds = 120, kSegmentMaxSeconds = 300;
constexpr double kTransientMinSeconds = 20, kTransientMaxSeconds = 60;
constexpr double kLockProbability = 0.4;   // of a rhythmic segment whose activity can lock
constexpr double kLockSpreadBpm = 6;       // locked: multiple x cadence = target +- this
constexpr double kLockRangeSlack = 0.15;   // locked cadences may leave the activity's range by this fraction
constexpr double kRampSeconds = 3;         // motion fades in and out at segment boundaries
// Heart rate
constexpr double kRestBpm = 68;
constexpr double kRestOffsetBpm = 8;       // subject's resting offset, uniform +-
constexpr double kExertionLow = 0.8, kExertionHigh = 1.2;  // subject's scale of the rise above rest
constexpr double kSegmentJitterBpm = 5;    // segment's target, uniform +-
constexpr double kRiseSeconds = 25, kRecoverySeconds = 50;
constexpr double kDriftBpm = 3, kDriftSeconds = 60;  // Ornstein-Uhlenbeck drift: deviation, time constant
constexpr double kMinBpm = 45, kMaxBpm = 190;
// Beats
constexpr double kRsaDepth = 0.03;         // respiratory sinus arrhythmia: interval modulation
constexpr double kBeatJitter = 0.02;       // random interval variation (standard deviation, fraction)
constexpr double kMinBeatSeconds = 0.3;
// Pulse shape, in fractions of the beat interval
constexpr double kSystolicAt = 0.18, kSystolicWidth = 0.07;
constexpr double kDicroticAtLow = 0.38, kDicroticAtHigh = 0.48, kDicroticWidth = 0.08;
constexpr double kDicroticRatioLow = 0.25, kDicroticRatioHigh = 0.5;
constexpr double kPulseBefore = 0.2, kPulseAfter = 0.95;  // where a beat's waves are evaluated
constexpr double kAmplitudeLow = 40, kAmplitudeHigh = 80;  // pulse amplitude, E4-like BVP units
// Respiration and baseline (amplitudes relative to the pulse amplitude)
constexpr double kBreathsLow = 12, kBreathsHigh = 16, kBreathsMax = 20;  // per minute
constexpr double kBreathsPerBpm = 0.08;    // faster breathing as the heart rate rises above rest
constexpr double kRespiratoryModulationLow = 0.1, kRespiratoryModulationHigh = 0.2;
constexpr double kRespiratoryBaseline = 0.1;
constexpr int kWanderComponents = 3;
constexpr double kWanderLowHz = 0.02, kWanderHighHz = 0.3, kWanderLow = 0.1, kWanderHigh = 0.3;
// Motion
constexpr int kBandComponents = 6;         // sinusoids per axis in a random-motion band
constexpr double kEnvelopeLowHz = 0.02, kEnvelopeHighHz = 0.1;  // how fast they swell and fade
constexpr double kCadenceWander = 0.03, kCadenceWanderSeconds = 20;
constexpr double kArtefactReferenceG = 0.2;  // motion that gives an artefact as large as the pulse at gain 1
constexpr double kArtefactMagnitudeWeight = 0.5;  // |motion| next to its projection on the sensor's axis
constexpr double kArtefactCutoffHz = 5;
constexpr double kArtefactSpreadLow = 0.6, kArtefactSpreadHigh = 1.4;  // per segment
// Sensor noise
constexpr double kPpgNoise = 0.03;         // of the pulse amplitude
constexpr double kAccNoiseG = 0.01;

// ---- Helpers ------------------------------------------------------------------------------------

// Well-mixed state per (seed, subject): SplitMix64 streams from nearby states are shifted copies.
uint64_t mix(uint64_t value) {
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

Vec3 random_direction(detail::Random& random) {
  Vec3 v{random.normal(), random.normal(), random.normal()};
  double norm = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
  if (norm < 1e-9) return {0, 0, 1};
  for (double& x : v) x /= norm;
  return v;
}

struct Wave {
  double hz, phase, amplitude;
  double at(double t) const { return amplitude * std::sin(2 * kPi * hz * t + phase); }
};

// One component of random motion on one axis: a sinusoid whose amplitude swells and fades, so
// that irregular motion does not look like a steady tone for minutes.
struct BandComponent {
  int axis;
  Wave wave;
  Wave envelope;  // the amplitude is wave.amplitude * (1 + sin(envelope)) / 2
  double at(double t) const { return wave.at(t) * 0.5 * (1.0 + std::sin(2 * kPi * envelope.hz * t + envelope.phase)); }
};

void add_band(detail::Random& random, const Band& band, std::vector<BandComponent>& out) {
  if (band.rms_g <= 0) return;
  // K enveloped sinusoids of amplitude a have an rms of a * sqrt(K / 2 * 3 / 8).
  const double amplitude = band.rms_g * std::sqrt(2.0 / kBandComponents * 8.0 / 3.0);
  for (int axis = 0; axis < 3; ++axis) {
    for (int k = 0; k < kBandComponents; ++k) {
      Wave wave{random.uniform(band.low_hz, band.high_hz), random.uniform(0, 2 * kPi), amplitude};
      Wave envelope{random.uniform(kEnvelopeLowHz, kEnvelopeHighHz), random.uniform(0, 2 * kPi), 1.0};
      out.push_back({axis, wave, envelope});
    }
  }
}

// ---- The subject --------------------------------------------------------------------------------

struct Traits {
  double rest_bpm;
  double exertion;
  double amplitude;
  double dicrotic_at, dicrotic_ratio;
  double breaths_per_minute, respiratory_modulation;
  std::array<Wave, kWanderComponents> wander;
  Vec3 artefact_axis;
};

Traits draw_traits(detail::Random& random) {
  Traits traits;
  traits.rest_bpm = kRestBpm + random.uniform(-kRestOffsetBpm, kRestOffsetBpm);
  traits.exertion = random.uniform(kExertionLow, kExertionHigh);
  traits.amplitude = random.uniform(kAmplitudeLow, kAmplitudeHigh);
  traits.dicrotic_at = random.uniform(kDicroticAtLow, kDicroticAtHigh);
  traits.dicrotic_ratio = random.uniform(kDicroticRatioLow, kDicroticRatioHigh);
  traits.breaths_per_minute = random.uniform(kBreathsLow, kBreathsHigh);
  traits.respiratory_modulation = random.uniform(kRespiratoryModulationLow, kRespiratoryModulationHigh);
  for (auto& wander : traits.wander) {
    wander = {random.uniform(kWanderLowHz, kWanderHighHz), random.uniform(0, 2 * kPi), random.uniform(kWanderLow, kWanderHigh)};
  }
  traits.artefact_axis = random_direction(random);
  return traits;
}

// What a segment moves like, beyond its SynthSegment summary.
struct SegmentMotion {
  Vec3 gravity;                    // direction of gravity in the sensor's frame
  Vec3 step_axis, swing_axis;      // directions of the rhythm and of the arm swing
  std::array<double, 3> harmonic_phase;
  double swing_phase;
  std::vector<BandComponent> random_motion;  // limb motion and vibration
  double artefact_gain;
};

SynthSegment draw_segment(detail::Random& random, const Traits& traits, int activity, double start, double seconds) {
  const ActivityProfile& p = profile(activity);
  SynthSegment segment;
  segment.activity = activity;
  segment.start_seconds = start;
  segment.end_seconds = start + seconds;
  segment.target_bpm = traits.rest_bpm + traits.exertion * (p.heart_bpm - kRestBpm) +
                       random.uniform(-kSegmentJitterBpm, kSegmentJitterBpm);
  if (p.rhythm.low_hz > 0) {
    segment.cadence_hz = random.uniform(p.rhythm.low_hz, p.rhythm.high_hz);
    if (p.rhythm.locked_multiple > 0 && random.uniform() < kLockProbability) {
      const double near_bpm = segment.target_bpm + random.uniform(-kLockSpreadBpm, kLockSpreadBpm);
      segment.cadence_hz = std::clamp(near_bpm / 60.0 / p.rhythm.locked_multiple, p.rhythm.low_hz * (1 - kLockRangeSlack),
                                      p.rhythm.high_hz * (1 + kLockRangeSlack));
      segment.cadence_locked = true;
    }
  }
  return segment;
}

// Sitting first (the calm baseline PPG-DaLiA's protocol also starts with), then the other
// activities in a random order, repeated as time allows, with a transient before each.
std::vector<SynthSegment> draw_schedule(detail::Random& random, const Traits& traits, double duration) {
  std::vector<SynthSegment> schedule;
  double at = 0;
  std::vector<int> pending{kSitting};
  while (at < duration) {
    if (pending.empty()) {
      pending = {kStairs, kTableSoccer, kCycling, kDriving, kLunch, kWalking, kWorking};
      random.shuffle(pending);
    }
    if (!schedule.empty()) {
      double seconds = random.uniform(kTransientMinSeconds, kTransientMaxSeconds);
      schedule.push_back(draw_segment(random, traits, kTransient, at, seconds));
      at += seconds;
    }
    double seconds = random.uniform(kSegmentMinSeconds, kSegmentMaxSeconds);
    schedule.push_back(draw_segment(random, traits, pending.front(), at, seconds));
    pending.erase(pending.begin());
    at += seconds;
  }
  while (schedule.size() > 1 && schedule.back().start_seconds >= duration) schedule.pop_back();
  schedule.back().end_seconds = duration;
  return schedule;
}

SegmentMotion draw_motion(detail::Random& random, const SynthSegment& segment) {
  const ActivityProfile& p = profile(segment.activity);
  SegmentMotion motion;
  motion.gravity = random_direction(random);
  motion.step_axis = random_direction(random);
  motion.swing_axis = random_direction(random);
  for (double& phase : motion.harmonic_phase) phase = random.uniform(0, 2 * kPi);
  motion.swing_phase = random.uniform(0, 2 * kPi);
  add_band(random, p.motion, motion.random_motion);
  add_band(random, p.vibration, motion.random_motion);
  motion.artefact_gain = p.artefact_gain * random.uniform(kArtefactSpreadLow, kArtefactSpreadHigh);
  return motion;
}

// Per-sample (64 Hz) quantities shared by the signals.
struct Timeline {
  std::vector<int> segment;        // index into the schedule
  std::vector<double> heart_bpm;
  std::vector<double> breath_phase;
};

Timeline draw_timeline(detail::Random& random, const Traits& traits, const std::vector<SynthSegment>& schedule,
                       int64_t samples) {
  Timeline timeline;
  timeline.segment.resize(samples);
  timeline.heart_bpm.resize(samples);
  timeline.breath_phase.resize(samples);
  size_t s = 0;
  double heart = schedule.front().target_bpm;
  double drift = 0;
  double phase = random.uniform(0, 2 * kPi);
  const double drift_step = kDriftBpm * std::sqrt(2.0 * kSampleSeconds / kDriftSeconds);
  for (int64_t j = 0; j < samples; ++j) {
    const double t = static_cast<double>(j) * kSampleSeconds;
    while (s + 1 < schedule.size() && t >= schedule[s + 1].start_seconds) ++s;
    timeline.segment[j] = static_cast<int>(s);
    const double target = schedule[s].target_bpm;
    heart += (target - heart) * kSampleSeconds / (target > heart ? kRiseSeconds : kRecoverySeconds);
    drift += -drift * kSampleSeconds / kDriftSeconds + drift_step * random.normal();
    const double bpm = std::clamp(heart + drift, kMinBpm, kMaxBpm);
    timeline.heart_bpm[j] = bpm;
    const double breaths = std::clamp(traits.breaths_per_minute + kBreathsPerBpm * (bpm - traits.rest_bpm),
                                      kBreathsLow, kBreathsMax);
    timeline.breath_phase[j] = phase;
    phase = std::fmod(phase + 2 * kPi * breaths / 60.0 * kSampleSeconds, 2 * kPi);
  }
  return timeline;
}

struct Beat {
  double at;        // seconds
  double interval;  // seconds to the next beat
};

std::vector<Beat> draw_beats(detail::Random& random, const Timeline& timeline, double duration) {
  const auto samples = static_cast<int64_t>(timeline.heart_bpm.size());
  auto sample_at = [&](double t) {
    return std::clamp(static_cast<int64_t>(std::floor(t * kPpgHz)), int64_t{0}, samples - 1);
  };
  std::vector<Beat> beats;
  double t = -random.uniform() * 60.0 / timeline.heart_bpm.front();
  while (t < duration + 1.0) {
    const int64_t j = sample_at(t);
    const double interval =
        std::max(kMinBeatSeconds, 60.0 / timeline.heart_bpm[j] *
                                      (1.0 + kRsaDepth * std::sin(timeline.breath_phase[j]) + kBeatJitter * random.normal()));
    beats.push_back({t, interval});
    t += interval;
  }
  return beats;
}

// Motion fades in over the first seconds of a segment and out over its last ones, except at the
// ends of the recording.
double ramp(const std::vector<SynthSegment>& schedule, size_t s, double t) {
  double in = s == 0 ? 1.0 : (t - schedule[s].start_seconds) / kRampSeconds;
  double out = s + 1 == schedule.size() ? 1.0 : (schedule[s].end_seconds - t) / kRampSeconds;
  return std::clamp(std::min(in, out), 0.0, 1.0);
}

struct MotionSignals {
  std::vector<Vec3> acceleration;  // 64 Hz, gravity plus motion, no noise
  std::vector<double> artefact;    // 64 Hz, in pulse amplitudes
  std::vector<double> cadence_hz;  // 64 Hz, 0 without a rhythm
};

MotionSignals draw_motion_signals(detail::Random& random, const Traits& traits, const std::vector<SynthSegment>& schedule,
                                  const Timeline& timeline) {
  std::vector<SegmentMotion> motions;
  for (const auto& segment : schedule) motions.push_back(draw_motion(random, segment));
  const size_t samples = timeline.segment.size();
  MotionSignals signals;
  signals.acceleration.resize(samples);
  signals.artefact.resize(samples);
  signals.cadence_hz.resize(samples);
  double theta = 0, wander = 0, low_passed = 0;
  const double wander_step = std::sqrt(2.0 * kSampleSeconds / kCadenceWanderSeconds);
  const double alpha = kSampleSeconds / (kSampleSeconds + 1.0 / (2 * kPi * kArtefactCutoffHz));
  for (size_t j = 0; j < samples; ++j) {
    const double t = static_cast<double>(j) * kSampleSeconds;
    const auto s = static_cast<size_t>(timeline.segment[j]);
    const SynthSegment& segment = schedule[s];
    const SegmentMotion& motion = motions[s];
    const Rhythm& rhythm = profile(segment.activity).rhythm;
    const double fade = ramp(schedule, s, t);

    wander += -wander * kSampleSeconds / kCadenceWanderSeconds + wander_step * random.normal();
    const double cadence = segment.cadence_hz * (1.0 + kCadenceWander * wander);
    theta = std::fmod(theta + 2 * kPi * cadence * kSampleSeconds, 4 * kPi);  // 4 pi: the half-cadence swing stays continuous
    signals.cadence_hz[j] = cadence;

    Vec3 dynamic{0, 0, 0};
    if (segment.cadence_hz > 0) {
      double step = 0;
      for (int h = 0; h < 3; ++h) step += rhythm.harmonics[h] * std::sin((h + 1) * theta + motion.harmonic_phase[h]);
      const double swing = rhythm.arm_swing_g * std::sin(0.5 * theta + motion.swing_phase);
      for (int a = 0; a < 3; ++a) dynamic[a] += rhythm.amplitude_g * step * motion.step_axis[a] + swing * motion.swing_axis[a];
    }
    for (const BandComponent& component : motion.random_motion) dynamic[component.axis] += component.at(t);
    for (double& a : dynamic) a *= fade;

    // Gravity turns from the previous segment's orientation to this one's during the fade-in.
    Vec3 gravity = motion.gravity;
    if (s > 0) {
      const double turned = std::clamp((t - segment.start_seconds) / kRampSeconds, 0.0, 1.0);
      Vec3 mixed;
      for (int a = 0; a < 3; ++a) mixed[a] = (1 - turned) * motions[s - 1].gravity[a] + turned * motion.gravity[a];
      const double norm = std::sqrt(mixed[0] * mixed[0] + mixed[1] * mixed[1] + mixed[2] * mixed[2]);
      if (norm > 1e-3) {
        for (int a = 0; a < 3; ++a) gravity[a] = mixed[a] / norm;
      }
    }
    for (int a = 0; a < 3; ++a) signals.acceleration[j][a] = gravity[a] + dynamic[a];

    // The artefact: how the sensor presses on and slides over the skin, low-passed by the tissue.
    double projected = 0, magnitude = 0;
    for (int a = 0; a < 3; ++a) {
      projected += traits.artefact_axis[a] * dynamic[a];
      magnitude += dynamic[a] * dynamic[a];
    }
    const double raw = projected + kArtefactMagnitudeWeight * std::sqrt(magnitude);
    low_passed += alpha * (raw - low_passed);
    signals.artefact[j] = motion.artefact_gain * low_passed / kArtefactReferenceG;
  }
  return signals;
}

std::vector<double> draw_pulses(const Traits& traits, const Timeline& timeline, const std::vector<Beat>& beats) {
  const auto samples = static_cast<int64_t>(timeline.segment.size());
  std::vector<double> pulses(static_cast<size_t>(samples), 0.0);
  for (const Beat& beat : beats) {
    const double period = beat.interval;
    const auto first = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((beat.at - kPulseBefore * period) * kPpgHz)));
    const auto last = std::min<int64_t>(samples - 1, static_cast<int64_t>(std::floor((beat.at + kPulseAfter * period) * kPpgHz)));
    for (int64_t j = first; j <= last; ++j) {
      const double phase = (static_cast<double>(j) * kSampleSeconds - beat.at) / period;
      const double systolic = (phase - kSystolicAt) / kSystolicWidth;
      const double dicrotic = (phase - traits.dicrotic_at) / kDicroticWidth;
      pulses[j] += std::exp(-0.5 * systolic * systolic) + traits.dicrotic_ratio * std::exp(-0.5 * dicrotic * dicrotic);
    }
  }
  return pulses;
}

std::vector<float> draw_ppg(detail::Random& random, const Traits& traits, const Timeline& timeline,
                            const std::vector<double>& pulses, const MotionSignals& motion) {
  std::vector<float> ppg(pulses.size());
  for (size_t j = 0; j < ppg.size(); ++j) {
    const double t = static_cast<double>(j) * kSampleSeconds;
    const double breath = std::sin(timeline.breath_phase[j]);
    double value = pulses[j] * (1.0 + traits.respiratory_modulation * breath) + kRespiratoryBaseline * breath;
    for (const Wave& wander : traits.wander) value += wander.at(t);
    value += motion.artefact[j] + kPpgNoise * random.normal();
    ppg[j] = static_cast<float>(traits.amplitude * value);
  }
  return ppg;
}

std::vector<float> draw_acc(detail::Random& random, const MotionSignals& motion) {
  // The 32 Hz accelerometer samples the same motion at every other 64 Hz instant.
  const size_t samples = motion.acceleration.size() / 2;
  std::vector<float> acc(3 * samples);
  for (size_t m = 0; m < samples; ++m) {
    for (int a = 0; a < 3; ++a) acc[3 * m + a] = static_cast<float>(motion.acceleration[2 * m][a] + kAccNoiseG * random.normal());
  }
  return acc;
}

// What the ECG gives: 60 over the mean interval of the beats whose intervals lie in the window.
float window_heart_rate(const std::vector<Beat>& beats, double start, double end) {
  double sum = 0;
  int count = 0;
  for (const Beat& beat : beats) {
    if (beat.at >= start && beat.at + beat.interval <= end) {
      sum += beat.interval;
      ++count;
    }
  }
  return static_cast<float>(60.0 * count / sum);
}

int window_activity(const std::vector<SynthSegment>& schedule, double start) {
  // PPG-DaLiA labels activity at 4 Hz; a window takes the most frequent (the lower id on a tie).
  constexpr int kActivityHz = 4;
  std::array<int, std::size(kProfiles)> votes{};
  for (int q = 0; q < kActivityHz * kPpgWindowSeconds; ++q) {
    const double t = start + static_cast<double>(q) / kActivityHz;
    auto it = std::find_if(schedule.rbegin(), schedule.rend(), [&](const SynthSegment& s) { return t >= s.start_seconds; });
    ++votes[it == schedule.rend() ? schedule.front().activity : it->activity];
  }
  return static_cast<int>(std::max_element(votes.begin(), votes.end()) - votes.begin());
}

}  // namespace

namespace detail {

SynthSubject synthesize_subject(uint64_t seed, int subject, int minutes) {
  Random random(mix(mix(seed) + static_cast<uint64_t>(subject)));
  const double duration = 60.0 * minutes;
  const int64_t samples = int64_t{minutes} * 60 * kPpgHz;
  const Traits traits = draw_traits(random);

  SynthSubject out;
  out.schedule = draw_schedule(random, traits, duration);
  const Timeline timeline = draw_timeline(random, traits, out.schedule, samples);
  const std::vector<Beat> beats = draw_beats(random, timeline, duration);
  const MotionSignals motion = draw_motion_signals(random, traits, out.schedule, timeline);
  out.ppg = draw_ppg(random, traits, timeline, draw_pulses(traits, timeline, beats), motion);
  out.acc = draw_acc(random, motion);

  const int64_t windows = (int64_t{minutes} * 60 - kPpgWindowSeconds) / kPpgShiftSeconds + 1;
  for (int64_t i = 0; i < windows; ++i) {
    const double start = static_cast<double>(i * kPpgShiftSeconds);
    out.hr.push_back(window_heart_rate(beats, start, start + kPpgWindowSeconds));
    out.activity.push_back(window_activity(out.schedule, start));
    double cadence = 0;
    const int64_t first = i * kPpgShiftSeconds * kPpgHz;
    for (int64_t j = first; j < first + kPpgWindowSamples; ++j) cadence += motion.cadence_hz[j];
    out.cadence_bpm.push_back(static_cast<float>(60.0 * cadence / kPpgWindowSamples));
  }
  return out;
}

}  // namespace detail

PpgSynthSummary synthesize_ppg(const PpgSynthOptions& options, const std::string& dir) {
  if (options.subjects < 1 || options.subjects > kPpgSubjects) {
    throw DataError("synthetic PPG: --subjects must be 1 to " + std::to_string(kPpgSubjects) + " (PPG-DaLiA's S1..S15); got " +
                    std::to_string(options.subjects));
  }
  if (options.minutes < 1 || options.minutes > kPpgSynthMaxMinutes) {
    throw DataError("synthetic PPG: --minutes must be 1 to " + std::to_string(kPpgSynthMaxMinutes) + "; got " +
                    std::to_string(options.minutes));
  }
  namespace fs = std::filesystem;
  PpgSynthSummary summary{options.subjects, options.minutes, 0};
  for (int subject = 1; subject <= options.subjects; ++subject) {
    const fs::path folder = fs::path(dir) / ("S" + std::to_string(subject));
    std::error_code error;
    fs::create_directories(folder, error);
    if (error || !fs::is_directory(folder)) {
      throw DataError("cannot create " + folder.string() + " (" + (error ? error.message() : "not a folder") +
                      "): pass -o a folder you can write");
    }
    const detail::SynthSubject data = detail::synthesize_subject(options.seed, subject, options.minutes);
    const auto windows = static_cast<int64_t>(data.hr.size());
    write_npy((folder / "ppg.npy").string(), {static_cast<int64_t>(data.ppg.size())}, data.ppg);
    write_npy((folder / "acc.npy").string(), {static_cast<int64_t>(data.acc.size() / 3), 3}, data.acc);
    write_npy((folder / "hr.npy").string(), {windows}, data.hr);
    write_npy((folder / "activity.npy").string(), {windows}, data.activity);
    write_npy((folder / "cadence.npy").string(), {windows}, data.cadence_bpm);
    summary.windows += windows;
  }
  return summary;
}

}  // namespace gos::data
