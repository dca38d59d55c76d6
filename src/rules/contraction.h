#pragma once
// Internal to the rules: what each index of a learned contraction statement does. This is the
// only place that looks at a statement's structure; rules work on the roles it finds.
#include <optional>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace gos::rules::detail {

struct Tap {
  std::string index;
  int64_t extent = 1;
  int64_t dilation = 1;  // its coefficient in the data subscript
};

// A sliding (or plain) axis: a position index read by the data tensor as
// stride*position + sum(dilation*tap) + offset, and written by the output at `output_dim`.
struct Axis {
  std::string position;
  int64_t extent = 1;
  size_t data_dim = 0;
  size_t output_dim = 0;
  int64_t stride = 1;
  int64_t offset = 0;  // minus the begin padding
  std::vector<Tap> taps;
};

struct Contraction {
  size_t statement = 0;
  size_t data_factor = 0;    // position in the statement's factors
  size_t weight_factor = 0;
  std::string data, weight;  // tensor names
  std::optional<ir::IndexVar> out;    // k: output channel within a group
  std::optional<ir::IndexVar> in;     // c: input channel within a group
  std::optional<ir::IndexVar> group;  // g
  std::vector<Axis> axes;
  std::optional<size_t> output_channel_dim;  // Y's dimension holding k and/or g
  std::optional<size_t> data_channel_dim;    // X's dimension holding c and/or g
  std::optional<size_t> weight_out_dim;      // W's dimension holding k and/or g
  std::optional<size_t> weight_in_dim;       // W's dimension holding c (or a constant-0 slot for it)

  std::vector<Tap> taps() const;
  bool has_taps() const { return !taps().empty(); }
};

// The roles of the statement's indices, or nullopt when it is not a learned contraction of the
// form above (then no rule applies to it).
std::optional<Contraction> analyse(const ir::OpExpr& op, size_t statement);

}  // namespace gos::rules::detail
