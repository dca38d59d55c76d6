// Every operator kind and a set of hand-written generic statements, exported as ONNX and run by
// ONNX Runtime, equal the reference interpreter: through the recognised kernels, and again with
// every statement forced through the generic lowering. Each test exports its cases as one graph
// per lowering and runs both files in one ONNX Runtime process.
#include <gtest/gtest.h>

#include "graph/onnx_export_test_support.h"
#include "ir/ops_test_specs.h"

namespace gos::graph {
namespace {

using namespace ir::test_specs;
using namespace test_support;

constexpr int kCases = 30;

template <typename MakeCase>
std::vector<OpCase> random_cases(uint32_t base_seed, MakeCase make_case) {
  std::vector<OpCase> cases;
  for (int index = 0; index < kCases; ++index) {
    const uint32_t seed = base_seed + static_cast<uint32_t>(index);
    Random random(seed);
    auto spec = make_case(random, index);
    ir::OpExpr op = build(spec);
    ir::TensorMap bindings = random_bindings(op, random);
    cases.push_back({"seed " + std::to_string(seed) + ": " + describe(spec), op, bindings});
  }
  return cases;
}

// The cases have different batch sizes, so the files keep static shapes (graph tests run other
// batch sizes).
void expect_onnx_runtime_matches_interpreter(const std::vector<OpCase>& cases) {
  ScratchFolder folder;
  Graph graph = graph_of_cases(cases);
  const std::vector<std::pair<std::string, bool>> lowerings{{"kernels", true}, {"generic", false}};
  std::vector<OrtRun> runs;
  for (const auto& [name, kernels] : lowerings) {
    auto path = folder.file(name + ".onnx");
    write_onnx(graph, path, {.symbolic_batch = false, .recognise_kernels = kernels});
    runs.push_back({path, graph_inputs_of_cases(cases)});
  }
  auto results = run_onnx_runtime(runs);
  ASSERT_EQ(results.size(), lowerings.size());
  for (size_t run = 0; run < lowerings.size(); ++run) {
    ASSERT_EQ(results[run].error, "") << lowerings[run].first << " lowering";
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    ir::Tensor expected = ir::evaluate(cases[i].op, cases[i].bindings);
    for (size_t run = 0; run < lowerings.size(); ++run) {
      EXPECT_TRUE(close_to_reference(results[run].outputs.at(value_name(i, "Y")), expected))
          << lowerings[run].first << " lowering, case " << i << " (" << cases[i].label << ")\n"
          << ir::print(cases[i].op);
    }
  }
}

TEST(OnnxExportOps, Conv2d) { expect_onnx_runtime_matches_interpreter(random_cases(100, ignoring_index(random_conv2d))); }
TEST(OnnxExportOps, Conv1d) { expect_onnx_runtime_matches_interpreter(random_cases(200, ignoring_index(random_conv1d))); }
TEST(OnnxExportOps, DepthwiseConv) {
  expect_onnx_runtime_matches_interpreter(random_cases(300, ignoring_index(random_depthwise)));
}
TEST(OnnxExportOps, Linear) { expect_onnx_runtime_matches_interpreter(random_cases(400, ignoring_index(random_linear))); }
TEST(OnnxExportOps, MatMul) { expect_onnx_runtime_matches_interpreter(random_cases(500, ignoring_index(random_matmul))); }
TEST(OnnxExportOps, MaxPool) { expect_onnx_runtime_matches_interpreter(random_cases(600, ignoring_index(random_max_pool))); }
TEST(OnnxExportOps, AveragePool) {
  expect_onnx_runtime_matches_interpreter(random_cases(700, ignoring_index(random_average_pool)));
}
TEST(OnnxExportOps, GlobalAveragePool) {
  expect_onnx_runtime_matches_interpreter(random_cases(800, ignoring_index(random_global_pool)));
}
TEST(OnnxExportOps, Activations) { expect_onnx_runtime_matches_interpreter(random_cases(900, random_activation_case)); }
TEST(OnnxExportOps, ResidualAdds) { expect_onnx_runtime_matches_interpreter(random_cases(1000, random_add_case)); }
TEST(OnnxExportOps, FoldedBatchNorm) {
  auto cases = random_cases(1100, ignoring_index(random_fold_conv));
  auto linear = random_cases(1200, ignoring_index(random_fold_linear));
  cases.insert(cases.end(), linear.begin(), linear.end());
  expect_onnx_runtime_matches_interpreter(cases);
}

struct GenericCase {
  std::string label, text, extents;
};

// What rewrite rules produce and no kernel computes, plus the corners of the generic lowering.
const std::vector<GenericCase> kGenericStatements{
    {"depthwise-separable", "T[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * D[c,r,s]; Y[n,k,h,w] = relu(sum{c} T[n,c,h,w] * P[k,c])",
     "n<2, k<8, c<4, h<6, w<5, r<3, s<3, in X[2,4,6,5]"},
    {"shift with a one-hot table",
     "Y[n,c,h,w] = sum{r,s} X[n,c,h+r-1,w+s-1] * C[c,r,s]",
     "n<1, c<3, h<4, w<4, r<3, s<3, in X[1,3,4,4], const C[3,3,3] = {0,1,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,1, 0,0,0,1,0,0,0,0,0}"},
    {"grouped output", "Y[n,4*g+k,h,w] = sum{c} X[n,8*g+c,h,w] * W[g,k,c] + B[4*g+k]",
     "n<2, g<2, k<4, c<8, h<3, w<3, in X[2,16,3,3]"},
    {"window split into two statements",
     "T[n,c,h,w] = sum{r} X[n,c,2*h+r-1,w] * A[c,r]; Y[n,c,h,w] = gelu(sum{s} T[n,c,h,2*w+s-1] * B[c,s])",
     "n<1, c<3, h<4, w<3, r<3, s<3, in X[1,3,8,6]"},
    {"max over a window", "Y[n,c,h,w] = max{r,s} X[n,c,2*h+r-1,2*w+s-1]", "n<2, c<3, h<3, w<3, r<3, s<3, in X[2,3,6,6]"},
    {"weighted max over a window", "Y[n,c,h,w] = max{r,s} X[n,c,h+r-1,w+s-1] * M[c,r,s]",
     "n<1, c<2, h<4, w<4, r<3, s<3, in X[1,2,4,4]"},
    {"max whose windows can miss the input", "Y[n,h] = max{r} X[n,h+r-3]", "n<2, h<5, r<2, in X[2,3]"},
    {"channel shuffle read", "Y[n,4*g+k,h,w] = X[n,2*k+g,h,w]", "n<2, g<2, k<4, h<3, w<2, in X[2,8,3,2]"},
    {"flipped read", "Y[n,c,h] = X[n,c,5-h] + X[n,c,h]", "n<1, c<2, h<6, in X[1,2,6]"},
    {"constant subscripts and a scalar", "Y[n,k] = sum{c} X[n,c,1,2] * W[k,c] * S[]", "n<2, k<3, c<4, in X[2,4,3,3]"},
    {"strided sparse mixed radix", "Y[n,g,c] = tanh(X[n,16*g+2*c+1])", "n<1, g<3, c<4, in X[1,48]"},
    {"diagonal", "Y[n,i] = X[n,i,i] + Z[n,i]", "n<2, i<4, in X[2,4,4], in Z[2,4]"},
    {"index no factor reads", "Y[n,i,j] = sum{r} X[n,i] + B[j]", "n<2, i<3, j<4, r<5, in X[2,3]"},
    {"mean over a padded window", "Y[n,c,h] = mean{r} X[n,c,h+r-2] * V[r]", "n<1, c<2, h<5, r<4, in X[1,2,5]"},
    {"mean over tokens", "Y[n,c] = mean{t} X[n,t,c]", "n<2, t<7, c<3, in X[2,7,3]"},
    {"mean over two axes, one kept", "Y[n,t,u] = mean{c,w} X[n,c,t,u,w]", "n<1, c<3, t<2, u<1, w<4, in X[1,3,2,1,4]"},
    {"mean over a window", "Y[n,c] = mean{r} X[n,2*c+r]", "n<1, c<3, r<2, in X[1,6]"},
    {"mean keeping a unit axis", "Y[n,u,c] = mean{t} X[n,t,c]", "n<2, u<1, t<5, c<3, in X[2,5,3]"},
    {"mean into a unit axis elsewhere", "Y[n,c,u] = mean{t} X[n,t,c]", "n<2, u<1, t<5, c<3, in X[2,5,3]"},
    {"scalar output", "Y[] = sum{i,j} X[i,j] * W[j,i]", "i<3, j<4"},
    {"matmul with a transposed weight", "Y[b,m,n] = silu(sum{k} X[b,m,k] * W[n,k])", "b<2, m<3, n<4, k<5"},
};

// 28 indices: Einsum needs upper-case letters past the 26th.
GenericCase many_indices() {
  std::string outputs, reductions, extents;
  for (int i = 0; i < 14; ++i) {
    outputs += (i ? "," : "") + std::string("o") + std::to_string(i);
    reductions += (i ? "," : "") + std::string("r") + std::to_string(i);
    extents += "o" + std::to_string(i) + "<" + (i < 2 ? "2" : "1") + ", r" + std::to_string(i) + "<" + (i < 2 ? "2" : "1") + ", ";
  }
  return {"28 indices", "Y[" + outputs + "] = sum{" + reductions + "} X[" + outputs + "," + reductions + "]",
          extents.substr(0, extents.size() - 2)};
}

TEST(OnnxExportOps, HandWrittenGenericStatements) {
  std::vector<OpCase> cases;
  Random random(4242);
  auto statements = kGenericStatements;
  statements.push_back(many_indices());
  for (const auto& statement : statements) {
    ir::OpExpr op = ir::parse(statement.text, statement.extents);
    cases.push_back({statement.label, op, random_bindings(op, random)});
  }
  expect_onnx_runtime_matches_interpreter(cases);
}

}  // namespace
}  // namespace gos::graph
