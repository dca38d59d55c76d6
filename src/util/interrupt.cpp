// SIGINT and SIGTERM as a request to stop (see interrupt.h).
#include "util/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstring>

namespace gos::util {

namespace {

std::atomic<int> received{0};

extern "C" void on_signal(int signal) { received.store(signal); }

}  // namespace

Interrupted::Interrupted(int signal) : std::runtime_error("interrupted by " + signal_name(signal)), signal_(signal) {}

void watch_for_interrupts() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    // The first signal asks the job to stop; the handler then reverts to the default, so a second
    // one ends the process at once.
    action.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    return true;
  }();
  (void)installed;
}

int interrupt_signal() { return received.load(); }

void stop_if_interrupted() {
  if (const int signal = received.load()) throw Interrupted(signal);
}

std::string signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "signal " + std::to_string(signal);
  }
}

}  // namespace gos::util
