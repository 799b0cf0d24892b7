// Element-wise activations. relu_forward and sigmoid_forward write y (=);
// relu_backward writes dx = dy * (y > 0) (=), from the forward's output y.
// Activations are f32 or bf16 (kernels/bf16.h); sigmoid writes f32 probabilities from either.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void relu_forward(int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);
void sigmoid_forward(int64_t n, const float* x, float* y);
void relu_forward(int64_t n, const bf16* x, bf16* y);
void relu_backward(int64_t n, const bf16* y, const bf16* dy, bf16* dx);
void sigmoid_forward(int64_t n, const bf16* x, float* y);
}  // namespace cpu
namespace cuda {
void relu_forward(int64_t n, const float* x, float* y, CUstream_st* stream);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx, CUstream_st* stream);
void sigmoid_forward(int64_t n, const float* x, float* y, CUstream_st* stream);
void relu_forward(int64_t n, const bf16* x, bf16* y, CUstream_st* stream);
void relu_backward(int64_t n, const bf16* y, const bf16* dy, bf16* dx, CUstream_st* stream);
void sigmoid_forward(int64_t n, const bf16* x, float* y, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
