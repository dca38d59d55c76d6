// The latency cache shared by processes: two gos commands timing operators at once (a bench and an
// adapt, or two adapts with other output folders) write the same file.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "measure/cache.h"
#include "util/scratch_folder.h"

namespace gos::measure {
namespace {

constexpr int kRowsPerWriter = 300;

CachedMeasurement row(const std::string& writer, int i) {
  return {{"mobile@6", 1, "machine", writer + "-op" + std::to_string(i)}, {1.0 + i, 0.9 + i, 1.1 + i, 20}, {}, "text", 2, 1.0 + i};
}

// Stores single rows and chunks in turn, as measure_cached and put_blob do, as fast as it can.
void write_rows(const std::filesystem::path& path, const std::string& writer) {
  LatencyCache cache(path);
  for (int i = 0; i < kRowsPerWriter; i += 3) {
    cache.store(row(writer, i));
    cache.store(std::vector<CachedMeasurement>{row(writer, i + 1), row(writer, i + 2)});
    cache.put_blob(writer + "-blob" + std::to_string(i), {"mobile@6", 1, "machine", ""}, "{}");
  }
}

TEST(LatencyCacheSharing, TwoProcessesWritingAtOnceLoseNoRows) {
  util::ScratchFolder folder("gos-cache-sharing");
  const auto path = folder.file("latency.sqlite");
  { LatencyCache create(path); }
  int start[2];
  ASSERT_EQ(pipe(start), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char go;
    [[maybe_unused]] ssize_t got = read(start[0], &go, 1);  // both begin together
    try {
      write_rows(path, "child");
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  ASSERT_EQ(write(start[1], "g", 1), 1);
  write_rows(path, "parent");
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's writes failed";
  LatencyCache cache(path);
  EXPECT_EQ(cache.all("mobile@6", 1, "machine").size(), 2u * kRowsPerWriter);
  for (const char* writer : {"parent", "child"}) {
    for (int i = 0; i < kRowsPerWriter; i += 3) {
      EXPECT_TRUE(cache.get_blob(std::string(writer) + "-blob" + std::to_string(i), {"mobile@6", 1, "machine", ""})) << writer << i;
    }
  }
}

}  // namespace
}  // namespace gos::measure
