// Structural nodes as libtorch calls, following the ONNX operator specifications exactly as the
// reference execution (structural.cpp) does.
#include "graph/structural_torch.h"

#include <algorithm>
#include <numeric>

#include "graph/structural.h"

namespace gos::graph::detail {

namespace {

using lowering::RuntimeSizes;
using lowering::TorchArg;
using lowering::TorchCall;
using lowering::TorchFn;
using lowering::ValueRef;

class StructuralPlanner {
 public:
  StructuralPlanner(const Graph& graph, const Node& node) : graph_(graph), node_(node) {}

  std::vector<TorchCall> plan() {
    const std::string& op = node_.op_type;
    if (op == "Identity") return single(TorchFn::Identity, {input(0)});
    if (op == "Reshape") return single(TorchFn::Reshape, {input(0), reshape_sizes()});
    if (op == "Flatten") return flatten();
    if (op == "Transpose") return single(TorchFn::Permute, {input(0), permutation()});
    if (op == "Concat") return concat();
    if (op == "Split") return split();
    if (op == "Slice") return slice();
    if (op == "Squeeze") return squeeze();
    if (op == "Unsqueeze") return unsqueeze();
    if (op == "Softmax") return single(TorchFn::Softmax, {input(0), axis_attribute(-1)});
    if (op == "LogSoftmax") return single(TorchFn::LogSoftmax, {input(0), axis_attribute(-1)});
    if (op == "LayerNormalization") return layer_norm();
    if (op == "BatchNormalization") return batch_norm();
    if (op == "ReduceMean") return reduce_mean();
    if (op == "LeakyRelu") return single(TorchFn::LeakyRelu, {input(0), attribute_or<double>(node_, "alpha", 0.01)});
    if (op == "Elu") return single(TorchFn::Elu, {input(0), attribute_or<double>(node_, "alpha", 1.0), 1.0});
    if (op == "Selu") {
      return single(TorchFn::Elu, {input(0), attribute_or<double>(node_, "alpha", 1.67326319217681884765625),
                                   attribute_or<double>(node_, "gamma", 1.05070102214813232421875)});
    }
    if (op == "Softplus") return single(TorchFn::Softplus, {input(0)});
    if (op == "PRelu") return single(TorchFn::PRelu, {input(0), ValueRef{"slope", true}});
    if (op == "InstanceNormalization") return instance_norm();
    if (op == "Pad") return pad();
    if (op == "Gather") return gather();
    if (op == "Resize") return resize();
    static const std::map<std::string, TorchFn> elementwise{
        {"Add", TorchFn::Add}, {"Sub", TorchFn::Sub}, {"Mul", TorchFn::Mul},  {"Div", TorchFn::Div},
        {"Pow", TorchFn::Pow}, {"Sqrt", TorchFn::Sqrt}, {"Exp", TorchFn::Exp}, {"Erf", TorchFn::Erf}};
    auto found = elementwise.find(op);
    if (found == elementwise.end()) throw error("is not a structural op gos executes with libtorch");
    std::vector<TorchArg> operands;
    for (size_t i = 0; i < node_.inputs.size(); ++i) operands.push_back(input(i));
    return single(found->second, std::move(operands));
  }

 private:
  GraphError error(const std::string& message) const {
    return GraphError("node '" + node_.name + "' (" + node_.op_type + "): " + message);
  }

  TorchArg input(size_t index) const {
    if (index >= node_.inputs.size()) throw error("lacks input " + std::to_string(index));
    return ValueRef{node_.inputs[index]};
  }

  const Shape& shape(const std::string& value) const {
    if (auto constant = graph_.constants.find(value); constant != graph_.constants.end()) return constant->second.shape;
    return graph_.shape_of(value);
  }
  const Shape& input_shape(size_t index = 0) const { return shape(node_.inputs.at(index)); }
  size_t rank() const { return input_shape().size(); }

  std::optional<std::vector<int64_t>> ints(const std::string& attribute, size_t input_index) const {
    return int_list(node_, attribute, input_index, [&](const std::string& value) -> const ir::Tensor& {
      auto constant = graph_.constants.find(value);
      if (constant == graph_.constants.end()) throw error("input '" + value + "' must be a constant");
      return constant->second;
    });
  }

  int64_t axis_attribute(int64_t fallback, size_t axis_rank = 0) const {
    return normalise_axis(attribute_or<int64_t>(node_, "axis", fallback), axis_rank ? axis_rank : rank(), node_);
  }

  // Appends a call and returns its result: node output `output` if given, else a helper value.
  std::string emit(TorchFn function, std::vector<TorchArg> args, const std::string& output = "") {
    std::string result = output.empty() ? node_.outputs.at(0) + "$" + std::to_string(calls_.size()) : output;
    calls_.push_back({function, std::move(args), result});
    return result;
  }

  std::vector<TorchCall> single(TorchFn function, std::vector<TorchArg> args) {
    emit(function, std::move(args), node_.outputs.at(0));
    return calls_;
  }

  // A chain of calls on input 0, the last of which defines the node's output.
  template <typename Step>
  std::vector<TorchCall> chain(size_t steps, Step step) {
    std::string value = node_.inputs.at(0);
    if (steps == 0) return single(TorchFn::Identity, {ValueRef{value}});
    for (size_t i = 0; i < steps; ++i) {
      auto [function, args] = step(i, ValueRef{value});
      value = emit(function, std::move(args), i + 1 == steps ? node_.outputs.at(0) : "");
    }
    return calls_;
  }

  RuntimeSizes reshape_sizes() const {
    auto target = ints("shape", 1);
    if (!target) throw error("has no target shape");
    RuntimeSizes sizes{*target, {}, ValueRef{node_.inputs[0]}};
    for (size_t i = 0; i < target->size(); ++i) {
      if ((*target)[i] == 0) sizes.copied[i] = static_cast<int64_t>(i);
    }
    const Shape& in = input_shape();
    const Shape& out = graph_.shape_of(node_.outputs.at(0));
    bool keeps_batch = !target->empty() && !in.empty() && !out.empty() && (*target)[0] == in[0] && out[0] == in[0];
    if (keeps_batch) sizes.copied[0] = 0;
    return sizes;
  }

  std::vector<TorchCall> flatten() {
    const int64_t axis = flatten_axis(node_, rank());
    if (axis == 0) return single(TorchFn::Reshape, {input(0), std::vector<int64_t>{1, -1}});
    return single(TorchFn::Flatten, {input(0), axis, axis - 1});
  }

  std::vector<int64_t> permutation() const {
    auto permutation = attribute_or<std::vector<int64_t>>(node_, "perm", {});
    if (permutation.empty()) {
      for (size_t dim = rank(); dim-- > 0;) permutation.push_back(static_cast<int64_t>(dim));
    }
    return permutation;
  }

  std::vector<TorchCall> concat() {
    std::vector<ValueRef> parts;
    for (const auto& part : node_.inputs) parts.push_back(ValueRef{part});
    return single(TorchFn::Cat, {parts, axis_attribute(0)});
  }

  std::vector<TorchCall> split() {
    int64_t axis = axis_attribute(0);
    int64_t outputs = static_cast<int64_t>(node_.outputs.size());
    auto sizes = ints("split", 1).value_or(std::vector<int64_t>(outputs, input_shape()[axis] / outputs));
    int64_t offset = 0;
    for (size_t i = 0; i < node_.outputs.size(); ++i) {
      emit(TorchFn::Narrow, {input(0), axis, offset, sizes.at(i)}, node_.outputs[i]);
      offset += sizes[i];
    }
    return calls_;
  }

  // torch slices forwards only: a negative step flips the axis and slices forwards from the
  // mirrored start, with ONNX's clamping applied to the static extent.
  std::vector<TorchCall> slice() {
    auto starts = ints("starts", 1).value_or(std::vector<int64_t>{});
    auto ends = ints("ends", 2).value_or(std::vector<int64_t>{});
    auto axes = ints("axes", 3);
    auto steps = ints("steps", 4);
    if (ends.size() != starts.size()) throw error("starts and ends differ in length");
    return chain(starts.size(), [&](size_t i, const ValueRef& x) -> std::pair<TorchFn, std::vector<TorchArg>> {
      int64_t axis = normalise_axis(axes ? axes->at(i) : static_cast<int64_t>(i), rank(), node_);
      int64_t step = steps ? steps->at(i) : 1;
      if (step == 0) throw error("slice step is 0");
      if (step > 0) return {TorchFn::Slice, {x, axis, starts[i], ends[i], step}};
      int64_t extent = input_shape()[axis];
      auto clamp = [&](int64_t index) { return std::clamp<int64_t>(index < 0 ? index + extent : index, -1, extent - 1); };
      int64_t from = clamp(starts[i]), to = clamp(ends[i]);
      int64_t count = std::max<int64_t>(0, (from - to - step - 1) / -step);
      std::string flipped = emit(TorchFn::Flip, {x, std::vector<int64_t>{axis}});
      int64_t mirrored = extent - 1 - from;
      return {TorchFn::Slice, {ValueRef{flipped}, axis, mirrored, mirrored + count * -step, -step}};
    });
  }

  // The dimensions to squeeze: the listed ones (or every one) of static extent 1, last first.
  std::vector<TorchCall> squeeze() {
    auto axes = ints("axes", 1);
    const Shape& in = input_shape();
    std::vector<int64_t> squeezed;
    for (size_t dim = in.size(); dim-- > 0;) {
      bool listed = !axes || std::any_of(axes->begin(), axes->end(), [&](int64_t axis) {
        return normalise_axis(axis, in.size(), node_) == static_cast<int64_t>(dim);
      });
      if (listed && in[dim] == 1) squeezed.push_back(static_cast<int64_t>(dim));
    }
    return chain(squeezed.size(), [&](size_t i, const ValueRef& x) -> std::pair<TorchFn, std::vector<TorchArg>> {
      return {TorchFn::Squeeze, {x, squeezed[i]}};
    });
  }

  std::vector<TorchCall> unsqueeze() {
    auto axes = ints("axes", 1).value_or(std::vector<int64_t>{});
    const size_t output_rank = rank() + axes.size();
    for (int64_t& axis : axes) axis = normalise_axis(axis, output_rank, node_);
    std::sort(axes.begin(), axes.end());
    return chain(axes.size(), [&](size_t i, const ValueRef& x) -> std::pair<TorchFn, std::vector<TorchArg>> {
      return {TorchFn::Unsqueeze, {x, axes[i]}};
    });
  }

  // A weight in the shape torch expects (ONNX allows any shape with the same elements).
  TorchArg weight_shaped(const std::string& name, const Shape& expected) {
    auto found = node_.weights.find(name);
    if (found == node_.weights.end()) throw error("has no weight '" + name + "'");
    if (found->second.shape == expected) return ValueRef{name, true};
    return ValueRef{emit(TorchFn::Reshape, {ValueRef{name, true}, expected})};
  }

  std::vector<TorchCall> layer_norm() {
    int64_t axis = axis_attribute(-1);
    Shape normalized(input_shape().begin() + axis, input_shape().end());
    TorchArg scale = weight_shaped("scale", normalized);
    TorchArg bias = node_.weights.count("B") ? weight_shaped("B", normalized) : TorchArg{std::monostate{}};
    double epsilon = attribute_or<double>(node_, "epsilon", 1e-5);
    return single(TorchFn::LayerNorm, {input(0), normalized, scale, bias, epsilon});
  }

  // ONNX's momentum weighs the running statistic (default 0.9); torch's weighs the batch's.
  std::vector<TorchCall> batch_norm() {
    const Shape channels{input_shape().at(1)};
    std::vector<TorchArg> args{input(0)};
    for (const char* weight : {"scale", "B", "mean", "var"}) args.push_back(weight_shaped(weight, channels));
    args.push_back(1.0 - attribute_or<double>(node_, "momentum", 0.9));
    args.push_back(attribute_or<double>(node_, "epsilon", 1e-5));
    return single(TorchFn::BatchNorm, std::move(args));
  }

  std::vector<TorchCall> reduce_mean() {
    auto axes = ints("axes", 1).value_or(std::vector<int64_t>{});
    std::vector<int64_t> dims;
    for (int64_t axis : axes) dims.push_back(normalise_axis(axis, rank(), node_));
    if (dims.empty()) {
      dims.resize(rank());
      std::iota(dims.begin(), dims.end(), int64_t{0});
    }
    bool keep = attribute_or<int64_t>(node_, "keepdims", 1) != 0;
    return single(TorchFn::Mean, {input(0), dims, keep});
  }

  std::vector<TorchCall> instance_norm() {
    const Shape channels{input_shape().at(1)};
    return single(TorchFn::InstanceNorm, {input(0), weight_shaped("scale", channels), weight_shaped("B", channels),
                                          attribute_or<double>(node_, "epsilon", 1e-5)});
  }

  // ONNX lists every axis's begin, then every end; torch lists (begin, end) pairs from the last axis.
  // Reflect and edge modes pad the trailing spatial axes only (torch's reflection and replication
  // pads for 1 to 3 of them); import refuses other uses.
  std::vector<TorchCall> pad() {
    const auto pads = ints("pads", 1).value_or(std::vector<int64_t>{});
    const size_t rank = this->rank();
    if (pads.size() != 2 * rank) throw error("pads must give a begin and an end for every axis");
    const std::string mode = attribute_or<std::string>(node_, "mode", "constant");
    size_t first = 0;  // the first axis torch pads
    if (mode != "constant") {
      if (rank < 3 || rank > 5) throw error("pads in " + mode + " mode only 3-D to 5-D data");
      first = 2;
      if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) throw error("pads in " + mode + " mode only the spatial axes");
    }
    std::vector<int64_t> torch_pads;
    for (size_t axis = rank; axis-- > first;) {
      torch_pads.push_back(pads[axis]);
      torch_pads.push_back(pads[axis + rank]);
    }
    if (mode == "constant") {
      double value = 0;
      if (node_.inputs.size() > 2 && !node_.inputs[2].empty()) value = constant(node_.inputs[2]).data.at(0);
      return single(TorchFn::ConstantPad, {input(0), torch_pads, value});
    }
    const int64_t dims = static_cast<int64_t>(rank - 2);
    if (mode == "reflect") return single(TorchFn::ReflectionPad, {input(0), torch_pads, dims});
    if (mode == "edge") return single(TorchFn::ReplicationPad, {input(0), torch_pads, dims});
    throw error("pads in mode " + mode + ", which gos does not execute");
  }

  // index_select at the constant indices, then the output's shape (index_select keeps the axis).
  std::vector<TorchCall> gather() {
    const int64_t axis = axis_attribute(0);
    std::vector<int64_t> indices = ints("", 1).value_or(std::vector<int64_t>{});
    const int64_t extent = input_shape()[axis];
    for (int64_t& index : indices) index = index < 0 ? index + extent : index;
    const std::string selected = emit(TorchFn::IndexSelect, {input(0), axis, indices});
    const Shape& out = graph_.shape_of(node_.outputs.at(0));
    RuntimeSizes sizes{out, {}, ValueRef{node_.inputs[0]}};
    if (axis > 0 && !out.empty()) sizes.copied[0] = 0;
    return single(TorchFn::Reshape, {ValueRef{selected}, sizes});
  }

  // One axis at a time, from the same tables as the reference execution.
  std::vector<TorchCall> resize() {
    const auto axes = resize_axes(node_, input_shape(), [&](const std::string& value) -> const ir::Tensor& { return constant(value); });
    std::vector<size_t> resized;
    for (size_t axis = 0; axis < axes.size(); ++axis) {
      if (axes[axis]) resized.push_back(axis);
    }
    return chain(resized.size(), [&](size_t i, const ValueRef& x) -> std::pair<TorchFn, std::vector<TorchArg>> {
      const int64_t axis = static_cast<int64_t>(resized[i]);
      const ResizeAxis& table = *axes[axis];
      if (std::all_of(table.weight.begin(), table.weight.end(), [](double w) { return w == 0; })) {
        return {TorchFn::IndexSelect, {x, axis, table.lower}};
      }
      std::vector<int64_t> weight_shape(rank(), 1);
      weight_shape[axis] = static_cast<int64_t>(table.weight.size());
      return {TorchFn::Lerp, {x, axis, table.lower, table.upper, table.weight, weight_shape}};
    });
  }

  const ir::Tensor& constant(const std::string& value) const {
    auto found = graph_.constants.find(value);
    if (found == graph_.constants.end()) throw error("input '" + value + "' must be a constant");
    return found->second;
  }

  const Graph& graph_;
  const Node& node_;
  std::vector<TorchCall> calls_;
};

}  // namespace

std::vector<lowering::TorchCall> plan_structural(const Graph& graph, const Node& node) {
  return StructuralPlanner(graph, node).plan();
}

}  // namespace gos::graph::detail
