// Layout of the deep-level implicit-GEMM conv (kernels/cuda/conv2d_deep.cu; GPU-PLAN.md 3.1 B) as
// __host__ __device__ functions shared by the kernel and its CPU emulation (tests/deep_conv_test.cpp):
// the CTA and warp tiles, the swizzled shared-memory stages, the per-lane ldmatrix addresses, the
// per-thread cp.async slots and the incremental k-step cursor, and where each accumulator lands.
//
// The conv is the implicit GEMM Y[pixels, K] = A[pixels, 9C] W^T with reduction index
// kk = tap * C + c (tap = 3 r + s: the order of a KRSC weight row). A CTA computes kBM = 128 output
// pixels (consecutive in N, H, W order) x bn output channels (128, or 64 where K is not a multiple
// of 128). One k-step is 64 channels of one tap: A is 128 rows of 128 bytes (the tap-shifted input
// pixels, zero-filled outside the image), B is bn rows of 128 bytes (bf16 weights [K][9C], contiguous
// in kk, so B only advances by 64 elements per k-step). Stages rotate through a kStages-deep
// cp.async ring.
//
// Backward-data is the same forward-form conv of dy (masked by y > 0) with the flipped,
// channel-transposed filter (halo_conv_layout.h, weight_index): below, c is the channel count of the
// staged tensor (C forward, K backward-data) and k that of the GEMM's output.
//
// Shapes: 3x3, stride 1, pad 1; C and K multiples of 64 (the deep levels: 128-512 channels; 64 too).
#pragma once
#include <cstdint>

#include "kernels/cuda/mma_layout.h"

namespace seis::cuda::deep {

constexpr int kBM = 128;    // output pixels per CTA
constexpr int kBK = 64;     // channels per k-step (one tap)
constexpr int kStages = 3;  // the cp.async ring
constexpr int kWarpsM = 4;  // warps along the pixels: 32 pixels (two m16 fragments) each
constexpr int kWarpsN = 2;  // warps along the output channels: bn / 2 each
constexpr int kThreads = 32 * kWarpsM * kWarpsN;
constexpr int kRowBytes = kBK * 2;                    // one A or B row of a stage: 8 chunks of 16 bytes
constexpr int kChunks = kRowBytes / 16;               // 8
constexpr int kMFrags = kBM / kWarpsM / 16;           // 2
constexpr int kLoadRowsPerPass = kThreads / kChunks;  // 32 rows of a stage per pass of all threads
constexpr int kARows = kBM / kLoadRowsPerPass;        // 4 A rows per thread and k-step

SEIS_HD constexpr bool supports(int64_t c, int64_t k, int64_t r) {
  return r == 3 && c >= 64 && k >= 64 && c % 64 == 0 && k % 64 == 0 && c <= 4096 && k <= 4096;
}
// The CTA's output channels: 128 where K allows it (twice the MMAs per A byte), else 64.
SEIS_HD constexpr int64_t filter_bytes(int64_t c, int64_t k) { return (9 * c * k * 2 + 255) / 256 * 256; }
// Backward-data: the flipped filter, then dy masked by (y > 0) [P, K] bf16.
SEIS_HD constexpr int64_t backward_data_bytes(int64_t pixels, int64_t c, int64_t k) {
  return filter_bytes(c, k) + (pixels * k * 2 + 255) / 256 * 256;
}
SEIS_HD constexpr int bn_for(int64_t k) { return k % 128 == 0 ? 128 : 64; }
SEIS_HD constexpr int nfrags(int bn) { return bn / kWarpsN / 8; }  // n8 fragments per warp: 8 or 4
SEIS_HD constexpr int brows_per_thread(int bn) { return bn / kLoadRowsPerPass; }

// A stage: A rows 0..kBM-1, then B rows. Chunk q of row r sits at chunk q ^ (r % 8) of the row (the
// 128-byte XOR swizzle), so the 8 rows of an ldmatrix (8 consecutive rows, one logical chunk) hit
// the 8 different 16-byte bank groups: no bank conflicts, and every 16-byte cp.async stays whole.
SEIS_HD constexpr int swizzle(int row, int chunk) { return row * kRowBytes + ((chunk ^ (row & 7)) << 4); }
SEIS_HD constexpr int a_bytes() { return kBM * kRowBytes; }
SEIS_HD constexpr int stage_bytes(int bn) { return (kBM + bn) * kRowBytes; }
SEIS_HD constexpr int smem_bytes(int bn) { return kStages * stage_bytes(bn); }

SEIS_HD constexpr int ksteps(int64_t c) { return static_cast<int>(9 * c / kBK); }

// The warp's place in the CTA tile: warps 0-3 take pixel rows 32 w, warps 4-7 the same rows for
// the second half of the output channels.
SEIS_HD constexpr int warp_m(int warp) { return warp % kWarpsM; }
SEIS_HD constexpr int warp_n(int warp) { return warp / kWarpsM; }

// ldmatrix.x4 of A fragment mf (16 pixels) at k16-step kk (0..3) of a stage: matrix j holds pixels
// 8 (j & 1) .. +7 and k-values 8 (j >> 1) .. +7, so register j is a-elements 2j, 2j + 1
// (mma_layout.h). Byte offset within the stage.
SEIS_HD constexpr int a_ldsm_offset(int lane, int warp, int mf, int kk) {
  const int j = mma::ldsm_matrix(lane);
  const int row = 32 * warp_m(warp) + 16 * mf + 8 * (j & 1) + mma::ldsm_row(lane);
  return swizzle(row, 2 * kk + (j >> 1));
}
// ldmatrix.x4 of B for the warp's n-fragments nf and nf + 1 at k16-step kk: matrices (nf, k 0-7),
// (nf, k 8-15), (nf + 1, k 0-7), (nf + 1, k 8-15): registers 0-1 are fragment nf's b-elements,
// 2-3 those of nf + 1. Byte offset within the stage (past the A rows).
SEIS_HD constexpr int b_ldsm_offset(int lane, int warp, int nf, int kk, int bn) {
  const int j = mma::ldsm_matrix(lane);
  const int row = bn / kWarpsN * warp_n(warp) + 8 * (nf + (j >> 1)) + mma::ldsm_row(lane);
  return a_bytes() + swizzle(row, 2 * kk + (j & 1));
}

// The kernel's form of the two: each lane's offset for (mf or nf = 0, kk = 0) once, then per fragment
// a row step (a multiple of 8 rows keeps the swizzle phase) and per k16-step an XOR of the chunk's
// upper two bits (chunk 2 kk + h: the swizzle's XOR and 2 kk touch separate bits of the offset).
SEIS_HD constexpr int a_ldsm_step(int lane_offset, int mf, int kk) {
  return (lane_offset + mf * 16 * kRowBytes) ^ (kk << 5);
}
SEIS_HD constexpr int b_ldsm_step(int lane_offset, int nf, int kk) {
  return (lane_offset + nf * 8 * kRowBytes) ^ (kk << 5);
}

// Where accumulator element i of (mf, nf) of `lane` in `warp` belongs: the CTA-tile row (pixel)
// and column (output channel).
struct OutIndex {
  int row, col;
};
SEIS_HD constexpr OutIndex out_index(int lane, int warp, int mf, int nf, int i, int bn) {
  const mma::RowCol rc = mma::c_element(lane, i);
  return {32 * warp_m(warp) + 16 * mf + rc.row, bn / kWarpsN * warp_n(warp) + 8 * nf + rc.col};
}

// The cp.async slots of thread tid: chunk tid % 8 of rows tid / 8 + 32 i (A: i < kARows; B:
// i < brows_per_thread(bn)).
SEIS_HD constexpr int load_chunk(int tid) { return tid % kChunks; }
SEIS_HD constexpr int load_row(int tid, int i) { return tid / kChunks + kLoadRowsPerPass * i; }

// A stage row of a thread's later slots: 32 rows on, the same swizzle phase.
SEIS_HD constexpr int load_step(int slot0_offset, int i) { return slot0_offset + i * kLoadRowsPerPass * kRowBytes; }

// The CTA's tile: blocks run along the output channels first, so the CTAs that share an A tile
// run together and it is read from L2 once.
struct Tile {
  int64_t m0;
  int n0;
};
SEIS_HD constexpr Tile tile_of(int64_t block, int64_t k, int bn) {
  const int64_t ntiles = k / bn;
  return {block / ntiles * kBM, static_cast<int>(block % ntiles * bn)};
}
SEIS_HD constexpr int64_t blocks(int64_t pixels, int64_t k, int bn) { return (pixels + kBM - 1) / kBM * (k / bn); }

// One A row of a thread, set up once per CTA (the only divisions): `base` is the element offset of
// the output pixel's own chunk, x + base + tap offset the input chunk at a tap; bit t of `taps` says
// whether tap t lies inside the image (all zero for a pixel past the end).
struct ARow {
  int64_t base;
  uint32_t taps;
};
SEIS_HD constexpr ARow a_row(int64_t pixel, int64_t pixels, int64_t h, int64_t w, int64_t c, int chunk) {
  if (pixel >= pixels) return {0, 0u};
  const int64_t oy = pixel / w % h, ox = pixel % w;
  uint32_t taps = 0;
  for (int t = 0; t < 9; ++t) {
    const int64_t iy = oy + t / 3 - 1, ix = ox + t % 3 - 1;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w) taps |= 1u << t;
  }
  return {pixel * c + 8 * chunk, taps};
}

// The k-step's tap and input offset, advanced without division. k-steps run tap-major: for each
// tap (r, s), the channel blocks 0, 64, .., C - 64. `offset` is the element offset of the tap's
// input pixel relative to the output pixel plus the channel block: ((r - 1) W + (s - 1)) C + ch.
struct Cursor {
  int tap = 0, s = 0, ch = 0;
  int64_t offset = 0;
  SEIS_HD static constexpr Cursor start(int64_t w, int64_t c) { return Cursor{0, 0, 0, -(w + 1) * c}; }
  SEIS_HD constexpr void advance(int64_t w, int64_t c) {
    ch += kBK;
    offset += kBK;
    if (ch == c) {  // next tap: offset has moved on by C, which is one column right
      ch = 0;
      ++tap;
      if (++s == 3) {  // past the third column: to the next row's first, (W - 2) C from the last tap
        s = 0;
        offset += (w - 3) * c;
      }
    }
  }
};
// The closed form of the cursor at k-step ks (for the tests).
SEIS_HD constexpr int64_t tap_offset(int ks, int64_t w, int64_t c) {
  const int64_t per_tap = c / kBK, tap = ks / per_tap, ch = ks % per_tap * kBK;
  return ((tap / 3 - 1) * w + (tap % 3 - 1)) * c + ch;
}

}  // namespace seis::cuda::deep
