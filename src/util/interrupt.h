#pragma once
// SIGINT and SIGTERM as a request to stop, for long jobs that journal their work: the job installs
// the watch, and the places it passes often (progress, training batches, distillation steps) call
// stop_if_interrupted(), which throws there, between units of work, so that whatever was finished
// is journaled whole and nothing is half-written. A second signal ends the process at once.
#include <stdexcept>
#include <string>

namespace gos::util {

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }
  // 128 + the signal, as a shell reports a process the signal ended.
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

// Installs the handlers (once per process; later calls do nothing).
void watch_for_interrupts();
// The signal received since the watch began, or 0.
int interrupt_signal();
// Throws Interrupted when a signal was received.
void stop_if_interrupted();
// "SIGINT", "SIGTERM".
std::string signal_name(int signal);

}  // namespace gos::util
