// Element-wise activations. relu_forward and sigmoid_forward write y (=);
// relu_backward writes dx = dy * (y > 0) (=), from the forward's output y.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis {
namespace cpu {
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);
void sigmoid_forward(int64_t n, const float* x, float* y);
}  // namespace cpu
namespace cuda {
void relu_forward(int64_t n, const float* x, float* y, CUstream_st* stream);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, CUstream_st* stream);
void sigmoid_forward(int64_t n, const float* x, float* y, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
