// Shared by the hand-written kernels: launch shapes for int64 grid-stride loops, alignment tests,
// argument checks, the per-stream workspace of the deterministic reductions, and the element types
// (float or bf16 storage, fp32 arithmetic: widen on load, round once on store).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "engine/cuda_check.h"
#include "engine/error.h"
#include "kernels/bf16.h"

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

// ---- Element types ------------------------------------------------------------------------------
// Storage is float or bf16 (kernels/bf16.h, the bits of __nv_bfloat16); arithmetic is fp32. widen()
// gives the fp32 value of an element (or of a vector of 4); store() writes an fp32 result into an
// element, rounding into bf16 to nearest even with seis::to_bf16 (the rounding of
// __float2bfloat16_rn, and the CPU twins' function, so that their bits agree, NaN payloads included).
static_assert(sizeof(bf16) == sizeof(__nv_bfloat16) && alignof(bf16) == alignof(__nv_bfloat16),
              "seis::bf16 and __nv_bfloat16 share their layout");

// Four consecutive bf16 elements as one 8-byte access (float4 is the float counterpart).
struct alignas(8) bf16x4 {
  bf16 x, y, z, w;
};

template <class T>
struct Vec4Of;
template <>
struct Vec4Of<float> {
  using type = float4;
};
template <>
struct Vec4Of<bf16> {
  using type = bf16x4;
};
// 4 consecutive elements of T, moved as one aligned vector: float4 or bf16x4.
template <class T>
using vec4_t = typename Vec4Of<T>::type;

// p may be read or written as vec4_t<T> (16 bytes for float, 8 for bf16).
template <class T>
inline bool aligned_vec4(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % sizeof(vec4_t<T>) == 0;
}

__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(bf16 v) { return to_float(v); }
__device__ __forceinline__ float4 widen(float4 v) { return v; }
__device__ __forceinline__ float4 widen(bf16x4 v) {
  return make_float4(to_float(v.x), to_float(v.y), to_float(v.z), to_float(v.w));
}

using ::seis::store;  // store(float*, float) and store(bf16*, float), kernels/bf16.h
__device__ __forceinline__ void store(float4* p, float4 v) { *p = v; }
__device__ __forceinline__ void store(bf16x4* p, float4 v) {
  *p = bf16x4{to_bf16(v.x), to_bf16(v.y), to_bf16(v.z), to_bf16(v.w)};
}

// ---- Element-wise maps ----------------------------------------------------------------------------

// y[i] = op(x[i]) for i < n, op on fp32 values; In and Out are float or bf16 (widened on load,
// rounded once on store). Vector loads and stores (vec4_t) when `vec` (both pointers aligned to
// their vector), then a scalar tail. x and y may be the same array (each element is read before it
// is written by the same thread), but never partly overlapping.
template <class In, class Out, class Op>
__global__ void map_kernel(int64_t n, const In* x, Out* y, Op op, bool vec) {
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    const vec4_t<In>* x4 = reinterpret_cast<const vec4_t<In>*>(x);
    vec4_t<Out>* y4 = reinterpret_cast<vec4_t<Out>*>(y);
    for (int64_t i = thread_index(); i < n4; i += grid_stride()) {
      const float4 v = widen(x4[i]);
      store(&y4[i], make_float4(op(v.x), op(v.y), op(v.z), op(v.w)));
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + thread_index(); i < n; i += grid_stride()) store(&y[i], op(widen(x[i])));
}

// y[i] = op(a[i], b[i]), as map_kernel; y may be the same array as a or b (of the same type).
template <class A, class B, class Out, class Op>
__global__ void map2_kernel(int64_t n, const A* a, const B* b, Out* y, Op op, bool vec) {
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    const vec4_t<A>* a4 = reinterpret_cast<const vec4_t<A>*>(a);
    const vec4_t<B>* b4 = reinterpret_cast<const vec4_t<B>*>(b);
    vec4_t<Out>* y4 = reinterpret_cast<vec4_t<Out>*>(y);
    for (int64_t i = thread_index(); i < n4; i += grid_stride()) {
      const float4 u = widen(a4[i]);
      const float4 v = widen(b4[i]);
      store(&y4[i], make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w)));
    }
    tail = n4 * 4;
  }
  for (int64_t i = tail + thread_index(); i < n; i += grid_stride()) store(&y[i], op(widen(a[i]), widen(b[i])));
}

template <class In, class Out, class Op>
void launch_map(int64_t n, const In* x, Out* y, Op op, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(x != nullptr && y != nullptr, "null pointer for " << n << " elements");
  const bool vec = aligned_vec4(x) && aligned_vec4(y);
  map_kernel<<<grid_for(vec ? n / 4 + 1 : n), kThreads, 0, stream>>>(n, x, y, op, vec);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class A, class B, class Out, class Op>
void launch_map2(int64_t n, const A* a, const B* b, Out* y, Op op, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(a != nullptr && b != nullptr && y != nullptr, "null pointer for " << n << " elements");
  const bool vec = aligned_vec4(a) && aligned_vec4(b) && aligned_vec4(y);
  map2_kernel<<<grid_for(vec ? n / 4 + 1 : n), kThreads, 0, stream>>>(n, a, b, y, op, vec);
  SEIS_CUDA_LAUNCH_CHECK();
}

// Ops shared by several files.
struct CopyOp {  // with launch_map: a copy, or a conversion between float and bf16
  __device__ float operator()(float v) const { return v; }
};
struct ReluMaskOp {  // g where y > 0, else 0: the ReLU backward, and the y_relu mask of conv2d
  __device__ float operator()(float y, float g) const { return y > 0.0f ? g : 0.0f; }
};

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
