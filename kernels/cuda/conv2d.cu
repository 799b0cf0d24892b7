// conv2d on the GPU: implicit GEMM on tensor cores (mma.sync), plus direct kernels for few channels.
// Layout: activations NHWC (x [N,H,W,C], y [N,H,W,K]); weights KRSC; stride 1, pad R/2, R = 1 or 3.
// forward writes y (=); backward_data writes dx (=); backward_weight writes dw and dbias (=).
//
// The GEMMs, all with fp32 accumulation:
// - forward: Y[P,K] = im2col(x)[P,RRC] x W^T, gathering x on the fly (zero padding) per tile.
// - backward_data: the forward conv of dy (masked by y_relu > 0 while loading) with the flipped,
//   channel-transposed filter W'[c,r,s,k] = W[k,R-1-r,R-1-s,c]: the same gather, no scatter-add.
// - backward_weight: dW[K,RRC] = dy^T[K,P] x im2col(x)[P,RRC]. The pixel reduction is split across
//   blocks (split-K) into fp32 partials, which a second kernel sums in a fixed order. dbias is summed
//   from the dy tiles that the blocks of the first RRC column tile load anyway. No float atomics:
//   the result depends on the shape only, not on the device or the run.
// Operands are rounded to the ConvMath precision (tf32: cvt.rna, bf16: round to nearest) when they
// are stored to shared memory; ConvMath::f32 runs the same tiles with exact fp32 FMAs (SIMT).
// Every pixel and element offset is int64 (a batch of level-1 activations passes 2^31 elements).
//
// Few channels (the 1-channel input conv, the 1x1 head, and their backward passes) are memory-bound:
// direct kernels stream over pixels in fp32 instead of padding the GEMM tiles.
//
// bf16 activations (the bf16 overloads): the direct kernels read and write bf16 themselves (widen on
// load, round once on store). The GEMMs go through fp32 copies in the caller's workspace
// (conv_layout::carve_wide, carved before the fp32 pieces): widen the inputs (cuda::convert, or one
// fused widen-and-mask map for dy and y_relu), run the fp32-storage launchers above, round the
// output once to bf16 (cuda::convert). Both give the same bits.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/conv2d.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_deep.h"
#include "kernels/cuda/conv2d_halo.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/deep_wgrad_layout.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/elementwise.h"

namespace seis::cuda {
namespace {

// ---- Precision --------------------------------------------------------------------------------

template <ConvMath M>
struct SmemType {
  using type = float;  // f32 and tf32 (tf32 values are stored as rounded fp32 bit patterns)
};
template <>
struct SmemType<ConvMath::bf16> {
  using type = __nv_bfloat16;
};

__device__ __forceinline__ float round_tf32(float x) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
}

// Stores 4 consecutive k-values of one tile row, rounded to the operand precision.
template <ConvMath M>
__device__ __forceinline__ void store4(typename SmemType<M>::type* dst, const float (&v)[4]) {
  if constexpr (M == ConvMath::bf16) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]);
    __nv_bfloat162 hi = __floats2bfloat162_rn(v[2], v[3]);
    uint2 packed;
    packed.x = *reinterpret_cast<uint32_t*>(&lo);
    packed.y = *reinterpret_cast<uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(dst) = packed;
  } else if constexpr (M == ConvMath::tf32) {
    *reinterpret_cast<float4*>(dst) =
        make_float4(round_tf32(v[0]), round_tf32(v[1]), round_tf32(v[2]), round_tf32(v[3]));
  } else {
    *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
  }
}

// ---- The block tile -------------------------------------------------------------------------------
// A block computes a BM x BN tile of C = A x B^T. Shared memory holds A as [BM][kLds] and B as
// [BN][kLds], reduction index contiguous, so that mma fragments are 32-bit loads without bank
// conflicts (row stride 36 words for fp32, 20 words for bf16).

using conv_layout::kBK;
using conv_layout::kBlockThreads;

template <ConvMath M>
constexpr int lds() {
  return M == ConvMath::bf16 ? kBK + 8 : kBK + 4;
}

template <ConvMath M, int BM, int BN, int WM, int WN>
struct TileMath {
  using T = typename SmemType<M>::type;
  static constexpr bool kTensor = M != ConvMath::f32;
  static constexpr int kLds = lds<M>();
  // Tensor cores: WM x WN warps, each a (BM/WM) x (BN/WN) tile of m16n8 fragments.
  static constexpr int kWarpM = BM / WM, kWarpN = BN / WN;
  static constexpr int kMI = kWarpM / 16, kNI = kWarpN / 8;
  // SIMT fp32: threads in a (256 / (BN/4)) x (BN/4) grid, each 4 columns x kRM rows, strided.
  static constexpr int kTN = BN / 4, kTM = kBlockThreads / kTN, kRM = BM / kTM;
  static constexpr int kAcc = kTensor ? kMI * kNI * 4 : kRM * 4;
  static_assert(WM * WN == 8, "8 warps");
  static_assert(!kTensor || (kWarpM % 16 == 0 && kWarpN % 8 == 0), "warp tile of whole fragments");
  static_assert(kTensor || (kBlockThreads % kTN == 0 && BM % kTM == 0), "SIMT thread grid");

  float acc[kAcc];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < kAcc; ++i) acc[i] = 0.0f;
  }

  __device__ __forceinline__ void compute(const T* __restrict__ As, const T* __restrict__ Bs) {
    const int tid = threadIdx.x;
    if constexpr (kTensor) {
      const int warp = tid / 32, lane = tid % 32;
      const int group = lane / 4, tig = lane % 4;
      const int wm = (warp % WM) * kWarpM, wn = (warp / WM) * kWarpN;
      if constexpr (M == ConvMath::tf32) {
        const uint32_t* A = reinterpret_cast<const uint32_t*>(As);
        const uint32_t* B = reinterpret_cast<const uint32_t*>(Bs);
#pragma unroll
        for (int k0 = 0; k0 < kBK; k0 += 8) {
          uint32_t a[kMI][4], b[kNI][2];
#pragma unroll
          for (int mi = 0; mi < kMI; ++mi) {
            const int r0 = (wm + mi * 16 + group) * kLds + k0 + tig;
            a[mi][0] = A[r0];
            a[mi][1] = A[r0 + 8 * kLds];
            a[mi][2] = A[r0 + 4];
            a[mi][3] = A[r0 + 8 * kLds + 4];
          }
#pragma unroll
          for (int ni = 0; ni < kNI; ++ni) {
            const int c0 = (wn + ni * 8 + group) * kLds + k0 + tig;
            b[ni][0] = B[c0];
            b[ni][1] = B[c0 + 4];
          }
#pragma unroll
          for (int mi = 0; mi < kMI; ++mi) {
#pragma unroll
            for (int ni = 0; ni < kNI; ++ni) {
              float* c = &acc[(mi * kNI + ni) * 4];
              asm volatile(
                  "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                  "{%0,%1,%2,%3};\n"
                  : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                  : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
            }
          }
        }
      } else {
        // bf16 pairs: 32-bit words, row stride kLds / 2 words.
        constexpr int kW = kLds / 2;
        const uint32_t* A = reinterpret_cast<const uint32_t*>(As);
        const uint32_t* B = reinterpret_cast<const uint32_t*>(Bs);
#pragma unroll
        for (int k0 = 0; k0 < kBK / 2; k0 += 8) {  // k0 in words: 16 bf16 per step
          uint32_t a[kMI][4], b[kNI][2];
#pragma unroll
          for (int mi = 0; mi < kMI; ++mi) {
            const int r0 = (wm + mi * 16 + group) * kW + k0 + tig;
            a[mi][0] = A[r0];
            a[mi][1] = A[r0 + 8 * kW];
            a[mi][2] = A[r0 + 4];
            a[mi][3] = A[r0 + 8 * kW + 4];
          }
#pragma unroll
          for (int ni = 0; ni < kNI; ++ni) {
            const int c0 = (wn + ni * 8 + group) * kW + k0 + tig;
            b[ni][0] = B[c0];
            b[ni][1] = B[c0 + 4];
          }
#pragma unroll
          for (int mi = 0; mi < kMI; ++mi) {
#pragma unroll
            for (int ni = 0; ni < kNI; ++ni) {
              float* c = &acc[(mi * kNI + ni) * 4];
              asm volatile(
                  "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                  "{%0,%1,%2,%3};\n"
                  : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                  : "r"(a[mi][0]), "r"(a[mi][1]), "r"(a[mi][2]), "r"(a[mi][3]), "r"(b[ni][0]), "r"(b[ni][1]));
            }
          }
        }
      }
    } else {
      const int tx = tid % kTN, ty = tid / kTN;
#pragma unroll 2
      for (int k0 = 0; k0 < kBK; k0 += 4) {
        float4 a[kRM], b[4];
#pragma unroll
        for (int i = 0; i < kRM; ++i) a[i] = *reinterpret_cast<const float4*>(&As[(ty + i * kTM) * kLds + k0]);
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = *reinterpret_cast<const float4*>(&Bs[(tx + j * kTN) * kLds + k0]);
#pragma unroll
        for (int i = 0; i < kRM; ++i) {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            float& c = acc[i * 4 + j];
            c = fmaf(a[i].x, b[j].x, c);
            c = fmaf(a[i].y, b[j].y, c);
            c = fmaf(a[i].z, b[j].z, c);
            c = fmaf(a[i].w, b[j].w, c);
          }
        }
      }
    }
  }

  // f(row, col, value) for every accumulator, rows and columns relative to the block tile.
  template <class F>
  __device__ __forceinline__ void for_each(F&& f) const {
    const int tid = threadIdx.x;
    if constexpr (kTensor) {
      const int warp = tid / 32, lane = tid % 32;
      const int group = lane / 4, tig = lane % 4;
      const int wm = (warp % WM) * kWarpM, wn = (warp / WM) * kWarpN;
#pragma unroll
      for (int mi = 0; mi < kMI; ++mi) {
#pragma unroll
        for (int ni = 0; ni < kNI; ++ni) {
          const float* c = &acc[(mi * kNI + ni) * 4];
          const int row = wm + mi * 16 + group, col = wn + ni * 8 + tig * 2;
          f(row, col, c[0]);
          f(row, col + 1, c[1]);
          f(row + 8, col, c[2]);
          f(row + 8, col + 1, c[3]);
        }
      }
    } else {
      const int tx = tid % kTN, ty = tid / kTN;
#pragma unroll
      for (int i = 0; i < kRM; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) f(ty + i * kTM, tx + j * kTN, acc[i * 4 + j]);
      }
    }
  }
};

// ---- Forward-form implicit GEMM (forward and backward_data) ----------------------------------------
// out[p, n] = act(bias[n] + sum_{r,s,c} src[p + (r-pad, s-pad), c] * wgt[n, r, s, c]), where src is
// masked by (mask > 0) when mask is not null. GEMM: M = pixels, N = nout, K = R*R*cin.

// T: the storage of src, mask and out (float; bf16 in the direct kernel only).
template <class T>
struct ConvArgsOf {
  const T* src;       // [P, cin]
  const T* mask;      // [P, cin] or null
  const float* wgt;   // [nout, R, R, cin]
  const float* bias;  // [nout] or null
  T* out;             // [P, nout]
  int64_t pixels, h, w;
  int cin, nout, r, pad, rrc;
  bool relu;
};
using ConvArgs = ConvArgsOf<float>;

// VEC = 4: cin % 4 == 0 and 16-byte aligned pointers, so 4 consecutive k-values are one float4.
template <ConvMath M, int BM, int BN, int WM, int WN, int VEC>
__global__ void __launch_bounds__(kBlockThreads) conv_igemm_kernel(const ConvArgs a) {
  using Tile = TileMath<M, BM, BN, WM, WN>;
  using T = typename Tile::T;
  constexpr int kLds = Tile::kLds;
  constexpr int kChunksA = BM * kBK / 4, kChunksB = BN * kBK / 4;  // 4 k-values per chunk
  constexpr int kPerA = (kChunksA + kBlockThreads - 1) / kBlockThreads;
  constexpr int kPerB = (kChunksB + kBlockThreads - 1) / kBlockThreads;

  __shared__ __align__(16) T As[BM * kLds];
  __shared__ __align__(16) T Bs[BN * kLds];
  __shared__ int64_t row_pix[BM];
  __shared__ int row_h[BM], row_w[BM];

  const int tid = threadIdx.x;
  const int64_t n_tiles = (a.nout + BN - 1) / BN;
  const int64_t m0 = (static_cast<int64_t>(blockIdx.x) / n_tiles) * BM;
  const int n0 = static_cast<int>(static_cast<int64_t>(blockIdx.x) % n_tiles) * BN;

  for (int i = tid; i < BM; i += kBlockThreads) {
    const int64_t p = m0 + i;
    if (p < a.pixels) {
      const int64_t t = p / a.w;
      row_pix[i] = p;
      row_w[i] = static_cast<int>(p - t * a.w);
      row_h[i] = static_cast<int>(t % a.h);
    } else {
      row_pix[i] = 0;
      row_w[i] = 0;
      row_h[i] = -(1 << 28);  // every tap falls outside the image: zeros
    }
  }
  __syncthreads();

  const int64_t cin = a.cin;
  float ra[kPerA][4], rb[kPerB][4];

  // Chunk q covers row q / 8, k-values kk0 + 4 * (q % 8) .. +3.
  auto load_a = [&](int kk0) {
#pragma unroll
    for (int i = 0; i < kPerA; ++i) {
      const int q = tid + i * kBlockThreads;
      const int row = q / (kBK / 4);
      const int kk = kk0 + (q % (kBK / 4)) * 4;
#pragma unroll
      for (int j = 0; j < 4; ++j) ra[i][j] = 0.0f;
      if (q >= kChunksA) continue;
      if constexpr (VEC == 4) {
        if (kk < a.rrc) {
          const int tap = kk / a.cin, c = kk - tap * a.cin;
          const int dr = tap / a.r - a.pad, ds = tap % a.r - a.pad;
          const int hh = row_h[row] + dr, ww = row_w[row] + ds;
          if (hh >= 0 && hh < a.h && ww >= 0 && ww < a.w) {
            const int64_t off = (row_pix[row] + static_cast<int64_t>(dr) * a.w + ds) * cin + c;
            float4 v = __ldg(reinterpret_cast<const float4*>(a.src + off));
            if (a.mask != nullptr) {
              const float4 mk = __ldg(reinterpret_cast<const float4*>(a.mask + off));
              v.x = mk.x > 0.0f ? v.x : 0.0f;
              v.y = mk.y > 0.0f ? v.y : 0.0f;
              v.z = mk.z > 0.0f ? v.z : 0.0f;
              v.w = mk.w > 0.0f ? v.w : 0.0f;
            }
            ra[i][0] = v.x;
            ra[i][1] = v.y;
            ra[i][2] = v.z;
            ra[i][3] = v.w;
          }
        }
      } else {
        int tap = kk / a.cin, c = kk - tap * a.cin;  // then stepped: no division per element
        const int ph = row_h[row], pw = row_w[row];
        const int64_t pix = row_pix[row];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (kk + j >= a.rrc) break;
          const int dr = tap / a.r - a.pad, ds = tap % a.r - a.pad;
          const int hh = ph + dr, ww = pw + ds;
          if (hh >= 0 && hh < a.h && ww >= 0 && ww < a.w) {
            const int64_t off = (pix + static_cast<int64_t>(dr) * a.w + ds) * cin + c;
            float v = __ldg(a.src + off);
            if (a.mask != nullptr && !(__ldg(a.mask + off) > 0.0f)) v = 0.0f;
            ra[i][j] = v;
          }
          if (++c == a.cin) {
            c = 0;
            ++tap;
          }
        }
      }
    }
  };
  auto load_b = [&](int kk0) {
#pragma unroll
    for (int i = 0; i < kPerB; ++i) {
      const int q = tid + i * kBlockThreads;
      const int row = q / (kBK / 4);
      const int kk = kk0 + (q % (kBK / 4)) * 4;
      const int n = n0 + row;
#pragma unroll
      for (int j = 0; j < 4; ++j) rb[i][j] = 0.0f;
      if (q >= kChunksB || n >= a.nout) continue;
      const float* src = a.wgt + static_cast<int64_t>(n) * a.rrc;
      if constexpr (VEC == 4) {
        if (kk < a.rrc) {
          const float4 v = __ldg(reinterpret_cast<const float4*>(src + kk));
          rb[i][0] = v.x;
          rb[i][1] = v.y;
          rb[i][2] = v.z;
          rb[i][3] = v.w;
        }
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (kk + j < a.rrc) rb[i][j] = __ldg(src + kk + j);
        }
      }
    }
  };
  auto store = [&]() {
#pragma unroll
    for (int i = 0; i < kPerA; ++i) {
      const int q = tid + i * kBlockThreads;
      if (q < kChunksA) store4<M>(&As[(q / (kBK / 4)) * kLds + (q % (kBK / 4)) * 4], ra[i]);
    }
#pragma unroll
    for (int i = 0; i < kPerB; ++i) {
      const int q = tid + i * kBlockThreads;
      if (q < kChunksB) store4<M>(&Bs[(q / (kBK / 4)) * kLds + (q % (kBK / 4)) * 4], rb[i]);
    }
  };

  Tile tile;
  tile.zero();
  const int k_tiles = (a.rrc + kBK - 1) / kBK;
  load_a(0);
  load_b(0);
  for (int t = 0; t < k_tiles; ++t) {
    store();
    __syncthreads();
    if (t + 1 < k_tiles) {  // the next tile's loads are in flight during this tile's math
      load_a((t + 1) * kBK);
      load_b((t + 1) * kBK);
    }
    tile.compute(As, Bs);
    __syncthreads();
  }

  tile.for_each([&](int row, int col, float v) {
    const int64_t p = m0 + row;
    const int n = n0 + col;
    if (p < a.pixels && n < a.nout) {
      if (a.bias != nullptr) v += __ldg(a.bias + n);
      if (a.relu) v = fmaxf(v, 0.0f);
      a.out[p * a.nout + n] = v;
    }
  });
}

// ---- backward_weight implicit GEMM -------------------------------------------------------------------
// dW[k, rsc] = sum_p dy[p, k] x[p + (r-pad, s-pad), c]. GEMM: M = K, N = R*R*C, reduction over pixels,
// in k-tiles of 32 consecutive pixels of one image row (tile t: image row t / wtiles, columns
// 32 * (t % wtiles) ..). Block z of gridDim.y takes tiles [z * tiles_per_split, ..) and writes its
// partial sums to part[z]; part_bias[z] gets dbias from the blocks of column tile 0.

struct WgradArgs {
  const float* x;     // [P, C]
  const float* dy;    // [P, K]
  const float* mask;  // [P, K] or null
  float* part;        // [splits, K, RRC]
  float* part_bias;   // [splits, K] or null
  int64_t h, w, tiles, tiles_per_split;
  int c, k, r, pad, rrc, wtiles;
};

template <ConvMath M, int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(kBlockThreads) wgrad_igemm_kernel(const WgradArgs a) {
  using Tile = TileMath<M, BM, BN, WM, WN>;
  using T = typename Tile::T;
  constexpr int kLds = Tile::kLds;
  constexpr int kChunksA = BM * kBK / 4, kChunksB = BN * kBK / 4;
  static_assert(kChunksA % kBlockThreads == 0 && kChunksB % kBlockThreads == 0, "whole chunks per thread");
  static_assert(kBlockThreads % BM == 0 && kBlockThreads % BN == 0, "one fixed row per thread");
  constexpr int kPerA = kChunksA / kBlockThreads, kPerB = kChunksB / kBlockThreads;

  __shared__ __align__(16) T As[BM * kLds];
  __shared__ __align__(16) T Bs[BN * kLds];
  __shared__ float bias_red[kBlockThreads];

  const int tid = threadIdx.x;
  const int n_tiles = (a.rrc + BN - 1) / BN;
  const int m0 = (static_cast<int>(blockIdx.x) / n_tiles) * BM;
  const int n0 = (static_cast<int>(blockIdx.x) % n_tiles) * BN;
  const int64_t split = blockIdx.y;
  const int64_t t_begin = split * a.tiles_per_split;
  const int64_t t_end = std::min(a.tiles, t_begin + a.tiles_per_split);
  const bool do_bias = a.part_bias != nullptr && n0 == 0;

  // Chunks are row-fastest (rows are contiguous in memory: k of dy, c of x), so each thread keeps one
  // row: chunk q = tid + i * 256 has row tid % BM and pixel group q / BM.
  const int a_row = tid % BM, b_row = tid % BN;
  const int a_k = m0 + a_row;
  const int b_n = n0 + b_row;
  int b_dr = 0, b_ds = 0, b_c = 0;
  const bool b_valid = b_n < a.rrc;
  if (b_valid) {
    const int tap = b_n / a.c;
    b_c = b_n - tap * a.c;
    b_dr = tap / a.r - a.pad;
    b_ds = tap % a.r - a.pad;
  }
  const bool a_valid = a_k < a.k;

  float ra[kPerA][4], rb[kPerB][4];
  float bias_acc = 0.0f;

  // Tile position, advanced incrementally: image row index (n*H + h), h, first column.
  int64_t img_row = 0, h = 0, w0 = 0;
  if (t_begin < t_end) {
    img_row = t_begin / a.wtiles;
    w0 = (t_begin - img_row * a.wtiles) * kBK;
    h = img_row % a.h;
  }

  auto load = [&]() {
#pragma unroll
    for (int i = 0; i < kPerA; ++i) {
      const int pg = (tid + i * kBlockThreads) / BM;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t ww = w0 + pg * 4 + j;
        float v = 0.0f;
        if (a_valid && ww < a.w) {
          const int64_t off = (img_row * a.w + ww) * a.k + a_k;
          v = __ldg(a.dy + off);
          if (a.mask != nullptr && !(__ldg(a.mask + off) > 0.0f)) v = 0.0f;
        }
        ra[i][j] = v;
      }
    }
    const int64_t hh = h + b_dr;
    const bool row_ok = b_valid && hh >= 0 && hh < a.h;
#pragma unroll
    for (int i = 0; i < kPerB; ++i) {
      const int pg = (tid + i * kBlockThreads) / BN;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t w_out = w0 + pg * 4 + j;
        const int64_t ww = w_out + b_ds;
        float v = 0.0f;
        if (row_ok && w_out < a.w && ww >= 0 && ww < a.w) {
          v = __ldg(a.x + ((img_row + b_dr) * a.w + ww) * a.c + b_c);
        }
        rb[i][j] = v;
      }
    }
  };
  auto advance = [&]() {
    w0 += kBK;
    if (w0 >= a.w) {
      w0 = 0;
      ++img_row;
      if (++h == a.h) h = 0;
    }
  };
  auto store = [&]() {
#pragma unroll
    for (int i = 0; i < kPerA; ++i) {
      const int pg = (tid + i * kBlockThreads) / BM;
      store4<M>(&As[a_row * kLds + pg * 4], ra[i]);
      if (do_bias) bias_acc += (ra[i][0] + ra[i][1]) + (ra[i][2] + ra[i][3]);
    }
#pragma unroll
    for (int i = 0; i < kPerB; ++i) {
      const int pg = (tid + i * kBlockThreads) / BN;
      store4<M>(&Bs[b_row * kLds + pg * 4], rb[i]);
    }
  };

  Tile tile;
  tile.zero();
  if (t_begin < t_end) load();
  for (int64_t t = t_begin; t < t_end; ++t) {
    store();
    __syncthreads();
    if (t + 1 < t_end) {
      advance();
      load();
    }
    tile.compute(As, Bs);
    __syncthreads();
  }

  float* part = a.part + split * a.k * a.rrc;
  tile.for_each([&](int row, int col, float v) {
    const int k = m0 + row, n = n0 + col;
    if (k < a.k && n < a.rrc) part[static_cast<int64_t>(k) * a.rrc + n] = v;
  });

  if (a.part_bias != nullptr && n0 == 0) {
    bias_red[tid] = bias_acc;
    __syncthreads();
    if (tid < BM && m0 + tid < a.k) {
      float s = 0.0f;
      for (int j = tid; j < kBlockThreads; j += BM) s += bias_red[j];
      a.part_bias[split * a.k + m0 + tid] = s;
    }
  }
}

// out[i] = sum_{s < splits} part[s * n + i], in order of s.
__global__ void sum_partials_kernel(const float* __restrict__ part, int64_t splits, int64_t n,
                                    float* __restrict__ out) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    float s = 0.0f;
    for (int64_t z = 0; z < splits; ++z) s += part[z * n + i];
    out[i] = s;
  }
}

// W'[c, r', s', k] = W[k, R-1-r', R-1-s', c]: the filter of backward_data as a forward conv.
__global__ void flip_transpose_kernel(const float* __restrict__ w, int64_t k, int64_t r, int64_t c,
                                      float* __restrict__ wt) {
  const int64_t n = k * r * r * c;
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    const int64_t kk = i % k;
    int64_t t = i / k;
    const int64_t s = t % r;
    t /= r;
    const int64_t rr = t % r;
    const int64_t cc = t / r;
    wt[i] = w[((kk * r + (r - 1 - rr)) * r + (r - 1 - s)) * c + cc];
  }
}

// ---- Direct kernels for few channels ----------------------------------------------------------------

__device__ __forceinline__ void pixel_hw(int64_t p, int64_t h, int64_t w, int& ph, int& pw) {
  if (p < (int64_t{1} << 31) && h * w < (int64_t{1} << 31)) {  // 32-bit division where it fits
    const uint32_t q = static_cast<uint32_t>(p) / static_cast<uint32_t>(w);
    pw = static_cast<int>(static_cast<uint32_t>(p) - q * static_cast<uint32_t>(w));
    ph = static_cast<int>(q % static_cast<uint32_t>(h));
  } else {
    const int64_t q = p / w;
    pw = static_cast<int>(p - q * w);
    ph = static_cast<int>(q % h);
  }
}

// The fp32 value of a read-only element, through the read-only data cache.
__device__ __forceinline__ float load_ro(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load_ro(const bf16* p) {
  return to_float(bf16{__ldg(reinterpret_cast<const unsigned short*>(p))});
}

// One thread per output pixel, 8 outputs at a time; weights and bias in shared memory (dynamic:
// nout * rrc + nout floats). The GEMM's ConvArgs, or bf16 storage read and written in place (each
// value widened on load, the result rounded once on store: the bits of widening, running the fp32
// form and rounding). fp32 arithmetic whatever the ConvMath.
constexpr int kDirectOut = 8;

template <class T>
__global__ void __launch_bounds__(kBlockThreads) conv_direct_kernel(const ConvArgsOf<T> a) {
  extern __shared__ float smem[];
  float* sw = smem;
  float* sb = smem + static_cast<int64_t>(a.nout) * a.rrc;
  for (int i = threadIdx.x; i < a.nout * a.rrc; i += blockDim.x) sw[i] = a.wgt[i];
  for (int i = threadIdx.x; i < a.nout; i += blockDim.x) sb[i] = a.bias != nullptr ? a.bias[i] : 0.0f;
  __syncthreads();

  const int taps = a.r * a.r;
  for (int64_t p = thread_index(); p < a.pixels; p += grid_stride()) {
    int ph, pw;
    pixel_hw(p, a.h, a.w, ph, pw);
    for (int n0 = 0; n0 < a.nout; n0 += kDirectOut) {
      float acc[kDirectOut];
#pragma unroll
      for (int j = 0; j < kDirectOut; ++j) acc[j] = n0 + j < a.nout ? sb[n0 + j] : 0.0f;
      for (int tap = 0; tap < taps; ++tap) {
        const int dr = tap / a.r - a.pad, ds = tap % a.r - a.pad;
        const int hh = ph + dr, ww = pw + ds;
        if (hh < 0 || hh >= a.h || ww < 0 || ww >= a.w) continue;
        const int64_t base = (p + static_cast<int64_t>(dr) * a.w + ds) * a.cin;
        const float* wrow = sw + tap * a.cin;
        for (int c = 0; c < a.cin; ++c) {
          float v = load_ro(a.src + base + c);
          if (a.mask != nullptr && !(load_ro(a.mask + base + c) > 0.0f)) v = 0.0f;
#pragma unroll
          for (int j = 0; j < kDirectOut; ++j) {
            if (n0 + j < a.nout) acc[j] = fmaf(v, wrow[(n0 + j) * a.rrc + c], acc[j]);
          }
        }
      }
#pragma unroll
      for (int j = 0; j < kDirectOut; ++j) {
        if (n0 + j < a.nout) store(&a.out[p * a.nout + n0 + j], a.relu ? fmaxf(acc[j], 0.0f) : acc[j]);
      }
    }
  }
}

// backward_weight for K <= 8 and R*R*C <= 16: each thread sums its pixels (fixed grid-stride
// partition) into registers; warps reduce by a fixed shuffle tree, then warps in order; block b
// writes part[b] = [dw (K*RRC), dbias (K)].
using conv_layout::kWgE;
using conv_layout::kWgK;

// x, dy and mask are float or bf16 (widened on load).
template <class T>
__global__ void __launch_bounds__(kBlockThreads)
    wgrad_direct_kernel(const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ mask, int64_t pixels,
                        int64_t h, int64_t w, int c, int k, int r, int pad, float* __restrict__ part) {
  __shared__ int e_dr[kWgE], e_ds[kWgE], e_c[kWgE];
  __shared__ float red[kBlockThreads / 32][kWgK * kWgE + kWgK];
  const int rrc = r * r * c;
  if (threadIdx.x < kWgE) {
    const int e = threadIdx.x;
    const int tap = e < rrc ? e / c : 0;
    e_c[e] = e < rrc ? e - tap * c : 0;
    e_dr[e] = tap / r - pad;
    e_ds[e] = tap % r - pad;
  }
  __syncthreads();

  float acc[kWgK][kWgE], bacc[kWgK];
#pragma unroll
  for (int j = 0; j < kWgK; ++j) {
    bacc[j] = 0.0f;
#pragma unroll
    for (int e = 0; e < kWgE; ++e) acc[j][e] = 0.0f;
  }

  for (int64_t p = thread_index(); p < pixels; p += grid_stride()) {
    int ph, pw;
    pixel_hw(p, h, w, ph, pw);
    float g[kWgK];
#pragma unroll
    for (int j = 0; j < kWgK; ++j) {
      g[j] = 0.0f;
      if (j < k) {
        g[j] = load_ro(dy + p * k + j);
        if (mask != nullptr && !(load_ro(mask + p * k + j) > 0.0f)) g[j] = 0.0f;
      }
      bacc[j] += g[j];
    }
#pragma unroll
    for (int e = 0; e < kWgE; ++e) {
      if (e < rrc) {
        const int hh = ph + e_dr[e], ww = pw + e_ds[e];
        float v = 0.0f;
        if (hh >= 0 && hh < h && ww >= 0 && ww < w) {
          v = load_ro(x + (p + static_cast<int64_t>(e_dr[e]) * w + e_ds[e]) * c + e_c[e]);
        }
#pragma unroll
        for (int j = 0; j < kWgK; ++j) acc[j][e] = fmaf(g[j], v, acc[j][e]);
      }
    }
  }

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int j = 0; j < kWgK; ++j) {
#pragma unroll
    for (int e = 0; e < kWgE + 1; ++e) {
      float v = e < kWgE ? acc[j][e] : bacc[j];
#pragma unroll
      for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) {
        if (e < kWgE) {
          red[warp][j * kWgE + e] = v;
        } else {
          red[warp][kWgK * kWgE + j] = v;
        }
      }
    }
  }
  __syncthreads();
  const int out_n = k * rrc + k;
  for (int i = threadIdx.x; i < out_n; i += blockDim.x) {
    const int slot = i < k * rrc ? (i / rrc) * kWgE + i % rrc : kWgK * kWgE + (i - k * rrc);
    float s = 0.0f;
    for (int wi = 0; wi < kBlockThreads / 32; ++wi) s += red[wi][slot];
    part[static_cast<int64_t>(blockIdx.x) * out_n + i] = s;
  }
}

// ---- Host side ----------------------------------------------------------------------------------------

void check_shape(const Conv2dShape& s) {
  SEIS_KERNEL_CHECK(s.r == 1 || s.r == 3, "conv2d: filter size " << s.r << " (1 or 3 supported)");
  SEIS_KERNEL_CHECK(s.n >= 0 && s.h >= 0 && s.w >= 0, "conv2d: negative shape " << s.n << "x" << s.h << "x" << s.w);
  SEIS_KERNEL_CHECK(s.c >= 1 && s.k >= 1 && s.c * 9 < (int64_t{1} << 30) && s.k * 9 < (int64_t{1} << 30),
                    "conv2d: channels C=" << s.c << " K=" << s.k);
  SEIS_KERNEL_CHECK(s.h < (int64_t{1} << 30) && s.w < (int64_t{1} << 30), "conv2d: image " << s.h << "x" << s.w);
}

template <ConvMath M, int BN, int WM, int WN>
void launch_conv_igemm(const ConvArgs& a, bool vec, cudaStream_t stream) {
  constexpr int BM = 128;
  const int64_t blocks = ((a.pixels + BM - 1) / BM) * ((a.nout + BN - 1) / BN);
  SEIS_KERNEL_CHECK(blocks < (int64_t{1} << 31), "conv2d: " << blocks << " blocks");
  if (vec) {
    conv_igemm_kernel<M, BM, BN, WM, WN, 4><<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(a);
  } else {
    conv_igemm_kernel<M, BM, BN, WM, WN, 1><<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(a);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

template <ConvMath M>
void conv_igemm_n(const ConvArgs& a, bool vec, cudaStream_t stream) {
  // Narrow column tiles for the few-channel top levels, so that no tensor-core work is padding.
  if (a.nout <= 16) {
    launch_conv_igemm<M, 16, 8, 1>(a, vec, stream);
  } else if (a.nout <= 32) {
    launch_conv_igemm<M, 32, 4, 2>(a, vec, stream);
  } else {
    launch_conv_igemm<M, 64, 4, 2>(a, vec, stream);
  }
}

template <class T>
void launch_direct(const ConvArgsOf<T>& a, cudaStream_t stream) {
  const int64_t smem = (static_cast<int64_t>(a.nout) * a.rrc + a.nout) * 4;
  conv_direct_kernel<T><<<grid_for(a.pixels), kBlockThreads, smem, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
}

// The arguments of a forward-form conv of src [P, cin] (masked by mask > 0 when not null) into
// out [P, nout].
template <class T>
ConvArgsOf<T> forward_form_args(const Conv2dShape& s, const T* src, const T* mask, const float* wgt, const float* bias,
                                T* out, int64_t cin, int64_t nout, bool relu) {
  ConvArgsOf<T> a{};
  a.src = src;
  a.mask = mask;
  a.wgt = wgt;
  a.bias = bias;
  a.out = out;
  a.pixels = s.pixels();
  a.h = s.h;
  a.w = s.w;
  a.cin = static_cast<int>(cin);
  a.nout = static_cast<int>(nout);
  a.r = static_cast<int>(s.r);
  a.pad = static_cast<int>(s.pad());
  a.rrc = static_cast<int>(s.r * s.r * cin);
  a.relu = relu;
  return a;
}

// The forward conv as a forward-form conv.
template <class T>
ConvArgsOf<T> forward_args(const Conv2dShape& s, const T* x, const float* w, const float* bias, bool relu, T* y) {
  return forward_form_args(s, x, static_cast<const T*>(nullptr), w, bias, y, s.c, s.k, relu);
}

// backward_data as the forward-form conv of dy (masked by y_relu > 0) with the flipped,
// channel-transposed filter, which it writes into the workspace's first piece.
template <class T>
ConvArgsOf<T> backward_data_args(const Conv2dShape& s, const T* dy, const T* y_relu, const float* w, T* dx,
                                 conv_layout::Carver& ws, cudaStream_t stream) {
  const conv_layout::BackwardDataScratch sc = conv_layout::carve_backward_data(s, ws);
  flip_transpose_kernel<<<grid_for(s.weight_numel()), kThreads, 0, stream>>>(w, s.k, s.r, s.c, sc.wt);
  SEIS_CUDA_LAUNCH_CHECK();
  return forward_form_args(s, dy, y_relu, static_cast<const float*>(sc.wt), nullptr, dx, s.k, s.c, false);
}

// The forward-form conv: the GEMM, or the direct kernel for few channels (the choice the CPU twin
// mirrors to round where the GEMM does: conv_layout::forward_form_direct).
void run_conv(ConvMath math, const ConvArgs& a, cudaStream_t stream) {
  if (a.pixels == 0) return;
  if (conv_layout::forward_form_direct(a.rrc, a.nout)) {
    launch_direct(a, stream);
    return;
  }
  const bool vec = a.cin % 4 == 0 && aligned16(a.src) && aligned16(a.wgt) && (a.mask == nullptr || aligned16(a.mask));
  switch (math) {
    case ConvMath::f32:
      conv_igemm_n<ConvMath::f32>(a, vec, stream);
      break;
    case ConvMath::tf32:
      conv_igemm_n<ConvMath::tf32>(a, vec, stream);
      break;
    case ConvMath::bf16:
      conv_igemm_n<ConvMath::bf16>(a, vec, stream);
      break;
  }
}

void sum_partials(const float* part, int64_t splits, int64_t n, float* out, cudaStream_t stream) {
  sum_partials_kernel<<<grid_for(n), kThreads, 0, stream>>>(part, splits, n, out);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <ConvMath M, int BM, int BN, int WM, int WN>
void wgrad_igemm(const Conv2dShape& s, const float* x, const float* dy, const float* y_relu, float* dw, float* dbias,
                 float* part, cudaStream_t stream) {
  const conv_layout::WgradTile tile = conv_layout::wgrad_tile(s);
  SEIS_KERNEL_CHECK(tile.bm == BM && tile.bn == BN, "conv2d: backward-weight tile " << BM << "x" << BN);
  const conv_layout::WgradSplit sp = conv_layout::wgrad_split(s);
  WgradArgs a{};
  a.x = x;
  a.dy = dy;
  a.mask = y_relu;
  a.h = s.h;
  a.w = s.w;
  a.c = static_cast<int>(s.c);
  a.k = static_cast<int>(s.k);
  a.r = static_cast<int>(s.r);
  a.pad = static_cast<int>(s.pad());
  a.rrc = static_cast<int>(s.r * s.r * s.c);
  a.wtiles = static_cast<int>(sp.wtiles);
  a.tiles = sp.tiles;
  a.tiles_per_split = sp.tiles_per_split;
  const int64_t splits = sp.splits, wn = s.k * a.rrc;
  SEIS_KERNEL_CHECK(splits == 1 || part != nullptr, "conv2d_backward_weight: no workspace for the partials");
  a.part = splits > 1 ? part : dw;
  a.part_bias = dbias == nullptr ? nullptr : (splits > 1 ? part + splits * wn : dbias);
  const dim3 grid(static_cast<unsigned>(sp.mn_blocks), static_cast<unsigned>(splits));
  wgrad_igemm_kernel<M, BM, BN, WM, WN><<<grid, kBlockThreads, 0, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
  if (splits > 1) {
    sum_partials(a.part, splits, wn, dw, stream);
    if (dbias != nullptr) sum_partials(a.part_bias, splits, s.k, dbias, stream);
  }
}

// The direct backward-weight (conv_layout::wgrad_direct): per-block partials, summed in order.
template <class T>
void wgrad_direct(const Conv2dShape& s, const T* x, const T* dy, const T* y_relu, float* dw, float* dbias,
                  const conv_layout::BackwardWeightScratch& sc, cudaStream_t stream) {
  const int64_t blocks = conv_layout::wgrad_direct_blocks(s);
  const int64_t out_n = s.weight_numel() + s.k;
  wgrad_direct_kernel<T><<<static_cast<unsigned>(blocks), kBlockThreads, 0, stream>>>(
      x, dy, y_relu, s.pixels(), s.h, s.w, static_cast<int>(s.c), static_cast<int>(s.k), static_cast<int>(s.r),
      static_cast<int>(s.pad()), sc.part);
  SEIS_CUDA_LAUNCH_CHECK();
  // part rows are [dw, dbias]: the sums land in dw and dbias (or in scratch when dbias is null).
  sum_partials(sc.part, blocks, out_n, sc.sums, stream);
  CUDA_CHECK(cudaMemcpyAsync(dw, sc.sums, s.weight_numel() * 4, cudaMemcpyDeviceToDevice, stream));
  if (dbias != nullptr) {
    CUDA_CHECK(cudaMemcpyAsync(dbias, sc.sums + s.weight_numel(), s.k * 4, cudaMemcpyDeviceToDevice, stream));
  }
}

template <ConvMath M>
void wgrad_igemm_m(const Conv2dShape& s, const float* x, const float* dy, const float* y_relu, float* dw, float* dbias,
                   float* part, cudaStream_t stream) {
  if (s.k <= 32) {
    wgrad_igemm<M, 32, 128, 2, 4>(s, x, dy, y_relu, dw, dbias, part, stream);
  } else {
    wgrad_igemm<M, 128, 64, 4, 2>(s, x, dy, y_relu, dw, dbias, part, stream);
  }
}

}  // namespace

void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* /*workspace: none*/, CUstream_st* stream) {
  check_shape(s);
  if (s.pixels() == 0) return;
  SEIS_KERNEL_CHECK(x != nullptr && w != nullptr && y != nullptr, "conv2d_forward: null pointer");
  run_conv(math, forward_args(s, x, w, bias, relu, y), stream);
}

void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace, CUstream_st* stream) {
  check_shape(s);
  if (s.pixels() == 0) return;
  SEIS_KERNEL_CHECK(dy != nullptr && w != nullptr && dx != nullptr && workspace != nullptr,
                    "conv2d_backward_data: null pointer");
  conv_layout::Carver ws(workspace);
  run_conv(math, backward_data_args(s, dy, y_relu, w, dx, ws, stream), stream);
}

void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace, CUstream_st* stream) {
  check_shape(s);
  SEIS_KERNEL_CHECK(dw != nullptr, "conv2d_backward_weight: null dw");
  if (s.pixels() == 0) {
    CUDA_CHECK(cudaMemsetAsync(dw, 0, s.weight_numel() * 4, stream));
    if (dbias != nullptr) CUDA_CHECK(cudaMemsetAsync(dbias, 0, s.k * 4, stream));
    return;
  }
  SEIS_KERNEL_CHECK(x != nullptr && dy != nullptr, "conv2d_backward_weight: null pointer");
  SEIS_KERNEL_CHECK(workspace != nullptr || conv2d_workspace_bytes(s, ConvPass::backward_weight, false) == 0,
                    "conv2d_backward_weight: null workspace");
  conv_layout::Carver ws(workspace);
  const conv_layout::BackwardWeightScratch sc = conv_layout::carve_backward_weight(s, ws);
  if (conv_layout::wgrad_direct(s)) {
    wgrad_direct(s, x, dy, y_relu, dw, dbias, sc, stream);
    return;
  }
  switch (math) {
    case ConvMath::f32:
      wgrad_igemm_m<ConvMath::f32>(s, x, dy, y_relu, dw, dbias, sc.part, stream);
      break;
    case ConvMath::tf32:
      wgrad_igemm_m<ConvMath::tf32>(s, x, dy, y_relu, dw, dbias, sc.part, stream);
      break;
    case ConvMath::bf16:
      wgrad_igemm_m<ConvMath::bf16>(s, x, dy, y_relu, dw, dbias, sc.part, stream);
      break;
  }
}

// ---- bf16 activations: widen, run the fp32 launchers, round ------------------------------------------

namespace {

// out[i] = float(v[i]), or 0 where y_relu is not null and y_relu[i] is not > 0: one fused kernel.
void widen_masked(int64_t n, const bf16* v, const bf16* y_relu, float* out, cudaStream_t stream) {
  if (y_relu == nullptr) {
    convert(n, v, out, stream);
  } else {
    launch_map2(n, y_relu, v, out, ReluMaskOp{}, stream);
  }
}

// The workspace past the wide pieces: the fp32 launchers carve theirs from there.
void* rest_of(void* workspace, const conv_layout::Carver& ws) { return static_cast<char*>(workspace) + ws.used(); }

}  // namespace

void conv2d_forward(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias, bool relu,
                    bf16* y, void* workspace, CUstream_st* stream) {
  check_shape(s);
  if (s.pixels() == 0) return;
  // The halo kernel reads and writes bf16 itself (behind SEIS_CONV_IMPL=halo until a GPU run
  // verifies it), with no workspace (conv2d_workspace_bytes with the ConvMath sizes none).
  if (halo_takes(s, ConvPass::forward, math)) {
    conv2d_forward_halo(s, x, w, bias, relu, y, stream);
    return;
  }
  // The deep kernel likewise (behind SEIS_CONV_IMPL=deep); its bf16 filter fits the workspace
  // (conv2d_workspace_bytes counts it).
  if (math == ConvMath::bf16 && deep_conv_enabled() && deep::supports(s.c, s.k, s.r)) {
    conv2d_forward_deep(s, x, w, bias, relu, y, workspace, stream);
    return;
  }
  SEIS_KERNEL_CHECK(x != nullptr && w != nullptr && y != nullptr, "conv2d_forward (bf16): null pointer");
  // Few channels: the direct kernel reads and writes bf16 itself.
  if (conv_layout::runs_direct(s, ConvPass::forward)) {
    launch_direct(forward_args(s, x, w, bias, relu, y), stream);
    return;
  }
  SEIS_KERNEL_CHECK(workspace != nullptr, "conv2d_forward (bf16): null workspace");
  conv_layout::Carver ws(workspace);
  const conv_layout::WideScratch wide = conv_layout::carve_wide(s, ConvPass::forward, true, ws);
  convert(s.pixels() * s.c, x, wide.in, stream);
  conv2d_forward(s, math, wide.in, w, bias, relu, wide.out, rest_of(workspace, ws), stream);
  convert(s.pixels() * s.k, wide.out, y, stream);
}

void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          bf16* dx, void* workspace, CUstream_st* stream) {
  check_shape(s);
  if (s.pixels() == 0) return;
  if (halo_takes(s, ConvPass::backward_data, math)) {
    conv2d_backward_data_halo(s, dy, y_relu, w, dx, stream);
    return;
  }
  // The deep kernel (behind SEIS_CONV_IMPL=deep): its flipped filter and masked dy fit the workspace.
  if (math == ConvMath::bf16 && deep_conv_enabled() && deep::supports(s.k, s.c, s.r)) {
    conv2d_backward_data_deep(s, dy, y_relu, w, dx, workspace, stream);
    return;
  }
  SEIS_KERNEL_CHECK(dy != nullptr && w != nullptr && dx != nullptr && workspace != nullptr,
                    "conv2d_backward_data (bf16): null pointer");
  conv_layout::Carver ws(workspace);
  if (conv_layout::runs_direct(s, ConvPass::backward_data)) {  // the direct kernel masks dy itself
    launch_direct(backward_data_args(s, dy, y_relu, w, dx, ws, stream), stream);
    return;
  }
  const conv_layout::WideScratch wide = conv_layout::carve_wide(s, ConvPass::backward_data, true, ws);
  widen_masked(s.pixels() * s.k, dy, y_relu, wide.in, stream);
  conv2d_backward_data(s, math, wide.in, nullptr, w, wide.out, rest_of(workspace, ws), stream);
  convert(s.pixels() * s.c, wide.out, dx, stream);
}

void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const bf16* x, const bf16* dy, const bf16* y_relu,
                            float* dw, float* dbias, void* workspace, CUstream_st* stream) {
  check_shape(s);
  if (s.pixels() == 0) {  // no pixels: the fp32 form writes the zeros
    conv2d_backward_weight(s, math, static_cast<const float*>(nullptr), nullptr, nullptr, dw, dbias, workspace, stream);
    return;
  }
  // The halo kernel reads bf16 itself (behind SEIS_CONV_IMPL=halo until a GPU run verifies it); its
  // partials fit the workspace (conv2d_workspace_bytes counts them).
  if (halo_takes(s, ConvPass::backward_weight, math)) {
    conv2d_backward_weight_halo(s, x, dy, y_relu, dw, dbias, workspace, stream);
    return;
  }
  // The deep kernel (behind SEIS_CONV_IMPL=deep_wgrad): its partials and masked dy fit the workspace.
  if (math == ConvMath::bf16 && deep_wgrad_enabled() && deep_wgrad::supports(s.c, s.k, s.r)) {
    conv2d_backward_weight_deep(s, x, dy, y_relu, dw, dbias, workspace, stream);
    return;
  }
  SEIS_KERNEL_CHECK(x != nullptr && dy != nullptr && dw != nullptr && workspace != nullptr,
                    "conv2d_backward_weight (bf16): null pointer");
  conv_layout::Carver ws(workspace);
  if (conv_layout::wgrad_direct(s)) {
    wgrad_direct(s, x, dy, y_relu, dw, dbias, conv_layout::carve_backward_weight(s, ws), stream);
    return;
  }
  const conv_layout::WideScratch wide = conv_layout::carve_wide(s, ConvPass::backward_weight, true, ws);
  convert(s.pixels() * s.c, x, wide.in, stream);
  widen_masked(s.pixels() * s.k, dy, y_relu, wide.out, stream);
  conv2d_backward_weight(s, math, wide.in, wide.out, nullptr, dw, dbias, rest_of(workspace, ws), stream);
}

// The joined forms: the halo kernels read the parts in place (conv2d_joins_in_place).
void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const float* w,
                    const float* bias, bool relu, bf16* y, void*, CUstream_st* stream) {
  check_shape(s);
  SEIS_KERNEL_CHECK(conv2d_joins_in_place(s, math, true, x.join, x.cb),
                    "conv2d_forward: a joined input the "
                    "halo kernels do not read in place");
  conv2d_forward_halo(s, x, w, bias, relu, y, stream);
}

void conv2d_forward_pooled(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias,
                           bool relu, bf16* y, bf16* pooled, uint8_t* argmax, CUstream_st* stream) {
  check_shape(s);
  SEIS_KERNEL_CHECK(conv2d_pools_in_epilogue(s, math, true),
                    "conv2d_forward_pooled: a conv the halo forward does not take (C=" << s.c << " K=" << s.k << ")");
  conv2d_forward_halo_pooled(s, x, w, bias, relu, y, pooled, argmax, stream);
}

void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          const ConvJoined<bf16>& dx, void* /*workspace: none*/, CUstream_st* stream) {
  check_shape(s);
  SEIS_KERNEL_CHECK(conv2d_joins_in_place(s, math, true, dx.join, dx.cb),
                    "conv2d_backward_data: a joined input the halo kernels do not read in place");
  // A concat's two gradients from the split store; an upsampled input's gradient from the epilogue
  // that sums each 2x2 quad as upsample2x_backward does.
  conv2d_backward_data_halo(s, dy, y_relu, w, dx, stream);
}

void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const bf16* dy,
                            const bf16* y_relu, float* dw, float* dbias, void* workspace, CUstream_st* stream) {
  check_shape(s);
  SEIS_KERNEL_CHECK(conv2d_joins_in_place(s, math, true, x.join, x.cb),
                    "conv2d_backward_weight: a joined input the halo kernels do not read in place");
  conv2d_backward_weight_halo(s, x, dy, y_relu, dw, dbias, workspace, stream);
}

}  // namespace seis::cuda
