// maxpool2d 2x2, stride 2, NHWC. Output [N, H/2, W/2, C] (floor, as PyTorch).
// forward writes y and argmax (=): argmax holds the winning position 0..3 (row * 2 + col within the window) of each
// output, the first maximum on ties. backward writes dx (=), zero where no output took its value.
// f32 or bf16 values (pooling and its backward only move values: no rounding).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx);
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx);
}  // namespace cpu
namespace cuda {
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, uint8_t* argmax,
                       CUstream_st* stream);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, const uint8_t* argmax, float* dx,
                        CUstream_st* stream);
void maxpool2d_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, uint8_t* argmax,
                       CUstream_st* stream);
void maxpool2d_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, const uint8_t* argmax, bf16* dx,
                        CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
