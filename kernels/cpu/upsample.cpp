// upsample2d nearest x2 on the CPU. Layout NHWC: x [N,H,W,C] -> y [N,2H,2W,C].
// forward writes y (=); backward writes dx (=), the sum of its four dy values in the fixed order
// (0,0) + (0,1) + (1,0) + (1,1).
#include "kernels/upsample.h"

#include <cstring>

namespace seis::cpu {

void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y) {
  const int64_t w2 = 2 * w;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {  // input row (b, i) feeds output rows 2i and 2i+1
    const float* xr = x + row * w * c;
    float* y0 = y + 2 * row * w2 * c;
    for (int64_t j = 0; j < w; ++j) {
      std::memcpy(y0 + 2 * j * c, xr + j * c, c * sizeof(float));
      std::memcpy(y0 + (2 * j + 1) * c, xr + j * c, c * sizeof(float));
    }
    std::memcpy(y0 + w2 * c, y0, w2 * c * sizeof(float));
  }
}

void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx) {
  const int64_t w2 = 2 * w;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {
    const float* d0 = dy + 2 * row * w2 * c;
    const float* d1 = d0 + w2 * c;
    float* dxr = dx + row * w * c;
    for (int64_t j = 0; j < w; ++j) {
      const int64_t a = 2 * j * c, b = (2 * j + 1) * c;
      for (int64_t ch = 0; ch < c; ++ch) dxr[j * c + ch] = d0[a + ch] + d0[b + ch] + d1[a + ch] + d1[b + ch];
    }
  }
}

}  // namespace seis::cpu
