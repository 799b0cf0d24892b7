// Device scratch memory lent to the kernels by their caller. The kernel library allocates nothing
// itself (kernels/ does not link the engine): an entry point that learns the size of its scratch
// only while it runs (cuDNN's algorithm workspace, its bf16 operand copies) takes a pool. The
// engine's pool is its caching allocator (cuda_scratch_pool, engine/device_runtime.h); a test or a
// benchmark may lend any other.
#pragma once
#include <cstdint>

namespace seis {

class ScratchPool {
 public:
  virtual ~ScratchPool() = default;
  // `bytes` (> 0) of device memory usable on the pool's device; never null (throws when it cannot).
  virtual void* allocate(int64_t bytes) = 0;
  // Returns memory from allocate(); the stream-ordered work using it has been enqueued.
  virtual void release(void* p) = 0;
};

}  // namespace seis
