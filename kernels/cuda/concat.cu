// Concatenation along channels (kernels/concat.h), NHWC: a [P,Ca] and b [P,Cb] -> y [P,Ca+Cb].
// concat writes y (=); split writes da and db (=). One thread per element of y (or dy), or per 4
// channels when Ca and Cb are multiples of 4.
#include "kernels/concat.h"
#include "kernels/cuda/common.cuh"

namespace seis::cuda {

namespace {

// T is float or float4; ca and cb count T elements.
template <class T>
__global__ void concat_kernel(int64_t total, int64_t ca, int64_t cb, const T* __restrict__ a, const T* __restrict__ b,
                              T* __restrict__ y) {
  const int64_t ct = ca + cb;
  for (int64_t i = thread_index(); i < total; i += grid_stride()) {
    const int64_t p = i / ct;
    const int64_t c = i - p * ct;
    y[i] = c < ca ? a[p * ca + c] : b[p * cb + (c - ca)];
  }
}

template <class T>
__global__ void split_kernel(int64_t total, int64_t ca, int64_t cb, const T* __restrict__ dy, T* __restrict__ da,
                             T* __restrict__ db) {
  const int64_t ct = ca + cb;
  for (int64_t i = thread_index(); i < total; i += grid_stride()) {
    const int64_t p = i / ct;
    const int64_t c = i - p * ct;
    if (c < ca) {
      da[p * ca + c] = dy[i];
    } else {
      db[p * cb + (c - ca)] = dy[i];
    }
  }
}

void check_args(int64_t pixels, int64_t ca, int64_t cb, const void* a, const void* b, const void* y) {
  SEIS_KERNEL_CHECK(pixels >= 0 && ca >= 0 && cb >= 0,
                    "negative concat shape: pixels " << pixels << ", ca " << ca << ", cb " << cb);
  SEIS_KERNEL_CHECK(y != nullptr && (ca == 0 || a != nullptr) && (cb == 0 || b != nullptr), "null pointer");
}

}  // namespace

void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y,
                     CUstream_st* stream) {
  check_args(pixels, ca, cb, a, b, y);
  const int64_t total = pixels * (ca + cb);
  if (total == 0) return;
  if (ca % 4 == 0 && cb % 4 == 0 && aligned16(a) && aligned16(b) && aligned16(y)) {
    concat_kernel<<<grid_for(total / 4), kThreads, 0, stream>>>(
        total / 4, ca / 4, cb / 4, reinterpret_cast<const float4*>(a), reinterpret_cast<const float4*>(b),
        reinterpret_cast<float4*>(y));
  } else {
    concat_kernel<<<grid_for(total), kThreads, 0, stream>>>(total, ca, cb, a, b, y);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db,
                    CUstream_st* stream) {
  check_args(pixels, ca, cb, da, db, dy);
  const int64_t total = pixels * (ca + cb);
  if (total == 0) return;
  if (ca % 4 == 0 && cb % 4 == 0 && aligned16(dy) && aligned16(da) && aligned16(db)) {
    split_kernel<<<grid_for(total / 4), kThreads, 0, stream>>>(
        total / 4, ca / 4, cb / 4, reinterpret_cast<const float4*>(dy), reinterpret_cast<float4*>(da),
        reinterpret_cast<float4*>(db));
  } else {
    split_kernel<<<grid_for(total), kThreads, 0, stream>>>(total, ca, cb, dy, da, db);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace seis::cuda
