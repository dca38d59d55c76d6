#pragma once
// Training operators for the latency predictor sampled on purpose, as nn-Meter samples kernel
// configurations: every kernel kind the zoo uses (dense, 1x1, depthwise and grouped convolutions
// in 1-D and 2-D, linear, matmul along tokens and channels, pools, global pooling, activations,
// residual adds) and the rule candidates derived from them (shifts, dilated and split windows,
// shuffled groups, two-statement factorisations), over channels, spatial sizes, kernels, strides
// and groups around the zoo's. The zoo alone gives a few hundred operators, too few for the
// predictor to learn how each kernel's time depends on its shape.
#include <cstdint>
#include <vector>

#include "measure/measure.h"

namespace gos::measure {

// `count` distinct operators (each statement of a multi-statement candidate also alone, as
// zoo_operators does), the same for the same seed. Half of them (when `around` is given) are
// operators of `around` rebuilt with channels and sizes from a quarter to four times theirs, or
// candidates of those; the rest are drawn from the forms below. None of them falls in the
// held-out fifth (is_held_out), so that held-out accuracy stays measured on statements never
// fitted on.
std::vector<OpToMeasure> sampled_operators(size_t count, uint64_t seed, const std::vector<ir::OpExpr>& around = {});

// The kernel forms sampled_operators draws from, in the order it cycles through them.
const std::vector<std::string>& sampled_forms();

}  // namespace gos::measure
