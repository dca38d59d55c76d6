// Why a folder cannot take a write (see writable_folder.h).
#include "util/writable_folder.h"

#include <sys/statvfs.h>

namespace gos::util {

namespace {

// Below this a write of a journal page or a model file is likely to fail.
constexpr unsigned long long kNearlyFullBytes = 1 << 20;

}  // namespace

std::string why_not_writable(const std::filesystem::path& folder) {
  std::filesystem::path existing = folder.empty() ? std::filesystem::path(".") : folder;
  std::error_code error;
  while (!std::filesystem::exists(existing, error) && existing.has_parent_path() && existing != existing.parent_path()) {
    existing = existing.parent_path();
  }
  struct statvfs stats {};
  if (::statvfs(existing.c_str(), &stats) != 0) return "";
  if (stats.f_flag & ST_RDONLY) return "its file system is read-only";
  const unsigned long long free_bytes = static_cast<unsigned long long>(stats.f_bavail) * stats.f_frsize;
  if (free_bytes < kNearlyFullBytes) return "its disk is full (" + std::to_string(free_bytes / 1024) + " KiB free)";
  return "";
}

}  // namespace gos::util
