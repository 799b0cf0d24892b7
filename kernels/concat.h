// Concatenation along channels, NHWC: a [P, Ca] and b [P, Cb] -> y [P, Ca+Cb], P = N*H*W pixels.
// concat writes y (=); split writes da and db (=) from dy.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis {
namespace cpu {
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db);
}  // namespace cpu
namespace cuda {
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y,
                     CUstream_st* stream);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
