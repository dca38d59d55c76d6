// `gos adapt` under faults, as a user meets them: a full or read-only output disk, SIGINT and
// SIGTERM, a damaged journal, a second run on the same folder. Each gives one clear line, loses
// no finished work, and the same command resumes once the fault is gone.
#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"
#include "search/candidates.h"
#include "search/journal.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

using testing::Background;
using testing::run_gos;
using testing::shell_quote;
using testing::small_adapt;
namespace fs = std::filesystem;

std::string command_line(const std::vector<std::string>& arguments) {
  std::string line = shell_quote(GOS_BINARY);
  for (const auto& argument : arguments) line += " " + shell_quote(argument);
  return line;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int lines_in(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

// Waits (up to two minutes) until the run's journal holds an entry of `stage`.
bool wait_for_entry(const fs::path& journal_file, const std::string& stage, int entries = 1) {
  for (int i = 0; i < 1200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(journal_file)) continue;
    try {
      if (search::Journal(journal_file).entries(stage) >= entries) return true;
    } catch (const search::SearchError&) {
      // the run is creating it
    }
  }
  return false;
}

// Runs a shell script in a mount namespace of its own (root, or an unprivileged user namespace):
// the file systems it mounts vanish with it and no other process sees them. Returns false when
// this machine allows neither.
bool can_mount_privately() {
  return std::system("unshare -m --propagation private true 2>/dev/null") == 0 ||
         std::system("unshare -rm --propagation private true 2>/dev/null") == 0;
}

int run_in_private_mounts(const std::string& script, const fs::path& script_file) {
  std::ofstream(script_file) << "set -u\n" << script;
  const std::string unshare = std::system("unshare -m --propagation private true 2>/dev/null") == 0 ? "unshare -m" : "unshare -rm";
  return std::system((unshare + " --propagation private bash " + shell_quote(script_file.string())).c_str());
}

// The output folder on a 1 MiB tmpfs fills up when the run records the first layer's inputs: the
// run stops with one line, its journal readable; remounted read-only, it says so; remounted with
// room, the same command resumes and redoes nothing it had finished. A fresh run on a read-only
// file system is refused the same way.
TEST(AdaptFaults, AFullOrReadOnlyOutputDiskIsOneClearLineAndTheRunResumesWithRoom) {
  if (!can_mount_privately()) GTEST_SKIP() << "mounting a small tmpfs needs root or unprivileged user namespaces";
  util::ScratchFolder scratch("gos-adapt-faults");
  const fs::path disk = scratch.file("disk"), fresh = scratch.file("fresh"), kept = scratch.file("kept");
  fs::create_directories(disk);
  fs::create_directories(fresh);
  fs::create_directories(kept);
  const fs::path cache = scratch.file("latency.sqlite");
  const std::string adapt = command_line(small_adapt(disk / "out", cache));
  const std::string err = shell_quote(scratch.file("err").string());
  std::ostringstream script;
  script << "d=" << shell_quote(disk.string()) << "; k=" << shell_quote(kept.string()) << "\n"
         << "mount -t tmpfs -o size=1m tmpfs \"$d\" || exit 90\n"
         << adapt << " --quiet 2>" << err << ".full; echo $? > \"$k/full.code\"\n"
         << "cp -a \"$d/out\" \"$k/after-full\"\n"
         << "mount -o remount,ro \"$d\" || exit 91\n"
         << adapt << " --quiet 2>" << err << ".ro; echo $? > \"$k/ro.code\"\n"
         << "mount -o remount,rw,size=256m \"$d\" || exit 92\n"
         << adapt << " --quiet 2>" << err << ".roomy; echo $? > \"$k/roomy.code\"\n"
         << "cp -a \"$d/out\" \"$k/after-roomy\"\n"
         << "mount -t tmpfs -o ro,size=1m tmpfs " << shell_quote(fresh.string()) << " || exit 93\n"
         << command_line(small_adapt(fresh / "out", cache)) << " --quiet 2>" << err << ".fresh; echo $? > \"$k/fresh.code\"\n";
  ASSERT_EQ(run_in_private_mounts(script.str(), scratch.file("faults.sh")), 0) << "a mount failed";

  const std::string full = read_file(scratch.file("err.full"));
  EXPECT_EQ(read_file(kept / "full.code"), "2\n") << full;
  EXPECT_EQ(lines_in(full), 1) << full;
  EXPECT_NE(full.find("its disk is full"), std::string::npos) << full;
  EXPECT_NE(full.find("rerun the same command to resume"), std::string::npos) << full;
  {
    search::Journal journal(kept / "after-full" / "run.sqlite");  // readable, and holds what was finished
    EXPECT_GE(journal.entries("latency"), 1);
  }

  const std::string read_only = read_file(scratch.file("err.ro"));
  EXPECT_EQ(read_file(kept / "ro.code"), "2\n") << read_only;
  EXPECT_EQ(lines_in(read_only), 1) << read_only;
  EXPECT_NE(read_only.find("read-only"), std::string::npos) << read_only;

  EXPECT_EQ(read_file(kept / "roomy.code"), "0\n") << read_file(scratch.file("err.roomy"));
  search::Journal resumed(kept / "after-roomy" / "run.sqlite");
  for (const char* stage : {"latency", "predicted_slower", "recorded", "distilled", "sensitivity"}) {
    EXPECT_EQ(resumed.max_times_written(stage), 1) << stage << " work was redone";
  }
  EXPECT_TRUE(fs::exists(kept / "after-roomy" / "adapted.onnx"));

  const std::string fresh_err = read_file(scratch.file("err.fresh"));
  EXPECT_EQ(read_file(kept / "fresh.code"), "2\n") << fresh_err;
  EXPECT_EQ(lines_in(fresh_err), 1) << fresh_err;
  EXPECT_NE(fresh_err.find("read-only"), std::string::npos) << fresh_err;
}

// SIGINT in the middle of the fidelity stage and SIGTERM in fine-tuning each stop the run within
// seconds, with the journal consistent and the way to resume said; the rerun redoes nothing.
TEST(AdaptFaults, SigintAndSigtermStopTheRunWithinSecondsAndItResumes) {
  util::ScratchFolder scratch("gos-adapt-signals");
  const fs::path out = scratch.file("out"), journal_file = out / "run.sqlite";
  const auto arguments = small_adapt(out, scratch.file("latency.sqlite"));
  for (auto [signal, stage, code] : {std::tuple{SIGINT, "distilled", 130}, std::tuple{SIGTERM, "sensitivity", 143}}) {
    Background run(arguments, scratch.file("err"));
    ASSERT_TRUE(wait_for_entry(journal_file, stage, 2)) << "the run never reached " << stage;
    const auto sent = std::chrono::steady_clock::now();
    kill(run.pid(), signal);
    const int exit_code = run.wait();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
    const std::string err = read_file(run.stderr_file());
    EXPECT_EQ(exit_code, code) << err;
    EXPECT_LT(seconds, 20) << "it took " << seconds << " s to stop";
    EXPECT_NE(err.find("rerun the same command to resume"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(out / "report.json"));
    // Consistent: every distilled candidate has its error, and the journal opens.
    search::Journal journal(journal_file);
    EXPECT_EQ(journal.entries("distilled"), journal.entries("distilled_error"));
  }
  auto resumed = run_gos(arguments);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  search::Journal journal(journal_file);
  for (const char* stage : {"latency", "recorded", "distilled", "distilled_error", "sensitivity", "finetune"}) {
    EXPECT_EQ(journal.max_times_written(stage), 1) << stage << " work was redone";
  }
}

// A journal cut short (a disk that filled up under another program, a bad copy) is found on
// opening and refused with what to do, before any work; --restart starts over.
TEST(AdaptFaults, ADamagedJournalIsRefusedWithWhatToDoAndRestartStartsOver) {
  util::ScratchFolder scratch("gos-adapt-damaged");
  const fs::path out = scratch.file("out"), journal_file = out / "run.sqlite";
  {
    search::Journal journal(journal_file);
    journal.put_text("profile", "machine_reference", "{}");
    for (int i = 0; i < 40; ++i) journal.put_tensors("recorded", "layer" + std::to_string(i), {{"0", ir::Tensor({64, 64}, 1.0f)}});
  }
  fs::resize_file(journal_file, fs::file_size(journal_file) / 2);
  const auto arguments = small_adapt(out, scratch.file("latency.sqlite"));
  auto refused = run_gos(arguments);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_EQ(lines_in(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("is damaged"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--restart"), std::string::npos) << refused.err;

  // Not a database at all.
  std::ofstream(journal_file, std::ios::trunc) << std::string(8192, 'x');
  auto not_a_journal = run_gos(arguments);
  EXPECT_EQ(not_a_journal.exit_code, 2) << not_a_journal.err;
  EXPECT_NE(not_a_journal.err.find("--restart"), std::string::npos) << not_a_journal.err;

  auto restart = arguments;
  restart.push_back("--restart");
  auto restarted = run_gos(restart);
  ASSERT_EQ(restarted.exit_code, 0) << restarted.err;
  EXPECT_TRUE(fs::exists(out / "report.json"));
}

// Two runs on one output folder would write the same journal: the second refuses at once, naming
// the first; once the first is gone (even killed), the folder is free.
TEST(AdaptFaults, ASecondRunOnTheSameFolderRefusesAtOnceNamingTheFirst) {
  util::ScratchFolder scratch("gos-adapt-lock");
  const fs::path out = scratch.file("out");
  const auto arguments = small_adapt(out, scratch.file("latency.sqlite"));
  Background first(arguments, scratch.file("err"));
  ASSERT_TRUE(wait_for_entry(out / "run.sqlite", "profile"));
  const auto started = std::chrono::steady_clock::now();
  auto second = run_gos(arguments);
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("in use by another gos (pid " + std::to_string(first.pid()) + ")"), std::string::npos) << second.err;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 60) << "it did not refuse at once";

  kill(first.pid(), SIGKILL);
  first.wait();
  // The folder is free: a run with other settings now gets as far as the journal, which refuses it.
  auto other = arguments;
  *(std::find(other.begin(), other.end(), "--seed") + 1) = "8";
  auto third = run_gos(other);
  EXPECT_EQ(third.exit_code, 2) << third.err;
  EXPECT_NE(third.err.find("holds a run with other settings"), std::string::npos) << third.err;
}

}  // namespace
}  // namespace gos::cli
