// The text notation's parser (grammar and semantics in docs/notation.md): a lexer, a
// recursive-descent parser producing statements and clauses with source positions, and a
// resolution step that binds indices, infers undeclared tensors' roles and shapes and hands the
// result to OpExpr::make. Every syntax error names the column and what was expected.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "ir/ir.h"

namespace gos::ir {

namespace {

// Integers in the notation are extents, dimensions and coefficients; capping them keeps every sum
// and product the parser forms far from int64 overflow.
constexpr int64_t kMaxInteger = std::numeric_limits<int32_t>::max();

// The main text or the CLI's --extents string; errors in either report columns within it.
struct Source {
  std::string_view text;
  bool is_extents = false;
};

struct Location {
  const Source* source = nullptr;
  size_t column = 1;  // 1-based
};

std::string position_text(Location at) {
  return "column " + std::to_string(at.column) + (at.source->is_extents ? " of --extents" : "");
}

[[noreturn]] void fail(Location at, const std::string& message) {
  std::string prefix = at.source->is_extents ? "in --extents, column " : "column ";
  throw ParseError(prefix + std::to_string(at.column) + ": " + message, at.column);
}

// ---- Lexer -------------------------------------------------------------------------------------

enum class TokenKind { Name, Number, Symbol, End };

struct Token {
  TokenKind kind = TokenKind::End;
  std::string_view text;
  Location at;
};

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string quote_character(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
  return std::string("byte ") + hex;
}

// A number token runs over every character a number or a mistyped one (`2h`, `1.5.2`) could
// contain, so that the parser can report the whole malformed word, plus the sign of an exponent.
size_t number_length(std::string_view text, size_t start) {
  size_t end = start;
  while (end < text.size()) {
    char c = text[end];
    if ((c == 'e' || c == 'E') && end + 1 < text.size() && (text[end + 1] == '+' || text[end + 1] == '-')) {
      end += 2;
    } else if (is_name_char(c) || c == '.') {
      ++end;
    } else {
      break;
    }
  }
  return end - start;
}

std::vector<Token> tokenize(const Source& source) {
  constexpr std::string_view kSymbols = "[](){},;=+-*<";
  std::string_view text = source.text;
  std::vector<Token> tokens;
  size_t position = 0;
  while (position < text.size()) {
    char c = text[position];
    Location at{&source, position + 1};
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++position;
    } else if (is_name_start(c)) {
      size_t end = position;
      while (end < text.size() && is_name_char(text[end])) ++end;
      tokens.push_back({TokenKind::Name, text.substr(position, end - position), at});
      position = end;
    } else if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      size_t length = number_length(text, position);
      tokens.push_back({TokenKind::Number, text.substr(position, length), at});
      position += length;
    } else if (kSymbols.find(c) != std::string_view::npos) {
      tokens.push_back({TokenKind::Symbol, text.substr(position, 1), at});
      ++position;
    } else {
      fail(at, "unexpected character " + quote_character(c));
    }
  }
  tokens.push_back({TokenKind::End, {}, Location{&source, text.size() + 1}});
  return tokens;
}

std::string describe(const Token& token) {
  if (token.kind == TokenKind::End) return token.at.source->is_extents ? "the end of --extents" : "the end of the text";
  return "'" + std::string(token.text) + "'";
}

class TokenStream {
 public:
  explicit TokenStream(const Source& source) : tokens_(tokenize(source)) {}

  const Token& peek(size_t ahead = 0) const { return tokens_[std::min(position_ + ahead, tokens_.size() - 1)]; }
  Token next() {
    Token token = peek();
    if (position_ + 1 < tokens_.size()) ++position_;
    return token;
  }

  bool at_end() const { return peek().kind == TokenKind::End; }
  bool at_symbol(char symbol, size_t ahead = 0) const {
    const Token& token = peek(ahead);
    return token.kind == TokenKind::Symbol && token.text[0] == symbol;
  }
  bool at_name(size_t ahead = 0) const { return peek(ahead).kind == TokenKind::Name; }
  bool at_keyword(std::string_view keyword, size_t ahead = 0) const {
    return at_name(ahead) && peek(ahead).text == keyword;
  }

  bool accept(char symbol) {
    if (!at_symbol(symbol)) return false;
    next();
    return true;
  }

  // `purpose` completes "expected 'X' ...", e.g. "to close the subscripts of W".
  Token expect(char symbol, const std::string& purpose) {
    if (!at_symbol(symbol)) fail_expecting(std::string("'") + symbol + "' " + purpose);
    return next();
  }

  Token expect_name(const std::string& what) {
    if (!at_name()) fail_expecting(what);
    return next();
  }

  int64_t expect_integer(const std::string& what) {
    if (peek().kind != TokenKind::Number) fail_expecting(what);
    Token token = next();
    int64_t value = 0;
    const char* first = token.text.data();
    const char* last = first + token.text.size();
    bool digits_only = std::all_of(first, last, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    if (!digits_only) fail(token.at, "expected " + what + ", found '" + std::string(token.text) + "', which is not an integer");
    auto [end, error] = std::from_chars(first, last, value);
    if (error != std::errc() || end != last || value > kMaxInteger) {
      fail(token.at, "integer " + std::string(token.text) + " is too large (at most " + std::to_string(kMaxInteger) + ")");
    }
    return value;
  }

  [[noreturn]] void fail_expecting(const std::string& what) const {
    fail(peek().at, "expected " + what + ", found " + describe(peek()));
  }

 private:
  std::vector<Token> tokens_;
  size_t position_ = 0;
};

// ---- Syntax ------------------------------------------------------------------------------------

struct IndexUse {
  std::string name;
  Location at;
};

struct ParsedAccess {
  Access access;
  Location at;
  std::vector<IndexUse> index_uses;  // in text order, with repeats
};

struct ParsedStatement {
  ParsedAccess output;
  Reduction reduction = Reduction::Sum;
  std::vector<IndexUse> reduction_indices;
  std::vector<ParsedAccess> factors;
  std::vector<ParsedAccess> addends;
  Activation activation = Activation::None;
};

struct ExtentClause {
  int64_t extent = 0;
  Location at;
};

struct TensorClause {
  TensorDecl decl;
  Location at;
};

struct Clauses {
  std::map<std::string, ExtentClause> extents;
  std::vector<TensorClause> tensors;  // clause order, one per name
};

constexpr std::string_view kActivationNames = "relu, relu6, sigmoid, silu, hardswish, hardsigmoid, gelu, tanh";

// term := INT | NAME | INT '*' NAME | NAME '*' INT
Affine parse_term(TokenStream& tokens, ParsedAccess& access, const std::string& where) {
  if (tokens.peek().kind == TokenKind::Number) {
    int64_t value = tokens.expect_integer("an integer " + where);
    if (!tokens.accept('*')) return Affine::constant(value);
    Token index = tokens.expect_name("an index name after '" + std::to_string(value) + "*' " + where);
    access.index_uses.push_back({std::string(index.text), index.at});
    return Affine::index(std::string(index.text), value);
  }
  if (tokens.at_name()) {
    Token index = tokens.next();
    access.index_uses.push_back({std::string(index.text), index.at});
    int64_t coefficient = 1;
    if (tokens.accept('*')) coefficient = tokens.expect_integer("an integer coefficient after '" + std::string(index.text) + "*' " + where);
    return Affine::index(std::string(index.text), coefficient);
  }
  tokens.fail_expecting("an index or an integer " + where);
}

// affine := ['-'] term { ('+'|'-') term }
Affine parse_affine(TokenStream& tokens, ParsedAccess& access, size_t dimension) {
  std::string where = "in subscript " + std::to_string(dimension + 1) + " of " + access.access.tensor;
  bool negate = tokens.accept('-');
  Affine form = parse_term(tokens, access, where);
  if (negate) form = form * -1;
  while (tokens.at_symbol('+') || tokens.at_symbol('-')) {
    bool minus = tokens.next().text[0] == '-';
    Affine term = parse_term(tokens, access, where);
    form = minus ? form - term : form + term;
  }
  return form;
}

// access := NAME '[' [ affine { ',' affine } ] ']'
ParsedAccess parse_access(TokenStream& tokens, const std::string& what) {
  ParsedAccess parsed;
  if (!tokens.at_name()) tokens.fail_expecting(what);
  Token name = tokens.next();
  parsed.access.tensor = std::string(name.text);
  parsed.at = name.at;
  if (tokens.at_symbol('(') && activation_from_string(name.text)) {
    fail(name.at, "the activation " + parsed.access.tensor + "(...) must enclose the whole right-hand side, once");
  }
  if (tokens.at_symbol('{') && reduction_from_string(name.text)) {
    fail(name.at, "the reduction " + parsed.access.tensor + "{...} must start the right-hand side (inside the "
                  "activation, if any) and covers the whole product");
  }
  tokens.expect('[', "after the tensor name " + parsed.access.tensor + " to open its subscripts");
  if (tokens.accept(']')) return parsed;
  for (;;) {
    parsed.access.subscripts.push_back(parse_affine(tokens, parsed, parsed.access.subscripts.size()));
    if (tokens.accept(']')) return parsed;
    if (!tokens.at_symbol(',')) {
      tokens.fail_expecting("',' or ']' to close the subscripts of " + parsed.access.tensor);
    }
    tokens.next();
  }
}

Reduction parse_reduction_name(TokenStream& tokens) {
  Token name = tokens.next();
  auto reduction = reduction_from_string(name.text);
  if (!reduction) {
    fail(name.at, "unknown reduction '" + std::string(name.text) + "'; expected one of sum, max, mean");
  }
  return *reduction;
}

// inner := [ RED '{' NAME {',' NAME} '}' ] product { '+' access }
void parse_inner(TokenStream& tokens, ParsedStatement& statement) {
  if (tokens.at_name() && tokens.at_symbol('{', 1)) {
    statement.reduction = parse_reduction_name(tokens);
    std::string reduction_text(to_string(statement.reduction));
    tokens.next();  // '{'
    do {
      Token index = tokens.expect_name("an index name in " + reduction_text + "{...}");
      statement.reduction_indices.push_back({std::string(index.text), index.at});
    } while (tokens.accept(','));
    tokens.expect('}', "to close " + reduction_text + "{...}");
  }
  statement.factors.push_back(parse_access(tokens, "a tensor access like X[i]"));
  while (tokens.accept('*')) statement.factors.push_back(parse_access(tokens, "a tensor access after '*'"));
  while (tokens.accept('+')) {
    statement.addends.push_back(parse_access(tokens, "a tensor access after '+'"));
    if (tokens.at_symbol('*')) {
      fail(tokens.peek().at, "an addend after '+' is a single tensor access; products come before the first '+'");
    }
  }
}

// rhs := ACT '(' inner ')' | inner
void parse_rhs(TokenStream& tokens, ParsedStatement& statement) {
  if (!(tokens.at_name() && tokens.at_symbol('(', 1))) {
    parse_inner(tokens, statement);
    return;
  }
  Token name = tokens.next();
  auto activation = activation_from_string(name.text);
  if (!activation) {
    fail(name.at, "unknown activation '" + std::string(name.text) + "'; expected one of " + std::string(kActivationNames));
  }
  statement.activation = *activation;
  tokens.next();  // '('
  parse_inner(tokens, statement);
  tokens.expect(')', "to close " + std::string(name.text) + "(...)");
}

// stmt := access '=' rhs
ParsedStatement parse_statement(TokenStream& tokens) {
  ParsedStatement statement;
  statement.output = parse_access(tokens, "a statement like Y[i] = X[i]");
  tokens.expect('=', "after the output " + statement.output.access.tensor + "[...]");
  parse_rhs(tokens, statement);
  return statement;
}

bool at_where(const TokenStream& tokens) { return tokens.at_keyword("where") && !tokens.at_symbol('[', 1); }

// stmt { ';' stmt }, allowing a trailing ';'
std::vector<ParsedStatement> parse_statements(TokenStream& tokens) {
  std::vector<ParsedStatement> statements;
  statements.push_back(parse_statement(tokens));
  while (tokens.accept(';')) {
    if (tokens.at_end() || at_where(tokens)) break;
    statements.push_back(parse_statement(tokens));
  }
  if (!tokens.at_end() && !at_where(tokens)) {
    if (tokens.at_symbol('+') && statements.back().activation != Activation::None) {
      tokens.fail_expecting("';', 'where' or the end after the statement (the activation applies last, so "
                            "addends go inside its parentheses)");
    }
    tokens.fail_expecting("';', 'where' or the end after the statement");
  }
  return statements;
}

std::vector<int64_t> parse_shape(TokenStream& tokens, const std::string& tensor) {
  std::vector<int64_t> shape;
  tokens.expect('[', "after " + tensor + " to open its shape");
  if (tokens.accept(']')) return shape;
  for (;;) {
    Location at = tokens.peek().at;
    int64_t extent = tokens.expect_integer("an integer dimension in the shape of " + tensor);
    if (extent <= 0) fail(at, "dimension " + std::to_string(shape.size() + 1) + " of " + tensor + " must be positive");
    shape.push_back(extent);
    if (tokens.accept(']')) return shape;
    if (!tokens.at_symbol(',')) tokens.fail_expecting("',' or ']' to close the shape of " + tensor);
    tokens.next();
  }
}

float parse_float(TokenStream& tokens, const std::string& tensor) {
  bool negative = tokens.accept('-');
  std::string what = "a number in the values of " + tensor;
  Token token = tokens.peek();
  if (token.kind == TokenKind::Name && (token.text == "inf" || token.text == "nan")) {
    tokens.next();
    float value = token.text == "inf" ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
    return negative ? -value : value;
  }
  if (token.kind != TokenKind::Number) tokens.fail_expecting(what);
  Token number = tokens.next();
  float value = 0;
  const char* last = number.text.data() + number.text.size();
  auto [end, error] = std::from_chars(number.text.data(), last, value);
  if (error == std::errc::result_out_of_range) fail(number.at, "value " + std::string(number.text) + " is out of range for a float");
  if (error != std::errc() || end != last) fail(number.at, "expected " + what + ", found '" + std::string(number.text) + "'");
  return negative ? -value : value;
}

int64_t element_count(const std::vector<int64_t>& shape, Location at, const std::string& tensor) {
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (__builtin_mul_overflow(count, extent, &count)) fail(at, "the shape of " + tensor + " has too many elements");
  }
  return count;
}

// After `const NAME [dims]`: '=' '{' FLOAT {',' FLOAT} '}'
std::shared_ptr<const std::vector<float>> parse_const_values(TokenStream& tokens, const TensorDecl& decl, Location at) {
  int64_t expected = element_count(decl.shape, at, decl.name);
  tokens.expect('=', "after the shape of const " + decl.name + " (const C[2] = {0.5, 1})");
  Location open = tokens.expect('{', "to open the values of " + decl.name).at;
  auto values = std::make_shared<std::vector<float>>();
  do {
    values->push_back(parse_float(tokens, decl.name));
  } while (tokens.accept(','));
  tokens.expect('}', "to close the values of " + decl.name);
  if (static_cast<int64_t>(values->size()) != expected) {
    fail(open, "const " + decl.name + " has " + std::to_string(expected) + " elements but " +
                   std::to_string(values->size()) + " values are given");
  }
  return values;
}

void add_extent(Clauses& clauses, const std::string& index, ExtentClause clause) {
  auto [existing, inserted] = clauses.extents.emplace(index, clause);
  if (!inserted && existing->second.extent != clause.extent) {
    fail(clause.at, "conflicting extents for index " + index + ": " + index + "<" + std::to_string(clause.extent) +
                        " here but " + index + "<" + std::to_string(existing->second.extent) + " at " +
                        position_text(existing->second.at));
  }
}

void add_tensor(Clauses& clauses, TensorClause clause) {
  for (const auto& existing : clauses.tensors) {
    if (existing.decl.name != clause.decl.name) continue;
    if (existing.decl == clause.decl) return;
    fail(clause.at, "conflicting declarations of " + clause.decl.name + " here and at " + position_text(existing.at));
  }
  clauses.tensors.push_back(std::move(clause));
}

std::optional<Role> declaration_role(std::string_view keyword) {
  if (keyword == "in") return Role::Input;
  if (keyword == "param") return Role::Param;
  if (keyword == "const") return Role::Const;
  return std::nullopt;
}

// clause := NAME '<' INT | ('in'|'param') NAME '[' dims ']' | 'const' NAME '[' dims ']' '=' '{' values '}'
void parse_clause(TokenStream& tokens, Clauses& clauses) {
  const std::string kClauseShapes = "a clause like n<4, in X[1,3], param W[3] or const C[2] = {0, 1}";
  if (!tokens.at_name()) tokens.fail_expecting(kClauseShapes);
  // Keywords are contextual: `in<3` is the extent of an index named `in`.
  auto role = declaration_role(tokens.peek().text);
  if (role && tokens.at_name(1)) {
    tokens.next();
    Token name = tokens.next();
    TensorDecl decl{std::string(name.text), *role, {}, nullptr};
    decl.shape = parse_shape(tokens, decl.name);
    if (decl.role == Role::Const) decl.values = parse_const_values(tokens, decl, name.at);
    add_tensor(clauses, {std::move(decl), name.at});
    return;
  }
  Token index = tokens.next();
  std::string name(index.text);
  tokens.expect('<', "after " + name + " (an extent clause looks like " + name + "<4)");
  Location at = tokens.peek().at;
  int64_t extent = tokens.expect_integer("an integer extent after '" + name + "<'");
  if (extent <= 0) fail(at, "the extent of " + name + " must be positive");
  add_extent(clauses, name, {extent, index.at});
}

// clause { ',' clause } up to the end of the stream
void parse_clauses(TokenStream& tokens, Clauses& clauses) {
  do {
    parse_clause(tokens, clauses);
  } while (tokens.accept(','));
  if (!tokens.at_end()) tokens.fail_expecting("',' between clauses or the end");
}

// ---- Resolution --------------------------------------------------------------------------------

std::vector<IndexUse> unique_by_name(const std::vector<IndexUse>& uses) {
  std::vector<IndexUse> unique;
  std::set<std::string> seen;
  for (const auto& use : uses) {
    if (seen.insert(use.name).second) unique.push_back(use);
  }
  return unique;
}

IndexVar bind(const IndexUse& use, const Clauses& clauses) {
  auto extent = clauses.extents.find(use.name);
  if (extent == clauses.extents.end()) {
    fail(use.at, "index " + use.name + " has no extent; add " + use.name + "<N to the where clause or --extents");
  }
  return {use.name, extent->second.extent};
}

// Checks that every index a read uses is bound by the statement, so that a typo is reported where
// it is rather than as an unbound index in the statement as a whole.
void check_reads_bound(const ParsedStatement& parsed, const std::set<std::string>& outputs,
                       const std::set<std::string>& reduced) {
  std::string output = parsed.output.access.tensor;
  for (const auto* list : {&parsed.factors, &parsed.addends}) {
    for (const auto& read : *list) {
      for (const auto& use : read.index_uses) {
        if (outputs.count(use.name) || reduced.count(use.name)) continue;
        if (parsed.reduction_indices.empty()) {
          fail(use.at, "index " + use.name + " is not in the subscripts of " + output + "; reduce over it, e.g. sum{" +
                           use.name + "} ..., or use it in " + output + "[...]");
        }
        fail(use.at, "index " + use.name + " is neither in the subscripts of " + output + " nor reduced by " +
                         std::string(to_string(parsed.reduction)) + "{...}; add it to one of them");
      }
    }
  }
}

Statement resolve_statement(const ParsedStatement& parsed, const Clauses& clauses) {
  Statement statement;
  statement.output = parsed.output.access;
  statement.reduction = parsed.reduction;
  statement.activation = parsed.activation;
  std::set<std::string> outputs, reduced;
  for (const auto& use : unique_by_name(parsed.output.index_uses)) {
    statement.output_indices.push_back(bind(use, clauses));
    outputs.insert(use.name);
  }
  for (const auto& use : parsed.reduction_indices) {
    if (outputs.count(use.name)) {
      fail(use.at, "index " + use.name + " is in the subscripts of " + statement.output.tensor + ", so it cannot also be reduced");
    }
    if (!reduced.insert(use.name).second) fail(use.at, "index " + use.name + " is listed twice in the reduction");
  }
  check_reads_bound(parsed, outputs, reduced);
  for (const auto& use : parsed.reduction_indices) statement.reduction_indices.push_back(bind(use, clauses));
  for (const auto& read : parsed.factors) statement.factors.push_back(read.access);
  for (const auto& read : parsed.addends) statement.addends.push_back(read.access);
  return statement;
}

struct Range {
  int64_t lowest = 0;
  int64_t highest = 0;
};

// The values a subscript takes over the index box: each term reaches its extreme at index 0 or
// extent-1 independently, so the sign of its coefficient decides which end.
Range subscript_range(const Affine& form, const Clauses& clauses, Location at) {
  Range range{form.constant_term(), form.constant_term()};
  for (const auto& [name, coefficient] : form.terms()) {
    int64_t reach = 0;
    bool overflow = __builtin_mul_overflow(coefficient, clauses.extents.at(name).extent - 1, &reach);
    int64_t& end = coefficient > 0 ? range.highest : range.lowest;
    overflow = overflow || __builtin_add_overflow(end, reach, &end);
    if (overflow) fail(at, "subscript " + print(form) + " overflows");
  }
  return range;
}

// The smallest extent under symmetric padding: the reads run from `lowest` to `highest`, and the
// padding before position 0 (-lowest, if positive) is assumed after the end as well.
std::vector<int64_t> infer_shape(const std::string& tensor, const std::vector<const ParsedAccess*>& reads,
                                 const Clauses& clauses) {
  const ParsedAccess& first = *reads.front();
  size_t rank = first.access.subscripts.size();
  std::vector<Range> ranges(rank);
  for (const ParsedAccess* read : reads) {
    if (read->access.subscripts.size() != rank) {
      fail(read->at, tensor + " is read with " + std::to_string(read->access.subscripts.size()) + " subscripts here but " +
                         std::to_string(rank) + " at " + position_text(first.at));
    }
    for (size_t dimension = 0; dimension < rank; ++dimension) {
      Range range = subscript_range(read->access.subscripts[dimension], clauses, read->at);
      Range& overall = ranges[dimension];
      bool first_read = read == &first;
      overall.lowest = first_read ? range.lowest : std::min(overall.lowest, range.lowest);
      overall.highest = first_read ? range.highest : std::max(overall.highest, range.highest);
    }
  }
  std::vector<int64_t> shape;
  for (size_t dimension = 0; dimension < rank; ++dimension) {
    int64_t extent = ranges[dimension].highest + 1 - std::max<int64_t>(0, -ranges[dimension].lowest);
    if (extent <= 0) {
      fail(first.at, "cannot infer dimension " + std::to_string(dimension + 1) + " of " + tensor +
                         ": its reads never reach a valid position under symmetric padding; declare it, e.g. in " +
                         tensor + "[...]");
    }
    shape.push_back(extent);
  }
  return shape;
}

// Declared tensors in clause order, then the undeclared ones read, in order of first read. Unless
// the clauses declare inputs (then they are the whole signature), the first undeclared tensor is
// the input and the rest are params.
std::vector<TensorDecl> resolve_tensors(const std::vector<ParsedStatement>& statements, const Clauses& clauses) {
  std::set<std::string> written;
  for (const auto& statement : statements) written.insert(statement.output.access.tensor);
  std::set<std::string> declared;
  bool inputs_declared = false;
  std::vector<TensorDecl> tensors;
  for (const auto& clause : clauses.tensors) {
    if (written.count(clause.decl.name)) {
      fail(clause.at, clause.decl.name + " is written by a statement, so it must not be declared");
    }
    declared.insert(clause.decl.name);
    inputs_declared = inputs_declared || clause.decl.role == Role::Input;
    tensors.push_back(clause.decl);
  }
  std::vector<std::string> undeclared_in_read_order;
  std::map<std::string, std::vector<const ParsedAccess*>> reads;
  for (const auto& statement : statements) {
    for (const auto* list : {&statement.factors, &statement.addends}) {
      for (const auto& read : *list) {
        const std::string& name = read.access.tensor;
        if (written.count(name) || declared.count(name)) continue;
        auto& uses = reads[name];
        if (uses.empty()) undeclared_in_read_order.push_back(name);
        uses.push_back(&read);
      }
    }
  }
  for (const auto& name : undeclared_in_read_order) {
    bool is_input = !inputs_declared && name == undeclared_in_read_order.front();
    tensors.push_back({name, is_input ? Role::Input : Role::Param, infer_shape(name, reads[name], clauses), nullptr});
  }
  return tensors;
}

bool blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

}  // namespace

OpExpr parse(std::string_view text, std::string_view extra_clauses) {
  Source main_source{text, false};
  Source extents_source{extra_clauses, true};
  TokenStream tokens(main_source);
  if (tokens.at_end()) tokens.fail_expecting("a statement like Y[i] = X[i]");
  std::vector<ParsedStatement> parsed = parse_statements(tokens);
  Clauses clauses;
  if (at_where(tokens)) {
    tokens.next();
    parse_clauses(tokens, clauses);
  }
  if (!blank(extra_clauses)) {
    TokenStream extra_tokens(extents_source);
    parse_clauses(extra_tokens, clauses);
  }
  std::vector<Statement> statements;
  for (const auto& statement : parsed) statements.push_back(resolve_statement(statement, clauses));
  return OpExpr::make(resolve_tensors(parsed, clauses), std::move(statements));
}

}  // namespace gos::ir
