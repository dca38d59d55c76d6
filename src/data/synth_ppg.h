#pragma once
// Internal to data: one synthetic subject in memory, before it is written as .npy files, and the
// activity schedule it follows. synthesize_ppg (data.h) writes these; tests look at them directly.
#include <cstdint>
#include <vector>

namespace gos::data::detail {

// One activity segment of a subject's schedule.
struct SynthSegment {
  int activity = 1;             // PPG-DaLiA's ids (ppg_activity_name)
  double start_seconds = 0;
  double end_seconds = 0;
  double target_bpm = 70;       // the heart rate the subject settles to during the segment
  double cadence_hz = 0;        // steps or pedal strokes per second; 0 for motion without a rhythm
  bool cadence_locked = false;  // the cadence was placed near the heart rate (the hard case)
};

struct SynthSubject {
  std::vector<SynthSegment> schedule;
  std::vector<float> ppg;          // [N] at 64 Hz
  std::vector<float> acc;          // [M*3] at 32 Hz, in g, x y z interleaved
  std::vector<float> hr;           // [W] mean heart rate of the beats in each window
  std::vector<int32_t> activity;   // [W] majority activity at 4 Hz
  std::vector<float> cadence_bpm;  // [W] mean cadence over the window, 0 for none
};

SynthSubject synthesize_subject(uint64_t seed, int subject, int minutes);

}  // namespace gos::data::detail
