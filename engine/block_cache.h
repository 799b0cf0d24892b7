// The caching device allocator's bookkeeping without the memory: size classes, which cached block a
// request reuses, and the bytes in use, cached and at peak. engine/cuda_runtime.cu runs it beside
// cudaMalloc; a shape-only device (engine/memory.h) runs it alone, so that a memory plan holds exactly
// the blocks the real allocator would hold.
//
// Policy: requests round up to 512 B (up to 1 MiB) or to 2 MiB (above); a freed block is cached and
// handed to a later request when it is the smallest cached block that fits and wastes at most a
// quarter of the request's size class.
#pragma once
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

namespace seis {

class BlockCache {
 public:
  static int64_t size_class(int64_t bytes);

  struct Block {
    void* key = nullptr;  // null: nothing cached fits; the caller makes a fresh block of size_class
    int64_t bytes = 0;
  };
  // Takes the cached block a request of `bytes` reuses, if any (it is then live).
  Block take_cached(int64_t bytes);
  // Records a fresh block as live.
  void add_live(void* key, int64_t block_bytes);
  // A live block back to the cache; returns its size. Throws on a key that is not live.
  int64_t release(void* key);
  // Empties the cache and returns what it held (the caller frees the memory).
  std::vector<void*> drop_cache();

  int64_t in_use() const { return in_use_; }
  int64_t cached() const { return cached_; }
  int64_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }
  bool has_cached() const { return !free_.empty(); }

 private:
  void mark_live(void* key, int64_t block_bytes);

  std::multimap<int64_t, void*> free_;       // block size -> key
  std::unordered_map<void*, int64_t> live_;  // key -> block size
  int64_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

}  // namespace seis
