#pragma once
// Seeded random specs for every operator constructor, with one-line descriptions and builders:
// shared by the torch comparison (ops_torch_test.cpp) and the cost and round-trip tests
// (ops_test.cpp). Sizes stay small (channels <= 6, spatial <= 9, batch <= 2) so that the naive
// interpreter is fast, and every spec is valid: pooling pads at most half the kernel (torch's
// rule) and inputs at least as long as the dilated kernel, so every window reads some input.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "ir/ops.h"

namespace gos::ir::test_specs {

// ---- Random specs -------------------------------------------------------------------------------

class Random {
 public:
  explicit Random(uint32_t seed) : engine_(seed) {}
  int64_t between(int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(engine_); }
  bool coin() { return between(0, 1) == 1; }
  float normal(float stddev) { return std::normal_distribution<float>(0.0f, stddev)(engine_); }
  float uniform(float low, float high) { return std::uniform_real_distribution<float>(low, high)(engine_); }
  template <typename T>
  T pick(const std::vector<T>& choices) {
    return choices[between(0, static_cast<int64_t>(choices.size()) - 1)];
  }

 private:
  std::mt19937 engine_;
};

// Every activation but None.
inline const std::vector<Activation> kActivations{
    Activation::Relu,      Activation::Relu6,       Activation::Sigmoid, Activation::Silu,
    Activation::HardSwish, Activation::HardSigmoid, Activation::Gelu,    Activation::Tanh};

inline Activation random_activation(Random& random) {
  return random.coin() ? Activation::None : random.pick(kActivations);
}

// A channel count divisible by `groups`, at most 6 unless groups forces more.
inline int64_t grouped_channels(Random& random, int64_t groups) {
  return groups * random.between(1, std::max<int64_t>(1, 6 / groups));
}

// One spatial dimension of a window: kernel, stride, dilation, pads and an input at least as long
// as the dilated kernel, so every window reads some input (torch's pooling requirement too).
struct RandomWindow {
  int64_t input, kernel, stride, dilation, pad_begin, pad_end;
};

inline RandomWindow random_window(Random& random, bool dilate, bool symmetric_pads) {
  RandomWindow window{};
  window.kernel = random.between(1, 4);
  window.stride = random.between(1, 3);
  window.dilation = dilate ? random.between(1, 2) : 1;
  window.pad_begin = random.between(0, window.kernel / 2);  // torch: padding at most half the kernel
  window.pad_end = symmetric_pads ? window.pad_begin : random.between(0, window.kernel / 2);
  window.input = random.between(window.dilation * (window.kernel - 1) + 1, 9);
  return window;
}

inline Conv2dSpec random_conv2d(Random& random) {
  Conv2dSpec spec;
  spec.batch = random.between(1, 2);
  spec.groups = random.pick<int64_t>({1, 1, 2, 3});
  spec.in_channels = grouped_channels(random, spec.groups);
  spec.out_channels = grouped_channels(random, spec.groups);
  const bool symmetric = random.coin();
  for (size_t axis = 0; axis < 2; ++axis) {
    RandomWindow window = random_window(random, /*dilate=*/true, symmetric);
    // Convolution allows any padding; let the pads reach past half the kernel now and then.
    window.pad_begin += random.between(0, 1);
    spec.input_size[axis] = window.input;
    spec.kernel[axis] = window.kernel;
    spec.stride[axis] = window.stride;
    spec.dilation[axis] = window.dilation;
    spec.padding[axis] = window.pad_begin;
    spec.padding[axis + 2] = window.pad_end;
  }
  spec.bias = random.coin();
  spec.activation = random_activation(random);
  if (spec.groups > 1) spec.shuffle = random.coin();
  return spec;
}

inline Conv1dSpec random_conv1d(Random& random) {
  Conv1dSpec spec;
  spec.batch = random.between(1, 2);
  spec.groups = random.pick<int64_t>({1, 1, 2, 3});
  spec.in_channels = grouped_channels(random, spec.groups);
  spec.out_channels = grouped_channels(random, spec.groups);
  RandomWindow window = random_window(random, /*dilate=*/true, random.coin());
  spec.input_length = window.input;
  spec.kernel = window.kernel;
  spec.stride = window.stride;
  spec.dilation = window.dilation;
  spec.padding = {window.pad_begin + random.between(0, 1), window.pad_end};
  spec.bias = random.coin();
  spec.activation = random_activation(random);
  if (spec.groups > 1) spec.shuffle = random.coin();
  return spec;
}

struct DepthwiseCase {
  Conv2dSpec spec;  // groups and out_channels are derived by depthwise_conv2d
  int64_t multiplier = 1;
};

inline DepthwiseCase random_depthwise(Random& random) {
  DepthwiseCase depthwise{random_conv2d(random), random.between(1, 3)};
  depthwise.spec.in_channels = random.between(1, 6);
  depthwise.spec.groups = depthwise.spec.in_channels;
  depthwise.spec.out_channels = depthwise.spec.in_channels * depthwise.multiplier;
  depthwise.spec.shuffle = false;  // one channel per group: nothing to shuffle
  return depthwise;
}

inline LinearSpec random_linear(Random& random) {
  LinearSpec spec;
  spec.batch = random.between(1, 4);
  spec.in_features = random.between(1, 8);
  spec.out_features = random.between(1, 8);
  spec.trans_a = random.coin();
  spec.trans_b = random.coin();
  spec.bias = random.coin();
  spec.activation = random_activation(random);
  return spec;
}

inline MatMulSpec random_matmul(Random& random) {
  MatMulSpec spec;
  for (int64_t dim = random.between(0, 2); dim > 0; --dim) spec.batch_dims.push_back(random.between(1, 3));
  spec.m = random.between(1, 6);
  spec.k = random.between(1, 6);
  spec.n = random.between(1, 6);
  switch (random.between(0, 2)) {
    case 0: break;
    case 1: spec.weight_rhs = true, spec.weight_transposed = random.coin(), spec.bias = random.coin(); break;
    case 2: spec.weight_lhs = true, spec.bias = random.coin(); break;
  }
  return spec;
}

inline PoolSpec random_pool(Random& random, bool dilate) {
  PoolSpec spec;
  spec.batch = random.between(1, 2);
  spec.channels = random.between(1, 4);
  const size_t rank = random.between(1, 2);
  const bool symmetric = random.coin();
  spec.input_size = spec.kernel = spec.stride = {};
  std::vector<int64_t> begins, ends;
  for (size_t axis = 0; axis < rank; ++axis) {
    RandomWindow window = random_window(random, dilate, symmetric);
    spec.input_size.push_back(window.input);
    spec.kernel.push_back(window.kernel);
    spec.stride.push_back(window.stride);
    if (dilate) spec.dilation.push_back(window.dilation);
    begins.push_back(window.pad_begin);
    ends.push_back(window.pad_end);
  }
  spec.padding = begins;
  spec.padding.insert(spec.padding.end(), ends.begin(), ends.end());
  spec.ceil_mode = random.coin();
  spec.count_include_pad = !dilate && random.coin();
  return spec;
}

struct MaxPoolCase {
  PoolSpec spec;
};
struct AveragePoolCase {
  PoolSpec spec;
};
inline MaxPoolCase random_max_pool(Random& random) { return {random_pool(random, /*dilate=*/true)}; }
inline AveragePoolCase random_average_pool(Random& random) { return {random_pool(random, /*dilate=*/false)}; }

struct GlobalPoolCase {
  int64_t batch, channels;
  std::vector<int64_t> spatial;
  bool keep_dims;
};

inline GlobalPoolCase random_global_pool(Random& random) {
  GlobalPoolCase pool{random.between(1, 2), random.between(1, 6), {}, random.coin()};
  for (int64_t dim = random.between(1, 3); dim > 0; --dim) pool.spatial.push_back(random.between(1, 7));
  return pool;
}

struct ElementwiseCase {
  std::vector<int64_t> shape;
  Activation activation;
  bool residual;  // add(X, Z) rather than activation(X)
};

inline std::vector<int64_t> random_shape(Random& random) {
  std::vector<int64_t> shape;
  for (int64_t dim = random.between(1, 5); dim > 0; --dim) shape.push_back(random.between(1, 4));
  return shape;
}

// Cycles through the activations so that each gets an equal share of the cases.
inline ElementwiseCase random_activation_case(Random& random, int case_index) {
  return {random_shape(random), kActivations[case_index % kActivations.size()], false};
}
inline ElementwiseCase random_add_case(Random& random, int) {
  return {random_shape(random), random_activation(random), true};
}

inline BatchNormParams random_batch_norm(Random& random, int64_t channels) {
  BatchNormParams bn;
  for (int64_t k = 0; k < channels; ++k) {
    bn.gamma.push_back(random.uniform(0.5f, 1.5f) * (random.coin() ? 1.0f : -1.0f));
    bn.beta.push_back(random.normal(1.0f));
    bn.mean.push_back(random.normal(1.0f));
    bn.var.push_back(random.uniform(0.1f, 2.0f));
  }
  bn.epsilon = random.pick<float>({1e-5f, 1e-3f});
  return bn;
}

template <typename BaseSpec>
struct FoldCase {
  BaseSpec base;
  BatchNormParams bn;
};

inline FoldCase<Conv2dSpec> random_fold_conv(Random& random) {
  Conv2dSpec base = random_conv2d(random);
  base.activation = Activation::None;  // the normalisation comes before any activation
  return {base, random_batch_norm(random, base.out_channels)};
}

inline FoldCase<LinearSpec> random_fold_linear(Random& random) {
  LinearSpec base = random_linear(random);
  base.activation = Activation::None;
  return {base, random_batch_norm(random, base.out_features)};
}

// ---- Descriptions -------------------------------------------------------------------------------

template <typename Container>
inline std::string join(const Container& values, const char* separator = ",") {
  std::string text;
  for (const auto& value : values) text += (text.empty() ? "" : separator) + std::to_string(value);
  return text;
}

inline std::string flag(bool value) { return value ? "1" : "0"; }

inline std::string describe(const Conv2dSpec& spec) {
  return "conv2d batch=" + std::to_string(spec.batch) + " in=" + std::to_string(spec.in_channels) +
         " out=" + std::to_string(spec.out_channels) + " input=" + join(spec.input_size, "x") +
         " kernel=" + join(spec.kernel, "x") + " stride=" + join(spec.stride, "x") +
         " padding=" + join(spec.padding) + " dilation=" + join(spec.dilation, "x") +
         " groups=" + std::to_string(spec.groups) + " bias=" + flag(spec.bias) +
         " act=" + std::string(to_string(spec.activation));
}

inline std::string describe(const Conv1dSpec& spec) {
  return "conv1d batch=" + std::to_string(spec.batch) + " in=" + std::to_string(spec.in_channels) +
         " out=" + std::to_string(spec.out_channels) + " length=" + std::to_string(spec.input_length) +
         " kernel=" + std::to_string(spec.kernel) + " stride=" + std::to_string(spec.stride) +
         " padding=" + join(spec.padding) + " dilation=" + std::to_string(spec.dilation) +
         " groups=" + std::to_string(spec.groups) + " bias=" + flag(spec.bias) +
         " act=" + std::string(to_string(spec.activation));
}

inline std::string describe(const DepthwiseCase& depthwise) {
  return "depthwise multiplier=" + std::to_string(depthwise.multiplier) + " of " + describe(depthwise.spec);
}

inline std::string describe(const LinearSpec& spec) {
  return "linear batch=" + std::to_string(spec.batch) + " in=" + std::to_string(spec.in_features) +
         " out=" + std::to_string(spec.out_features) + " trans_a=" + flag(spec.trans_a) +
         " trans_b=" + flag(spec.trans_b) + " bias=" + flag(spec.bias) +
         " act=" + std::string(to_string(spec.activation));
}

inline std::string describe(const MatMulSpec& spec) {
  return "matmul batch_dims=[" + join(spec.batch_dims) + "] m=" + std::to_string(spec.m) +
         " k=" + std::to_string(spec.k) + " n=" + std::to_string(spec.n) + " weight_rhs=" + flag(spec.weight_rhs) +
         " weight_lhs=" + flag(spec.weight_lhs) + " weight_transposed=" + flag(spec.weight_transposed) +
         " bias=" + flag(spec.bias);
}

inline std::string describe(const PoolSpec& spec) {
  return "batch=" + std::to_string(spec.batch) + " channels=" + std::to_string(spec.channels) +
         " input=" + join(spec.input_size, "x") + " kernel=" + join(spec.kernel, "x") +
         " stride=" + join(spec.stride, "x") + " padding=" + join(spec.padding) +
         " dilation=" + join(spec.dilation, "x") + " ceil_mode=" + flag(spec.ceil_mode) +
         " count_include_pad=" + flag(spec.count_include_pad);
}

inline std::string describe(const MaxPoolCase& pool) { return "max_pool " + describe(pool.spec); }
inline std::string describe(const AveragePoolCase& pool) { return "average_pool " + describe(pool.spec); }

inline std::string describe(const GlobalPoolCase& pool) {
  return "global_average_pool batch=" + std::to_string(pool.batch) + " channels=" + std::to_string(pool.channels) +
         " spatial=" + join(pool.spatial, "x") + " keep_dims=" + flag(pool.keep_dims);
}

inline std::string describe(const ElementwiseCase& elementwise) {
  return std::string(elementwise.residual ? "add" : "activation") + " shape=" + join(elementwise.shape, "x") +
         " act=" + std::string(to_string(elementwise.activation));
}

template <typename BaseSpec>
inline std::string describe(const FoldCase<BaseSpec>& fold) {
  return "fold_batch_norm epsilon=" + std::to_string(fold.bn.epsilon) + " into " + describe(fold.base);
}

// ---- Building and binding -----------------------------------------------------------------------

// Random values for every input and param, spread wide enough to reach the activations' bends.
inline TensorMap random_bindings(const OpExpr& op, Random& random) {
  TensorMap bindings;
  for (const auto& tensor : op.tensors()) {
    if (tensor.role != Role::Input && tensor.role != Role::Param) continue;
    Tensor value(tensor.shape);
    for (float& element : value.data) element = random.normal(2.0f);
    bindings.emplace(tensor.name, std::move(value));
  }
  return bindings;
}

inline OpExpr build(const Conv2dSpec& spec) { return conv2d(spec); }
inline OpExpr build(const Conv1dSpec& spec) { return conv1d(spec); }
inline OpExpr build(const DepthwiseCase& depthwise) {
  return depthwise_conv2d(depthwise.spec, depthwise.multiplier);
}
inline OpExpr build(const LinearSpec& spec) { return linear(spec); }
inline OpExpr build(const MatMulSpec& spec) { return matmul(spec); }
inline OpExpr build(const MaxPoolCase& pool) { return max_pool(pool.spec); }
inline OpExpr build(const AveragePoolCase& pool) { return average_pool(pool.spec); }
inline OpExpr build(const GlobalPoolCase& pool) {
  return global_average_pool(pool.batch, pool.channels, pool.spatial, pool.keep_dims);
}
inline OpExpr build(const ElementwiseCase& elementwise) {
  return elementwise.residual ? add(elementwise.shape, elementwise.activation)
                              : activation(elementwise.shape, elementwise.activation);
}


// ---- Running cases ------------------------------------------------------------------------------

// Runs `check(case, random)` on `cases` seeded random cases of one kind, each traced with its kind,
// number, seed and spec; stops at the first failure, which says enough.
template <typename MakeCase, typename Check>
void for_each_case(std::string_view kind, uint32_t base_seed, int cases, MakeCase make_case, Check check) {
  for (int index = 0; index < cases; ++index) {
    const uint32_t seed = base_seed + static_cast<uint32_t>(index);
    Random random(seed);
    auto test_case = make_case(random, index);
    SCOPED_TRACE(std::string(kind) + " case " + std::to_string(index) + " (seed " + std::to_string(seed) +
                 "): " + describe(test_case));
    try {
      check(test_case, random);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "threw: " << error.what();
    }
    if (::testing::Test::HasFailure()) return;
  }
}

// Adapts a generator that needs no case index.
template <typename Case>
auto ignoring_index(Case (*generate)(Random&)) {
  return [generate](Random& random, int) { return generate(random); };
}

// The folded operator (its structure does not depend on the weights' values).
template <typename BaseSpec>
OpExpr build(const FoldCase<BaseSpec>& fold) {
  OpExpr base = build(fold.base);
  Random random(0);
  return fold_batch_norm(base, random_bindings(base, random), fold.bn).op;
}

}  // namespace gos::ir::test_specs
