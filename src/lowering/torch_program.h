#pragma once
// An operator as a straight-line program of libtorch calls, planned once in plain C++ and then
// either run eagerly (torch_lowering.h) or printed as TorchScript (torchscript_lowering.h). One
// plan for both means the TorchScript text computes exactly what the tested eager path computes.
// Plain C++: no libtorch header (the graph part plans its structural nodes with the same calls).
//
// Each statement becomes its recognised kernel's call (kernels.h) or, for anything else, the
// generic lowering: one strided view per read whose dimensions are the statement's indices,
// then einsum (sum, mean) or a masked amax (max), addends by broadcasting, and a reshape into
// mixed-radix output subscripts.
//
// Batch rule (generic lowering): an operator has a nominal batch, but its program runs at any
// batch size. The index that is the plain subscript of dimension 0 of a statement's output is
// the batch index when it also is the plain subscript of dimension 0 of some read of an input or
// intermediate, and appears nowhere else (no other dimension, no param or const), and every tensor
// it indexes has the index's extent as its nominal size(0). Its extent is then taken at run time
// from that read's size(0); every other extent is the nominal one.
// Kernels are batch-agnostic by nature.
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/ir.h"
#include "lowering/kernels.h"

namespace gos::lowering {

// The libtorch functions programs call. Each has one eager implementation and one TorchScript
// spelling, side by side in torch_functions.cpp; the comment gives the arguments.
enum class TorchFn {
  // Kernels
  ConstantPad,  // x, pads (torch order: last dimension first), value
  Conv1d,       // x, w, b?, stride, padding, dilation, groups
  Conv2d,       // x, w, b?, stride, padding, dilation, groups
  Linear,       // x, w, b?
  Transpose,    // x (2-D)
  MatMul,       // a, b
  MaxPool1d,    // x, kernel, stride, padding, dilation, ceil_mode
  MaxPool2d,    // x, kernel, stride, padding, dilation, ceil_mode
  AvgPool1d,    // x, kernel, stride, padding, ceil_mode, count_include_pad
  AvgPool2d,    // x, kernel, stride, padding, ceil_mode, count_include_pad
  Narrow,       // x, dim, start, length
  Mean,         // x, dims, keepdim
  Activation,   // x, activation
  Identity,     // x
  // Elementwise arithmetic (numpy broadcasting)
  Add, Sub, Mul, Div, Pow,  // a, b
  Scale,                    // x, factor (double)
  Sqrt, Exp, Erf,           // x
  // Generic lowering
  Contiguous,        // x
  ChannelsLast,      // x (4-D): contiguous in channels-last memory format
  AsStrided,         // x, sizes, strides, offset (from x's storage offset)
  Gather,            // x, flat index table, sizes: x flattened, indexed, reshaped
  GatherPerSample,   // x, flat index table, sizes: the same per sample along dimension 0
  OnesLike,          // x
  Einsum,            // equation, operands
  Amax,              // x, dims
  MaskedMax,         // x, mask, dims: max over mask != 0, and 0 where the mask is empty
  Reshape,           // x, sizes
  Expand,            // x, sizes
  // Structural (graph nodes)
  Flatten,     // x, start, end: flatten(start) then flatten(0, end)
  Permute,     // x, dims
  Cat,         // tensors, dim
  Slice,       // x, dim, start, end, step
  Flip,        // x, dims
  Squeeze,     // x, dim
  Unsqueeze,   // x, dim
  Softmax,     // x, dim
  LogSoftmax,  // x, dim
  LayerNorm,   // x, normalized_shape, weight?, bias?, epsilon
  BatchNorm,   // x, weight, bias, running_mean, running_var, momentum, epsilon (training from the run)
  InstanceNorm,    // x, weight, bias, epsilon
  LeakyRelu,       // x, negative slope
  Elu,             // x, alpha, scale (SELU is an ELU scaled)
  Softplus,        // x
  PRelu,           // x, slope (numpy broadcasting)
  ReflectionPad,   // x, pads (torch order), number of trailing axes padded (1 to 3)
  ReplicationPad,  // x, pads (torch order), number of trailing axes padded (1 to 3)
  IndexSelect,     // x, dim, indices
  Lerp,            // x, dim, lower indices, upper indices, weights, weight shape: linear interpolation along dim
};

// A tensor a call reads: a value of the program, or (graph nodes) a learned weight of the node.
struct ValueRef {
  std::string name;
  bool weight = false;
  friend bool operator==(const ValueRef&, const ValueRef&) = default;
};

// Sizes of which some entries are known only at run time: entry `position` is
// `source.size(dimension)` for each (position, dimension) in `copied` (a batch, ONNX Reshape's 0).
struct RuntimeSizes {
  std::vector<int64_t> sizes;
  std::map<size_t, int64_t> copied;
  ValueRef source;
};

// std::monostate is torch's None (an absent bias); std::string is literal text (an equation).
using TorchArg = std::variant<std::monostate, ValueRef, std::vector<ValueRef>, int64_t, double, bool,
                              std::vector<int64_t>, RuntimeSizes, std::string, ir::Activation, std::vector<double>>;

struct TorchCall {
  TorchFn function;
  std::vector<TorchArg> args;
  std::string result;  // the value the call defines
};

struct TorchProgram {
  // The operator's tensors the program reads, by name: inputs in signature order, params, consts.
  std::vector<std::string> inputs, params, consts;
  // Generated int64 index tables (flat positions for Gather), by value name.
  std::map<std::string, std::vector<int64_t>> index_tables;
  std::vector<TorchCall> calls;
  std::string output;
  std::vector<KernelKind> statement_kinds;  // how each statement was lowered
};

enum class KernelChoice {
  Recognise,    // recognised kernels where possible, the generic lowering elsewhere
  GenericOnly,  // the generic lowering for every statement (tests, comparisons)
  // As Recognise, but a 1-D convolution runs as a 2-D one over [N, C, 1, L] in channels-last
  // memory, its result squeezed back to [N, C, L] (a view still channels-last underneath, so the
  // next convolution converts nothing). For the mobile export: XNNPACK has no 1-D convolution, and
  // libtorch 1.13 runs conv1d 2-5x slower than this 2-D form through XNNPACK.
  RecogniseChannelsLast,
};

// Throws ir::IrError for a statement the generic lowering cannot express (more than 52 indices).
TorchProgram plan_torch_program(const ir::OpExpr& op, KernelChoice choice = KernelChoice::Recognise);

// The TorchScript expression computing `call`, with each tensor it reads spelled by `name`.
using ScriptNames = std::function<std::string(const ValueRef&)>;
std::string script_expression(const TorchCall& call, const ScriptNames& name);

}  // namespace gos::lowering
