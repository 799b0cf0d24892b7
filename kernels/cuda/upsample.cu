// upsample2d nearest x2 (kernels/upsample.h), NHWC: x [N,H,W,C] -> y [N,2H,2W,C], float or bf16.
// forward writes y (=), a copy; backward writes dx (=), the sum of its four dy values in the order
// (0,0),(0,1),(1,0),(1,1), in fp32 (widened from bf16, rounded once). One thread per output
// (forward) or input (backward) element, or per 4 channels (float4 or bf16x4) when C % 4 == 0.
#include "kernels/cuda/common.cuh"
#include "kernels/upsample.h"

namespace seis::cuda {

namespace {

__device__ __forceinline__ float4 operator+(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}

// V is an element (float, bf16) or a vector of 4 (float4, bf16x4); `cg` is C or C/4 accordingly.
template <class V>
__global__ void upsample_forward_kernel(int64_t outputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ x,
                                        V* __restrict__ y) {
  const int64_t w2 = 2 * w, h2 = 2 * h;
  for (int64_t o = thread_index(); o < outputs; o += grid_stride()) {
    const int64_t c = o % cg;
    int64_t t = o / cg;
    const int64_t ox = t % w2;
    t /= w2;
    const int64_t oy = t % h2;
    const int64_t n = t / h2;
    y[o] = x[((n * h + oy / 2) * w + ox / 2) * cg + c];
  }
}

template <class V>
__global__ void upsample_backward_kernel(int64_t inputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ dy,
                                         V* __restrict__ dx) {
  const int64_t w2 = 2 * w;
  for (int64_t i = thread_index(); i < inputs; i += grid_stride()) {
    const int64_t c = i % cg;
    int64_t t = i / cg;
    const int64_t ix = t % w;
    t /= w;
    const int64_t iy = t % h;
    const int64_t n = t / h;
    const int64_t o00 = ((n * 2 * h + 2 * iy) * w2 + 2 * ix) * cg + c;
    const int64_t row = w2 * cg;
    store(&dx[i], ((widen(dy[o00]) + widen(dy[o00 + cg])) + widen(dy[o00 + row])) + widen(dy[o00 + row + cg]));
  }
}

void check_shape(int64_t n, int64_t h, int64_t w, int64_t c) {
  SEIS_KERNEL_CHECK(n >= 0 && h >= 0 && w >= 0 && c >= 0,
                    "negative upsample2x shape [" << n << ", " << h << ", " << w << ", " << c << "]");
}

template <class T>
void forward(int64_t n, int64_t h, int64_t w, int64_t c, const T* x, T* y, cudaStream_t stream) {
  check_shape(n, h, w, c);
  const int64_t outputs = n * 4 * h * w * c;
  if (outputs == 0) return;
  SEIS_KERNEL_CHECK(x != nullptr && y != nullptr, "null pointer");
  if (c % 4 == 0 && aligned_vec4(x) && aligned_vec4(y)) {
    upsample_forward_kernel<<<grid_for(outputs / 4), kThreads, 0, stream>>>(
        outputs / 4, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(x), reinterpret_cast<vec4_t<T>*>(y));
  } else {
    upsample_forward_kernel<<<grid_for(outputs), kThreads, 0, stream>>>(outputs, h, w, c, x, y);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void backward(int64_t n, int64_t h, int64_t w, int64_t c, const T* dy, T* dx, cudaStream_t stream) {
  check_shape(n, h, w, c);
  const int64_t inputs = n * h * w * c;
  if (inputs == 0) return;
  SEIS_KERNEL_CHECK(dy != nullptr && dx != nullptr, "null pointer");
  if (c % 4 == 0 && aligned_vec4(dy) && aligned_vec4(dx)) {
    upsample_backward_kernel<<<grid_for(inputs / 4), kThreads, 0, stream>>>(
        inputs / 4, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(dy), reinterpret_cast<vec4_t<T>*>(dx));
  } else {
    upsample_backward_kernel<<<grid_for(inputs), kThreads, 0, stream>>>(inputs, h, w, c, dy, dx);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, CUstream_st* stream) {
  forward(n, h, w, c, x, y, stream);
}

void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx, CUstream_st* stream) {
  backward(n, h, w, c, dy, dx, stream);
}

void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, CUstream_st* stream) {
  forward(n, h, w, c, x, y, stream);
}

void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, bf16* dx, CUstream_st* stream) {
  backward(n, h, w, c, dy, dx, stream);
}

}  // namespace seis::cuda
