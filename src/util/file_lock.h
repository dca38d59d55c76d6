#pragma once
// An exclusive lock on a file, held while the object lives: flock(2), which the kernel releases
// when the process ends however it ends, so a killed process never leaves a stale lock. The holder
// writes its pid into the file, so that another process can say who holds it.
#include <filesystem>
#include <optional>
#include <string>

namespace gos::util {

class FileLock {
 public:
  // Takes the lock at once if no one holds it. Throws std::system_error when the file cannot be
  // opened or created.
  explicit FileLock(const std::filesystem::path& file);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  bool held() const { return held_; }
  // When not held: the pid the holder wrote (empty if it has not written it yet).
  const std::string& holder() const { return holder_; }

 private:
  int fd_ = -1;
  bool held_ = false;
  std::string holder_;
};

}  // namespace gos::util
