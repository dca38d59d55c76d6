#include "util/progress.h"

#include <gtest/gtest.h>

namespace gos::util {
namespace {

TEST(Progress, FormatsDurationsForPeople) {
  EXPECT_EQ(Progress::format_duration(3.24), "3.2s");
  EXPECT_EQ(Progress::format_duration(724), "12m04s");
  EXPECT_EQ(Progress::format_duration(3720), "1h02m");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

TEST(Progress, IsSilentWhenStderrIsNotATerminal) {
  testing::internal::CaptureStderr();
  {
    Progress progress("stage", 10);
    progress.update(5, "detail");
    progress.finish();
  }
  std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(printed.empty()) << printed;
}

}  // namespace
}  // namespace gos::util
