#include "cli/cli.h"

#include <fmt/core.h>

#include <exception>

#include "cli/commands.h"
#include "data/data.h"
#include "device/device.h"
#include "dist/dist.h"
#include "graph/graph.h"
#include "ir/ir.h"
#include "graph/ort_runner.h"
#include "measure/measure.h"
#include "search/candidates.h"
#include "zoo/zoo.h"

namespace gos::cli {

namespace {

// Bad input (a malformed expression or file, a missing dataset, an unknown model): one line, exit 2.
int report_bad_input(const std::exception& error) {
  fmt::print(stderr, "gos: {}\n", error.what());
  return kBadInput;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"gos: Grassroots Operator Search. Makes a trained network faster on an edge device by replacing "
               "its operators with cheaper ones derived from their mathematical instructions."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gos 0.1.0");
  auto expr = add_expr_command(app);
  auto inspect = add_inspect_command(app);
  auto train = add_train_command(app);
  auto eval = add_eval_command(app);
  auto candidates = add_candidates_command(app);
  auto bench = add_bench_command(app);
  auto latency_model = add_latency_model_command(app);
  auto adapt = add_adapt_command(app);
  auto data = add_data_command(app);
  auto quantize = add_quantize_command(app);
  auto run = add_run_command(app);
  auto conformance = add_conformance_command(app);
  auto convert = add_convert_command(app);
  auto agent = add_agent_command(app);
  auto device = add_device_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    fmt::print(stderr, "gos: {} (run 'gos --help' for usage)\n", error.what());
    return kBadInput;
  }

  try {
    if (app.got_subcommand("expr")) return expr();
    if (app.got_subcommand("inspect")) return inspect();
    if (app.got_subcommand("train")) return train();
    if (app.got_subcommand("eval")) return eval();
    if (app.got_subcommand("candidates")) return candidates();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("latency-model")) return latency_model();
    if (app.got_subcommand("adapt")) return adapt();
    if (app.got_subcommand("data")) return data();
    if (app.got_subcommand("quantize")) return quantize();
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("conformance")) return conformance();
    if (app.got_subcommand("convert")) return convert();
    if (app.got_subcommand("agent")) return agent();
    if (app.got_subcommand("device")) return device();
  } catch (const ir::IrError& error) {
    return report_bad_input(error);
  } catch (const graph::GraphError& error) {
    return report_bad_input(error);
  } catch (const data::DataError& error) {
    return report_bad_input(error);
  } catch (const measure::MeasureError& error) {
    return report_bad_input(error);
  } catch (const graph::OrtError& error) {
    fmt::print(stderr, "gos: {}\n", error.what());
    return kFailure;
  } catch (const search::SearchError& error) {
    return report_bad_input(error);
  } catch (const zoo::ZooError& error) {
    return report_bad_input(error);
  } catch (const dist::LaunchError& error) {
    return report_bad_input(error);
  } catch (const dist::DistError& error) {
    // Another rank failed or stopped answering: this rank's input was fine.
    fmt::print(stderr, "gos: {}\n", error.what());
    return kFailure;
  } catch (const device::DeviceError& error) {
    // A device that cannot be reached or trusted: the job could not run, the input was fine.
    fmt::print(stderr, "gos: {}\n", error.what());
    return kFailure;
  } catch (const std::invalid_argument& error) {
    return report_bad_input(error);
  } catch (const std::exception& error) {
    fmt::print(stderr, "gos: internal error: {}\n", error.what());
    return kInternalError;
  }
  return kInternalError;
}

}  // namespace gos::cli
