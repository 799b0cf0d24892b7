// upsample2d nearest x2, NHWC: x [N,H,W,C] -> y [N,2H,2W,C]. forward writes y (=);
// backward writes dx (=) as the sum of the four dy values each input fed.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis {
namespace cpu {
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx);
}  // namespace cpu
namespace cuda {
void upsample2x_forward(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y, CUstream_st* stream);
void upsample2x_backward(int64_t n, int64_t h, int64_t w, int64_t c, const float* dy, float* dx, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
