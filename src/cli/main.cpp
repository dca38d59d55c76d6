#include "cli/cli.h"

int main(int argc, char** argv) { return gos::cli::run(argc, argv); }
