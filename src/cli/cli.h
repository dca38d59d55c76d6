#pragma once
// The public face of gos's command line: one binary, one subcommand per job.
// Exit codes: 0 success, 1 the job failed (e.g. a constraint was not met), 2 bad usage or input
// (parse errors, unreadable files), 3 an internal error.
namespace gos::cli {

enum ExitCode : int { kSuccess = 0, kFailure = 1, kBadInput = 2, kInternalError = 3 };

int run(int argc, char** argv);

}  // namespace gos::cli
