#pragma once
// Test helper: runs the built `gos` binary with arguments and captures what it prints.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace gos::cli::testing {

struct Run {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline Run run_gos(const std::vector<std::string>& arguments) {
  char err_path_template[] = "/tmp/gos-test-stderr-XXXXXX";
  int err_fd = mkstemp(err_path_template);
  if (err_fd >= 0) close(err_fd);
  std::string err_path = err_path_template;
  std::string command = GOS_BINARY;
  for (const auto& argument : arguments) command += " " + shell_quote(argument);
  command += " 2>" + err_path;
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer;
  while (size_t read = fread(buffer.data(), 1, buffer.size(), pipe)) run.out.append(buffer.data(), read);
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (FILE* err = fopen(err_path.c_str(), "r")) {
    while (size_t read = fread(buffer.data(), 1, buffer.size(), err)) run.err.append(buffer.data(), read);
    fclose(err);
  }
  std::remove(err_path.c_str());
  return run;
}

}  // namespace gos::cli::testing
