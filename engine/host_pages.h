// Host memory that starts on a page: what direct reads (O_DIRECT) land in, and the reader's slots
// where there is no CUDA driver to pin them. Blocks of 2 MiB or more are mapped on their own
// (mmap), aligned to 2 MiB and asked to be backed by transparent huge pages (madvise
// MADV_HUGEPAGE, where the kernel's THP mode is "madvise" or "always"): a 4 MiB direct read then
// reaches the disk as 2 segments instead of 1024 pages of 4 KiB. On the 2-core build machine's
// virtio disk (254 segments per request), two threads of O_DIRECT 4 MiB reads into a 1 GiB buffer
// ran 1.70-1.89 GB/s with huge pages against 1.45-1.58 without (five runs each, alternating).
#pragma once
#include <cstdint>

namespace seis {

constexpr int64_t kHugePageBytes = int64_t{1} << 21;

// What alloc_host_pages(bytes) holds: whole pages of 4 KiB, or of 2 MiB from 2 MiB on.
inline int64_t host_pages_bytes(int64_t bytes) {
  const int64_t align = bytes >= kHugePageBytes ? kHugePageBytes : 4096;
  return bytes <= 0 ? align : (bytes + align - 1) / align * align;
}

// At least `bytes` (host_pages_bytes(bytes)), page-aligned, or nullptr when the memory cannot be
// had. Freed with free_host_pages(p, bytes), the same `bytes`.
void* alloc_host_pages(int64_t bytes);
void free_host_pages(void* p, int64_t bytes);

// The same with the size kept for the free (pinned_alloc's memory without a CUDA driver):
// release_host_pages(p) frees what alloc_host_pages_kept returned and says true, or does nothing
// and says false for any other pointer. Thread-safe.
void* alloc_host_pages_kept(int64_t bytes);
bool release_host_pages(void* p);

}  // namespace seis
