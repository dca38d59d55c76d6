// `gos adapt` on two ranks of this machine, launched as torchrun launches a job (MASTER_ADDR,
// MASTER_PORT, RANK, WORLD_SIZE): what it finds against one process, a rank killed mid-run, and
// ranks launched with different settings.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "cli/adapt_test_support.h"
#include "dist/local_ranks.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::Background;
using testing::journal_keys;
using testing::read_json;
using testing::small_adapt;

std::vector<std::string> launch(int rank, int port, const std::string& timeout = "60") {
  return {"MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port), "WORLD_SIZE=2", "RANK=" + std::to_string(rank),
          "GOS_DIST_TIMEOUT=" + timeout};
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A stage's entries, key -> value.
std::map<std::string, std::string> journal_entries(const fs::path& journal, const std::string& stage) {
  std::map<std::string, std::string> entries;
  sqlite3* db = nullptr;
  if (sqlite3_open(journal.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* select = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT key, value FROM entries WHERE stage = ?", -1, &select, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(select, 1, stage.c_str(), -1, SQLITE_TRANSIENT);
      while (sqlite3_step(select) == SQLITE_ROW) {
        entries[reinterpret_cast<const char*>(sqlite3_column_text(select, 0))] =
            std::string(static_cast<const char*>(sqlite3_column_blob(select, 1)), static_cast<size_t>(sqlite3_column_bytes(select, 1)));
      }
    }
    sqlite3_finalize(select);
  }
  sqlite3_close(db);
  return entries;
}

// The arguments with an option's value replaced.
std::vector<std::string> with(std::vector<std::string> arguments, const std::string& option, const std::string& value) {
  const auto at = std::find(arguments.begin(), arguments.end(), option);
  EXPECT_NE(at, arguments.end()) << option;
  if (at != arguments.end()) *(at + 1) = value;
  return arguments;
}

std::vector<std::string> derivations(const fs::path& report) {
  std::vector<std::string> chosen;
  for (const auto& layer : read_json(report).at("layers")) chosen.push_back(layer.at("derivation").get<std::string>());
  return chosen;
}

TEST(AdaptDistributed, TwoRanksFindWhatOneProcessFindsAndChooseTheSameConfiguration) {
  util::ScratchFolder scratch("gos-dist-test");
  const fs::path cache = scratch.file("cache.sqlite");
  const int port = dist::free_local_port();
  {
    Background rank1(small_adapt(scratch.file("rank1-out"), cache), scratch.file("err1"), launch(1, port));
    Background rank0(small_adapt(scratch.file("two"), cache), scratch.file("err0"), launch(0, port));
    ASSERT_EQ(rank0.wait(), 0) << read_text(scratch.file("err0"));
    ASSERT_EQ(rank1.wait(), 0) << read_text(scratch.file("err1"));
  }
  // Rank 0 owns the files; the other rank writes nothing to its -o folder and says nothing.
  EXPECT_FALSE(fs::exists(scratch.file("rank1-out")));
  EXPECT_EQ(read_text(scratch.file("err1")), "");
  // One process, its operators' timings read from the same latency cache: the same candidates.
  Background alone(small_adapt(scratch.file("one"), cache), scratch.file("err"));
  ASSERT_EQ(alone.wait(), 0) << read_text(scratch.file("err"));
  for (const std::string stage : {"distilled_error", "sensitivity", "selected"}) {
    const auto two = journal_entries(scratch.file("two") / "run.sqlite", stage);
    EXPECT_FALSE(two.empty()) << stage;
    EXPECT_EQ(two, journal_entries(scratch.file("one") / "run.sqlite", stage)) << stage;
  }
  EXPECT_EQ(derivations(scratch.file("two") / "report.json"), derivations(scratch.file("one") / "report.json"));
}

TEST(AdaptDistributed, AKilledRankStopsTheOtherWithOneLineAndTheRerunRedoesNothingFinished) {
  util::ScratchFolder scratch("gos-dist-test");
  const fs::path out = scratch.file("out"), journal = out / "run.sqlite";
  // Fidelity long enough to be killed in.
  const auto arguments = with(small_adapt(out, scratch.file("cache.sqlite")), "--distill-steps", "1500");
  std::vector<std::string> finished;
  {
    const int port = dist::free_local_port();
    Background rank1(arguments, scratch.file("err1"), launch(1, port, "5"));
    Background rank0(arguments, scratch.file("err0"), launch(0, port, "5"));
    const auto start = std::chrono::steady_clock::now();
    while (journal_keys(journal, "distilled").empty() && std::chrono::steady_clock::now() - start < 300s) std::this_thread::sleep_for(200ms);
    finished = journal_keys(journal, "distilled");
    ASSERT_FALSE(finished.empty()) << read_text(scratch.file("err0"));
    kill(rank1.pid(), SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    EXPECT_EQ(rank0.wait(), 1);
    // Within the timeout of 5 s, and the unit rank 0 was on (at most 1500 steps).
    EXPECT_LT(std::chrono::steady_clock::now() - killed, 90s);
    const std::string error = read_text(scratch.file("err0"));
    EXPECT_NE(error.find("gos: rank 1 of 2 stopped answering"), std::string::npos) << error;
    EXPECT_NE(error.find("rerun the same launch"), std::string::npos) << error;
  }
  // The same launch again: it resumes from rank 0's journal.
  const int port = dist::free_local_port();
  Background rank1(arguments, scratch.file("err1"), launch(1, port));
  Background rank0(arguments, scratch.file("err0"), launch(0, port));
  ASSERT_EQ(rank0.wait(), 0) << read_text(scratch.file("err0"));
  ASSERT_EQ(rank1.wait(), 0) << read_text(scratch.file("err1"));
  for (const auto& key : finished) EXPECT_EQ(journal_entries(journal, "distilled").count(key), 1u) << key;
  EXPECT_EQ(testing::most_writes(journal, "distilled"), 1) << "a distillation finished before the kill was redone";
  EXPECT_EQ(testing::most_writes(journal, "profile"), 1);
  EXPECT_TRUE(fs::exists(out / "adapted.onnx"));
}

TEST(AdaptDistributed, RanksLaunchedWithDifferentSettingsRefuseToStartNamingTheSetting) {
  util::ScratchFolder scratch("gos-dist-test");
  const int port = dist::free_local_port();
  const auto other = with(small_adapt(scratch.file("out1"), scratch.file("cache.sqlite")), "--finetune-epochs", "2");
  Background rank1(other, scratch.file("err1"), launch(1, port));
  Background rank0(small_adapt(scratch.file("out0"), scratch.file("cache.sqlite")), scratch.file("err0"), launch(0, port));
  EXPECT_EQ(rank0.wait(), 2);
  EXPECT_EQ(rank1.wait(), 2);
  for (const auto* err : {"err0", "err1"}) {
    EXPECT_NE(read_text(scratch.file(err)).find("rank 1 was launched with --finetune-epochs 2 where rank 0 has 1"), std::string::npos)
        << read_text(scratch.file(err));
  }
  EXPECT_FALSE(fs::exists(scratch.file("out0") / "run.sqlite")) << "nothing was journaled";
}

}  // namespace
}  // namespace gos::cli
