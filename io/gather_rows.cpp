#include "io/gather_rows.h"

#include <cstring>

#include "engine/simd_dispatch.h"

namespace seis {

namespace {

// Exponent bits all ones means Inf or NaN. Branch-free, so it vectorises and costs about one pass
// over memory.
SEIS_SIMD_INLINE bool all_finite_body(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

SEIS_SIMD_INLINE void zero_padding_traces_body(const uint8_t* valid, int64_t h, int64_t w, float* data) {
  for (int64_t j = 0; j < w; ++j) {
    if (valid[j] != 0) continue;
    for (int64_t t = 0; t < h; ++t) data[t * w + j] = 0.0f;
  }
}

SEIS_SIMD_INLINE void round_to_bf16_body(const float* from, int64_t n, bf16* to) {
  for (int64_t j = 0; j < n; ++j) to[j] = to_bf16(from[j]);
}

SEIS_SIMD_INLINE void reverse_copy_bytes_body(const uint8_t* src, int64_t n, uint8_t* dst) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    uint64_t v = 0;
    std::memcpy(&v, src + n - j - 8, 8);
    v = __builtin_bswap64(v);
    std::memcpy(dst + j, &v, 8);
  }
  for (; j < n; ++j) dst[j] = src[n - 1 - j];
}

}  // namespace

SEIS_SIMD_VARIANTS(bool, all_finite, (const float* x, int64_t n), (x, n))
SEIS_SIMD_VARIANTS(void, zero_padding_traces, (const uint8_t* valid, int64_t h, int64_t w, float* data),
                   (valid, h, w, data))
SEIS_SIMD_VARIANTS(void, round_to_bf16, (const float* from, int64_t n, bf16* to), (from, n, to))
SEIS_SIMD_VARIANTS(void, reverse_copy_bytes, (const uint8_t* src, int64_t n, uint8_t* dst), (src, n, dst))

}  // namespace seis
