#include "engine/host_pages.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace seis {

void* alloc_host_pages(int64_t bytes) {
  const int64_t size = host_pages_bytes(bytes);
  if (size < kHugePageBytes) return std::aligned_alloc(4096, static_cast<size_t>(size));
  // A mapping of its own (never heap memory that malloc could later hand out in small pieces with
  // the advice on it), over-mapped by a huge page and trimmed to start on one.
  const size_t over = static_cast<size_t>(size + kHugePageBytes);
  void* m = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(m);
  const uintptr_t start = (base + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (start > base) ::munmap(m, start - base);
  const uintptr_t end = start + static_cast<uintptr_t>(size), mapped_end = base + over;
  if (mapped_end > end) ::munmap(reinterpret_cast<void*>(end), mapped_end - end);
  void* p = reinterpret_cast<void*>(start);
  (void)::madvise(p, static_cast<size_t>(size), MADV_HUGEPAGE);  // (a hint: no THP, no harm)
  return p;
}

void free_host_pages(void* p, int64_t bytes) {
  if (p == nullptr) return;
  const int64_t size = host_pages_bytes(bytes);
  if (size < kHugePageBytes) {
    std::free(p);
  } else {
    ::munmap(p, static_cast<size_t>(size));
  }
}

namespace {

std::mutex& kept_mutex() {
  static std::mutex m;
  return m;
}

std::unordered_map<void*, int64_t>& kept_sizes() {
  static std::unordered_map<void*, int64_t> sizes;
  return sizes;
}

}  // namespace

void* alloc_host_pages_kept(int64_t bytes) {
  void* p = alloc_host_pages(bytes);
  if (p != nullptr) {
    std::lock_guard<std::mutex> lock(kept_mutex());
    kept_sizes()[p] = bytes;
  }
  return p;
}

bool release_host_pages(void* p) {
  int64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(kept_mutex());
    const auto it = kept_sizes().find(p);
    if (it == kept_sizes().end()) return false;
    bytes = it->second;
    kept_sizes().erase(it);
  }
  free_host_pages(p, bytes);
  return true;
}

}  // namespace seis
