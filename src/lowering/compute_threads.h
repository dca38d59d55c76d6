#pragma once
// The threads libtorch computes with: its intra-op pool and OpenBLAS's (util/blas_threads.h),
// which it calls for some kernels and which at::set_num_threads does not reach. Set together, so
// that a thread count holds for every kernel.
namespace gos::lowering {

void set_compute_threads(int threads);  // at least 1

}  // namespace gos::lowering
