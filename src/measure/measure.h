#pragma once
// The public face of latency measurement: a whole model or one operator, timed on a backend the
// way the target runs it, with warm-up and repeated runs reported as median and spread.
//
//   torch   eager libtorch: the lowered module (graph/torch_module.h)
//   mobile  frozen TorchScript optimised for mobile (XNNPACK), saved and loaded back, as PyTorch
//           Mobile on a phone or a Raspberry Pi runs it
//   ort     ONNX Runtime (CPU) on the exported ONNX file, through onnxruntime-node
//
// Threads are fixed (default 1: one edge core); inputs are random at the model's declared shapes
// (batch 1). libtorch stays in the .cpp files.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "ir/ir.h"

namespace gos::measure {

class MeasureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Backend { Torch, Mobile, Ort };
std::string_view to_string(Backend backend);
Backend backend_named(std::string_view name);  // throws MeasureError naming the backends
const std::vector<std::string>& backend_names();
// The backend as the latency cache keys it: its name, with a version when the way gos runs it
// changed so that older timings no longer hold ("mobile@2": channels-last activations; "mobile@3":
// 1-D convolutions as channels-last 2-D ones; "mobile@4", "torch@2", "ort@2": shuffled grouped
// convolutions run as a channel shuffle and a grouped convolution instead of an einsum; "mobile@5",
// "torch@3": the BLAS held to the thread count too, where it had used every core; "ort@3": ONNX
// Runtime timed until the budget is spent, where it had timed 50 runs; "ort@4": an operator alone
// timed by its kernels in ONNX Runtime's profiler, where it had been timed with the call; "ort@5":
// those kernels without the NCHWc layout reorders around a lone convolution; "mobile@6", "torch@4",
// "ort@6": a linear layer on N-D data, W[n, k] with a bias, run as a linear layer (prepacked for
// XNNPACK on mobile) and as MatMul and Add in ONNX, where it had run as an einsum).
std::string cache_name(Backend backend);

// What a model runs in: fp32, or int8 (post-training static quantization, quant/quant.h: the
// quantized TorchScript on mobile, the QDQ ONNX file on ort; torch has no int8 form).
// Fp32InInt8 times an operator alone (bench_ops only) as an int8 model runs a layer it keeps in
// fp32 (mixed precision): in fp32, its input dequantized from and its output quantized to the
// int8 values its neighbours exchange, the conversions counted in.
enum class Precision { Fp32, Int8, Fp32InInt8 };
Precision precision_named(std::string_view name);  // "fp32" or "int8"; throws MeasureError otherwise
std::string_view to_string(Precision precision);    // "fp32", "int8", "fp32-in-int8"
// The latency cache's name for timings in `precision`: int8 ones are kept apart from fp32 ones
// ("ort@6+int8@1"), as a backend's int8 kernels rank operators differently ("mobile@6+int8@2": 1-D
// convolutions as libtorch's quantized::conv1d, where they had run in fp32 between a dequantize and
// a quantize).
std::string cache_name(Backend backend, Precision precision);

struct BenchOptions {
  int threads = 1;
  // int8: every model and operator timed as its int8 form runs (quant/quant.h), calibrated on
  // random inputs in [0, 1): scales set the values, not the work.
  Precision precision = Precision::Fp32;
  int warmup = 10;            // untimed runs first
  int min_runs = 20;          // timed runs: at least this many,
  int max_runs = 2000;        // at most this many,
  double budget_seconds = 1;  // and stop once this much time has been spent timing
};

// A p10-p90 spread over this says the machine was busy or unsteady while timing: on such days
// medians taken minutes apart differed by as much, and a quiet machine stays under 10-20% on
// `mobile` (docs/latency.md).
constexpr double kNoisySpread = 0.25;

struct Timing {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  int runs = 0;
  // (p90 - p10) / median: how noisy the figure is.
  double spread() const { return median_ms > 0 ? (p90_ms - p10_ms) / median_ms : 0; }
  bool noisy() const { return spread() > kNoisySpread; }
};

// Median and the 10th/90th percentiles (interpolated nearest ranks) of run times in ms.
Timing summarise(std::vector<double> times_ms);

// The whole model at its declared input shapes. In int8 it is calibrated on random inputs in [0, 1)
// first: the scales set the values, not the work, so the latency is the calibrated model's.
Timing bench_model(const graph::Graph& model, Backend backend, const BenchOptions& options = {});

// Two models timed side by side: runs alternate between them (A, B, A, B, ...), so that both
// see the same machine load; for speedups measured in one run.
std::pair<Timing, Timing> bench_models_interleaved(const graph::Graph& a, const graph::Graph& b, Backend backend,
                                                   const BenchOptions& options = {});

// Two saved files of one model timed side by side at batch 1 on random inputs of `inputs`' shapes:
// TorchScript files (torch, mobile; a quantized module is loaded with the platform's quantized
// engine, quant/quant.h) or ONNX files (ort).
std::pair<Timing, Timing> bench_files_interleaved(const std::filesystem::path& a, const std::filesystem::path& b,
                                                  const std::vector<graph::Value>& inputs, Backend backend,
                                                  const BenchOptions& options = {});
// Any number of saved files (all TorchScript or all ONNX, reading the same inputs) timed side by
// side the same way, one run of each in turn.
std::vector<Timing> bench_files_side_by_side(const std::vector<std::filesystem::path>& files, const std::vector<graph::Value>& inputs,
                                             Backend backend, const BenchOptions& options = {});

// One operator alone at its declared shapes (in int8: quantized on the way in and dequantized on
// the way out, which its original and every candidate of it pay alike).
struct OpToMeasure {
  ir::OpExpr op;
  ir::TensorMap weights;  // params by name (values do not change latency, shapes do)
};
// The operators of compute nodes as they run in their graph: of these nodes, or of every compute
// node of a graph, in graph order.
std::vector<OpToMeasure> operators_of(const std::vector<const graph::Node*>& nodes);
std::vector<OpToMeasure> operators_of(const graph::Graph& graph);
// Times every operator; `on_progress(done, total)` after each. ONNX Runtime times them all in
// one process.
std::vector<Timing> bench_ops(const std::vector<OpToMeasure>& ops, Backend backend, const BenchOptions& options = {},
                              const std::function<void(size_t, size_t)>& on_progress = {});

// The operator as a one-node graph: its inputs are the graph's inputs, its output the output.
graph::Graph single_op_graph(const ir::OpExpr& op, const ir::TensorMap& weights);

// A structural node of `model` (LayerNormalization, Softmax, Transpose, Concat, ...) as a one-node
// graph: the values it reads become the graph's inputs, the constants it reads come with it, and
// values are renamed in order (x0, x1, ..., y0, ...) so that two alike nodes give one graph.
graph::Graph single_node_graph(const graph::Graph& model, const graph::Node& node);
// Times one-node graphs alone the way bench_ops times operators (two passes; ONNX Runtime: the
// kernels inside each run).
std::vector<Timing> bench_graphs_alone(const std::vector<graph::Graph>& graphs, Backend backend,
                                       const BenchOptions& options = {});

// The machine's own steadiness at this moment: a fixed arithmetic workload (a dependent chain of
// multiply-adds over a table that stays in L1, no library, about 0.2 ms on a normal day) timed
// like a model, on the calling thread, for `budget_seconds`. No model can be timed steadier than
// the machine runs this, so its spread tells a noisy model from a noisy machine, and its median
// (the same work every time) tells a slow day from a normal one.
Timing time_machine_reference(double budget_seconds = 0.5);

// A reference spread over this says the machine itself was unsteady: on a dedicated core the
// reference's p10-p90 spread stays within a few percent, and model spreads under 10% need such a
// machine.
constexpr double kUnsteadyMachineSpread = 0.05;
inline bool machine_was_unsteady(const Timing& reference) { return reference.spread() > kUnsteadyMachineSpread; }

// What identifies this machine's measurements: this_cpu() and the number of logical cores. While
// a remote timer is in use, the remote machine's.
std::string machine_fingerprint();
// This machine's CPU as /proc/cpuinfo names it ("model name" on x86), or the board's model on ARM
// (cpuinfo's "Model", else the device tree), or at least its core's part number.
std::string this_cpu();

// ---- Timing on another machine -------------------------------------------------------------------

// Another machine that times models for this thread (a paired board's agent: device/device.h).
// While one is in use (UseRemoteTimer), bench_model, bench_models_interleaved, bench_ops,
// bench_graphs_alone and time_machine_reference send their work there, and machine_fingerprint()
// names that machine, so that every command and stage that measures (and the latency cache,
// keyed by the fingerprint) measures on it without knowing. Saved files cannot be sent:
// bench_files_* throw MeasureError.
class RemoteTimer {
 public:
  virtual ~RemoteTimer() = default;
  virtual std::string fingerprint() = 0;
  virtual std::vector<Timing> each(const std::vector<graph::Graph>& models, Backend backend, const BenchOptions& options) = 0;
  virtual std::pair<Timing, Timing> side_by_side(const graph::Graph& a, const graph::Graph& b, Backend backend,
                                                 const BenchOptions& options) = 0;
  // One-node graphs, timed as bench_ops and bench_graphs_alone time them.
  virtual std::vector<Timing> operators(const std::vector<graph::Graph>& graphs, Backend backend, const BenchOptions& options) = 0;
  virtual Timing machine_reference(double budget_seconds) = 0;
};

// Installs `timer` for the calling thread until destroyed (then the one before it is back): the
// measurements this thread takes go there; other threads' (an agent's, serving) stay local.
class UseRemoteTimer {
 public:
  explicit UseRemoteTimer(std::shared_ptr<RemoteTimer> timer);
  ~UseRemoteTimer();
  UseRemoteTimer(const UseRemoteTimer&) = delete;
  UseRemoteTimer& operator=(const UseRemoteTimer&) = delete;

 private:
  std::shared_ptr<RemoteTimer> previous_;
};

}  // namespace gos::measure
