// Concatenation along channels (kernels/concat.h), NHWC: a [P,Ca] and b [P,Cb] -> y [P,Ca+Cb], float
// or bf16 (copies only). concat writes y (=); split writes da and db (=). One thread per element of y
// (or dy), or per 4 channels (float4 or bf16x4) when Ca and Cb are multiples of 4.
#include "kernels/concat.h"
#include "kernels/cuda/common.cuh"

namespace seis::cuda {

namespace {

// V is an element (float, bf16) or a vector of 4 (float4, bf16x4); ca and cb count V elements.
template <class V>
__global__ void concat_kernel(int64_t total, int64_t ca, int64_t cb, const V* __restrict__ a, const V* __restrict__ b,
                              V* __restrict__ y) {
  const int64_t ct = ca + cb;
  for (int64_t i = thread_index(); i < total; i += grid_stride()) {
    const int64_t p = i / ct;
    const int64_t c = i - p * ct;
    y[i] = c < ca ? a[p * ca + c] : b[p * cb + (c - ca)];
  }
}

template <class V>
__global__ void split_kernel(int64_t total, int64_t ca, int64_t cb, const V* __restrict__ dy, V* __restrict__ da,
                             V* __restrict__ db) {
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

template <class T>
void concat(int64_t pixels, int64_t ca, int64_t cb, const T* a, const T* b, T* y, cudaStream_t stream) {
  check_args(pixels, ca, cb, a, b, y);
  const int64_t total = pixels * (ca + cb);
  if (total == 0) return;
  if (ca % 4 == 0 && cb % 4 == 0 && aligned_vec4(a) && aligned_vec4(b) && aligned_vec4(y)) {
    using V = vec4_t<T>;
    concat_kernel<<<grid_for(total / 4), kThreads, 0, stream>>>(total / 4, ca / 4, cb / 4,
                                                                reinterpret_cast<const V*>(a),
                                                                reinterpret_cast<const V*>(b), reinterpret_cast<V*>(y));
  } else {
    concat_kernel<<<grid_for(total), kThreads, 0, stream>>>(total, ca, cb, a, b, y);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void split(int64_t pixels, int64_t ca, int64_t cb, const T* dy, T* da, T* db, cudaStream_t stream) {
  check_args(pixels, ca, cb, da, db, dy);
  const int64_t total = pixels * (ca + cb);
  if (total == 0) return;
  if (ca % 4 == 0 && cb % 4 == 0 && aligned_vec4(dy) && aligned_vec4(da) && aligned_vec4(db)) {
    using V = vec4_t<T>;
    split_kernel<<<grid_for(total / 4), kThreads, 0, stream>>>(
        total / 4, ca / 4, cb / 4, reinterpret_cast<const V*>(dy), reinterpret_cast<V*>(da), reinterpret_cast<V*>(db));
  } else {
    split_kernel<<<grid_for(total), kThreads, 0, stream>>>(total, ca, cb, dy, da, db);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y,
                     CUstream_st* stream) {
  concat(pixels, ca, cb, a, b, y, stream);
}

void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db,
                    CUstream_st* stream) {
  split(pixels, ca, cb, dy, da, db, stream);
}

void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* a, const bf16* b, bf16* y,
                     CUstream_st* stream) {
  concat(pixels, ca, cb, a, b, y, stream);
}

void split_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* dy, bf16* da, bf16* db, CUstream_st* stream) {
  split(pixels, ca, cb, dy, da, db, stream);
}

}  // namespace seis::cuda
