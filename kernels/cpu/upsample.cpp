// upsample2d nearest x2 on the CPU. Layout NHWC: x [N,H,W,C] -> y [N,2H,2W,C].
// forward writes y (=); backward writes dx (=), the sum of its four dy values in the fixed order
// (0,0) + (0,1) + (1,0) + (1,1), in fp32 (bf16: rounded once).
#include "kernels/upsample.h"

#include <cstring>

namespace seis::cpu {

namespace {

template <typename T>
void up_forward(int64_t n, int64_t h, int64_t w, int64_t c, const T* x, T* y) {
  const int64_t w2 = 2 * w;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {  // input row (b, i) feeds output rows 2i and 2i+1
    const T* xr = x + row * w * c;
    T* y0 = y + 2 * row * w2 * c;
    for (int64_t j = 0; j < w; ++j) {
      std::memcpy(y0 + 2 * j * c, xr + j * c, c * sizeof(T));
      std::memcpy(y0 + (2 * j + 1) * c, xr + j * c, c * sizeof(T));
    }
    std::memcpy(y0 + w2 * c, y0, w2 * c * sizeof(T));
  }
}

template <typename T>
void up_backward(int64_t n, int64_t h, int64_t w, int64_t c, const T* dy, T* dx) {
  const int64_t w2 = 2 * w;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {
    const T* d0 = dy + 2 * row * w2 * c;
    const T* d1 = d0 + w2 * c;
    T* dxr = dx + row * w * c;
    for (int64_t j = 0; j < w; ++j) {
      const int64_t a = 2 * j * c, b = (2 * j + 1) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        store(dxr + j * c + ch,
              to_float(d0[a + ch]) + to_float(d0[b + ch]) + to_float(d1[a + ch]) + to_float(d1[b + ch]));
      }
    }
  }
}

}  // namespace

void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y) {
  up_forward(n, h, w, c, x, y);
}
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y) {
  up_forward(n, h, w, c, x, y);
}
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx) {
  up_backward(n, h, w, c, dy, dx);
}
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, bf16* dx) {
  up_backward(n, h, w, c, dy, dx);
}

}  // namespace seis::cpu
