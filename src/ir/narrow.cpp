// Narrowing an axis: which tensor axes share it, and the operator and tensors with some of its
// positions kept.
#include <algorithm>
#include <deque>
#include <set>

#include "ir/ir.h"

namespace gos::ir {

namespace {

std::vector<const Access*> accesses(const Statement& statement) {
  std::vector<const Access*> all{&statement.output};
  for (const auto& factor : statement.factors) all.push_back(&factor);
  for (const auto& addend : statement.addends) all.push_back(&addend);
  return all;
}

bool is_reduced(const Statement& statement, const std::string& index) {
  return std::any_of(statement.reduction_indices.begin(), statement.reduction_indices.end(),
                     [&](const IndexVar& var) { return var.name == index; });
}

// The axes linked to `start` and, per statement, the index they run along (empty on failure).
struct Links {
  std::set<TensorAxis> axes;
  std::map<size_t, std::string> index_of_statement;
};

Links find_links(const OpExpr& op, const TensorAxis& start) {
  const TensorDecl* declared = op.find_tensor(start.tensor);
  if (!declared || start.axis < 0 || start.axis >= static_cast<int>(declared->shape.size())) return {};
  Links links;
  std::deque<TensorAxis> pending{start};
  links.axes.insert(start);
  const auto& statements = op.statements();
  while (!pending.empty()) {
    const TensorAxis current = pending.front();
    pending.pop_front();
    for (size_t position = 0; position < statements.size(); ++position) {
      const Statement& statement = statements[position];
      for (const Access* access : accesses(statement)) {
        if (access->tensor != current.tensor) continue;
        const auto index = access->subscripts.at(current.axis).plain_index();
        if (!index) return {};
        auto [known, inserted] = links.index_of_statement.emplace(position, *index);
        if (!inserted) {
          if (known->second != *index) return {};  // two indices of one statement would narrow together
          continue;
        }
        if (is_reduced(statement, *index) && statement.reduction != Reduction::Sum) return {};
        for (const Access* other : accesses(statement)) {
          for (size_t axis = 0; axis < other->subscripts.size(); ++axis) {
            const Affine& subscript = other->subscripts[axis];
            if (subscript.coefficient(*index) == 0) continue;
            if (subscript.plain_index() != *index) return {};
            const TensorAxis linked{other->tensor, static_cast<int>(axis)};
            if (links.axes.insert(linked).second) pending.push_back(linked);
          }
        }
      }
    }
  }
  // Every linked axis runs over the whole of its index: a plain index over part of an axis reads
  // a slice, which keeping positions would shift.
  for (const auto& [position, index] : links.index_of_statement) {
    const int64_t extent = statements[position].extent_of(index);
    for (const Access* access : accesses(statements[position])) {
      for (size_t axis = 0; axis < access->subscripts.size(); ++axis) {
        if (access->subscripts[axis].plain_index() == index && op.tensor(access->tensor).shape.at(axis) != extent) return {};
      }
    }
  }
  return links;
}

Links checked_links(const OpExpr& op, const TensorAxis& start, const std::vector<int64_t>& kept) {
  Links links = find_links(op, start);
  if (links.axes.empty()) {
    throw IrError("axis " + std::to_string(start.axis) + " of '" + start.tensor + "' cannot be narrowed on its own");
  }
  const int64_t extent = op.tensor(start.tensor).shape.at(start.axis);
  if (kept.empty()) throw IrError("narrowing '" + start.tensor + "' must keep at least one position");
  for (size_t i = 0; i < kept.size(); ++i) {
    if (kept[i] < 0 || kept[i] >= extent || (i > 0 && kept[i] <= kept[i - 1])) {
      throw IrError("positions kept of '" + start.tensor + "' must increase strictly within 0.." + std::to_string(extent - 1));
    }
  }
  return links;
}

// Slices every linked axis of one tensor.
Tensor slice_linked(const Links& links, const std::string& name, Tensor tensor, const std::vector<int64_t>& kept) {
  for (const auto& axis : links.axes) {
    if (axis.tensor == name) tensor = take(tensor, axis.axis, kept);
  }
  return tensor;
}

}  // namespace

Tensor take(const Tensor& tensor, int axis, const std::vector<int64_t>& positions) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= tensor.shape.at(d);
  for (size_t d = axis + 1; d < tensor.shape.size(); ++d) inner *= tensor.shape[d];
  const int64_t extent = tensor.shape.at(axis);
  std::vector<int64_t> shape = tensor.shape;
  shape[axis] = static_cast<int64_t>(positions.size());
  Tensor taken(shape);
  auto out = taken.data.begin();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t position : positions) {
      const auto begin = tensor.data.begin() + (o * extent + position) * inner;
      out = std::copy(begin, begin + inner, out);
    }
  }
  return taken;
}

std::vector<TensorAxis> linked_axes(const OpExpr& op, const TensorAxis& start) {
  const Links links = find_links(op, start);
  return {links.axes.begin(), links.axes.end()};
}

OpExpr narrow(const OpExpr& op, const TensorAxis& start, const std::vector<int64_t>& kept) {
  const Links links = checked_links(op, start, kept);
  std::vector<TensorDecl> declared;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == Role::Intermediate || tensor.role == Role::Output) continue;
    TensorDecl narrowed = tensor;
    if (tensor.values) {
      Tensor values = slice_linked(links, tensor.name, Tensor(tensor.shape, *tensor.values), kept);
      narrowed.shape = values.shape;
      narrowed.values = std::make_shared<const std::vector<float>>(std::move(values.data));
    } else {
      for (const auto& axis : links.axes) {
        if (axis.tensor == tensor.name) narrowed.shape[axis.axis] = static_cast<int64_t>(kept.size());
      }
    }
    declared.push_back(std::move(narrowed));
  }
  std::vector<Statement> statements = op.statements();
  for (const auto& [position, index] : links.index_of_statement) {
    for (auto* list : {&statements[position].output_indices, &statements[position].reduction_indices}) {
      for (auto& var : *list) {
        if (var.name == index) var.extent = static_cast<int64_t>(kept.size());
      }
    }
  }
  return OpExpr::make(std::move(declared), std::move(statements));
}

TensorMap narrow_tensors(const OpExpr& op, const TensorAxis& start, const std::vector<int64_t>& kept, const TensorMap& tensors) {
  const Links links = checked_links(op, start, kept);
  TensorMap narrowed;
  for (const auto& [name, tensor] : tensors) narrowed.emplace(name, slice_linked(links, name, tensor, kept));
  return narrowed;
}

}  // namespace gos::ir
