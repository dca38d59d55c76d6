// Distributed runs (docs/distributed.md): what rank 0 does first and shares, units of work spread
// over the ranks with their journal writes sent to rank 0 one by one, and the guard that keeps the
// other ranks from timing anything.
#include <fmt/format.h>

#include "dist/dist.h"
#include "search/distributed.h"
#include "search/run_context.h"

namespace gos::search {

namespace {

// Only rank 0 times: the other ranks replay its timings from its journal, so a timing asked of
// them is a stage that did not journal one.
class TimingRefused : public measure::RemoteTimer {
 public:
  explicit TimingRefused(int rank) : rank_(rank) {}
  std::string fingerprint() override { return fmt::format("rank {} (times nothing)", rank_); }
  std::vector<measure::Timing> each(const std::vector<graph::Graph>&, measure::Backend, const measure::BenchOptions&) override { refuse(); }
  std::pair<measure::Timing, measure::Timing> side_by_side(const graph::Graph&, const graph::Graph&, measure::Backend,
                                                           const measure::BenchOptions&) override {
    refuse();
  }
  std::vector<measure::Timing> operators(const std::vector<graph::Graph>&, measure::Backend, const measure::BenchOptions&) override {
    refuse();
  }
  measure::Timing machine_reference(double) override { refuse(); }

 private:
  [[noreturn]] void refuse() const {
    throw SearchError(fmt::format("rank {} was asked to time something rank 0's journal does not hold: only rank 0 times (a gos "
                                  "bug: report it with the command)",
                                  rank_));
  }
  int rank_;
};

}  // namespace

std::unique_ptr<measure::UseRemoteTimer> refuse_timing_off_root(const RunContext& run) {
  if (run.root()) return nullptr;
  return std::make_unique<measure::UseRemoteTimer>(std::make_shared<TimingRefused>(run.options.group->rank()));
}

bool RunContext::distributed() const { return options.group && options.group->size() > 1; }
bool RunContext::root() const { return !distributed() || options.group->root(); }
int RunContext::ranks() const { return distributed() ? options.group->size() : 1; }

void RunContext::share_journal(const std::string& tag) {
  if (!distributed()) return;
  if (!journal_shared_) {
    const std::string image = options.group->broadcast(tag, root() ? journal->image() : std::string());
    if (root()) journal->keep_changes();
    if (!root()) journal->replace_with(image);
    journal_shared_ = true;
    return;
  }
  const std::string changes = options.group->broadcast(tag, root() ? journal->take_changes() : std::string());
  if (!root()) journal->apply(changes);
}

void RunContext::on_root_first(const std::string& tag, const std::function<void()>& work) {
  if (root()) work();
  if (!distributed()) return;
  share_journal(tag);
  if (!root()) work();
}

void RunContext::spread(const std::string& tag, size_t units, const std::function<void(size_t)>& work) {
  if (!distributed()) {
    for (size_t i = 0; i < units; ++i) work(i);
    return;
  }
  dist::Group& group = *options.group;
  const auto size = static_cast<size_t>(group.size()), rank = static_cast<size_t>(group.rank());
  auto key = [&](size_t i) { return fmt::format("{}/{}", tag, i); };
  if (root()) {
    std::map<std::string, int> expected;
    for (size_t i = 0; i < units; ++i) {
      if (i % size != 0) expected[key(i)] = static_cast<int>(i % size);
    }
    size_t done = 0;
    auto arrived = [&](const std::string&, const std::string& writes) {
      journal->apply(writes);
      progress(tag, static_cast<int64_t>(++done), static_cast<int64_t>(units), fmt::format("on {} ranks", size));
    };
    for (size_t i = 0; i < units; i += size) {
      work(i);
      ++done;
      group.collect(expected, arrived, false);
    }
    group.collect(expected, arrived, true);
  } else {
    for (size_t i = rank; i < units; i += size) {
      journal->start_recording();
      work(i);
      group.post(key(i), journal->stop_recording());
    }
  }
  share_journal(tag + " results");
}

void agree_on_settings(const RunContext& run, const nlohmann::json& settings) {
  if (!run.distributed()) return;
  std::map<std::string, std::string> by_option;
  for (const auto& [name, value] : settings.items()) {
    std::string option = "--" + name;
    std::replace(option.begin(), option.end(), '_', '-');
    by_option[name == "model" ? "a model of weights" : option] = value.dump();
  }
  run.options.group->agree(by_option);
}

}  // namespace gos::search
