// The text notation's printer (grammar in docs/notation.md). Its output parses back to an equal
// operator, and printing that again gives the same text.
#include <algorithm>
#include <charconv>
#include <set>

#include "ir/ir.h"
#include "ir/parts.h"

namespace gos::ir {

namespace {

std::string format_float(float value) {
  char buffer[32];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, end);
}

std::string join_ints(const std::vector<int64_t>& values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + std::to_string(values[i]);
  return text;
}

// Prints terms in the given order: `2*h+r-1`, `-c`, `0`.
std::string print_terms(const std::vector<Affine::Term>& terms, int64_t constant) {
  std::string text;
  for (const auto& [name, coefficient] : terms) {
    if (coefficient < 0) {
      text += "-";
    } else if (!text.empty()) {
      text += "+";
    }
    int64_t magnitude = coefficient < 0 ? -coefficient : coefficient;
    if (magnitude != 1) text += std::to_string(magnitude) + "*";
    text += name;
  }
  if (constant != 0 || text.empty()) {
    if (constant >= 0 && !text.empty()) text += "+";
    text += std::to_string(constant);
  }
  return text;
}

// Orders a statement's subscript terms as a person writes them: output indices before reduction
// indices, each in binding order (`2*h+r-1`, not `r+2*h-1`).
class StatementPrinter {
 public:
  explicit StatementPrinter(const Statement& statement) {
    int rank = 0;
    for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
      for (const auto& index : *list) binding_order_[index.name] = rank++;
    }
  }

  std::string affine(const Affine& form) const {
    auto terms = form.terms();
    std::stable_sort(terms.begin(), terms.end(), [&](const auto& a, const auto& b) { return order(a.first) < order(b.first); });
    return print_terms(terms, form.constant_term());
  }

  std::string access(const Access& read) const {
    std::string text = read.tensor + "[";
    for (size_t i = 0; i < read.subscripts.size(); ++i) text += (i ? "," : "") + affine(read.subscripts[i]);
    return text + "]";
  }

 private:
  int order(const std::string& name) const {
    auto found = binding_order_.find(name);
    return found == binding_order_.end() ? 1 << 30 : found->second;
  }
  std::map<std::string, int> binding_order_;
};

std::string print_statement(const Statement& statement) {
  StatementPrinter printer(statement);
  std::string body;
  if (!statement.reduction_indices.empty()) {
    body += std::string(to_string(statement.reduction)) + "{";
    for (size_t i = 0; i < statement.reduction_indices.size(); ++i) {
      body += (i ? "," : "") + statement.reduction_indices[i].name;
    }
    body += "} ";
  }
  for (size_t i = 0; i < statement.factors.size(); ++i) body += (i ? " * " : "") + printer.access(statement.factors[i]);
  for (const auto& addend : statement.addends) body += " + " + printer.access(addend);
  if (statement.activation != Activation::None) body = std::string(to_string(statement.activation)) + "(" + body + ")";
  return printer.access(statement.output) + " = " + body;
}

std::string print_declaration(const TensorDecl& tensor) {
  std::string keyword = tensor.role == Role::Input ? "in" : tensor.role == Role::Param ? "param" : "const";
  std::string text = keyword + " " + tensor.name + "[" + join_ints(tensor.shape) + "]";
  if (tensor.role == Role::Const) {
    text += " = {";
    for (size_t i = 0; i < tensor.values->size(); ++i) text += (i ? ", " : "") + format_float((*tensor.values)[i]);
    text += "}";
  }
  return text;
}

Statement rename_indices(const Statement& statement, const std::map<std::string, std::string>& names) {
  auto rename_access = [&](const Access& access) {
    Access renamed{access.tensor, {}};
    for (const auto& subscript : access.subscripts) renamed.subscripts.push_back(subscript.rename(names));
    return renamed;
  };
  auto rename_list = [&](std::vector<IndexVar> list) {
    for (auto& index : list) {
      if (auto found = names.find(index.name); found != names.end()) index.name = found->second;
    }
    return list;
  };
  Statement renamed = statement;
  renamed.output = rename_access(statement.output);
  renamed.output_indices = rename_list(statement.output_indices);
  renamed.reduction_indices = rename_list(statement.reduction_indices);
  for (auto& factor : renamed.factors) factor = rename_access(factor);
  for (auto& addend : renamed.addends) addend = rename_access(addend);
  return renamed;
}

// The notation gives one extent per index name for the whole operator, while the IR binds indices
// per statement; a name reused with another extent is printed with a fresh suffix.
std::vector<Statement> with_consistent_extents(const std::vector<Statement>& statements,
                                               std::vector<IndexVar>& extents_in_order) {
  std::map<std::string, int64_t> extents;
  std::vector<Statement> printed;
  for (const auto& statement : statements) {
    std::set<std::string> local;
    for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
      for (const auto& index : *list) local.insert(index.name);
    }
    std::map<std::string, std::string> renames;
    for (const auto* list : {&statement.output_indices, &statement.reduction_indices}) {
      for (const auto& index : *list) {
        auto known = extents.find(index.name);
        if (known == extents.end() || known->second == index.extent) continue;
        for (int suffix = 2;; ++suffix) {
          std::string fresh = index.name + "_" + std::to_string(suffix);
          auto taken = extents.find(fresh);
          if (!local.count(fresh) && (taken == extents.end() || taken->second == index.extent)) {
            renames[index.name] = fresh;
            break;
          }
        }
      }
    }
    Statement renamed = renames.empty() ? statement : rename_indices(statement, renames);
    for (const auto* list : {&renamed.output_indices, &renamed.reduction_indices}) {
      for (const auto& index : *list) {
        if (extents.emplace(index.name, index.extent).second) extents_in_order.push_back(index);
      }
    }
    printed.push_back(std::move(renamed));
  }
  return printed;
}

}  // namespace

std::string print(const Affine& affine) {
  auto terms = affine.terms();
  std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) {
    return std::abs(a.second) > std::abs(b.second);
  });
  return print_terms(terms, affine.constant_term());
}

std::string shape_text(const std::vector<int64_t>& shape) { return "[" + join_ints(shape) + "]"; }

std::string print(const Statement& statement) { return print_statement(statement); }

std::string print(const OpExpr& op) { return detail::print_parts({op.tensors(), op.statements()}); }

namespace detail {

std::string print_parts(const Parts& parts) {
  std::vector<IndexVar> extents;
  auto statements = with_consistent_extents(parts.statements, extents);
  std::string text;
  for (size_t i = 0; i < statements.size(); ++i) text += (i ? "; " : "") + print_statement(statements[i]);
  std::vector<std::string> clauses;
  for (const auto& index : extents) clauses.push_back(index.name + "<" + std::to_string(index.extent));
  for (const auto& tensor : declared_tensors(parts.tensors)) clauses.push_back(print_declaration(tensor));
  text += " where ";
  for (size_t i = 0; i < clauses.size(); ++i) text += (i ? ", " : "") + clauses[i];
  return text;
}

}  // namespace detail

}  // namespace gos::ir
