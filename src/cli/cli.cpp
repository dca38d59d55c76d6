#include "cli/cli.h"

#include <fmt/core.h>

#include <exception>

#include "cli/commands.h"
#include "ir/ir.h"

namespace gos::cli {

int run(int argc, char** argv) {
  CLI::App app{"gos: Grassroots Operator Search. Makes a trained network faster on an edge device by replacing "
               "its operators with cheaper ones derived from their mathematical instructions."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gos 0.1.0");
  auto expr = add_expr_command(app);

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
  } catch (const ir::IrError& error) {
    fmt::print(stderr, "gos: {}\n", error.what());
    return kBadInput;
  } catch (const std::exception& error) {
    fmt::print(stderr, "gos: internal error: {}\n", error.what());
    return kInternalError;
  }
  return kInternalError;
}

}  // namespace gos::cli
