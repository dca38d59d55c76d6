// PPG windows from the on-disk layout, on tiny hand-made subjects: which samples a window holds,
// the accelerometer at 64 Hz, per-window normalisation, the subject split, and the errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "data/data.h"
#include "data/npy.h"
#include "util/scratch_folder.h"

namespace gos::data {
namespace {

namespace fs = std::filesystem;

struct FakeSubject {
  std::vector<float> ppg;            // 64 Hz
  std::vector<float> acc;            // 32 Hz, x y z interleaved
  std::vector<float> hr;             // per window
  std::vector<int32_t> activity;     // per window, or empty
};

// `seconds` of a subject: PPG a single spike at sample `spike`, accelerometer x a ramp, y a
// square wave, z constant; hr[i] = 60 + i.
FakeSubject fake_subject(int seconds, int windows, int64_t spike = 300) {
  FakeSubject subject;
  subject.ppg.assign(static_cast<size_t>(seconds * kPpgHz), 0.0f);
  if (spike < static_cast<int64_t>(subject.ppg.size())) subject.ppg[spike] = 1.0f;
  for (int m = 0; m < seconds * kAccHz; ++m) {
    subject.acc.insert(subject.acc.end(), {static_cast<float>(m), m % 2 ? 1.0f : -1.0f, 0.98f});
  }
  for (int i = 0; i < windows; ++i) subject.hr.push_back(60.0f + static_cast<float>(i));
  return subject;
}

void write_subject(const fs::path& dir, int id, const FakeSubject& subject) {
  const fs::path folder = dir / ("S" + std::to_string(id));
  fs::create_directories(folder);
  write_npy((folder / "ppg.npy").string(), {static_cast<int64_t>(subject.ppg.size())}, subject.ppg);
  write_npy((folder / "acc.npy").string(), {static_cast<int64_t>(subject.acc.size() / 3), 3}, subject.acc);
  write_npy((folder / "hr.npy").string(), {static_cast<int64_t>(subject.hr.size())}, subject.hr);
  if (!subject.activity.empty()) {
    write_npy((folder / "activity.npy").string(), {static_cast<int64_t>(subject.activity.size())}, subject.activity);
  }
}

const float* channel(const PpgDataset& dataset, int64_t window, int64_t channel_index) {
  return dataset.windows.data.data() + (window * kPpgChannels + channel_index) * kPpgWindowSamples;
}

template <typename Load>
std::string error_of(Load load) {
  try {
    load();
  } catch (const DataError& error) {
    return error.what();
  }
  return "(no error)";
}

class PpgWindows : public ::testing::Test {
 protected:
  util::ScratchFolder scratch_{"gos-ppg"};
  std::string dir() const { return scratch_.path().string(); }
};

TEST_F(PpgWindows, WindowIPairsWithHrIAndHoldsSeconds2iTo2iPlus8) {
  write_subject(scratch_.path(), 1, fake_subject(14, 10));
  PpgDataset dataset = load_ppg(dir(), Split::Train);
  // 14 s hold 4 windows (starts 0, 2, 4, 6 s); hr's 10 entries are cut to them.
  ASSERT_EQ(dataset.size(), 4);
  EXPECT_EQ(dataset.windows.shape, (std::vector<int64_t>{4, 4, 512}));
  EXPECT_EQ(dataset.bpm, (std::vector<float>{60, 61, 62, 63}));
  EXPECT_EQ(dataset.subject, (std::vector<int>{1, 1, 1, 1}));
  // The spike at sample 300 sits at 300 - 128 i in window i, and outside window 3 (from 384).
  for (int64_t i = 0; i < 3; ++i) {
    const float* ppg = channel(dataset, i, 0);
    EXPECT_EQ(std::max_element(ppg, ppg + kPpgWindowSamples) - ppg, 300 - 128 * i) << "window " << i;
  }
  const float* flat = channel(dataset, 3, 0);
  EXPECT_TRUE(std::all_of(flat, flat + kPpgWindowSamples, [](float v) { return v == 0.0f; })) << "a flat channel is zeros";
}

TEST_F(PpgWindows, ShorterSignalsOrLabelsLimitTheWindows) {
  write_subject(scratch_.path(), 1, fake_subject(14, 3));
  EXPECT_EQ(load_ppg(dir(), Split::Train).size(), 3) << "three labels";
  FakeSubject short_acc = fake_subject(14, 10);
  short_acc.acc.resize(3 * (12 * kAccHz - 1));  // one sample short of 12 s: windows at 0 and 2 s only
  write_subject(scratch_.path(), 1, short_acc);
  EXPECT_EQ(load_ppg(dir(), Split::Train).size(), 2);
  write_subject(scratch_.path(), 1, fake_subject(7, 10));
  EXPECT_EQ(load_ppg(dir(), Split::Train).size(), 0) << "7 s hold no 8 s window";
}

TEST_F(PpgWindows, AccelerometerIsInterpolatedLinearlyTo64Hz) {
  write_subject(scratch_.path(), 1, fake_subject(14, 10));
  PpgDataset dataset = load_ppg(dir(), Split::Train);
  // x is a ramp at 32 Hz: linear interpolation keeps it a ramp at 64 Hz (equal steps); holding
  // or nearest-sample resampling would make steps of 0 and 2.
  const float* x = channel(dataset, 1, 1);
  const float step = x[1] - x[0];
  EXPECT_GT(step, 0.0f);
  for (int64_t n = 1; n < kPpgWindowSamples; ++n) EXPECT_NEAR(x[n] - x[n - 1], step, 1e-4f) << "sample " << n;
  // y alternates -1, 1 at 32 Hz: its midpoints are 0.
  const float* y = channel(dataset, 1, 2);
  EXPECT_NEAR(y[1], 0.0f, 1e-6f);
  EXPECT_NEAR(y[0], -y[2], 1e-6f);
}

TEST_F(PpgWindows, EveryChannelIsStandardisedPerWindowAndTheMotionKept) {
  FakeSubject subject = fake_subject(20, 7);
  for (size_t j = 0; j < subject.ppg.size(); ++j) subject.ppg[j] = 500.0f + 80.0f * std::sin(0.1f * j) + j;
  write_subject(scratch_.path(), 1, subject);
  PpgDataset dataset = load_ppg(dir(), Split::Train);
  ASSERT_EQ(dataset.size(), 7);
  for (int64_t i = 0; i < dataset.size(); ++i) {
    for (int64_t c = 0; c < 3; ++c) {  // z is constant: zeros
      const float* values = channel(dataset, i, c);
      double mean = std::accumulate(values, values + kPpgWindowSamples, 0.0) / kPpgWindowSamples;
      double squares = 0;
      for (int64_t n = 0; n < kPpgWindowSamples; ++n) squares += (values[n] - mean) * (values[n] - mean);
      EXPECT_NEAR(mean, 0.0, 1e-5) << "window " << i << " channel " << c;
      EXPECT_NEAR(squares / kPpgWindowSamples, 1.0, 1e-4) << "window " << i << " channel " << c;
    }
  }
  // x ramps by 1/2 per 64 Hz sample (variance (256^2 - 1/4) / 12 over 512 samples), y alternates
  // -1, 0, 1, 0 (variance 1/2), z is constant.
  const double x_variance = (256.0 * 256.0 - 0.25) / 12.0;
  EXPECT_NEAR(dataset.acc_rms_g[0], std::sqrt(x_variance + 0.5), 1e-2);
}

TEST_F(PpgWindows, SplitsAreFixedSubjectsAndMissingOnesAreSkipped) {
  for (int id : {1, 3, 11, 13, 15}) write_subject(scratch_.path(), id, fake_subject(10, 2));
  EXPECT_EQ(load_ppg(dir(), Split::Train).subject, (std::vector<int>{1, 1, 3, 3}));
  EXPECT_EQ(load_ppg(dir(), Split::Validation).subject, (std::vector<int>{11, 11}));
  EXPECT_EQ(load_ppg(dir(), Split::Test).subject, (std::vector<int>{13, 13, 15, 15}));
  EXPECT_EQ(ppg_split_subjects(Split::Train), (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(ppg_split_subjects(Split::Validation), (std::vector<int>{11, 12}));
  EXPECT_EQ(ppg_split_subjects(Split::Test), (std::vector<int>{13, 14, 15}));
  EXPECT_EQ(load_ppg_subjects(dir(), {15, 3}).subject, (std::vector<int>{15, 15, 3, 3})) << "in the order asked";
}

// A smaller set than PPG-DaLiA's (gos data synth-ppg --subjects 4) is split among the subjects
// it has; a set that fills the fixed split keeps it.
TEST_F(PpgWindows, ASetWithoutTheFixedSplitsSubjectsIsSplitAmongThoseItHas) {
  for (int id : {1, 2, 3, 4}) write_subject(scratch_.path(), id, fake_subject(10, 2));
  EXPECT_EQ(load_ppg(dir(), Split::Train).subject, (std::vector<int>{1, 1, 2, 2}));
  EXPECT_EQ(load_ppg(dir(), Split::Validation).subject, (std::vector<int>{3, 3}));
  EXPECT_EQ(load_ppg(dir(), Split::Test).subject, (std::vector<int>{4, 4}));
  std::vector<int> all(15);
  for (int i = 0; i < 15; ++i) all[i] = i + 1;
  for (Split split : {Split::Train, Split::Validation, Split::Test}) EXPECT_EQ(ppg_split_of(all, split), ppg_split_subjects(split));
  EXPECT_EQ(ppg_split_of({2, 5, 7, 8, 9, 12, 14, 15}, Split::Test), (std::vector<int>{14, 15}));  // the fixed split: S12 validates
  EXPECT_EQ(ppg_split_of({1, 2, 3, 4, 5, 6, 7, 8}, Split::Test), (std::vector<int>{7, 8}));
  EXPECT_EQ(ppg_split_of({1, 2, 3, 4, 5, 6, 7, 8}, Split::Validation), (std::vector<int>{6}));
  EXPECT_EQ(ppg_split_of({1, 2, 3}, Split::Validation), (std::vector<int>{2}));
  EXPECT_EQ(ppg_split_of({4, 9}, Split::Train), (std::vector<int>{4, 9}));  // too few to split: the fixed split
  EXPECT_TRUE(ppg_split_of({4, 9}, Split::Test).empty());
}

TEST_F(PpgWindows, ActivityIsReadAndUnknownWithoutItsFile) {
  FakeSubject labelled = fake_subject(12, 3);
  labelled.activity = {1, 7, 7};
  write_subject(scratch_.path(), 1, labelled);
  write_subject(scratch_.path(), 2, fake_subject(10, 2));
  PpgDataset dataset = load_ppg(dir(), Split::Train);
  EXPECT_EQ(dataset.activity, (std::vector<int>{1, 7, 7, -1, -1}));
  EXPECT_TRUE(dataset.cadence_bpm.empty()) << "no cadence.npy anywhere: real data";
  EXPECT_EQ(ppg_activity_name(7), "walking");
  EXPECT_EQ(ppg_activity_name(0), "transient");
  EXPECT_EQ(ppg_activity_name(42), "unknown");
}

TEST_F(PpgWindows, DaliaStyleColumnsAreAccepted) {
  FakeSubject subject = fake_subject(10, 2);
  write_subject(scratch_.path(), 1, subject);
  // PPG-DaLiA keeps BVP as a [N,1] column.
  write_npy((scratch_.path() / "S1" / "ppg.npy").string(), {static_cast<int64_t>(subject.ppg.size()), 1}, subject.ppg);
  EXPECT_EQ(load_ppg(dir(), Split::Train).size(), 2);
}

TEST_F(PpgWindows, AnEmptySplitNamesTheSubjectsItNeeds) {
  write_subject(scratch_.path(), 1, fake_subject(10, 2));
  EXPECT_EQ(error_of([&] { load_ppg(dir(), Split::Test); }),
            dir() + " holds none of the test subjects (S13, S14, S15 as folders S<k>, or any 3 or more subjects, which are then split "
                    "among themselves; docs/ppg.md)");
  EXPECT_EQ(error_of([&] { load_ppg_subjects(dir(), {2}); }), (scratch_.path() / "S2").string() + " is missing: no subject S2");
}

TEST_F(PpgWindows, AMissingFolderSaysHowToMakeOne) {
  const std::string nowhere = dir() + "/nowhere";
  EXPECT_EQ(error_of([&] { load_ppg(nowhere, Split::Train); }),
            "PPG data not found: " + nowhere +
                " is not a folder; convert PPG-DaLiA with scripts/dalia_to_npy.py or generate a set with `gos data "
                "synth-ppg -o " + nowhere + "` (docs/ppg.md)");
}

TEST_F(PpgWindows, MalformedSubjectsNameTheFile) {
  write_subject(scratch_.path(), 1, fake_subject(10, 2));
  const fs::path folder = scratch_.path() / "S1";
  fs::remove(folder / "hr.npy");
  EXPECT_EQ(error_of([&] { load_ppg(dir(), Split::Train); }),
            (folder / "hr.npy").string() + " is missing: a subject folder holds ppg.npy, acc.npy and hr.npy (docs/ppg.md)");

  write_subject(scratch_.path(), 1, fake_subject(10, 2));
  write_npy((folder / "acc.npy").string(), {6}, std::vector<float>(6, 0.0f));
  EXPECT_EQ(error_of([&] { load_ppg(dir(), Split::Train); }),
            (folder / "acc.npy").string() + ": shape (6,); expected [N,3] (x, y, z in g at 32 Hz), see docs/ppg.md");

  write_subject(scratch_.path(), 1, fake_subject(10, 2));
  write_npy((folder / "activity.npy").string(), {3}, std::vector<int32_t>{1, 1, 1});
  EXPECT_EQ(error_of([&] { load_ppg(dir(), Split::Train); }),
            (folder / "activity.npy").string() + ": 3 values, but hr.npy has 2 windows; they must match one to one");
}

}  // namespace
}  // namespace gos::data
