#pragma once
// A progress line for long steps: "train resnet20  epoch 3/30  loss 0.412  acc 88.1%  ETA 12m04s".
// On a terminal it redraws one line on stderr; when stderr is not a terminal, or the user asked for
// --json or --quiet, it prints nothing, so piped and machine-read output stays clean.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace gos::util {

class Progress {
 public:
  // `enabled` false silences it; it is also silent when stderr is not a terminal.
  Progress(std::string stage, int64_t total, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Marks `done` of `total` finished, with an optional detail such as "loss 0.41".
  void update(int64_t done, const std::string& detail = {});
  // For steps whose amount of work is only known once they start.
  void set_total(int64_t total) { total_ = total; }
  // For callbacks that report both, as measure_cached's does.
  void update_with_total(size_t done, size_t total) {
    set_total(static_cast<int64_t>(total));
    update(static_cast<int64_t>(done));
  }
  // Ends the line (keeps the last state visible).
  void finish(const std::string& detail = {});

  static std::string format_duration(double seconds);  // "12m04s", "3.2s", "1h02m"

 private:
  void draw(const std::string& detail);
  std::string stage_;
  int64_t total_;
  int64_t done_ = 0;
  bool active_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace gos::util
