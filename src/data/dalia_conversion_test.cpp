// scripts/dalia_to_npy.py end to end: a fake PPG-DaLiA pickle (the structure of S<k>.pkl, written
// by Python's pickle protocol 2 as the originals were) converted by the script, then read as PPG
// windows. Skipped when Python 3 with numpy is missing.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/data.h"
#include "data/npy.h"
#include "util/scratch_folder.h"

namespace gos::data {
namespace {

// 20 s of subject 3: BVP a column, ACC in the E4's counts (64 per g), 7 labels, activity at 4 Hz:
// sitting (1) for 10 s, then walking (7).
constexpr const char* kFakePickle = R"(
import pickle, sys
import numpy as np
seconds = 20
bvp = np.sin(np.arange(64 * seconds) / 64 * 2 * np.pi * 1.2).reshape(-1, 1) * 50
acc = np.tile([0.0, 0.0, 64.0], (32 * seconds, 1)) + np.random.RandomState(0).normal(0, 2, (32 * seconds, 3))
label = 70.0 + np.arange(7, dtype=np.float64)
activity = np.array([1.0] * 40 + [7.0] * 40).reshape(-1, 1)
data = {'signal': {'wrist': {'BVP': bvp, 'ACC': acc, 'EDA': np.zeros((80, 1))}, 'chest': {}},
        'label': label, 'activity': activity, 'subject': 'S3'}
with open(sys.argv[1], 'wb') as file:
    pickle.dump(data, file, protocol=2)
)";

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

TEST(DaliaConversion, ThePickleBecomesWindowsGosReads) {
  if (run(std::string(GOS_PYTHON) + " -c 'import numpy'") != 0) GTEST_SKIP() << GOS_PYTHON << " cannot import numpy";
  util::ScratchFolder scratch("gos-dalia");
  const auto source = scratch.path() / "PPG_FieldStudy";
  std::filesystem::create_directories(source / "S3");
  std::ofstream(scratch.file("fake.py")) << kFakePickle;
  ASSERT_EQ(run(std::string(GOS_PYTHON) + " " + scratch.file("fake.py").string() + " " + (source / "S3" / "S3.pkl").string()), 0);

  const auto out = scratch.path() / "npy";
  ASSERT_EQ(run(std::string(GOS_PYTHON) + " " + GOS_DALIA_SCRIPT + " " + source.string() + " " + out.string()), 0);

  NpyArray acc = read_npy((out / "S3" / "acc.npy").string());
  EXPECT_EQ(acc.shape, (std::vector<int64_t>{640, 3}));
  double z = 0;
  for (int64_t m = 0; m < 640; ++m) z += acc.values[3 * m + 2] / 640.0;
  EXPECT_NEAR(z, 1.0, 0.05) << "counts of 1/64 g became g";
  EXPECT_EQ(read_npy((out / "S3" / "ppg.npy").string()).shape, (std::vector<int64_t>{1280}));

  PpgDataset dataset = load_ppg_subjects(out.string(), {3});
  ASSERT_EQ(dataset.size(), 7);
  EXPECT_EQ(dataset.bpm, (std::vector<float>{70, 71, 72, 73, 74, 75, 76}));
  // Window i covers 4 Hz samples [8i, 8i+32); window 3 is half and half (the lower id wins).
  EXPECT_EQ(dataset.activity, (std::vector<int>{1, 1, 1, 1, 7, 7, 7}));
  EXPECT_NEAR(spectral_reference(dataset)[0], 72, 1.5) << "the 1.2 Hz sine is 72 BPM";
}

TEST(DaliaConversion, AMissingFolderIsExitCode2) {
  if (run(std::string(GOS_PYTHON) + " -c 'import numpy'") != 0) GTEST_SKIP() << GOS_PYTHON << " cannot import numpy";
  util::ScratchFolder scratch("gos-dalia");
  const int status = run(std::string(GOS_PYTHON) + " " + GOS_DALIA_SCRIPT + " " + (scratch.path() / "none").string() + " " +
                         (scratch.path() / "out").string());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace gos::data
