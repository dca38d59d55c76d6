#pragma once
// The public face of a run's journal: OUT/run.sqlite keeps every finished piece of work of
// `gos adapt` (measured latencies, recorded activations, trained candidates, the search's front,
// fine-tuned models, verifications), so a run killed at any moment and restarted with the same
// command picks up where it stopped. Each entry is written once, in its own transaction, when its
// work is done; the count of writes per entry is kept so tests can prove nothing was redone.
// Plain C++ and SQLite.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ir/ir.h"

namespace gos::search {

class Journal {
 public:
  // Opens (creating it and its folder if needed) the journal file. Throws SearchError with one line
  // that says what to do when it cannot be opened or written (a read-only or full disk), is not a
  // gos journal, or is damaged (cut short, overwritten in part: checked on opening).
  explicit Journal(const std::filesystem::path& file);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // The run's settings (everything that changes results): stored by the first run; a restart
  // with other settings throws SearchError naming the first difference, so that a resumed run
  // never mixes two configurations.
  void bind_settings(const std::string& settings_json);
  // The settings stored by the first run, if any; and a replacement of them, for a caller that has
  // found the stored ones equivalent to its own in an older form.
  std::optional<std::string> bound_settings() const;
  void rebind_settings(const std::string& settings_json);

  std::optional<std::string> text(const std::string& stage, const std::string& key) const;
  void put_text(const std::string& stage, const std::string& key, const std::string& value);

  std::optional<ir::TensorMap> tensors(const std::string& stage, const std::string& key) const;
  void put_tensors(const std::string& stage, const std::string& key, const ir::TensorMap& tensors);

  // Runs `work`, whose writes land together or not at all: a unit of work that writes several
  // entries, killed in the middle, is redone whole and never leaves a part of itself behind.
  // Nested calls join the outer one.
  void atomically(const std::function<void()>& work);

  // How many times an entry was written (0: never); a finished run has written each once.
  int64_t times_written(const std::string& stage, const std::string& key) const;
  // The largest count over the stage's entries (every stage when `stage` is empty), and how many it has.
  int64_t max_times_written(const std::string& stage = {}) const;
  int64_t entries(const std::string& stage) const;

  const std::filesystem::path& path() const { return path_; }

  // ---- distributed runs (docs/distributed.md): rank 0 owns the journal; the other ranks work
  // from copies of it, and what their units of work write reaches it as recorded writes ----
  // The whole journal as bytes: a consistent SQLite image.
  std::string image() const;
  // This journal becomes a copy of `image`, held in memory (the other ranks write no files).
  void replace_with(const std::string& image);
  // The entries written from now on (written as usual too), as bytes, until stop_recording().
  void start_recording();
  std::string stop_recording();
  // Writes recorded entries, together or not at all.
  void apply(const std::string& recorded);
  // Rank 0, once the others hold its image: every entry written from then on is kept as well, and
  // take_changes() returns those since the last call (recorded as above), so that only they are
  // sent the next time.
  void keep_changes();
  std::string take_changes();

 private:
  struct Db;
  std::optional<std::string> blob(const std::string& stage, const std::string& key) const;
  void put_blob(const std::string& stage, const std::string& key, const std::string& bytes);
  std::filesystem::path path_;
  std::unique_ptr<Db> db_;
  bool in_transaction_ = false;
  std::optional<std::string> recorded_;  // while recording
  std::optional<std::string> changes_;   // while keeping changes
};

// Tensors as bytes and back (name, shape, float32 values), for the journal's blobs.
std::string serialise_tensors(const ir::TensorMap& tensors);
ir::TensorMap deserialise_tensors(const std::string& bytes);  // throws SearchError when malformed

}  // namespace gos::search
