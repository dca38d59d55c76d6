// Every TorchFn and every activation once: its eager libtorch implementation next to its
// TorchScript spelling, so the two cannot drift apart.
#include "lowering/torch_functions.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace gos::lowering {

namespace {

// ---- Arguments ------------------------------------------------------------------------------------

// Typed access to a call's arguments during an eager run.
class CallArgs {
 public:
  CallArgs(const TorchCall& call, const TorchContext& context) : call_(call), context_(context) {}

  const torch::Tensor& tensor(size_t i) const { return context_.lookup(get<ValueRef>(i)); }
  torch::Tensor optional_tensor(size_t i) const {
    return std::holds_alternative<std::monostate>(arg(i)) ? torch::Tensor() : tensor(i);
  }
  std::vector<torch::Tensor> tensors(size_t i) const {
    std::vector<torch::Tensor> list;
    for (const auto& ref : get<std::vector<ValueRef>>(i)) list.push_back(context_.lookup(ref));
    return list;
  }
  std::vector<int64_t> ints(size_t i) const {
    if (const auto* runtime = std::get_if<RuntimeSizes>(&arg(i))) {
      std::vector<int64_t> sizes = runtime->sizes;
      for (const auto& [position, dimension] : runtime->copied) sizes[position] = context_.lookup(runtime->source).size(dimension);
      return sizes;
    }
    return get<std::vector<int64_t>>(i);
  }
  int64_t integer(size_t i) const { return get<int64_t>(i); }
  const std::vector<double>& reals(size_t i) const { return get<std::vector<double>>(i); }
  double real(size_t i) const { return get<double>(i); }
  bool flag(size_t i) const { return get<bool>(i); }
  const std::string& text(size_t i) const { return get<std::string>(i); }
  ir::Activation activation(size_t i) const { return get<ir::Activation>(i); }
  bool training() const { return context_.training; }

 private:
  const TorchArg& arg(size_t i) const { return call_.args.at(i); }
  template <typename T>
  const T& get(size_t i) const {
    if (const T* found = std::get_if<T>(&arg(i))) return *found;
    throw std::logic_error("torch call " + call_.result + ": argument " + std::to_string(i) + " has the wrong kind");
  }
  const TorchCall& call_;
  const TorchContext& context_;
};

// ---- Activations ----------------------------------------------------------------------------------

struct TorchActivation {
  const char* script;  // {0} is the operand
  torch::Tensor (*eager)(const torch::Tensor&);
};

const TorchActivation& torch_activation(ir::Activation activation) {
  using A = ir::Activation;
  static const std::map<A, TorchActivation> table{
      {A::None, {"{0}", [](const torch::Tensor& x) { return x; }}},
      {A::Relu, {"torch.relu({0})", [](const torch::Tensor& x) { return torch::relu(x); }}},
      {A::Relu6, {"torch.hardtanh({0}, 0.0, 6.0)", [](const torch::Tensor& x) { return torch::hardtanh(x, 0.0, 6.0); }}},
      {A::Sigmoid, {"torch.sigmoid({0})", [](const torch::Tensor& x) { return torch::sigmoid(x); }}},
      {A::Silu, {"torch.silu({0})", [](const torch::Tensor& x) { return torch::silu(x); }}},
      {A::HardSwish, {"torch.hardswish({0})", [](const torch::Tensor& x) { return torch::hardswish(x); }}},
      {A::HardSigmoid, {"torch.hardsigmoid({0})", [](const torch::Tensor& x) { return torch::hardsigmoid(x); }}},
      {A::Gelu, {"torch.gelu({0}, approximate=\"none\")", [](const torch::Tensor& x) { return torch::gelu(x, "none"); }}},
      {A::Tanh, {"torch.tanh({0})", [](const torch::Tensor& x) { return torch::tanh(x); }}},
  };
  return table.at(activation);
}

// ---- Functions ------------------------------------------------------------------------------------

struct TorchFunction {
  const char* script;  // TorchScript expression; {i} is argument i
  torch::Tensor (*eager)(const CallArgs&);
};

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

torch::Tensor masked_max(const torch::Tensor& x, const torch::Tensor& mask, const std::vector<int64_t>& dims) {
  torch::Tensor maximum = torch::amax(x.masked_fill(mask == 0, kNegativeInfinity), dims);
  return maximum.masked_fill(torch::amax(mask, dims) == 0, 0.0);
}

// The batch and the flat positions of one sample: dimension 0 survives the gather.
torch::Tensor gather_per_sample(const torch::Tensor& x, const torch::Tensor& table, const std::vector<int64_t>& sizes) {
  return x.reshape({x.size(0), -1}).index_select(1, table).reshape(sizes);
}

static_assert(static_cast<int>(at::MemoryFormat::ChannelsLast) == 2, "the TorchScript spelling of ChannelsLast");

torch::Tensor mode_pad(const CallArgs& a, bool reflect) {
  const torch::Tensor& x = a.tensor(0);
  const std::vector<int64_t> pads = a.ints(1);
  switch (a.integer(2)) {
    case 1: return reflect ? torch::reflection_pad1d(x, pads) : torch::replication_pad1d(x, pads);
    case 2: return reflect ? torch::reflection_pad2d(x, pads) : torch::replication_pad2d(x, pads);
    case 3: return reflect ? torch::reflection_pad3d(x, pads) : torch::replication_pad3d(x, pads);
  }
  throw std::logic_error("torch pads 1 to 3 trailing axes in reflect or edge mode");
}

const TorchFunction& torch_function(TorchFn function) {
  using F = TorchFn;
  using A = const CallArgs&;
  static const std::map<TorchFn, TorchFunction> table{
      {F::ConstantPad, {"torch.constant_pad_nd({0}, {1}, {2})",
                        [](A a) { return torch::constant_pad_nd(a.tensor(0), a.ints(1), a.real(2)); }}},
      {F::Conv1d, {"torch.conv1d({0}, {1}, {2}, {3}, {4}, {5}, {6})", [](A a) {
                     return torch::conv1d(a.tensor(0), a.tensor(1), a.optional_tensor(2), a.ints(3), a.ints(4), a.ints(5),
                                          a.integer(6));
                   }}},
      {F::Conv2d, {"torch.conv2d({0}, {1}, {2}, {3}, {4}, {5}, {6})", [](A a) {
                     return torch::conv2d(a.tensor(0), a.tensor(1), a.optional_tensor(2), a.ints(3), a.ints(4), a.ints(5),
                                          a.integer(6));
                   }}},
      {F::Linear, {"torch.linear({0}, {1}, {2})",
                   [](A a) { return torch::linear(a.tensor(0), a.tensor(1), a.optional_tensor(2)); }}},
      {F::Transpose, {"torch.t({0})", [](A a) { return a.tensor(0).t(); }}},
      {F::MatMul, {"torch.matmul({0}, {1})", [](A a) { return torch::matmul(a.tensor(0), a.tensor(1)); }}},
      {F::MaxPool1d, {"torch.max_pool1d({0}, {1}, {2}, {3}, {4}, {5})", [](A a) {
                        return torch::max_pool1d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.flag(5));
                      }}},
      {F::MaxPool2d, {"torch.max_pool2d({0}, {1}, {2}, {3}, {4}, {5})", [](A a) {
                        return torch::max_pool2d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.flag(5));
                      }}},
      {F::AvgPool1d, {"torch.avg_pool1d({0}, {1}, {2}, {3}, {4}, {5})", [](A a) {
                        return torch::avg_pool1d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.flag(4), a.flag(5));
                      }}},
      {F::AvgPool2d, {"torch.avg_pool2d({0}, {1}, {2}, {3}, {4}, {5})", [](A a) {
                        return torch::avg_pool2d(a.tensor(0), a.ints(1), a.ints(2), a.ints(3), a.flag(4), a.flag(5));
                      }}},
      {F::Narrow, {"torch.narrow({0}, {1}, {2}, {3})",
                   [](A a) { return a.tensor(0).narrow(a.integer(1), a.integer(2), a.integer(3)); }}},
      {F::Mean, {"torch.mean({0}, {1}, {2})", [](A a) { return torch::mean(a.tensor(0), a.ints(1), a.flag(2)); }}},
      {F::Activation, {"", [](A a) { return torch_activation(a.activation(1)).eager(a.tensor(0)); }}},
      {F::Identity, {"{0}", [](A a) { return a.tensor(0); }}},
      {F::Add, {"{0} + {1}", [](A a) { return a.tensor(0) + a.tensor(1); }}},
      {F::Sub, {"{0} - {1}", [](A a) { return a.tensor(0) - a.tensor(1); }}},
      {F::Mul, {"{0} * {1}", [](A a) { return a.tensor(0) * a.tensor(1); }}},
      {F::Div, {"{0} / {1}", [](A a) { return a.tensor(0) / a.tensor(1); }}},
      {F::Pow, {"torch.pow({0}, {1})", [](A a) { return torch::pow(a.tensor(0), a.tensor(1)); }}},
      {F::Scale, {"{0} * {1}", [](A a) { return a.tensor(0) * a.real(1); }}},
      {F::Sqrt, {"torch.sqrt({0})", [](A a) { return torch::sqrt(a.tensor(0)); }}},
      {F::Exp, {"torch.exp({0})", [](A a) { return torch::exp(a.tensor(0)); }}},
      {F::Erf, {"torch.erf({0})", [](A a) { return torch::erf(a.tensor(0)); }}},
      {F::Contiguous, {"{0}.contiguous()", [](A a) { return a.tensor(0).contiguous(); }}},
      // 2 is c10::MemoryFormat::ChannelsLast (asserted below): source compiled from C++ has no
      // `torch.` names to resolve.
      {F::ChannelsLast, {"{0}.contiguous(memory_format=2)",
                         [](A a) { return a.tensor(0).contiguous(at::MemoryFormat::ChannelsLast); }}},
      {F::AsStrided, {"torch.as_strided({0}, {1}, {2}, {0}.storage_offset() + {3})", [](A a) {
                        const torch::Tensor& x = a.tensor(0);
                        return x.as_strided(a.ints(1), a.ints(2), x.storage_offset() + a.integer(3));
                      }}},
      {F::Gather, {"torch.reshape(torch.index_select(torch.reshape({0}, [-1]), 0, {1}), {2})",
                   [](A a) { return a.tensor(0).reshape({-1}).index_select(0, a.tensor(1)).reshape(a.ints(2)); }}},
      {F::GatherPerSample,
       {"torch.reshape(torch.index_select(torch.reshape({0}, [{0}.size(0), -1]), 1, {1}), {2})",
        [](A a) { return gather_per_sample(a.tensor(0), a.tensor(1), a.ints(2)); }}},
      {F::OnesLike, {"torch.ones_like({0})", [](A a) { return torch::ones_like(a.tensor(0)); }}},
      {F::Einsum, {"torch.einsum({0}, {1})", [](A a) { return torch::einsum(a.text(0), a.tensors(1)); }}},
      {F::Amax, {"torch.amax({0}, {1})", [](A a) { return torch::amax(a.tensor(0), a.ints(1)); }}},
      {F::MaskedMax,
       {"torch.masked_fill(torch.amax(torch.masked_fill({0}, {1} == 0.0, float('-inf')), {2}), "
        "torch.amax({1}, {2}) == 0.0, 0.0)",
        [](A a) { return masked_max(a.tensor(0), a.tensor(1), a.ints(2)); }}},
      {F::Reshape, {"torch.reshape({0}, {1})", [](A a) { return a.tensor(0).reshape(a.ints(1)); }}},
      {F::Expand, {"{0}.expand({1})", [](A a) { return a.tensor(0).expand(a.ints(1)); }}},
      {F::Flatten, {"torch.flatten(torch.flatten({0}, {1}), 0, {2})",
                    [](A a) { return a.tensor(0).flatten(a.integer(1)).flatten(0, a.integer(2)); }}},
      {F::Permute, {"{0}.permute({1})", [](A a) { return a.tensor(0).permute(a.ints(1)); }}},
      {F::Cat, {"torch.cat({0}, {1})", [](A a) { return torch::cat(a.tensors(0), a.integer(1)); }}},
      {F::Slice, {"torch.slice({0}, {1}, {2}, {3}, {4})", [](A a) {
                    return a.tensor(0).slice(a.integer(1), a.integer(2), a.integer(3), a.integer(4));
                  }}},
      {F::Flip, {"torch.flip({0}, {1})", [](A a) { return torch::flip(a.tensor(0), a.ints(1)); }}},
      {F::Squeeze, {"torch.squeeze({0}, {1})", [](A a) { return a.tensor(0).squeeze(a.integer(1)); }}},
      {F::Unsqueeze, {"torch.unsqueeze({0}, {1})", [](A a) { return a.tensor(0).unsqueeze(a.integer(1)); }}},
      {F::Softmax, {"torch.softmax({0}, {1})", [](A a) { return torch::softmax(a.tensor(0), a.integer(1)); }}},
      {F::LogSoftmax, {"torch.log_softmax({0}, {1})", [](A a) { return torch::log_softmax(a.tensor(0), a.integer(1)); }}},
      {F::LayerNorm, {"torch.layer_norm({0}, {1}, {2}, {3}, {4})", [](A a) {
                        return torch::layer_norm(a.tensor(0), a.ints(1), a.optional_tensor(2), a.optional_tensor(3),
                                                 a.real(4));
                      }}},
      // Exported TorchScript is for inference: it always normalises with the running statistics.
      {F::BatchNorm, {"torch.batch_norm({0}, {1}, {2}, {3}, {4}, False, {5}, {6}, False)", [](A a) {
                        return torch::batch_norm(a.tensor(0), a.tensor(1), a.tensor(2), a.tensor(3), a.tensor(4),
                                                 a.training(), a.real(5), a.real(6), /*cudnn_enabled=*/false);
                      }}},
      {F::InstanceNorm, {"torch.instance_norm({0}, {1}, {2}, None, None, True, 0.1, {3}, False)", [](A a) {
                           return torch::instance_norm(a.tensor(0), a.tensor(1), a.tensor(2), {}, {}, true, 0.1, a.real(3), false);
                         }}},
      {F::LeakyRelu, {"torch.leaky_relu({0}, {1})", [](A a) { return torch::leaky_relu(a.tensor(0), a.real(1)); }}},
      {F::Elu, {"torch.elu({0}, {1}, {2})", [](A a) { return torch::elu(a.tensor(0), a.real(1), a.real(2)); }}},
      {F::Softplus, {"torch.softplus({0}, 1, 20)", [](A a) { return torch::softplus(a.tensor(0), 1, 20); }}},
      {F::PRelu, {"torch.where({0} < 0.0, {0} * {1}, {0})",
                  [](A a) { return torch::where(a.tensor(0) < 0.0, a.tensor(0) * a.tensor(1), a.tensor(0)); }}},
      // The pad's name carries the number of axes: torch.reflection_pad2d for {2} = 2.
      {F::ReflectionPad, {"torch.reflection_pad{2}d({0}, {1})", [](A a) { return mode_pad(a, true); }}},
      {F::ReplicationPad, {"torch.replication_pad{2}d({0}, {1})", [](A a) { return mode_pad(a, false); }}},
      {F::IndexSelect, {"torch.index_select({0}, {1}, torch.tensor({2}))",
                        [](A a) { return a.tensor(0).index_select(a.integer(1), torch::tensor(a.ints(2))); }}},
      {F::Lerp, {"torch.lerp(torch.index_select({0}, {1}, torch.tensor({2})), torch.index_select({0}, {1}, torch.tensor({3})), "
                 "torch.reshape(torch.tensor({4}), {5}))",
                 [](A a) {
                   const torch::Tensor& x = a.tensor(0);
                   const auto weights = torch::tensor(a.reals(4), torch::kFloat).reshape(a.ints(5));
                   return torch::lerp(x.index_select(a.integer(1), torch::tensor(a.ints(2))),
                                      x.index_select(a.integer(1), torch::tensor(a.ints(3))), weights);
                 }}},
  };
  auto found = table.find(function);
  if (found == table.end()) throw std::logic_error("torch function " + std::to_string(static_cast<int>(function)) + " has no implementation");
  return found->second;
}

// ---- TorchScript spelling of arguments --------------------------------------------------------------

std::string script_real(double number) {
  if (std::isnan(number)) return "float('nan')";
  if (std::isinf(number)) return number > 0 ? "float('inf')" : "float('-inf')";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", number);
  std::string literal = text;
  if (literal.find_first_of(".e") == std::string::npos) literal += ".0";
  return literal;
}

template <typename Items, typename Spell>
std::string script_list(const Items& items, Spell spell) {
  std::string text = "[";
  for (size_t i = 0; i < items.size(); ++i) text += (i ? ", " : "") + spell(items[i]);
  return text + "]";
}

std::string script_argument(const TorchArg& arg, const ScriptNames& name) {
  struct Spell {
    const ScriptNames& name;
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(const ValueRef& ref) const { return name(ref); }
    std::string operator()(const std::vector<ValueRef>& refs) const { return script_list(refs, name); }
    std::string operator()(int64_t number) const { return std::to_string(number); }
    std::string operator()(double number) const { return script_real(number); }
    std::string operator()(bool flag) const { return flag ? "True" : "False"; }
    std::string operator()(const std::vector<int64_t>& numbers) const {
      return script_list(numbers, [](int64_t number) { return std::to_string(number); });
    }
    std::string operator()(const RuntimeSizes& runtime) const {
      std::vector<std::string> entries;
      for (size_t i = 0; i < runtime.sizes.size(); ++i) {
        auto copied = runtime.copied.find(i);
        entries.push_back(copied == runtime.copied.end() ? std::to_string(runtime.sizes[i])
                                                         : name(runtime.source) + ".size(" + std::to_string(copied->second) + ")");
      }
      return script_list(entries, [](const std::string& entry) { return entry; });
    }
    std::string operator()(const std::string& text) const { return "\"" + text + "\""; }
    std::string operator()(ir::Activation activation) const { return std::string(ir::to_string(activation)); }
    std::string operator()(const std::vector<double>& numbers) const { return script_list(numbers, script_real); }
  };
  return std::visit(Spell{name}, arg);
}

// Replaces each {i} in `pattern` by arguments[i].
std::string fill(std::string_view pattern, const std::vector<std::string>& arguments) {
  std::string text;
  for (size_t i = 0; i < pattern.size(); ++i) {
    size_t close = pattern.find('}', i);
    if (pattern[i] == '{' && close != std::string_view::npos) {
      text += arguments.at(std::stoul(std::string(pattern.substr(i + 1, close - i - 1))));
      i = close;
    } else {
      text += pattern[i];
    }
  }
  return text;
}

}  // namespace

torch::Tensor run_call(const TorchCall& call, const TorchContext& context) {
  return torch_function(call.function).eager(CallArgs(call, context));
}

std::string script_expression(const TorchCall& call, const ScriptNames& name) {
  std::vector<std::string> arguments;
  for (const auto& arg : call.args) arguments.push_back(script_argument(arg, name));
  if (call.function == TorchFn::Activation) {
    return fill(torch_activation(std::get<ir::Activation>(call.args.at(1))).script, arguments);
  }
  return fill(torch_function(call.function).script, arguments);
}

}  // namespace gos::lowering
