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

// An operator's timing as cached: the fastest of `sweeps` timings taken in separate sweeps over
// the operators being measured.
struct SweptTiming {
  Timing timing;
  int sweeps = 1;
  // The slowest sweep's median: how far apart the sweeps were, which says how much a single
  // timing of the operator repeats on this machine.
  double slowest_sweep_ms = 0;
  // The sweeps' medians within `tolerance` of each other (one sweep: trivially).
  bool sweeps_agree(double tolerance) const { return slowest_sweep_ms <= timing.median_ms * (1 + tolerance); }
};

struct CachedMeasurement {
  CacheKey key;
  Timing timing;
  ir::Cost cost;  // of the operator, for the predictor's features
  std::string op_text;  // the instructions, re-parseable (ir::parse)
  int sweeps = 1;  // how many sweeps `timing` is the fastest of
  double slowest_sweep_ms = 0;  // see SweptTiming
  SweptTiming swept() const { return {timing, sweeps, slowest_sweep_ms}; }
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

  std::optional<SweptTiming> find(const CacheKey& key) const;
  void store(const CachedMeasurement& measurement);
  // All in one transaction: a write per row costs a disk sync (1.5 ms a row on a cloud disk).
  void store(const std::vector<CachedMeasurement>& measurements);
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

// How many sweeps an operator's cached timing is the fastest of. A shared machine's slow spells
// only add time, and last from under a second to minutes, so the faster of two timings taken apart
// is the less disturbed. On a slow day (docs/latency.md), single timings of 3031 operators repeated
// within +-10% for 58-66% of them and the faster of two agreed with a third for 71-82%; the
// predictor fitted on the faster of two was 9-20 points more often within +-10% on held-out ones.
constexpr int kOperatorSweeps = 2;

// Times the operators whose cached timing is missing or the fastest of fewer than kOperatorSweeps
// sweeps: sweep after sweep over all of them (so that an operator's two timings are as far apart
// as the set allows), keeping each one's fastest, and returns every operator's timing in order.
// Each chunk of timings is stored as soon as it is taken, so an interrupted run keeps them; a cached
// timing of all its sweeps is never taken again. `measured` (if given) receives how many distinct
// operators were timed; `on_progress(done, total)` counts timings over all sweeps.
std::vector<Timing> measure_cached(LatencyCache& cache, const std::vector<OpToMeasure>& ops, Backend backend,
                                   const BenchOptions& options, size_t* measured = nullptr,
                                   const std::function<void(size_t, size_t)>& on_progress = {});

// Structural nodes of `model` (layer normalisations, transposes, ...) timed alone, through the
// cache. They have no instructions to key a measurement row by, and the predictor fits on those
// rows, so each is kept as a named value beside them ("structural_node:<hash>" of its one-node
// graph: op type, attributes, shapes and constants, not its learned values); alike nodes are
// timed once, a cached one never again. `measured` (if given) receives how many were timed.
std::vector<Timing> measure_nodes_cached(LatencyCache& cache, const graph::Graph& model,
                                         const std::vector<const graph::Node*>& nodes, Backend backend,
                                         const BenchOptions& options, size_t* measured = nullptr);

}  // namespace gos::measure
