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
#include <memory>
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

  // Moving blocks between two caches (a CUDA graph's private pool and the device's cache):
  // whether `key` is a live block of this cache; a live block leaving this cache without being
  // cached (returns its size; throws on a key that is not live); a block arriving as cached; and
  // every block, live and cached, leaving at once.
  bool is_live(void* key) const { return live_.count(key) != 0; }
  int64_t forget(void* key);
  void add_cached(void* key, int64_t block_bytes);
  struct Blocks {
    std::vector<Block> live, cached;
  };
  Blocks take_all();

  int64_t in_use() const { return in_use_; }
  int64_t cached() const { return cached_; }
  int64_t peak() const { return peak_; }
  void reset_peak() { peak_ = in_use_; }
  bool has_cached() const { return !free_.empty(); }

 private:
  void mark_live(void* key, int64_t block_bytes);
  int64_t unmark_live(void* key, const char* what);  // throws on a key that is not live

  std::multimap<int64_t, void*> free_;       // block size -> key
  std::unordered_map<void*, int64_t> live_;  // key -> block size
  int64_t in_use_ = 0, cached_ = 0, peak_ = 0;
};

// The blocks of one device: its cache, and while a CUDA graph of the training step exists, the
// graph's private pool. A graph's kernels keep the addresses they were captured with, so the blocks
// of its temporaries must not serve anything else while it may be replayed: during capture
// (`capturing`) every request is served from the pool, first from the pool's own cached blocks, then
// by moving a cached block of the device's cache into the pool, and only then by a fresh block; frees
// of pool blocks go back to the pool. After capture the pool stays reserved for the graph until
// end_graph() returns its blocks to the device's cache (live ones stay live, and are freed there).
class DeviceBlocks {
 public:
  // A block for `bytes`, from the cache (or the pool while capturing); key null: the caller
  // makes a fresh block of BlockCache::size_class(bytes) and records it with add_fresh.
  BlockCache::Block take(int64_t bytes);
  void add_fresh(void* key, int64_t block_bytes);
  void release(void* key);
  // The cached blocks of the device's cache, removed (the caller frees them); the pool keeps its own.
  std::vector<void*> drop_cache() { return main_.drop_cache(); }
  bool has_cached() const { return main_.has_cached(); }

  void begin_capture();  // a pool is created if there is none; requests go to it
  void end_capture();    // requests go to the device's cache again; the pool stays reserved
  void end_graph();      // the pool's blocks back to the device's cache
  bool capturing() const { return capturing_; }
  bool has_graph_pool() const { return graph_ != nullptr; }

  // In use: the live blocks plus everything the graph's pool holds (reserved for its replays).
  int64_t in_use() const;
  int64_t cached() const { return main_.cached(); }
  int64_t reserved() const { return in_use() + cached(); }
  // The most in use since the last reset: the cache's peak, or in use now with a pool, if more.
  int64_t peak() const;
  void reset_peak() { main_.reset_peak(); }
  int64_t graph_pool_bytes() const { return graph_ ? graph_->in_use() + graph_->cached() : 0; }

 private:
  BlockCache main_;
  std::unique_ptr<BlockCache> graph_;
  bool capturing_ = false;
};

}  // namespace seis
