// The run journal in SQLite (see journal.h).
#include "search/journal.h"

#include <sqlite3.h>

#include <cstring>

#include "search/candidates.h"
#include "util/writable_folder.h"

namespace gos::search {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS entries (
  stage TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, times_written INTEGER NOT NULL DEFAULT 1,
  written_at TEXT NOT NULL DEFAULT (datetime('now')),
  PRIMARY KEY (stage, key));
)sql";

constexpr const char* kSettingsStage = "settings";

// What went wrong with the journal, as one line that says what to do: a full disk or a read-only
// file system (the finished work is kept: rerun to resume), or a damaged file (--restart).
SearchError journal_error(sqlite3* db, const std::filesystem::path& file, int status) {
  const std::string sqlite = db ? sqlite3_errmsg(db) : sqlite3_errstr(status);
  const std::string folder = file.parent_path().empty() ? "." : file.parent_path().string();
  const int primary = status & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return SearchError(file.string() + " is damaged (" + sqlite + "): rerun with --restart to start the run over (its finished "
                       "work is lost), or put back a copy of the file");
  }
  std::string why = util::why_not_writable(file.parent_path());
  if (primary == SQLITE_FULL && why.empty()) why = "its disk is full";
  if (primary == SQLITE_READONLY && why.empty()) why = "the journal cannot be written (" + sqlite + ")";
  if (!why.empty()) {
    return SearchError("cannot write the run journal in " + folder + ": " + why + "; make room (or make it writable) and rerun "
                       "the same command to resume, or choose another -o folder (the run's finished work is kept in " +
                       file.string() + ")");
  }
  return SearchError("run journal " + file.string() + ": " + sqlite);
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) != SQLITE_OK) fail();
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& text(int index, const std::string& value) {
    sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& blob(int index, const std::string& bytes) {
    sqlite3_bind_blob(statement_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
  bool step() {
    const int status = sqlite3_step(statement_);
    if (status == SQLITE_ROW) return true;
    if (status != SQLITE_DONE) fail();
    return false;
  }
  std::string column_bytes(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(statement_, column));
    return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(statement_, column))) : std::string();
  }
  int64_t column_integer(int column) const { return sqlite3_column_int64(statement_, column); }

 private:
  [[noreturn]] void fail() const {
    const char* name = sqlite3_db_filename(db_, "main");
    throw journal_error(db_, name ? name : "", sqlite3_extended_errcode(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
};

template <typename T>
void append(std::string& bytes, const T& value) {
  bytes.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
  T next() {
    T value;
    take(&value, sizeof(T));
    return value;
  }
  void take(void* out, size_t size) {
    if (at_ + size > bytes_.size()) {
      throw SearchError("run journal: a stored tensor is truncated; rerun with --restart to start the run over");
    }
    std::memcpy(out, bytes_.data() + at_, size);
    at_ += size;
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  size_t at_ = 0;
};

}  // namespace

struct Journal::Db {
  sqlite3* handle = nullptr;
  ~Db() { sqlite3_close(handle); }
};

Journal::Journal(const std::filesystem::path& file) : path_(file), db_(std::make_unique<Db>()) {
  std::error_code ignored;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ignored);
  if (const int status = sqlite3_open(file.c_str(), &db_->handle); status != SQLITE_OK) {
    if (const std::string why = util::why_not_writable(file.parent_path()); !why.empty()) {
      throw SearchError("cannot open the run journal " + file.string() + ": " + why + "; choose another -o folder");
    }
    throw SearchError("cannot open the run journal " + file.string() + ": " + sqlite3_errmsg(db_->handle) +
                      "; choose another -o folder");
  }
  sqlite3_busy_timeout(db_->handle, 10000);
  // WAL: a run killed mid-write leaves the last committed entry intact.
  char* error = nullptr;
  const std::string setup = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") + kSchema;
  if (const int status = sqlite3_exec(db_->handle, setup.c_str(), nullptr, nullptr, &error); status != SQLITE_OK) {
    const std::string reason = error ? error : "unknown error";
    sqlite3_free(error);
    const int primary = sqlite3_extended_errcode(db_->handle) & 0xff;
    if (primary == SQLITE_ERROR) {  // a database, but not a journal's schema
      throw SearchError(file.string() + " is not a gos run journal (" + reason + "); rerun with --restart to replace it, or choose "
                        "another -o folder");
    }
    throw journal_error(db_->handle, file, sqlite3_extended_errcode(db_->handle));
  }
  // A file cut short or overwritten in part opens, and fails later in the middle of the run; checked
  // now, the run is refused before any work.
  Statement check(db_->handle, "PRAGMA quick_check(1)");
  if (check.step() && check.column_bytes(0) != "ok") {
    throw journal_error(db_->handle, file, SQLITE_CORRUPT);
  }
}

void Journal::atomically(const std::function<void()>& work) {
  if (in_transaction_) {
    work();
    return;
  }
  Statement(db_->handle, "BEGIN IMMEDIATE").step();
  in_transaction_ = true;
  try {
    work();
    Statement(db_->handle, "COMMIT").step();
    in_transaction_ = false;
  } catch (...) {
    in_transaction_ = false;
    sqlite3_exec(db_->handle, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

Journal::~Journal() = default;

std::optional<std::string> Journal::bound_settings() const { return text(kSettingsStage, "run"); }

void Journal::rebind_settings(const std::string& settings_json) { put_text(kSettingsStage, "run", settings_json); }

void Journal::bind_settings(const std::string& settings_json) {
  const auto stored = bound_settings();
  if (!stored) {
    rebind_settings(settings_json);
    return;
  }
  if (*stored == settings_json) return;
  size_t at = 0;
  while (at < stored->size() && at < settings_json.size() && (*stored)[at] == settings_json[at]) ++at;
  const size_t from = at > 30 ? at - 30 : 0;
  throw SearchError("the folder of " + path_.string() + " holds a run with other settings (they first differ at '..." +
                    settings_json.substr(from, 60) + "...', was '..." + stored->substr(from, 60) +
                    "...'); rerun with the same options to resume it, or choose another --out folder");
}

std::optional<std::string> Journal::blob(const std::string& stage, const std::string& key) const {
  Statement query(db_->handle, "SELECT value FROM entries WHERE stage = ?1 AND key = ?2");
  query.text(1, stage).text(2, key);
  if (!query.step()) return std::nullopt;
  return query.column_bytes(0);
}

void Journal::put_blob(const std::string& stage, const std::string& key, const std::string& bytes) {
  Statement insert(db_->handle,
                   "INSERT INTO entries (stage, key, value) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (stage, key) DO UPDATE SET value = excluded.value, times_written = times_written + 1, "
                   "written_at = datetime('now')");
  insert.text(1, stage).text(2, key).blob(3, bytes);
  insert.step();
  for (auto* record : {&recorded_, &changes_}) {
    if (!*record) continue;
    for (const std::string* part : {&stage, &key, &bytes}) {
      append(**record, static_cast<uint64_t>(part->size()));
      **record += *part;
    }
  }
}

void Journal::keep_changes() { changes_ = std::string(); }

std::string Journal::take_changes() {
  std::string changes = changes_.value_or("");
  if (changes_) changes_->clear();
  return changes;
}

std::string Journal::image() const {
  sqlite3_int64 size = 0;
  unsigned char* data = sqlite3_serialize(db_->handle, "main", &size, 0);
  if (!data) throw SearchError("run journal " + path_.string() + ": cannot copy it for the other ranks (out of memory)");
  std::string bytes(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
  sqlite3_free(data);
  return bytes;
}

void Journal::replace_with(const std::string& image) {
  auto* data = static_cast<unsigned char*>(sqlite3_malloc64(image.size()));
  if (!data) throw SearchError("run journal: no memory for rank 0's journal (" + std::to_string(image.size() >> 20) + " MiB)");
  std::memcpy(data, image.data(), image.size());
  // The file format's read and write versions (header bytes 18 and 19) say WAL on disk; a copy held
  // in memory has no WAL file and must say rollback journal, or SQLite cannot open it.
  if (image.size() >= 20) data[18] = data[19] = 1;
  const int status = sqlite3_deserialize(db_->handle, "main", data, static_cast<sqlite3_int64>(image.size()),
                                         static_cast<sqlite3_int64>(image.size()), SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
  if (status != SQLITE_OK) throw journal_error(db_->handle, path_, status);
}

void Journal::start_recording() { recorded_ = std::string(); }

std::string Journal::stop_recording() {
  std::string recorded = recorded_.value_or("");
  recorded_.reset();
  return recorded;
}

void Journal::apply(const std::string& recorded) {
  atomically([&] {
    Reader reader(recorded);
    while (!reader.done()) {
      std::string parts[3];
      for (auto& part : parts) {
        part.resize(reader.next<uint64_t>());
        reader.take(part.data(), part.size());
      }
      put_blob(parts[0], parts[1], parts[2]);
    }
  });
}

std::optional<std::string> Journal::text(const std::string& stage, const std::string& key) const { return blob(stage, key); }

void Journal::put_text(const std::string& stage, const std::string& key, const std::string& value) { put_blob(stage, key, value); }

std::optional<ir::TensorMap> Journal::tensors(const std::string& stage, const std::string& key) const {
  auto bytes = blob(stage, key);
  if (!bytes) return std::nullopt;
  return deserialise_tensors(*bytes);
}

void Journal::put_tensors(const std::string& stage, const std::string& key, const ir::TensorMap& tensors) {
  put_blob(stage, key, serialise_tensors(tensors));
}

int64_t Journal::times_written(const std::string& stage, const std::string& key) const {
  Statement query(db_->handle, "SELECT times_written FROM entries WHERE stage = ?1 AND key = ?2");
  query.text(1, stage).text(2, key);
  return query.step() ? query.column_integer(0) : 0;
}

int64_t Journal::max_times_written(const std::string& stage) const {
  Statement query(db_->handle, "SELECT COALESCE(MAX(times_written), 0) FROM entries WHERE ?1 = '' OR stage = ?1");
  query.text(1, stage);
  query.step();
  return query.column_integer(0);
}

int64_t Journal::entries(const std::string& stage) const {
  Statement query(db_->handle, "SELECT COUNT(*) FROM entries WHERE stage = ?1");
  query.text(1, stage);
  query.step();
  return query.column_integer(0);
}

std::string serialise_tensors(const ir::TensorMap& tensors) {
  std::string bytes;
  append(bytes, static_cast<uint64_t>(tensors.size()));
  for (const auto& [name, tensor] : tensors) {
    append(bytes, static_cast<uint64_t>(name.size()));
    bytes += name;
    append(bytes, static_cast<uint64_t>(tensor.shape.size()));
    for (int64_t extent : tensor.shape) append(bytes, extent);
    append(bytes, static_cast<uint64_t>(tensor.data.size()));
    bytes.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size() * sizeof(float));
  }
  return bytes;
}

ir::TensorMap deserialise_tensors(const std::string& bytes) {
  Reader reader(bytes);
  ir::TensorMap tensors;
  const auto count = reader.next<uint64_t>();
  for (uint64_t i = 0; i < count; ++i) {
    std::string name(reader.next<uint64_t>(), '\0');
    reader.take(name.data(), name.size());
    std::vector<int64_t> shape(reader.next<uint64_t>());
    for (auto& extent : shape) extent = reader.next<int64_t>();
    std::vector<float> data(reader.next<uint64_t>());
    reader.take(data.data(), data.size() * sizeof(float));
    ir::Tensor tensor(shape, std::move(data));
    tensors.emplace(std::move(name), std::move(tensor));
  }
  if (!reader.done()) throw SearchError("run journal: a stored tensor has trailing bytes; rerun with --restart to start the run over");
  return tensors;
}

}  // namespace gos::search
