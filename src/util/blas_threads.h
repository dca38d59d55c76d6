#pragma once
// OpenBLAS, Debian's BLAS, keeps a thread pool of its own, one thread per core, that
// at::set_num_threads does not reach; libtorch calls it for eager convolutions on small images
// and for matrix products outside XNNPACK and oneDNN (matmul, einsum). Whoever sets libtorch's
// thread count sets this one too, or "one thread" uses every core. Looked up at run time: the
// BLAS is a Debian alternative, and with another one these do nothing.
namespace gos::util {

int blas_threads();  // 0 when the BLAS has no thread pool gos knows
void set_blas_threads(int threads);

}  // namespace gos::util
