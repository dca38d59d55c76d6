#pragma once
// A fresh folder under the system's temporary directory, removed with everything in it when the
// object goes: models exported for another runtime to load, files written by tests.
#include <stdlib.h>  // mkdtemp

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace gos::util {

class ScratchFolder {
 public:
  // Throws std::runtime_error naming the temporary directory when no folder can be made there.
  explicit ScratchFolder(const std::string& prefix = "gos") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(pattern.data())) {
      throw std::runtime_error("cannot create a temporary folder in " + std::filesystem::temp_directory_path().string() +
                               " (set TMPDIR to a writable folder)");
    }
    path_ = pattern;
  }
  ~ScratchFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace gos::util
