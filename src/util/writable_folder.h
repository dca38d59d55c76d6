#pragma once
// Why a folder cannot take a write, in the words a user can act on: its file system is read-only,
// or full. Used to turn a failed write (SQLite's "disk I/O error", a stream that failed) into one
// line that says what to fix.
#include <filesystem>
#include <string>

namespace gos::util {

// "its file system is read-only", "its disk is full (12 KiB free)", or "" when neither is so.
// Looks at the nearest existing folder at or above `folder`.
std::string why_not_writable(const std::filesystem::path& folder);

}  // namespace gos::util
