// Layout of the deep-level backward-weight kernel (kernels/cuda/conv2d_deep_wgrad.cu; GPU-PLAN.md
// 3.1 B, wgrad) as __host__ __device__ functions shared by the kernel and its CPU emulation
// (tests/deep_conv_test.cpp): the CTA and warp tiles, the swizzled shared-memory stages, the
// per-lane ldmatrix addresses, the per-thread cp.async slots and the incremental pixel cursor, where
// each accumulator lands, and the split-K partition.
//
// The GEMM is dW[m, n] = sum over pixels p of dy[p, m] * x[p + tap, c], m the output channel and
// n = tap * C + c the KRSC column of dW (x zero outside the image): M = K, N = 9C, the reduction over
// pixels (consecutive in N, H, W order) in k-steps of kBK = 64. A CTA computes bm = 128 output
// channels (64 where K is not a multiple of 128) x kBN = 64 columns: 64 channels of one tap. One
// k-step stages 64 pixel rows of 128 bytes per 64 channels, dy (bm / 64 rows per pixel) then x at
// the CTA's tap (one row per pixel, zero-filled outside the image and past the last pixel), with
// deep_conv_layout.h's 128-byte XOR swizzle. Both tensors are pixel-major (NHWC), so a stored 8 x 8
// block is [pixel][channel] and ldmatrix.trans hands out its transpose: the A fragment (row = m,
// column = pixel) and the B fragment (row = pixel, column = n) both come that way.
//
// dbias[m] = sum over pixels of dy[p, m] is the same GEMM against a column of ones: the CTAs of the
// first column tile run one more mma per A fragment with B = ones (kernel flag kBias).
//
// Split-K: the k-steps are cut into contiguous ranges by split_of(), a function of the shape alone;
// each split writes fp32 partials that a second kernel adds in split order (split_k_sum.h).
//
// Shapes: 3x3, stride 1, pad 1; C and K multiples of 64 (deep::supports).
#pragma once
#include <cstdint>

#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/cuda/mma_layout.h"

namespace seis::cuda::deep_wgrad {

using halo_wgrad::Split;
using halo_wgrad::split_begin;
using halo_wgrad::split_end;

constexpr int kBK = 64;     // pixels per k-step
constexpr int kBN = 64;     // dW columns per CTA: 64 channels of one tap
constexpr int kStages = 4;  // the cp.async ring
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRowBytes = 128;                        // 64 channels of one pixel: 8 chunks of 16 bytes
constexpr int kChunks = kRowBytes / 16;               // 8
constexpr int kLoadRowsPerPass = kThreads / kChunks;  // 32 pixels per pass of all threads
constexpr int kPixelSlots = kBK / kLoadRowsPerPass;   // 2 pixels per thread and k-step
constexpr int kMFrags = 2;                            // m16 fragments per warp: 32 output channels

SEIS_HD constexpr bool supports(int64_t c, int64_t k, int64_t r) { return deep::supports(c, k, r); }

// The CTA's output channels: 128 where K allows it, else 64.
SEIS_HD constexpr int bm_for(int64_t k) { return k % 128 == 0 ? 128 : 64; }
// Warps: bm / 32 along the output channels (32 each), the rest along the 64 columns.
SEIS_HD constexpr int warps_m(int bm) { return bm / 32; }
SEIS_HD constexpr int warps_n(int bm) { return kWarps / warps_m(bm); }
SEIS_HD constexpr int warp_cols(int bm) { return kBN / warps_n(bm); }  // 32 or 16
SEIS_HD constexpr int nfrags(int bm) { return warp_cols(bm) / 8; }     // n8 fragments per warp: 4 or 2
SEIS_HD constexpr int warp_m(int warp, int bm) { return warp % warps_m(bm); }
SEIS_HD constexpr int warp_n(int warp, int bm) { return warp / warps_m(bm); }

// A stage: dy rows (channel block h of pixel p at row h kBK + p), then x rows (pixel p at
// bm / 64 * kBK + p), each 128 bytes in deep::swizzle's order. An ldmatrix reads 8 consecutive
// pixels of one chunk: 8 consecutive rows, 8 different bank groups.
SEIS_HD constexpr int a_row(int h, int pixel) { return h * kBK + pixel; }
SEIS_HD constexpr int b_row(int bm, int pixel) { return bm / 64 * kBK + pixel; }
SEIS_HD constexpr int a_bytes(int bm) { return bm / 64 * kBK * kRowBytes; }
SEIS_HD constexpr int stage_bytes(int bm) { return a_bytes(bm) + kBK * kRowBytes; }
SEIS_HD constexpr int smem_bytes(int bm) { return kStages * stage_bytes(bm); }
using deep::swizzle;

// ldmatrix.x4.trans of A fragment mf (16 output channels) at k16-step kk (pixels 16 kk ..): matrix j
// holds channels 8 (j & 1) .. +7 and pixels 8 (j >> 1) .. +7, so register j is a-elements 2j, 2j + 1
// (mma_layout.h). Byte offset within the stage.
SEIS_HD constexpr int a_ldsm_offset(int lane, int warp, int mf, int kk, int bm) {
  const int j = mma::ldsm_matrix(lane);
  const int m = 32 * warp_m(warp, bm) + 16 * mf + 8 * (j & 1);
  const int pixel = 16 * kk + 8 * (j >> 1) + mma::ldsm_row(lane);
  return swizzle(a_row(m / 64, pixel), m % 64 / 8);
}
// ldmatrix.x4.trans of B for the warp's n-fragments nf and nf + 1 at k16-step kk: matrices
// (nf, pixels 0-7), (nf, 8-15), (nf + 1, 0-7), (nf + 1, 8-15): registers 0-1 are fragment nf's
// b-elements, 2-3 those of nf + 1.
SEIS_HD constexpr int b_ldsm_offset(int lane, int warp, int nf, int kk, int bm) {
  const int j = mma::ldsm_matrix(lane);
  const int col = warp_cols(bm) * warp_n(warp, bm) + 8 * (nf + (j >> 1));
  const int pixel = 16 * kk + 8 * (j & 1) + mma::ldsm_row(lane);
  return swizzle(b_row(bm, pixel), col / 8);
}
// The kernel's form: each lane's offset for (mf or nf = 0, kk = 0) once; a k16-step is 16 rows on
// (the swizzle phase kept), a fragment step flips one chunk bit (bit 1 for A's 16 channels, bit 1 of
// the even nf for B), which the swizzle's XOR commutes with.
SEIS_HD constexpr int a_ldsm_step(int lane_offset, int mf, int kk) {
  return (lane_offset + kk * 16 * kRowBytes) ^ (mf << 5);
}
SEIS_HD constexpr int b_ldsm_step(int lane_offset, int nf, int kk) {
  return (lane_offset + kk * 16 * kRowBytes) ^ (nf << 4);
}

// Where accumulator element i of (mf, nf) of `lane` in `warp` belongs: the output channel (row) and
// the column within the CTA's 64.
struct OutIndex {
  int row, col;
};
SEIS_HD constexpr OutIndex out_index(int lane, int warp, int mf, int nf, int i, int bm) {
  const mma::RowCol rc = mma::c_element(lane, i);
  return {32 * warp_m(warp, bm) + 16 * mf + rc.row, warp_cols(bm) * warp_n(warp, bm) + 8 * nf + rc.col};
}

// The cp.async slots of thread tid: chunk tid % 8 of pixels tid / 8 + 32 i (i < kPixelSlots), in
// every dy channel block h < bm / 64 and in x.
SEIS_HD constexpr int load_chunk(int tid) { return tid % kChunks; }
SEIS_HD constexpr int load_pixel(int tid, int i) { return tid / kChunks + kLoadRowsPerPass * i; }
// A slot's stage offset from slot (h = 0, i = 0)'s: whole rows on, a multiple of 8 (same swizzle).
SEIS_HD constexpr int a_dst(int slot0_offset, int h, int i) {
  return slot0_offset + (h * kBK + kLoadRowsPerPass * i) * kRowBytes;
}
SEIS_HD constexpr int b_dst(int slot0_offset, int bm, int i) {
  return slot0_offset + (bm / 64 * kBK + kLoadRowsPerPass * i) * kRowBytes;
}

// The CTA's tile. Column tiles run fastest, so that the CTAs which share a dy tile run together.
// A launch covers column tiles [first, first + count) of every row tile: the dbias launch the
// first, the other launch the rest.
SEIS_HD constexpr int64_t col_tiles(int64_t c) { return 9 * c / kBN; }
struct Tile {
  int m0;      // first output channel
  int64_t n0;  // first dW column: tap * C + c0
  int tap, c0;
};
SEIS_HD constexpr Tile tile_of(int64_t block, int64_t c, int64_t first, int64_t count, int bm) {
  const int64_t col = first + block % count, n0 = col * kBN;
  return {static_cast<int>(block / count * bm), n0, static_cast<int>(n0 / c), static_cast<int>(n0 % c)};
}

// A thread's pixel, advanced by kBK per k-step without division: `step` is kBK as image rows and
// columns (once per shape), each carry at most one since cols < W and rows < H.
struct PixelStep {
  int rows, cols;
};
SEIS_HD constexpr PixelStep step_of(int64_t h, int64_t w) {
  return {static_cast<int>(kBK / w % h), static_cast<int>(kBK % w)};
}
struct PixelCursor {
  int64_t p;  // the linear pixel (N, H, W order)
  int y, x;
  SEIS_HD static constexpr PixelCursor start(int64_t p, int64_t h, int64_t w) {
    return {p, static_cast<int>(p / w % h), static_cast<int>(p % w)};
  }
  SEIS_HD constexpr void advance(PixelStep s, int h, int w) {
    p += kBK;
    x += s.cols;
    if (x >= w) {
      x -= w;
      ++y;
    }
    y += s.rows;
    if (y >= h) y -= h;
  }
  // Whether the pixel exists and its neighbour at (dr, ds) in -1..1 lies inside its image.
  SEIS_HD constexpr bool inside(int64_t pixels, int dr, int ds, int h, int w) const {
    return p < pixels && static_cast<unsigned>(y + dr) < static_cast<unsigned>(h) &&
           static_cast<unsigned>(x + ds) < static_cast<unsigned>(w);
  }
};
// The element offset of the tap's neighbour from the pixel, in a tensor of c channels.
SEIS_HD constexpr int64_t tap_offset(int tap, int64_t w, int64_t c) { return ((tap / 3 - 1) * w + (tap % 3 - 1)) * c; }

// Split-K over k-steps: about kTargetCtas CTAs in all (a constant, not the device's SM count), at
// least kMinSteps k-steps per split, and enough that a split's fp32 partials, (9CK + K) floats, stay
// within half of the bf16 x and dy bytes its k-steps read (64 (C + K) 2 each). The partition and the
// order of the final sum depend on the shape only.
constexpr int64_t kMinSteps = 8;
constexpr int64_t kTargetCtas = 1024;
SEIS_HD constexpr int64_t ksteps(int64_t pixels) { return (pixels + kBK - 1) / kBK; }
SEIS_HD constexpr int64_t min_steps(int64_t c, int64_t k) {
  const int64_t by_bytes = (9 * c * k + k + 16 * (c + k) - 1) / (16 * (c + k));
  return by_bytes > kMinSteps ? by_bytes : kMinSteps;
}
SEIS_HD constexpr int64_t ctas_per_split(int64_t c, int64_t k) { return k / bm_for(k) * col_tiles(c); }
SEIS_HD constexpr Split split_of(int64_t pixels, int64_t c, int64_t k) {
  Split s;
  s.tiles = ksteps(pixels);
  if (s.tiles == 0) return s;
  const int64_t ctas = ctas_per_split(c, k);
  const int64_t target = kTargetCtas / ctas > 1 ? kTargetCtas / ctas : 1;
  const int64_t per = (s.tiles + target - 1) / target;
  s.per_split = per > min_steps(c, k) ? per : min_steps(c, k);
  s.splits = (s.tiles + s.per_split - 1) / s.per_split;
  return s;
}

// Workspace: the fp32 partials (none with one split: the CTAs write dW and dbias themselves),
// [splits, 9CK + K] (dW, then dbias), then dy masked by (y > 0) [P, K] bf16.
SEIS_HD constexpr int64_t partial_floats(int64_t pixels, int64_t c, int64_t k) {
  const Split s = split_of(pixels, c, k);
  return s.splits > 1 ? s.splits * (9 * c * k + k) : 0;
}
SEIS_HD constexpr int64_t masked_dy_offset(int64_t pixels, int64_t c, int64_t k) {
  return (partial_floats(pixels, c, k) * 4 + 255) / 256 * 256;
}
SEIS_HD constexpr int64_t workspace_bytes(int64_t pixels, int64_t c, int64_t k) {
  if (!supports(c, k, 3) || pixels == 0) return 0;
  return masked_dy_offset(pixels, c, k) + (pixels * k * 2 + 255) / 256 * 256;
}

}  // namespace seis::cuda::deep_wgrad
