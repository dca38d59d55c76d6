// The SQLite latency cache (see cache.h).
#include "measure/cache.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <variant>

#include "util/stable_hash.h"

namespace gos::measure {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS measurements (
  backend TEXT NOT NULL, threads INTEGER NOT NULL, machine TEXT NOT NULL, op TEXT NOT NULL,
  median_ms REAL NOT NULL, p10_ms REAL NOT NULL, p90_ms REAL NOT NULL, runs INTEGER NOT NULL,
  macs INTEGER NOT NULL, params INTEGER NOT NULL, input_bytes INTEGER NOT NULL, weight_bytes INTEGER NOT NULL,
  output_bytes INTEGER NOT NULL, intermediate_bytes INTEGER NOT NULL, other_ops INTEGER NOT NULL,
  op_text TEXT NOT NULL, measured_at TEXT NOT NULL DEFAULT (datetime('now')), sweeps INTEGER NOT NULL DEFAULT 1,
  slowest_sweep_ms REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (backend, threads, machine, op));
CREATE TABLE IF NOT EXISTS blobs (
  name TEXT NOT NULL, backend TEXT NOT NULL, threads INTEGER NOT NULL, machine TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (name, backend, threads, machine));
)sql";

MeasureError read_only_error(sqlite3* db) {
  return MeasureError(std::string("cannot write to the latency cache ") + sqlite3_db_filename(db, "main") + " (" +
                      sqlite3_errmsg(db) + "): make it writable, or set GOS_CACHE (or --cache) to another file");
}

// A prepared statement, finalised on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr) != SQLITE_OK) {
      throw MeasureError(std::string("latency cache: ") + sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement& bind(int index, const std::string& text) {
    sqlite3_bind_text(statement_, index, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int index, int64_t value) {
    sqlite3_bind_int64(statement_, index, value);
    return *this;
  }
  Statement& bind(int index, double value) {
    sqlite3_bind_double(statement_, index, value);
    return *this;
  }
  bool step() {
    int status = sqlite3_step(statement_);
    if (status == SQLITE_ROW) return true;
    if (status == SQLITE_DONE) return false;
    if ((status & 0xff) == SQLITE_READONLY) throw read_only_error(db_);
    throw MeasureError(std::string("latency cache: ") + sqlite3_errmsg(db_));
  }
  double real(int column) const { return sqlite3_column_double(statement_, column); }
  int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  std::string text(int column) const {
    const auto* value = sqlite3_column_text(statement_, column);
    return value ? reinterpret_cast<const char*>(value) : "";
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
};

bool has_column(sqlite3* db, const std::string& table, const std::string& column) {
  Statement query(db, ("SELECT 1 FROM pragma_table_info('" + table + "') WHERE name=?").c_str());
  query.bind(1, column);
  return query.step();
}

}  // namespace

struct LatencyCache::Db {
  sqlite3* handle = nullptr;
  ~Db() { sqlite3_close(handle); }
};

std::filesystem::path default_cache_path() {
  if (const char* explicit_path = std::getenv("GOS_CACHE"); explicit_path && *explicit_path) return explicit_path;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "gos" / "latency.sqlite";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/tmp") / ".cache" / "gos" / "latency.sqlite";
}

LatencyCache::LatencyCache(const std::filesystem::path& path) : path_(path), db_(std::make_unique<Db>()) {
  std::error_code error;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), error);
  if (sqlite3_open(path.c_str(), &db_->handle) != SQLITE_OK) {
    throw MeasureError("cannot open the latency cache " + path.string() + ": " + sqlite3_errmsg(db_->handle) +
                       " (set GOS_CACHE to a writable file)");
  }
  sqlite3_busy_timeout(db_->handle, 10000);  // another gos may be writing
  // WAL: readers never block the writer, and one process's write waits for another's instead of
  // failing. A cache that cannot be written (read-only) is still read in the mode it has.
  sqlite3_exec(db_->handle, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  char* message = nullptr;
  if (const int status = sqlite3_exec(db_->handle, kSchema, nullptr, nullptr, &message); status != SQLITE_OK) {
    std::string reason = message ? message : "unknown error";
    sqlite3_free(message);
    if ((status & 0xff) == SQLITE_READONLY) throw read_only_error(db_->handle);
    throw MeasureError("the latency cache " + path.string() + " is not usable (" + reason +
                       "); move it away or set GOS_CACHE to another file");
  }
  // Caches from before sweeps: their timings are one sweep each, and get the others when next asked for.
  if (!has_column(db_->handle, "measurements", "sweeps")) {
    Statement(db_->handle, "ALTER TABLE measurements ADD COLUMN sweeps INTEGER NOT NULL DEFAULT 1").step();
  }
  if (!has_column(db_->handle, "measurements", "slowest_sweep_ms")) {
    Statement(db_->handle, "ALTER TABLE measurements ADD COLUMN slowest_sweep_ms REAL NOT NULL DEFAULT 0").step();
    Statement(db_->handle, "UPDATE measurements SET slowest_sweep_ms = median_ms").step();
  }
}

LatencyCache::~LatencyCache() = default;

std::optional<SweptTiming> LatencyCache::find(const CacheKey& key) const {
  Statement query(db_->handle,
                  "SELECT median_ms, p10_ms, p90_ms, runs, sweeps, slowest_sweep_ms FROM measurements WHERE backend=? AND "
                  "threads=? AND machine=? AND op=?");
  query.bind(1, key.backend).bind(2, int64_t{key.threads}).bind(3, key.machine).bind(4, key.op);
  if (!query.step()) return std::nullopt;
  return SweptTiming{{query.real(0), query.real(1), query.real(2), static_cast<int>(query.integer(3))},
                     static_cast<int>(query.integer(4)), query.real(5)};
}

void LatencyCache::store(const CachedMeasurement& m) {
  Statement insert(db_->handle,
                   "INSERT OR REPLACE INTO measurements (backend, threads, machine, op, median_ms, p10_ms, p90_ms, runs, "
                   "macs, params, input_bytes, weight_bytes, output_bytes, intermediate_bytes, other_ops, op_text, sweeps, "
                   "slowest_sweep_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  insert.bind(1, m.key.backend).bind(2, int64_t{m.key.threads}).bind(3, m.key.machine).bind(4, m.key.op);
  insert.bind(5, m.timing.median_ms).bind(6, m.timing.p10_ms).bind(7, m.timing.p90_ms).bind(8, int64_t{m.timing.runs});
  insert.bind(9, m.cost.macs).bind(10, m.cost.params).bind(11, m.cost.input_bytes).bind(12, m.cost.weight_bytes);
  insert.bind(13, m.cost.output_bytes).bind(14, m.cost.intermediate_bytes).bind(15, m.cost.other_ops).bind(16, m.op_text);
  insert.bind(17, int64_t{m.sweeps}).bind(18, m.slowest_sweep_ms);
  insert.step();
}

void LatencyCache::store(const std::vector<CachedMeasurement>& measurements) {
  Statement(db_->handle, "BEGIN IMMEDIATE").step();
  try {
    for (const auto& m : measurements) store(m);
    Statement(db_->handle, "COMMIT").step();
  } catch (...) {
    Statement(db_->handle, "ROLLBACK").step();
    throw;
  }
}

std::vector<CachedMeasurement> LatencyCache::all(const std::string& backend, int threads, const std::string& machine) const {
  Statement query(db_->handle,
                  "SELECT op, median_ms, p10_ms, p90_ms, runs, macs, params, input_bytes, weight_bytes, output_bytes, "
                  "intermediate_bytes, other_ops, op_text, sweeps, slowest_sweep_ms FROM measurements WHERE backend=? AND threads=? AND machine=? "
                  "ORDER BY op");
  query.bind(1, backend).bind(2, int64_t{threads}).bind(3, machine);
  std::vector<CachedMeasurement> rows;
  while (query.step()) {
    CachedMeasurement m;
    m.key = {backend, threads, machine, query.text(0)};
    m.timing = {query.real(1), query.real(2), query.real(3), static_cast<int>(query.integer(4))};
    m.cost.macs = query.integer(5);
    m.cost.params = query.integer(6);
    m.cost.input_bytes = query.integer(7);
    m.cost.weight_bytes = query.integer(8);
    m.cost.output_bytes = query.integer(9);
    m.cost.intermediate_bytes = query.integer(10);
    m.cost.other_ops = query.integer(11);
    m.op_text = query.text(12);
    m.sweeps = static_cast<int>(query.integer(13));
    m.slowest_sweep_ms = query.real(14);
    rows.push_back(std::move(m));
  }
  return rows;
}

void LatencyCache::put_blob(const std::string& name, const CacheKey& scope, const std::string& value) {
  Statement insert(db_->handle, "INSERT OR REPLACE INTO blobs (name, backend, threads, machine, value) VALUES (?,?,?,?,?)");
  insert.bind(1, name).bind(2, scope.backend).bind(3, int64_t{scope.threads}).bind(4, scope.machine).bind(5, value);
  insert.step();
}

std::optional<std::string> LatencyCache::get_blob(const std::string& name, const CacheKey& scope) const {
  Statement query(db_->handle, "SELECT value FROM blobs WHERE name=? AND backend=? AND threads=? AND machine=?");
  query.bind(1, name).bind(2, scope.backend).bind(3, int64_t{scope.threads}).bind(4, scope.machine);
  if (!query.step()) return std::nullopt;
  return query.text(0);
}

namespace {

// An operator still short of its sweeps, and its fastest timing so far.
struct Unswept {
  OpToMeasure op;
  CacheKey key;
  std::optional<SweptTiming> fastest;
  ir::Cost cost;             // stored with every sweep's row, so worked out once
  std::string instructions;
  int sweeps_done() const { return fastest ? fastest->sweeps : 0; }
};

// The operator's timing after one more sweep: the faster one, and the slowest median seen (rows
// stored without one count their median).
SweptTiming with_sweep(const std::optional<SweptTiming>& so_far, const Timing& sweep) {
  if (!so_far) return {sweep, 1, sweep.median_ms};
  const double slowest = std::max({sweep.median_ms, so_far->slowest_sweep_ms, so_far->timing.median_ms});
  return {sweep.median_ms < so_far->timing.median_ms ? sweep : so_far->timing, so_far->sweeps + 1, slowest};
}

// What decides a one-node graph's time: its op type, attributes, the shapes it reads and its
// constants (a reshape's target), not the values of what it learned.
std::string structural_key(const graph::Graph& single) {
  const graph::Node& node = single.nodes.at(0);
  nlohmann::json key{{"op_type", node.op_type}};
  for (const auto& [name, attribute] : node.attributes) {
    key["attributes"][name] = std::visit(
        [](const auto& value) -> nlohmann::json {
          if constexpr (std::is_same_v<std::decay_t<decltype(value)>, ir::Tensor>) {
            return {{"shape", value.shape}, {"data", value.data}};
          } else {
            return value;
          }
        },
        attribute);
  }
  for (const auto& input : node.inputs) {
    if (input.empty()) {
      key["inputs"].push_back(nullptr);
    } else if (auto constant = single.constants.find(input); constant != single.constants.end()) {
      key["inputs"].push_back({{"shape", constant->second.shape}, {"data", constant->second.data}});
    } else {
      key["inputs"].push_back({{"shape", single.shape_of(input)}});
    }
  }
  for (const auto& [name, weight] : node.weights) key["weights"][name] = weight.shape;
  for (const auto& output : node.outputs) key["outputs"].push_back(single.shape_of(output));
  return key.dump();
}

// Timings are stored a chunk at a time: an interrupted run loses at most one chunk (about half a
// minute on a slow day), while ONNX Runtime starts one process per chunk.
constexpr size_t kStoreEvery = 250;

}  // namespace

std::vector<Timing> measure_cached(LatencyCache& cache, const std::vector<OpToMeasure>& ops, Backend backend,
                                   const BenchOptions& options, size_t* measured,
                                   const std::function<void(size_t, size_t)>& on_progress) {
  const std::string machine = machine_fingerprint();
  std::vector<Unswept> unswept;
  std::map<std::string, size_t> unswept_at;  // by canonical form: one measurement per distinct operator
  std::map<std::string, Timing> complete;     // by canonical form: cached with all their sweeps
  std::vector<std::optional<Timing>> timings(ops.size());
  std::vector<std::pair<size_t, size_t>> waiting;  // (operator, its entry in unswept)
  size_t total = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    CacheKey key{cache_name(backend, options.precision), options.threads, machine, ops[i].op.canonical_key()};
    if (auto found = complete.find(key.op); found != complete.end()) {
      timings[i] = found->second;
      continue;
    }
    if (auto found = unswept_at.find(key.op); found != unswept_at.end()) {
      waiting.push_back({i, found->second});
      continue;
    }
    auto cached = cache.find(key);
    if (cached && cached->sweeps >= kOperatorSweeps) {
      timings[i] = complete[key.op] = cached->timing;
      continue;
    }
    unswept_at[key.op] = unswept.size();
    unswept.push_back({ops[i], std::move(key), cached, ir::cost(ops[i].op), ir::print(ops[i].op)});
    total += static_cast<size_t>(kOperatorSweeps - unswept.back().sweeps_done());
    waiting.push_back({i, unswept.size() - 1});
  }
  size_t done = 0;
  for (int sweep = 1; sweep <= kOperatorSweeps; ++sweep) {
    std::vector<Unswept*> due;  // operators that have not had this sweep yet
    for (auto& entry : unswept) {
      if (entry.sweeps_done() < sweep) due.push_back(&entry);
    }
    for (size_t start = 0; start < due.size(); start += kStoreEvery) {
      const size_t end = std::min(due.size(), start + kStoreEvery);
      std::vector<OpToMeasure> chunk;
      for (size_t j = start; j < end; ++j) chunk.push_back(due[j]->op);
      const auto fresh = bench_ops(chunk, backend, options, [&](size_t chunk_done, size_t) {
        if (on_progress) on_progress(done + chunk_done, total);
      });
      done += chunk.size();
      std::vector<CachedMeasurement> rows;
      for (size_t j = start; j < end; ++j) {
        Unswept& entry = *due[j];
        entry.fastest = with_sweep(entry.fastest, fresh[j - start]);
        rows.push_back({entry.key, entry.fastest->timing, entry.cost, entry.instructions, entry.fastest->sweeps,
                        entry.fastest->slowest_sweep_ms});
      }
      cache.store(rows);
    }
  }
  for (const auto& [at, entry] : waiting) timings[at] = unswept[entry].fastest->timing;
  if (measured) *measured = unswept.size();
  std::vector<Timing> result;
  for (const auto& timing : timings) result.push_back(*timing);
  return result;
}

std::vector<Timing> measure_nodes_cached(LatencyCache& cache, const graph::Graph& model,
                                         const std::vector<const graph::Node*>& nodes, Backend backend,
                                         const BenchOptions& options, size_t* measured) {
  const CacheKey scope{cache_name(backend, options.precision), options.threads, machine_fingerprint(), ""};
  std::vector<std::string> names;
  std::map<std::string, Timing> known;         // by blob name
  std::map<std::string, size_t> to_time_at;    // by blob name: index into to_time
  std::vector<graph::Graph> to_time;
  for (const graph::Node* node : nodes) {
    graph::Graph single = single_node_graph(model, *node);
    names.push_back("structural_node:" + util::stable_hash_hex(structural_key(single)));
    const std::string& name = names.back();
    if (known.contains(name) || to_time_at.contains(name)) continue;
    if (auto cached = cache.get_blob(name, scope)) {
      const auto json = nlohmann::json::parse(*cached);
      known[name] = {json.at("median_ms"), json.at("p10_ms"), json.at("p90_ms"), json.at("runs")};
      continue;
    }
    to_time_at[name] = to_time.size();
    to_time.push_back(std::move(single));
  }
  const std::vector<Timing> fresh = bench_graphs_alone(to_time, backend, options);
  for (const auto& [name, at] : to_time_at) {
    const Timing& timing = fresh[at];
    cache.put_blob(name, scope,
                   nlohmann::json{{"median_ms", timing.median_ms}, {"p10_ms", timing.p10_ms}, {"p90_ms", timing.p90_ms},
                                  {"runs", timing.runs}}
                       .dump());
    known[name] = timing;
  }
  if (measured) *measured = to_time.size();
  std::vector<Timing> timings;
  for (const auto& name : names) timings.push_back(known.at(name));
  return timings;
}

}  // namespace gos::measure
