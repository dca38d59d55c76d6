// How busy other processes keep this machine (see cpu_load.h).
#include "util/cpu_load.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace gos::util {

OtherLoad::OtherLoad() : start_(sample()) {}

void OtherLoad::restart() { start_ = sample(); }

OtherLoad::Sample OtherLoad::sample() {
  Sample now;
  now.at = std::chrono::steady_clock::now();
  std::ifstream stat("/proc/stat");
  std::string cpu;
  int64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal && cpu == "cpu") {
    now.busy_ticks = user + nice + system + irq + softirq + steal;
    now.total_ticks = now.busy_ticks + idle + iowait;
  }
  std::ifstream self("/proc/self/stat");
  std::string line;
  if (std::getline(self, line)) {
    // The command name (field 2) may hold spaces; the fields after it start past its ')'.
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::string field;
    int64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
    for (int index = 3; index <= 17 && fields >> field; ++index) {
      if (index == 14) utime = std::stoll(field);
      if (index == 15) stime = std::stoll(field);
      if (index == 16) cutime = std::stoll(field);
      if (index == 17) cstime = std::stoll(field);
    }
    now.own_ticks = utime + stime + cutime + cstime;
  }
  return now;
}

double OtherLoad::cores() const {
  const Sample now = sample();
  const int64_t total = now.total_ticks - start_.total_ticks;
  if (total <= 0) return 0;
  const double others = static_cast<double>((now.busy_ticks - start_.busy_ticks) - (now.own_ticks - start_.own_ticks));
  // Total ticks count every CPU: the elapsed time is total / CPUs.
  const double cpus = static_cast<double>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(0.0, others / (static_cast<double>(total) / cpus));
}

double OtherLoad::seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_.at).count(); }

int machine_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace gos::util
