// Elementwise nodes as instructions: activations, Clip and HardSigmoid with any bounds, Add / Sub /
// Mul / Div with numpy broadcasting and constant operands, and zero Pad.
//
// Broadcast reads use constant-0 subscripts, e.g. a squeeze-and-excitation scale
//     Y[n,c,h,w] = X[n,c,h,w] * Z[n,c,0,0]
// Constant operands become tensors of the instructions: learned ones (initializers) params W
// (factor) or B (addend), fixed ones const tables C (factor) or D (addend). Subtraction adds the
// negated constant; division by a constant multiplies by its reciprocal.
#include <cmath>
#include <limits>

#include "graph/onnx_convert.h"

namespace gos::graph::onnx_import {

namespace {

using ir::Access;
using ir::Affine;
using ir::Role;

// Index names for the dimensions of an elementwise operator, as a reader expects them.
std::vector<std::string> dimension_names(size_t rank) {
  switch (rank) {
    case 1:
      return {"i"};
    case 2:
      return {"n", "c"};
    case 3:
      return {"n", "c", "l"};
    case 4:
      return {"n", "c", "h", "w"};
    case 5:
      return {"n", "c", "d", "h", "w"};
  }
  std::vector<std::string> names;
  for (size_t dim = 0; dim < rank; ++dim) names.push_back("i" + std::to_string(dim));
  return names;
}

// One operand of an elementwise statement: a node input (role Input), a weight or a const.
struct Operand {
  std::string name;
  Role role = Role::Input;
  Shape shape;
  std::vector<float> values;  // weights and consts
};

Operand scalar_const(std::string name, float value) { return {std::move(name), Role::Const, {}, {value}}; }

// `value` transformed elementwise, as a weight (W/B) when learned or a const (C/D).
Operand constant_operand(const ConstValue& value, bool addend, float (*transform)(float)) {
  Operand operand{"", is_learned(value) ? Role::Param : Role::Const, value.shape, {}};
  if (operand.role == Role::Param) {
    operand.name = addend ? "B" : "W";
  } else {
    operand.name = addend ? "D" : "C";
  }
  for (double v : value.values) operand.values.push_back(transform(static_cast<float>(v)));
  return operand;
}

float same(float v) { return v; }
float negated(float v) { return -v; }
float reciprocal(float v) { return 1.0f / v; }

// The subscripts reading `shape` broadcast against the output (numpy: trailing dimensions
// align). A size-1 dimension of a constant always reads 0, so that a weight shared across the
// batch keeps working at another batch size; a data input's size-1 dimension reads 0 only where
// the output is larger.
std::vector<Affine> broadcast_subscripts(const Operand& operand, const Shape& output,
                                         const std::vector<std::string>& names) {
  std::vector<Affine> subscripts;
  const size_t offset = output.size() - operand.shape.size();
  for (size_t dim = 0; dim < operand.shape.size(); ++dim) {
    const bool broadcast = operand.shape[dim] == 1 && (operand.role != Role::Input || output[offset + dim] != 1);
    subscripts.push_back(broadcast ? Affine::constant(0) : Affine::index(names[offset + dim]));
  }
  return subscripts;
}

std::vector<Access> accesses(const std::vector<Operand>& operands, const Shape& output,
                             const std::vector<std::string>& names) {
  std::vector<Access> result;
  for (const auto& operand : operands) result.push_back({operand.name, broadcast_subscripts(operand, output, names)});
  return result;
}

// Inputs in name order (X, then Z: the ONNX input order), then weights and consts.
std::vector<ir::TensorDecl> declarations(std::vector<Operand> operands) {
  std::stable_sort(operands.begin(), operands.end(), [](const Operand& a, const Operand& b) {
    return a.role == Role::Input && b.role == Role::Input ? a.name < b.name : a.role < b.role;
  });
  std::vector<ir::TensorDecl> declared;
  for (auto& operand : operands) {
    auto values = operand.role == Role::Const ? std::make_shared<const std::vector<float>>(operand.values) : nullptr;
    declared.push_back({operand.name, operand.role, operand.shape, std::move(values)});
  }
  return declared;
}

// Y[...] = act(factors... + addends...) over `output`.
ir::Statement elementwise_statement(const std::string& target, const Shape& output, const std::vector<Operand>& factors,
                                    const std::vector<Operand>& addends, ir::Activation activation) {
  const auto names = dimension_names(output.size());
  ir::Statement statement;
  statement.output.tensor = target;
  for (size_t dim = 0; dim < output.size(); ++dim) {
    statement.output_indices.push_back({names[dim], output[dim]});
    statement.output.subscripts.push_back(Affine::index(names[dim]));
  }
  statement.factors = accesses(factors, output, names);
  statement.addends = accesses(addends, output, names);
  statement.activation = activation;
  return statement;
}

// The instructions with every operand declared, and the weights for the compute node.
struct Elementwise {
  ir::OpExpr op;
  ir::TensorMap weights;
};

Elementwise make_elementwise(const std::vector<Operand>& operands, std::vector<ir::Statement> statements) {
  ir::TensorMap weights;
  for (const auto& operand : operands) {
    if (operand.role == Role::Param) weights[operand.name] = ir::Tensor(operand.shape, operand.values);
  }
  return {ir::OpExpr::make(declarations(operands), std::move(statements)), std::move(weights)};
}

Node elementwise_node(const NodeContext& context, const std::vector<Operand>& factors,
                      const std::vector<Operand>& addends, std::vector<std::string> inputs) {
  std::vector<Operand> operands = factors;
  operands.insert(operands.end(), addends.begin(), addends.end());
  auto statement = elementwise_statement("Y", context.output_shape(), factors, addends, ir::Activation::None);
  auto [op, weights] = make_elementwise(operands, {statement});
  return compute_node(context, std::move(op), std::move(inputs), std::move(weights));
}

// ---- Activations ------------------------------------------------------------------------------

Node activation(const NodeContext& context, ir::Activation activation) {
  return compute_node(context, ir::activation(context.shape(0), activation), {context.input(0)}, {});
}

// hi - relu(hi - lo - relu(a*x + b - lo)): three elementwise statements, each exact for exact inputs.
Node clip_between(const NodeContext& context, double a, double b, double lo, double hi) {
  const Shape& shape = context.shape(0);
  Operand x{"X", Role::Input, shape, {}}, t{"T", Role::Intermediate, shape, {}}, u{"U", Role::Intermediate, shape, {}};
  std::vector<Operand> operands{x};
  auto scalar = [&](std::string name, double value) {
    operands.push_back(scalar_const(std::move(name), static_cast<float>(value)));
    return operands.back();
  };
  std::vector<Operand> first{x}, first_addends;
  if (a != 1) first.push_back(scalar("C", a));
  if (b - lo != 0) first_addends.push_back(scalar("D", b - lo));
  const Operand minus_one = scalar("M", -1), width = scalar("H", hi - lo), top = scalar("K", hi);
  std::vector<ir::Statement> statements{elementwise_statement("T", shape, first, first_addends, ir::Activation::Relu),
                                        elementwise_statement("U", shape, {t, minus_one}, {width}, ir::Activation::Relu),
                                        elementwise_statement("Y", shape, {u, minus_one}, {top}, ir::Activation::None)};
  auto [op, weights] = make_elementwise(operands, std::move(statements));
  return compute_node(context, std::move(op), {context.input(0)}, std::move(weights));
}

// clip(a*x + b, lo, hi) with exact relu / relu6 epilogues where the bounds allow:
//   lo = 0, hi = inf:      relu(a*x + b)
//   lo finite, hi = inf:   relu(a*x + b - lo) + lo
//   lo = -inf, hi finite:  hi - relu(hi - a*x - b)
//   hi - lo = 6:           relu6(a*x + b - lo) + lo
//   both finite otherwise: hi - relu(hi - lo - relu(a*x + b - lo)), exact where a relu6 scaled by
//                          6 / (hi - lo) and back would round (0 came out as -1.2e-7 for [-1, 1])
Node clip_affine(const NodeContext& context, double a, double b, double lo, double hi) {
  const Shape& shape = context.shape(0);
  const double infinity = std::numeric_limits<double>::infinity();
  if (hi < lo) throw Unsupported{"its upper bound is below its lower bound"};
  if (lo > -infinity && hi < infinity && hi - lo != 6) return clip_between(context, a, b, lo, hi);
  double scale = a, shift = b, out_scale = 1, out_shift = 0;
  ir::Activation act = ir::Activation::Relu;
  if (lo > -infinity && hi < infinity) {
    act = ir::Activation::Relu6;
    scale = 6 * a / (hi - lo), shift = 6 * (b - lo) / (hi - lo), out_scale = (hi - lo) / 6, out_shift = lo;
  } else if (lo > -infinity) {
    shift = b - lo, out_shift = lo;
  } else if (hi < infinity) {
    scale = -a, shift = hi - b, out_scale = -1, out_shift = hi;
  } else {
    act = ir::Activation::None;
  }
  if (scale == 1 && shift == 0 && out_scale == 1 && out_shift == 0) return activation(context, act);

  Operand x{"X", Role::Input, shape, {}};
  std::vector<Operand> operands{x};
  std::vector<Operand> factors{x}, addends;
  auto add_scalar = [&](std::vector<Operand>& list, std::string name, double value) {
    operands.push_back(scalar_const(std::move(name), static_cast<float>(value)));
    list.push_back(operands.back());
  };
  if (scale != 1) add_scalar(factors, "C", scale);
  if (shift != 0) add_scalar(addends, "D", shift);
  std::vector<ir::Statement> statements;
  const bool epilogue = out_scale != 1 || out_shift != 0;
  statements.push_back(elementwise_statement(epilogue ? "T" : "Y", shape, factors, addends, act));
  if (epilogue) {
    Operand t{"T", Role::Intermediate, shape, {}};
    std::vector<Operand> second_factors{t}, second_addends;
    if (out_scale != 1) add_scalar(second_factors, "C2", out_scale);
    if (out_shift != 0) add_scalar(second_addends, "D2", out_shift);
    statements.push_back(elementwise_statement("Y", shape, second_factors, second_addends, ir::Activation::None));
  }
  auto [op, weights] = make_elementwise(operands, std::move(statements));
  return compute_node(context, std::move(op), {context.input(0)}, std::move(weights));
}

double bound(const NodeContext& context, int index, double fallback) {
  if (!context.has_input(index)) return fallback;
  const ConstValue& value = context.constant(index, index == 1 ? "min" : "max");
  if (value.elements() != 1) throw Unsupported{"its bound is not a scalar"};
  return value.values[0];
}

Node clip(const NodeContext& context) {
  const double infinity = std::numeric_limits<double>::infinity();
  return clip_affine(context, 1, 0, bound(context, 1, -infinity), bound(context, 2, infinity));
}

Node hard_sigmoid(const NodeContext& context) {
  const double alpha = attribute_float(context.proto(), "alpha", 0.2),
               beta = attribute_float(context.proto(), "beta", 0.5);
  if (std::abs(alpha - 1.0 / 6) < 1e-6 && std::abs(beta - 0.5) < 1e-6)
    return activation(context, ir::Activation::HardSigmoid);
  return clip_affine(context, alpha, beta, 0, 1);
}

// ---- Binary arithmetic ------------------------------------------------------------------------

Operand data_operand(const NodeContext& context, int index, std::string name) {
  return {std::move(name), Role::Input, context.shape(index), {}};
}

enum class Arithmetic { Add, Sub, Mul, Div };

// Both operands computed values.
Node dynamic_binary(const NodeContext& context, Arithmetic kind) {
  Operand x = data_operand(context, 0, "X"), z = data_operand(context, 1, "Z");
  std::vector<std::string> inputs{context.input(0), context.input(1)};
  switch (kind) {
    case Arithmetic::Add:
      if (x.shape == z.shape && x.shape == context.output_shape()) {
        return compute_node(context, ir::add(x.shape), std::move(inputs), {});
      }
      return elementwise_node(context, {x}, {z}, std::move(inputs));
    case Arithmetic::Sub:
      return elementwise_node(context, {z, scalar_const("C", -1)}, {x}, std::move(inputs));
    case Arithmetic::Mul:
      return elementwise_node(context, {x, z}, {}, std::move(inputs));
    case Arithmetic::Div:
      return structural_node(context);  // a division by data is not instructions
  }
  return structural_node(context);
}

// One operand a constant `k`, the other the computed value `x`.
Node constant_binary(const NodeContext& context, Arithmetic kind, int constant_index) {
  const int data_index = 1 - constant_index;
  const ConstValue& k = context.constant(constant_index, "operand");
  Operand x = data_operand(context, data_index, "X");
  std::vector<std::string> inputs{context.input(data_index)};
  const bool constant_first = constant_index == 0;
  switch (kind) {
    case Arithmetic::Add:
      return elementwise_node(context, {x}, {constant_operand(k, true, same)}, inputs);
    case Arithmetic::Mul:
      return elementwise_node(context, {x, constant_operand(k, false, same)}, {}, inputs);
    case Arithmetic::Sub:
      if (constant_first)
        return elementwise_node(context, {x, scalar_const("C", -1)}, {constant_operand(k, true, same)}, inputs);
      return elementwise_node(context, {x}, {constant_operand(k, true, negated)}, inputs);
    case Arithmetic::Div:
      if (constant_first) return structural_node(context);
      return elementwise_node(context, {x, constant_operand(k, false, reciprocal)}, {}, inputs);
  }
  return structural_node(context);
}

Converter arithmetic(Arithmetic kind) {
  return [kind](const NodeContext& context) {
    if (context.is_constant(0) && context.is_constant(1)) throw Unsupported{"both operands are constants"};
    if (context.is_constant(0)) return constant_binary(context, kind, 0);
    if (context.is_constant(1)) return constant_binary(context, kind, 1);
    return dynamic_binary(context, kind);
  };
}

// ---- Pad --------------------------------------------------------------------------------------

// Reflect and edge padding, and a constant other than 0, are structural (executed as ONNX
// specifies); torch pads in those modes only the trailing spatial axes of 3-D to 5-D data.
Node structural_pad(const NodeContext& context, const std::string& mode) {
  if (!context.is_constant(1)) throw Unsupported{"its pads are computed; gos pads by amounts stored in the model"};
  if (context.has_input(2) && !context.is_constant(2)) throw Unsupported{"its padding value is computed"};
  if (mode != "constant" && mode != "reflect" && mode != "edge") throw Unsupported{"Pad mode '" + mode + "'"};
  if (mode != "constant") {
    const Shape& input = context.shape(0);
    const auto pads = context.constant(1, "pads").as_ints();
    const size_t rank = input.size();
    if (rank < 3 || rank > 5 || pads.size() != 2 * rank) throw Unsupported{"Pad in " + mode + " mode of data other than 3-D to 5-D"};
    if (pads[0] || pads[1] || pads[rank] || pads[rank + 1]) throw Unsupported{"Pad in " + mode + " mode of the batch or channel axis"};
    for (size_t axis = 2; axis < rank; ++axis) {
      const int64_t before = pads[axis], after = pads[axis + rank];
      if (before < 0 || after < 0) throw Unsupported{"negative pads in " + mode + " mode"};
      if (mode == "reflect" && (before >= input[axis] || after >= input[axis])) throw Unsupported{"reflect pads as wide as the axis"};
    }
  }
  return structural_node(context);
}

// Y[i...] = X[i - begin...]: reads before or past X are padding, which the semantics make 0.
Node pad(const NodeContext& context) {
  const std::string mode = attribute_string(context.proto(), "mode", "constant");
  if (mode != "constant") return structural_pad(context, mode);
  if (context.has_input(2)) {
    const ConstValue& value = context.constant(2, "padding value");
    if (value.elements() != 1 || value.values[0] != 0) return structural_pad(context, mode);
  }
  const Shape& input = context.shape(0);
  auto pads = attribute_ints(context.proto(), "pads");
  if (!pads) pads = context.constant(1, "pads").as_ints();
  if (pads->size() != 2 * input.size()) throw Unsupported{"pads does not give a begin and an end for every axis"};
  const auto names = dimension_names(input.size());
  ir::Statement statement;
  statement.output.tensor = "Y";
  Access read{"X", {}};
  for (size_t dim = 0; dim < input.size(); ++dim) {
    const int64_t begin = (*pads)[dim], extent = input[dim] + begin + (*pads)[dim + input.size()];
    statement.output_indices.push_back({names[dim], extent});
    statement.output.subscripts.push_back(Affine::index(names[dim]));
    read.subscripts.push_back(Affine::index(names[dim]) - Affine::constant(begin));
  }
  statement.factors = {read};
  ir::OpExpr op = ir::OpExpr::make({{"X", Role::Input, input, nullptr}}, {statement});
  return compute_node(context, std::move(op), {context.input(0)}, {});
}

}  // namespace

void add_elementwise_converters(ConverterTable& table) {
  using ir::Activation;
  for (const auto& [op_type, act] :
       std::vector<std::pair<std::string, Activation>>{{"Relu", Activation::Relu},
                                                       {"Sigmoid", Activation::Sigmoid},
                                                       {"Tanh", Activation::Tanh},
                                                       {"HardSwish", Activation::HardSwish},
                                                       {"Gelu", Activation::Gelu},
                                                       {"Silu", Activation::Silu}}) {
    table[op_type] = [act = act](const NodeContext& context) { return activation(context, act); };
  }
  table["Clip"] = clip;
  table["HardSigmoid"] = hard_sigmoid;
  table["Add"] = arithmetic(Arithmetic::Add);
  table["Sub"] = arithmetic(Arithmetic::Sub);
  table["Mul"] = arithmetic(Arithmetic::Mul);
  table["Div"] = arithmetic(Arithmetic::Div);
  table["Pad"] = pad;
}

}  // namespace gos::graph::onnx_import
