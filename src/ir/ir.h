#pragma once
// The public face of gos's IR: neural-network operators written as mathematical instructions.
//
// An operator (OpExpr) is a short sequence of statements of the form
//
//     Out[o...] = act( reduce{r...} A[affine...] * B[affine...] * ...  + C[...] + ... )
//
// over integer index variables, e.g. a 3x3 stride-2 convolution with padding 1 is
//
//     Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s]
//
// Semantics, which the reference interpreter (evaluate) defines:
//   - every read is through an Access whose subscripts are integer affine forms of the indices;
//   - a product term with any out-of-range read does not take part in the reduction: for `sum`
//     it contributes zero (zero padding), for `max` it is skipped (-inf padding), for `mean` it
//     contributes zero but still counts in the divisor (the product of the reduction extents);
//   - addends (bias, residual) are added after the reduction, then the activation is applied;
//     an out-of-range addend read is zero.
// Tensors have roles: inputs (the operator's data signature, in order), params (learned
// weights), consts (fixed, non-learned tables whose values are part of the operator), and
// intermediates/the output, which statements write. The last statement writes the output.
//
// All types are values: cheap to copy, compared structurally. OpExpr equality and hashing use the
// canonical form (canonical()), so index and tensor renaming and the order of commutative factors
// and addends do not change them.
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gos::ir {

// Thrown for any malformed IR (bad shapes, unknown index, parse errors); `what()` is one line
// meant for the user.
class IrError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An integer affine form: sum of coefficient * index plus a constant, e.g. `2*h + r - 1`.
// Normalised on construction (terms sorted by index name, no zero coefficients), so structurally
// equal forms compare equal.
class Affine {
 public:
  using Term = std::pair<std::string, int64_t>;  // index name, coefficient

  Affine() = default;
  Affine(std::vector<Term> terms, int64_t constant);
  static Affine index(std::string name, int64_t coefficient = 1);
  static Affine constant(int64_t value);

  const std::vector<Term>& terms() const { return terms_; }
  int64_t constant_term() const { return constant_; }
  int64_t coefficient(std::string_view index) const;  // 0 when absent
  // The index name if this form is exactly one index with coefficient 1 and no constant.
  std::optional<std::string> plain_index() const;

  Affine operator+(const Affine& other) const;
  Affine operator-(const Affine& other) const;
  Affine operator*(int64_t factor) const;
  Affine rename(const std::map<std::string, std::string>& names) const;

  friend bool operator==(const Affine&, const Affine&) = default;

 private:
  std::vector<Term> terms_;
  int64_t constant_ = 0;
};

// A read of a tensor: one affine subscript per dimension (none for a scalar).
struct Access {
  std::string tensor;
  std::vector<Affine> subscripts;
  friend bool operator==(const Access&, const Access&) = default;
};

struct IndexVar {
  std::string name;
  int64_t extent = 0;
  friend bool operator==(const IndexVar&, const IndexVar&) = default;
};

enum class Reduction { Sum, Max, Mean };
enum class Activation { None, Relu, Relu6, Sigmoid, Silu, HardSwish, HardSigmoid, Gelu, Tanh };

std::string_view to_string(Reduction reduction);
std::string_view to_string(Activation activation);
std::optional<Reduction> reduction_from_string(std::string_view name);
std::optional<Activation> activation_from_string(std::string_view name);
float apply_activation(Activation activation, float x);

// One instruction: output[...] = activation(reduce{reduction_indices} product(factors) + sum(addends)).
// Indices are bound per statement; their extents live here. Each output subscript is a plain index
// or a mixed-radix combination of output indices (`4*g + k` with k < 4) so that a grouped operator
// writes its channels as (group, channel-in-group); every output element is written exactly once.
struct Statement {
  Access output;
  std::vector<IndexVar> output_indices;     // the free indices, in order of use in `output`
  Reduction reduction = Reduction::Sum;
  std::vector<IndexVar> reduction_indices;  // empty: no reduction (elementwise statement)
  std::vector<Access> factors;              // at least one
  std::vector<Access> addends;              // added after the reduction (bias, residual)
  Activation activation = Activation::None;

  int64_t extent_of(std::string_view index) const;  // throws IrError if not bound here
  friend bool operator==(const Statement&, const Statement&) = default;
};

enum class Role { Input, Param, Const, Intermediate, Output };
std::string_view to_string(Role role);

struct TensorDecl {
  std::string name;
  Role role = Role::Input;
  std::vector<int64_t> shape;
  // Values of a Const tensor (row-major, shape's element count); null for every other role.
  std::shared_ptr<const std::vector<float>> values;

  int64_t elements() const;
  friend bool operator==(const TensorDecl& a, const TensorDecl& b);
};

// A whole operator. Built only through OpExpr::make, which checks that it is well formed, so every
// OpExpr in the program is valid: statements read only tensors that exist when they run, every
// subscript has the tensor's rank and uses only the statement's indices, exactly one output.
class OpExpr {
 public:
  // `tensors` declares inputs, params and consts (in signature order); intermediate and output
  // tensors are derived from the statements, which must not be declared.
  static OpExpr make(std::vector<TensorDecl> tensors, std::vector<Statement> statements);

  const std::vector<Statement>& statements() const { return statements_; }
  // Every tensor: declared ones in the given order, then the written ones in statement order.
  const std::vector<TensorDecl>& tensors() const { return tensors_; }
  const TensorDecl& tensor(std::string_view name) const;  // throws IrError if unknown
  const TensorDecl* find_tensor(std::string_view name) const;
  std::vector<TensorDecl> tensors_with_role(Role role) const;
  const TensorDecl& output() const;

  // Canonical text: the canonical form printed; equal for operators equal up to renaming.
  const std::string& canonical_key() const { return *canonical_key_; }
  size_t hash() const { return std::hash<std::string>{}(*canonical_key_); }
  friend bool operator==(const OpExpr& a, const OpExpr& b) { return a.canonical_key() == b.canonical_key(); }

 private:
  OpExpr() = default;
  std::vector<TensorDecl> tensors_;
  std::vector<Statement> statements_;
  std::shared_ptr<const std::string> canonical_key_;
};

// ---- Passes (free functions) -------------------------------------------------------------------

// The same operator with indices renamed i0, i1, ... in order of first use, tensors renamed by
// role (inputs X0.., params W0.., consts C0.., intermediates T0.., output Y) and factors and
// addends in a fixed order. canonical(canonical(e)) is canonical(e).
OpExpr canonical(const OpExpr& op);

// The renaming canonical() applies to tensors: original name -> canonical name. Two operators with
// equal canonical forms correspond tensor by tensor through these maps (how lowerings bind a
// recognised kernel's operands).
std::map<std::string, std::string> canonical_tensor_names(const OpExpr& op);

// Renames tensors (names not in the map keep theirs).
OpExpr rename_tensors(const OpExpr& op, const std::map<std::string, std::string>& names);

// ---- Text notation (docs/notation.md) -----------------------------------------------------------

// Prints an operator in the notation; parse(print(e)) == e and print(parse(print(e))) == print(e).
std::string print(const OpExpr& op);
std::string print(const Statement& statement);
std::string print(const Affine& affine);
// A shape as messages show it: "[1,32,28,28]".
std::string shape_text(const std::vector<int64_t>& shape);

// Parses the notation. `extra_clauses` is appended to the `where` clause (the CLI's --extents).
// Errors throw ParseError, whose message names the column and what was expected.
class ParseError : public IrError {
 public:
  ParseError(std::string message, size_t column) : IrError(std::move(message)), column_(column) {}
  size_t column() const { return column_; }

 private:
  size_t column_;
};
OpExpr parse(std::string_view text, std::string_view extra_clauses = {});

// ---- Reference interpreter ------------------------------------------------------------------------

// A dense row-major float tensor: what the interpreter reads and writes.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape, float fill = 0.0f);
  Tensor(std::vector<int64_t> shape, std::vector<float> data);
  int64_t elements() const { return static_cast<int64_t>(data.size()); }
};
using TensorMap = std::map<std::string, Tensor>;

// Evaluates `op` by looping over its indices, accumulating in double. `bindings` holds every input
// and param by name (consts come from the operator). Returns the output tensor.
// Deliberately simple and slow: it is the ground truth every lowering is tested against.
Tensor evaluate(const OpExpr& op, const TensorMap& bindings);
// The same, returning every written tensor (intermediates and output) by name.
TensorMap evaluate_all(const OpExpr& op, const TensorMap& bindings);

// ---- Narrowing (keeping some channels of an axis) --------------------------------------------------

// One axis of one of an operator's tensors.
struct TensorAxis {
  std::string tensor;
  int axis = 0;
  friend auto operator<=>(const TensorAxis&, const TensorAxis&) = default;
};

// Every tensor axis that keeps the same positions as `start` when it is narrowed: the axes read or
// written through the same plain index (a convolution's input channel links X's axis 1 to W's
// axis 1; its output channel links Y's axis 1 to W's axis 0 and B's), followed across statements
// through intermediates (a depthwise statement links its input and output channels). Sorted; empty
// when `start` cannot be narrowed on its own: its subscript is not a plain index (a window, a
// group's channel), that index also appears inside a compound subscript, or it is reduced by `max`
// or `mean` (dropping a position would change the result, not just zero it).
std::vector<TensorAxis> linked_axes(const OpExpr& op, const TensorAxis& start);

// The operator with `start`'s linked axes keeping the positions `kept` (strictly increasing, within
// the axis): smaller extents, const tables sliced. Evaluated on inputs and params sliced the same
// way (narrow_tensors), it computes the original's output sliced along any narrowed output axis,
// with every dropped input position counted as zero. Throws IrError when `start` has no linked axes
// or `kept` is not a valid selection.
OpExpr narrow(const OpExpr& op, const TensorAxis& start, const std::vector<int64_t>& kept);
// The positions `positions` of `tensor`'s axis `axis`, in that order.
Tensor take(const Tensor& tensor, int axis, const std::vector<int64_t>& positions);
// The tensors of `op` in `tensors` (inputs, params, by name) sliced along their linked axes.
TensorMap narrow_tensors(const OpExpr& op, const TensorAxis& start, const std::vector<int64_t>& kept, const TensorMap& tensors);

// ---- Exact cost ------------------------------------------------------------------------------------

struct Cost {
  int64_t macs = 0;          // multiply-accumulates between non-constant operands
  int64_t other_ops = 0;     // additions/comparisons without a learned multiply, epilogues
  int64_t params = 0;        // learned parameters (elements of params)
  int64_t input_bytes = 0;   // inputs read (float32)
  int64_t weight_bytes = 0;  // params and consts read
  int64_t output_bytes = 0;  // output written
  int64_t intermediate_bytes = 0;  // intermediates written and read back
  int64_t bytes() const { return input_bytes + weight_bytes + output_bytes; }
  // Floating-point operations (2 per MAC) per byte of inputs, weights and output.
  double arithmetic_intensity() const;
};
Cost cost(const OpExpr& op);

}  // namespace gos::ir

template <>
struct std::hash<gos::ir::OpExpr> {
  size_t operator()(const gos::ir::OpExpr& op) const { return op.hash(); }
};
