// The body of the direct 3x3 row kernel (kernels/cpu/conv2d_direct.h), included once by each of
// conv2d_direct_avx2.cpp and conv2d_direct_avx512.cpp after they define, in their own namespace:
//   V, kLanes (floats per vector), kKB (output channels per register block), kPG (vectors of pixels
//   per tile), vzero(), vload(const float*) (unaligned), vset1(float), vfma(a, b, c) = a * b + c
//   rounded once, vadd(a, b), vmax(a, b) (b where either is NaN or both are zero), vstore(float*, V)
//   (unaligned).
// A tile is kKB output channels x kPG * kLanes pixels of one row, kKB * kPG accumulators in registers.
// No #pragma once: each including file compiles it for its own instruction set.

namespace {

// Output channels [kb * kKB, +kKB) of pixels [w0, w0 + PG * kLanes) of the row, those < width stored.
template <int PG>
void conv3x3_tile(const RowArgs& a, int64_t kb, int64_t w0) {
  V acc[kKB][PG];
  for (int k = 0; k < kKB; ++k)
    for (int g = 0; g < PG; ++g) acc[k][g] = vzero();
  const float* wblock = a.wpack + kb * 9 * a.cin * kKB;
  for (int r = 0; r < 3; ++r) {
    const float* row = a.rows[r];
    if (row == nullptr) continue;  // outside the image: zeros, which add nothing
    for (int s = 0; s < 3; ++s) {
      const float* wp = wblock + (r * 3 + s) * a.cin * kKB;
      const float* xp = row + w0 + s;  // staged column w0 + s holds image column w0 + s - 1
      for (int64_t c = 0; c < a.cin; ++c, xp += a.stride, wp += kKB) {
        V x[PG];
        for (int g = 0; g < PG; ++g) x[g] = vload(xp + g * kLanes);
        for (int k = 0; k < kKB; ++k) {
          const V wk = vset1(wp[k]);
          for (int g = 0; g < PG; ++g) acc[k][g] = vfma(x[g], wk, acc[k][g]);
        }
      }
    }
  }
  // Bias, then ReLU as max(v, +0), which gives +0 for -0 and for NaN, as (v > 0 ? v : 0) does.
  const float* bias = a.bias != nullptr ? a.bias + kb * kKB : nullptr;
  for (int k = 0; k < kKB; ++k) {
    const V b = bias != nullptr ? vset1(bias[k]) : vzero();
    for (int g = 0; g < PG; ++g) {
      if (bias != nullptr) acc[k][g] = vadd(acc[k][g], b);
      if (a.relu != 0) acc[k][g] = vmax(acc[k][g], vzero());
    }
  }
  // Pixel-major out of channel-major registers: through a tile on the stack.
  alignas(64) float t[kKB][PG * kLanes];
  for (int k = 0; k < kKB; ++k)
    for (int g = 0; g < PG; ++g) vstore(&t[k][g * kLanes], acc[k][g]);
  const int64_t n = a.width - w0 < PG * kLanes ? a.width - w0 : PG * kLanes;
  float* out = a.out + w0 * a.cout + kb * kKB;
  for (int64_t p = 0; p < n; ++p)
    for (int k = 0; k < kKB; ++k) out[p * a.cout + k] = t[k][p];
}

}  // namespace

// The row's vectors of pixels go in tiles of 3, and of 2 where 3s would leave a single one (per tap
// and input channel a tile of one vector loads 1 + kKB values for kKB multiply-adds, one of three
// 3 + kKB for 3 kKB).
void conv3x3_row(const RowArgs& a) {
  static_assert(kPG == 3, "the split below is written for tiles of 3 vectors");
  const int64_t vectors = (a.width + kLanes - 1) / kLanes;
  int64_t threes = vectors / 3, rest = vectors % 3;
  if (rest == 1 && threes > 0) {
    threes -= 1;
    rest = 4;
  }
  for (int64_t kb = 0; kb < a.cout / kKB; ++kb) {
    int64_t w0 = 0;
    for (int64_t t = 0; t < threes; ++t, w0 += 3 * kLanes) conv3x3_tile<3>(a, kb, w0);
    for (int64_t left = rest; left > 0; left -= left >= 2 ? 2 : 1) {
      if (left >= 2) {
        conv3x3_tile<2>(a, kb, w0);
        w0 += 2 * kLanes;
      } else {
        conv3x3_tile<1>(a, kb, w0);
        w0 += kLanes;
      }
    }
  }
}
