// Layout of the halo backward-weight kernel (kernels/cuda/conv2d_halo.cu; GPU-PLAN.md 3.1 A, wgrad)
// as __host__ __device__ functions shared by the kernel and its CPU emulation
// (tests/halo_conv_test.cpp): the staged halo and dy tile, the per-lane ldmatrix addresses, the
// split of the output across warps and CTAs, where each accumulator lands, and the split-K partition.
//
// The GEMM is dW^T[m, n] = sum over pixels p of x[p + tap, c] * dy[p, n], n the output channel:
// M = 9C rows (tap, c) in m16 tiles, N = K in n8 fragments (no padding for any K), the reduction over
// pixels in k-steps of 16, one tile row of the 8 x 16 output tile (halo_conv_layout.h). An m-tile is
// 16 channels of one tap, m-tile mt = 9 * (channel block) + tap (C = 8: two taps of 8 channels,
// the fifth tile half padding). Both operands come from shared memory with ldmatrix.trans: the x
// halo and the dy tile are stored pixel-major, 16 bytes (8 channels) per chunk, so a stored 8 x 8
// block is [pixel][channel] and .trans hands out its transpose, which is what A (row = m) and B
// (column = n) need.
//
// The staged halo has a row pitch of 24 pixels, a multiple of 8: the XOR swizzle (period 8 pixels)
// then repeats in every row, so moving one row down is a constant byte offset. The 9 taps of a
// channel block then need only 3 per-lane addresses (one per column shift); every address of the
// main loop is one of them plus a compile-time constant.
//
// Work split: an output block is mw m-tiles x nw n-fragments (at most 10 fragments, 40 accumulator
// registers, so that two CTAs of 256 threads fit an SM's registers without spills). A CTA owns
// `slices` blocks; its 8 warps are `pgroups` = 8 / slices pixel groups x `slices`: warp (g, b) runs
// tile rows g, g + pgroups, ... for block b. The pixel groups' sums are added in the order
// g = 0, 1, ... at the end of the CTA. CTA x-index `group` takes blocks [group * slices, +slices).
// The pixel tiles are split across CTA y-indices (split-K) by split_of(), which depends on the
// shape only.
#pragma once
#include <cstdint>

#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/mma_layout.h"

namespace seis::cuda::halo_wgrad {

using halo::kHaloH;
using halo::kHaloW;
using halo::kThreads;
using halo::kTileH;
using halo::kTileW;
using halo::kWarps;

constexpr int kRowPitch = 24;  // staged halo pixels per row (18 used)

SEIS_HD constexpr bool supports(int64_t c, int64_t k, int64_t r) { return halo::supports(c, k, r); }

// The XOR swizzle of chunk q at column x of a row, for cpp chunks per pixel: the 8 rows of an
// ldmatrix (8 consecutive pixels of a row, one chunk) land in 8 different 16-byte bank groups.
SEIS_HD constexpr int swizzle(int x, int cpp) { return cpp == 1 ? 0 : (x / (8 / cpp)) % cpp; }
SEIS_HD constexpr int x_offset(int hy, int hx, int q, int cpp) {
  return ((hy * kRowPitch + hx) * cpp + (q ^ swizzle(hx, cpp))) * 16;
}
SEIS_HD constexpr int x_bytes(int c) { return kHaloH * kRowPitch * c * 2; }
SEIS_HD constexpr int dy_offset(int ty, int tx, int q, int kcpp) {
  return ((ty * kTileW + tx) * kcpp + (q ^ swizzle(tx, kcpp))) * 16;
}
SEIS_HD constexpr int dy_bytes(int k) { return kTileH * kTileW * k * 2; }

// The output split for channels (c, k).
struct Plan {
  int mtiles;   // m16 tiles of 9C (C = 8: the last is half padding)
  int nfrags;   // n8 fragments of K
  int mw, nw;   // an output block: mw m-tiles x nw n-fragments
  int blocks;   // output blocks
  int slices;   // blocks per CTA (divides kWarps)
  int pgroups;  // kWarps / slices: warps that share a block, each with its own tile rows
  int groups;   // CTAs across the output (grid x)
};
SEIS_HD constexpr Plan plan(int c, int k) {
  Plan p{};
  p.mtiles = (9 * c + 15) / 16;
  p.nfrags = k / 8;
  // At most 10 fragments (40 accumulators) per thread, so that two CTAs fit an SM (128 registers)
  // without spills: C = 8, all 5 m-tiles x up to 2 n-fragments; else 9 m-tiles x 1 n-fragment
  // (9C / 16 is 9 times a power of two, so the blocks stay a power of two).
  p.nw = c == 8 && p.nfrags >= 2 ? 2 : 1;
  p.mw = c == 8 ? p.mtiles : 9;
  p.blocks = (p.mtiles / p.mw) * (p.nfrags / p.nw);
  p.slices = p.blocks < kWarps ? p.blocks : kWarps;
  p.pgroups = kWarps / p.slices;
  p.groups = p.blocks / p.slices;
  return p;
}
// The first m-tile and n-fragment of output block b.
SEIS_HD constexpr int block_mtile(const Plan& p, int b) { return b / (p.nfrags / p.nw) * p.mw; }
SEIS_HD constexpr int block_nfrag(const Plan& p, int b) { return b % (p.nfrags / p.nw) * p.nw; }

// The tap and first channel of rows 8 h .. 8 h + 7 of m-tile mt, and whether they are real rows
// (C = 8 pads the second half of the fifth tile; it reads the centre tap, never written).
struct TapChannel {
  int tap, c0;
  bool real;
};
SEIS_HD constexpr TapChannel m_rows(int mt, int h, int c) {
  if (c == 8) return 2 * mt + h < 9 ? TapChannel{2 * mt + h, 0, true} : TapChannel{4, 0, false};
  return {mt % 9, 16 * (mt / 9) + 8 * h, true};
}

// ldmatrix.x4.trans of A for m-tile mt at the first tile row of pixel group g: the halo byte offset
// `lane` supplies. Matrix j is rows 8 (j & 1) .. +7 of the m-tile and pixels 8 (j >> 1) .. +7 of the
// k-step: register j is a-elements 2j, 2j + 1 (mma_layout.h). Row i of the group adds
// i * x_row_step(c, pgroups).
SEIS_HD constexpr int a_offset(int lane, int g, int mt, int c) {
  const int j = mma::ldsm_matrix(lane), px = 8 * (j >> 1) + mma::ldsm_row(lane);
  const TapChannel t = m_rows(mt, j & 1, c);
  return x_offset(g + t.tap / 3, px + t.tap % 3, t.c0 / 8, c / 8);
}
// The per-lane A bases of a block: m-tile mt0 + i is base i % a_bases(c) plus i / a_bases(c) halo
// rows (C >= 16: the 9 taps of a channel block are 3 column shifts x 3 rows; C = 8: 5 bases).
SEIS_HD constexpr int a_bases(int c) { return c == 8 ? 5 : 3; }
SEIS_HD constexpr int x_row_step(int c, int pgroups) { return pgroups * kRowPitch * c * 2; }

// ldmatrix.x4.trans of B for n-fragments f and f + 1 (f + 1 clamped to `last`, the block's last
// fragment) at the first tile row of group g: matrices (f, pixels 0-7), (f, 8-15), (f + 1, 0-7),
// (f + 1, 8-15), so registers 0-1 are the b-elements of fragment f and 2-3 those of f + 1.
SEIS_HD constexpr int b_offset(int lane, int g, int f, int last, int k) {
  const int j = mma::ldsm_matrix(lane);
  const int frag = f + (j >> 1) < last ? f + (j >> 1) : last;
  return dy_offset(g, 8 * (j & 1) + mma::ldsm_row(lane), frag, k / 8);
}
SEIS_HD constexpr int dy_row_step(int k, int pgroups) { return pgroups * kTileW * k * 2; }

// Where accumulator element i of (m-tile mt, n-fragment f) of `lane` belongs: the KRSC dW index
// (n * 9 + tap) * C + c, or -1 for a padding row.
SEIS_HD constexpr int64_t out_index(int lane, int mt, int f, int i, int c) {
  const mma::RowCol rc = mma::c_element(lane, i);
  const TapChannel t = m_rows(mt, rc.row / 8, c);
  const int n = 8 * f + rc.col;
  return t.real ? (static_cast<int64_t>(n) * 9 + t.tap) * c + t.c0 + rc.row % 8 : -1;
}

// Shared memory: the staging (x halo, dy tile), reused at the end for the pixel groups'
// accumulators ((pgroups - 1) x slices warps of mw * nw * 4 floats per lane); then the dbias sums,
// 8 floats per thread, kept over all tiles.
SEIS_HD constexpr int staging_bytes(int c, int k) { return x_bytes(c) + dy_bytes(k); }
SEIS_HD constexpr int reduce_floats(const Plan& p) { return (p.pgroups - 1) * p.slices * p.mw * p.nw * 4 * 32; }
SEIS_HD constexpr int bias_offset(int c, int k) {
  const int red = reduce_floats(plan(c, k)) * 4, st = staging_bytes(c, k);
  return red > st ? red : st;
}
SEIS_HD constexpr int smem_bytes(int c, int k) { return bias_offset(c, k) + 8 * kThreads * 4; }

// Split-K over pixel tiles: CTA y-index z takes tiles [z * per_split, min(tiles, +per_split)). About
// kTargetCtas CTAs in all (a constant, not the device's SM count), at least kMinTiles tiles per split,
// and enough that the fp32 partials of a split, (9CK + K) floats, stay within a quarter of the bf16
// x and dy bytes its tiles read (128 (C + K) 2 per tile): the partition and the order of the final
// sum depend on the shape only.
constexpr int64_t kMinTiles = 8;
constexpr int64_t kTargetCtas = 1024;
SEIS_HD constexpr int64_t min_tiles(int c, int k) {
  const int64_t by_bytes = (int64_t{9} * c * k + k + 16 * (c + k) - 1) / (16 * (c + k));
  return by_bytes > kMinTiles ? by_bytes : kMinTiles;
}
struct Split {
  int64_t tiles = 0, per_split = 0, splits = 0;
};
SEIS_HD constexpr Split split_of(int64_t n, int64_t h, int64_t w, int c, int k) {
  Split s;
  s.tiles = halo::tiles(n, h, w);
  if (s.tiles == 0) return s;
  const int groups = plan(c, k).groups;
  const int64_t target = kTargetCtas / groups > 1 ? kTargetCtas / groups : 1;
  const int64_t per = (s.tiles + target - 1) / target;
  s.per_split = per > min_tiles(c, k) ? per : min_tiles(c, k);
  s.splits = (s.tiles + s.per_split - 1) / s.per_split;
  return s;
}
SEIS_HD constexpr int64_t split_begin(const Split& s, int64_t z) { return z * s.per_split; }
SEIS_HD constexpr int64_t split_end(const Split& s, int64_t z) {
  return (z + 1) * s.per_split < s.tiles ? (z + 1) * s.per_split : s.tiles;
}

// fp32 partials of a shape: none with one split (the CTAs write dW and dbias themselves), else
// [splits, 9CK + K] (dW, then dbias) summed in split order.
inline int64_t partial_floats(int64_t n, int64_t h, int64_t w, int64_t c, int64_t k) {
  if (!supports(c, k, 3)) return 0;
  const Split s = split_of(n, h, w, static_cast<int>(c), static_cast<int>(k));
  return s.splits > 1 ? s.splits * (9 * c * k + k) : 0;
}

}  // namespace seis::cuda::halo_wgrad
