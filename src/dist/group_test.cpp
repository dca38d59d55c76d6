// Two ranks as two threads of this process, on a free localhost port: the group's collectives,
// its refusal of ranks that disagree, and how a failed or silent rank stops the other.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "dist/local_ranks.h"

namespace gos::dist {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> on_two_ranks(const std::function<void(Group&)>& body, std::chrono::seconds timeout = 30s) {
  return run_local_ranks(2, body, timeout);
}

TEST(Group, CollectivesCarryEveryRanksValues) {
  const auto errors = on_two_ranks([](Group& group) {
    const std::string big(3'000'000, static_cast<char>('a' + group.rank()));
    EXPECT_EQ(group.broadcast("journal", group.root() ? "from rank 0" : "ignored"), "from rank 0");
    const auto all = group.all_gather("results", big.substr(0, 1000 * (group.rank() + 1)));
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0], std::string(1000, 'a'));
    EXPECT_EQ(all[1], std::string(2000, 'b'));
    EXPECT_EQ(group.all_gather("results", big)[1], std::string(3'000'000, 'b'));
    std::vector<at::Tensor> gradients{torch::full({3, 2}, group.rank() + 1.0f), torch::full({4}, 10.0f * group.rank())};
    group.all_reduce_sum(gradients);
    EXPECT_TRUE(torch::allclose(gradients[0], torch::full({3, 2}, 3.0f)));
    EXPECT_TRUE(torch::allclose(gradients[1], torch::full({4}, 10.0f)));
    std::vector<at::Tensor> buffers{torch::full({5}, static_cast<float>(group.rank()))};
    group.broadcast_from_root(buffers);
    EXPECT_TRUE(torch::allclose(buffers[0], torch::zeros({5})));
    EXPECT_DOUBLE_EQ(group.sum(0.5 + group.rank()), 2.0);
  });
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
}

TEST(Group, RanksLaunchedWithDifferentSettingsRefuseToStart) {
  const auto errors = on_two_ranks([](Group& group) {
    group.agree({{"--seed", "1"}, {"--finetune-epochs", "8"}});
    try {
      group.agree({{"--seed", "1"}, {"--finetune-epochs", group.root() ? "8" : "4"}});
    } catch (const LaunchError& error) {
      throw std::runtime_error(std::string("launch error: ") + error.what());
    }
  });
  for (const auto& error : errors) {
    EXPECT_NE(error.find("launch error: rank 1 was launched with --finetune-epochs 4 where rank 0 has 8"), std::string::npos) << error;
  }
}

TEST(Group, AFailedRankStopsTheOthersWithItsReason) {
  const auto start = std::chrono::steady_clock::now();
  const auto errors = on_two_ranks([](Group& group) {
    if (group.rank() == 1) {
      group.fail("the data folder is unreadable");
      throw std::runtime_error("failed here");
    }
    group.wait_for_all("fidelity units");
  });
  EXPECT_NE(errors[0].find("rank 1 of 2 failed: the data folder is unreadable"), std::string::npos) << errors[0];
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
}

TEST(Group, ARankThatStopsAnsweringIsNamedWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  const auto errors = on_two_ranks(
      [](Group& group) {
        if (group.rank() == 1) return;  // leaves: its heartbeat stops
        group.wait_for_all("sensitivity units");
      },
      3s);
  EXPECT_NE(errors[0].find("rank 1 of 2 stopped answering: no heartbeat for 3 s"), std::string::npos) << errors[0];
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
}

TEST(Group, ResultsPostedOneByOneReachRankZeroAndARankThatDiesOwingSomeIsNamed) {
  const auto errors = on_two_ranks(
      [](Group& group) {
        if (group.rank() == 1) {
          group.post("unit 1", "first");
          std::this_thread::sleep_for(300ms);
          group.post("unit 3", "third");
          return;  // and never posts unit 5
        }
        std::map<std::string, int> expected{{"unit 1", 1}, {"unit 3", 1}};
        std::map<std::string, std::string> got;
        group.collect(expected, [&](const std::string& key, const std::string& bytes) { got[key] = bytes; }, true);
        EXPECT_EQ(got, (std::map<std::string, std::string>{{"unit 1", "first"}, {"unit 3", "third"}}));
        expected = {{"unit 5", 1}};
        group.collect(expected, [&](const std::string&, const std::string&) {}, true);
      },
      3s);
  EXPECT_NE(errors[0].find("rank 1 of 2 stopped answering: no heartbeat for 3 s while the others waited at 'the results of unit 5'"),
            std::string::npos)
      << errors[0];
}

// torchrun's agent serves the store itself (TORCHELASTIC_USE_AGENT_STORE=True): every rank joins
// it as a client.
TEST(Group, RanksJoinTheStoreTorchrunsAgentServes) {
  const int port = free_local_port();
  c10d::TCPStoreOptions agent;
  agent.port = static_cast<uint16_t>(port);
  agent.isServer = true;
  agent.waitWorkers = false;
  c10d::TCPStore agents_store("127.0.0.1", agent);
  auto rank = [&](int r) -> std::string {
    try {
      Group group(Launch{.master_addr = "127.0.0.1", .master_port = port, .rank = r, .world_size = 2, .agent_store = true,
                         .store_prefix = "gos/run/0"},
                  30s);
      EXPECT_EQ(group.broadcast("journal", group.root() ? "rank 0's" : ""), "rank 0's");
      EXPECT_DOUBLE_EQ(group.sum(1.0), 2.0);
      return "";
    } catch (const std::exception& error) {
      return error.what();
    }
  };
  auto one = std::async(std::launch::async, rank, 1);
  EXPECT_EQ(rank(0), "");
  EXPECT_EQ(one.get(), "");
}

TEST(Launch, ReadsTorchrunsVariablesAndNamesAMalformedOne) {
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  EXPECT_FALSE(launch_from_environment(false));
  ASSERT_TRUE(launch_from_environment(true));
  EXPECT_EQ(launch_from_environment(true)->world_size, 1);
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "10.0.0.5", 1);
  setenv("MASTER_PORT", "29511", 1);
  const auto launch = launch_from_environment(false);
  ASSERT_TRUE(launch);
  EXPECT_EQ(launch->rank, 1);
  EXPECT_EQ(launch->master_addr, "10.0.0.5");
  EXPECT_EQ(launch->master_port, 29511);
  EXPECT_FALSE(launch->agent_store);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  EXPECT_TRUE(launch_from_environment(false)->agent_store);
  EXPECT_EQ(launch_from_environment(false)->store_prefix, "gos/run/2");
  unsetenv("TORCHELASTIC_USE_AGENT_STORE");
  unsetenv("TORCHELASTIC_RESTART_COUNT");
  setenv("RANK", "2", 1);
  EXPECT_THROW(launch_from_environment(false), LaunchError);
  setenv("RANK", "one", 1);
  try {
    launch_from_environment(false);
    FAIL();
  } catch (const LaunchError& error) {
    EXPECT_NE(std::string(error.what()).find("RANK='one'"), std::string::npos);
  }
  for (const char* name : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(name);
}

}  // namespace
}  // namespace gos::dist
