// Concatenation along channels, NHWC: a [P, Ca] and b [P, Cb] -> y [P, Ca+Cb], P = N*H*W pixels.
// concat writes y (=); split writes da and db (=) from dy. f32 or bf16 (copies only).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db);
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* a, const bf16* b, bf16* y);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* dy, bf16* da, bf16* db);
}  // namespace cpu
namespace cuda {
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y,
                     CUstream_st* stream);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db, CUstream_st* stream);
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* a, const bf16* b, bf16* y,
                     CUstream_st* stream);
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* dy, bf16* da, bf16* db, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
