#include "cli/cli.h"
#include "util/allocator.h"

int main(int argc, char** argv) {
  gos::util::keep_freed_memory_for_reuse();
  return gos::cli::run(argc, argv);
}
