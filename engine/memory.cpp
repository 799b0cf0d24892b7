#include "engine/memory.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/block_cache.h"
#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"

namespace seis {

namespace {

struct HostCounter {
  std::atomic<int64_t> in_use{0};
  std::atomic<int64_t> peak{0};

  void add(int64_t bytes) {
    const int64_t now = in_use.fetch_add(bytes) + bytes;
    int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
  }
};

HostCounter& host_counter() {
  static auto* c = new HostCounter;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

// The shape-only stand-ins, one per (kind, index).
struct ShapeOnlyState {
  DeviceBlocks cuda_blocks;  // the CUDA allocator's model, with a graph's recording and arena
  int64_t host_in_use = 0, host_peak = 0;
  uintptr_t next_key = 4096;  // the next fake address
};

std::mutex& shape_only_mutex() {
  static auto* mu = new std::mutex;
  return *mu;
}

ShapeOnlyState& shape_only_state(Device d) {
  static auto* all = new std::map<int, ShapeOnlyState>;
  return (*all)[d.is_cpu() ? -1 : d.index];
}

}  // namespace

void* host_alloc(int64_t bytes) {
  void* p = std::aligned_alloc(64, static_cast<size_t>(bytes));
  if (p == nullptr) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  host_counter().add(bytes);
  return p;
}

void host_free(void* p, int64_t bytes) {
  std::free(p);
  host_counter().in_use.fetch_sub(bytes);
}

void* shape_only_alloc(Device d, int64_t bytes) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  ShapeOnlyState& s = shape_only_state(d);
  // Keys are fake addresses, each block its own range of them (so that the blocks of an arena inside
  // a block name nothing else); they only name blocks.
  void* key = reinterpret_cast<void*>(s.next_key);
  s.next_key += static_cast<uintptr_t>(std::max<int64_t>(64, BlockCache::size_class(bytes)));
  if (d.is_cpu()) {
    s.host_in_use += bytes;
    s.host_peak = std::max(s.host_peak, s.host_in_use);
    return key;
  }
  const BlockCache::Block cached = s.cuda_blocks.take(bytes);
  if (cached.key != nullptr) return cached.key;
  s.cuda_blocks.add_fresh(key, BlockCache::size_class(bytes));
  return key;
}

void shape_only_free(Device d, void* key, int64_t bytes) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  ShapeOnlyState& s = shape_only_state(d);
  if (d.is_cpu()) {
    s.host_in_use -= bytes;
  } else {
    s.cuda_blocks.release(key);
  }
}

void reset_shape_only(Device d) {
  SEIS_CHECK(d.shape_only, "reset_shape_only of " << d.str());
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  ShapeOnlyState& s = shape_only_state(d);
  SEIS_CHECK(s.host_in_use == 0 && s.cuda_blocks.in_use() == 0,
             "reset of " << d.str() << " while its tensors are alive");
  s = ShapeOnlyState();
}

namespace {
// The shape-only GPU's blocks, or null for a real GPU; throws for a CPU. Caller holds
// shape_only_mutex().
DeviceBlocks* graph_blocks(Device d) {
  SEIS_CHECK(d.is_cuda(), "a CUDA graph's memory on " << d.str());
  return d.shape_only ? &shape_only_state(d).cuda_blocks : nullptr;
}
}  // namespace

void memory_begin_record(Device d) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  if (DeviceBlocks* b = graph_blocks(d)) return b->begin_record();
  cuda_begin_record(d.index);
}

bool memory_end_record(Device d, StepTrace* trace, std::string* why) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  if (DeviceBlocks* b = graph_blocks(d)) return b->end_record(trace, why);
  return cuda_end_record(d.index, trace, why);
}

void memory_begin_arena(Device d, void* base, std::shared_ptr<const ArenaPlan> plan) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  if (DeviceBlocks* b = graph_blocks(d)) return b->begin_arena(base, std::move(plan));
  cuda_begin_arena(d.index, base, std::move(plan));
}

bool memory_end_arena(Device d, std::string* why) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  if (DeviceBlocks* b = graph_blocks(d)) return b->end_arena(why);
  return cuda_end_arena(d.index, why);
}

int64_t memory_arena_live_blocks(Device d) {
  std::lock_guard<std::mutex> lock(shape_only_mutex());
  if (DeviceBlocks* b = graph_blocks(d)) return b->arena_live_blocks();
  return cuda_arena_live_blocks(d.index);
}

int64_t memory_in_use(Device d) {
  if (d.shape_only) {
    std::lock_guard<std::mutex> lock(shape_only_mutex());
    ShapeOnlyState& s = shape_only_state(d);
    return d.is_cpu() ? s.host_in_use : s.cuda_blocks.in_use();
  }
  return d.is_cpu() ? host_counter().in_use.load() : cuda_bytes_in_use(d.index);
}

int64_t memory_reserved(Device d) {
  if (d.shape_only) {
    std::lock_guard<std::mutex> lock(shape_only_mutex());
    ShapeOnlyState& s = shape_only_state(d);
    return d.is_cpu() ? s.host_in_use : s.cuda_blocks.reserved();
  }
  return d.is_cpu() ? host_counter().in_use.load() : cuda_reserved_bytes(d.index);
}

int64_t memory_peak(Device d) {
  if (d.shape_only) {
    std::lock_guard<std::mutex> lock(shape_only_mutex());
    ShapeOnlyState& s = shape_only_state(d);
    return d.is_cpu() ? s.host_peak : s.cuda_blocks.peak();
  }
  return d.is_cpu() ? host_counter().peak.load() : cuda_peak_bytes(d.index);
}

void reset_memory_peak(Device d) {
  if (d.shape_only) {
    std::lock_guard<std::mutex> lock(shape_only_mutex());
    ShapeOnlyState& s = shape_only_state(d);
    s.host_peak = s.host_in_use;
    s.cuda_blocks.reset_peak();
    return;
  }
  if (d.is_cpu()) {
    host_counter().peak.store(host_counter().in_use.load());
  } else {
    cuda_reset_peak_bytes(d.index);
  }
}

}  // namespace seis
