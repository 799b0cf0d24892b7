// maxpool2d 2x2 stride 2 on the CPU (kernels/pool.h). Layout NHWC; output [N, H/2, W/2, C] (floor).
// forward writes y and the 2-bit argmax (=), argmax = dy*2 + dx of the first maximum in the order
// (0,0), (0,1), (1,0), (1,1). backward writes dx (=), every element of it, zero where no output took
// its value, or adds that into dx (accumulate). f32 or bf16: values are compared widened and moved
// unchanged; an accumulated sum is rounded once, as add_inplace rounds it.
#include "kernels/pool.h"

namespace seis::cpu {

namespace {

template <typename T>
void pool_forward(int64_t n, int64_t h, int64_t w, int64_t c, const T* x, T* y, uint8_t* argmax) {
  const int64_t oh = h / 2, ow = w / 2, rb = maxpool2d_argmax_row_bytes(w, c);
  // One output row per iteration: it alone writes its argmax bytes.
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * oh; ++row) {  // output row (n, i)
    const int64_t b = row / oh, i = row % oh;
    const T* top = x + ((b * h + 2 * i) * w) * c;
    const T* bottom = top + w * c;
    uint8_t* ar = argmax + row * rb;
    for (int64_t k = 0; k < rb; ++k) ar[k] = 0;
    for (int64_t j = 0; j < ow; ++j) {
      const T* cand[4] = {top + 2 * j * c, top + (2 * j + 1) * c, bottom + 2 * j * c, bottom + (2 * j + 1) * c};
      T* yo = y + (row * ow + j) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float best = to_float(cand[0][ch]);
        uint8_t arg = 0;
        for (uint8_t q = 1; q < 4; ++q) {
          if (to_float(cand[q][ch]) > best) {  // strict: ties keep the first
            best = to_float(cand[q][ch]);
            arg = q;
          }
        }
        yo[ch] = cand[arg][ch];
        const int64_t k = j * c + ch;
        ar[k >> 2] = static_cast<uint8_t>(ar[k >> 2] | (arg << ((k & 3) * 2)));
      }
    }
  }
}

template <typename T>
void pool_backward(int64_t n, int64_t h, int64_t w, int64_t c, const T* dy, const uint8_t* argmax, T* dx,
                   bool accumulate) {
  const int64_t oh = h / 2, ow = w / 2, rb = maxpool2d_argmax_row_bytes(w, c);
  // dx (=) g, or dx (+=) g with the sum rounded once (add_inplace's bits: g is +0 where no output took it).
  auto put = [accumulate](T* d, T g) {
    if (accumulate) {
      store(d, to_float(*d) + to_float(g));
    } else {
      *d = g;
    }
  };
  const T zero{};
  // One input row per iteration: each dx element is written exactly once, by a gather.
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < n * h; ++row) {
    const int64_t b = row / h, hh = row % h;
    T* dxr = dx + row * w * c;
    if (hh >= 2 * oh) {  // last row of an odd H: no output reads it
      for (int64_t i = 0; i < w * c; ++i) put(dxr + i, zero);
      continue;
    }
    const int64_t orow = b * oh + hh / 2;
    const uint8_t* ar = argmax + orow * rb;
    for (int64_t ww = 0; ww < w; ++ww) {
      T* d = dxr + ww * c;
      if (ww >= 2 * ow) {
        for (int64_t ch = 0; ch < c; ++ch) put(d + ch, zero);
        continue;
      }
      const unsigned pos = static_cast<unsigned>((hh % 2) * 2 + ww % 2);
      const T* g = dy + (orow * ow + ww / 2) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t k = (ww / 2) * c + ch;
        const unsigned arg = (ar[k >> 2] >> ((k & 3) * 2)) & 3u;
        put(d + ch, arg == pos ? g[ch] : zero);
      }
    }
  }
}

}  // namespace

void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax) {
  pool_forward(n, h, w, c, x, y, argmax);
}
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax) {
  pool_forward(n, h, w, c, x, y, argmax);
}
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        bool accumulate) {
  pool_backward(n, h, w, c, dy, argmax, dx, accumulate);
}
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        bool accumulate) {
  pool_backward(n, h, w, c, dy, argmax, dx, accumulate);
}

}  // namespace seis::cpu
