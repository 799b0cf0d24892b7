// maxpool2d 2x2 stride 2 (kernels/pool.h), NHWC: x [N,H,W,C] -> y [N,H/2,W/2,C] (floor), float or
// bf16 values. forward writes y and argmax (=), argmax = dy*2 + dx of the first maximum in the order
// (0,0),(0,1),(1,0),(1,1); backward writes every element of dx (=), zero where no output took it.
// Values are compared in fp32 and moved as they are (no rounding). One thread per output (forward)
// or per input (backward) element, or per 4 channels (float4 or bf16x4) when C % 4 == 0.
#include "kernels/cuda/common.cuh"
#include "kernels/pool.h"

namespace seis::cuda {

namespace {

// Strictly greater keeps the first maximum on ties (as the CPU reference, NaN wins only at (0,0)).
// T is float or bf16, compared as fp32.
template <class T>
__device__ __forceinline__ void take_max(T v, uint8_t pos, T& best, uint8_t& arg) {
  if (widen(v) > widen(best)) {
    best = v;
    arg = pos;
  }
}

template <class T>
__device__ __forceinline__ void max4(T v0, T v1, T v2, T v3, T& best, uint8_t& arg) {
  best = v0;
  arg = 0;
  take_max(v1, 1, best, arg);
  take_max(v2, 2, best, arg);
  take_max(v3, 3, best, arg);
}

// T is float or bf16; `cg` is C (scalar path) or C/4 (vector path): the number of channel groups per pixel.
template <class T>
__global__ void maxpool_forward_kernel(int64_t outputs, int64_t h, int64_t w, int64_t cg, const T* __restrict__ x,
                                       T* __restrict__ y, uint8_t* __restrict__ argmax) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t o = thread_index(); o < outputs; o += grid_stride()) {
    const int64_t c = o % cg;
    int64_t t = o / cg;
    const int64_t ow = t % wo;
    t /= wo;
    const int64_t oh = t % ho;
    const int64_t n = t / ho;
    const int64_t i00 = ((n * h + 2 * oh) * w + 2 * ow) * cg + c;
    const int64_t row = w * cg;
    T best;
    uint8_t arg;
    max4(x[i00], x[i00 + cg], x[i00 + row], x[i00 + row + cg], best, arg);
    y[o] = best;
    argmax[o] = arg;
  }
}

// V is vec4_t<T>: float4 or bf16x4.
template <class V>
__global__ void maxpool_forward_kernel_vec4(int64_t outputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ x,
                                            V* __restrict__ y, uchar4* __restrict__ argmax) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t o = thread_index(); o < outputs; o += grid_stride()) {
    const int64_t c = o % cg;
    int64_t t = o / cg;
    const int64_t ow = t % wo;
    t /= wo;
    const int64_t oh = t % ho;
    const int64_t n = t / ho;
    const int64_t i00 = ((n * h + 2 * oh) * w + 2 * ow) * cg + c;
    const int64_t row = w * cg;
    const V a = x[i00], b = x[i00 + cg], d = x[i00 + row], e = x[i00 + row + cg];
    V best;
    uchar4 arg;
    max4(a.x, b.x, d.x, e.x, best.x, arg.x);
    max4(a.y, b.y, d.y, e.y, best.y, arg.y);
    max4(a.z, b.z, d.z, e.z, best.z, arg.z);
    max4(a.w, b.w, d.w, e.w, best.w, arg.w);
    y[o] = best;
    argmax[o] = arg;
  }
}

// One thread per input element: it reads the argmax of the output it fed, if any. T is float or bf16.
template <class T>
__global__ void maxpool_backward_kernel(int64_t inputs, int64_t h, int64_t w, int64_t cg, const T* __restrict__ dy,
                                        const uint8_t* __restrict__ argmax, T* __restrict__ dx) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t i = thread_index(); i < inputs; i += grid_stride()) {
    const int64_t c = i % cg;
    int64_t t = i / cg;
    const int64_t ix = t % w;
    t /= w;
    const int64_t iy = t % h;
    const int64_t n = t / h;
    const int64_t oh = iy / 2, ow = ix / 2;
    T g{};  // +0
    if (oh < ho && ow < wo) {
      const int64_t o = ((n * ho + oh) * wo + ow) * cg + c;
      const uint8_t pos = static_cast<uint8_t>((iy & 1) * 2 + (ix & 1));
      if (argmax[o] == pos) g = dy[o];
    }
    dx[i] = g;
  }
}

// V is vec4_t<T>: float4 or bf16x4.
template <class V>
__global__ void maxpool_backward_kernel_vec4(int64_t inputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ dy,
                                             const uchar4* __restrict__ argmax, V* __restrict__ dx) {
  const int64_t ho = h / 2, wo = w / 2;
  for (int64_t i = thread_index(); i < inputs; i += grid_stride()) {
    const int64_t c = i % cg;
    int64_t t = i / cg;
    const int64_t ix = t % w;
    t /= w;
    const int64_t iy = t % h;
    const int64_t n = t / h;
    const int64_t oh = iy / 2, ow = ix / 2;
    V g{};  // +0
    if (oh < ho && ow < wo) {
      const int64_t o = ((n * ho + oh) * wo + ow) * cg + c;
      const uint8_t pos = static_cast<uint8_t>((iy & 1) * 2 + (ix & 1));
      const uchar4 a = argmax[o];
      const V d = dy[o];
      const V zero{};
      g.x = a.x == pos ? d.x : zero.x;
      g.y = a.y == pos ? d.y : zero.y;
      g.z = a.z == pos ? d.z : zero.z;
      g.w = a.w == pos ? d.w : zero.w;
    }
    dx[i] = g;
  }
}

void check_shape(int64_t n, int64_t h, int64_t w, int64_t c) {
  SEIS_KERNEL_CHECK(n >= 0 && h >= 0 && w >= 0 && c >= 0,
                    "negative maxpool2d shape [" << n << ", " << h << ", " << w << ", " << c << "]");
}

template <class T>
void forward(int64_t n, int64_t h, int64_t w, int64_t c, const T* x, T* y, uint8_t* argmax, cudaStream_t stream) {
  check_shape(n, h, w, c);
  const int64_t outputs = n * (h / 2) * (w / 2) * c;
  if (outputs == 0) return;
  SEIS_KERNEL_CHECK(x != nullptr && y != nullptr && argmax != nullptr, "null pointer");
  if (c % 4 == 0 && aligned_vec4(x) && aligned_vec4(y) && aligned4(argmax)) {
    const int64_t groups = outputs / 4;
    maxpool_forward_kernel_vec4<<<grid_for(groups), kThreads, 0, stream>>>(
        groups, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(x), reinterpret_cast<vec4_t<T>*>(y),
        reinterpret_cast<uchar4*>(argmax));
  } else {
    maxpool_forward_kernel<<<grid_for(outputs), kThreads, 0, stream>>>(outputs, h, w, c, x, y, argmax);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void backward(int64_t n, int64_t h, int64_t w, int64_t c, const T* dy, const uint8_t* argmax, T* dx,
              cudaStream_t stream) {
  check_shape(n, h, w, c);
  const int64_t inputs = n * h * w * c;
  if (inputs == 0) return;
  const int64_t outputs = n * (h / 2) * (w / 2) * c;
  SEIS_KERNEL_CHECK(dx != nullptr && (outputs == 0 || (dy != nullptr && argmax != nullptr)), "null pointer");
  if (c % 4 == 0 && aligned_vec4(dy) && aligned_vec4(dx) && aligned4(argmax)) {
    const int64_t groups = inputs / 4;
    maxpool_backward_kernel_vec4<<<grid_for(groups), kThreads, 0, stream>>>(
        groups, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(dy), reinterpret_cast<const uchar4*>(argmax),
        reinterpret_cast<vec4_t<T>*>(dx));
  } else {
    maxpool_backward_kernel<<<grid_for(inputs), kThreads, 0, stream>>>(inputs, h, w, c, dy, argmax, dx);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax,
                       CUstream_st* stream) {
  forward(n, h, w, c, x, y, argmax, stream);
}

void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        CUstream_st* stream) {
  backward(n, h, w, c, dy, argmax, dx, stream);
}

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax,
                       CUstream_st* stream) {
  forward(n, h, w, c, x, y, argmax, stream);
}

void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        CUstream_st* stream) {
  backward(n, h, w, c, dy, argmax, dx, stream);
}

}  // namespace seis::cuda
