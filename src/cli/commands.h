#pragma once
// Internal to the CLI: each subcommand registers its options on the app and returns the action
// that runs it once the command line is parsed.
#include <CLI/CLI.hpp>
#include <functional>

namespace gos::cli {

using Action = std::function<int()>;

Action add_expr_command(CLI::App& app);
Action add_inspect_command(CLI::App& app);
Action add_train_command(CLI::App& app);
Action add_eval_command(CLI::App& app);
Action add_candidates_command(CLI::App& app);
Action add_bench_command(CLI::App& app);
Action add_latency_model_command(CLI::App& app);
Action add_adapt_command(CLI::App& app);
Action add_data_command(CLI::App& app);
Action add_quantize_command(CLI::App& app);
Action add_run_command(CLI::App& app);
Action add_conformance_command(CLI::App& app);
Action add_convert_command(CLI::App& app);
Action add_agent_command(CLI::App& app);
Action add_device_command(CLI::App& app);

}  // namespace gos::cli
