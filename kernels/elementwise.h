// Element-wise helpers of autograd, the optimizers and mixed precision. add_inplace: y += x (in bf16:
// y = round(y + x), the sum in fp32); scale_inplace: y *= a; divide: y = x / d (IEEE division, so that
// a value divided on the device has the bits of the same division on the host); fill: y = value;
// convert: y = x between f32 and bf16 (rounding to nearest even into bf16, exact into f32).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void add_inplace(int64_t n, const float* x, float* y);
void add_inplace(int64_t n, const bf16* x, bf16* y);
void scale_inplace(int64_t n, float a, float* y);
void divide(int64_t n, const float* x, float d, float* y);
void fill(int64_t n, float value, float* y);
void convert(int64_t n, const float* x, bf16* y);
void convert(int64_t n, const bf16* x, float* y);
}  // namespace cpu
namespace cuda {
void add_inplace(int64_t n, const float* x, float* y, CUstream_st* stream);
void add_inplace(int64_t n, const bf16* x, bf16* y, CUstream_st* stream);
void scale_inplace(int64_t n, float a, float* y, CUstream_st* stream);
void divide(int64_t n, const float* x, float d, float* y, CUstream_st* stream);
void fill(int64_t n, float value, float* y, CUstream_st* stream);
void convert(int64_t n, const float* x, bf16* y, CUstream_st* stream);
void convert(int64_t n, const bf16* x, float* y, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
