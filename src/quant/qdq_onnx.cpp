// The QDQ ONNX form: gos's fp32 export, rewritten so that ONNX Runtime's QDQ transformers find
// DequantizeLinear -> Conv/Gemm/MatMul/Add/... -> QuantizeLinear groups and run them as integer
// kernels. Plain rewriting of the exported protobuf: the fp32 export stays the one lowering.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "graph/onnx_export.h"
#include "lowering/onnx_builder.h"
#include "quant/quant.h"

namespace gos::quant {

namespace {

using lowering::set_attribute;

// Nodes that move values without changing them: a value they pass on keeps its quantization.
bool passes_values_on(const std::string& op_type) {
  static const std::set<std::string> kinds{"Gather", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
  return kinds.count(op_type) > 0;
}

ir::Tensor read_float(const onnx::TensorProto& proto) {
  ir::Tensor tensor;
  tensor.shape.assign(proto.dims().begin(), proto.dims().end());
  int64_t count = 1;
  for (int64_t dim : tensor.shape) count *= dim;
  tensor.data.resize(static_cast<size_t>(count));
  if (!proto.raw_data().empty()) {
    std::memcpy(tensor.data.data(), proto.raw_data().data(), std::min(proto.raw_data().size(), tensor.data.size() * sizeof(float)));
  } else {
    std::copy(proto.float_data().begin(), proto.float_data().end(), tensor.data.begin());
  }
  return tensor;
}

template <typename T>
onnx::TensorProto raw_tensor(const std::string& name, int32_t type, const std::vector<int64_t>& shape, const std::vector<T>& values) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(type);
  for (int64_t dim : shape) proto.add_dims(dim);
  proto.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  return proto;
}

class QdqRewriter {
 public:
  QdqRewriter(onnx::GraphProto& graph, const QuantPlan& plan) : graph_(graph), plan_(plan), builder_(graph) {
    for (const auto& node : plan.nodes) int8_nodes_[node.node] = node.int8;
    for (int i = 0; i < graph.initializer_size(); ++i) initializers_[graph.initializer(i).name()] = i;
  }

  void run() {
    const std::vector<onnx::NodeProto> nodes(graph_.node().begin(), graph_.node().end());
    for (const auto& node : nodes) {
      for (const auto& output : node.output()) producers_[output] = &node;
    }
    graph_.clear_node();
    for (const auto& input : graph_.input()) quantize_value(input.name());
    for (onnx::NodeProto node : nodes) {
      for (int i = 0; i < node.input_size(); ++i) {
        if (auto found = dequantized_.find(node.input(i)); found != dequantized_.end()) node.set_input(i, found->second);
      }
      if (in_int8_node(node.name()) && (node.op_type() == "Conv" || node.op_type() == "Gemm" || node.op_type() == "MatMul")) {
        quantize_weights(node);
      }
      *graph_.add_node() = node;
      for (const auto& output : node.output()) quantize_value(output);
    }
    // A quantized graph output (an operator timed alone) is handed out as its dequantized value.
    for (auto& output : *graph_.mutable_output()) {
      if (auto found = dequantized_.find(output.name()); found != dequantized_.end()) output.set_name(found->second);
    }
    remove_unread_nodes();
  }

 private:
  // The export names each compute node's ONNX nodes "<graph node>/<op type>..."; the longest
  // graph node name that prefixes it is the one.
  bool in_int8_node(const std::string& onnx_name) const {
    size_t longest = 0;
    bool int8 = false;
    for (const auto& [name, is_int8] : int8_nodes_) {
      if (name.size() > longest && onnx_name.size() > name.size() && onnx_name.compare(0, name.size(), name) == 0 &&
          onnx_name[name.size()] == '/') {
        longest = name.size();
        int8 = is_int8;
      }
    }
    return int8;
  }

  // A QuantizeLinear/DequantizeLinear pair after `value`, when the plan quantizes it.
  void quantize_value(const std::string& value) {
    auto found = plan_.activations.find(value);
    if (found != plan_.activations.end()) add_pair(value, found->second);
  }

  std::string add_pair(const std::string& value, const ActivationQuant& quant) {
    const std::string scale = add_initializer(float_scalar(value + "/scale", quant.scale));
    const std::string zero_point = add_initializer(raw_tensor<uint8_t>(builder_.fresh(value + "/zero_point"), onnx::TensorProto_DataType_UINT8,
                                                                           {}, {static_cast<uint8_t>(quant.zero_point)}));
    const std::string quantized = builder_.fresh(value + "/q"), dequantized = builder_.fresh(value + "/dq");
    add_node("QuantizeLinear", {value, scale, zero_point}, quantized);
    add_node("DequantizeLinear", {quantized, scale, zero_point}, dequantized);
    dequantized_[value] = dequantized;
    quantization_[dequantized] = quant;
    return dequantized;
  }

  onnx::TensorProto float_scalar(const std::string& stem, float value) {
    onnx::TensorProto proto;
    proto.set_name(builder_.fresh(stem));
    proto.set_data_type(onnx::TensorProto_DataType_FLOAT);
    proto.add_float_data(value);
    return proto;
  }

  std::string add_initializer(onnx::TensorProto proto) {
    initializers_[proto.name()] = graph_.initializer_size();
    *graph_.add_initializer() = std::move(proto);
    return graph_.initializer(graph_.initializer_size() - 1).name();
  }

  onnx::NodeProto& add_node(const std::string& op_type, const std::vector<std::string>& inputs, const std::string& output) {
    onnx::NodeProto& node = *graph_.add_node();
    node.set_op_type(op_type);
    node.set_name(builder_.fresh(output + "/" + op_type));
    for (const auto& input : inputs) node.add_input(input);
    node.add_output(output);
    return node;
  }

  const onnx::TensorProto* float_initializer(const std::string& name) const {
    auto found = initializers_.find(name);
    if (found == initializers_.end()) return nullptr;
    const auto& proto = graph_.initializer(found->second);
    return proto.data_type() == onnx::TensorProto_DataType_FLOAT ? &proto : nullptr;
  }

  // The quantization of a data operand: its own, or that of the quantized value it was moved
  // from unchanged (a channel shuffle's Gather, a Reshape), given a pair of its own.
  const ActivationQuant* data_quantization(onnx::NodeProto& node, int index) {
    if (auto found = quantization_.find(node.input(index)); found != quantization_.end()) return &found->second;
    std::string value = node.input(index);
    for (auto producer = producers_.find(value); producer != producers_.end() && passes_values_on(producer->second->op_type());
         producer = producers_.find(value)) {
      value = producer->second->input(0);
      const auto source = quantization_.find(dequantized_.count(value) ? dequantized_.at(value) : value);
      if (source != quantization_.end()) {
        const ActivationQuant quant = source->second;
        node.set_input(index, add_pair(node.input(index), quant));
        return &quantization_.at(node.input(index));
      }
    }
    return nullptr;
  }

  void quantize_weights(onnx::NodeProto& node) {
    int data = 0, weight = 1;
    int64_t axis = 0;
    if (node.op_type() == "Gemm") {
      axis = 0;
      for (const auto& attribute : node.attribute()) {
        if (attribute.name() == "transB") axis = attribute.i() ? 0 : 1;
      }
    } else if (node.op_type() == "MatMul") {
      untranspose_weight(node);
      if (float_initializer(node.input(1))) {
        axis = 1;
      } else if (float_initializer(node.input(0))) {
        data = 1, weight = 0, axis = -1;
      } else {
        return;  // a product of two activations: its operands' pairs are all it needs
      }
    }
    const onnx::TensorProto* weight_proto = float_initializer(node.input(weight));
    if (!weight_proto) return;
    const ir::Tensor values = read_float(*weight_proto);
    if (axis >= static_cast<int64_t>(values.shape.size())) return;
    const WeightQuant quant = int8_per_channel(values, axis);
    const std::string stem = node.input(weight);
    const std::vector<int64_t> channels = axis < 0 ? std::vector<int64_t>{} : std::vector<int64_t>{static_cast<int64_t>(quant.scales.size())};
    const std::string q = add_initializer(raw_tensor<int8_t>(builder_.fresh(stem + "/int8"), onnx::TensorProto_DataType_INT8, values.shape, quant.values));
    const std::string scale = add_initializer(float_tensor(stem + "/scale", channels, quant.scales));
    const std::string zero = add_initializer(raw_tensor<int8_t>(builder_.fresh(stem + "/zero_point"), onnx::TensorProto_DataType_INT8, channels,
                                                                    std::vector<int8_t>(quant.scales.size(), 0)));
    const std::string dequantized = builder_.fresh(stem + "/dq");
    onnx::NodeProto& dq = add_node("DequantizeLinear", {q, scale, zero}, dequantized);
    if (axis >= 0) set_attribute(dq, "axis", axis);
    node.set_input(weight, dequantized);

    // A bias at the scale of input times weight, as the integer kernels add it.
    const ActivationQuant* input = data_quantization(node, data);
    if (!input || axis < 0 || node.input_size() < 3 || node.op_type() == "MatMul") return;
    const onnx::TensorProto* bias_proto = float_initializer(node.input(2));
    if (!bias_proto) return;
    const ir::Tensor bias = read_float(*bias_proto);
    if (bias.shape.size() != 1 || bias.data.size() != quant.scales.size()) return;
    std::vector<float> bias_scales;
    std::vector<int32_t> bias_values;
    for (size_t c = 0; c < bias.data.size(); ++c) {
      const double step = static_cast<double>(input->scale) * quant.scales[c];
      bias_scales.push_back(static_cast<float>(step));
      bias_values.push_back(static_cast<int32_t>(std::clamp(std::nearbyint(bias.data[c] / step), double{INT_MIN}, double{INT_MAX})));
    }
    const std::string bias_stem = node.input(2);
    const std::string bias_q = add_initializer(raw_tensor<int32_t>(builder_.fresh(bias_stem + "/int32"), onnx::TensorProto_DataType_INT32, bias.shape, bias_values));
    const std::string bias_scale = add_initializer(float_tensor(bias_stem + "/scale", channels, bias_scales));
    const std::string bias_zero = add_initializer(raw_tensor<int32_t>(builder_.fresh(bias_stem + "/zero_point"), onnx::TensorProto_DataType_INT32, channels,
                                                                          std::vector<int32_t>(bias_values.size(), 0)));
    const std::string bias_dequantized = builder_.fresh(bias_stem + "/dq");
    set_attribute(add_node("DequantizeLinear", {bias_q, bias_scale, bias_zero}, bias_dequantized), "axis", int64_t{0});
    node.set_input(2, bias_dequantized);
  }

  onnx::TensorProto float_tensor(const std::string& stem, const std::vector<int64_t>& shape, const std::vector<float>& values) {
    return raw_tensor<float>(builder_.fresh(stem), onnx::TensorProto_DataType_FLOAT, shape, values);
  }

  // MatMul(X, Transpose(W)) as the export writes a weight stored W[n, k]: the weight transposed
  // once here, so that the product reads an initializer the QDQ transformer can take.
  void untranspose_weight(onnx::NodeProto& node) {
    auto producer = producers_.find(node.input(1));
    if (producer == producers_.end() || producer->second->op_type() != "Transpose") return;
    const onnx::TensorProto* stored = float_initializer(producer->second->input(0));
    if (!stored || stored->dims_size() != 2) return;
    for (const auto& attribute : producer->second->attribute()) {
      if (attribute.name() == "perm" && !(attribute.ints_size() == 2 && attribute.ints(0) == 1 && attribute.ints(1) == 0)) return;
    }
    const ir::Tensor w = read_float(*stored);
    const int64_t rows = w.shape[0], columns = w.shape[1];
    std::vector<float> transposed(w.data.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < columns; ++c) transposed[static_cast<size_t>(c * rows + r)] = w.data[static_cast<size_t>(r * columns + c)];
    }
    node.set_input(1, add_initializer(float_tensor(stored->name() + "/transposed", {columns, rows}, transposed)));
  }

  // Nodes whose outputs nothing reads any more (a weight's Transpose), and initializers no node
  // reads (the fp32 weights the int8 ones replaced).
  void remove_unread_nodes() {
    for (bool removed = true; removed;) {
      removed = false;
      std::set<std::string> read;
      for (const auto& output : graph_.output()) read.insert(output.name());
      for (const auto& node : graph_.node()) read.insert(node.input().begin(), node.input().end());
      auto* nodes = graph_.mutable_node();
      for (int i = nodes->size() - 1; i >= 0; --i) {
        const auto& outputs = nodes->Get(i).output();
        if (std::none_of(outputs.begin(), outputs.end(), [&](const std::string& output) { return read.count(output); })) {
          nodes->DeleteSubrange(i, 1);
          removed = true;
        }
      }
      if (!removed) {
        auto* initializers = graph_.mutable_initializer();
        for (int i = initializers->size() - 1; i >= 0; --i) {
          if (!read.count(initializers->Get(i).name())) initializers->DeleteSubrange(i, 1);
        }
      }
    }
  }

  onnx::GraphProto& graph_;
  const QuantPlan& plan_;
  lowering::OnnxBuilder builder_;
  std::map<std::string, bool> int8_nodes_;
  std::map<std::string, int> initializers_;
  std::map<std::string, const onnx::NodeProto*> producers_;  // in the fp32 export
  std::map<std::string, std::string> dequantized_;            // value -> its DequantizeLinear output
  std::map<std::string, ActivationQuant> quantization_;       // DequantizeLinear output -> its quantization
};

}  // namespace

void write_qdq_onnx(const graph::Graph& graph, const QuantPlan& plan, const std::filesystem::path& path) {
  onnx::ModelProto model = graph::to_onnx(graph);
  QdqRewriter(*model.mutable_graph(), plan).run();
  graph::check_onnx(model);
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  if (!stream || !model.SerializeToOstream(&stream)) throw graph::GraphError("cannot write " + path.string());
}

}  // namespace gos::quant
