// Every `build/gos` command in the README's sh blocks runs as written, in a folder holding what the
// README assumes the user has: model.onnx (an RGB classifier PyTorch exported with a dynamic height
// and width) and photos/ (its ImageFolder), both from scripts/make_own_data_fixtures.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "cli/run_binary.h"
#include "util/scratch_folder.h"

namespace gos::cli {
namespace {

namespace fs = std::filesystem;

// The lines of the README's ```sh blocks that run gos, without their trailing comments.
std::vector<std::string> gos_commands(const fs::path& readme) {
  std::ifstream file(readme);
  std::vector<std::string> commands;
  bool in_sh = false;
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("```")) {
      in_sh = !in_sh && line == "```sh";
      continue;
    }
    if (!in_sh || !line.starts_with("build/gos ")) continue;
    if (const auto comment = line.find("  #"); comment != std::string::npos) line.resize(comment);
    commands.push_back(line);
  }
  return commands;
}

TEST(ReadmeCommands, RunAsWrittenOnAModelAndAnImageFolder) {
  const fs::path fixtures = GOS_OWN_FIXTURES;
  if (!fs::exists(fixtures / "manifest.json")) GTEST_SKIP() << "no fixtures in " << fixtures << " (python3-torch, python3-pil)";
  const auto commands = gos_commands(GOS_README);
  // inspect, eval, adapt and bench --against, at least.
  ASSERT_GE(commands.size(), 4u) << "the README should show how to adapt your own model";

  util::ScratchFolder scratch("gos-readme-test");
  const fs::path home = scratch.path();
  fs::copy_file(fixtures / "rgb_classifier.onnx", home / "model.onnx");
  fs::copy(fixtures / "images", home / "photos", fs::copy_options::recursive);
  fs::create_directories(home / "build");
  fs::create_symlink(GOS_BINARY, home / "build" / "gos");

  for (const std::string& command : commands) {
    SCOPED_TRACE(command);
    const fs::path log = home / "command.log";
    const std::string shell = "cd " + testing::shell_quote(home.string()) + " && GOS_CACHE=" +
                              testing::shell_quote((home / "latency.sqlite").string()) + " " + command + " >" +
                              testing::shell_quote(log.string()) + " 2>&1";
    const int status = std::system(shell.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    std::stringstream printed;
    printed << std::ifstream(log).rdbuf();
    // gos adapt exits 1 when it finished but missed the goal, which a tiny fixture may.
    const int allowed = command.starts_with("build/gos adapt ") ? 1 : 0;
    EXPECT_LE(WEXITSTATUS(status), allowed) << printed.str();
  }
  EXPECT_TRUE(fs::exists(home / "out" / "adapted.onnx"));
  EXPECT_TRUE(fs::exists(home / "out" / "adapted.pt"));
}

}  // namespace
}  // namespace gos::cli
