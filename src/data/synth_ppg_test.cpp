// The synthetic PPG generator: reproducible to the byte, in the layout, and physiologically
// plausible where it matters for pulse-rate estimation: the pulse shows the heart rate at rest,
// the accelerometer carries the cadence, motion reaches the PPG, and the cadence sometimes sits
// near the heart rate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numbers>

#include "data/data.h"
#include "data/npy.h"
#include "data/ppg_test_set.h"
#include "data/synth_ppg.h"
#include "util/scratch_folder.h"
#include "util/stable_hash.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;
using testing::synthetic_ppg_windows;

constexpr const char* kFiles[] = {"ppg.npy", "acc.npy", "hr.npy", "activity.npy", "cadence.npy"};

std::string bytes_of(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

const float* channel(const PpgDataset& dataset, int64_t window, int64_t channel_index) {
  return dataset.windows.data.data() + (window * kPpgChannels + channel_index) * kPpgWindowSamples;
}

// Power of a Hann-windowed window at 30, 31, ..., 240 BPM: a direct DFT, independent of the
// reference estimator's.
constexpr int kLowBpm = 30, kBins = 211;

std::vector<double> spectrum(const float* samples) {
  static const std::vector<double> basis = [] {
    std::vector<double> table(2 * kBins * kPpgWindowSamples);
    for (int b = 0; b < kBins; ++b) {
      for (int64_t n = 0; n < kPpgWindowSamples; ++n) {
        const double hann = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * n / kPpgWindowSamples);
        const double angle = 2 * std::numbers::pi * (kLowBpm + b) / 60.0 * n / kPpgHz;
        table[(2 * b) * kPpgWindowSamples + n] = hann * std::cos(angle);
        table[(2 * b + 1) * kPpgWindowSamples + n] = hann * std::sin(angle);
      }
    }
    return table;
  }();
  std::vector<double> power(kBins);
  for (int b = 0; b < kBins; ++b) {
    double re = 0, im = 0;
    for (int64_t n = 0; n < kPpgWindowSamples; ++n) {
      re += samples[n] * basis[(2 * b) * kPpgWindowSamples + n];
      im += samples[n] * basis[(2 * b + 1) * kPpgWindowSamples + n];
    }
    power[b] = re * re + im * im;
  }
  return power;
}

double peak_bpm(const std::vector<double>& power) {
  return kLowBpm + static_cast<double>(std::max_element(power.begin(), power.end()) - power.begin());
}

double dominant_bpm(const float* samples) { return peak_bpm(spectrum(samples)); }

std::vector<int64_t> windows_of_activity(const PpgDataset& dataset, int activity) {
  std::vector<int64_t> found;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    if (dataset.activity[i] == activity) found.push_back(i);
  }
  return found;
}

class SynthPpg : public ::testing::Test {
 protected:
  util::ScratchFolder scratch_{"gos-synth-ppg"};
  std::string folder(const std::string& name) const { return scratch_.file(name).string(); }
};

TEST_F(SynthPpg, SameSeedGivesTheSameBytesAndAnotherSeedOtherData) {
  synthesize_ppg({.subjects = 2, .minutes = 1, .seed = 7}, folder("a"));
  synthesize_ppg({.subjects = 2, .minutes = 1, .seed = 7}, folder("b"));
  synthesize_ppg({.subjects = 2, .minutes = 1, .seed = 8}, folder("c"));
  for (const char* subject : {"S1", "S2"}) {
    for (const char* file : kFiles) {
      EXPECT_EQ(bytes_of(scratch_.file("a") / subject / file), bytes_of(scratch_.file("b") / subject / file))
          << subject << "/" << file;
    }
    EXPECT_NE(read_npy((scratch_.file("a") / subject / "ppg.npy").string()).values,
              read_npy((scratch_.file("c") / subject / "ppg.npy").string()).values);
    EXPECT_NE(read_npy((scratch_.file("a") / subject / "hr.npy").string()).values,
              read_npy((scratch_.file("c") / subject / "hr.npy").string()).values);
  }
  EXPECT_NE(read_npy((scratch_.file("a") / "S1" / "ppg.npy").string()).values,
            read_npy((scratch_.file("a") / "S2" / "ppg.npy").string()).values)
      << "subjects differ";
}

TEST_F(SynthPpg, ASubjectDoesNotDependOnHowManyAreWritten) {
  synthesize_ppg({.subjects = 1, .minutes = 1, .seed = 3}, folder("one"));
  synthesize_ppg({.subjects = 3, .minutes = 1, .seed = 3}, folder("three"));
  for (const char* file : kFiles) {
    EXPECT_EQ(bytes_of(scratch_.file("one") / "S1" / file), bytes_of(scratch_.file("three") / "S1" / file)) << file;
  }
}

// The bytes a seed gives are fixed: on another machine, or after a change to the generator. When
// the generator is changed on purpose, update these hashes (and say so in the commit).
TEST_F(SynthPpg, SeedOneGivesTheRecordedBytes) {
  synthesize_ppg({.subjects = 1, .minutes = 1, .seed = 1}, folder("golden"));
  std::string all;
  for (const char* file : kFiles) all += bytes_of(scratch_.file("golden") / "S1" / file);
  EXPECT_EQ(util::stable_hash_hex(all), "8ab1109df34b9846");
}

TEST_F(SynthPpg, WritesTheLayout) {
  PpgSynthSummary summary = synthesize_ppg({.subjects = 2, .minutes = 1, .seed = 1}, folder("set"));
  EXPECT_EQ(summary.subjects, 2);
  EXPECT_EQ(summary.minutes, 1);
  EXPECT_EQ(summary.windows, 2 * 27) << "(60 - 8) / 2 + 1 windows per minute-long subject";
  for (const char* subject : {"S1", "S2"}) {
    const fs::path dir = scratch_.file("set") / subject;
    NpyArray ppg = read_npy((dir / "ppg.npy").string());
    EXPECT_EQ(ppg.shape, (std::vector<int64_t>{60 * 64}));
    EXPECT_EQ(ppg.stored, NpyType::Float32);
    EXPECT_EQ(read_npy((dir / "acc.npy").string()).shape, (std::vector<int64_t>{60 * 32, 3}));
    EXPECT_EQ(read_npy((dir / "hr.npy").string()).shape, (std::vector<int64_t>{27}));
    NpyArray activity = read_npy((dir / "activity.npy").string());
    EXPECT_EQ(activity.shape, (std::vector<int64_t>{27}));
    EXPECT_EQ(activity.stored, NpyType::Int32);
    EXPECT_EQ(read_npy((dir / "cadence.npy").string()).shape, (std::vector<int64_t>{27}));
  }
  EXPECT_EQ(load_ppg(folder("set"), Split::Train).size(), 2 * 27);
  EXPECT_THROW(load_ppg(folder("set"), Split::Test), DataError) << "S13..S15 were not written";
}

TEST_F(SynthPpg, RefusesOptionsOutOfRangeAndAnUnwritableFolder) {
  auto error_of = [&](PpgSynthOptions options, const std::string& dir) -> std::string {
    try {
      synthesize_ppg(options, dir);
    } catch (const DataError& error) {
      return error.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error_of({.subjects = 0}, folder("x")), "synthetic PPG: --subjects must be 1 to 15 (PPG-DaLiA's S1..S15); got 0");
  EXPECT_EQ(error_of({.subjects = 16}, folder("x")), "synthetic PPG: --subjects must be 1 to 15 (PPG-DaLiA's S1..S15); got 16");
  EXPECT_EQ(error_of({.subjects = 1, .minutes = 0}, folder("x")), "synthetic PPG: --minutes must be 1 to 600; got 0");
  std::ofstream(scratch_.file("a-file")) << "not a folder";
  const std::string under_a_file = folder("a-file") + "/set";
  EXPECT_EQ(error_of({.subjects = 1, .minutes = 1}, under_a_file).rfind("cannot create " + under_a_file + "/S1 (", 0), 0u)
      << error_of({.subjects = 1, .minutes = 1}, under_a_file);
}

TEST(SynthPpgPhysiology, HeartRateStaysPhysiologicalAndFollowsTheActivity) {
  const PpgDataset& dataset = synthetic_ppg_windows();
  std::map<int, double> sum;
  std::map<int, int> count;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    EXPECT_GE(dataset.bpm[i], 40.0f);
    EXPECT_LE(dataset.bpm[i], 200.0f);
    sum[dataset.activity[i]] += dataset.bpm[i];
    ++count[dataset.activity[i]];
  }
  auto mean = [&](int activity) { return sum[activity] / count[activity]; };
  ASSERT_GT(count[1], 0);
  ASSERT_GT(count[7], 0);
  ASSERT_GT(count[2], 0);
  EXPECT_GT(mean(1), 55.0);
  EXPECT_LT(mean(1), 80.0) << "sitting";
  EXPECT_GT(mean(7), mean(1) + 15) << "walking raises the heart rate";
  EXPECT_GT(mean(2), mean(7) + 10) << "stairs raise it more";
}

TEST(SynthPpgPhysiology, AtRestThePulseShowsTheHeartRate) {
  const PpgDataset& dataset = synthetic_ppg_windows();
  const auto sitting = windows_of_activity(dataset, 1);
  ASSERT_GT(sitting.size(), 50u);
  int close = 0;
  for (int64_t i : sitting) close += std::abs(dominant_bpm(channel(dataset, i, 0)) - dataset.bpm[i]) <= 3.0;
  EXPECT_GE(close, 0.95 * sitting.size()) << close << " of " << sitting.size() << " sitting windows";
}

TEST(SynthPpgPhysiology, TheAccelerometerCarriesGravityAndTheCadence) {
  detail::SynthSubject subject = detail::synthesize_subject(1, 1, 3);  // starts sitting
  double magnitude = 0;
  const size_t samples = subject.acc.size() / 3;
  for (size_t m = 0; m < samples; ++m) {
    magnitude += std::sqrt(subject.acc[3 * m] * subject.acc[3 * m] + subject.acc[3 * m + 1] * subject.acc[3 * m + 1] +
                           subject.acc[3 * m + 2] * subject.acc[3 * m + 2]);
  }
  EXPECT_NEAR(magnitude / samples, 1.0, 0.05) << "gravity, in g";

  const PpgDataset& dataset = synthetic_ppg_windows();
  const auto walking = windows_of_activity(dataset, 7);
  ASSERT_GT(walking.size(), 50u);
  int on_cadence = 0;
  double walking_motion = 0;
  for (int64_t i : walking) {
    std::vector<double> power(kBins, 0.0);
    for (int axis = 1; axis <= 3; ++axis) {
      const std::vector<double> axis_power = spectrum(channel(dataset, i, axis));
      for (int b = 0; b < kBins; ++b) power[b] += axis_power[b];
    }
    const double best_bpm = peak_bpm(power);
    const double cadence = dataset.cadence_bpm[i];
    on_cadence += std::abs(best_bpm - cadence) <= 3 || std::abs(best_bpm - cadence / 2) <= 3 ||
                  std::abs(best_bpm - 2 * cadence) <= 3;
    walking_motion += dataset.acc_rms_g[i] / walking.size();
  }
  EXPECT_GE(on_cadence, 0.9 * walking.size()) << "the accelerometer peaks at the cadence, its half or its double";
  double sitting_motion = 0;
  const auto sitting = windows_of_activity(dataset, 1);
  for (int64_t i : sitting) sitting_motion += dataset.acc_rms_g[i] / sitting.size();
  EXPECT_GT(walking_motion, 5 * sitting_motion);
}

TEST(SynthPpgPhysiology, MotionCorruptsThePulse) {
  const PpgDataset& dataset = synthetic_ppg_windows();
  const auto walking = windows_of_activity(dataset, 7);
  int close = 0;
  for (int64_t i : walking) close += std::abs(dominant_bpm(channel(dataset, i, 0)) - dataset.bpm[i]) <= 3.0;
  EXPECT_LT(close, 0.7 * walking.size()) << "walking: the PPG's strongest frequency is often not the heart's";
}

TEST(SynthPpgPhysiology, TheCadenceSometimesSitsNearTheHeartRate) {
  const PpgDataset& dataset = synthetic_ppg_windows();
  int near = 0;
  for (int64_t i = 0; i < dataset.size(); ++i) near += cadence_near_heart_rate(dataset.cadence_bpm[i], dataset.bpm[i]);
  EXPECT_GE(near, 0.05 * dataset.size()) << near << " of " << dataset.size() << " windows";
  int locked = 0;
  for (int subject = 1; subject <= testing::kTestSetSubjects; ++subject) {
    for (const auto& segment : detail::synthesize_subject(1, subject, testing::kTestSetMinutes).schedule) {
      locked += segment.cadence_locked;
    }
  }
  EXPECT_GT(locked, 0) << "segments placed near the heart rate on purpose";
}

TEST(SynthPpgPhysiology, CadenceNearHeartRateCountsHalfSingleAndDouble) {
  EXPECT_TRUE(cadence_near_heart_rate(105, 100));
  EXPECT_TRUE(cadence_near_heart_rate(60, 118)) << "pedalling at 60/min, artefact at 120";
  EXPECT_TRUE(cadence_near_heart_rate(200, 95)) << "arm swing at half the steps";
  EXPECT_FALSE(cadence_near_heart_rate(110, 140));
  EXPECT_FALSE(cadence_near_heart_rate(0, 0)) << "no cadence: no rhythm to mistake";
}

}  // namespace
}  // namespace gos::data
