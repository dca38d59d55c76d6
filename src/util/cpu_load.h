#pragma once
// How busy other processes keep this machine: every process's CPU time (/proc/stat, with the
// time a hypervisor gave this machine's CPUs to others) less this process's own and its children's
// (/proc/self/stat), over an interval. A run that takes longer than planned on a shared machine
// can then say why, and size its thread pool to the cores left to it. Linux only; elsewhere it
// reads zero.
#include <chrono>
#include <cstdint>

namespace gos::util {

class OtherLoad {
 public:
  OtherLoad();  // the interval starts now
  // The cores other processes kept busy on average since the interval started, e.g. 0.98 (of 2).
  double cores() const;
  double seconds() const;
  // Starts a new interval.
  void restart();

 private:
  struct Sample {
    int64_t busy_ticks = 0;   // every process's, all CPUs
    int64_t total_ticks = 0;  // busy and idle, all CPUs
    int64_t own_ticks = 0;    // this process's and its waited-for children's
    std::chrono::steady_clock::time_point at;
  };
  static Sample sample();
  Sample start_;
};

// The CPUs this process may run on.
int machine_cores();

}  // namespace gos::util
