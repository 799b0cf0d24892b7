// maxpool2d 2x2 stride 2 on the CPU. Layout NHWC; output [N, H/2, W/2, C] (floor).
// forward writes y and argmax (=), argmax = dy*2 + dx of the first maximum in the order
// (0,0), (0,1), (1,0), (1,1). backward writes dx (=), every element of it, zero where no output took its value.
#include "kernels/pool.h"

namespace seis::cpu {

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax) {
  const int64_t oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * oh; ++row) {  // output row (n, i)
    const int64_t b = row / oh, i = row % oh;
    const float* top = x + ((b * h + 2 * i) * w) * c;
    const float* bottom = top + w * c;
    for (int64_t j = 0; j < ow; ++j) {
      const float* cand[4] = {top + 2 * j * c, top + (2 * j + 1) * c, bottom + 2 * j * c, bottom + (2 * j + 1) * c};
      float* yo = y + (row * ow + j) * c;
      uint8_t* ao = argmax + (row * ow + j) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float best = cand[0][ch];
        uint8_t arg = 0;
        for (uint8_t q = 1; q < 4; ++q) {
          if (cand[q][ch] > best) {  // strict: ties keep the first
            best = cand[q][ch];
            arg = q;
          }
        }
        yo[ch] = best;
        ao[ch] = arg;
      }
    }
  }
}

void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx) {
  const int64_t oh = h / 2, ow = w / 2;
  // One input row per iteration: each dx element is written exactly once, by a gather.
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {
    const int64_t b = row / h, hh = row % h;
    float* dxr = dx + row * w * c;
    if (hh >= 2 * oh) {  // last row of an odd H: no output reads it
      for (int64_t i = 0; i < w * c; ++i) dxr[i] = 0.0f;
      continue;
    }
    const int64_t orow = b * oh + hh / 2;
    for (int64_t ww = 0; ww < w; ++ww) {
      float* d = dxr + ww * c;
      if (ww >= 2 * ow) {
        for (int64_t ch = 0; ch < c; ++ch) d[ch] = 0.0f;
        continue;
      }
      const uint8_t pos = static_cast<uint8_t>((hh % 2) * 2 + ww % 2);
      const float* g = dy + (orow * ow + ww / 2) * c;
      const uint8_t* a = argmax + (orow * ow + ww / 2) * c;
      for (int64_t ch = 0; ch < c; ++ch) d[ch] = a[ch] == pos ? g[ch] : 0.0f;
    }
  }
}

}  // namespace seis::cpu
