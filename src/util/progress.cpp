#include "util/progress.h"

#include <unistd.h>

#include <cmath>

namespace gos::util {

Progress::Progress(std::string stage, int64_t total, bool enabled)
    : stage_(std::move(stage)), total_(total), active_(enabled && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (active_ && !finished_) std::fputc('\n', stderr);
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char text[32];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(text, sizeof text, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  } else {
    std::snprintf(text, sizeof text, "%dh%02dm", static_cast<int>(seconds) / 3600, static_cast<int>(seconds) % 3600 / 60);
  }
  return text;
}

void Progress::update(int64_t done, const std::string& detail) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  // Redrawing more than ~10 times a second only costs time.
  if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_draw_ = now;
  draw(detail);
}

void Progress::finish(const std::string& detail) {
  done_ = total_;
  draw(detail);
  if (active_) std::fputc('\n', stderr);
  finished_ = true;
}

void Progress::draw(const std::string& detail) {
  if (!active_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string timing = done_ >= total_ || done_ == 0
                           ? "elapsed " + format_duration(elapsed)
                           : "ETA " + format_duration(elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_));
  std::fprintf(stderr, "\r\033[K%s  %lld/%lld  %s%s%s", stage_.c_str(), static_cast<long long>(done_),
               static_cast<long long>(total_), detail.c_str(), detail.empty() ? "" : "  ", timing.c_str());
  std::fflush(stderr);
}

}  // namespace gos::util
