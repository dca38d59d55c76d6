// `gos agent` and `gos device` as a user runs them, two processes on localhost: pairing, checking,
// timing on the "board", and what the workstation says when the agent is killed mid-request.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "cli/adapt_test_support.h"
#include "cli/run_binary.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;
using testing::run_gos;

const std::string kModel = std::string(GOS_MODELS_DIR) + "/resnet20.onnx";

// `gos agent` in a process of its own, with what it printed until it was ready.
class AgentProcess {
 public:
  explicit AgentProcess(const fs::path& config) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(GOS_BINARY, GOS_BINARY, "agent", "--listen", "127.0.0.1:0", "--config", config.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    stdout_ = fdopen(out[0], "r");
    char line[4096];
    const std::regex pairing("gos device add NAME (https://\\S+) --fingerprint (\\S+) --token (\\S+)");
    while (fgets(line, sizeof line, stdout_)) {
      printed_ += line;
      std::cmatch match;
      if (std::regex_search(line, match, pairing)) {
        url_ = match[1], fingerprint_ = match[2], token_ = match[3];
        break;
      }
    }
  }
  ~AgentProcess() {
    kill(SIGKILL);
    if (stdout_) fclose(stdout_);
  }
  void kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string& url() const { return url_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& token() const { return token_; }
  const std::string& printed() const { return printed_; }
  // Everything it printed, once it has ended (its request lines included).
  std::string rest() {
    std::string text = printed_;
    char line[4096];
    while (stdout_ && fgets(line, sizeof line, stdout_)) text += line;
    return text;
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  std::string printed_, url_, fingerprint_, token_;
};

class DeviceCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() / ("gos-device-cli-" + std::to_string(::getpid()));
    fs::remove_all(folder_);
    fs::create_directories(folder_);
    // The workstation's devices.json goes here, not into the user's own configuration.
    setenv("XDG_CONFIG_HOME", (folder_ / "workstation").c_str(), 1);
  }
  void TearDown() override {
    unsetenv("XDG_CONFIG_HOME");
    fs::remove_all(folder_);
  }
  fs::path folder_;
};

int lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST_F(DeviceCommands, PairCheckAndTimeOnTheAgentThenSurviveItsDeath) {
  const fs::path config = folder_ / "agent";
  auto agent = std::make_unique<AgentProcess>(config);
  ASSERT_FALSE(agent->url().empty()) << agent->printed();

  // A fingerprint other than the agent's: nothing is recorded.
  std::string wrong = agent->fingerprint();
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  auto mistrusted = run_gos({"device", "add", "board", agent->url(), "--fingerprint", wrong, "--token", agent->token()});
  EXPECT_EQ(mistrusted.exit_code, 1) << mistrusted.err;
  EXPECT_NE(mistrusted.err.find("presented certificate"), std::string::npos) << mistrusted.err;
  EXPECT_EQ(lines(mistrusted.err), 1) << mistrusted.err;
  EXPECT_EQ(run_gos({"device", "list", "--json"}).out, "[]\n");

  auto added = run_gos({"device", "add", "board", agent->url(), "--fingerprint", agent->fingerprint(), "--token-file",
                        (config / "token").string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_NE(added.out.find("paired board"), std::string::npos) << added.out;
  EXPECT_NE(run_gos({"device", "list"}).out.find("board  " + agent->url()), std::string::npos);

  auto checked = run_gos({"device", "check", "board", "--json"});
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  const auto check = nlohmann::json::parse(checked.out);
  EXPECT_TRUE(check["authenticated"].get<bool>());
  EXPECT_FALSE(check["machine"]["fingerprint"].get<std::string>().empty());

  auto bench = run_gos({"bench", kModel, "--device", "board", "--budget", "0.3", "--json"});
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  const auto timed = nlohmann::json::parse(bench.out);
  EXPECT_EQ(timed["device"], "board");
  EXPECT_GT(timed["median_ms"].get<double>(), 0);
  EXPECT_GE(timed["runs"].get<int>(), 20);

  auto unknown = run_gos({"bench", kModel, "--device", "pi5"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no device named 'pi5': the paired ones are board"), std::string::npos) << unknown.err;

  // Killed mid-request (a classifier at 448x448 timed for 20 s): the workstation says which device
  // and what to do, in one line.
  auto long_bench = std::async(std::launch::async, [&] {
    return run_gos({"bench", std::string(GOS_OWN_FIXTURES) + "/rgb_classifier.onnx", "--input-shape", "1,3,448,448", "--device",
                    "board", "--budget", "20"});
  });
  std::this_thread::sleep_for(std::chrono::seconds(4));
  agent->kill(SIGKILL);
  const auto interrupted = long_bench.get();
  EXPECT_EQ(interrupted.exit_code, 1) << interrupted.err;
  EXPECT_NE(interrupted.err.find("device board: the agent at " + agent->url() + " closed the connection mid-request"),
            std::string::npos)
      << interrupted.err;
  EXPECT_EQ(lines(interrupted.err), 1) << interrupted.err;
  auto gone = run_gos({"device", "check", "board"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("cannot connect"), std::string::npos) << gone.err;

  // Restarted on the same configuration: the same identity, on a new port here; paired again to it.
  agent = std::make_unique<AgentProcess>(config);
  ASSERT_FALSE(agent->url().empty()) << agent->printed();
  auto readded = run_gos({"device", "add", "board", agent->url(), "--fingerprint", agent->fingerprint(), "--token", agent->token()});
  ASSERT_EQ(readded.exit_code, 0) << readded.err;
  EXPECT_EQ(run_gos({"device", "check", "board"}).exit_code, 0);
  auto after = run_gos({"bench", kModel, "--device", "board", "--budget", "0.2", "--json"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

int count(const std::string& text, const std::string& part) {
  int found = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++found;
  return found;
}

// A short adapt whose every timing is the agent's; the agent killed mid-run stops it with one
// line, and the rerun after the agent is back finishes from the journal.
TEST_F(DeviceCommands, AdaptTimesOnTheDeviceAndResumesAfterTheAgentIsBack) {
  const fs::path config = folder_ / "agent";
  auto agent = std::make_unique<AgentProcess>(config);
  ASSERT_FALSE(agent->url().empty()) << agent->printed();
  ASSERT_EQ(run_gos({"device", "add", "board", agent->url(), "--fingerprint", agent->fingerprint(), "--token", agent->token()}).exit_code, 0);
  auto arguments = testing::small_adapt(folder_ / "out", folder_ / "latency.sqlite");
  arguments.insert(arguments.end(), {"--device", "board"});

  auto interrupted = std::async(std::launch::async, [&] { return run_gos(arguments); });
  std::this_thread::sleep_for(std::chrono::seconds(8));
  agent->kill(SIGKILL);
  const std::string served = agent->rest();
  const auto stopped = interrupted.get();
  EXPECT_GT(count(served, "POST /v1/bench 200"), 0) << served;
  EXPECT_EQ(stopped.exit_code, 1) << stopped.err;
  EXPECT_NE(stopped.err.find("gos: device board: "), std::string::npos) << stopped.err;

  agent = std::make_unique<AgentProcess>(config);
  ASSERT_EQ(run_gos({"device", "add", "board", agent->url(), "--fingerprint", agent->fingerprint(), "--token", agent->token()}).exit_code, 0);
  auto resumed = run_gos(arguments);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const auto report = testing::read_json(folder_ / "out" / "report.json");
  EXPECT_EQ(report["machine"], nlohmann::json::parse(run_gos({"device", "check", "board", "--json"}).out)["machine"]["fingerprint"]);
  agent->kill(SIGTERM);
  const std::string second = agent->rest();
  EXPECT_GT(count(second, "POST /v1/bench 200"), 0) << second;  // the verification, at least, timed there
}

TEST_F(DeviceCommands, RefusesMalformedPairingsAsBadInput) {
  const std::string fingerprint = [] {
    std::string text;
    for (int i = 0; i < 32; ++i) text += (i ? ":" : "") + std::string("0F");
    return text;
  }();
  const std::string token(64, 'a');
  for (const auto& arguments : std::vector<std::vector<std::string>>{
           {"device", "add", "pi", "http://pi.local:7070", "--fingerprint", fingerprint, "--token", token},
           {"device", "add", "pi", "https://pi.local:7070", "--fingerprint", "AB:CD", "--token", token},
           {"device", "add", "pi", "https://pi.local:7070", "--fingerprint", fingerprint},
           {"device", "add", "p i", "https://pi.local:7070", "--fingerprint", fingerprint, "--token", token},
           {"device", "check", "pi"},
           {"agent", "--listen", "localhost"}}) {
    auto run = run_gos(arguments);
    EXPECT_EQ(run.exit_code, 2) << arguments[1] << " " << arguments[2] << ": " << run.err;
    EXPECT_EQ(lines(run.err), 1) << run.err;
  }
}

}  // namespace
}  // namespace gos::cli
