// Element-wise helpers of autograd and the optimizers. add_inplace: y += x;
// scale_inplace: y *= a; fill: y = value.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis {
namespace cpu {
void add_inplace(int64_t n, const float* x, float* y);
void scale_inplace(int64_t n, float a, float* y);
void fill(int64_t n, float value, float* y);
}  // namespace cpu
namespace cuda {
void add_inplace(int64_t n, const float* x, float* y, CUstream_st* stream);
void scale_inplace(int64_t n, float a, float* y, CUstream_st* stream);
void fill(int64_t n, float value, float* y, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
