#pragma once
// glibc's allocator returns to the kernel every freed block above its mmap threshold (128 KiB to
// start with) and any free heap top above its trim threshold, so libtorch's activations for a
// batch are mapped, zeroed by page faults and unmapped again at every batch, which made
// evaluation and training several times slower, most of it in the kernel (figures in
// docs/train.md). Batch-1 latencies do not change.
namespace gos::util {

// Keeps freed blocks up to 32 MiB in the heap, and up to 1 GiB of free heap top, for reuse. Call
// once, before the first allocation of note.
void keep_freed_memory_for_reuse();

}  // namespace gos::util
