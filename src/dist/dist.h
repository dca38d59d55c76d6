#pragma once
// The public face of gos's distributed runs: a process group on PyTorch's distributed engine
// (c10d: a TCP store at rank 0 and Gloo collectives), joined the way torchrun, Slurm and
// Kubernetes launch PyTorch jobs (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK).
// Every wait for another rank's long work goes through the store with heartbeats, so that a rank
// that dies, hangs or fails stops the others within the group's timeout with one line naming it;
// the collectives themselves then run between ranks that are known to be ready.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace gos::dist {

// A launch's settings as the environment gives them.
struct Launch {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  // torchrun's agent already serves a store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client, under a prefix of its
  // own for this attempt (TORCHELASTIC_RUN_ID, TORCHELASTIC_RESTART_COUNT).
  bool agent_store = false;
  std::string store_prefix = "gos";
};

// Bad launch settings (exit 2): a variable that is not a number, a rank outside the world, ranks
// launched with different settings.
class LaunchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Another rank failed, died or stopped answering (exit 1).
class DistError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The launch the environment describes: nullopt when neither RANK nor WORLD_SIZE is set and
// `required` is false; with `required` (--distributed), a single-rank launch on localhost when
// they are unset. Throws LaunchError naming the variable that is malformed.
std::optional<Launch> launch_from_environment(bool required);

// How long a rank may go without a sign of life (a heartbeat every second, or progress in a
// collective) before the others give up on it: GOS_DIST_TIMEOUT seconds when set, else 120.
std::chrono::seconds default_timeout();

class Group {
 public:
  // Joins the group: rank 0 serves the store at MASTER_ADDR:MASTER_PORT and every rank waits up to
  // `timeout` for all WORLD_SIZE ranks to join. Throws DistError when they do not.
  Group(const Launch& launch, std::chrono::seconds timeout);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const;
  int size() const;
  bool root() const { return rank() == 0; }
  std::chrono::seconds timeout() const;

  // Every rank passes its settings (by the name a user knows them, as they were launched with),
  // which must be equal on all: throws LaunchError on every rank naming the first rank and
  // setting that differ from rank 0's, with both values. A setting one rank lacks is "(unset)".
  void agree(const std::map<std::string, std::string>& settings);

  // Waits until every rank has called wait_for_all with this tag (the next collective then does
  // not wait on long work). Throws DistError when a rank dies, stops answering for the timeout, or
  // reports a failure (fail()).
  void wait_for_all(const std::string& tag);

  // Rank 0's bytes on every rank (`bytes` is read on rank 0 only). Waits for all first.
  std::string broadcast(const std::string& tag, const std::string& bytes);
  // Every rank's bytes on every rank, in rank order. Waits for all first.
  std::vector<std::string> all_gather(const std::string& tag, const std::string& bytes);

  // Results of units of work spread over the ranks reach rank 0 one by one as each is done
  // (through the store), so that a rank that dies later loses only the unit it was on.
  void post(const std::string& key, const std::string& bytes);
  // On rank 0: `arrived(key, bytes)` for each expected result posted so far (`expected` maps its
  // key to the rank owing it; arrived ones are removed). With `wait`, until none is left; throws
  // DistError when a rank owing one fails, dies or stops answering.
  void collect(std::map<std::string, int>& expected, const std::function<void(const std::string&, const std::string&)>& arrived,
               bool wait);

  // Sums float tensors over the ranks in place (one flat buffer: gradients every training step),
  // and copies rank 0's tensors to the others. Bounded by the timeout; no waiting for all first.
  void all_reduce_sum(std::vector<at::Tensor>& tensors);
  void broadcast_from_root(std::vector<at::Tensor>& tensors);
  double sum(double value);

  // Tells the other ranks this one failed, so that their next wait stops at once with `why`
  // (best effort: the store may be gone).
  void fail(const std::string& why) noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace gos::dist
