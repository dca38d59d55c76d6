// Other processes' load, as a run on a shared machine measures it.
#include "util/cpu_load.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace gos::util {
namespace {

TEST(OtherLoad, ABusyProcessBesideThisOneCountsAndThisOnesOwnWorkDoesNot) {
  const pid_t busy = fork();
  ASSERT_GE(busy, 0);
  if (busy == 0) {
    for (volatile uint64_t i = 0;; ++i) {
    }
  }
  OtherLoad load;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const double with_busy_process = load.cores();
  // A whole core, less what the scheduler gave the machine's other work (the test suite runs two
  // tests at once).
  EXPECT_GE(with_busy_process, 0.6);
  EXPECT_LE(with_busy_process, machine_cores() + 0.1);
  EXPECT_GE(load.seconds(), 1.4);

  // This process spinning beside it is its own time, not another's: on two cores, counting it
  // would make the two of them (and any other) fill both.
  load.restart();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (volatile uint64_t i = 0; std::chrono::steady_clock::now() < until; ++i) {
  }
  const double beside_this_one = load.cores();
  kill(busy, SIGKILL);
  waitpid(busy, nullptr, 0);
  if (machine_cores() == 2) EXPECT_LT(beside_this_one, 1.7);
}

}  // namespace
}  // namespace gos::util
