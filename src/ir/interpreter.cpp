// The reference interpreter: loops over every index of every statement. Slow on purpose; its
// simplicity is what makes it the ground truth for lowerings and rewrite rules.
#include <cmath>
#include <limits>

#include "ir/ir.h"

namespace gos::ir {

namespace {

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

// An access compiled against a statement's index positions: each subscript as coefficients over
// the statement's indices (output indices first, then reduction indices) plus a constant.
struct CompiledAccess {
  const float* data = nullptr;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  std::vector<std::vector<std::pair<size_t, int64_t>>> terms;  // per dimension: (index position, coefficient)
  std::vector<int64_t> constants;

  // The flat offset, or -1 when any subscript falls outside the tensor.
  int64_t offset(const std::vector<int64_t>& point) const {
    int64_t flat = 0;
    for (size_t dim = 0; dim < shape.size(); ++dim) {
      int64_t position = constants[dim];
      for (const auto& [index, coefficient] : terms[dim]) position += coefficient * point[index];
      if (position < 0 || position >= shape[dim]) return -1;
      flat += position * strides[dim];
    }
    return flat;
  }
  double read(const std::vector<int64_t>& point, bool& in_range) const {
    int64_t flat = offset(point);
    in_range = flat >= 0;
    return in_range ? data[flat] : 0.0;
  }
};

std::map<std::string, size_t> index_positions(const Statement& statement) {
  std::map<std::string, size_t> positions;
  for (const auto& index : statement.output_indices) positions.emplace(index.name, positions.size());
  for (const auto& index : statement.reduction_indices) positions.emplace(index.name, positions.size());
  return positions;
}

CompiledAccess compile(const Access& access, const std::map<std::string, size_t>& positions, const Tensor& tensor) {
  CompiledAccess compiled;
  compiled.data = tensor.data.data();
  compiled.shape = tensor.shape;
  compiled.strides = strides_of(tensor.shape);
  for (const auto& subscript : access.subscripts) {
    std::vector<std::pair<size_t, int64_t>> terms;
    for (const auto& [name, coefficient] : subscript.terms()) terms.emplace_back(positions.at(name), coefficient);
    compiled.terms.push_back(std::move(terms));
    compiled.constants.push_back(subscript.constant_term());
  }
  return compiled;
}

// Advances `point[first..last)` like an odometer over `extents`; false once it wraps around.
bool advance(std::vector<int64_t>& point, const std::vector<int64_t>& extents, size_t first, size_t last) {
  for (size_t i = last; i-- > first;) {
    if (++point[i] < extents[i]) return true;
    point[i] = 0;
  }
  return false;
}

double reduce(const Statement& statement, const std::vector<CompiledAccess>& factors, std::vector<int64_t>& point,
              const std::vector<int64_t>& extents) {
  const size_t first = statement.output_indices.size();
  const size_t last = extents.size();
  double total = 0.0;
  double maximum = -std::numeric_limits<double>::infinity();
  bool any = false;
  do {
    double product = 1.0;
    bool in_range = true;
    for (const auto& factor : factors) {
      product *= factor.read(point, in_range);
      if (!in_range) break;
    }
    if (!in_range) continue;
    any = true;
    total += product;
    maximum = std::max(maximum, product);
  } while (advance(point, extents, first, last));

  switch (statement.reduction) {
    case Reduction::Sum: return total;
    case Reduction::Max: return any ? maximum : 0.0;
    case Reduction::Mean: {
      double count = 1.0;
      for (size_t i = first; i < last; ++i) count *= static_cast<double>(extents[i]);
      return total / count;
    }
  }
  return total;
}

void run_statement(const Statement& statement, const std::map<std::string, const Tensor*>& tensors, Tensor& output) {
  auto positions = index_positions(statement);
  std::vector<int64_t> extents;
  for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
    for (const auto& index : *list) extents.push_back(index.extent);
  }
  auto compile_all = [&](const std::vector<Access>& accesses) {
    std::vector<CompiledAccess> compiled;
    for (const auto& access : accesses) compiled.push_back(compile(access, positions, *tensors.at(access.tensor)));
    return compiled;
  };
  auto factors = compile_all(statement.factors);
  auto addends = compile_all(statement.addends);
  auto target = compile(statement.output, positions, output);

  const size_t outputs = statement.output_indices.size();
  std::vector<int64_t> point(extents.size(), 0);
  do {
    double value = reduce(statement, factors, point, extents);
    bool in_range = true;
    for (const auto& addend : addends) value += addend.read(point, in_range);
    output.data[target.offset(point)] = apply_activation(statement.activation, static_cast<float>(value));
    std::fill(point.begin() + outputs, point.end(), 0);
  } while (advance(point, extents, 0, outputs));
}

}  // namespace

TensorMap evaluate_all(const OpExpr& op, const TensorMap& bindings) {
  std::map<std::string, const Tensor*> tensors;
  TensorMap consts;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == Role::Const) {
      consts.emplace(tensor.name, Tensor(tensor.shape, *tensor.values));
      tensors[tensor.name] = &consts.at(tensor.name);
    } else if (tensor.role == Role::Input || tensor.role == Role::Param) {
      auto bound = bindings.find(tensor.name);
      if (bound == bindings.end()) {
        throw IrError("no value bound for " + std::string(to_string(tensor.role)) + " '" + tensor.name + "'");
      }
      if (bound->second.shape != tensor.shape) {
        throw IrError("'" + tensor.name + "' is bound to a tensor of shape " + shape_text(bound->second.shape) +
                      " but the operator expects " + shape_text(tensor.shape));
      }
      tensors[tensor.name] = &bound->second;
    }
  }
  TensorMap written;
  for (const auto& statement : op.statements()) {
    Tensor output(op.tensor(statement.output.tensor).shape);
    run_statement(statement, tensors, output);
    auto [slot, inserted] = written.emplace(statement.output.tensor, std::move(output));
    tensors[statement.output.tensor] = &slot->second;
  }
  return written;
}

Tensor evaluate(const OpExpr& op, const TensorMap& bindings) {
  auto written = evaluate_all(op, bindings);
  return std::move(written.at(op.output().name));
}

}  // namespace gos::ir
