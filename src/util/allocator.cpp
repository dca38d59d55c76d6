// Freed memory kept for reuse (see allocator.h).
#include "util/allocator.h"

#include <malloc.h>

namespace gos::util {

void keep_freed_memory_for_reuse() {
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace gos::util
