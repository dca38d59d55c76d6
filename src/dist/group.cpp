// The process group: c10d's TCPStore (rank 0 serves it) and ProcessGroupGloo, with heartbeats in
// the store so that waits on another rank's long work can tell work from death.
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "dist/dist.h"

namespace gos::dist {

namespace {

using namespace std::chrono_literals;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

int env_int(const char* name, int fallback, int lowest, int highest) {
  const auto text = env(name);
  if (!text) return fallback;
  int value = 0;
  const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (error != std::errc() || end != text->data() + text->size() || value < lowest || value > highest) {
    throw LaunchError(fmt::format("{}='{}' is not a whole number from {} to {}; set it as torchrun would", name, *text, lowest, highest));
  }
  return value;
}

std::vector<uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }
std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// Runs `collective` on the tensors as one flat float buffer (one message however many tensors:
// every parameter's gradient each training step), then copies the result back into them.
template <typename Collective>
void as_one_buffer(std::vector<at::Tensor>& tensors, Collective collective) {
  if (tensors.empty()) return;
  std::vector<at::Tensor> parts;
  for (const auto& tensor : tensors) parts.push_back(tensor.reshape({-1}).to(torch::kFloat));
  std::vector<at::Tensor> flat{torch::cat(parts)};
  collective(flat);
  int64_t at = 0;
  for (auto& tensor : tensors) {
    const int64_t n = tensor.numel();
    tensor.copy_(flat[0].narrow(0, at, n).view(tensor.sizes()));
    at += n;
  }
}

bool loopback(const std::string& address) { return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1"; }

}  // namespace

std::optional<Launch> launch_from_environment(bool required) {
  if (!required && !env("RANK") && !env("WORLD_SIZE")) return std::nullopt;
  Launch launch;
  launch.world_size = env_int("WORLD_SIZE", 1, 1, 4096);
  launch.rank = env_int("RANK", 0, 0, 4095);
  if (launch.rank >= launch.world_size) {
    throw LaunchError(fmt::format("RANK={} is outside WORLD_SIZE={}: ranks are numbered from 0 to WORLD_SIZE-1", launch.rank, launch.world_size));
  }
  launch.local_rank = env_int("LOCAL_RANK", 0, 0, 4095);
  launch.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  launch.master_addr = env("MASTER_ADDR").value_or("127.0.0.1");
  launch.agent_store = env("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  if (launch.agent_store) {
    launch.store_prefix = fmt::format("gos/{}/{}", env("TORCHELASTIC_RUN_ID").value_or("run"), env("TORCHELASTIC_RESTART_COUNT").value_or("0"));
  }
  if (launch.world_size > 1 && !env("MASTER_ADDR")) {
    throw LaunchError("WORLD_SIZE is above 1 but MASTER_ADDR is not set: give every rank rank 0's address (and MASTER_PORT)");
  }
  return launch;
}

std::chrono::seconds default_timeout() { return std::chrono::seconds(env_int("GOS_DIST_TIMEOUT", 120, 1, 86400)); }

struct Group::State {
  Launch launch;
  std::chrono::seconds timeout;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Store> beat_store;  // the heartbeat thread's own connection
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  std::thread heart;
  std::mutex stop_mutex;
  std::condition_variable stop_signal;
  bool stopping = false;
  int64_t waits = 0;  // wait_for_all calls so far: the same on every rank

  std::string address() const { return fmt::format("{}:{}", launch.master_addr, launch.master_port); }

  // What stopped: a rank's reported failure, else the rank whose heartbeat stands still.
  std::optional<std::string> reported_failure() {
    if (store->add("failures", 0) == 0) return std::nullopt;
    for (int r = 0; r < launch.world_size; ++r) {
      const std::string key = fmt::format("failed/{}", r);
      if (store->check({key})) {
        return text_of(store->get(key)) + " (the other ranks stopped; rerun the same launch once that is mended: rank 0's journal "
                                          "resumes the run)";
      }
    }
    return std::nullopt;
  }

  [[noreturn]] void lost_the_store(const std::exception& error) {
    throw DistError(fmt::format("rank 0 stopped answering (its store at {} is gone: {}); rerun the same launch: rank 0's journal "
                                "resumes the run",
                                address(), first_line(error.what())));
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  // After a collective failed: who stopped it.
  [[noreturn]] void collective_failed(const std::exception& error) {
    try {
      if (auto failure = reported_failure()) throw DistError(*failure);
      std::map<int, int64_t> before;
      for (int r = 0; r < launch.world_size; ++r) before[r] = store->add(fmt::format("beat/{}", r), 0);
      std::this_thread::sleep_for(2500ms);
      for (int r = 0; r < launch.world_size; ++r) {
        if (r != launch.rank && store->add(fmt::format("beat/{}", r), 0) == before[r]) {
          throw DistError(fmt::format("rank {} of {} stopped (no heartbeat) during a collective: {}; rerun the same launch: rank 0's "
                                      "journal resumes the run",
                                      r, launch.world_size, first_line(error.what())));
        }
      }
    } catch (const DistError&) {
      throw;
    } catch (const std::exception& store_error) {
      lost_the_store(store_error);
    }
    throw DistError(fmt::format("a collective between the {} ranks failed: {}; rerun the same launch: rank 0's journal resumes the run",
                                launch.world_size, first_line(error.what())));
  }

  // Heartbeats of the ranks being waited on: throws DistError when one has not moved for the
  // timeout, or a rank reported a failure.
  class Watch {
   public:
    explicit Watch(State& state) : state_(state) {}
    void check(const std::vector<int>& ranks, const std::string& waiting_at) {
      if (auto failure = state_.reported_failure()) throw DistError(*failure);
      const auto now = std::chrono::steady_clock::now();
      for (int r : ranks) {
        const int64_t beat = state_.store->add(fmt::format("beat/{}", r), 0);
        auto known = seen_.find(r);
        if (known == seen_.end() || known->second.first != beat) {
          seen_[r] = {beat, now};
        } else if (now - known->second.second > state_.timeout) {
          throw DistError(fmt::format("rank {} of {} stopped answering: no heartbeat for {} s while the others waited at '{}'; rerun "
                                      "the same launch: rank 0's journal resumes the run",
                                      r, state_.launch.world_size, state_.timeout.count(), waiting_at));
        }
      }
    }

   private:
    State& state_;
    std::map<int, std::pair<int64_t, std::chrono::steady_clock::time_point>> seen_;  // rank -> (heartbeat, when it last moved)
  };

  template <typename Work>
  void run(Work&& work) {
    try {
      work();
    } catch (const DistError&) {
      throw;
    } catch (const std::exception& error) {
      collective_failed(error);
    }
  }
};

Group::Group(const Launch& launch, std::chrono::seconds timeout) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.launch = launch;
  s.timeout = timeout;
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(launch.master_port);
  // Rank 0 serves the store, unless torchrun's agent does.
  options.isServer = launch.rank == 0 && !launch.agent_store;
  options.numWorkers = launch.agent_store ? c10::nullopt : c10::optional<size_t>(launch.world_size);
  options.waitWorkers = !launch.agent_store;
  options.timeout = timeout;
  try {
    s.store = c10::make_intrusive<c10d::PrefixStore>(launch.store_prefix, c10::make_intrusive<c10d::TCPStore>(launch.master_addr, options));
    c10d::TCPStoreOptions beat = options;
    beat.isServer = false;
    beat.numWorkers = c10::nullopt;
    beat.waitWorkers = false;
    s.beat_store = c10::make_intrusive<c10d::PrefixStore>(launch.store_prefix, c10::make_intrusive<c10d::TCPStore>(launch.master_addr, beat));
  } catch (const std::exception& error) {
    throw DistError(fmt::format("rank {} could not join the group at {} within {} s ({}): start all {} ranks with the same MASTER_ADDR, "
                                "MASTER_PORT and WORLD_SIZE, rank 0 on a free port",
                                launch.rank, s.address(), timeout.count(), State::first_line(error.what()), launch.world_size));
  }
  s.heart = std::thread([&s] {
    const std::string key = fmt::format("beat/{}", s.launch.rank);
    std::unique_lock lock(s.stop_mutex);
    while (!s.stopping) {
      try {
        s.beat_store->add(key, 1);
      } catch (const std::exception&) {
        // The store is gone (rank 0 ended); the main thread finds out on its next call.
      }
      s.stop_signal.wait_for(lock, 1s, [&] { return s.stopping; });
    }
  });
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
  gloo_options->threads = 2;
  if (auto interface = env("GLOO_SOCKET_IFNAME")) {
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*interface));
  } else if (loopback(launch.master_addr)) {
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  try {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", s.store);
    // With the agent's store, the ranks meet there first: Gloo's rendezvous has no wait of its own.
    if (launch.agent_store) wait_for_all("joining");
    s.gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, launch.rank, launch.world_size, gloo_options);
  } catch (const std::exception& error) {
    throw DistError(fmt::format("rank {} could not connect to the other ranks ({}); with several network interfaces, set "
                                "GLOO_SOCKET_IFNAME to the one the ranks reach each other on",
                                launch.rank, State::first_line(error.what())));
  }
}

Group::~Group() {
  {
    std::lock_guard lock(state_->stop_mutex);
    state_->stopping = true;
  }
  state_->stop_signal.notify_all();
  if (state_->heart.joinable()) state_->heart.join();
}

int Group::rank() const { return state_->launch.rank; }
int Group::size() const { return state_->launch.world_size; }
std::chrono::seconds Group::timeout() const { return state_->timeout; }

void Group::wait_for_all(const std::string& tag) {
  State& s = *state_;
  const int64_t wait = s.waits++;
  const std::string here = fmt::format("ready/{}/{}", wait, s.launch.rank);
  try {
    s.store->set(here, bytes_of(tag));
    State::Watch watch(s);
    auto pause = 1ms;  // growing: a short wait costs little, a long one polls ten times a second
    for (;;) {
      if (auto failure = s.reported_failure()) throw DistError(*failure);
      std::vector<int> missing;
      for (int r = 0; r < s.launch.world_size; ++r) {
        if (!s.store->check({fmt::format("ready/{}/{}", wait, r)})) missing.push_back(r);
      }
      if (missing.empty()) break;
      watch.check(missing, tag);
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::milliseconds>(2 * pause, 100ms);
    }
    for (int r = 0; r < s.launch.world_size; ++r) {
      const std::string other = text_of(s.store->get(fmt::format("ready/{}/{}", wait, r)));
      if (other != tag) {
        throw DistError(fmt::format("rank {} reached '{}' where rank {} reached '{}': the ranks run different gos versions or commands",
                                    r, other, s.launch.rank, tag));
      }
    }
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& error) {
    s.lost_the_store(error);
  }
}

void Group::agree(const std::map<std::string, std::string>& settings) {
  std::vector<std::map<std::string, std::string>> by_rank;
  for (const auto& rank_settings : all_gather("agree", nlohmann::json(settings).dump())) {
    by_rank.push_back(nlohmann::json::parse(rank_settings).get<std::map<std::string, std::string>>());
  }
  auto value_of = [](const std::map<std::string, std::string>& of, const std::string& setting) {
    const auto found = of.find(setting);
    return found == of.end() ? std::string("(unset)") : found->second;
  };
  for (size_t r = 1; r < by_rank.size(); ++r) {
    for (const auto* names : {&by_rank[0], &by_rank[r]}) {
      for (const auto& [setting, ignored] : *names) {
        const std::string theirs = value_of(by_rank[r], setting), ours = value_of(by_rank[0], setting);
        if (theirs == ours) continue;
        throw LaunchError(fmt::format("rank {} was launched with {} {} where rank 0 has {}: launch every rank with the same command", r,
                                      setting, theirs, ours));
      }
    }
  }
}

std::string Group::broadcast(const std::string& tag, const std::string& bytes) {
  wait_for_all(tag);
  State& s = *state_;
  std::string result;
  s.run([&] {
    std::vector<at::Tensor> size{torch::tensor({static_cast<int64_t>(root() ? bytes.size() : 0)}, torch::kLong)};
    s.gloo->broadcast(size)->wait();
    const int64_t length = size[0].item<int64_t>();
    std::vector<at::Tensor> data{root() ? torch::from_blob(const_cast<char*>(bytes.data()), {length}, torch::kUInt8).clone()
                                        : torch::empty({length}, torch::kUInt8)};
    if (length > 0) s.gloo->broadcast(data)->wait();
    result.assign(reinterpret_cast<const char*>(data[0].data_ptr<uint8_t>()), static_cast<size_t>(length));
  });
  return result;
}

std::vector<std::string> Group::all_gather(const std::string& tag, const std::string& bytes) {
  wait_for_all(tag);
  State& s = *state_;
  const int world = size();
  std::vector<std::string> result(static_cast<size_t>(world));
  s.run([&] {
    std::vector<std::vector<at::Tensor>> sizes(1);
    for (int r = 0; r < world; ++r) sizes[0].push_back(torch::empty({1}, torch::kLong));
    std::vector<at::Tensor> mine{torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong)};
    s.gloo->allgather(sizes, mine)->wait();
    int64_t longest = 0;
    for (const auto& t : sizes[0]) longest = std::max(longest, t.item<int64_t>());
    if (longest == 0) return;
    std::vector<at::Tensor> padded{torch::zeros({longest}, torch::kUInt8)};
    std::memcpy(padded[0].data_ptr<uint8_t>(), bytes.data(), bytes.size());
    std::vector<std::vector<at::Tensor>> all(1);
    for (int r = 0; r < world; ++r) all[0].push_back(torch::empty({longest}, torch::kUInt8));
    s.gloo->allgather(all, padded)->wait();
    for (int r = 0; r < world; ++r) {
      result[static_cast<size_t>(r)].assign(reinterpret_cast<const char*>(all[0][static_cast<size_t>(r)].data_ptr<uint8_t>()),
                                            static_cast<size_t>(sizes[0][static_cast<size_t>(r)].item<int64_t>()));
    }
  });
  return result;
}

void Group::post(const std::string& key, const std::string& bytes) {
  try {
    state_->store->set("post/" + key, bytes_of(bytes));
  } catch (const std::exception& error) {
    state_->lost_the_store(error);
  }
}

void Group::collect(std::map<std::string, int>& expected, const std::function<void(const std::string&, const std::string&)>& arrived,
                    bool wait) {
  State& s = *state_;
  try {
    State::Watch watch(s);
    for (;;) {
      for (auto it = expected.begin(); it != expected.end();) {
        const std::string key = "post/" + it->first;
        if (!s.store->check({key})) {
          ++it;
          continue;
        }
        const std::string bytes = text_of(s.store->get(key));
        s.store->deleteKey(key);
        arrived(it->first, bytes);
        it = expected.erase(it);
      }
      if (!wait || expected.empty()) return;
      std::vector<int> owing;
      for (const auto& [key, rank] : expected) {
        if (std::find(owing.begin(), owing.end(), rank) == owing.end()) owing.push_back(rank);
      }
      watch.check(owing, "the results of " + expected.begin()->first);
      std::this_thread::sleep_for(50ms);
    }
  } catch (const DistError&) {
    throw;
  } catch (const std::exception& error) {
    s.lost_the_store(error);
  }
}

void Group::all_reduce_sum(std::vector<at::Tensor>& tensors) {
  State& s = *state_;
  s.run([&] { as_one_buffer(tensors, [&](std::vector<at::Tensor>& flat) { s.gloo->allreduce(flat)->wait(); }); });
}

void Group::broadcast_from_root(std::vector<at::Tensor>& tensors) {
  State& s = *state_;
  s.run([&] { as_one_buffer(tensors, [&](std::vector<at::Tensor>& flat) { s.gloo->broadcast(flat)->wait(); }); });
}

double Group::sum(double value) {
  std::vector<at::Tensor> one{torch::tensor({value}, torch::kDouble)};
  State& s = *state_;
  s.run([&] { s.gloo->allreduce(one)->wait(); });
  return one[0].item<double>();
}

void Group::fail(const std::string& why) noexcept {
  try {
    State& s = *state_;
    s.store->set(fmt::format("failed/{}", s.launch.rank), bytes_of(fmt::format("rank {} of {} failed: {}", s.launch.rank, s.launch.world_size, why)));
    s.store->add("failures", 1);
  } catch (...) {
  }
}

}  // namespace gos::dist
