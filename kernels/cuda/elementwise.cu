// Element-wise helpers of autograd, the optimizers and mixed precision (kernels/elementwise.h), flat
// arrays: add_inplace y += x (float, or bf16: y = round(y + x), the sum in fp32); scale_inplace y *= a;
// divide y = x / d (IEEE-rounded: nvcc's default -prec-div=true, no fast math);
// fill y = value; convert y = x between float and bf16 (to nearest even into bf16, exact into float).
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace seis::cuda {

namespace {

struct Add {
  __device__ float operator()(float x, float y) const { return y + x; }
};
struct Scale {
  float a;
  __device__ float operator()(float y) const { return y * a; }
};
struct Divide {
  float d;
  __device__ float operator()(float x) const { return x / d; }
};

// Writes only: no read of the uninitialised output.
__global__ void fill_kernel(int64_t n, float value, float* __restrict__ y, bool vec) {
  int64_t tail = 0;
  if (vec) {
    const int64_t n4 = n / 4;
    float4* y4 = reinterpret_cast<float4*>(y);
    for (int64_t i = thread_index(); i < n4; i += grid_stride()) y4[i] = make_float4(value, value, value, value);
    tail = n4 * 4;
  }
  for (int64_t i = tail + thread_index(); i < n; i += grid_stride()) y[i] = value;
}

}  // namespace

void add_inplace(int64_t n, const float* x, float* y, CUstream_st* stream) { launch_map2(n, x, y, y, Add{}, stream); }

void add_inplace(int64_t n, const bf16* x, bf16* y, CUstream_st* stream) { launch_map2(n, x, y, y, Add{}, stream); }

void scale_inplace(int64_t n, float a, float* y, CUstream_st* stream) { launch_map(n, y, y, Scale{a}, stream); }

void divide(int64_t n, const float* x, float d, float* y, CUstream_st* stream) {
  launch_map(n, x, y, Divide{d}, stream);
}

void fill(int64_t n, float value, float* y, CUstream_st* stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(y != nullptr, "null pointer for " << n << " elements");
  const bool vec = aligned16(y);
  fill_kernel<<<grid_for(vec ? n / 4 + 1 : n), kThreads, 0, stream>>>(n, value, y, vec);
  SEIS_CUDA_LAUNCH_CHECK();
}

void convert(int64_t n, const float* x, bf16* y, CUstream_st* stream) { launch_map(n, x, y, CopyOp{}, stream); }

void convert(int64_t n, const bf16* x, float* y, CUstream_st* stream) { launch_map(n, x, y, CopyOp{}, stream); }

}  // namespace seis::cuda
