#pragma once
// Test helpers for `gos adapt` as a user runs it: a small search, gos started in the background,
// and what a run wrote (its report, its journal's keys).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

extern char** environ;

namespace gos::cli::testing {

// A search small enough for the suite: a zoo ResNet-20 on synthetic images, its three hottest
// operators, two candidates each, short distillation, one short fine-tuning epoch.
inline std::vector<std::string> small_adapt(const std::filesystem::path& out, const std::filesystem::path& cache) {
  return {"adapt", "resnet20", "--data", "synthetic:300", "--max-layers", "3", "--rules", "shrink", "--rules", "rank_split",
          "--candidates-per-layer", "2", "--calibration-images", "48", "--held-out-images", "16", "--distill-steps", "150",
          "--sensitivity-images", "200", "--finetune-epochs", "1", "--train-threads", "1", "--speedup", "1.05",
          "--max-acc-drop", "100", "--seed", "7", "-o", out.string(), "--cache", cache.string()};
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// The keys a run's journal holds for a stage. The journal has no listing of its keys, so they are
// read from its table.
inline std::vector<std::string> journal_keys(const std::filesystem::path& journal_file, const std::string& stage) {
  std::vector<std::string> keys;
  sqlite3* db = nullptr;
  if (sqlite3_open(journal_file.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* select = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT key FROM entries WHERE stage = ?", -1, &select, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(select, 1, stage.c_str(), -1, SQLITE_TRANSIENT);
      while (sqlite3_step(select) == SQLITE_ROW) keys.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(select, 0)));
    }
    sqlite3_finalize(select);
  }
  sqlite3_close(db);
  return keys;
}

// The largest count of writes of one entry of a stage (1: nothing was written twice).
inline int64_t most_writes(const std::filesystem::path& journal_file, const std::string& stage) {
  int64_t most = 0;
  sqlite3* db = nullptr;
  if (sqlite3_open(journal_file.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* select = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(times_written), 0) FROM entries WHERE stage = ?", -1, &select, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(select, 1, stage.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(select) == SQLITE_ROW) most = sqlite3_column_int64(select, 0);
    }
    sqlite3_finalize(select);
  }
  sqlite3_close(db);
  return most;
}

// gos started in the background, its stdout discarded and its stderr kept in a file (or
// discarded), with `environment` ("NAME=value") added to this process's; killed when the object
// goes if it is still running.
class Background {
 public:
  Background(const std::vector<std::string>& arguments, const std::filesystem::path& stderr_file = "/dev/null",
             std::vector<std::string> environment = {})
      : stderr_file_(stderr_file) {
    std::vector<std::string> argv_strings{GOS_BINARY};
    argv_strings.insert(argv_strings.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (auto& argument : argv_strings) argv.push_back(argument.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> env;
    for (char** variable = environ; *variable; ++variable) env.push_back(*variable);
    for (auto& variable : environment) env.push_back(variable.data());
    env.push_back(nullptr);
    posix_spawn(&pid_, GOS_BINARY, &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  const std::filesystem::path& stderr_file() const { return stderr_file_; }
  // Waits for it to end: its exit code, or minus the signal that ended it.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  std::filesystem::path stderr_file_;
};

}  // namespace gos::cli::testing
