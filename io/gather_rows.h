// The reader's per-element loops over rows of a gather, each compiled for every SIMD level and run
// at the widest this CPU has (engine/simd_dispatch.h): the same bits at every level.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

namespace seis {

// True when every value of x[0, n) is finite (no NaN, no Inf).
bool all_finite(const float* x, int64_t n);

// Sets the traces of data [h][w] that valid [w] marks as padding (0) to zero: padding is a zero trace
// whatever the file holds there, so that its values reach neither the normalisation nor, through
// the convolutions, the real traces' outputs. The reader applies it to every sample of a source with
// padding traces, before the NaN/Inf check and the normalisation.
void zero_padding_traces(const uint8_t* valid, int64_t h, int64_t w, float* data);

// to[j] = from[j] rounded to bf16 (to nearest even, NaN stays NaN: to_bf16), j < n.
void round_to_bf16(const float* from, int64_t n, bf16* to);

// dst[j] = src[n - 1 - j], j < n (a label row flipped). src and dst must not overlap.
void reverse_copy_bytes(const uint8_t* src, int64_t n, uint8_t* dst);

}  // namespace seis
