// The device runtime as the rest of the engine sees it: device count, memory, copies, the
// compute stream. engine/cuda_runtime.cu implements it with CUDA; engine/no_cuda/ has the
// build without CUDA, where there are zero devices.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/scratch_pool.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*; kept opaque so headers need no CUDA.

namespace seis {

struct StepTrace;
struct ArenaPlan;

// Number of usable CUDA devices. 0 when built without CUDA or when there is no driver
// ("CUDA driver version is insufficient" counts as zero devices, not as a failure).
int cuda_device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.2 GiB)".
std::string cuda_device_description(int device);

// Device memory from the caching allocator of `device`. Never returns null: throws.
void* cuda_alloc(int device, int64_t bytes);
void cuda_free(int device, void* p);
// Bytes handed out by the allocator now, and the most handed out since the last reset.
int64_t cuda_bytes_in_use(int device);
int64_t cuda_peak_bytes(int device);
void cuda_reset_peak_bytes(int device);
// How many times a cudaMalloc failed for want of memory and the allocator emptied its cache to
// retry (each costs a device synchronisation and a cudaFree per cached block).
int64_t cuda_cache_flushes(int device);
// A CUDA graph's memory (engine/step_arena.h, engine/memory.h's memory_begin_record and the rest).
void cuda_begin_record(int device);
bool cuda_end_record(int device, StepTrace* trace, std::string* why);
void cuda_begin_arena(int device, void* base, std::shared_ptr<const ArenaPlan> plan);
bool cuda_end_arena(int device, std::string* why);
int64_t cuda_arena_live_blocks(int device);
// Device memory the driver reports free now (cudaMemGetInfo), plus what the allocator has cached.
int64_t cuda_free_bytes(int device);

// The caching allocator of `device` as the scratch pool of the kernels that take one (cuDNN's).
class CudaScratchPool final : public ScratchPool {
 public:
  explicit CudaScratchPool(int device) : device_(device) {}
  void* allocate(int64_t bytes) override { return cuda_alloc(device_, bytes); }
  void release(void* p) override { cuda_free(device_, p); }

 private:
  int device_;
};

// Pinned (page-locked) host memory; ordinary memory when there is no driver (alloc_host_pages,
// engine/host_pages.h: huge pages where the kernel gives them, starting on a page). cudaHostAlloc's
// memory starts on a page in practice, which CUDA does not promise: direct reads check it before
// they land there (io/direct_read.h).
void* pinned_alloc(int64_t bytes);
void pinned_free(void* p);

// The stream every compute kernel of `device` runs on.
CUstream_st* cuda_compute_stream(int device);
// Copies ordered on the compute stream; they return when the copy is done.
void cuda_copy_to_device(int device, void* dst, const void* src, int64_t bytes);
void cuda_copy_to_host(int device, void* dst, const void* src, int64_t bytes);
void cuda_copy_device_to_device(int device, void* dst, const void* src, int64_t bytes);
void cuda_memset_zero(int device, void* p, int64_t bytes);
// A copy in any direction enqueued on `stream` (null: the compute stream of `device`), returning at
// once (a host side must be pinned memory, left untouched until the stream has passed the copy).
// Capturable in a CUDA graph.
void cuda_copy_async(int device, void* dst, const void* src, int64_t bytes, CUstream_st* stream = nullptr);
void cuda_synchronize(int device);
// Makes `device` the calling thread's current GPU (kernels launch on the current device).
void cuda_set_device(int device);
// Makes `device` current for a scope and restores the previous one after, also when the scope is
// left by an exception.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  [[maybe_unused]] int device_ = 0;  // (read only in a build with CUDA)
  [[maybe_unused]] int prev_ = 0;
};

}  // namespace seis
