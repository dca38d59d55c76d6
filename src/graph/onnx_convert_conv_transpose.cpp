// ConvTranspose as instructions: a convolution over the input with stride - 1 zeros inserted
// between its positions, with the kernel flipped and its channel axes swapped. The convolution is
// an ordinary ir::conv1d / ir::conv2d statement, so the rules search it like any other.
#include <algorithm>

#include "graph/onnx_convert.h"

namespace gos::graph::onnx_import {

namespace {

using ir::Access;
using ir::Affine;
using ir::Role;
using ir::Statement;

struct Geometry {
  int64_t input = 0, kernel = 0, stride = 1, dilation = 1, output = 0;
};

// ONNX's begin pads, from `pads`, or from output_shape / auto_pad (SAME_UPPER puts the smaller
// half at the start).
std::vector<int64_t> begin_pads(const NodeContext& context, const std::vector<Geometry>& axes, const std::vector<int64_t>& output_padding) {
  const size_t rank = axes.size();
  const std::string auto_pad = attribute_string(context.proto(), "auto_pad", "NOTSET");
  const bool from_output = attribute_ints(context.proto(), "output_shape").has_value();
  if (auto_pad == "NOTSET" && !from_output) {
    const auto pads = ints_or(context.proto(), "pads", 2 * rank, 0);
    if (pads.size() != 2 * rank) throw Unsupported{"pads has " + std::to_string(pads.size()) + " entries"};
    return std::vector<int64_t>(pads.begin(), pads.begin() + static_cast<int64_t>(rank));
  }
  if (auto_pad == "VALID") return std::vector<int64_t>(rank, 0);
  std::vector<int64_t> begins;
  for (size_t axis = 0; axis < rank; ++axis) {
    const Geometry& g = axes[axis];
    const int64_t total = g.stride * (g.input - 1) + output_padding[axis] + (g.kernel - 1) * g.dilation + 1 - g.output;
    begins.push_back(auto_pad == "SAME_LOWER" ? total - total / 2 : total / 2);
  }
  return begins;
}

std::vector<std::string> names(const std::string& prefix, size_t count) {
  static const char* spatial[] = {"h", "w"};
  std::vector<std::string> result;
  for (size_t i = 0; i < count; ++i) result.push_back(count == 1 ? prefix + "l" : prefix + spatial[i]);
  return result;
}

// D[n, c, s*i + a, ...] = X[n, c, i, ...] * E[a] with E = (1, 0, ..., 0): X with zeros between.
Statement zero_insertion(const Shape& input, const std::vector<Geometry>& axes) {
  Statement statement;
  statement.output.tensor = "D";
  const auto positions = names("i", axes.size()), phases = names("a", axes.size());
  statement.output_indices = {{"n", input[0]}, {"c", input[1]}};
  statement.output.subscripts = {Affine::index("n"), Affine::index("c")};
  Access x{"X", {Affine::index("n"), Affine::index("c")}};
  statement.factors.push_back(x);
  for (size_t axis = 0; axis < axes.size(); ++axis) {
    statement.output_indices.push_back({positions[axis], axes[axis].input});
    statement.output_indices.push_back({phases[axis], axes[axis].stride});
    statement.output.subscripts.push_back(Affine::index(positions[axis]) * axes[axis].stride + Affine::index(phases[axis]));
    statement.factors[0].subscripts.push_back(Affine::index(positions[axis]));
    statement.factors.push_back(Access{"E" + std::to_string(axis), {Affine::index(phases[axis])}});
  }
  return statement;
}

// Y[n, k, o...] = Z[n, k, o + offset...]: the convolution's output cut to ONNX's.
Statement crop(const Shape& output, const std::vector<int64_t>& offsets) {
  Statement statement;
  statement.output.tensor = "Y";
  const auto positions = names("o", offsets.size());
  statement.output_indices = {{"n", output[0]}, {"k", output[1]}};
  statement.output.subscripts = {Affine::index("n"), Affine::index("k")};
  Access z{"Z", {Affine::index("n"), Affine::index("k")}};
  for (size_t axis = 0; axis < offsets.size(); ++axis) {
    statement.output_indices.push_back({positions[axis], output[axis + 2]});
    statement.output.subscripts.push_back(Affine::index(positions[axis]));
    z.subscripts.push_back(Affine::index(positions[axis]) + Affine::constant(offsets[axis]));
  }
  statement.factors = {z};
  return statement;
}

// W'[g*Kg + k, c, r...] = W[g*Cg + c, k, R-1-r...]: ONNX stores [C_in, K/G, kernel...].
ir::Tensor convolution_weight(const ir::Tensor& weight, int64_t groups) {
  const int64_t in = weight.shape[0], per_group_out = weight.shape[1], per_group_in = in / groups;
  int64_t taps = 1;
  for (size_t axis = 2; axis < weight.shape.size(); ++axis) taps *= weight.shape[axis];
  Shape shape = weight.shape;
  shape[0] = per_group_out * groups;
  shape[1] = per_group_in;
  ir::Tensor flipped(shape);
  for (int64_t c_in = 0; c_in < in; ++c_in) {
    const int64_t group = c_in / per_group_in, c = c_in % per_group_in;
    for (int64_t k = 0; k < per_group_out; ++k) {
      const float* source = weight.data.data() + (c_in * per_group_out + k) * taps;
      float* target = flipped.data.data() + ((group * per_group_out + k) * per_group_in + c) * taps;
      for (int64_t tap = 0; tap < taps; ++tap) target[tap] = source[taps - 1 - tap];  // every spatial axis reversed
    }
  }
  return flipped;
}

Node conv_transpose(const NodeContext& context) {
  const auto& node = context.proto();
  const Shape& input = context.shape(0);
  if (input.size() != 3 && input.size() != 4) throw Unsupported{"ConvTranspose over other than 1 or 2 spatial dimensions"};
  const size_t rank = input.size() - 2;
  const ConstValue& weight = context.constant(1, "weight");
  if (weight.shape.size() != input.size()) throw Unsupported{"its weight's rank does not match its input's"};
  const int64_t groups = attribute_int(node, "group", 1);
  if (groups <= 0 || weight.shape[0] != input[1] || input[1] % groups != 0) {
    throw Unsupported{"its weight has " + std::to_string(weight.shape[0]) + " input channels for " + std::to_string(input[1]) +
                      " in " + std::to_string(groups) + " groups"};
  }
  const Shape& output = context.output_shape();
  const auto strides = ints_or(node, "strides", rank, 1), dilations = ints_or(node, "dilations", rank, 1);
  const auto output_padding = ints_or(node, "output_padding", rank, 0);
  if (strides.size() != rank || dilations.size() != rank || output_padding.size() != rank) {
    throw Unsupported{"strides, dilations or output_padding do not give every spatial axis"};
  }
  std::vector<Geometry> axes;
  for (size_t axis = 0; axis < rank; ++axis) {
    axes.push_back({input[axis + 2], weight.shape[axis + 2], strides[axis], dilations[axis], output[axis + 2]});
  }
  const auto begins = begin_pads(context, axes, output_padding);

  // The convolution reads the zero-inserted input (extent stride * input) from
  // dilation * (kernel - 1) - pad_begin before it; a negative start, or an end short of ONNX's
  // output, is made up by padding more and cropping.
  std::vector<int64_t> pad_begin(rank), pad_end(rank), offsets(rank), inserted(rank);
  bool cropped = false;
  for (size_t axis = 0; axis < rank; ++axis) {
    const Geometry& g = axes[axis];
    const int64_t span = g.dilation * (g.kernel - 1);
    inserted[axis] = g.stride * g.input;
    const int64_t start = span - begins[axis];
    pad_begin[axis] = std::max<int64_t>(start, 0);
    offsets[axis] = pad_begin[axis] - start;
    pad_end[axis] = std::max<int64_t>(0, offsets[axis] + g.output - inserted[axis] - pad_begin[axis] + span);
    const int64_t produced = inserted[axis] + pad_begin[axis] + pad_end[axis] - span;
    if (produced < offsets[axis] + g.output) throw Unsupported{"its output is longer than the transposed convolution produces"};
    cropped = cropped || offsets[axis] != 0 || produced != g.output;
  }

  const int64_t out_channels = weight.shape[1] * groups;
  const bool bias = context.has_input(2);
  ir::OpExpr conv = rank == 1 ? ir::conv1d({input[0], input[1], out_channels, inserted[0], axes[0].kernel, 1, {pad_begin[0], pad_end[0]},
                                            axes[0].dilation, groups, bias})
                              : ir::conv2d({input[0],
                                            input[1],
                                            out_channels,
                                            {inserted[0], inserted[1]},
                                            {axes[0].kernel, axes[1].kernel},
                                            {1, 1},
                                            {pad_begin[0], pad_begin[1], pad_end[0], pad_end[1]},
                                            {axes[0].dilation, axes[1].dilation},
                                            groups,
                                            bias});
  const bool zeros_inserted = std::any_of(strides.begin(), strides.end(), [](int64_t s) { return s != 1; });
  Statement convolution = conv.statements().at(0);
  if (zeros_inserted) convolution.factors[0].tensor = "D";
  if (cropped) convolution.output.tensor = "Z";

  std::vector<ir::TensorDecl> tensors{{"X", Role::Input, input, nullptr}};
  std::vector<Statement> statements;
  if (zeros_inserted) {
    for (size_t axis = 0; axis < rank; ++axis) {
      std::vector<float> first(static_cast<size_t>(strides[axis]), 0.0f);
      first[0] = 1.0f;
      tensors.push_back({"E" + std::to_string(axis), Role::Const, {strides[axis]}, std::make_shared<const std::vector<float>>(first)});
    }
    statements.push_back(zero_insertion(input, axes));
  }
  for (const auto& declared : conv.tensors()) {
    if (declared.role == Role::Param) tensors.push_back(declared);
  }
  statements.push_back(convolution);
  if (cropped) statements.push_back(crop(output, offsets));

  ir::TensorMap weights{{"W", convolution_weight(weight.to_tensor(), groups)}};
  if (bias) weights["B"] = context.constant(2, "bias").to_tensor();
  return compute_node(context, ir::OpExpr::make(std::move(tensors), std::move(statements)), {context.input(0)}, std::move(weights));
}

}  // namespace

void add_conv_transpose_converter(ConverterTable& table) { table["ConvTranspose"] = conv_transpose; }

}  // namespace gos::graph::onnx_import
