// The bf16 storage type of activations and their gradients (--precision bf16), shared by the CPU and
// CUDA kernels: the top 16 bits of an IEEE float, the bits of CUDA's __nv_bfloat16. Arithmetic is
// fp32: kernels widen on load and round once on store, to nearest even (NaN stays NaN), as CUDA's
// __float2bfloat16_rn does, so that the CPU kernels round at the same points as the GPU's.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SEIS_HD __host__ __device__
#else
#define SEIS_HD
#endif

namespace seis {

struct bf16 {
  uint16_t bits;
};
static_assert(sizeof(bf16) == 2, "bf16 is two bytes");

SEIS_HD inline bf16 to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

SEIS_HD inline float to_float(bf16 h) {
  const uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

SEIS_HD inline float to_float(float f) { return f; }

// f rounded to the nearest bf16 value, as a float.
SEIS_HD inline float round_bf16(float f) { return to_float(to_bf16(f)); }

// Stores an fp32 result into a float or a bf16 element.
SEIS_HD inline void store(float* p, float v) { *p = v; }
SEIS_HD inline void store(bf16* p, float v) { *p = to_bf16(v); }

}  // namespace seis
