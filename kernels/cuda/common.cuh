// Shared by the hand-written kernels: launch shapes for int64 grid-stride loops, alignment tests,
// argument checks and the per-stream workspace of the deterministic reductions.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "engine/cuda_check.h"
#include "engine/error.h"

// Argument check of a kernel entry point (header-only: kernels do not link the engine).
#define SEIS_KERNEL_CHECK(cond, ...)                                                                  \
  do {                                                                                                \
    if (!(cond)) {                                                                                    \
      std::ostringstream seis_kernel_os_;                                                             \
      seis_kernel_os_ << __FILE__ << ":" << __LINE__ << ": check failed: " #cond ": " << __VA_ARGS__; \
      throw ::seis::Error(seis_kernel_os_.str());                                                     \
    }                                                                                                 \
  } while (0)

namespace seis::cuda {

constexpr int kThreads = 256;
// Grid-stride loops cover the rest; a fixed cap keeps every reduction's partition independent of
// the device, so results are bit-identical across GPUs.
constexpr int64_t kMaxBlocks = 8192;
constexpr int64_t kReduceBlocks = 1024;

inline unsigned grid_for(int64_t work_items, int64_t max_blocks = kMaxBlocks) {
  const int64_t blocks = (work_items + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, max_blocks)));
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
inline bool aligned4(const void* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; }

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

// A device buffer of kWorkspaceBytes for the current device and `stream`, allocated on first use and
// kept for the life of the process. Reductions use it in stream order, so one host thread at a time
// may launch reductions on a given stream.
constexpr int64_t kWorkspaceBytes = 64 * 1024;
void* stream_workspace(cudaStream_t stream);

}  // namespace seis::cuda

namespace seis::cuda {

// y[i] = op(x[i]) for i < n; float4 loads and stores when `vec` (both pointers 16-byte aligned),
// then a scalar tail. x and y may be the same array (each element is read before it is written by
// the same thread), but never partly overlapping.
template <class Op>
__global__ void map_kernel(int64_t n, const float* x, float* y, Op op, bool vec) {
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* y4 = reinterpret_cast<float4*>(y);
    for (int64_t i = thread_index(); i < n4; i += grid_stride()) {
      const float4 v = x4[i];
      y4[i] = make_float4(op(v.x), op(v.y), op(v.z), op(v.w));
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + thread_index(); i < n; i += grid_stride()) y[i] = op(x[i]);
}

// y[i] = op(a[i], b[i]), as map_kernel; y may be the same array as a or b.
template <class Op>
__global__ void map2_kernel(int64_t n, const float* a, const float* b, float* y, Op op, bool vec) {
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* y4 = reinterpret_cast<float4*>(y);
    for (int64_t i = thread_index(); i < n4; i += grid_stride()) {
      const float4 u = a4[i];
      const float4 v = b4[i];
      y4[i] = make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w));
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + thread_index(); i < n; i += grid_stride()) y[i] = op(a[i], b[i]);
}

template <class Op>
void launch_map(int64_t n, const float* x, float* y, Op op, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(x != nullptr && y != nullptr, "null pointer for " << n << " elements");
  const bool vec = aligned16(x) && aligned16(y);
  map_kernel<<<grid_for(vec ? n / 4 + 1 : n), kThreads, 0, stream>>>(n, x, y, op, vec);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class Op>
void launch_map2(int64_t n, const float* a, const float* b, float* y, Op op, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(a != nullptr && b != nullptr && y != nullptr, "null pointer for " << n << " elements");
  const bool vec = aligned16(a) && aligned16(b) && aligned16(y);
  map2_kernel<<<grid_for(vec ? n / 4 + 1 : n), kThreads, 0, stream>>>(n, a, b, y, op, vec);
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace seis::cuda

namespace seis::cuda {

// Sum of v over the block (blockDim.x == kThreads), in a fixed tree order; the result is valid in
// thread 0. `scratch` is shared memory of kThreads elements. Every thread of the block must call it.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  const T total = scratch[0];
  __syncthreads();  // scratch may be reused by the caller right after
  return total;
}

}  // namespace seis::cuda
