#include "util/blas_threads.h"

#include <dlfcn.h>

namespace gos::util {
namespace {

template <typename Function>
Function* lookup(const char* name) {
  return reinterpret_cast<Function*>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

int blas_threads() {
  static auto* get = lookup<int()>("openblas_get_num_threads");
  return get ? get() : 0;
}

void set_blas_threads(int threads) {
  static auto* set = lookup<void(int)>("openblas_set_num_threads");
  if (set && threads > 0) set(threads);
}

}  // namespace gos::util
