// The CPU conv twins (kernels/conv2d.h) with the workspace they need, for tests that call kernels
// directly (the engine's ops allocate it as a tensor).
#pragma once
#include <vector>

#include "engine/tensor.h"
#include "kernels/conv2d.h"

namespace seis::test {

inline Tensor cpu_conv_workspace(const Conv2dShape& s, ConvPass pass) {
  const int64_t bytes = cpu::conv2d_workspace_bytes(s, pass, false);
  return bytes > 0 ? Tensor::empty({bytes}, DType::u8) : Tensor();
}

inline void cpu_conv_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, bool relu,
                             float* y) {
  const Tensor ws = cpu_conv_workspace(s, ConvPass::forward);
  cpu::conv2d_forward(s, ConvMath::f32, x, w, bias, relu, y, ws.raw());
}

inline void cpu_conv_backward_data(const Conv2dShape& s, const float* dy, const float* y_relu, const float* w,
                                   float* dx) {
  const Tensor ws = cpu_conv_workspace(s, ConvPass::backward_data);
  cpu::conv2d_backward_data(s, ConvMath::f32, dy, y_relu, w, dx, ws.raw());
}

inline void cpu_conv_backward_weight(const Conv2dShape& s, const float* x, const float* dy, const float* y_relu,
                                     float* dw, float* dbias) {
  const Tensor ws = cpu_conv_workspace(s, ConvPass::backward_weight);
  cpu::conv2d_backward_weight(s, ConvMath::f32, x, dy, y_relu, dw, dbias, ws.raw());
}

inline std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// Direct loops in double: pre-activation y[n,h,w,k] = b[k] + sum_{r,s,c} x[n,h+r-p,w+s-p,c] W[k,r,s,c].
inline std::vector<double> ref_pre(const Conv2dShape& s, const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& b) {
  const int64_t p = s.pad();
  std::vector<double> y(static_cast<size_t>(s.pixels() * s.k));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t h = 0; h < s.h; ++h)
      for (int64_t q = 0; q < s.w; ++q)
        for (int64_t k = 0; k < s.k; ++k) {
          double acc = b[k];
          for (int64_t r = 0; r < s.r; ++r)
            for (int64_t t = 0; t < s.r; ++t) {
              const int64_t hh = h + r - p, ww = q + t - p;
              if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
              for (int64_t c = 0; c < s.c; ++c)
                acc += x[((n * s.h + hh) * s.w + ww) * s.c + c] * w[((k * s.r + r) * s.r + t) * s.c + c];
            }
          y[((n * s.h + h) * s.w + q) * s.k + k] = acc;
        }
  return y;
}

}  // namespace seis::test
