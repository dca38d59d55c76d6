// The two-stage factorisation shared by five rules (see two_stage.h).
#include "rules/two_stage.h"

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>

#include "rules/rewrite.h"

namespace gos::rules::detail {

namespace {

std::vector<ir::IndexVar> present(std::initializer_list<std::optional<ir::IndexVar>> indices) {
  std::vector<ir::IndexVar> list;
  for (const auto& index : indices) {
    if (index) list.push_back(*index);
  }
  return list;
}

std::vector<ir::IndexVar> concat(std::vector<ir::IndexVar> a, const std::vector<ir::IndexVar>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Env> points_of(const std::vector<ir::IndexVar>& indices) {
  std::vector<Env> points;
  for_each_point(indices, [&](const Env& env) { points.push_back(env); });
  return points;
}

Env merged(Env a, const Env& b) {
  a.insert(b.begin(), b.end());
  return a;
}

ir::Affine zero() { return ir::Affine::constant(0); }

// How one axis is shared between the stages: T's index along it, what stage 1 reads of X and
// what stage 2 reads of T.
struct AxisSplit {
  ir::IndexVar t_index;
  ir::Affine data_read;  // stage 1, in X
  ir::Affine t_read;     // stage 2, in T
};

AxisSplit split_axis(const Axis& axis, const std::set<std::string>& first_taps, int64_t data_extent,
                     std::set<std::string>& used_indices) {
  ir::Affine position = ir::Affine::index(axis.position, axis.stride);
  ir::Affine first = ir::Affine::constant(0), second = ir::Affine::constant(0);
  int64_t second_span = 0;
  bool any_first = false, any_second = false;
  for (const auto& tap : axis.taps) {
    if (first_taps.count(tap.index)) {
      first = first + ir::Affine::index(tap.index, tap.dilation);
      any_first = true;
    } else {
      second = second + ir::Affine::index(tap.index, tap.dilation);
      second_span += tap.dilation * (tap.extent - 1);
      any_second = true;
    }
  }
  const ir::Affine offset = ir::Affine::constant(axis.offset);
  if (!any_second) {  // stage 1 slides the whole window with the stride; stage 2 reads in place
    ir::Affine o = ir::Affine::index(axis.position);
    return {{axis.position, axis.extent}, position + first + offset, o};
  }
  std::string j = fresh_name(used_indices, "j");
  ir::Affine at_j = ir::Affine::index(j);
  if (!any_first) {  // stage 1 is pointwise along this axis at the input's resolution
    return {{j, data_extent}, at_j, position + second + offset};
  }
  int64_t extent = axis.stride * (axis.extent - 1) + second_span + 1;
  return {{j, extent}, at_j + first + offset, position + second};
}

struct WeightDims {
  std::optional<size_t> out, in;
  std::vector<size_t> taps;  // dims whose subscripts hold only taps
};

WeightDims weight_dims(const Contraction& contraction, const ir::Access& w) {
  WeightDims dims{contraction.weight_out_dim, contraction.weight_in_dim, {}};
  for (size_t dim = 0; dim < w.subscripts.size(); ++dim) {
    if (dim != dims.out && dim != dims.in && !w.subscripts[dim].terms().empty()) dims.taps.push_back(dim);
  }
  return dims;
}

// A weight access in W's layout: `out` and `in` in their dims, taps kept only if in `keep`.
std::optional<ir::Access> weight_access(const std::string& name, const ir::Access& w, const WeightDims& dims,
                                        const ir::Affine& out, const ir::Affine& in,
                                        const std::set<std::string>& keep, const std::map<std::string, int64_t>& extents) {
  ir::Access access{name, std::vector<ir::Affine>(w.subscripts.size(), zero())};
  if (!dims.out) return std::nullopt;
  access.subscripts[*dims.out] = dense(out, extents);
  if (!in.terms().empty() && !dims.in) return std::nullopt;
  if (dims.in) access.subscripts[*dims.in] = dense(in, extents);
  for (size_t dim : dims.taps) {
    Substitution others;
    for (const auto& [index, coefficient] : w.subscripts[dim].terms()) {
      if (!keep.count(index)) others[index] = zero();
    }
    access.subscripts[dim] = dense(substitute(w.subscripts[dim], others), extents);
  }
  return access;
}

struct Factors {
  Eigen::MatrixXd left, right;  // M ~ left * right^T
};

Factors truncated_svd(const Eigen::MatrixXd& m, int64_t rank) {
  Factors f{Eigen::MatrixXd::Zero(m.rows(), rank), Eigen::MatrixXd::Zero(m.cols(), rank)};
  Eigen::BDCSVD<Eigen::MatrixXd> svd(m, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::Index kept = std::min<Eigen::Index>(rank, svd.singularValues().size());
  for (Eigen::Index q = 0; q < kept; ++q) {
    double scale = std::sqrt(svd.singularValues()(q));
    f.left.col(q) = svd.matrixU().col(q) * scale;
    f.right.col(q) = svd.matrixV().col(q) * scale;
  }
  return f;
}

}  // namespace

std::optional<Candidate> two_stage(const Candidate& from, const Contraction& c, const TwoStageSpec& spec,
                                   RuleStep step) {
  const ir::Statement& original = from.op.statements()[c.statement];
  const ir::Access& x = original.factors[c.data_factor];
  const ir::Access& w = original.factors[c.weight_factor];
  if (!c.output_channel_dim || !c.weight_out_dim) return std::nullopt;
  if (spec.bridge != Bridge::Rank && (!c.in || !c.out || !c.data_channel_dim)) return std::nullopt;
  if (spec.one_hot_first && spec.bridge != Bridge::SharedIn) return std::nullopt;

  std::set<std::string> used_indices = index_names(original);
  std::set<std::string> used_tensors = tensor_names(from.op);
  auto extents = extents_of(original);

  // T's channel subscript in stage 1, the matching read in stage 2, and the bridge's own index.
  const ir::Affine y_channel = original.output.subscripts[*c.output_channel_dim];
  std::optional<ir::IndexVar> rank_index;
  ir::Affine t_channel;
  switch (spec.bridge) {
    case Bridge::Rank: {
      rank_index = ir::IndexVar{fresh_name(used_indices, "p"), spec.rank};
      extents[rank_index->name] = spec.rank;
      t_channel = ir::Affine::index(rank_index->name);
      if (c.group) t_channel = t_channel + ir::Affine::index(c.group->name, spec.rank);
      break;
    }
    case Bridge::SharedIn:
    case Bridge::Dropped: t_channel = x.subscripts[*c.data_channel_dim]; break;
    case Bridge::SharedOut: t_channel = y_channel; break;
  }
  const bool first_sums_in = c.in && (spec.bridge == Bridge::Rank || spec.bridge == Bridge::SharedOut);

  // Axes.
  const auto& data_shape = from.op.tensor(x.tensor).shape;
  std::map<size_t, AxisSplit> by_output_dim;
  for (const auto& axis : c.axes) {
    AxisSplit split = split_axis(axis, spec.first_taps, data_shape[axis.data_dim], used_indices);
    extents[split.t_index.name] = split.t_index.extent;
    by_output_dim.emplace(axis.output_dim, split);
  }

  const std::string t_name = fresh_name(used_tensors, "T");
  const std::string w1_name = fresh_name(used_tensors, spec.one_hot_first ? "C" : "W");
  const std::string w2_name = fresh_name(used_tensors, "W");
  const WeightDims dims = weight_dims(c, w);
  std::set<std::string> first_taps, second_taps;
  std::vector<ir::IndexVar> first_tap_indices, second_tap_indices;
  for (const auto& tap : c.taps()) {
    bool first = spec.first_taps.count(tap.index) > 0;
    (first ? first_taps : second_taps).insert(tap.index);
    (first ? first_tap_indices : second_tap_indices).push_back({tap.index, tap.extent});
  }

  // Stage 1: T = sum X * W1.
  ir::Statement s1;
  s1.output.tensor = t_name;
  for (size_t dim = 0; dim < original.output.subscripts.size(); ++dim) {
    if (dim == *c.output_channel_dim) {
      s1.output.subscripts.push_back(dense(t_channel, extents));
    } else {
      s1.output.subscripts.push_back(ir::Affine::index(by_output_dim.at(dim).t_index.name));
    }
  }
  for (const auto& subscript : s1.output.subscripts) {
    for (const auto& term : subscript.terms()) s1.output_indices.push_back({term.first, extents.at(term.first)});
  }
  s1.reduction_indices = first_tap_indices;
  if (first_sums_in) s1.reduction_indices.push_back(*c.in);
  ir::Access x1 = x;
  for (const auto& axis : c.axes) x1.subscripts[axis.data_dim] = by_output_dim.at(axis.output_dim).data_read;
  const ir::Affine w1_out = spec.bridge == Bridge::Dropped ? zero() : t_channel;
  const ir::Affine w1_in = first_sums_in ? ir::Affine::index(c.in->name) : zero();
  auto w1 = weight_access(w1_name, w, dims, w1_out, w1_in, first_taps, extents);
  if (!w1) return std::nullopt;
  s1.factors = {x1, *w1};

  // Stage 2: Y = sum T * W2 (+ the original addends and activation).
  ir::Statement s2 = original;
  std::erase_if(s2.reduction_indices, [&](const ir::IndexVar& index) {
    return first_taps.count(index.name) || (first_sums_in && index.name == c.in->name);
  });
  if (rank_index) s2.reduction_indices.push_back(*rank_index);
  ir::Access t_read{t_name, {}};
  for (size_t dim = 0; dim < original.output.subscripts.size(); ++dim) {
    t_read.subscripts.push_back(dim == *c.output_channel_dim ? dense(t_channel, extents) : by_output_dim.at(dim).t_read);
  }
  ir::Affine w2_in = zero();
  if (spec.bridge == Bridge::Rank) w2_in = ir::Affine::index(rank_index->name);
  if (spec.bridge == Bridge::SharedIn || spec.bridge == Bridge::Dropped) w2_in = ir::Affine::index(c.in->name);
  auto w2 = weight_access(w2_name, w, dims, y_channel, w2_in, second_taps, extents);
  if (!w2) return std::nullopt;
  s2.factors = {t_read, *w2};

  // Inherited weights: one factorisation per batch point of a matrix rows x cols of W.
  ir::Tensor w1_values(reached_shape(*w1, extents)), w2_values(reached_shape(*w2, extents));
  std::vector<ir::IndexVar> batch, rows, cols;
  const auto g = c.group, k = c.out, cin = c.in;
  switch (spec.bridge) {
    case Bridge::Rank: batch = present({g}), rows = concat(present({k}), second_tap_indices), cols = concat(present({cin}), first_tap_indices); break;
    case Bridge::SharedIn: batch = present({g, cin}), rows = concat(present({k}), second_tap_indices), cols = first_tap_indices; break;
    case Bridge::SharedOut: batch = present({g, k}), rows = second_tap_indices, cols = concat(present({cin}), first_tap_indices); break;
    case Bridge::Dropped: rows = concat(present({g, k, cin}), second_tap_indices), cols = first_tap_indices; break;
  }
  const ir::Tensor& w_values = from.weights.at(w.tensor);
  const auto row_points = points_of(rows), col_points = points_of(cols);
  const int64_t factor_rank = spec.bridge == Bridge::Rank ? spec.rank : 1;
  for_each_point(batch, [&](const Env& at) {
    Eigen::MatrixXd m(row_points.size(), col_points.size());
    for (size_t r = 0; r < row_points.size(); ++r) {
      for (size_t col = 0; col < col_points.size(); ++col) {
        m(r, col) = read(w_values, w, merged(merged(at, row_points[r]), col_points[col]));
      }
    }
    if (spec.one_hot_first) {  // the tap whose weights carry the most energy
      Eigen::Index best = 0;
      m.colwise().squaredNorm().maxCoeff(&best);
      write(w1_values, *w1, merged(at, col_points[best]), 1.0f);
      for (size_t r = 0; r < row_points.size(); ++r) {
        write(w2_values, *w2, merged(at, row_points[r]), static_cast<float>(m(r, best)));
      }
      return;
    }
    Factors f = truncated_svd(m, factor_rank);
    for (int64_t q = 0; q < factor_rank; ++q) {
      Env with_rank = at;
      if (rank_index) with_rank[rank_index->name] = q;
      for (size_t r = 0; r < row_points.size(); ++r) {
        write(w2_values, *w2, merged(with_rank, row_points[r]), static_cast<float>(f.left(r, q)));
      }
      for (size_t col = 0; col < col_points.size(); ++col) {
        write(w1_values, *w1, merged(with_rank, col_points[col]), static_cast<float>(f.right(col, q)));
      }
    }
  });

  ir::TensorDecl w1_decl{w1_name, spec.one_hot_first ? ir::Role::Const : ir::Role::Param, w1_values.shape, nullptr};
  if (spec.one_hot_first) w1_decl.values = std::make_shared<const std::vector<float>>(w1_values.data);
  ir::TensorDecl w2_decl{w2_name, ir::Role::Param, w2_values.shape, nullptr};
  Candidate result{replace_statement(from.op, c.statement, {simplify(s1), simplify(s2)}, {w1_decl, w2_decl}),
                   from.weights, from.derivation};
  if (!result.op.find_tensor(w.tensor)) result.weights.erase(w.tensor);
  if (!spec.one_hot_first) result.weights[w1_name] = std::move(w1_values);
  result.weights[w2_name] = std::move(w2_values);
  result.derivation.push_back(std::move(step));
  return result;
}

}  // namespace gos::rules::detail
