// An exclusive lock on a file (see file_lock.h).
#include "util/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace gos::util {

FileLock::FileLock(const std::filesystem::path& file) {
  // Close-on-exec: a child process (ONNX Runtime's runner) must not keep the lock alive.
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    held_ = true;
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
      const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
      (void)written;  // the pid only helps another process name the holder
    }
    return;
  }
  char buffer[32] = {};
  const ssize_t read = ::pread(fd_, buffer, sizeof buffer - 1, 0);
  for (ssize_t i = 0; i < read && buffer[i] >= '0' && buffer[i] <= '9'; ++i) holder_ += buffer[i];
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace gos::util
