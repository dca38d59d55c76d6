// Node-level rewrites before conversion. Exporters write some operators as chains of primitive
// ops (GELU as x * 0.5 * (1 + Erf(x / sqrt 2)), SiLU as x * Sigmoid(x), LayerNorm before opset 17
// as ReduceMean/Sub/Pow/Sqrt/Div); recognising them gives one activation or one normalisation,
// which is what rewrite rules and lowerings look for. Identity and inference Dropout vanish.
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "graph/onnx_model.h"

namespace gos::graph::onnx_import {

namespace {

// Who reads and who writes each value, for walking chains of single-consumer nodes.
class NodeIndex {
 public:
  explicit NodeIndex(const OnnxModel& model) : model_(model) {
    for (size_t position = 0; position < model.nodes.size(); ++position) {
      for (const auto& input : model.nodes[position].input()) {
        if (!input.empty()) readers_[input].push_back(position);
      }
      for (const auto& output : model.nodes[position].output()) producers_[output] = position;
    }
    for (const auto& output : model.outputs) readers_[output].push_back(kGraphOutput);
  }

  const onnx::NodeProto& node(size_t position) const { return model_.nodes[position]; }

  // The one node reading `value` (and no graph output reads it), if it has op type `op_type`.
  std::optional<size_t> sole_reader(const std::string& value, const std::string& op_type) const {
    auto found = readers_.find(value);
    if (found == readers_.end() || found->second.size() != 1 || found->second[0] == kGraphOutput) return std::nullopt;
    if (node(found->second[0]).op_type() != op_type) return std::nullopt;
    return found->second[0];
  }

  std::vector<size_t> readers(const std::string& value) const {
    auto found = readers_.find(value);
    return found == readers_.end() ? std::vector<size_t>{} : found->second;
  }

  std::optional<size_t> producer(const std::string& value, const std::string& op_type) const {
    auto found = producers_.find(value);
    if (found == producers_.end() || node(found->second).op_type() != op_type) return std::nullopt;
    return found->second;
  }

  // A one-element constant's value.
  std::optional<double> scalar(const std::string& value) const {
    auto found = model_.constants.find(value);
    if (found == model_.constants.end() || found->second.elements() != 1) return std::nullopt;
    return found->second.values[0];
  }

  bool scalar_near(const std::string& value, double target) const {
    auto found = scalar(value);
    return found && std::abs(*found - target) <= 1e-4 * std::abs(target);
  }

  static constexpr size_t kGraphOutput = static_cast<size_t>(-1);

 private:
  const OnnxModel& model_;
  std::map<std::string, std::vector<size_t>> readers_;
  std::map<std::string, size_t> producers_;
};

// The operand of a binary node other than `value`, or "" if the node does not read `value`.
std::string other_operand(const onnx::NodeProto& node, const std::string& value) {
  if (node.input_size() != 2) return "";
  if (node.input(0) == value) return node.input(1);
  if (node.input(1) == value) return node.input(0);
  return "";
}

// A recognised chain: the nodes it replaces and the single node that replaces them.
struct Match {
  std::vector<size_t> removed;
  onnx::NodeProto replacement;
};

onnx::NodeProto make_node(const std::string& op_type, const onnx::NodeProto& last,
                          const std::vector<std::string>& inputs) {
  onnx::NodeProto node;
  node.set_op_type(op_type);
  node.set_name(last.name());
  for (const auto& input : inputs) node.add_input(input);
  node.add_output(last.output(0));
  return node;
}

// Erf(x / sqrt2) (or x * 1/sqrt2) -> + 1 -> times x and 0.5 in any order and grouping.
std::optional<Match> match_gelu(const NodeIndex& index, size_t erf) {
  const std::string& scaled = index.node(erf).input(0);
  std::optional<size_t> divide = index.producer(scaled, "Div");
  std::optional<size_t> multiply = index.producer(scaled, "Mul");
  std::string x;
  if (divide && index.scalar_near(index.node(*divide).input(1), std::sqrt(2.0))) x = index.node(*divide).input(0);
  if (multiply) {
    for (const auto& operand : index.node(*multiply).input()) {
      if (index.scalar_near(operand, std::sqrt(0.5))) x = other_operand(index.node(*multiply), operand);
    }
  }
  size_t scaling = divide ? *divide : multiply ? *multiply : 0;
  if (x.empty() || index.readers(scaled).size() != 1) return std::nullopt;

  auto plus_one = index.sole_reader(index.node(erf).output(0), "Add");
  if (!plus_one || !index.scalar_near(other_operand(index.node(*plus_one), index.node(erf).output(0)), 1.0)) {
    return std::nullopt;
  }
  const std::string& sum = index.node(*plus_one).output(0);
  auto first = index.sole_reader(sum, "Mul");
  if (!first) return std::nullopt;
  const std::string factor = other_operand(index.node(*first), sum);
  const std::string& product = index.node(*first).output(0);
  std::vector<size_t> removed{scaling, erf, *plus_one, *first};

  // x * 0.5 comes either as a later multiplication of the product or as a separate Mul(x, 0.5).
  auto second = index.sole_reader(product, "Mul");
  const std::string second_factor = second ? other_operand(index.node(*second), product) : "";
  auto half_x = index.producer(factor, "Mul");
  size_t last = *first;
  if (second && ((factor == x && index.scalar_near(second_factor, 0.5)) ||
                 (index.scalar_near(factor, 0.5) && second_factor == x))) {
    removed.push_back(*second);
    last = *second;
  } else if (half_x && index.readers(factor).size() == 1 &&
             index.scalar_near(other_operand(index.node(*half_x), x), 0.5)) {
    removed.push_back(*half_x);
  } else {
    return std::nullopt;
  }
  return Match{removed, make_node("Gelu", index.node(last), {x})};
}

// gate(x) * x, for SiLU (Sigmoid) and HardSwish (HardSigmoid with alpha 1/6, beta 1/2).
std::optional<Match> match_gated(const NodeIndex& index, size_t gate, const std::string& op_type) {
  const onnx::NodeProto& node = index.node(gate);
  if (node.op_type() == "HardSigmoid" && (std::abs(attribute_float(node, "alpha", 0.2) - 1.0 / 6) > 1e-6 ||
                                          std::abs(attribute_float(node, "beta", 0.5) - 0.5) > 1e-6)) {
    return std::nullopt;
  }
  auto multiply = index.sole_reader(node.output(0), "Mul");
  if (!multiply || other_operand(index.node(*multiply), node.output(0)) != node.input(0)) return std::nullopt;
  return Match{{gate, *multiply}, make_node(op_type, index.node(*multiply), {node.input(0)})};
}

// The normalised axes of a ReduceMean if they are the trailing ones of a keepdims reduction.
std::optional<int64_t> trailing_axes(const OnnxModel& model, const onnx::NodeProto& reduce) {
  const Shape* shape = model.find_shape(reduce.input(0));
  auto axes = attribute_ints(reduce, "axes");
  if (!shape || !axes || axes->empty() || attribute_int(reduce, "keepdims", 1) != 1) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(shape->size());
  std::vector<int64_t> normalised;
  for (int64_t axis : *axes) normalised.push_back(axis < 0 ? axis + rank : axis);
  std::sort(normalised.begin(), normalised.end());
  for (size_t i = 0; i < normalised.size(); ++i) {
    if (normalised[i] != rank - static_cast<int64_t>(normalised.size() - i)) return std::nullopt;
  }
  return rank - static_cast<int64_t>(normalised.size());
}

// A constant usable as LayerNormalization's scale or bias: as many elements as the normalised
// shape, all of them along the trailing axes.
bool fits_normalised_shape(const OnnxModel& model, const std::string& value, const Shape& normalised) {
  auto found = model.constants.find(value);
  if (found == model.constants.end()) return false;
  Shape shape = found->second.shape;
  while (shape.size() > normalised.size() && shape.front() == 1) shape.erase(shape.begin());
  return shape == normalised;
}

// mean = ReduceMean(x); d = x - mean; var = ReduceMean(d^2); y = d / Sqrt(var + eps) [* g] [+ b].
std::optional<Match> match_layer_norm(const NodeIndex& index, OnnxModel& model, size_t mean) {
  const onnx::NodeProto& reduce = index.node(mean);
  const std::string& x = reduce.input(0);
  auto axis = trailing_axes(model, reduce);
  auto subtract = index.sole_reader(reduce.output(0), "Sub");
  if (!axis || !subtract || index.node(*subtract).input(0) != x) return std::nullopt;
  const std::string& centred = index.node(*subtract).output(0);
  std::vector<size_t> readers = index.readers(centred);
  if (readers.size() != 2) return std::nullopt;
  size_t power = readers[0], divide = readers[1];
  if (index.node(power).op_type() != "Pow") std::swap(power, divide);
  if (index.node(power).op_type() != "Pow" || index.node(divide).op_type() != "Div" ||
      index.node(power).input(0) != centred || index.node(divide).input(0) != centred ||
      !index.scalar_near(index.node(power).input(1), 2.0)) {
    return std::nullopt;
  }
  auto variance = index.sole_reader(index.node(power).output(0), "ReduceMean");
  if (!variance || trailing_axes(model, index.node(*variance)) != axis) return std::nullopt;
  auto add_epsilon = index.sole_reader(index.node(*variance).output(0), "Add");
  if (!add_epsilon) return std::nullopt;
  auto epsilon = index.scalar(other_operand(index.node(*add_epsilon), index.node(*variance).output(0)));
  auto root = index.sole_reader(index.node(*add_epsilon).output(0), "Sqrt");
  if (!epsilon || !root || index.sole_reader(index.node(*root).output(0), "Div") != divide) return std::nullopt;

  const Shape& shape = model.shapes.at(x);
  const Shape normalised(shape.begin() + *axis, shape.end());
  std::vector<size_t> removed{mean, *subtract, power, *variance, *add_epsilon, *root, divide};
  // The affine part is optional; without it the scale is ones and the bias zeros.
  ConstValue scale{normalised, {}, onnx::TensorProto_DataType_FLOAT, true};
  scale.values.assign(std::accumulate(normalised.begin(), normalised.end(), int64_t{1}, std::multiplies<>()), 1.0);
  ConstValue bias = scale;
  std::fill(bias.values.begin(), bias.values.end(), 0.0);
  if (auto multiply = index.sole_reader(index.node(divide).output(0), "Mul")) {
    const std::string gamma = other_operand(index.node(*multiply), index.node(divide).output(0));
    if (fits_normalised_shape(model, gamma, normalised)) {
      removed.push_back(*multiply);
      scale.values = model.constants.at(gamma).values;
      if (auto add = index.sole_reader(index.node(*multiply).output(0), "Add")) {
        const std::string beta = other_operand(index.node(*add), index.node(*multiply).output(0));
        if (fits_normalised_shape(model, beta, normalised)) {
          removed.push_back(*add);
          bias.values = model.constants.at(beta).values;
        }
      }
    }
  }
  const std::string output = index.node(removed.back()).output(0);
  for (const auto& [suffix, value] : {std::pair{"::scale", &scale}, std::pair{"::bias", &bias}}) {
    model.constants[output + suffix] = *value;
    model.shapes[output + suffix] = normalised;
  }
  onnx::NodeProto node =
      make_node("LayerNormalization", index.node(removed.back()), {x, output + "::scale", output + "::bias"});
  auto* axis_attribute = node.add_attribute();
  axis_attribute->set_name("axis");
  axis_attribute->set_type(onnx::AttributeProto::INT);
  axis_attribute->set_i(*axis);
  auto* epsilon_attribute = node.add_attribute();
  epsilon_attribute->set_name("epsilon");
  epsilon_attribute->set_type(onnx::AttributeProto::FLOAT);
  epsilon_attribute->set_f(static_cast<float>(*epsilon));
  return Match{removed, node};
}

using Matcher = std::function<std::optional<Match>(const NodeIndex&, OnnxModel&, size_t)>;

// Applies every non-overlapping match of `matcher` started at nodes of type `op_type`; each
// replacement takes the place of the last node it replaces, so the order stays topological.
void rewrite(OnnxModel& model, const std::string& op_type, const Matcher& matcher) {
  NodeIndex index(model);
  std::vector<bool> used(model.nodes.size(), false);
  std::map<size_t, onnx::NodeProto> replacements;
  for (size_t position = 0; position < model.nodes.size(); ++position) {
    if (model.nodes[position].op_type() != op_type || used[position]) continue;
    auto match = matcher(index, model, position);
    if (!match || std::any_of(match->removed.begin(), match->removed.end(), [&](size_t p) { return used[p]; }))
      continue;
    for (size_t removed : match->removed) used[removed] = true;
    replacements[*std::max_element(match->removed.begin(), match->removed.end())] = std::move(match->replacement);
  }
  std::vector<onnx::NodeProto> nodes;
  for (size_t position = 0; position < model.nodes.size(); ++position) {
    if (replacements.count(position)) {
      nodes.push_back(std::move(replacements[position]));
    } else if (!used[position]) {
      nodes.push_back(std::move(model.nodes[position]));
    }
  }
  model.nodes = std::move(nodes);
}

void rename_value(OnnxModel& model, const std::string& from, const std::string& to) {
  for (auto& node : model.nodes) {
    for (auto& input : *node.mutable_input()) {
      if (input == from) input = to;
    }
    for (auto& output : *node.mutable_output()) {
      if (output == from) output = to;
    }
  }
}

bool is_inference_alias(const OnnxModel& model, const onnx::NodeProto& node) {
  if (node.op_type() != "Identity" && node.op_type() != "Dropout") return false;
  if (node.input_size() < 1 || model.is_constant(node.input(0))) return false;
  if (node.op_type() == "Dropout") {
    if (node.output_size() > 1 && !node.output(1).empty()) return false;  // the mask is read
    const std::string& training = input_name(node, 2);
    if (!training.empty() && (!model.is_constant(training) || model.constants.at(training).values.at(0) != 0)) {
      return false;
    }
  }
  return true;
}

// An Identity or inference Dropout disappears: its readers read its input. When it writes a
// graph output, the output's name is kept by renaming the producer's value instead.
void remove_aliases(OnnxModel& model) {
  std::set<std::string> graph_inputs, graph_outputs(model.outputs.begin(), model.outputs.end());
  for (const auto& input : model.inputs) graph_inputs.insert(input.name);
  for (size_t position = 0; position < model.nodes.size();) {
    const onnx::NodeProto& node = model.nodes[position];
    if (!is_inference_alias(model, node)) {
      ++position;
      continue;
    }
    const std::string source = node.input(0), alias = node.output(0);
    if (graph_outputs.count(alias) && (graph_inputs.count(source) || graph_outputs.count(source))) {
      onnx::NodeProto& kept = model.nodes[position++];  // stays, as a structural Identity
      kept.set_op_type("Identity");
      kept.clear_attribute();
      kept.mutable_input()->DeleteSubrange(1, kept.input_size() - 1);
      kept.mutable_output()->DeleteSubrange(1, kept.output_size() - 1);
      continue;
    }
    model.nodes.erase(model.nodes.begin() + static_cast<std::ptrdiff_t>(position));
    if (graph_outputs.count(alias)) {
      rename_value(model, source, alias);
    } else {
      rename_value(model, alias, source);
    }
  }
}

}  // namespace

void rewrite_patterns(OnnxModel& model) {
  remove_aliases(model);
  rewrite(model, "Erf", [](const NodeIndex& index, OnnxModel&, size_t p) { return match_gelu(index, p); });
  rewrite(model, "Sigmoid", [](const NodeIndex& index, OnnxModel&, size_t p) { return match_gated(index, p, "Silu"); });
  rewrite(model, "HardSigmoid",
          [](const NodeIndex& index, OnnxModel&, size_t p) { return match_gated(index, p, "HardSwish"); });
  rewrite(model, "ReduceMean", match_layer_norm);
}

}  // namespace gos::graph::onnx_import
