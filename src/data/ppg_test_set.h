#pragma once
// Test helper: one synthetic PPG set of default-length subjects, generated once per test binary
// (about a second) and shared by the tests that need realistic windows.
#include "data/data.h"
#include "util/scratch_folder.h"

namespace gos::data::testing {

inline constexpr int kTestSetSubjects = 4;
inline constexpr int kTestSetMinutes = 30;

inline const PpgDataset& synthetic_ppg_windows() {
  struct Set {
    util::ScratchFolder folder{"gos-ppg-set"};
    PpgDataset windows;
    Set() {
      synthesize_ppg({.subjects = kTestSetSubjects, .minutes = kTestSetMinutes, .seed = 1}, folder.path().string());
      windows = load_ppg_subjects(folder.path().string(), {1, 2, 3, 4});
    }
  };
  static const Set set;
  return set.windows;
}

}  // namespace gos::data::testing
