// Hot per-element loops compiled for three x86-64 instruction sets, the baseline (SSE2), AVX2 and
// AVX-512, with the widest one this CPU runs chosen at run time: the binary stays portable while
// the reader's passes over each gather (checks, normalisation, bf16 rounding) run 2-4 times wider
// on the machines that feed GPUs.
//
// The bits do not depend on the level. The loops given variants are element by element (the
// compiler never reorders floating-point additions without -ffast-math, so a sum keeps its order),
// and on x86-64 CMakeLists.txt compiles C++ with -ffp-contract=off, so that no variant fuses a
// multiply and an add that the baseline (which has no FMA) rounds twice: the AVX-512 target has FMA
// instructions. tests/simd_dispatch_test.cpp runs every level this CPU has on the same inputs and
// compares the bits. The variants are vectorised in Release builds (-O3); at GCC's -O2 they are
// compiled but mostly left scalar.
//
// Use, in one .cpp file:
//   SEIS_SIMD_INLINE bool all_finite_body(const float* x, int64_t n) { ...the loop... }
//   SEIS_SIMD_VARIANTS(bool, all_finite, (const float* x, int64_t n), (x, n))
// defines `bool all_finite(const float* x, int64_t n)`, which runs the body compiled for
// simd_level(). Elsewhere than x86-64 with GCC or Clang, the body is compiled once.
#pragma once
#include <cstdint>

namespace seis {

enum class SimdLevel : int { baseline = 0, avx2 = 1, avx512 = 2 };

// The level the variants run at: the widest this CPU supports (AVX-512 needs F, BW and VL),
// capped by the environment variable SEIS_SIMD=baseline|avx2|avx512 when it is set, or by
// set_simd_level.
SimdLevel simd_level();
// The widest level this CPU supports (and this build compiles).
SimdLevel simd_cpu_level();
// Sets the level to `level`, or to simd_cpu_level() if that is lower, from now on (whatever SEIS_SIMD
// said): for tests and benchmarks.
void set_simd_level(SimdLevel level);
const char* simd_level_name(SimdLevel level);

}  // namespace seis

#define SEIS_SIMD_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define SEIS_SIMD_COMPILED 1
#define SEIS_SIMD_VARIANTS(ret, name, params, args)                                                                 \
  __attribute__((target("avx2"))) static ret name##_avx2 params { return name##_body args; }                        \
  __attribute__((target("avx512f,avx512bw,avx512vl"))) static ret name##_avx512 params { return name##_body args; } \
  ret name params {                                                                                                 \
    switch (::seis::simd_level()) {                                                                                 \
      case ::seis::SimdLevel::avx512:                                                                               \
        return name##_avx512 args;                                                                                  \
      case ::seis::SimdLevel::avx2:                                                                                 \
        return name##_avx2 args;                                                                                    \
      default:                                                                                                      \
        return name##_body args;                                                                                    \
    }                                                                                                               \
  }
#else
#define SEIS_SIMD_COMPILED 0
#define SEIS_SIMD_VARIANTS(ret, name, params, args) \
  ret name params { return name##_body args; }
#endif
