// Reference execution of the structural op types, following the ONNX operator specifications.
#include "graph/structural.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

namespace gos::graph::detail {

int64_t normalise_axis(int64_t axis, size_t rank, const Node& node) {
  int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= std::max<int64_t>(r, 1)) {
    throw GraphError("node '" + node.name + "' (" + node.op_type + "): axis " + std::to_string(axis) +
                     " is out of range for rank " + std::to_string(rank));
  }
  return axis < 0 ? axis + r : axis;
}

float attribute_float(const Node& node, const std::string& name, float fallback) {
  return static_cast<float>(attribute_or<double>(node, name, fallback));
}

// Integer list from an attribute (older opsets) or from a constant input (newer opsets).
std::optional<std::vector<int64_t>> int_list(const Node& node, const std::string& attribute, size_t input,
                                             const ValueLookup& lookup) {
  if (node.attributes.count(attribute)) return attribute_or<std::vector<int64_t>>(node, attribute, {});
  if (node.inputs.size() > input && !node.inputs[input].empty()) {
    const ir::Tensor& tensor = lookup(node.inputs[input]);
    std::vector<int64_t> values;
    for (float value : tensor.data) values.push_back(static_cast<int64_t>(value));
    return values;
  }
  return std::nullopt;
}

int64_t flatten_axis(const Node& node, size_t rank) {
  int64_t axis = attribute_or<int64_t>(node, "axis", 1);
  if (axis < 0) axis += static_cast<int64_t>(rank);
  if (axis < 0 || axis > static_cast<int64_t>(rank)) {
    throw GraphError("node '" + node.name + "' (Flatten): axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return axis;
}

std::optional<std::string> resize_unsupported(const Node& node) {
  const std::string mode = attribute_or<std::string>(node, "mode", "nearest");
  const std::string transform = attribute_or<std::string>(node, "coordinate_transformation_mode", "half_pixel");
  const std::string nearest = attribute_or<std::string>(node, "nearest_mode", "round_prefer_floor");
  static const std::set<std::string> transforms{"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
  static const std::set<std::string> roundings{"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  if (mode != "nearest" && mode != "linear") return "resizing in " + mode + " mode; gos resizes in nearest and linear mode";
  if (!transforms.count(transform)) return "coordinate_transformation_mode " + transform + " (gos resizes whole tensors, not crops)";
  if (mode == "nearest" && !roundings.count(nearest)) return "nearest_mode " + nearest + " is not one gos resizes with";
  return std::nullopt;
}

std::vector<std::optional<ResizeAxis>> resize_axes(const Node& node, const Shape& input, const ValueLookup& lookup) {
  auto fail = [&](const std::string& why) { return GraphError("node '" + node.name + "' (" + node.op_type + "): " + why); };
  if (auto why = resize_unsupported(node)) throw fail(*why);
  const std::string mode = attribute_or<std::string>(node, "mode", "nearest");
  const std::string transform = attribute_or<std::string>(node, "coordinate_transformation_mode", "half_pixel");
  const std::string nearest = attribute_or<std::string>(node, "nearest_mode", "round_prefer_floor");
  auto given = [&](size_t index) { return node.inputs.size() > index && !node.inputs[index].empty() && lookup(node.inputs[index]).elements() > 0; };
  const bool by_sizes = given(3);
  if (!by_sizes && !given(2)) throw fail("neither scales nor sizes are given");
  const ir::Tensor& factors = lookup(node.inputs[by_sizes ? 3 : 2]);
  if (factors.elements() != static_cast<int64_t>(input.size())) throw fail("scales or sizes must give every axis");
  std::vector<std::optional<ResizeAxis>> axes(input.size());
  for (size_t axis = 0; axis < input.size(); ++axis) {
    const int64_t in = input[axis];
    const int64_t out = by_sizes ? std::llround(factors.data[axis]) : static_cast<int64_t>(std::floor(in * static_cast<double>(factors.data[axis])));
    const double scale = by_sizes ? static_cast<double>(out) / in : static_cast<double>(factors.data[axis]);
    if (out <= 0 || in <= 0) throw fail("an axis would be resized to nothing");
    if (out == in && scale == 1.0) continue;
    const double out_length = scale * in;  // as ONNX's reference computes it
    ResizeAxis table;
    for (int64_t e = 0; e < out; ++e) {
      double x = 0;
      if (transform == "align_corners") x = out_length == 1 ? 0 : e * (in - 1) / (out_length - 1);
      if (transform == "asymmetric") x = e / scale;
      if (transform == "pytorch_half_pixel") x = out_length == 1 ? -0.5 : (e + 0.5) / scale - 0.5;
      if (transform == "half_pixel") x = (e + 0.5) / scale - 0.5;
      if (transform == "tf_half_pixel_for_nn") x = (e + 0.5) / scale;
      const double below = std::floor(x), ratio = x - below;
      int64_t lower = std::clamp<int64_t>(static_cast<int64_t>(below), 0, in - 1);
      const int64_t upper = std::clamp<int64_t>(static_cast<int64_t>(below) + 1, 0, in - 1);
      double weight = ratio;
      if (mode == "nearest") {
        const bool up = ratio > 0 && (nearest == "ceil" || (nearest == "round_prefer_floor" && ratio > 0.5) ||
                                      (nearest == "round_prefer_ceil" && ratio >= 0.5));
        if (up) lower = upper;
        weight = 0;
      }
      table.lower.push_back(lower);
      table.upper.push_back(weight == 0 ? lower : upper);
      table.weight.push_back(weight);
    }
    axes[axis] = std::move(table);
  }
  return axes;
}

namespace {

using ir::Tensor;

int64_t element_count(const Shape& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

Shape strides_of(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

const Tensor& input(const Node& node, size_t index, const ValueLookup& lookup) {
  if (index >= node.inputs.size()) {
    throw GraphError("node '" + node.name + "' (" + node.op_type + ") lacks input " + std::to_string(index));
  }
  return lookup(node.inputs[index]);
}

const Tensor& weight(const Node& node, const std::string& name) {
  auto found = node.weights.find(name);
  if (found == node.weights.end()) {
    throw GraphError("node '" + node.name + "' (" + node.op_type + ") has no weight '" + name + "'");
  }
  return found->second;
}

Tensor reshape(const Node& node, const Tensor& x, const std::vector<int64_t>& target) {
  Shape shape;
  int64_t inferred = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0) {
      shape.push_back(x.shape.at(i));
    } else if (target[i] == -1) {
      inferred = static_cast<int64_t>(i);
      shape.push_back(1);
    } else {
      shape.push_back(target[i]);
    }
  }
  if (inferred >= 0) shape[inferred] = x.elements() / element_count(shape);
  if (element_count(shape) != x.elements()) {
    throw GraphError("node '" + node.name + "' (Reshape): cannot reshape " + std::to_string(x.elements()) +
                     " elements to the target shape");
  }
  return Tensor(shape, x.data);
}

Tensor transpose(const Tensor& x, std::vector<int64_t> permutation) {
  if (permutation.empty()) {
    for (size_t i = x.shape.size(); i-- > 0;) permutation.push_back(static_cast<int64_t>(i));
  }
  Shape shape;
  for (int64_t axis : permutation) shape.push_back(x.shape[axis]);
  Tensor y(shape);
  Shape in_strides = strides_of(x.shape);
  Shape out_strides = strides_of(shape);
  for (int64_t flat = 0; flat < y.elements(); ++flat) {
    int64_t source = 0;
    for (size_t dim = 0; dim < shape.size(); ++dim) {
      source += (flat / out_strides[dim] % shape[dim]) * in_strides[permutation[dim]];
    }
    y.data[flat] = x.data[source];
  }
  return y;
}

// Views x as [outer, axis extent, inner] around `axis`.
struct AxisView {
  int64_t outer, extent, inner;
};
AxisView around(const Shape& shape, int64_t axis) {
  AxisView view{1, shape[axis], 1};
  for (int64_t i = 0; i < axis; ++i) view.outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i) view.inner *= shape[i];
  return view;
}

Tensor concat(const Node& node, const ValueLookup& lookup) {
  const Tensor& first = input(node, 0, lookup);
  int64_t axis = normalise_axis(attribute_or<int64_t>(node, "axis", 0), first.shape.size(), node);
  Shape shape = first.shape;
  shape[axis] = 0;
  for (size_t i = 0; i < node.inputs.size(); ++i) shape[axis] += input(node, i, lookup).shape[axis];
  Tensor y(shape);
  AxisView out = around(shape, axis);
  int64_t offset = 0;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const Tensor& part = input(node, i, lookup);
    AxisView view = around(part.shape, axis);
    for (int64_t o = 0; o < view.outer; ++o) {
      std::copy_n(part.data.begin() + o * view.extent * view.inner, view.extent * view.inner,
                  y.data.begin() + (o * out.extent + offset) * out.inner);
    }
    offset += view.extent;
  }
  return y;
}

std::vector<Tensor> split(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  int64_t axis = normalise_axis(attribute_or<int64_t>(node, "axis", 0), x.shape.size(), node);
  auto sizes = int_list(node, "split", 1, lookup);
  std::vector<int64_t> parts = sizes.value_or(std::vector<int64_t>(node.outputs.size(), x.shape[axis] / static_cast<int64_t>(node.outputs.size())));
  AxisView view = around(x.shape, axis);
  std::vector<Tensor> outputs;
  int64_t offset = 0;
  for (int64_t size : parts) {
    Shape shape = x.shape;
    shape[axis] = size;
    Tensor y(shape);
    for (int64_t o = 0; o < view.outer; ++o) {
      std::copy_n(x.data.begin() + (o * view.extent + offset) * view.inner, size * view.inner,
                  y.data.begin() + o * size * view.inner);
    }
    offset += size;
    outputs.push_back(std::move(y));
  }
  return outputs;
}

Tensor slice(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  auto starts = int_list(node, "starts", 1, lookup).value_or(std::vector<int64_t>{});
  auto ends = int_list(node, "ends", 2, lookup).value_or(std::vector<int64_t>{});
  auto axes = int_list(node, "axes", 3, lookup);
  auto steps = int_list(node, "steps", 4, lookup);
  const size_t rank = x.shape.size();
  std::vector<int64_t> begin(rank, 0), step(rank, 1);
  Shape shape = x.shape;
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = normalise_axis(axes ? (*axes)[i] : static_cast<int64_t>(i), rank, node);
    int64_t extent = x.shape[axis];
    int64_t stride = steps ? (*steps)[i] : 1;
    auto clamp_index = [&](int64_t value) {
      if (value < 0) value += extent;
      return stride > 0 ? std::clamp<int64_t>(value, 0, extent) : std::clamp<int64_t>(value, -1, extent - 1);
    };
    int64_t from = clamp_index(starts[i]);
    int64_t to = clamp_index(ends[i]);
    begin[axis] = from;
    step[axis] = stride;
    shape[axis] = std::max<int64_t>(0, stride > 0 ? (to - from + stride - 1) / stride : (from - to - stride - 1) / -stride);
  }
  Tensor y(shape);
  Shape in_strides = strides_of(x.shape);
  Shape out_strides = strides_of(shape);
  for (int64_t flat = 0; flat < y.elements(); ++flat) {
    int64_t source = 0;
    for (size_t dim = 0; dim < rank; ++dim) {
      source += (begin[dim] + (flat / out_strides[dim] % shape[dim]) * step[dim]) * in_strides[dim];
    }
    y.data[flat] = x.data[source];
  }
  return y;
}

Tensor squeeze(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  auto axes = int_list(node, "axes", 1, lookup);
  Shape shape;
  for (size_t dim = 0; dim < x.shape.size(); ++dim) {
    bool listed = !axes || std::any_of(axes->begin(), axes->end(), [&](int64_t axis) {
      return normalise_axis(axis, x.shape.size(), node) == static_cast<int64_t>(dim);
    });
    if (!(listed && x.shape[dim] == 1)) shape.push_back(x.shape[dim]);
  }
  return Tensor(shape, x.data);
}

Tensor unsqueeze(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  auto axes = int_list(node, "axes", 1, lookup).value_or(std::vector<int64_t>{});
  const size_t rank = x.shape.size() + axes.size();
  std::vector<bool> inserted(rank, false);
  for (int64_t axis : axes) inserted[normalise_axis(axis, rank, node)] = true;
  Shape shape;
  size_t source = 0;
  for (size_t dim = 0; dim < rank; ++dim) shape.push_back(inserted[dim] ? 1 : x.shape[source++]);
  return Tensor(shape, x.data);
}

// Applies f along `axis` to each [extent] slice with stride inner.
template <typename F>
Tensor along_axis(const Tensor& x, int64_t axis, F f) {
  Tensor y = x;
  AxisView view = around(x.shape, axis);
  std::vector<double> lane(view.extent);
  for (int64_t o = 0; o < view.outer; ++o) {
    for (int64_t i = 0; i < view.inner; ++i) {
      for (int64_t e = 0; e < view.extent; ++e) lane[e] = x.data[(o * view.extent + e) * view.inner + i];
      f(lane);
      for (int64_t e = 0; e < view.extent; ++e) y.data[(o * view.extent + e) * view.inner + i] = static_cast<float>(lane[e]);
    }
  }
  return y;
}

Tensor softmax(const Node& node, const Tensor& x, bool log) {
  int64_t axis = normalise_axis(attribute_or<int64_t>(node, "axis", -1), x.shape.size(), node);
  return along_axis(x, axis, [log](std::vector<double>& lane) {
    double peak = *std::max_element(lane.begin(), lane.end());
    double total = 0;
    for (double v : lane) total += std::exp(v - peak);
    for (double& v : lane) v = log ? v - peak - std::log(total) : std::exp(v - peak) / total;
  });
}

// Normalises over dims axis..end, whose element count is the scale's.
Tensor layer_norm(const Node& node, const Tensor& x) {
  float epsilon = attribute_float(node, "epsilon", 1e-5f);
  const Tensor& scale = weight(node, "scale");
  const Tensor& bias = weight(node, "B");
  int64_t group = scale.elements();
  Tensor y = x;
  for (int64_t start = 0; start < x.elements(); start += group) {
    double mean = 0, variance = 0;
    for (int64_t i = 0; i < group; ++i) mean += x.data[start + i];
    mean /= group;
    for (int64_t i = 0; i < group; ++i) variance += std::pow(x.data[start + i] - mean, 2);
    variance /= group;
    double inverse = 1.0 / std::sqrt(variance + epsilon);
    for (int64_t i = 0; i < group; ++i) {
      y.data[start + i] = static_cast<float>((x.data[start + i] - mean) * inverse * scale.data[i] + bias.data[i]);
    }
  }
  return y;
}

Tensor batch_norm(const Node& node, const Tensor& x) {
  float epsilon = attribute_float(node, "epsilon", 1e-5f);
  const Tensor &scale = weight(node, "scale"), &bias = weight(node, "B"), &mean = weight(node, "mean"),
               &var = weight(node, "var");
  AxisView view = around(x.shape, 1);
  Tensor y = x;
  for (int64_t o = 0; o < view.outer; ++o) {
    for (int64_t c = 0; c < view.extent; ++c) {
      float factor = scale.data[c] / std::sqrt(var.data[c] + epsilon);
      for (int64_t i = 0; i < view.inner; ++i) {
        float& v = y.data[(o * view.extent + c) * view.inner + i];
        v = (v - mean.data[c]) * factor + bias.data[c];
      }
    }
  }
  return y;
}

// numpy-style broadcasting of two operands.
template <typename F>
Tensor broadcast(const Node& node, const Tensor& a, const Tensor& b, F f) {
  const size_t rank = std::max(a.shape.size(), b.shape.size());
  auto padded = [rank](const Shape& shape) {
    Shape full(rank - shape.size(), 1);
    full.insert(full.end(), shape.begin(), shape.end());
    return full;
  };
  Shape sa = padded(a.shape), sb = padded(b.shape), shape(rank);
  for (size_t d = 0; d < rank; ++d) {
    if (sa[d] != sb[d] && sa[d] != 1 && sb[d] != 1) {
      throw GraphError("node '" + node.name + "' (" + node.op_type + "): operand shapes do not broadcast");
    }
    shape[d] = std::max(sa[d], sb[d]);
  }
  Tensor y(shape);
  Shape stride_a = strides_of(sa), stride_b = strides_of(sb), out = strides_of(shape);
  for (int64_t flat = 0; flat < y.elements(); ++flat) {
    int64_t ia = 0, ib = 0;
    for (size_t d = 0; d < rank; ++d) {
      int64_t position = flat / out[d] % shape[d];
      if (sa[d] != 1) ia += position * stride_a[d];
      if (sb[d] != 1) ib += position * stride_b[d];
    }
    y.data[flat] = f(a.data[ia], b.data[ib]);
  }
  return y;
}

template <typename F>
Tensor unary(const Tensor& x, F f) {
  Tensor y = x;
  for (float& v : y.data) v = f(v);
  return y;
}

Tensor reduce_mean(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  auto axes = int_list(node, "axes", 1, lookup).value_or(std::vector<int64_t>{});
  bool keep = attribute_or<int64_t>(node, "keepdims", 1) != 0;
  std::vector<bool> reduced(x.shape.size(), axes.empty());
  for (int64_t axis : axes) reduced[normalise_axis(axis, x.shape.size(), node)] = true;
  Shape kept, out_shape;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    kept.push_back(reduced[d] ? 1 : x.shape[d]);
    if (!reduced[d] || keep) out_shape.push_back(kept.back());
  }
  Tensor sums(kept);
  Shape in_strides = strides_of(x.shape), kept_strides = strides_of(kept);
  for (int64_t flat = 0; flat < x.elements(); ++flat) {
    int64_t target = 0;
    for (size_t d = 0; d < x.shape.size(); ++d) {
      if (!reduced[d]) target += (flat / in_strides[d] % x.shape[d]) * kept_strides[d];
    }
    sums.data[target] += x.data[flat];
  }
  float count = static_cast<float>(x.elements() / sums.elements());
  for (float& v : sums.data) v /= count;
  return Tensor(out_shape, sums.data);
}


// InstanceNormalization: each (sample, channel) normalised over the remaining axes.
Tensor instance_norm(const Node& node, const Tensor& x) {
  const float epsilon = attribute_float(node, "epsilon", 1e-5f);
  const Tensor &scale = weight(node, "scale"), &bias = weight(node, "B");
  AxisView view = around(x.shape, 1);
  Tensor y = x;
  for (int64_t o = 0; o < view.outer; ++o) {
    for (int64_t c = 0; c < view.extent; ++c) {
      const int64_t start = (o * view.extent + c) * view.inner;
      double mean = 0, variance = 0;
      for (int64_t i = 0; i < view.inner; ++i) mean += x.data[start + i];
      mean /= static_cast<double>(view.inner);
      for (int64_t i = 0; i < view.inner; ++i) variance += std::pow(x.data[start + i] - mean, 2);
      variance /= static_cast<double>(view.inner);
      const double factor = scale.data[c] / std::sqrt(variance + epsilon);
      for (int64_t i = 0; i < view.inner; ++i) y.data[start + i] = static_cast<float>((x.data[start + i] - mean) * factor + bias.data[c]);
    }
  }
  return y;
}

// Pad in constant, reflect or edge mode; negative pads crop.
Tensor pad(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  const auto pads = int_list(node, "pads", 1, lookup).value_or(std::vector<int64_t>{});
  const size_t rank = x.shape.size();
  if (pads.size() != 2 * rank) throw GraphError("node '" + node.name + "' (Pad): pads must give a begin and an end for every axis");
  const std::string mode = attribute_or<std::string>(node, "mode", "constant");
  float value = 0;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) value = lookup(node.inputs[2]).data.at(0);
  Shape shape(rank);
  for (size_t d = 0; d < rank; ++d) shape[d] = x.shape[d] + pads[d] + pads[d + rank];
  Tensor y(shape);
  const Shape in_strides = strides_of(x.shape), out_strides = strides_of(shape);
  for (int64_t flat = 0; flat < y.elements(); ++flat) {
    int64_t source = 0;
    bool outside = false;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t extent = x.shape[d];
      int64_t i = flat / out_strides[d] % shape[d] - pads[d];
      if (i < 0 || i >= extent) {
        if (mode == "reflect") {
          const int64_t period = 2 * (extent - 1);
          i = period == 0 ? 0 : ((i % period) + period) % period;
          if (i >= extent) i = period - i;
        } else if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, extent - 1);
        } else {
          outside = true;
        }
      }
      source += i * in_strides[d];
    }
    y.data[flat] = outside ? value : x.data[source];
  }
  return y;
}

// Gather along `axis` at constant indices (negative ones count from the end).
Tensor gather(const Node& node, const ValueLookup& lookup) {
  const Tensor& x = input(node, 0, lookup);
  const Tensor& indices = input(node, 1, lookup);
  const int64_t axis = normalise_axis(attribute_or<int64_t>(node, "axis", 0), x.shape.size(), node);
  Shape shape(x.shape.begin(), x.shape.begin() + axis);
  shape.insert(shape.end(), indices.shape.begin(), indices.shape.end());
  shape.insert(shape.end(), x.shape.begin() + axis + 1, x.shape.end());
  const AxisView view = around(x.shape, axis);
  Tensor y(shape);
  int64_t position = 0;
  for (int64_t o = 0; o < view.outer; ++o) {
    for (float raw : indices.data) {
      int64_t index = static_cast<int64_t>(raw);
      if (index < 0) index += view.extent;
      if (index < 0 || index >= view.extent) throw GraphError("node '" + node.name + "' (Gather): index " + std::to_string(static_cast<int64_t>(raw)) + " is out of range");
      std::copy_n(x.data.begin() + (o * view.extent + index) * view.inner, view.inner, y.data.begin() + position);
      position += view.inner;
    }
  }
  return y;
}

// Resize, one axis at a time: linear interpolation is separable, nearest reads one position.
Tensor resize(const Node& node, const ValueLookup& lookup) {
  Tensor y = input(node, 0, lookup);
  const auto axes = resize_axes(node, y.shape, lookup);
  for (size_t axis = 0; axis < axes.size(); ++axis) {
    if (!axes[axis]) continue;
    const ResizeAxis& table = *axes[axis];
    Shape shape = y.shape;
    shape[axis] = static_cast<int64_t>(table.lower.size());
    const AxisView in = around(y.shape, static_cast<int64_t>(axis));
    Tensor resized(shape);
    for (int64_t o = 0; o < in.outer; ++o) {
      for (int64_t e = 0; e < shape[axis]; ++e) {
        const double w = table.weight[e];
        const float* lower = y.data.data() + (o * in.extent + table.lower[e]) * in.inner;
        const float* upper = y.data.data() + (o * in.extent + table.upper[e]) * in.inner;
        float* out = resized.data.data() + (o * shape[axis] + e) * in.inner;
        for (int64_t i = 0; i < in.inner; ++i) out[i] = static_cast<float>(lower[i] * (1 - w) + upper[i] * w);
      }
    }
    y = std::move(resized);
  }
  return y;
}

}  // namespace

std::vector<Tensor> run_structural(const Node& node, const ValueLookup& lookup) {
  const std::string& op = node.op_type;
  auto x = [&]() -> const Tensor& { return input(node, 0, lookup); };
  auto binary = [&](auto f) { return std::vector<Tensor>{broadcast(node, x(), input(node, 1, lookup), f)}; };
  if (op == "Identity") return {x()};
  if (op == "Reshape") return {reshape(node, x(), int_list(node, "shape", 1, lookup).value_or(std::vector<int64_t>{}))};
  if (op == "Flatten") {
    const int64_t axis = flatten_axis(node, x().shape.size());
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x().shape[i];
    return {Tensor({outer, x().elements() / outer}, x().data)};
  }
  if (op == "Transpose") return {transpose(x(), attribute_or<std::vector<int64_t>>(node, "perm", {}))};
  if (op == "Concat") return {concat(node, lookup)};
  if (op == "Split") return split(node, lookup);
  if (op == "Slice") return {slice(node, lookup)};
  if (op == "Squeeze") return {squeeze(node, lookup)};
  if (op == "Unsqueeze") return {unsqueeze(node, lookup)};
  if (op == "Softmax") return {softmax(node, x(), false)};
  if (op == "LogSoftmax") return {softmax(node, x(), true)};
  if (op == "LayerNormalization") return {layer_norm(node, x())};
  if (op == "BatchNormalization") return {batch_norm(node, x())};
  if (op == "Add") return binary([](float a, float b) { return a + b; });
  if (op == "Sub") return binary([](float a, float b) { return a - b; });
  if (op == "Mul") return binary([](float a, float b) { return a * b; });
  if (op == "Div") return binary([](float a, float b) { return a / b; });
  if (op == "Pow") return binary([](float a, float b) { return std::pow(a, b); });
  if (op == "Sqrt") return {unary(x(), [](float v) { return std::sqrt(v); })};
  if (op == "Exp") return {unary(x(), [](float v) { return std::exp(v); })};
  if (op == "Erf") return {unary(x(), [](float v) { return std::erf(v); })};
  if (op == "ReduceMean") return {reduce_mean(node, lookup)};
  if (op == "LeakyRelu") {
    const float alpha = attribute_float(node, "alpha", 0.01f);
    return {unary(x(), [alpha](float v) { return v < 0 ? alpha * v : v; })};
  }
  if (op == "Elu" || op == "Selu") {
    const bool selu = op == "Selu";
    const float alpha = attribute_float(node, "alpha", selu ? 1.67326319217681884765625f : 1.0f);
    const float gamma = selu ? attribute_float(node, "gamma", 1.05070102214813232421875f) : 1.0f;
    return {unary(x(), [alpha, gamma](float v) { return gamma * (v > 0 ? v : alpha * std::expm1(v)); })};
  }
  if (op == "Softplus") return {unary(x(), [](float v) { return v > 20 ? v : std::log1p(std::exp(v)); })};
  if (op == "PRelu") return {broadcast(node, x(), weight(node, "slope"), [](float v, float slope) { return v < 0 ? slope * v : v; })};
  if (op == "InstanceNormalization") return {instance_norm(node, x())};
  if (op == "Pad") return {pad(node, lookup)};
  if (op == "Gather") return {gather(node, lookup)};
  if (op == "Resize") return {resize(node, lookup)};
  throw GraphError("node '" + node.name + "': op " + op + " is not a structural op gos executes");
}

}  // namespace gos::graph::detail
