// maxpool2d 2x2 stride 2 (kernels/pool.h), NHWC: x [N,H,W,C] -> y [N,H/2,W/2,C] (floor), float or
// bf16 values. forward writes y and the 2-bit argmax (=), argmax = dy*2 + dx of the first maximum in
// the order (0,0),(0,1),(1,0),(1,1), packed 4 to a byte along each output row (kernels/pool.h);
// backward writes every element of dx (=), zero where no output took it, or adds that into dx
// (accumulate: fp32 sum, rounded once, as add_inplace). Values are compared in fp32 and moved as
// they are. One thread per argmax byte (forward) or per input element (backward), or per 4
// channels (float4 or bf16x4, one argmax byte) when C % 4 == 0.
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

// Output k of output row r (k over the row's wo x C outputs): argmax byte r * rb + k / 4, bits 2 (k % 4).
__device__ __forceinline__ unsigned arg_at(const uint8_t* __restrict__ argmax, int64_t r, int64_t rb, int64_t k) {
  return (static_cast<unsigned>(argmax[r * rb + (k >> 2)]) >> ((k & 3) * 2)) & 3u;
}

// One thread per argmax byte: the up to 4 consecutive outputs of one output row that it packs.
// T is float or bf16.
template <class T>
__global__ void maxpool_forward_kernel(int64_t bytes, int64_t h, int64_t w, int64_t c, const T* __restrict__ x,
                                       T* __restrict__ y, uint8_t* __restrict__ argmax) {
  const int64_t ho = h / 2, wo = w / 2, per_row = wo * c, rb = (per_row + 3) / 4;
  for (int64_t b = thread_index(); b < bytes; b += grid_stride()) {
    const int64_t r = b / rb;  // output row (n, oh)
    const int64_t n = r / ho, oh = r % ho;
    const int64_t row = w * c;
    unsigned packed = 0;
    for (int64_t q = 0; q < 4; ++q) {
      const int64_t k = (b % rb) * 4 + q;
      if (k >= per_row) break;
      const int64_t ow = k / c, ch = k % c;
      const int64_t i00 = ((n * h + 2 * oh) * w + 2 * ow) * c + ch;
      T best;
      uint8_t arg;
      max4(x[i00], x[i00 + c], x[i00 + row], x[i00 + row + c], best, arg);
      y[r * per_row + k] = best;
      packed |= static_cast<unsigned>(arg) << (q * 2);
    }
    argmax[b] = static_cast<uint8_t>(packed);
  }
}

// C % 4 == 0: one thread per 4 channels of one output pixel, whose 4 positions fill exactly one
// argmax byte (rows hold whole bytes: wo x C is a multiple of 4), byte o for group o. `cg` = C / 4.
// V is vec4_t<T>: float4 or bf16x4.
template <class V>
__global__ void maxpool_forward_kernel_vec4(int64_t outputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ x,
                                            V* __restrict__ y, uint8_t* __restrict__ argmax) {
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
    uint8_t a0, a1, a2, a3;
    max4(a.x, b.x, d.x, e.x, best.x, a0);
    max4(a.y, b.y, d.y, e.y, best.y, a1);
    max4(a.z, b.z, d.z, e.z, best.z, a2);
    max4(a.w, b.w, d.w, e.w, best.w, a3);
    y[o] = best;
    argmax[o] = static_cast<uint8_t>(a0 | (a1 << 2) | (a2 << 4) | (a3 << 6));
  }
}

// dx (=) g, moved as it is, or dx (+=) g rounded once (add_inplace's bits; g is +0 where no output
// took it). T is float, bf16 or their vec4_t.
__device__ __forceinline__ float sum(float a, float b) { return a + b; }
__device__ __forceinline__ float4 sum(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
template <class T>
__device__ __forceinline__ void put(T* d, T g, bool accumulate) {
  if (accumulate) {
    store(d, sum(widen(*d), widen(g)));
  } else {
    *d = g;
  }
}

// One thread per input element: it reads the argmax of the output it fed, if any. T is float or bf16.
template <class T>
__global__ void maxpool_backward_kernel(int64_t inputs, int64_t h, int64_t w, int64_t c, const T* __restrict__ dy,
                                        const uint8_t* __restrict__ argmax, T* __restrict__ dx, bool accumulate) {
  const int64_t ho = h / 2, wo = w / 2, rb = (wo * c + 3) / 4;
  for (int64_t i = thread_index(); i < inputs; i += grid_stride()) {
    const int64_t ch = i % c;
    int64_t t = i / c;
    const int64_t ix = t % w;
    t /= w;
    const int64_t iy = t % h;
    const int64_t n = t / h;
    const int64_t oh = iy / 2, ow = ix / 2;
    T g{};  // +0
    if (oh < ho && ow < wo) {
      const int64_t r = n * ho + oh, k = ow * c + ch;
      const unsigned pos = static_cast<unsigned>((iy & 1) * 2 + (ix & 1));
      if (arg_at(argmax, r, rb, k) == pos) g = dy[r * wo * c + k];
    }
    put(&dx[i], g, accumulate);
  }
}

// C % 4 == 0: one thread per 4 channels of one input pixel. V is vec4_t<T>: float4 or bf16x4; cg = C / 4.
template <class V>
__global__ void maxpool_backward_kernel_vec4(int64_t inputs, int64_t h, int64_t w, int64_t cg, const V* __restrict__ dy,
                                             const uint8_t* __restrict__ argmax, V* __restrict__ dx, bool accumulate) {
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
      const int64_t o = ((n * ho + oh) * wo + ow) * cg + c;  // also its argmax byte
      const unsigned pos = static_cast<unsigned>((iy & 1) * 2 + (ix & 1));
      const unsigned a = argmax[o];
      const V d = dy[o];
      const V zero{};
      g.x = (a & 3u) == pos ? d.x : zero.x;
      g.y = ((a >> 2) & 3u) == pos ? d.y : zero.y;
      g.z = ((a >> 4) & 3u) == pos ? d.z : zero.z;
      g.w = ((a >> 6) & 3u) == pos ? d.w : zero.w;
    }
    put(&dx[i], g, accumulate);
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
  if (c % 4 == 0 && aligned_vec4(x) && aligned_vec4(y)) {
    const int64_t groups = outputs / 4;
    maxpool_forward_kernel_vec4<<<grid_for(groups), kThreads, 0, stream>>>(
        groups, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(x), reinterpret_cast<vec4_t<T>*>(y), argmax);
  } else {
    const int64_t bytes = maxpool2d_argmax_bytes(n, h, w, c);
    maxpool_forward_kernel<<<grid_for(bytes), kThreads, 0, stream>>>(bytes, h, w, c, x, y, argmax);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void backward(int64_t n, int64_t h, int64_t w, int64_t c, const T* dy, const uint8_t* argmax, T* dx, bool accumulate,
              cudaStream_t stream) {
  check_shape(n, h, w, c);
  const int64_t inputs = n * h * w * c;
  if (inputs == 0) return;
  const int64_t outputs = n * (h / 2) * (w / 2) * c;
  SEIS_KERNEL_CHECK(dx != nullptr && (outputs == 0 || (dy != nullptr && argmax != nullptr)), "null pointer");
  if (c % 4 == 0 && aligned_vec4(dy) && aligned_vec4(dx)) {
    const int64_t groups = inputs / 4;
    maxpool_backward_kernel_vec4<<<grid_for(groups), kThreads, 0, stream>>>(
        groups, h, w, c / 4, reinterpret_cast<const vec4_t<T>*>(dy), argmax, reinterpret_cast<vec4_t<T>*>(dx),
        accumulate);
  } else {
    maxpool_backward_kernel<<<grid_for(inputs), kThreads, 0, stream>>>(inputs, h, w, c, dy, argmax, dx, accumulate);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax,
                       CUstream_st* stream) {
  forward(n, h, w, c, x, y, argmax, stream);
}

void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        bool accumulate, CUstream_st* stream) {
  backward(n, h, w, c, dy, argmax, dx, accumulate, stream);
}

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax,
                       CUstream_st* stream) {
  forward(n, h, w, c, x, y, argmax, stream);
}

void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        bool accumulate, CUstream_st* stream) {
  backward(n, h, w, c, dy, argmax, dx, accumulate, stream);
}

}  // namespace seis::cuda
