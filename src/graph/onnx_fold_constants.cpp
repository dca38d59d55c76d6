// Constant folding: exporters compute Reshape targets, Pad amounts and Slice bounds at run time
// from the input's shape (Shape -> Gather -> Unsqueeze -> Concat -> ...). With static shapes these
// chains are constants; folding them leaves only the nodes that compute on data.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "graph/onnx_model.h"

namespace gos::graph::onnx_import {

namespace {

// Folding never materialises more than this: shape chains are tiny, and a corrupt file must not
// make the import allocate gigabytes.
constexpr int64_t kMaxFoldedElements = int64_t{1} << 24;

// Thrown by an evaluator when the node's inputs are not something it folds; the node then stays.
struct NotFoldable {};

using Inputs = std::vector<const ConstValue*>;  // null for an absent optional input

int64_t element_count(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0 || (extent > 0 && count > kMaxFoldedElements / extent)) throw NotFoldable{};
    count *= extent;
  }
  return count;
}

std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return index;
}

int64_t ravel(const std::vector<int64_t>& index, const Shape& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + index[d];
  return flat;
}

const ConstValue& required(const Inputs& inputs, size_t index) {
  if (index >= inputs.size() || !inputs[index]) throw NotFoldable{};
  return *inputs[index];
}

int64_t normalise_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) throw NotFoldable{};
  return axis < 0 ? axis + rank : axis;
}

// An integer list given as an attribute (older opsets) or as a constant input (newer ones).
std::optional<std::vector<int64_t>> int_list(const onnx::NodeProto& node, const std::string& attribute,
                                             const Inputs& inputs, size_t input) {
  if (auto values = attribute_ints(node, attribute)) return values;
  if (input < inputs.size() && inputs[input]) return inputs[input]->as_ints();
  return std::nullopt;
}

bool any_from_initializer(const Inputs& inputs) {
  return std::any_of(inputs.begin(), inputs.end(), [](const ConstValue* v) { return v && v->from_initializer; });
}

// Output element i = source element at map(output multi-index): every data-movement op.
ConstValue remap(const ConstValue& source, Shape shape,
                 const std::function<std::vector<int64_t>(const std::vector<int64_t>&)>& source_index) {
  ConstValue result{shape, {}, source.element_type, source.from_initializer};
  const int64_t count = element_count(shape);
  result.values.reserve(count);
  for (int64_t flat = 0; flat < count; ++flat) {
    result.values.push_back(source.values.at(ravel(source_index(unravel(flat, shape)), source.shape)));
  }
  return result;
}

Shape broadcast_shape(const Inputs& operands) {
  size_t rank = 0;
  for (const auto* operand : operands) rank = std::max(rank, operand->shape.size());
  Shape shape(rank, 1);
  for (const auto* operand : operands) {
    for (size_t d = 0; d < operand->shape.size(); ++d) {
      int64_t& out = shape[rank - operand->shape.size() + d];
      int64_t extent = operand->shape[d];
      if (extent != 1 && out != 1 && extent != out) throw NotFoldable{};
      if (extent != 1) out = extent;
    }
  }
  return shape;
}

// numpy-broadcast elementwise evaluation of any arity.
ConstValue broadcast(const Inputs& operands, int32_t element_type,
                     const std::function<double(const std::vector<double>&)>& f) {
  Shape shape = broadcast_shape(operands);
  ConstValue result{shape, {}, element_type, any_from_initializer(operands)};
  const int64_t count = element_count(shape);
  std::vector<double> arguments(operands.size());
  for (int64_t flat = 0; flat < count; ++flat) {
    std::vector<int64_t> index = unravel(flat, shape);
    for (size_t o = 0; o < operands.size(); ++o) {
      const Shape& own = operands[o]->shape;
      std::vector<int64_t> own_index(own.size());
      for (size_t d = 0; d < own.size(); ++d) own_index[d] = own[d] == 1 ? 0 : index[shape.size() - own.size() + d];
      arguments[o] = operands[o]->values.at(ravel(own_index, own));
    }
    result.values.push_back(f(arguments));
  }
  return result;
}

double integer_or_float(double value, bool integer) { return integer ? std::trunc(value) : value; }

// ---- Evaluators, one per op type ----------------------------------------------------------------

ConstValue constant(const onnx::NodeProto& node, const Inputs&) {
  const std::string what = "Constant node '" + node.name() + "'";
  if (const auto* value = find_attribute(node, "value")) return read_tensor(value->t(), what);
  if (const auto* value = find_attribute(node, "value_float"))
    return {{}, {value->f()}, onnx::TensorProto_DataType_FLOAT};
  if (const auto* value = find_attribute(node, "value_int")) {
    return {{}, {static_cast<double>(value->i())}, onnx::TensorProto_DataType_INT64};
  }
  if (const auto* value = find_attribute(node, "value_floats")) {
    return {{value->floats_size()}, {value->floats().begin(), value->floats().end()}, onnx::TensorProto_DataType_FLOAT};
  }
  if (const auto* value = find_attribute(node, "value_ints")) {
    return {{value->ints_size()}, {value->ints().begin(), value->ints().end()}, onnx::TensorProto_DataType_INT64};
  }
  throw NotFoldable{};
}

ConstValue identity(const onnx::NodeProto& node, const Inputs& inputs) {
  if (node.output_size() > 1 && !node.output(1).empty()) throw NotFoldable{};  // Dropout's mask
  return required(inputs, 0);
}

ConstValue cast(const onnx::NodeProto& node, const Inputs& inputs) {
  ConstValue result = required(inputs, 0);
  result.element_type = static_cast<int32_t>(attribute_int(node, "to", onnx::TensorProto_DataType_FLOAT));
  const bool to_bool = result.element_type == onnx::TensorProto_DataType_BOOL;
  for (double& value : result.values) {
    value = to_bool            ? (value != 0.0)
            : result.integer() ? std::trunc(value)
                               : static_cast<double>(static_cast<float>(value));
  }
  return result;
}

ConstValue gather(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  const ConstValue& indices = required(inputs, 1);
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  const int64_t axis = normalise_axis(attribute_int(node, "axis", 0), rank);
  Shape shape(data.shape.begin(), data.shape.begin() + axis);
  shape.insert(shape.end(), indices.shape.begin(), indices.shape.end());
  shape.insert(shape.end(), data.shape.begin() + axis + 1, data.shape.end());
  const size_t index_rank = indices.shape.size();
  return remap(data, shape, [&](const std::vector<int64_t>& out) {
    std::vector<int64_t> which(out.begin() + axis, out.begin() + axis + index_rank);
    int64_t position = indices.as_int(ravel(which, indices.shape));
    if (position < 0) position += data.shape[axis];
    if (position < 0 || position >= data.shape[axis]) throw NotFoldable{};
    std::vector<int64_t> source(out.begin(), out.begin() + axis);
    source.push_back(position);
    source.insert(source.end(), out.begin() + axis + index_rank, out.end());
    return source;
  });
}

ConstValue with_shape(const ConstValue& value, Shape shape) {
  if (element_count(shape) != value.elements()) throw NotFoldable{};
  ConstValue result = value;
  result.shape = std::move(shape);
  return result;
}

ConstValue unsqueeze(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  auto axes = int_list(node, "axes", inputs, 1);
  if (!axes) throw NotFoldable{};
  const int64_t rank = static_cast<int64_t>(data.shape.size() + axes->size());
  std::vector<bool> inserted(rank, false);
  for (int64_t axis : *axes) inserted[normalise_axis(axis, rank)] = true;
  Shape shape;
  size_t source = 0;
  for (int64_t d = 0; d < rank; ++d) shape.push_back(inserted[d] ? 1 : data.shape.at(source++));
  return with_shape(data, shape);
}

ConstValue squeeze(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  auto axes = int_list(node, "axes", inputs, 1);
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  std::vector<bool> removed(rank, !axes);
  if (axes) {
    for (int64_t axis : *axes) removed[normalise_axis(axis, rank)] = true;
  }
  Shape shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (!(removed[d] && data.shape[d] == 1)) shape.push_back(data.shape[d]);
  }
  return with_shape(data, shape);
}

ConstValue reshape(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  std::vector<int64_t> target = required(inputs, 1).as_ints();
  const bool allow_zero = attribute_int(node, "allowzero", 0) != 0;
  Shape shape;
  int64_t inferred = -1, known = 1;
  for (size_t d = 0; d < target.size(); ++d) {
    int64_t extent = target[d] == 0 && !allow_zero ? (d < data.shape.size() ? data.shape[d] : -2) : target[d];
    if (extent == -1 && inferred < 0) {
      inferred = static_cast<int64_t>(d);
    } else if (extent < 0) {
      throw NotFoldable{};
    } else {
      known *= extent;
    }
    shape.push_back(extent);
  }
  if (inferred >= 0) {
    if (known == 0 || data.elements() % known) throw NotFoldable{};
    shape[inferred] = data.elements() / known;
  }
  return with_shape(data, shape);
}

ConstValue concat(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& first = required(inputs, 0);
  const int64_t rank = static_cast<int64_t>(first.shape.size());
  const int64_t axis = normalise_axis(attribute_int(node, "axis", 0), rank);
  Shape shape = first.shape;
  shape[axis] = 0;
  std::vector<std::pair<int64_t, const ConstValue*>> parts;  // (offset along axis, part)
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ConstValue& part = required(inputs, i);
    if (static_cast<int64_t>(part.shape.size()) != rank) throw NotFoldable{};
    parts.emplace_back(shape[axis], &part);
    shape[axis] += part.shape[axis];
  }
  ConstValue result{shape, {}, first.element_type, any_from_initializer(inputs)};
  const int64_t count = element_count(shape);
  for (int64_t flat = 0; flat < count; ++flat) {
    std::vector<int64_t> index = unravel(flat, shape);
    auto part = std::find_if(parts.rbegin(), parts.rend(), [&](const auto& p) { return p.first <= index[axis]; });
    index[axis] -= part->first;
    result.values.push_back(part->second->values.at(ravel(index, part->second->shape)));
  }
  return result;
}

ConstValue slice(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  auto starts = int_list(node, "starts", inputs, 1);
  auto ends = int_list(node, "ends", inputs, 2);
  if (!starts || !ends || starts->size() != ends->size()) throw NotFoldable{};
  std::vector<int64_t> axes(starts->size());
  std::iota(axes.begin(), axes.end(), 0);
  axes = int_list(node, "axes", inputs, 3).value_or(axes);
  std::vector<int64_t> steps = int_list(node, "steps", inputs, 4).value_or(std::vector<int64_t>(starts->size(), 1));
  if (axes.size() != starts->size() || steps.size() != starts->size()) throw NotFoldable{};

  Shape shape = data.shape;
  std::vector<int64_t> begin(rank, 0), step(rank, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t axis = normalise_axis(axes[i], rank), extent = data.shape[axis];
    if (steps[i] == 0) throw NotFoldable{};
    auto clamp = [&](int64_t value) {
      if (value < 0) value = std::max<int64_t>(value, -extent - 1) + extent;
      return steps[i] > 0 ? std::clamp<int64_t>(value, 0, extent) : std::clamp<int64_t>(value, -1, extent - 1);
    };
    const int64_t from = clamp((*starts)[i]), to = clamp((*ends)[i]);
    begin[axis] = from;
    step[axis] = steps[i];
    shape[axis] = std::max<int64_t>(
        0, steps[i] > 0 ? (to - from + steps[i] - 1) / steps[i] : (from - to - steps[i] - 1) / -steps[i]);
  }
  return remap(data, shape, [&](const std::vector<int64_t>& out) {
    std::vector<int64_t> source(rank);
    for (int64_t d = 0; d < rank; ++d) source[d] = begin[d] + out[d] * step[d];
    return source;
  });
}

ConstValue transpose(const onnx::NodeProto& node, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  const int64_t rank = static_cast<int64_t>(data.shape.size());
  std::vector<int64_t> reversed(rank);
  std::iota(reversed.rbegin(), reversed.rend(), 0);
  std::vector<int64_t> permutation = attribute_ints(node, "perm").value_or(reversed);
  if (static_cast<int64_t>(permutation.size()) != rank) throw NotFoldable{};
  Shape shape;
  for (int64_t axis : permutation) shape.push_back(data.shape.at(normalise_axis(axis, rank)));
  return remap(data, shape, [&](const std::vector<int64_t>& out) {
    std::vector<int64_t> source(rank);
    for (int64_t d = 0; d < rank; ++d) source[normalise_axis(permutation[d], rank)] = out[d];
    return source;
  });
}

ConstValue constant_of_shape(const onnx::NodeProto& node, const Inputs& inputs) {
  Shape shape = required(inputs, 0).as_ints();
  ConstValue fill{{}, {0.0}, onnx::TensorProto_DataType_FLOAT};
  if (const auto* value = find_attribute(node, "value")) fill = read_tensor(value->t(), "ConstantOfShape value");
  if (fill.elements() != 1) throw NotFoldable{};
  return {shape, std::vector<double>(element_count(shape), fill.values[0]), fill.element_type};
}

ConstValue expand(const onnx::NodeProto&, const Inputs& inputs) {
  const ConstValue& data = required(inputs, 0);
  std::vector<int64_t> target = required(inputs, 1).as_ints();
  ConstValue ones{Shape(target.size()), {}, data.element_type};
  for (size_t d = 0; d < target.size(); ++d) ones.shape[d] = target[d];
  ones.values.assign(element_count(ones.shape), 0.0);
  return broadcast({&data, &ones}, data.element_type, [](const std::vector<double>& v) { return v[0]; });
}

ConstValue range(const onnx::NodeProto&, const Inputs& inputs) {
  const ConstValue& start = required(inputs, 0);
  const double from = start.values.at(0), limit = required(inputs, 1).values.at(0),
               delta = required(inputs, 2).values.at(0);
  if (delta == 0) throw NotFoldable{};
  const int64_t count = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - from) / delta)));
  ConstValue result{{count}, {}, start.element_type};
  element_count(result.shape);
  for (int64_t i = 0; i < count; ++i) result.values.push_back(from + static_cast<double>(i) * delta);
  return result;
}

ConstValue shape_of(const onnx::NodeProto& node, const Shape& shape) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  auto bound = [&](int64_t value) { return std::clamp<int64_t>(value < 0 ? value + rank : value, 0, rank); };
  const int64_t start = bound(attribute_int(node, "start", 0)), end = bound(attribute_int(node, "end", rank));
  ConstValue result{{std::max<int64_t>(0, end - start)}, {}, onnx::TensorProto_DataType_INT64};
  for (int64_t d = start; d < end; ++d) result.values.push_back(static_cast<double>(shape[d]));
  return result;
}

using Evaluator = std::function<ConstValue(const onnx::NodeProto&, const Inputs&)>;

Evaluator binary(std::function<double(double, double, bool)> f, bool comparison = false) {
  return [f, comparison](const onnx::NodeProto&, const Inputs& inputs) {
    const ConstValue& a = required(inputs, 0);
    const ConstValue& b = required(inputs, 1);
    const bool integer = a.integer();
    int32_t type = comparison ? onnx::TensorProto_DataType_BOOL : a.element_type;
    return broadcast({&a, &b}, type, [&](const std::vector<double>& v) { return f(v[0], v[1], integer); });
  };
}

Evaluator unary(std::function<double(double)> f) {
  return [f](const onnx::NodeProto&, const Inputs& inputs) {
    const ConstValue& a = required(inputs, 0);
    return broadcast({&a}, a.element_type,
                     [&](const std::vector<double>& v) { return integer_or_float(f(v[0]), a.integer()); });
  };
}

ConstValue where(const onnx::NodeProto&, const Inputs& inputs) {
  const ConstValue &condition = required(inputs, 0), &x = required(inputs, 1), &y = required(inputs, 2);
  return broadcast({&condition, &x, &y}, x.element_type,
                   [](const std::vector<double>& v) { return v[0] != 0 ? v[1] : v[2]; });
}

const std::map<std::string, Evaluator>& evaluators() {
  static const std::map<std::string, Evaluator> table{
      {"Constant", constant},
      {"Identity", identity},
      {"Dropout", identity},
      {"Cast", cast},
      {"Gather", gather},
      {"Unsqueeze", unsqueeze},
      {"Squeeze", squeeze},
      {"Reshape", reshape},
      {"Concat", concat},
      {"Slice", slice},
      {"Transpose", transpose},
      {"ConstantOfShape", constant_of_shape},
      {"Expand", expand},
      {"Range", range},
      {"Where", where},
      {"Add", binary([](double a, double b, bool i) { return integer_or_float(a + b, i); })},
      {"Sub", binary([](double a, double b, bool i) { return integer_or_float(a - b, i); })},
      {"Mul", binary([](double a, double b, bool i) { return integer_or_float(a * b, i); })},
      {"Div", binary([](double a, double b, bool i) {
         if (i && b == 0) throw NotFoldable{};
         return integer_or_float(a / b, i);
       })},
      {"Pow", binary([](double a, double b, bool i) { return integer_or_float(std::pow(a, b), i); })},
      {"Min", binary([](double a, double b, bool) { return std::min(a, b); })},
      {"Max", binary([](double a, double b, bool) { return std::max(a, b); })},
      {"Equal", binary([](double a, double b, bool) { return double(a == b); }, true)},
      {"Less", binary([](double a, double b, bool) { return double(a < b); }, true)},
      {"Greater", binary([](double a, double b, bool) { return double(a > b); }, true)},
      {"Neg", unary([](double a) { return -a; })},
      {"Abs", unary([](double a) { return std::abs(a); })},
      {"Sqrt", unary([](double a) { return std::sqrt(a); })},
      {"Floor", unary([](double a) { return std::floor(a); })},
      {"Ceil", unary([](double a) { return std::ceil(a); })},
      {"Reciprocal", unary([](double a) { return 1.0 / a; })},
      {"Not", unary([](double a) { return double(a == 0); })},
  };
  return table;
}

bool is_standard_domain(const onnx::NodeProto& node) { return node.domain().empty() || node.domain() == "ai.onnx"; }

// The node's value if it can be folded now, else nothing.
std::optional<ConstValue> try_fold(const onnx::NodeProto& node, const OnnxModel& model) {
  if (!is_standard_domain(node) || node.output_size() < 1) return std::nullopt;
  if (node.op_type() == "Shape" || node.op_type() == "Size") {
    const Shape* shape = model.find_shape(input_name(node, 0));
    if (!shape) return std::nullopt;
    if (node.op_type() == "Shape") return shape_of(node, *shape);
    return ConstValue{{}, {static_cast<double>(element_count(*shape))}, onnx::TensorProto_DataType_INT64};
  }
  auto evaluator = evaluators().find(node.op_type());
  if (evaluator == evaluators().end()) return std::nullopt;
  Inputs inputs;
  for (const auto& input : node.input()) {
    if (input.empty()) {
      inputs.push_back(nullptr);
      continue;
    }
    auto constant = model.constants.find(input);
    if (constant == model.constants.end()) return std::nullopt;
    inputs.push_back(&constant->second);
  }
  try {
    return evaluator->second(node, inputs);
  } catch (const NotFoldable&) {
    return std::nullopt;
  } catch (const std::out_of_range&) {  // malformed attributes or inputs: leave it to conversion
    return std::nullopt;
  }
}

}  // namespace

bool fold_constants(OnnxModel& model) {
  std::set<std::string> graph_outputs(model.outputs.begin(), model.outputs.end());
  std::vector<onnx::NodeProto> kept;
  bool folded_any = false;
  for (auto& node : model.nodes) {
    std::optional<ConstValue> value;
    if (!graph_outputs.count(node.output(0))) value = try_fold(node, model);
    if (!value) {
      kept.push_back(std::move(node));
      continue;
    }
    model.shapes[node.output(0)] = value->shape;
    model.element_types[node.output(0)] = value->element_type;
    model.constants[node.output(0)] = std::move(*value);
    folded_any = true;
  }
  model.nodes = std::move(kept);
  return folded_any;
}

}  // namespace gos::graph::onnx_import
