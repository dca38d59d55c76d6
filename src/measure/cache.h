#pragma once
// The public face of the latency cache: every operator measurement, kept in a local SQLite file
// keyed by (backend, threads, machine, the operator's canonical form with its shapes), so that no
// measurement is ever taken twice, across runs and commands.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "measure/measure.h"

namespace gos::measure {

struct CacheKey {
  std::string backend;
  int threads = 1;
  std::string machine;
  std::string op;  // ir::OpExpr::canonical_key(): the instructions, extents and shapes

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

struct CachedMeasurement {
  CacheKey key;
  Timing timing;
  ir::Cost cost;  // of the operator, for the predictor's features
  std::string op_text;  // the instructions, re-parseable (ir::parse)
};

// $GOS_CACHE if set, else $XDG_CACHE_HOME/gos/latency.sqlite, else ~/.cache/gos/latency.sqlite.
std::filesystem::path default_cache_path();

class LatencyCache {
 public:
  // Opens (creating it and its folder if needed) the SQLite file. Throws MeasureError saying what
  // to do when it cannot be opened or is not a gos cache.
  explicit LatencyCache(const std::filesystem::path& path);
  ~LatencyCache();
  LatencyCache(const LatencyCache&) = delete;
  LatencyCache& operator=(const LatencyCache&) = delete;

  std::optional<Timing> find(const CacheKey& key) const;
  void store(const CachedMeasurement& measurement);
  // Every measurement for a backend, thread count and machine.
  std::vector<CachedMeasurement> all(const std::string& backend, int threads, const std::string& machine) const;

  // Named blobs (a fitted predictor as JSON), per backend, threads and machine.
  void put_blob(const std::string& name, const CacheKey& scope, const std::string& value);
  std::optional<std::string> get_blob(const std::string& name, const CacheKey& scope) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Db;
  std::filesystem::path path_;
  std::unique_ptr<Db> db_;
};

// Measures the operators not in the cache (all of them in one bench_ops call), stores them, and
// returns every operator's timing in order. Figures stay as first measured: measure on a
// quiet machine (a busy one shows as a large spread in the cache). `measured` (if given) receives how many were new.
std::vector<Timing> measure_cached(LatencyCache& cache, const std::vector<OpToMeasure>& ops, Backend backend,
                                   const BenchOptions& options, size_t* measured = nullptr,
                                   const std::function<void(size_t, size_t)>& on_progress = {});

}  // namespace gos::measure
