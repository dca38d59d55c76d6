#include "lowering/compute_threads.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "util/blas_threads.h"

namespace gos::lowering {

void set_compute_threads(int threads) {
  at::set_num_threads(std::max(1, threads));
  util::set_blas_threads(std::max(1, threads));
}

}  // namespace gos::lowering
