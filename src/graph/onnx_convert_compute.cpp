// Nodes with learned weights or sliding windows: Conv, Gemm, MatMul, pooling, spatial means.
// Each maps its ONNX attributes onto an ir::ops spec; the constructors write the instructions.
#include <algorithm>

#include "graph/onnx_convert.h"

namespace gos::graph::onnx_import {

namespace {

Shape spatial_of(const Shape& shape) { return Shape(shape.begin() + 2, shape.end()); }

void require_spatial_rank(const Shape& input, const std::string& op_type) {
  if (input.size() != 3 && input.size() != 4) {
    throw Unsupported{op_type + " over " + std::to_string(input.size() >= 2 ? input.size() - 2 : 0) +
                      " spatial dimensions; gos handles 1-D and 2-D"};
  }
}

// ONNX pads as begins then ends, from `pads` or from auto_pad (SAME_* pads so that the output
// is ceil(input / stride), the odd cell going at the end for SAME_UPPER, the start for SAME_LOWER).
std::vector<int64_t> explicit_pads(const NodeContext& context, const Shape& spatial, const std::vector<int64_t>& kernel,
                                   const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations) {
  const size_t rank = spatial.size();
  const std::string auto_pad = attribute_string(context.proto(), "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") return ints_or(context.proto(), "pads", 2 * rank, 0);
  std::vector<int64_t> pads(2 * rank, 0);
  if (auto_pad == "VALID") return pads;
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") throw Unsupported{"auto_pad '" + auto_pad + "' is unknown"};
  for (size_t axis = 0; axis < rank; ++axis) {
    const int64_t output = (spatial[axis] + strides[axis] - 1) / strides[axis];
    const int64_t total =
        std::max<int64_t>(0, (output - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - spatial[axis]);
    const int64_t smaller = total / 2;
    pads[axis] = auto_pad == "SAME_UPPER" ? smaller : total - smaller;
    pads[axis + rank] = total - pads[axis];
  }
  return pads;
}

void require_entries(const std::vector<int64_t>& values, size_t count, const std::string& attribute) {
  if (values.size() != count) {
    throw Unsupported{attribute + " has " + std::to_string(values.size()) + " entries; expected " +
                      std::to_string(count)};
  }
}

Node conv(const NodeContext& context) {
  const auto& node = context.proto();
  const Shape& input = context.shape(0);
  require_spatial_rank(input, "Conv");
  const ConstValue& weight = context.constant(1, "weight");
  const size_t rank = input.size() - 2;
  if (weight.shape.size() != input.size()) throw Unsupported{"its weight's rank does not match its input's"};
  const std::vector<int64_t> kernel(weight.shape.begin() + 2, weight.shape.end());
  if (auto declared = attribute_ints(node, "kernel_shape"); declared && *declared != kernel) {
    throw Unsupported{"kernel_shape disagrees with the weight's shape"};
  }
  const auto strides = ints_or(node, "strides", rank, 1);
  const auto dilations = ints_or(node, "dilations", rank, 1);
  require_entries(strides, rank, "strides");
  require_entries(dilations, rank, "dilations");
  const auto pads = explicit_pads(context, spatial_of(input), kernel, strides, dilations);
  require_entries(pads, 2 * rank, "pads");
  const int64_t groups = attribute_int(node, "group", 1);
  if (groups <= 0 || weight.shape[1] * groups != input[1]) {
    throw Unsupported{"its weight has " + std::to_string(weight.shape[1]) + " input channels per group for " +
                      std::to_string(input[1]) + " input channels in " + std::to_string(groups) + " groups"};
  }

  ir::TensorMap weights{{"W", weight.to_tensor()}};
  if (context.has_input(2)) weights["B"] = context.constant(2, "bias").to_tensor();
  const bool bias = weights.count("B") > 0;
  ir::OpExpr op = [&] {
    if (rank == 1) {
      return ir::conv1d({input[0],
                         input[1],
                         weight.shape[0],
                         input[2],
                         kernel[0],
                         strides[0],
                         {pads[0], pads[1]},
                         dilations[0],
                         groups,
                         bias});
    }
    return ir::conv2d({input[0],
                       input[1],
                       weight.shape[0],
                       {input[2], input[3]},
                       {kernel[0], kernel[1]},
                       {strides[0], strides[1]},
                       {pads[0], pads[1], pads[2], pads[3]},
                       {dilations[0], dilations[1]},
                       groups,
                       bias});
  }();
  return compute_node(context, std::move(op), {context.input(0)}, std::move(weights));
}

// Y = alpha * op(A) * op(B) + beta * C with B (and C) stored: alpha scales the weight, beta the bias.
Node gemm(const NodeContext& context) {
  const auto& node = context.proto();
  const Shape& a = context.shape(0);
  const ConstValue& b = context.constant(1, "weight B");
  const bool trans_a = attribute_int(node, "transA", 0) != 0, trans_b = attribute_int(node, "transB", 0) != 0;
  if (a.size() != 2 || b.shape.size() != 2) throw Unsupported{"Gemm operands must be matrices"};
  const int64_t batch = trans_a ? a[1] : a[0], in = trans_a ? a[0] : a[1], out = trans_b ? b.shape[0] : b.shape[1];

  ir::Tensor weight = b.to_tensor();
  const float alpha = static_cast<float>(attribute_float(node, "alpha", 1.0));
  for (float& value : weight.data) value *= alpha;
  ir::TensorMap weights{{"W", std::move(weight)}};
  if (context.has_input(2)) {
    const ConstValue& c = context.constant(2, "bias C");
    const bool row = c.elements() == out && (c.shape.size() == 1 || (c.shape.size() == 2 && c.shape[0] == 1));
    if (!row && c.elements() != 1) throw Unsupported{"its bias C is not a row vector or a scalar"};
    const float beta = static_cast<float>(attribute_float(node, "beta", 1.0));
    ir::Tensor bias({out});
    for (int64_t k = 0; k < out; ++k) bias.data[k] = beta * static_cast<float>(c.values[row ? k : 0]);
    weights["B"] = std::move(bias);
  }
  ir::OpExpr op = ir::linear({batch, in, out, trans_a, trans_b, weights.count("B") > 0});
  return compute_node(context, std::move(op), {context.input(0)}, std::move(weights));
}

// W[k, n] as W[n, k].
ir::Tensor transposed(const ir::Tensor& matrix) {
  const int64_t rows = matrix.shape[0], columns = matrix.shape[1];
  ir::Tensor result({columns, rows});
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t column = 0; column < columns; ++column) result.data[column * rows + row] = matrix.data[row * columns + column];
  }
  return result;
}

// A @ W with W stored (a Linear: 2-D inputs as Gemm, batched inputs sharing W), or A @ B of two
// computed values with the same batch dimensions (attention).
Node matmul(const NodeContext& context) {
  const Shape& a = context.shape(0);
  if (a.size() < 2) throw Unsupported{"MatMul of a vector; gos handles matrices and batches of them"};
  if (context.is_constant(0)) {  // W @ X: a weight mixing rows (MLP-Mixer's token mixing)
    const ConstValue& weight = context.constant(0, "weight");
    const Shape& x = context.shape(1);
    if (weight.shape.size() != 2 || x.size() < 3) {
      throw Unsupported{"MatMul with a constant left operand of rank " + std::to_string(weight.shape.size()) +
                        " on data of rank " + std::to_string(x.size()) + "; gos handles W[m,k] @ X[batch...,k,n]"};
    }
    const Shape batch(x.begin(), x.end() - 2);
    ir::OpExpr op = ir::matmul({.batch_dims = batch, .m = weight.shape[0], .k = weight.shape[1], .n = x.back(),
                                .weight_lhs = true});
    return compute_node(context, std::move(op), {context.input(1)}, {{"W", weight.to_tensor()}});
  }
  const Shape batch(a.begin(), a.end() - 2);
  const int64_t m = a[a.size() - 2], k = a.back();
  if (context.is_constant(1)) {
    const ConstValue& weight = context.constant(1, "weight");
    if (weight.shape.size() != 2)
      throw Unsupported{"MatMul with a weight of rank " + std::to_string(weight.shape.size())};
    const int64_t n = weight.shape[1];
    if (batch.empty()) {
      return compute_node(context, ir::linear({m, k, n, false, false, false}), {context.input(0)},
                          {{"W", weight.to_tensor()}});
    }
    // Kept as a linear layer keeps its weight, W[n, k]: PyTorch's exporter writes nn.Linear on 3-D
    // data as MatMul with the weight transposed into an initializer, and gos's own export writes
    // Transpose(W), so either way the layer imports as the one form the rules and kernels know.
    ir::OpExpr op = ir::matmul({.batch_dims = batch, .m = m, .k = k, .n = n, .weight_rhs = true, .weight_transposed = true});
    return compute_node(context, std::move(op), {context.input(0)}, {{"W", transposed(weight.to_tensor())}});
  }
  const Shape& b = context.shape(1);
  if (b.size() != a.size() || !std::equal(batch.begin(), batch.end(), b.begin())) {
    throw Unsupported{"MatMul whose operands' batch dimensions differ (broadcasting)"};
  }
  ir::OpExpr op = ir::matmul({batch, m, k, b.back(), false});
  return compute_node(context, std::move(op), {context.input(0), context.input(1)}, {});
}

ir::PoolSpec pool_spec(const NodeContext& context) {
  const auto& node = context.proto();
  const Shape& input = context.shape(0);
  require_spatial_rank(input, node.op_type());
  const size_t rank = input.size() - 2;
  auto kernel = attribute_ints(node, "kernel_shape");
  if (!kernel) throw Unsupported{"it has no kernel_shape"};
  require_entries(*kernel, rank, "kernel_shape");
  ir::PoolSpec spec;
  spec.batch = input[0];
  spec.channels = input[1];
  spec.input_size = spatial_of(input);
  spec.kernel = *kernel;
  spec.stride = ints_or(node, "strides", rank, 1);
  spec.dilation = ints_or(node, "dilations", rank, 1);
  require_entries(spec.stride, rank, "strides");
  require_entries(spec.dilation, rank, "dilations");
  spec.padding = explicit_pads(context, spec.input_size, spec.kernel, spec.stride, spec.dilation);
  spec.ceil_mode = attribute_int(node, "ceil_mode", 0) != 0;
  spec.count_include_pad = attribute_int(node, "count_include_pad", 0) != 0;
  return spec;
}

Node max_pool(const NodeContext& context) {
  if (context.extra_outputs_used()) throw Unsupported{"its Indices output is read"};
  return compute_node(context, ir::max_pool(pool_spec(context)), {context.input(0)}, {});
}

Node average_pool(const NodeContext& context) {
  return compute_node(context, ir::average_pool(pool_spec(context)), {context.input(0)}, {});
}

Node global_average_pool(const NodeContext& context) {
  const Shape& input = context.shape(0);
  if (input.size() < 3) throw Unsupported{"GlobalAveragePool needs spatial dimensions"};
  return compute_node(context, ir::global_average_pool(input[0], input[1], spatial_of(input), true), {context.input(0)},
                      {});
}

Node global_max_pool(const NodeContext& context) {
  const Shape& input = context.shape(0);
  require_spatial_rank(input, "GlobalMaxPool");
  ir::PoolSpec spec;
  spec.batch = input[0];
  spec.channels = input[1];
  spec.input_size = spatial_of(input);
  spec.kernel = spec.input_size;
  return compute_node(context, ir::max_pool(spec), {context.input(0)}, {});
}

// A mean over every spatial axis is a global average pooling; other means stay structural.
Node reduce_mean(const NodeContext& context) {
  const Shape& input = context.shape(0);
  auto axes = attribute_ints(context.proto(), "axes");
  if (!axes && context.is_constant(1)) axes = context.constant(1, "axes").as_ints();
  const int64_t rank = static_cast<int64_t>(input.size());
  std::vector<int64_t> normalised;
  for (int64_t axis : axes.value_or(std::vector<int64_t>{})) normalised.push_back(axis < 0 ? axis + rank : axis);
  std::sort(normalised.begin(), normalised.end());
  normalised.erase(std::unique(normalised.begin(), normalised.end()), normalised.end());
  std::vector<int64_t> spatial_axes;
  for (int64_t axis = 2; axis < rank; ++axis) spatial_axes.push_back(axis);
  const bool keep_dims = attribute_int(context.proto(), "keepdims", 1) != 0;
  if (rank >= 3 && normalised == spatial_axes) {
    return compute_node(context, ir::global_average_pool(input[0], input[1], spatial_of(input), keep_dims),
                        {context.input(0)}, {});
  }
  // A mean over the batch (or over every axis, when none are given) mixes samples: not an
  // operator of one sample, so it stays a structural node.
  if (normalised.empty() || normalised.front() < 1 || normalised.back() >= rank) return structural_node(context);
  return compute_node(context, ir::mean_over_axes(input, normalised, keep_dims), {context.input(0)}, {});
}

}  // namespace

void add_compute_converters(ConverterTable& table) {
  table["Conv"] = conv;
  table["Gemm"] = gemm;
  table["MatMul"] = matmul;
  table["MaxPool"] = max_pool;
  table["AveragePool"] = average_pool;
  table["GlobalAveragePool"] = global_average_pool;
  table["GlobalMaxPool"] = global_max_pool;
  table["ReduceMean"] = reduce_mean;
}

}  // namespace gos::graph::onnx_import
