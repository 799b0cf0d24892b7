// The CPU conv twins (kernels/conv2d.h) with the workspace they need, for tests that call kernels
// directly (the engine's ops allocate it as a tensor).
#pragma once
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

}  // namespace seis::test
