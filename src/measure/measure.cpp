// Timing models and operators on the three backends (see measure.h).
#include "measure/measure.h"

#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "graph/onnx_export.h"
#include "graph/ort_runner.h"
#include "graph/torch_module.h"
#include "graph/torchscript_export.h"
#include "lowering/compute_threads.h"
#include "lowering/kernels.h"
#include "lowering/torch_lowering.h"
#include "quant/quant.h"
#include "quant/torchscript_module.h"
#include "util/blas_threads.h"
#include "util/scratch_folder.h"

namespace gos::measure {

namespace {
// Per thread: an agent's threads, serving in a process that also sends work to a board (tests do),
// always time on their own machine.
std::shared_ptr<RemoteTimer>& remote_timer() {
  thread_local std::shared_ptr<RemoteTimer> timer;
  return timer;
}
// Operators sent to a remote timer per request: a request's timing stays well within an agent's
// time bound, and progress moves between them.
constexpr size_t kRemoteBatch = 48;
}  // namespace

UseRemoteTimer::UseRemoteTimer(std::shared_ptr<RemoteTimer> timer) : previous_(std::move(remote_timer())) {
  remote_timer() = std::move(timer);
}
UseRemoteTimer::~UseRemoteTimer() { remote_timer() = std::move(previous_); }


namespace {

using Clock = std::chrono::steady_clock;
using Runner = std::function<void()>;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// libtorch's and the BLAS's threads for the scope of a measurement.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : previous_(at::get_num_threads()), previous_blas_(util::blas_threads()) {
    lowering::set_compute_threads(threads);
  }
  ~ThreadScope() {
    at::set_num_threads(previous_);
    util::set_blas_threads(previous_blas_);
  }

 private:
  int previous_;
  int previous_blas_;
};

// A temporary folder for exported files, removed afterwards. Failing to make one is a
// measurement error the user can act on, like every other here.
class ScratchFolder : public util::ScratchFolder {
 public:
  ScratchFolder() try : util::ScratchFolder("gos-measure") {
  } catch (const std::runtime_error& error) {
    throw MeasureError(error.what());
  }
};

std::vector<torch::Tensor> random_inputs(const std::vector<graph::Value>& inputs) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> tensors;
  for (const auto& input : inputs) tensors.push_back(torch::randn(input.shape));
  return tensors;
}

// What the exported mobile module computes in (graph/torchscript_export.h): a whole model gets
// its inputs channels-last, as PyTorch Mobile's advice has apps hand them over.
std::vector<torch::Tensor> channels_last(std::vector<torch::Tensor> tensors) {
  for (auto& tensor : tensors) {
    if (tensor.dim() == 4) tensor = tensor.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  return tensors;
}

// An operator timed alone gets its inputs as the layer before hands them over: 4-D ones
// channels-last, and a 1-D convolution's [N, C, L] input as the squeezed view of a channels-last
// [N, C, 1, L] tensor, which is what the convolution before it returns in the mobile export.
std::vector<torch::Tensor> as_handed_over(const ir::OpExpr& op, std::vector<torch::Tensor> tensors) {
  std::set<std::string> convolved;
  for (const auto& kernel : lowering::recognise(op)) {
    if (kernel.kind == lowering::KernelKind::Conv && kernel.spatial_rank == 1) convolved.insert(kernel.operands.at("X"));
  }
  const auto inputs = op.tensors_with_role(ir::Role::Input);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (convolved.count(inputs[i].name) && tensors[i].dim() == 3) {
      tensors[i] = tensors[i].unsqueeze(2).contiguous(torch::MemoryFormat::ChannelsLast).squeeze(2);
    }
  }
  return channels_last(std::move(tensors));
}

ir::TensorMap random_input_map(const std::vector<graph::Value>& inputs) {
  ir::TensorMap map;
  auto tensors = random_inputs(inputs);
  for (size_t i = 0; i < inputs.size(); ++i) map[inputs[i].name] = lowering::from_torch(tensors[i]);
  return map;
}

Timing time_runs(const Runner& run, const BenchOptions& options) {
  for (int i = 0; i < options.warmup; ++i) run();
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < options.max_runs &&
         (static_cast<int>(times.size()) < options.min_runs || milliseconds_since(start) < 1000 * options.budget_seconds)) {
    const auto begin = Clock::now();
    run();
    times.push_back(milliseconds_since(begin));
  }
  return summarise(std::move(times));
}

Runner torch_runner(const graph::Graph& model) {
  auto module = std::make_shared<graph::GraphModule>(model);
  module->eval();
  auto inputs = random_inputs(model.inputs);
  return [module, inputs] {
    torch::NoGradGuard no_grad;
    module->forward(inputs);
  };
}

// A saved TorchScript file, loaded once and run on `tensors`. A quantized module packs its weights
// as it loads, for the platform's quantized engine.
Runner file_runner(const std::filesystem::path& path, const std::vector<torch::Tensor>& tensors) {
  auto module = std::make_shared<torch::jit::Module>(quant::load_torchscript(path, tensors));
  std::vector<torch::jit::IValue> values(tensors.begin(), tensors.end());
  return [module, values] {
    torch::NoGradGuard no_grad;
    module->forward(values);
  };
}

Runner mobile_runner(const graph::Graph& model, const std::vector<torch::Tensor>& tensors, const ScratchFolder& folder,
                     const std::string& name) {
  // Exported once: a second pass over the same operator loads the file again.
  const std::filesystem::path path = folder.file(name + ".pt");
  if (!std::filesystem::exists(path)) graph::export_torchscript(model, path.string(), /*optimise_for_mobile=*/true);
  return file_runner(path, tensors);
}

Runner model_mobile_runner(const graph::Graph& model, const ScratchFolder& folder, const std::string& name) {
  return mobile_runner(model, channels_last(random_inputs(model.inputs)), folder, name);
}

Runner op_mobile_runner(const OpToMeasure& op, const ScratchFolder& folder, const std::string& name) {
  graph::Graph single = single_op_graph(op.op, op.weights);
  return mobile_runner(single, as_handed_over(op.op, random_inputs(single.inputs)), folder, name);
}

Runner op_runner(const OpToMeasure& op) {
  auto lowered = std::make_shared<lowering::TorchOp>(op.op);
  std::vector<graph::Value> inputs;
  for (const auto& tensor : op.op.tensors_with_role(ir::Role::Input)) inputs.push_back({tensor.name, tensor.shape});
  auto tensors = random_inputs(inputs);
  std::map<std::string, torch::Tensor> params;
  for (const auto& param : op.op.tensors_with_role(ir::Role::Param)) {
    auto found = op.weights.find(param.name);
    params[param.name] = found != op.weights.end() ? lowering::to_torch(found->second) : torch::randn(param.shape);
  }
  return [lowered, tensors, params] {
    torch::NoGradGuard no_grad;
    lowered->forward(tensors, params);
  };
}

Timing from_ort(const graph::OrtTiming& timing) {
  return {timing.median_ms, timing.p10_ms, timing.p90_ms, timing.repeat};
}

// ONNX Runtime, like the other backends, times runs until the budget is spent, within the run
// limits (a fixed 50 runs of a sub-millisecond model took 13 ms, its p10 and p90 resting on 5
// runs each). `share` splits the budget and the run limits between rounds.
graph::OrtOptions ort_options(const BenchOptions& options, int share = 1) {
  const int repeat = std::clamp(std::max(options.min_runs, 50), 1, options.max_runs);
  return {.threads = options.threads,
          .bench = graph::OrtBench{.warmup = options.warmup,
                                   .repeat = std::max(1, repeat / share),
                                   .budget_seconds = options.budget_seconds / share,
                                   .max_repeat = std::max(1, options.max_runs / share)}};
}

}  // namespace

std::string_view to_string(Backend backend) {
  switch (backend) {
    case Backend::Torch: return "torch";
    case Backend::Mobile: return "mobile";
    case Backend::Ort: return "ort";
  }
  return "?";
}

std::string cache_name(Backend backend) {
  switch (backend) {
    case Backend::Torch: return "torch@4";
    case Backend::Mobile: return "mobile@6";
    case Backend::Ort: return "ort@6";
  }
  return std::string(to_string(backend));
}

const std::vector<std::string>& backend_names() {
  static const std::vector<std::string> names{"torch", "mobile", "ort"};
  return names;
}

Backend backend_named(std::string_view name) {
  for (Backend backend : {Backend::Torch, Backend::Mobile, Backend::Ort}) {
    if (to_string(backend) == name) return backend;
  }
  throw MeasureError("unknown backend '" + std::string(name) + "'; the backends are torch, mobile and ort");
}

Timing summarise(std::vector<double> times_ms) {
  if (times_ms.empty()) return {};
  std::sort(times_ms.begin(), times_ms.end());
  auto quantile = [&](double q) {
    double position = q * static_cast<double>(times_ms.size() - 1);
    size_t low = static_cast<size_t>(position);
    size_t high = std::min(low + 1, times_ms.size() - 1);
    return times_ms[low] + (times_ms[high] - times_ms[low]) * (position - static_cast<double>(low));
  };
  return {quantile(0.5), quantile(0.1), quantile(0.9), static_cast<int>(times_ms.size())};
}

std::vector<OpToMeasure> operators_of(const std::vector<const graph::Node*>& nodes) {
  std::vector<OpToMeasure> ops;
  for (const graph::Node* node : nodes) ops.push_back({*node->op, node->weights});
  return ops;
}

std::vector<OpToMeasure> operators_of(const graph::Graph& graph) {
  std::vector<const graph::Node*> compute;
  for (const auto& node : graph.nodes) {
    if (node.is_compute()) compute.push_back(&node);
  }
  return operators_of(compute);
}

graph::Graph single_op_graph(const ir::OpExpr& op, const ir::TensorMap& weights) {
  graph::Graph graph;
  graph::Node node;
  node.name = "op";
  node.op_type = "Instructions";
  node.op = op;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == ir::Role::Input) {
      graph.inputs.push_back({tensor.name, tensor.shape});
      graph.shapes[tensor.name] = tensor.shape;
      node.inputs.push_back(tensor.name);
    } else if (tensor.role == ir::Role::Param) {
      auto found = weights.find(tensor.name);
      node.weights[tensor.name] = found != weights.end() ? found->second : ir::Tensor(tensor.shape, 0.5f);
    }
  }
  const std::string output = "output";
  node.outputs = {output};
  graph.shapes[output] = op.output().shape;
  graph.outputs.push_back({output, op.output().shape});
  graph.nodes.push_back(std::move(node));
  graph.name = "single_op";
  return graph;
}

Precision precision_named(std::string_view name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "int8") return Precision::Int8;
  throw MeasureError("unknown precision '" + std::string(name) + "' (fp32 or int8)");
}

std::string_view to_string(Precision precision) {
  switch (precision) {
    case Precision::Int8: return "int8";
    case Precision::Fp32InInt8: return "fp32-in-int8";
    default: return "fp32";
  }
}

std::string cache_name(Backend backend, Precision precision) {
  switch (precision) {
    case Precision::Int8: return cache_name(backend) + (backend == Backend::Mobile ? "+int8@2" : "+int8@1");
    case Precision::Fp32InInt8: return cache_name(backend) + "+fp32-in-int8@1";
    default: return cache_name(backend);
  }
}

namespace {

// The model as the backend runs it in int8, written into `folder`: the QDQ ONNX file on ort, the
// quantized TorchScript on mobile, calibrated on random inputs in [0, 1). An operator `alone`
// reads and writes int8 as it does between two others inside a model: its output quantized too,
// and on mobile its inputs handed over quantized and its output left so.
struct Int8File {
  std::filesystem::path path;
  quant::QuantPlan plan;
};

Int8File write_int8(const graph::Graph& model, Backend backend, const ScratchFolder& folder, const std::string& name,
                    bool alone = false, bool quantized_ends = false) {
  if (backend == Backend::Torch) throw MeasureError("int8 runs on mobile (quantized TorchScript) and ort (QDQ ONNX); torch has no int8 form");
  const graph::Graph form = quant::quantizable_form(model);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(0, 1);
  std::vector<ir::Tensor> samples;
  for (const auto& input : form.inputs) {
    auto shape = input.shape;
    shape[0] = 16;
    ir::Tensor batch(shape);
    for (float& value : batch.data) value = uniform(rng);
    samples.push_back(std::move(batch));
  }
  const quant::Calibration calibration = quant::calibrate_inputs(form, samples);
  Int8File file{folder.file(name + (backend == Backend::Ort ? ".int8.onnx" : ".int8.pt")),
                quant::plan_quantization(form, calibration, alone)};
  if (quantized_ends) {
    // A layer kept in fp32 alone: what its int8 neighbours hand it and take from it is int8.
    for (const auto& value : form.inputs) file.plan.activations[value.name] = quant::uint8_quantization(calibration.ranges.at(value.name));
    for (const auto& value : form.outputs) file.plan.activations[value.name] = quant::uint8_quantization(calibration.ranges.at(value.name));
  }
  // Written once: a second pass over the same operator loads the file again.
  if (std::filesystem::exists(file.path)) return file;
  if (backend == Backend::Ort) {
    quant::write_qdq_onnx(form, file.plan, file.path);
  } else {
    quant::write_quantized_torchscript(form, file.plan, file.path, /*int8_io=*/alone);
  }
  return file;
}

// Inputs as an int8 operator alone on mobile reads them: quantized at the plan's scale where planned.
std::vector<torch::Tensor> quantized_where_planned(const graph::Graph& graph, const quant::QuantPlan& plan, std::vector<torch::Tensor> tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto found = plan.activations.find(graph.inputs[i].name);
    if (found == plan.activations.end()) continue;
    const auto format = tensors[i].dim() == 4 && tensors[i].is_contiguous(torch::MemoryFormat::ChannelsLast) ? torch::MemoryFormat::ChannelsLast
                                                                                                             : torch::MemoryFormat::Contiguous;
    tensors[i] = torch::quantize_per_tensor(tensors[i], found->second.scale, found->second.zero_point, torch::kQUInt8).contiguous(format);
  }
  return tensors;
}

Timing ort_file_timing(const std::filesystem::path& path, const std::vector<graph::Value>& inputs, const BenchOptions& options) {
  auto results = graph::run_onnx_runtime({{path, random_input_map(inputs)}}, ort_options(options));
  if (!results[0].error.empty()) throw MeasureError("ONNX Runtime could not run the model: " + results[0].error);
  return from_ort(*results[0].timing);
}

}  // namespace

Timing bench_model(const graph::Graph& model, Backend backend, const BenchOptions& options) {
  if (auto& remote = remote_timer()) return remote->each({model}, backend, options).at(0);
  ScratchFolder folder;
  if (options.precision == Precision::Int8) {
    const auto path = write_int8(model, backend, folder, "model").path;
    if (backend == Backend::Ort) return ort_file_timing(path, model.inputs, options);
    ThreadScope threads(options.threads);
    return time_runs(file_runner(path, channels_last(random_inputs(model.inputs))), options);
  }
  if (backend == Backend::Ort) {
    graph::write_onnx(model, folder.file("model.onnx"));
    return ort_file_timing(folder.file("model.onnx"), model.inputs, options);
  }
  ThreadScope threads(options.threads);
  Runner run = backend == Backend::Torch ? torch_runner(model) : model_mobile_runner(model, folder, "model");
  return time_runs(run, options);
}

namespace {

// Runs alternate (A, B, C, A, B, C, ...), so that all see the same machine load.
std::vector<Timing> time_interleaved(const std::vector<Runner>& runners, const BenchOptions& options) {
  for (int i = 0; i < options.warmup; ++i) {
    for (const auto& run : runners) run();
  }
  std::vector<std::vector<double>> times(runners.size());
  const auto start = Clock::now();
  const double budget_ms = 1000 * options.budget_seconds * static_cast<double>(runners.size());
  while (static_cast<int>(times[0].size()) < options.max_runs &&
         (static_cast<int>(times[0].size()) < options.min_runs || milliseconds_since(start) < budget_ms)) {
    for (size_t i = 0; i < runners.size(); ++i) {
      const auto begin = Clock::now();
      runners[i]();
      times[i].push_back(milliseconds_since(begin));
    }
  }
  std::vector<Timing> timings;
  for (auto& runs : times) timings.push_back(summarise(std::move(runs)));
  return timings;
}

std::pair<Timing, Timing> time_interleaved(const Runner& run_a, const Runner& run_b, const BenchOptions& options) {
  const auto timings = time_interleaved(std::vector<Runner>{run_a, run_b}, options);
  return {timings[0], timings[1]};
}

// ONNX Runtime runs one model's repetitions after the other's, so alternate short rounds; p10 and
// p90 are over the rounds' medians.
std::vector<Timing> ort_interleaved(const std::vector<graph::OrtRun>& runs, const BenchOptions& options) {
  constexpr int kRounds = 5;
  std::vector<std::vector<double>> medians(runs.size());
  std::vector<int> repeats(runs.size(), 0);
  for (int round = 0; round < kRounds; ++round) {
    auto results = graph::run_onnx_runtime(runs, ort_options(options, kRounds));
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].error.empty()) throw MeasureError("ONNX Runtime could not run a model: " + results[i].error);
      medians[i].push_back(results[i].timing->median_ms);
      repeats[i] += results[i].timing->repeat;
    }
  }
  std::vector<Timing> timings;
  for (size_t i = 0; i < runs.size(); ++i) {
    Timing summary = summarise(medians[i]);
    summary.runs = repeats[i];
    timings.push_back(summary);
  }
  return timings;
}

std::pair<Timing, Timing> ort_interleaved(const std::filesystem::path& a, const std::filesystem::path& b, const ir::TensorMap& inputs_a,
                                          const ir::TensorMap& inputs_b, const BenchOptions& options) {
  const auto timings = ort_interleaved({{a, inputs_a}, {b, inputs_b}}, options);
  return {timings[0], timings[1]};
}

}  // namespace

std::pair<Timing, Timing> bench_models_interleaved(const graph::Graph& a, const graph::Graph& b, Backend backend,
                                                   const BenchOptions& options) {
  if (auto& remote = remote_timer()) return remote->side_by_side(a, b, backend, options);
  if (options.precision == Precision::Int8) {
    ScratchFolder folder;
    if (a.inputs.size() != 1 || b.inputs.size() != 1 || a.inputs[0].shape != b.inputs[0].shape) {
      throw MeasureError("int8 models timed side by side must read one input of the same shape");
    }
    return bench_files_interleaved(write_int8(a, backend, folder, "a").path, write_int8(b, backend, folder, "b").path, a.inputs, backend,
                                   options);
  }
  if (backend == Backend::Ort) {
    ScratchFolder folder;
    graph::write_onnx(a, folder.file("a.onnx"));
    graph::write_onnx(b, folder.file("b.onnx"));
    return ort_interleaved(folder.file("a.onnx"), folder.file("b.onnx"), random_input_map(a.inputs), random_input_map(b.inputs), options);
  }
  ThreadScope threads(options.threads);
  ScratchFolder folder;
  Runner run_a = backend == Backend::Torch ? torch_runner(a) : model_mobile_runner(a, folder, "a");
  Runner run_b = backend == Backend::Torch ? torch_runner(b) : model_mobile_runner(b, folder, "b");
  return time_interleaved(run_a, run_b, options);
}

std::pair<Timing, Timing> bench_files_interleaved(const std::filesystem::path& a, const std::filesystem::path& b,
                                                  const std::vector<graph::Value>& inputs, Backend backend, const BenchOptions& options) {
  if (remote_timer()) throw MeasureError("saved files cannot be timed on a device (only ONNX models cross to its agent): time the models instead");
  if (backend == Backend::Ort) {
    const auto map = random_input_map(inputs);
    return ort_interleaved(a, b, map, map, options);
  }
  ThreadScope threads(options.threads);
  const auto tensors = channels_last(random_inputs(inputs));
  return time_interleaved(file_runner(a, tensors), file_runner(b, tensors), options);
}

std::vector<Timing> bench_files_side_by_side(const std::vector<std::filesystem::path>& files, const std::vector<graph::Value>& inputs,
                                             Backend backend, const BenchOptions& options) {
  if (remote_timer()) throw MeasureError("saved files cannot be timed on a device (only ONNX models cross to its agent): time the models instead");
  if (files.empty()) return {};
  if (backend == Backend::Ort) {
    const auto map = random_input_map(inputs);
    std::vector<graph::OrtRun> runs;
    for (const auto& file : files) runs.push_back({file, map});
    return ort_interleaved(runs, options);
  }
  ThreadScope threads(options.threads);
  const auto tensors = channels_last(random_inputs(inputs));
  std::vector<Runner> runners;
  for (const auto& file : files) runners.push_back(file_runner(file, tensors));
  return time_interleaved(runners, options);
}

namespace {

// One-node graphs timed by their kernels in ONNX Runtime, all in one process.
std::vector<Timing> ort_kernel_timings(const std::vector<graph::Graph>& graphs, const BenchOptions& options,
                                       const std::function<void(size_t, size_t)>& on_progress) {
  ScratchFolder folder;
  std::vector<graph::OrtRun> runs;
  for (size_t i = 0; i < graphs.size(); ++i) {
    const std::string name = "op" + std::to_string(i);
    std::filesystem::path path;
    if (options.precision != Precision::Fp32) {
      path = write_int8(graphs[i], Backend::Ort, folder, name, /*alone=*/true, options.precision == Precision::Fp32InInt8).path;
    } else {
      path = folder.file(name + ".onnx");
      graph::write_onnx(graphs[i], path);
    }
    runs.push_back({path, random_input_map(graphs[i].inputs)});
  }
  // An operator's time is its kernels' time from ONNX Runtime's profiler: a run through Node.js
  // costs tens of microseconds whatever the operator, which timed from outside made the
  // operators alone sum to 4-6x their whole model and drowned small operators' differences.
  // Without the layout reorders ONNX Runtime puts around a lone convolution (a third of a
  // 16-channel 3x3 one's kernel time), which a model pays once at each end of a chain of them.
  // A fixed count per operator, not the budget: the per-call cost would make spending the budget
  // on each take 5-10x as long (0.25 s against 0.03 s per operator).
  BenchOptions fixed_count = options;
  fixed_count.budget_seconds = 0;
  graph::OrtOptions profiled = ort_options(fixed_count);
  profiled.bench->profile = true;
  auto results = graph::run_onnx_runtime(runs, profiled);
  std::vector<Timing> timings;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].error.empty()) throw MeasureError("ONNX Runtime could not run operator " + std::to_string(i) + ": " + results[i].error);
    Timing timing = from_ort(*results[i].kernel_timing);
    if (options.precision == Precision::Fp32InInt8) {
      // Inside an int8 model the layer pays its layout reorders (its neighbours run int8 kernels)
      // and one dequantize in and one quantize out: half the pairs timed here at both ends.
      const double boundary_ms = results[i].layout_timing->median_ms + 0.5 * results[i].quantize_timing->median_ms;
      timing.median_ms += boundary_ms;
      timing.p10_ms += boundary_ms;
      timing.p90_ms += boundary_ms;
    }
    timings.push_back(timing);
    if (on_progress) on_progress(i + 1, graphs.size());
  }
  return timings;
}

// Two passes over all the operators, each with half the runs and budget, and each operator
// keeps its faster pass. A shared machine has slow spells of tens of seconds: of 3,031
// operators timed in two passes one after the other, a third differed by over 10% (whole
// stretches of the list 1.5x slower in one pass), while the faster of two passes agreed within
// 10% with the faster of two later ones for 99% (docs/latency.md).
std::vector<Timing> two_pass_timings(size_t count, const std::function<Runner(size_t, const ScratchFolder&)>& runner_for,
                                     const BenchOptions& options, const std::function<void(size_t, size_t)>& on_progress) {
  ThreadScope threads(options.threads);
  ScratchFolder folder;
  BenchOptions half = options;
  half.budget_seconds = options.budget_seconds / 2;
  half.max_runs = std::max(options.min_runs, options.max_runs / 2);
  std::vector<Timing> timings(count);
  for (size_t pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < count; ++i) {
      const Timing timing = time_runs(runner_for(i, folder), half);
      if (pass == 0 || timing.median_ms < timings[i].median_ms) timings[i] = timing;
      // In operators: half of one per timing.
      if (on_progress) on_progress((pass * count + i + 1) / 2, count);
    }
  }
  return timings;
}

}  // namespace

namespace {

// One-node graphs timed remotely, a batch per request.
std::vector<Timing> remote_operators(RemoteTimer& remote, const std::vector<graph::Graph>& graphs, Backend backend,
                                     const BenchOptions& options, const std::function<void(size_t, size_t)>& on_progress) {
  if (options.precision == Precision::Fp32InInt8) {
    throw MeasureError("an fp32 layer inside an int8 model cannot be timed on a device yet: leave out --device, or time in int8");
  }
  std::vector<Timing> timings;
  for (size_t start = 0; start < graphs.size(); start += kRemoteBatch) {
    const size_t end = std::min(graphs.size(), start + kRemoteBatch);
    auto batch = remote.operators({graphs.begin() + static_cast<std::ptrdiff_t>(start), graphs.begin() + static_cast<std::ptrdiff_t>(end)},
                                  backend, options);
    timings.insert(timings.end(), batch.begin(), batch.end());
    if (on_progress) on_progress(end, graphs.size());
  }
  return timings;
}

}  // namespace

std::vector<Timing> bench_ops(const std::vector<OpToMeasure>& ops, Backend backend, const BenchOptions& options,
                              const std::function<void(size_t, size_t)>& on_progress) {
  if (auto& remote = remote_timer()) {
    std::vector<graph::Graph> graphs;
    for (const auto& op : ops) graphs.push_back(single_op_graph(op.op, op.weights));
    return remote_operators(*remote, graphs, backend, options, on_progress);
  }
  if (backend == Backend::Ort) {
    std::vector<graph::Graph> graphs;
    for (const auto& op : ops) graphs.push_back(single_op_graph(op.op, op.weights));
    if (options.precision == Precision::Fp32InInt8) {
      for (auto& graph : graphs) quant::keep_in_fp32(graph.nodes.at(0));
    }
    return ort_kernel_timings(graphs, options, on_progress);
  }
  return two_pass_timings(
      ops.size(),
      [&](size_t i, const ScratchFolder& folder) {
        const std::string name = "op" + std::to_string(i);
        if (options.precision != Precision::Fp32) {
          graph::Graph single = single_op_graph(ops[i].op, ops[i].weights);
          if (options.precision == Precision::Fp32InInt8) quant::keep_in_fp32(single.nodes.at(0));
          const Int8File file = write_int8(single, backend, folder, name, /*alone=*/true, options.precision == Precision::Fp32InInt8);
          const graph::Graph form = quant::quantizable_form(single);
          return file_runner(file.path, quantized_where_planned(form, file.plan, as_handed_over(ops[i].op, random_inputs(single.inputs))));
        }
        return backend == Backend::Torch ? op_runner(ops[i]) : op_mobile_runner(ops[i], folder, name);
      },
      options, on_progress);
}

std::vector<Timing> bench_graphs_alone(const std::vector<graph::Graph>& graphs, Backend backend, const BenchOptions& options) {
  if (auto& remote = remote_timer()) return remote_operators(*remote, graphs, backend, options, {});
  if (backend == Backend::Ort) return ort_kernel_timings(graphs, options, {});
  return two_pass_timings(
      graphs.size(),
      [&](size_t i, const ScratchFolder& folder) {
        const std::string name = "node" + std::to_string(i);
        if (options.precision == Precision::Int8) {
          const Int8File file = write_int8(graphs[i], backend, folder, name, /*alone=*/true);
          return file_runner(file.path, quantized_where_planned(quant::quantizable_form(graphs[i]), file.plan,
                                                                channels_last(random_inputs(graphs[i].inputs))));
        }
        return backend == Backend::Torch ? torch_runner(graphs[i]) : model_mobile_runner(graphs[i], folder, name);
      },
      options, {});
}

graph::Graph single_node_graph(const graph::Graph& model, const graph::Node& node) {
  graph::Graph graph;
  graph.name = "single_node";
  graph::Node copy = node;
  copy.name = "node";
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const std::string& value = node.inputs[i];
    if (value.empty()) continue;  // an optional input left out (Resize's roi)
    const std::string renamed = "x" + std::to_string(i);
    copy.inputs[i] = renamed;
    if (auto constant = model.constants.find(value); constant != model.constants.end()) {
      graph.constants[renamed] = constant->second;
      graph.shapes[renamed] = constant->second.shape;
    } else {
      graph.inputs.push_back({renamed, model.shape_of(value)});
      graph.shapes[renamed] = model.shape_of(value);
    }
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const std::string renamed = "y" + std::to_string(i);
    copy.outputs[i] = renamed;
    graph.shapes[renamed] = model.shape_of(node.outputs[i]);
    graph.outputs.push_back({renamed, graph.shapes[renamed]});
  }
  graph.nodes.push_back(std::move(copy));
  return graph;
}

Timing time_machine_reference(double budget_seconds) {
  if (auto& remote = remote_timer()) return remote->machine_reference(budget_seconds);
  // A dependent chain cannot be vectorised or reordered, so the work is the same on every run and
  // every compiler; the table is 32 KB, within any L1 or L2.
  constexpr int kSteps = 200'000;
  static const std::vector<float> table = [] {
    std::vector<float> values(8192);
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97) / 97.0f;
    return values;
  }();
  [[maybe_unused]] static volatile double sink = 0;  // written so the loop is not optimised away
  const Runner run = [] {
    double accumulated = 0;
    for (int i = 0; i < kSteps; ++i) accumulated = accumulated * 0.999 + table[static_cast<size_t>(i) & 8191];
    sink = accumulated;
  };
  return time_runs(run, {.warmup = 10, .min_runs = 20, .max_runs = 20'000, .budget_seconds = budget_seconds});
}

std::string machine_fingerprint() {
  if (auto& remote = remote_timer()) return remote->fingerprint();
  return this_cpu() + " x" + std::to_string(std::thread::hardware_concurrency());
}

std::string this_cpu() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model, board, part;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon + 2 > line.size()) continue;
    const std::string value = line.substr(colon + 2);
    if (model.empty() && line.rfind("model name", 0) == 0) model = value;
    if (board.empty() && line.rfind("Model", 0) == 0) board = value;
    if (part.empty() && line.rfind("CPU part", 0) == 0) part = "ARM CPU part " + value;
  }
#if defined(__aarch64__)
  // An aarch64 kernel has no "model name": this is an x86 host's cpuinfo seen through qemu-user,
  // whose timings must not share cache rows with the host's own.
  if (!model.empty()) model += " (aarch64 under emulation)";
#endif
  if (model.empty()) model = board;
  if (model.empty()) {
    std::ifstream tree("/proc/device-tree/model");
    std::getline(tree, model, '\0');
  }
  if (model.empty()) model = part.empty() ? "unknown CPU" : part;
  return model;
}

}  // namespace gos::measure
