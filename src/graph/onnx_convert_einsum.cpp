// Einsum: already index notation, so it maps onto one statement directly. gos's own ONNX export
// writes Einsum for statements no standard operator computes, so reading it back matters.
#include <algorithm>

#include "graph/onnx_convert.h"

namespace gos::graph::onnx_import {

namespace {

struct Equation {
  std::vector<std::string> operands;  // one letter per dimension
  std::string result;
};

// "ab,bc->ac"; the implicit form "ab,bc" outputs the letters used once, in alphabetical order.
Equation parse_equation(std::string text) {
  std::erase(text, ' ');
  if (text.find("...") != std::string::npos) throw Unsupported{"Einsum with an ellipsis"};
  Equation equation;
  const size_t arrow = text.find("->");
  const std::string inputs = text.substr(0, arrow);
  for (size_t start = 0;;) {
    size_t comma = inputs.find(',', start);
    equation.operands.push_back(inputs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  for (const auto& operand : equation.operands) {
    if (!std::all_of(operand.begin(), operand.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
      throw Unsupported{"Einsum equation '" + text + "' is malformed"};
    }
  }
  if (arrow != std::string::npos) {
    equation.result = text.substr(arrow + 2);
  } else {
    for (char letter = 'A'; letter <= 'z'; ++letter) {
      if (std::count(inputs.begin(), inputs.end(), letter) == 1) equation.result += letter;
    }
  }
  return equation;
}

ir::Access access_of(const std::string& tensor, const std::string& letters) {
  ir::Access access{tensor, {}};
  for (char letter : letters) access.subscripts.push_back(ir::Affine::index(std::string(1, letter)));
  return access;
}

Node einsum(const NodeContext& context) {
  Equation equation = parse_equation(attribute_string(context.proto(), "equation", ""));
  if (equation.operands.size() != static_cast<size_t>(context.proto().input_size())) {
    throw Unsupported{"its equation names a different number of operands than the node has"};
  }
  std::map<char, int64_t> extents;
  std::vector<ir::TensorDecl> tensors;
  std::vector<std::string> data_inputs;
  ir::TensorMap weights;
  ir::Statement statement;
  for (size_t i = 0; i < equation.operands.size(); ++i) {
    const int index = static_cast<int>(i);
    const Shape& shape = context.shape(index);
    const std::string& letters = equation.operands[i];
    if (letters.size() != shape.size()) throw Unsupported{"its equation gives operand " + std::to_string(i) + " the wrong rank"};
    for (size_t dim = 0; dim < letters.size(); ++dim) {
      auto [slot, inserted] = extents.emplace(letters[dim], shape[dim]);
      if (!inserted && slot->second != shape[dim]) throw Unsupported{"its equation pairs dimensions of different sizes"};
    }
    std::string name = "T" + std::to_string(i);
    if (context.is_constant(index)) {
      const ConstValue& value = context.constant(index, "operand");
      ir::Tensor tensor = value.to_tensor();
      if (is_learned(value)) {
        tensors.push_back({name, ir::Role::Param, shape, nullptr});
        weights[name] = std::move(tensor);
      } else {
        tensors.push_back({name, ir::Role::Const, shape, std::make_shared<const std::vector<float>>(std::move(tensor.data))});
      }
    } else {
      tensors.push_back({name, ir::Role::Input, shape, nullptr});
      data_inputs.push_back(context.input(index));
    }
    statement.factors.push_back(access_of(name, letters));
  }
  statement.output = access_of("Y", equation.result);
  for (char letter : equation.result) {
    if (!extents.count(letter)) throw Unsupported{"its result names a letter no operand has"};
    statement.output_indices.push_back({std::string(1, letter), extents.at(letter)});
  }
  for (const auto& [letter, extent] : extents) {
    if (equation.result.find(letter) == std::string::npos) statement.reduction_indices.push_back({std::string(1, letter), extent});
  }
  std::stable_partition(tensors.begin(), tensors.end(), [](const ir::TensorDecl& t) { return t.role == ir::Role::Input; });
  return compute_node(context, ir::OpExpr::make(std::move(tensors), {std::move(statement)}), data_inputs, weights);
}

}  // namespace

void add_einsum_converter(ConverterTable& table) { table["Einsum"] = einsum; }

}  // namespace gos::graph::onnx_import
