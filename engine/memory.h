// Memory accounting by device: what a device's allocator holds for tensors, now and at peak.
// - cpu: aligned host memory, counted here (sizes rounded to 64 bytes, as allocated);
// - cuda:N: the caching allocator of engine/cuda_runtime.cu;
// - a shape-only device: a model of the real one that allocates nothing (cpu: a counter of its own;
//   cuda: the caching allocator's BlockCache), so that a step run on it peaks exactly where the real
//   step would (apps/memory_plan.h). Its keys stand in for pointers and are never dereferenced.
// Conv workspaces are tensors, so they are here; the small scratch of the CPU reductions and the
// cuDNN backend's own buffers are not.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "engine/device.h"

namespace seis {

struct StepTrace;
struct ArenaPlan;

int64_t memory_in_use(Device d);
int64_t memory_peak(Device d);
void reset_memory_peak(Device d);
// What the device's allocator holds now, cached blocks included (CUDA; in use elsewhere). A
// shape-only GPU never empties its cache, so after a plan's steps this is what the real allocator
// holds if it never has to empty its cache.
int64_t memory_reserved(Device d);

// Storage's allocation paths. host_alloc never returns null (throws Error when out of memory).
void* host_alloc(int64_t bytes);
void host_free(void* p, int64_t bytes);
void* shape_only_alloc(Device d, int64_t bytes);
void shape_only_free(Device d, void* key, int64_t bytes);
// A CUDA graph's memory (engine/step_arena.h), on a GPU or a shape-only GPU: recording one step's
// allocations (served as usual), then serving a capture from an arena by the plan made from them.
void memory_begin_record(Device d);
bool memory_end_record(Device d, StepTrace* trace, std::string* why);
void memory_begin_arena(Device d, void* base, std::shared_ptr<const ArenaPlan> plan);
bool memory_end_arena(Device d, std::string* why);
int64_t memory_arena_live_blocks(Device d);
// Forgets a shape-only device's history (cached blocks, peak), so that a new plan starts from an
// empty allocator. Throws when tensors on it are still alive.
void reset_shape_only(Device d);

}  // namespace seis
