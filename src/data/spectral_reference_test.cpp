// The classical reference: spectral peaks on hand-made windows (the pulse under an artefact, the
// track, rest), its error on the synthetic set (small at rest, large where the cadence sits near
// the heart rate: what a network is for), and the MAE bookkeeping.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <stdexcept>

#include "data/data.h"
#include "data/ppg_test_set.h"

namespace gos::data {
namespace {

struct Tone {
  double bpm;
  double amplitude;
};

// A [4,512] window: PPG the sum of `ppg` tones, ACC x the sum of `acc` tones, y and z silent.
std::vector<float> window_of(std::vector<Tone> ppg, std::vector<Tone> acc = {}) {
  std::vector<float> window(kPpgChannels * kPpgWindowSamples, 0.0f);
  for (int64_t n = 0; n < kPpgWindowSamples; ++n) {
    const double t = static_cast<double>(n) / kPpgHz;
    for (const Tone& tone : ppg) window[n] += static_cast<float>(tone.amplitude * std::sin(2 * std::numbers::pi * tone.bpm / 60 * t));
    for (const Tone& tone : acc) {
      window[kPpgWindowSamples + n] += static_cast<float>(tone.amplitude * std::sin(2 * std::numbers::pi * tone.bpm / 60 * t));
    }
  }
  return window;
}

constexpr double kResting = 0.01;  // g: the accelerometer is not consulted
constexpr double kMoving = 0.3;    // g: walking

TEST(SpectralReference, FindsASinglePulseFrequency) {
  for (double bpm : {42.0, 73.5, 90.0, 151.2, 200.0}) {
    EXPECT_NEAR(spectral_reference_bpm(window_of({{bpm, 1.0}}), kResting), bpm, 0.5) << bpm;
  }
}

TEST(SpectralReference, RemovesTheMotionsFrequenciesWhenTheWristMoves) {
  // A step artefact at 110/min, stronger than the pulse at 72/min, and the accelerometer shows it.
  auto window = window_of({{72, 1.0}, {110, 1.5}}, {{110, 1.0}});
  EXPECT_NEAR(spectral_reference_bpm(window, kMoving), 72, 1.0);
  EXPECT_NEAR(spectral_reference_bpm(window, kResting), 110, 1.0) << "at rest the accelerometer is ignored";
}

TEST(SpectralReference, LosesThePulseWhenTheCadenceIsTheHeartRate) {
  // Steps at the heart rate: removing the motion removes the pulse, and a weaker peak wins. Light
  // motion is subtracted less, and the pulse survives.
  auto window = window_of({{72, 1.0}, {95, 0.5}}, {{72, 1.0}});
  EXPECT_NEAR(spectral_reference_bpm(window, kMoving), 95, 1.0);
  EXPECT_NEAR(spectral_reference_bpm(window, 0.06), 72, 1.0);
}

TEST(SpectralReference, FollowsTheTrackUnlessAPeakElsewhereDwarfsIt) {
  auto two_peaks = window_of({{70, 0.8}, {130, 1.0}});
  EXPECT_NEAR(spectral_reference_bpm(two_peaks, kResting), 130, 1.0) << "no track: the strongest";
  EXPECT_NEAR(spectral_reference_bpm(two_peaks, kResting, 75.0), 70, 1.0) << "within 15 BPM of the last estimate";
  auto far_stronger = window_of({{70, 0.3}, {130, 1.0}});
  EXPECT_NEAR(spectral_reference_bpm(far_stronger, kResting, 75.0), 130, 1.0) << "a lost track is left";
}

TEST(SpectralReference, TracksWithinEachSubjectOnly) {
  PpgDataset dataset;
  std::vector<float> first = window_of({{130, 1.0}});
  std::vector<float> second = window_of({{70, 1.0}, {135, 0.6}});
  dataset.windows.data = first;
  dataset.windows.data.insert(dataset.windows.data.end(), second.begin(), second.end());
  dataset.windows.shape = {2, kPpgChannels, kPpgWindowSamples};
  dataset.bpm = {130, 70};
  dataset.subject = {1, 2};
  dataset.acc_rms_g = {0, 0};
  std::vector<float> estimates = spectral_reference(dataset);
  EXPECT_NEAR(estimates[0], 130, 1.0);
  EXPECT_NEAR(estimates[1], 70, 1.0) << "subject 2 starts afresh instead of following subject 1 to 135";
  dataset.subject = {1, 1};
  EXPECT_NEAR(spectral_reference(dataset)[1], 135, 1.0) << "the same subject is tracked";
}

TEST(SpectralReference, RejectsAWindowOfTheWrongSize) {
  std::vector<float> short_window(512, 0.0f);
  EXPECT_THROW(spectral_reference_bpm(short_window, kResting), std::invalid_argument);
}

TEST(SpectralReference, IsCloseAtRestAndFailsWhereTheCadenceMeetsTheHeartRate) {
  const PpgDataset& dataset = testing::synthetic_ppg_windows();
  const std::vector<float> estimates = spectral_reference(dataset);
  std::vector<bool> sitting(dataset.size()), near(dataset.size()), moving_elsewhere(dataset.size());
  for (int64_t i = 0; i < dataset.size(); ++i) {
    sitting[i] = dataset.activity[i] == 1;
    near[i] = cadence_near_heart_rate(dataset.cadence_bpm[i], dataset.bpm[i]);
    moving_elsewhere[i] = !near[i] && dataset.acc_rms_g[i] >= 0.1f;
  }
  const double at_rest = ppg_mae(dataset, estimates, sitting).mae_bpm;
  const double near_heart = ppg_mae(dataset, estimates, near).mae_bpm;
  const double elsewhere = ppg_mae(dataset, estimates, moving_elsewhere).mae_bpm;
  EXPECT_LT(at_rest, 2.0);
  EXPECT_GT(near_heart, 5 * at_rest);
  EXPECT_GT(near_heart, 1.5 * elsewhere) << "motion near the heart rate is the hard case";
  RecordProperty("mae_sitting", std::to_string(at_rest));
  RecordProperty("mae_cadence_near_hr", std::to_string(near_heart));
  RecordProperty("mae_moving_elsewhere", std::to_string(elsewhere));
}

TEST(PpgMae, AveragesOverWindowsAndPerSubject) {
  PpgDataset dataset;
  dataset.bpm = {60, 70, 80, 90};
  dataset.subject = {1, 1, 2, 2};
  const std::vector<float> estimates{61, 68, 80, 94};
  PpgMae all = ppg_mae(dataset, estimates);
  EXPECT_DOUBLE_EQ(all.mae_bpm, 7.0 / 4);
  EXPECT_EQ(all.windows, 4);
  ASSERT_EQ(all.subjects.size(), 2u);
  EXPECT_EQ(all.subjects[0].subject, 1);
  EXPECT_DOUBLE_EQ(all.subjects[0].mae_bpm, 1.5);
  EXPECT_DOUBLE_EQ(all.subjects[1].mae_bpm, 2.0);
  EXPECT_DOUBLE_EQ(all.mean_subject_mae_bpm, 1.75);

  PpgMae some = ppg_mae(dataset, estimates, {true, false, false, true});
  EXPECT_DOUBLE_EQ(some.mae_bpm, 2.5);
  EXPECT_EQ(some.windows, 2);
  EXPECT_DOUBLE_EQ(some.subjects[0].mae_bpm, 1.0);
  EXPECT_EQ(some.subjects[1].windows, 1);

  EXPECT_THROW(ppg_mae(dataset, std::vector<float>{1, 2, 3}), std::invalid_argument);
  EXPECT_THROW(ppg_mae(dataset, estimates, {true}), std::invalid_argument);
}

}  // namespace
}  // namespace gos::data
