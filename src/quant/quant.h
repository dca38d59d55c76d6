#pragma once
// The public face of int8 quantization: post-training static quantization of a graph, as the
// edge runtimes run it (docs/quantization.md).
//
//   activations  uint8, per tensor, asymmetric: the range each value took on calibration images
//                (min and max, widened to hold 0 so that zero padding stays exact)
//   weights      int8, per output channel, symmetric (zero point 0), of convolutions, linear
//                layers and products with a weight
//   biases       int32 at the scale of input times weight, as the integer kernels add them
//
// Every value a node reads, other than a graph output, is quantized where it is produced, so
// every reader sees the same rounded tensor: in the QDQ ONNX file a QuantizeLinear and a
// DequantizeLinear follow its producer, and the fake-quantized reference (libtorch) rounds it the
// same way. Compute nodes whose kernels have no int8 form (the generic einsum lowering, gathers)
// read and write those rounded values in fp32; the plan names them.
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "graph/graph.h"

namespace gos::quant {

// Bad calibration data, or a model that cannot be quantized; `what()` is one line for the user.
class QuantError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Range {
  float min = 0, max = 0;
};

// uint8 affine quantization of one tensor: real = scale * (q - zero_point), q in [0, 255].
struct ActivationQuant {
  float scale = 1;
  int32_t zero_point = 0;
};
// The range widened to hold 0, over 255 steps; a range of one value gets a scale of 1/255 of it
// (or of 1, for all zeros), never 0.
ActivationQuant uint8_quantization(Range range);

// int8 symmetric quantization of a weight along `axis` (per channel): scale = max |w| / 127 of
// each slice (1 for an all-zero slice), q = round(w / scale) in [-127, 127].
struct WeightQuant {
  std::vector<float> scales;  // one per slice along axis
  std::vector<int8_t> values;  // the weight's shape, row-major
  int64_t axis = 0;
};
WeightQuant int8_per_channel(const ir::Tensor& weight, int64_t axis);
// The weight as its int8 form computes: each value rounded to its channel's grid.
ir::Tensor int8_rounded(const ir::Tensor& weight, int64_t axis);

// The range of every value calibration saw: graph inputs and every node's outputs.
struct Calibration {
  std::map<std::string, Range> ranges;
  int64_t images = 0;
};

// How each compute node runs once quantized.
struct NodePrecision {
  std::string node;
  std::string op_type;
  bool int8 = false;
  std::string why_fp32;  // when not int8: which kernel has no int8 form
};

struct QuantPlan {
  std::map<std::string, ActivationQuant> activations;  // the quantized values, by value name
  std::vector<NodePrecision> nodes;                   // compute nodes, in graph order
  int64_t calibration_images = 0;
  int int8_nodes() const;
};

// Mixed precision: a compute node marked to stay fp32 (the int8 search's choice for a layer whose
// int8 error is too large, or whose fp32 kernel is faster) is planned fp32 whatever its kernel.
// The mark is a node attribute, so it follows the node through batch-norm folding, splitting and
// training; fp32 exports ignore it.
void keep_in_fp32(graph::Node& node);
bool kept_in_fp32(const graph::Node& node);

// The values to quantize (calibrated, read or written by an int8 node, not a graph output) and
// each compute node's precision. `graph` in its quantizable_form, as calibrated.
// With `quantize_outputs`, graph outputs written by int8 nodes are quantized too (and handed out
// dequantized): an operator timed alone as it runs inside a model, writing int8 for the next.
QuantPlan plan_quantization(const graph::Graph& graph, const Calibration& calibration, bool quantize_outputs = false);

// Runs `graph` (quantizable_form) over `images` ([N, ...] at the graph's input shape) in
// batches with libtorch and records every value's range. Throws QuantError when the images do
// not fit the graph's single input.
Calibration calibrate(const graph::Graph& graph, const ir::Tensor& images, int64_t batch = 64);
// The same over a graph of any number of inputs, one batch [N, ...] per input in order: what
// timing an operator alone calibrates on (random inputs).
Calibration calibrate_inputs(const graph::Graph& graph, const std::vector<ir::Tensor>& inputs);

// The graph as every quantized form computes it: batch norms folded, and each compute node of
// several statements (a candidate's depthwise and 1x1 convolutions) split into a node per
// statement, named "<node>/<tensor>" but for the last, so that every value one kernel hands the
// next is calibrated and quantized.
graph::Graph quantizable_form(const graph::Graph& graph);

// The fake-quantized reference (libtorch): `graph` (quantizable_form) with every weight of an int8
// node rounded to its int8 grid and every planned value rounded to its uint8 grid where it is
// produced; what an int8 runtime computes, up to the rounding of its integer accumulation.
ir::Tensor fake_quantized_forward(const graph::Graph& graph, const QuantPlan& plan, const ir::Tensor& input);

// The QDQ ONNX model (opset 17): gos's ONNX export of `graph` (quantizable_form) with a
// QuantizeLinear/DequantizeLinear pair after each planned value's producer and int8 weights and
// int32 biases behind DequantizeLinear for the int8 nodes' convolutions, Gemms and MatMuls. ONNX
// Runtime fuses these into its integer kernels (QLinearConv, QGemm, QLinearAdd, ...). Checked by
// onnx::checker and shape inference before it is written; throws graph::GraphError otherwise.
void write_qdq_onnx(const graph::Graph& graph, const QuantPlan& plan, const std::filesystem::path& path);

// The quantized TorchScript module for PyTorch Mobile: int8 nodes that are convolutions (2-D,
// symmetric padding, no shuffle), linear layers, products with a right-hand weight or additions,
// with no activation or a ReLU, as libtorch's quantized operators (quantized::conv2d(_relu),
// linear(_relu), add(_relu)) on quint8 tensors with prepacked int8 weights; every
// other node as its fp32 program on dequantized values (weights rounded as the reference rounds
// them), so the module computes what fake_quantized_forward computes. Frozen, written with
// Module::save; load it with load_torchscript (torchscript_module.h). Throws
// graph::GraphError.
// With `int8_io`, planned graph inputs arrive as quint8 tensors at their planned scale and planned
// outputs leave quantized: an operator timed alone as it runs between two others inside a model.
void write_quantized_torchscript(const graph::Graph& graph, const QuantPlan& plan, const std::filesystem::path& path,
                                 bool int8_io = false);

// Sets libtorch's quantized engine to the platform's: QNNPACK on ARM (PyTorch Mobile's), oneDNN on
// x86 (Debian's libtorch has no FBGEMM; its QNNPACK runs there on slow generic kernels). The engine
// packs a module's weights when it is written and again when it is loaded.
void use_platform_quantized_engine();
std::string platform_quantized_engine();  // "QNNPACK" or "oneDNN"

// A TorchScript file (fp32, or written by write_quantized_torchscript) run over `inputs` [N, ...]
// in batches, with the platform's quantized engine; its single output, [N, ...].
ir::Tensor run_torchscript(const std::filesystem::path& path, const ir::Tensor& inputs, int64_t batch = 500);

}  // namespace gos::quant
