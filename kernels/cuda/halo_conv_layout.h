// Layout of the halo conv kernels (kernels/cuda/conv2d_halo.cu; GPU-PLAN.md 3.1 A) as
// __host__ __device__ functions shared by the kernel and its CPU emulation (tests/halo_conv_test.cpp):
// tile geometry, the swizzled shared-memory halo, the per-lane ldmatrix addresses of both operands,
// and where each accumulator lands.
//
// The conv is the implicit GEMM Y[pixels, K] = A[pixels, 9C] W^T, reduction index k = tap * C + c
// (tap = 3 r + s: the order of a KRSC weight row). A CTA computes a tile of kTileH x kTileW output
// pixels for all K channels; warp w takes tile row w (16 pixels, one mma M). Its input is the
// (kTileH + 2) x (kTileW + 2) x C halo of the tile, staged once in shared memory (zeros outside the
// image), so im2col is only an address: the A rows of a k-step are 16 consecutive halo pixels shifted
// by the tap, 16 bytes (8 channels) each. No division or bounds check in the main loop.
//
// Backward-data is the same forward-form conv (kernels/conv2d.h): of dy masked by (y > 0), staged
// as the halo, with the flipped, channel-transposed filter W'[c, tap, k] = W[k, 8 - tap, c]. Below,
// c is the channel count of the staged tensor (C forward, K backward-data) and k that of the GEMM's
// output (K forward, C backward-data).
//
// Shapes: 3x3, stride 1, pad 1; c in {8, 16, 32, 64} (the swizzle permutes a power-of-two number of
// chunks per pixel) and k in {8, 16, 32, 64} (the kernel's instantiations; the layout itself takes
// any multiple of 8): the large levels of the UNet at base 8.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/mma_layout.h"

namespace seis::cuda::halo {

constexpr int kTileH = 8, kTileW = 16;  // output pixels per CTA: one 16-pixel row per warp
constexpr int kWarps = kTileH;
constexpr int kThreads = 32 * kWarps;
constexpr int kHaloH = kTileH + 2, kHaloW = kTileW + 2;
constexpr int kHaloPixels = kHaloH * kHaloW;
constexpr int kMaxC = 64, kMaxK = 64;

SEIS_HD constexpr bool supports(int64_t c, int64_t k, int64_t r) {
  return r == 3 && (c == 8 || c == 16 || c == 32 || c == 64) && (k == 8 || k == 16 || k == 32 || k == 64);
}

// The forward with the pool epilogue: the encoder's second convs, C = K (the only instantiations).
SEIS_HD constexpr bool supports_pooled(int64_t c, int64_t k, int64_t r) { return supports(c, k, r) && c == k; }

// 16-byte chunks (8 bf16 channels) per halo pixel.
SEIS_HD constexpr int chunks(int c) { return c / 8; }

// Byte offset of chunk q of halo pixel p. The chunk index is XOR-swizzled with bits of p so that
// the 8 rows of an ldmatrix (8 consecutive pixels, the same chunk) fall into 8 different 16-byte
// bank groups of a 128-byte line for every C: no bank conflicts.
SEIS_HD constexpr int halo_swizzle(int p, int cpp) { return cpp == 1 ? 0 : (p / (8 / cpp)) % cpp; }
SEIS_HD constexpr int halo_offset(int p, int q, int cpp) { return (p * cpp + (q ^ halo_swizzle(p, cpp))) * 16; }
SEIS_HD constexpr int halo_bytes(int c) { return kHaloPixels * c * 2; }

// The reduction runs in k-steps of 16; 9C is padded to kpad with zero weights.
SEIS_HD constexpr int ksteps(int c) { return (9 * c + 15) / 16; }
SEIS_HD constexpr int kpad(int c) { return 16 * ksteps(c); }
// Weights in shared memory: bf16 [K][wstride], row n holding W[n, k] for k < 9C, then zeros. The
// row stride is an odd number of 16-byte units, so 8 rows at one k hit 8 different bank groups.
SEIS_HD constexpr int wstride(int c) { return kpad(c) + 8; }
SEIS_HD constexpr int weight_bytes(int c, int k) { return k * wstride(c) * 2; }
SEIS_HD constexpr int smem_bytes(int c, int k) { return halo_bytes(c) + weight_bytes(c, k); }

// The tap and first channel of the 8 k-values [16 s + 8 half, +8): within one tap since C % 8 == 0.
// k-values past 9C (padding) read the centre tap: any valid address, the weights there are zero.
struct TapChannel {
  int tap, c0;
};
SEIS_HD constexpr TapChannel k_chunk(int s, int half, int c) {
  const int k = 16 * s + 8 * half;
  return k < 9 * c ? TapChannel{k / c, k % c} : TapChannel{4, 0};
}

// The halo pixel offset of a tap: (tap / 3) rows and (tap % 3) columns.
SEIS_HD constexpr int tap_shift(int tap) { return tap / 3 * kHaloW + tap % 3; }

// ldmatrix.x4 of the A operand of warp `warp` at k-step s: the halo byte offset `lane` supplies.
// Matrix j holds pixels 8 (j & 1) .. +7 of the warp's 16 and k-values 8 (j >> 1) .. +7, so register j
// is a-elements 2j and 2j + 1 (mma_layout.h). The two k-halves' taps are selected, not computed
// from the lane: with s and c known at compile time no division is left for the loop.
SEIS_HD constexpr int a_offset(int lane, int warp, int s, int c) {
  const int j = mma::ldsm_matrix(lane), m = mma::ldsm_row(lane) + 8 * (j & 1);
  const TapChannel t0 = k_chunk(s, 0, c), t1 = k_chunk(s, 1, c);
  const bool high = (j >> 1) != 0;
  const int p = warp * kHaloW + m + (high ? tap_shift(t1.tap) : tap_shift(t0.tap));
  return halo_offset(p, (high ? t1.c0 : t0.c0) / 8, chunks(c));
}

// ldmatrix.x4 of the B operand for the n-fragments f and f + 1 (8 channels each) at k-step s:
// matrices (f, k 0-7), (f, k 8-15), (f + 1, k 0-7), (f + 1, k 8-15), so registers 0-1 are the
// b-elements of fragment f and 2-3 those of f + 1. With an odd fragment count the last pair loads
// fragment f twice (f + 1 clamped to the last).
SEIS_HD constexpr int b_offset(int lane, int f, int s, int c, int k) {
  const int j = mma::ldsm_matrix(lane), frags = k / 8;
  const int frag = f + (j >> 1) < frags ? f + (j >> 1) : frags - 1;
  const int n = 8 * frag + mma::ldsm_row(lane);
  return (n * wstride(c) + 16 * s + 8 * (j & 1)) * 2;
}

// The element of the KRSC conv weights [K][3][3][C] that B row n, reduction index kk (< 9c) holds.
// Forward: rows are the K outputs, kk = tap * C + ch. Backward-data: rows are the conv's C input
// channels, kk = tap * K + ch, and the tap is mirrored (W'[n, tap, ch] = W[ch, 8 - tap, n]).
SEIS_HD constexpr int64_t weight_index(int n, int kk, int c, int k, bool backward_data) {
  if (!backward_data) return static_cast<int64_t>(n) * 9 * c + kk;
  const int tap = kk / c, ch = kk % c;
  return (static_cast<int64_t>(ch) * 9 + (8 - tap)) * k + n;
}

// Where accumulator element i of n-fragment f of `lane` in warp `warp` belongs: the tile pixel
// (row, column) and the output channel.
struct OutIndex {
  int ty, tx, n;
};
SEIS_HD constexpr OutIndex out_index(int lane, int warp, int f, int i) {
  const mma::RowCol rc = mma::c_element(lane, i);
  return {warp, rc.row, 8 * f + rc.col};
}

// Backward-data of an upsampled input (ConvJoin::upsampled): the gradient of the low-resolution
// tensor a [N, h/2, w/2, k] is, per 2x2 quad of the full-resolution gradient, the sum of its four
// values rounded to bf16, added in fp32 in the order (0,0), (0,1), (1,0), (1,1) and rounded once:
// the bits of storing the full-resolution gradient and summing it with upsample2x_backward. Tile
// origins are even (h and w are), so a quad lies in one tile: rows ty and ty + 1 (ty even) are warps
// ty and ty + 1, and pixel tx ^ 1 is in lane ^ kPairLane (out_index). The upper warp writes each
// horizontal pair's sum (0,0) + (0,1) to shared memory at up_index; after a barrier the lower warp adds
// (1,0), then (1,1), and the lane of the even pixel stores the result.
constexpr int kPairLane = 4;
SEIS_HD constexpr int up_bytes(int k) { return kWarps / 2 * (kTileW / 2) * k * 4; }
SEIS_HD constexpr int up_index(int ty, int tx, int n, int k) { return ((ty / 2) * (kTileW / 2) + tx / 2) * k + n; }
// The backward-data kernel's shared memory: the halo, the weights, then the pair sums.
SEIS_HD constexpr int smem_bytes_backward_data(int c, int k) { return smem_bytes(c, k) + up_bytes(k); }

// Forward with the encoder's 2x2 maxpool in the epilogue (conv2d_forward_halo_pooled): besides y,
// per 2x2 quad of the stored (rounded) y its maximum and 2-bit argmax as kernels/pool.h defines
// them, the first maximum in the order (0,0), (0,1), (1,0), (1,1), compared as fp32: the bits of
// maxpool2d_forward of y. The quads pair as in the up epilogue: the upper warp of a row pair takes
// (0,0) and, from lane ^ kPairLane, (0,1), and writes the leader's bits and position to shared
// memory as one word at up_index; after a barrier the lower warp takes (1,0), then (1,1), stores
// the pooled pair of channels, and the lane of channels n .. n + 1 (n % 4 == 0) joins the two
// positions of lane ^ kNibbleLane (channels n + 2, n + 3) into the argmax byte of the four.
constexpr int kNibbleLane = 1;
struct PoolLead {
  bf16 v;
  int arg;
};
// One step of the comparison chain: the value at position pos takes the lead when strictly greater
// (ties keep the first; a NaN leads only from (0,0)).
SEIS_HD inline PoolLead pool_take(PoolLead lead, bf16 v, int pos) {
  return to_float(v) > to_float(lead.v) ? PoolLead{v, pos} : lead;
}
SEIS_HD constexpr uint32_t pool_word(PoolLead l) { return static_cast<uint32_t>(l.v.bits) << 16 | l.arg; }
SEIS_HD constexpr PoolLead pool_lead(uint32_t word) {
  return {bf16{static_cast<uint16_t>(word >> 16)}, static_cast<int>(word & 3u)};
}
// The argmax byte (kernels/pool.h) of channels n .. n + 3 (n % 4 == 0) of the quad that holds output
// pixel (img, oy, ox) of an h x w image of k channels.
SEIS_HD constexpr int64_t pool_argmax_byte(int64_t img, int64_t oy, int64_t ox, int n, int64_t h, int64_t w, int k) {
  return (img * (h / 2) + oy / 2) * (((w / 2) * k + 3) / 4) + ((ox / 2) * k + n) / 4;
}
// The forward kernel's shared memory with the pool epilogue: the halo, the weights, the leaders.
SEIS_HD constexpr int smem_bytes_pooled(int c, int k) { return smem_bytes(c, k) + up_bytes(k); }

// The decoder's joined inputs (ConvJoin, kernels/conv2d.h), read where they lie by the staging of
// the c-channel conv input: chunk q (channels 8q .. 8q + 7) of pixel (img, iy, ix) of an h x w image
// is in source `src` (0: a, 1: b) at element offset `off`.
// - none: a [N, h, w, c];
// - concat: [a | b], a [N, h, w, ca] holding chunks q < ca / 8 and b [N, h, w, c - ca] the rest
//   (ca and c - ca multiples of 8, so a chunk never straddles the two);
// - upsampled: a [N, h/2, w/2, c] upsampled 2x by nearest neighbour (h and w even).
// The staging computes this once per chunk and tile, outside the k-loop.
struct JoinedChunk {
  int src;
  int64_t off;
};
SEIS_HD constexpr JoinedChunk joined_chunk(ConvJoin join, int c, int ca, int64_t img, int64_t iy, int64_t ix, int q,
                                           int64_t h, int64_t w) {
  if (join == ConvJoin::upsampled) return {0, ((img * (h / 2) + iy / 2) * (w / 2) + ix / 2) * c + 8 * q};
  if (join == ConvJoin::concat) {
    const int64_t px = (img * h + iy) * w + ix;
    return 8 * q < ca ? JoinedChunk{0, px * ca + 8 * q} : JoinedChunk{1, px * (c - ca) + 8 * q - ca};
  }
  return {0, ((img * h + iy) * w + ix) * c + 8 * q};
}
// Whether the staging can read x joined so: whole chunks in each concat part, even images upsampled.
SEIS_HD constexpr bool joined_supported(ConvJoin join, int64_t c, int64_t ca, int64_t h, int64_t w) {
  return join == ConvJoin::none || (join == ConvJoin::concat && ca > 0 && ca < c && ca % 8 == 0) ||
         (join == ConvJoin::upsampled && h % 2 == 0 && w % 2 == 0);
}

// The tile of CTA b: image, first output row and column. Tiles run along W, then H, then images.
struct Tile {
  int64_t img, y0, x0;
};
SEIS_HD constexpr Tile tile_of(int64_t b, int64_t h, int64_t w) {
  const int64_t tw = (w + kTileW - 1) / kTileW, th = (h + kTileH - 1) / kTileH;
  return {b / (tw * th), (b / tw) % th * kTileH, b % tw * kTileW};
}
SEIS_HD constexpr int64_t tiles(int64_t n, int64_t h, int64_t w) {
  return n * ((h + kTileH - 1) / kTileH) * ((w + kTileW - 1) / kTileW);
}

}  // namespace seis::cuda::halo
