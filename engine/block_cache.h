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
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/step_arena.h"

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

// The blocks of one device: its cache, and the two modes of a CUDA graph of the training step
// (engine/step_arena.h). While recording, requests are served by the cache as usual and the step's
// allocations and frees are recorded. While an arena serves a capture, every request takes the
// arena's next planned block instead, and the arena's blocks freed go back to nothing; the arena
// itself is one block of the cache, held by the graph's owner.
class DeviceBlocks {
 public:
  // A block for `bytes`, from the cache (or the arena); key null: the caller makes a fresh block
  // of BlockCache::size_class(bytes) and records it with add_fresh. Throws Error when an arena
  // serves a request that differs from the recorded step's.
  BlockCache::Block take(int64_t bytes);
  void add_fresh(void* key, int64_t block_bytes);
  void release(void* key);
  // The cached blocks, removed (the caller frees them).
  std::vector<void*> drop_cache() { return main_.drop_cache(); }
  bool has_cached() const { return main_.has_cached(); }

  void begin_record();
  // The recorded step in *trace; false, with the reason in *why, when no arena can hold it.
  bool end_record(StepTrace* trace, std::string* why);
  bool recording() const { return recorder_ != nullptr; }
  // Serves requests from the arena at `base` by `plan` until end_arena (the caller keeps the
  // arena's memory until arena_live_blocks() is 0).
  void begin_arena(void* base, std::shared_ptr<const ArenaPlan> plan);
  // Whether the requests replayed the plan exactly (the first difference in *why otherwise).
  bool end_arena(std::string* why);
  bool in_arena() const { return arena_active_; }
  // Blocks of the last arena still live (after a capture that went wrong).
  int64_t arena_live_blocks() const { return arena_ ? arena_->live_blocks() : 0; }

  int64_t in_use() const { return main_.in_use(); }
  int64_t cached() const { return main_.cached(); }
  int64_t reserved() const { return in_use() + cached(); }
  int64_t peak() const { return main_.peak(); }
  void reset_peak() { main_.reset_peak(); }

 private:
  BlockCache main_;
  std::unique_ptr<StepRecorder> recorder_;
  std::unique_ptr<ArenaReplay> arena_;  // kept after end_arena while blocks of it are live
  bool arena_active_ = false;
};

}  // namespace seis
