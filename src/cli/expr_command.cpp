// `gos expr`: parse an operator written in the notation, print its canonical form and exact cost.
#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "ir/ir.h"

namespace gos::cli {

namespace {

struct ExprOptions {
  std::string expression;
  std::string extents;
  bool json = false;
};

nlohmann::json tensor_json(const ir::TensorDecl& tensor) {
  return {{"name", tensor.name}, {"role", std::string(ir::to_string(tensor.role))}, {"shape", tensor.shape}};
}

nlohmann::json expr_json(const ir::OpExpr& op, const ir::Cost& cost) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& tensor : op.tensors()) tensors.push_back(tensor_json(tensor));
  return {
      {"expr", ir::print(op)},
      {"canonical", op.canonical_key()},
      {"macs", cost.macs},
      {"params", cost.params},
      {"bytes", cost.bytes()},
      {"input_bytes", cost.input_bytes},
      {"weight_bytes", cost.weight_bytes},
      {"output_bytes", cost.output_bytes},
      {"intermediate_bytes", cost.intermediate_bytes},
      {"other_ops", cost.other_ops},
      {"arithmetic_intensity", cost.arithmetic_intensity()},
      {"tensors", tensors},
  };
}

void print_human(const ir::OpExpr& op, const ir::Cost& cost) {
  fmt::print("expression  {}\n", ir::print(op));
  fmt::print("canonical   {}\n", op.canonical_key());
  for (const auto& tensor : op.tensors()) {
    if (tensor.role == ir::Role::Intermediate) continue;
    fmt::print("{:<11} {} {}\n", ir::to_string(tensor.role), tensor.name, shape_text(tensor.shape));
  }
  fmt::print("MACs        {}\n", grouped(cost.macs));
  fmt::print("params      {}\n", grouped(cost.params));
  fmt::print("bytes       {} (inputs {}, weights {}, output {})\n", grouped(cost.bytes()), grouped(cost.input_bytes),
             grouped(cost.weight_bytes), grouped(cost.output_bytes));
  fmt::print("other ops   {} (additions, comparisons, epilogues without a learned multiply)\n", grouped(cost.other_ops));
  fmt::print("intensity   {:.2f} FLOP/byte\n", cost.arithmetic_intensity());
}

}  // namespace

Action add_expr_command(CLI::App& app) {
  auto options = std::make_shared<ExprOptions>();
  auto* command = app.add_subcommand("expr", "Parse an operator written as mathematical instructions; print its canonical form and exact cost");
  command->add_option("expression", options->expression, "e.g. \"Y[n,k] = sum{c} X[n,c] * W[k,c]\" (see docs/notation.md)")
      ->required();
  command->add_option("--extents", options->extents, "index extents and tensor declarations, e.g. \"n<1, k<64, c<32\"");
  command->add_flag("--json", options->json, "print one JSON object");
  return [options] {
    auto op = ir::parse(options->expression, options->extents);
    auto cost = ir::cost(op);
    if (options->json) {
      fmt::print("{}\n", expr_json(op, cost).dump(2));
    } else {
      print_human(op, cost);
    }
    return kSuccess;
  };
}

}  // namespace gos::cli
