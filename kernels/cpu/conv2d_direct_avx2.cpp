// The direct 3x3 row kernel for AVX2 with FMA (kernels/cpu/conv2d_direct.h): compiled with -mavx2
// -mfma (CMakeLists.txt), run only where the CPU has both. Includes nothing that defines an inline
// function but the intrinsics.
#if defined(SEIS_CPU_DIRECT_CONV) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#include "kernels/cpu/conv2d_direct.h"

namespace seis::cpu::direct::avx2 {
namespace {
using V = __m256;
constexpr int kLanes = 8;
constexpr int kKB = 4;  // 4 x 3 accumulators, 3 pixel vectors and a broadcast: the 16 registers
constexpr int kPG = 3;
inline V vzero() { return _mm256_setzero_ps(); }
inline V vload(const float* p) { return _mm256_loadu_ps(p); }
inline V vset1(float x) { return _mm256_set1_ps(x); }
inline V vfma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
inline V vadd(V a, V b) { return _mm256_add_ps(a, b); }
inline V vmax(V a, V b) { return _mm256_max_ps(a, b); }
inline void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
}  // namespace

#include "kernels/cpu/conv2d_direct_rows.h"

static_assert(kKB == 4 && kRowGroup % (kPG * kLanes) == 0, "k_block() and kRowGroup describe this kernel");
}  // namespace seis::cpu::direct::avx2
#endif
