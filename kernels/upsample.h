// upsample2d nearest x2, NHWC: x [N,H,W,C] -> y [N,2H,2W,C]. forward writes y (=);
// backward writes dx (=) as the sum of the four dy values each input fed. f32 or bf16; in bf16 the
// four values are summed in fp32, in the order (0,0), (0,1), (1,0), (1,1), and rounded once.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx);
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, bf16* dx);
}  // namespace cpu
namespace cuda {
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, CUstream_st* stream);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx, CUstream_st* stream);
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* x, bf16* y, CUstream_st* stream);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const bf16* dy, bf16* dx, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
