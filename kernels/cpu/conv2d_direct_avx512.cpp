// The direct 3x3 row kernel for AVX-512 (kernels/cpu/conv2d_direct.h): compiled with -mavx512f -mfma
// (CMakeLists.txt), run only where the CPU has AVX-512F. Includes nothing that defines an inline
// function but the intrinsics.
#if defined(SEIS_CPU_DIRECT_CONV) && defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/conv2d_direct.h"

namespace seis::cpu::direct::avx512 {
namespace {
using V = __m512;
constexpr int kLanes = 16;
constexpr int kKB = 8;  // 8 x 3 accumulators of the 32 registers
constexpr int kPG = 3;
inline V vzero() { return _mm512_setzero_ps(); }
inline V vload(const float* p) { return _mm512_loadu_ps(p); }
inline V vset1(float x) { return _mm512_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm512_add_ps(a, b); }
// (the zero-masked form: GCC 12 warns of the unmasked one's undefined pass-through)
inline V vmax(V a, V b) { return _mm512_maskz_max_ps(static_cast<__mmask16>(0xffff), a, b); }
inline void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
}  // namespace

#include "kernels/cpu/conv2d_direct_rows.h"

static_assert(kKB == 8 && kPG * kLanes == kRowGroup, "k_block() and kRowGroup describe this kernel");
}  // namespace seis::cpu::direct::avx512
#endif
