// The run journal keeps finished work across processes, counts every write, and refuses to mix
// two runs' settings.
#include "search/journal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "search/candidates.h"
#include "util/scratch_folder.h"

namespace gos::search {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  fs::path file() const { return folder_.file("out") / "run.sqlite"; }
  util::ScratchFolder folder_{"gos-journal-test"};
};

TEST_F(JournalTest, TextAndTensorsSurviveReopening) {
  ir::TensorMap tensors{{"W", ir::Tensor({2, 3}, {1, 2, 3, 4, 5, 6})}, {"B", ir::Tensor({1}, {-0.5f})}};
  {
    Journal journal(file());
    journal.put_text("verify", "front3", "{\"speedup\": 2.4}");
    journal.put_tensors("distilled", "conv|abc", tensors);
  }
  Journal journal(file());
  EXPECT_EQ(journal.text("verify", "front3"), "{\"speedup\": 2.4}");
  EXPECT_FALSE(journal.text("verify", "front4"));
  auto read = journal.tensors("distilled", "conv|abc");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->at("W").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(read->at("W").data, tensors.at("W").data);
  EXPECT_EQ(read->at("B").data, tensors.at("B").data);
  EXPECT_EQ(journal.entries("distilled"), 1);
}

// A distributed run: another rank works from a copy of rank 0's journal, and what its unit of work
// writes reaches rank 0's as recorded writes.
TEST_F(JournalTest, ACopyHoldsEverythingAndRecordedWritesReachTheOriginal) {
  Journal root(file());
  root.put_text("profile", "machine_reference", "{}");
  root.put_tensors("recorded", "conv1", {{"0", ir::Tensor({2}, {1, 2})}});
  Journal copy(folder_.file("elsewhere") / "run.sqlite");
  copy.replace_with(root.image());
  EXPECT_EQ(copy.text("profile", "machine_reference"), "{}");
  EXPECT_EQ(copy.tensors("recorded", "conv1")->at("0").data, (std::vector<float>{1, 2}));
  copy.start_recording();
  copy.put_text("distilled_error", "conv1|c2", "{\"after\": 0.1}");
  copy.put_tensors("distilled", "conv1|c2", {{"W", ir::Tensor({1}, {3})}});
  const std::string recorded = copy.stop_recording();
  copy.put_text("stage_seconds", "fidelity", "12");  // not recorded
  EXPECT_FALSE(root.text("distilled_error", "conv1|c2"));
  root.apply(recorded);
  EXPECT_EQ(root.text("distilled_error", "conv1|c2"), "{\"after\": 0.1}");
  EXPECT_EQ(root.tensors("distilled", "conv1|c2")->at("W").data, (std::vector<float>{3}));
  EXPECT_FALSE(root.text("stage_seconds", "fidelity"));
  // Later copies carry only what rank 0 wrote since.
  root.keep_changes();
  root.put_text("sensitivity", "original", "0.91");
  const std::string changes = root.take_changes();
  EXPECT_LT(changes.size(), 100u);
  copy.apply(changes);
  EXPECT_EQ(copy.text("sensitivity", "original"), "0.91");
  EXPECT_EQ(root.take_changes(), "");
  EXPECT_FALSE(fs::exists(folder_.file("elsewhere") / "run.sqlite-wal") && fs::file_size(folder_.file("elsewhere") / "run.sqlite-wal") > 0);
}

TEST_F(JournalTest, CountsHowOftenEachEntryWasWritten) {
  Journal journal(file());
  journal.put_text("latency", "a", "0.1");
  journal.put_text("latency", "b", "0.2");
  EXPECT_EQ(journal.max_times_written("latency"), 1);
  journal.put_text("latency", "a", "0.1");
  EXPECT_EQ(journal.times_written("latency", "a"), 2);
  EXPECT_EQ(journal.times_written("latency", "b"), 1);
  EXPECT_EQ(journal.times_written("latency", "c"), 0);
  EXPECT_EQ(journal.max_times_written("latency"), 2);
  EXPECT_EQ(journal.max_times_written("recorded"), 0);
  EXPECT_EQ(journal.max_times_written(), 2);
}

TEST_F(JournalTest, ARestartWithOtherSettingsIsRefusedNamingTheDifference) {
  Journal(file()).bind_settings(R"({"depth":1,"seed":1})");
  Journal journal(file());
  EXPECT_NO_THROW(journal.bind_settings(R"({"depth":1,"seed":1})"));
  try {
    journal.bind_settings(R"({"depth":1,"seed":2})");
    FAIL() << "other settings were accepted";
  } catch (const SearchError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("seed\":2"), std::string::npos) << message;
    EXPECT_NE(message.find("--out"), std::string::npos) << message;
  }
}

TEST_F(JournalTest, AFileThatIsNotAJournalIsAClearError) {
  fs::create_directories(file().parent_path());
  std::ofstream(file()) << "this is not a database, it is a text file written by someone else";
  try {
    Journal journal(file());
    FAIL() << "a text file was opened as a journal";
  } catch (const SearchError& error) {
    EXPECT_NE(std::string(error.what()).find(file().string()), std::string::npos) << error.what();
  }
}

TEST(TensorBytes, RoundTripAndRejectTruncation) {
  ir::TensorMap tensors{{"X", ir::Tensor({4}, {1, 2, 3, 4})}};
  const std::string bytes = serialise_tensors(tensors);
  EXPECT_EQ(deserialise_tensors(bytes).at("X").data, tensors.at("X").data);
  EXPECT_THROW(deserialise_tensors(bytes.substr(0, bytes.size() - 3)), SearchError);
  EXPECT_THROW(deserialise_tensors(bytes + "x"), SearchError);
  EXPECT_TRUE(deserialise_tensors(serialise_tensors({})).empty());
}

}  // namespace
}  // namespace gos::search
