// The halo convs (kernels/cuda/conv2d_halo.h; layout and algorithm: halo_conv_layout.h,
// halo_wgrad_layout.h): forward, backward-data and backward-weight. Layout: activations NHWC bf16,
// weights KRSC fp32 (rounded to bf16 once per CTA into shared memory; mirrored and transposed for
// backward-data). Writes y, dx, or dW and dbias (=).
//
// Forward and backward-data, per CTA: the bf16 weights are staged once; then for each of its tiles
// (a grid-stride loop over a fixed tile order, so results do not depend on the grid) the
// (8+2) x (16+2) x c input halo is staged, 16 bytes per chunk, zero outside the image: with cp.async
// in forward, through registers in backward-data, where dy is masked by (y > 0) on the way. Each warp
// runs the k-loop: per k-step one ldmatrix.x4 of A (16 pixels x 16 k) and, per pair of 8-channel
// output fragments, one ldmatrix.x4 of B and two mma.sync m16n8k16. The epilogue adds the bias,
// applies ReLU (forward) and stores bf16 pairs; the pooled forward then pools each 2x2 quad of them
// (pool_epilogue). Every output is one fixed-order sum: deterministic.
//
// Backward-weight, per CTA (group, split): for each pixel tile of its split, in order, the x halo
// (cp.async, zero-filled padding) and the dy tile (16-byte loads, masked by y > 0, summed for dbias)
// are staged; each warp runs its tile rows: per row, ldmatrix.x4.trans of B (dy) for its n-fragments
// and, per m-tile, one ldmatrix.x4.trans of A (x at the tap's shift) and mma.sync per fragment. At the
// end the pixel groups' accumulators are added in group order and the CTA writes its fp32 partial of
// dW (and dbias) for its split; a second kernel (split_k_sum.h) adds the splits in order. No atomics:
// deterministic.
#include <cuda_bf16.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_halo.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/cuda/mma_ptx.cuh"
#include "kernels/cuda/split_k_sum.h"

namespace seis::cuda {
namespace {

using namespace ptx;

struct HaloArgs {
  const bf16* x;     // the staged tensor: x (forward) or dy (backward-data), [N, H, W, c] ...
  const bf16* x2;    // ... or its joined parts x and x2 (halo::joined_chunk; forward only)
  ConvJoin join;     //
  int ca;            // concat: x's channels
  const bf16* mask;  // backward-data: y_relu (dy counts where y > 0), or null
  const float* w;    // KRSC [K, 3, 3, C] of the conv
  const float* bias;
  bf16* y;   // [N, H, W, k], or with ya > 0 its channels [0, ya) (backward-data of a concat: the
  bf16* y2;  // gradient of the first part) and y2 [N, H, W, k - ya] the rest, or with up
  int ya;    // [N, H/2, W/2, k] (backward-data of an upsampled input: each 2x2 quad summed)
  bool up;
  bf16* pooled;     // forward with the pool epilogue: [N, H/2, W/2, k] and its 2-bit argmax
  uint8_t* argmax;  // (kernels/pool.h), or null
  int64_t n, h, w_px, tiles;
  bool relu;
};

// 16 bytes of 8 bf16: each kept where the mask's element is > 0, else 0.
__device__ __forceinline__ uint4 masked(uint4 v, uint4 m) {
  uint32_t* pv = reinterpret_cast<uint32_t*>(&v);
  const uint32_t* pm = reinterpret_cast<const uint32_t*>(&m);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const bool lo = to_float(mma::unpack(pm[i], 0)) > 0.0f, hi = to_float(mma::unpack(pm[i], 1)) > 0.0f;
    pv[i] &= (lo ? 0x0000ffffu : 0u) | (hi ? 0xffff0000u : 0u);
  }
  return v;
}

// The backward-data epilogue of an upsampled input (halo_conv_layout.h, up_index): the tile's 2x2
// quads of the rounded gradient summed into a [N, H/2, W/2, K]. `pairs` is the shared memory of the
// pair sums; every thread of the CTA calls it (it has a barrier).
template <int K>
__device__ __forceinline__ void up_epilogue(const HaloArgs& a, const halo::Tile& t, const float (&acc)[K / 8][4],
                                            const float (&bias)[K / 8][2], uint8_t* pairs) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float* sums = reinterpret_cast<float*>(pairs);
  // Element i of fragment f as the other epilogue stores it (its bias is zero in backward-data), and
  // the same element of pixel tx ^ 1 from the pair lane: the warp takes one branch whole, so every
  // lane of it runs the shuffle.
  auto rounded = [&](int f, int i) { return round_bf16(acc[f][i] + bias[f][i & 1]); };
  if ((warp & 1) == 0) {  // upper row: (0,0) + (0,1)
#pragma unroll
    for (int f = 0; f < K / 8; ++f)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float v = rounded(f, i), pair = __shfl_xor_sync(0xffffffffu, v, halo::kPairLane);
        const halo::OutIndex o = halo::out_index(lane, warp, f, i);
        if ((o.tx & 1) == 0) sums[halo::up_index(o.ty, o.tx, o.n, K)] = v + pair;
      }
  }
  __syncthreads();
  if ((warp & 1) != 0) {  // lower row: + (1,0), + (1,1)
    const int64_t hh = a.h / 2, wh = a.w_px / 2;
#pragma unroll
    for (int f = 0; f < K / 8; ++f)
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i and i + 1: channels n and n + 1
        const float v0 = rounded(f, i), v1 = rounded(f, i + 1);
        const float p0 = __shfl_xor_sync(0xffffffffu, v0, halo::kPairLane);
        const float p1 = __shfl_xor_sync(0xffffffffu, v1, halo::kPairLane);
        const halo::OutIndex o = halo::out_index(lane, warp, f, i);
        const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
        if ((o.tx & 1) != 0 || oy >= a.h || ox >= a.w_px) continue;
        const int q = halo::up_index(o.ty, o.tx, o.n, K);
        const float s0 = (sums[q] + v0) + p0, s1 = (sums[q + 1] + v1) + p1;
        const int64_t px = (t.img * hh + oy / 2) * wh + ox / 2;
        *reinterpret_cast<uint32_t*>(a.y + px * K + o.n) = mma::pack(to_bf16(s0), to_bf16(s1));
      }
  }
}

// The forward's pool epilogue (halo_conv_layout.h, PoolLead): the 2x2 maxpool of the tile's stored
// outputs into a.pooled and a.argmax. `leads` is the shared memory of the upper rows' leaders; every
// thread of the CTA calls it (it has a barrier).
template <int K>
__device__ __forceinline__ void pool_epilogue(const HaloArgs& a, const halo::Tile& t, const float (&acc)[K / 8][4],
                                              const float (&bias)[K / 8][2], uint8_t* leads) {
  const int tid = tid_here(), lane = tid & 31, warp = tid >> 5;
  uint32_t* words = reinterpret_cast<uint32_t*>(leads);
  // Element i of fragment f as the store above rounds it, and the same element of pixel tx ^ 1 from
  // the pair lane: the warp takes one branch whole, so every lane of it runs the shuffles.
  auto stored = [&](int f, int i) {
    float v = acc[f][i] + bias[f][i & 1];
    if (a.relu) v = v > 0.0f ? v : 0.0f;
    return to_bf16(v);
  };
  auto pair_of = [](bf16 v) {
    return bf16{static_cast<uint16_t>(__shfl_xor_sync(0xffffffffu, static_cast<uint32_t>(v.bits), halo::kPairLane))};
  };
  if ((warp & 1) == 0) {  // upper row: (0,0), then (0,1)
#pragma unroll
    for (int f = 0; f < K / 8; ++f)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const bf16 v = stored(f, i), right = pair_of(v);
        const halo::OutIndex o = halo::out_index(lane, warp, f, i);
        if ((o.tx & 1) == 0) {
          words[halo::up_index(o.ty, o.tx, o.n, K)] = halo::pool_word(halo::pool_take({v, 0}, right, 1));
        }
      }
  }
  __syncthreads();
  if ((warp & 1) != 0) {  // lower row: (1,0), then (1,1)
#pragma unroll
    for (int f = 0; f < K / 8; ++f)
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i and i + 1: channels n and n + 1
        const halo::OutIndex o = halo::out_index(lane, warp, f, i);
        // The quad's leader for element i + e (channel n + e): the upper row's, then (1,0), (1,1).
        auto lead = [&](int e) {
          const bf16 v = stored(f, i + e), right = pair_of(v);
          const halo::PoolLead top = halo::pool_lead(words[halo::up_index(o.ty, o.tx, o.n + e, K)]);
          return halo::pool_take(halo::pool_take(top, v, 2), right, 3);
        };
        const halo::PoolLead l0 = lead(0), l1 = lead(1);
        const uint32_t nibble = static_cast<uint32_t>(l0.arg) | static_cast<uint32_t>(l1.arg) << 2;
        const uint32_t upper = __shfl_xor_sync(0xffffffffu, nibble, halo::kNibbleLane);
        const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
        if ((o.tx & 1) != 0 || oy >= a.h || ox + 1 >= a.w_px) continue;
        const int64_t px = (t.img * (a.h / 2) + oy / 2) * (a.w_px / 2) + ox / 2;
        *reinterpret_cast<uint32_t*>(a.pooled + px * K + o.n) = mma::pack(l0.v, l1.v);
        if ((o.n & 3) == 0) {
          a.argmax[halo::pool_argmax_byte(t.img, oy, ox, o.n, a.h, a.w_px, K)] =
              static_cast<uint8_t>(nibble | upper << 4);
        }
      }
  }
}

// C: channels of the staged tensor, K: of the output; kBackwardData: the mirrored, transposed filter
// and the masked staging of dy; kPool (forward only): the pool epilogue after the store. A separate
// instantiation, so that the plain forward keeps its registers (the epilogue's lane constants would
// otherwise stay live across the tile loop).
template <int C, int K, bool kBackwardData, bool kPool>
__global__ void __launch_bounds__(halo::kThreads) halo_conv_kernel(const HaloArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int kCpp = halo::chunks(C), kFrags = K / 8, kSteps = halo::ksteps(C), kPad = halo::kpad(C);
  constexpr int kWstride = halo::wstride(C);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t wbase = base + halo::halo_bytes(C);

  // Weights, rounded to bf16, once per CTA; k-values past 9C are zero.
  bf16* wsm = reinterpret_cast<bf16*>(smem + halo::halo_bytes(C));
  for (int i = tid; i < K * kPad; i += halo::kThreads) {
    const int n = i / kPad, k = i - n * kPad;
    const float v = k < 9 * C ? a.w[halo::weight_index(n, k, C, K, kBackwardData)] : 0.0f;
    wsm[n * kWstride + k] = to_bf16(v);
  }
  float bias[kFrags][2];
#pragma unroll
  for (int f = 0; f < kFrags; ++f) {
    const int n = 8 * f + 2 * mma::quad(lane);
    bias[f][0] = a.bias != nullptr ? a.bias[n] : 0.0f;
    bias[f][1] = a.bias != nullptr ? a.bias[n + 1] : 0.0f;
  }

  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const halo::Tile t = halo::tile_of(tile, a.h, a.w_px);
    __syncthreads();  // the previous tile's ldmatrix are done with the halo (and the weights are in)
    for (int i = tid; i < halo::kHaloPixels * kCpp; i += halo::kThreads) {
      const int p = i / kCpp, q = i % kCpp;
      const int64_t iy = t.y0 - 1 + p / halo::kHaloW, ix = t.x0 - 1 + p % halo::kHaloW;
      const bool valid = iy >= 0 && iy < a.h && ix >= 0 && ix < a.w_px;
      if constexpr (kBackwardData) {
        const int64_t off = valid ? ((t.img * a.h + iy) * a.w_px + ix) * C + 8 * q : 0;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (valid) {
          v = *reinterpret_cast<const uint4*>(a.x + off);
          if (a.mask != nullptr) v = masked(v, *reinterpret_cast<const uint4*>(a.mask + off));
        }
        *reinterpret_cast<uint4*>(smem + halo::halo_offset(p, q, kCpp)) = v;
      } else {
        const halo::JoinedChunk src =
            valid ? halo::joined_chunk(a.join, C, a.ca, t.img, iy, ix, q, a.h, a.w_px) : halo::JoinedChunk{0, 0};
        cp_async16(base + halo::halo_offset(p, q, kCpp), (src.src == 0 ? a.x : a.x2) + src.off, valid);
      }
    }
    if constexpr (!kBackwardData) cp_async_wait_all();
    __syncthreads();

    float acc[kFrags][4];
#pragma unroll
    for (int f = 0; f < kFrags; ++f) acc[f][0] = acc[f][1] = acc[f][2] = acc[f][3] = 0.0f;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      uint32_t ra[4];
      ldsm_x4(base + halo::a_offset(lane, warp, s, C), ra);
#pragma unroll
      for (int f = 0; f < kFrags; f += 2) {
        uint32_t rb[4];
        ldsm_x4(wbase + halo::b_offset(lane, f, s, C, K), rb);
        mma_bf16(acc[f], ra, rb[0], rb[1]);
        if (f + 1 < kFrags) mma_bf16(acc[f + 1], ra, rb[2], rb[3]);
      }
    }

    if constexpr (kBackwardData) {
      if (a.up) {
        up_epilogue<K>(a, t, acc, bias, smem + halo::smem_bytes(C, K));
        continue;
      }
    }
#pragma unroll
    for (int f = 0; f < kFrags; ++f) {
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i and i + 1: output channels n and n + 1
        const halo::OutIndex o = halo::out_index(lane, warp, f, i);
        const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
        if (oy >= a.h || ox >= a.w_px) continue;
        float v0 = acc[f][i] + bias[f][0], v1 = acc[f][i + 1] + bias[f][1];
        if (a.relu) {
          v0 = v0 > 0.0f ? v0 : 0.0f;
          v1 = v1 > 0.0f ? v1 : 0.0f;
        }
        const uint32_t packed = mma::pack(to_bf16(v0), to_bf16(v1));
        const int64_t px = (t.img * a.h + oy) * a.w_px + ox;
        bf16* dst = a.ya == 0 ? a.y + px * K + o.n
                              : (o.n < a.ya ? a.y + px * a.ya + o.n : a.y2 + px * (K - a.ya) + (o.n - a.ya));
        *reinterpret_cast<uint32_t*>(dst) = packed;
      }
    }
    if constexpr (kPool) pool_epilogue<K>(a, t, acc, bias, smem + halo::smem_bytes(C, K));
  }
}

template <int C, int K, bool kBwd, bool kPool>
void launch(const HaloArgs& a, cudaStream_t stream) {
  static_assert(!(kBwd && kPool), "the pool epilogue is the forward's");
  // Backward-data and the pooled forward hold the epilogue's pair words past the weights.
  constexpr int kSmem = kBwd    ? halo::smem_bytes_backward_data(C, K)
                        : kPool ? halo::smem_bytes_pooled(C, K)
                                : halo::smem_bytes(C, K);
  static const bool configured = [] {
    CUDA_CHECK(
        cudaFuncSetAttribute(halo_conv_kernel<C, K, kBwd, kPool>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  // A fixed grid (not the device's SM count): each CTA walks tiles with a stride.
  constexpr int64_t kMaxCtas = 4096;
  const int64_t ctas = std::min<int64_t>(a.tiles, kMaxCtas);
  halo_conv_kernel<C, K, kBwd, kPool><<<static_cast<unsigned>(ctas), halo::kThreads, kSmem, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <int C, bool kBwd>
void launch_k(const HaloArgs& a, int64_t k, cudaStream_t stream) {
  switch (k) {
    case 8:
      return launch<C, 8, kBwd, false>(a, stream);
    case 16:
      return launch<C, 16, kBwd, false>(a, stream);
    case 32:
      return launch<C, 32, kBwd, false>(a, stream);
    case 64:
      return launch<C, 64, kBwd, false>(a, stream);
  }
  SEIS_KERNEL_CHECK(false, "halo conv: " << k << " output channels");
}

// c: channels of the staged tensor, k: of the output.
template <bool kBwd>
void launch_ck(const HaloArgs& a, int64_t c, int64_t k, cudaStream_t stream) {
  switch (c) {
    case 8:
      return launch_k<8, kBwd>(a, k, stream);
    case 16:
      return launch_k<16, kBwd>(a, k, stream);
    case 32:
      return launch_k<32, kBwd>(a, k, stream);
    case 64:
      return launch_k<64, kBwd>(a, k, stream);
  }
  SEIS_KERNEL_CHECK(false, "halo conv: " << c << " input channels");
}

void check_args(const Conv2dShape& s, int64_t c, int64_t k, const bf16* in, const bf16* out, const float* w) {
  SEIS_KERNEL_CHECK(halo::supports(c, k, s.r), "halo conv: C=" << s.c << " K=" << s.k << " R=" << s.r);
  SEIS_KERNEL_CHECK(s.h < (int64_t{1} << 30) && s.w < (int64_t{1} << 30), "conv2d: image " << s.h << "x" << s.w);
  SEIS_KERNEL_CHECK(in != nullptr && w != nullptr && out != nullptr, "halo conv: null pointer");
  SEIS_KERNEL_CHECK(aligned16(in) && aligned4(out), "halo conv: input must be 16-byte and output 4-byte aligned");
}

// ---- backward-weight ----------------------------------------------------------------------------

struct WgradArgs {
  const bf16* x;     // [N, H, W, C], or its joined parts x and x2 (halo::joined_chunk)
  const bf16* x2;    //
  ConvJoin join;     //
  int ca;            // concat: x's channels
  const bf16* dy;    // [N, H, W, K]
  const bf16* mask;  // y_relu [N, H, W, K] (dy counts where y > 0), or null
  float* out_w;      // split z writes dW at out_w + z * stride (KRSC)
  float* out_b;      // and dbias at out_b + z * stride, or null: no dbias
  int64_t stride;
  int64_t h, w_px;
  halo_wgrad::Split split;
};

// Two CTAs per SM at least (at most 128 registers): one CTA's staging overlaps the other's MMAs.
template <int C, int K>
__global__ void __launch_bounds__(halo::kThreads, 2) halo_wgrad_kernel(const WgradArgs a) {
  namespace L = halo_wgrad;
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr L::Plan kPlan = L::plan(C, K);
  constexpr int kMw = kPlan.mw, kNw = kPlan.nw, kNp = (kNw + 1) / 2, kS = kPlan.slices, kPg = kPlan.pgroups;
  constexpr int kCpp = C / 8, kKcpp = K / 8;
  constexpr int kXStep = L::x_row_step(C, kPg), kDyStep = L::dy_row_step(K, kPg);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = warp / kS, slice = warp % kS;
  const int block = static_cast<int>(blockIdx.x) * kS + slice;
  const int mt0 = L::block_mtile(kPlan, block), f0 = L::block_nfrag(kPlan, block);
  const uint32_t xbase = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t dybase = xbase + L::x_bytes(C);

  // The per-lane ldmatrix bases of the first tile row: every address adds a constant to one.
  constexpr int kAb = L::a_bases(C), kTapRow = L::x_row_step(C, 1);
  uint32_t a_base[kAb], b_addr[kNp];
#pragma unroll
  for (int i = 0; i < kAb; ++i) a_base[i] = xbase + L::a_offset(lane, g, mt0 + i, C);
#pragma unroll
  for (int fp = 0; fp < kNp; ++fp) b_addr[fp] = dybase + L::b_offset(lane, g, f0 + 2 * fp, f0 + kNw - 1, K);

  float acc[kMw][kNw][4];
#pragma unroll
  for (int mt = 0; mt < kMw; ++mt)
#pragma unroll
    for (int f = 0; f < kNw; ++f) acc[mt][f][0] = acc[mt][f][1] = acc[mt][f][2] = acc[mt][f][3] = 0.0f;
  // dbias: this thread's dy chunks always hold channels 8 (tid % kKcpp) .. +7; it sums them in its
  // own 8 floats of shared memory (not registers: two CTAs per SM leave no room).
  const bool do_bias = a.out_b != nullptr && blockIdx.x == 0;
  float4* bsum = reinterpret_cast<float4*>(smem + L::bias_offset(C, K)) + 2 * tid;
  if (do_bias) bsum[0] = bsum[1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

  const int64_t z = blockIdx.y;
  const int64_t t_end = L::split_end(a.split, z);
  for (int64_t tile = L::split_begin(a.split, z); tile < t_end; ++tile) {
    const halo::Tile t = halo::tile_of(tile, a.h, a.w_px);
    __syncthreads();  // the previous tile's ldmatrix are done with the staging
    for (int i = tid; i < halo::kHaloPixels * kCpp; i += halo::kThreads) {
      const int p = i / kCpp, q = i % kCpp, hy = p / halo::kHaloW, hx = p % halo::kHaloW;
      const int64_t iy = t.y0 - 1 + hy, ix = t.x0 - 1 + hx;
      const bool valid = iy >= 0 && iy < a.h && ix >= 0 && ix < a.w_px;
      const halo::JoinedChunk src =
          valid ? halo::joined_chunk(a.join, C, a.ca, t.img, iy, ix, q, a.h, a.w_px) : halo::JoinedChunk{0, 0};
      cp_async16(xbase + L::x_offset(hy, hx, q, kCpp), (src.src == 0 ? a.x : a.x2) + src.off, valid);
    }
    for (int i = tid; i < halo::kTileH * halo::kTileW * kKcpp; i += halo::kThreads) {
      const int p = i / kKcpp, q = i % kKcpp, ty = p / halo::kTileW, tx = p % halo::kTileW;
      const int64_t oy = t.y0 + ty, ox = t.x0 + tx;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (oy < a.h && ox < a.w_px) {
        const int64_t off = ((t.img * a.h + oy) * a.w_px + ox) * K + 8 * q;
        v = *reinterpret_cast<const uint4*>(a.dy + off);
        if (a.mask != nullptr) v = masked(v, *reinterpret_cast<const uint4*>(a.mask + off));
      }
      if (do_bias) {
        const uint32_t* pv = reinterpret_cast<const uint32_t*>(&v);
        float4 lo = bsum[0], hi = bsum[1];
        lo.x += to_float(mma::unpack(pv[0], 0));
        lo.y += to_float(mma::unpack(pv[0], 1));
        lo.z += to_float(mma::unpack(pv[1], 0));
        lo.w += to_float(mma::unpack(pv[1], 1));
        hi.x += to_float(mma::unpack(pv[2], 0));
        hi.y += to_float(mma::unpack(pv[2], 1));
        hi.z += to_float(mma::unpack(pv[3], 0));
        hi.w += to_float(mma::unpack(pv[3], 1));
        bsum[0] = lo;
        bsum[1] = hi;
      }
      *reinterpret_cast<uint4*>(smem + L::x_bytes(C) + L::dy_offset(ty, tx, q, kKcpp)) = v;
    }
    cp_async_wait_all();
    __syncthreads();

#pragma unroll
    for (int r = 0; r < kS; ++r) {  // tile rows g + r * kPg
      uint32_t rb[kNp][4];
#pragma unroll
      for (int fp = 0; fp < kNp; ++fp) ldsm_x4_trans(b_addr[fp] + r * kDyStep, rb[fp]);
#pragma unroll
      for (int mt = 0; mt < kMw; ++mt) {
        uint32_t ra[4];
        ldsm_x4_trans(a_base[mt % kAb] + mt / kAb * kTapRow + r * kXStep, ra);
#pragma unroll
        for (int f = 0; f < kNw; ++f) mma_bf16(acc[mt][f], ra, rb[f / 2][2 * (f % 2)], rb[f / 2][2 * (f % 2) + 1]);
      }
    }
  }

  // The pixel groups' sums, added in group order by group 0; then dbias over the threads in order.
  constexpr int kFloats = kMw * kNw * 4;
  float* red = reinterpret_cast<float*>(smem);
  __syncthreads();  // the last tile's ldmatrix are done: the staging becomes the reduction buffer
  if (g > 0) {
    float* mine = red + ((g - 1) * kS + slice) * kFloats * 32;
#pragma unroll
    for (int mt = 0; mt < kMw; ++mt)
#pragma unroll
      for (int f = 0; f < kNw; ++f)
#pragma unroll
        for (int e = 0; e < 4; ++e) mine[((mt * kNw + f) * 4 + e) * 32 + lane] = acc[mt][f][e];
  }
  const float* bred = reinterpret_cast<const float*>(smem + L::bias_offset(C, K));
  __syncthreads();
  if (g == 0) {
    float* out = a.out_w + z * a.stride;
    for (int gg = 1; gg < kPg; ++gg) {
      const float* theirs = red + ((gg - 1) * kS + slice) * kFloats * 32;
#pragma unroll
      for (int mt = 0; mt < kMw; ++mt)
#pragma unroll
        for (int f = 0; f < kNw; ++f)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[mt][f][e] += theirs[((mt * kNw + f) * 4 + e) * 32 + lane];
    }
#pragma unroll
    for (int mt = 0; mt < kMw; ++mt)
#pragma unroll
      for (int f = 0; f < kNw; ++f)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int64_t o = L::out_index(lane, mt0 + mt, f0 + f, e, C);
          if (o >= 0) out[o] = acc[mt][f][e];
        }
  }
  if (do_bias && tid < K) {
    float s = 0.0f;
    for (int th = tid / 8; th < halo::kThreads; th += kKcpp) s += bred[th * 8 + tid % 8];
    a.out_b[z * a.stride + tid] = s;
  }
}

template <int C, int K>
void launch_wgrad(const WgradArgs& a, cudaStream_t stream) {
  constexpr int kSmem = halo_wgrad::smem_bytes(C, K);
  static const bool configured = [] {
    CUDA_CHECK(cudaFuncSetAttribute(halo_wgrad_kernel<C, K>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  const dim3 grid(static_cast<unsigned>(halo_wgrad::plan(C, K).groups), static_cast<unsigned>(a.split.splits));
  halo_wgrad_kernel<C, K><<<grid, halo::kThreads, kSmem, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <int C>
void launch_wgrad_k(const WgradArgs& a, int64_t k, cudaStream_t stream) {
  switch (k) {
    case 8:
      return launch_wgrad<C, 8>(a, stream);
    case 16:
      return launch_wgrad<C, 16>(a, stream);
    case 32:
      return launch_wgrad<C, 32>(a, stream);
    case 64:
      return launch_wgrad<C, 64>(a, stream);
  }
  SEIS_KERNEL_CHECK(false, "halo backward-weight: " << k << " output channels");
}

// The joined input x of a conv of shape s (its first part's channels, for HaloArgs and WgradArgs):
// a layout the staging reads (halo::joined_supported), both parts 16-byte aligned.
int joined_first_channels(const Conv2dShape& s, const ConvJoined<const bf16>& x) {
  SEIS_KERNEL_CHECK(
      halo::joined_supported(x.join, s.c, s.c - x.cb, s.h, s.w),
      "halo conv: a joined input of C=" << s.c << " (second part " << x.cb << ") on " << s.h << "x" << s.w);
  if (x.join == ConvJoin::concat) {
    SEIS_KERNEL_CHECK(x.b != nullptr && aligned16(x.b), "halo conv: the concat's second part must be 16-byte aligned");
  }
  return x.join == ConvJoin::concat ? static_cast<int>(s.c - x.cb) : 0;
}

}  // namespace

namespace {

// The forward's arguments (checked): x joined or not, written to y.
HaloArgs forward_args(const Conv2dShape& s, const ConvJoined<const bf16>& x, const float* w, const float* bias,
                      bool relu, bf16* y) {
  check_args(s, s.c, s.k, x.a, y, w);
  HaloArgs a{};
  a.x = x.a;
  a.x2 = x.b;
  a.join = x.join;
  a.ca = joined_first_channels(s, x);
  a.w = w;
  a.bias = bias;
  a.y = y;
  a.n = s.n;
  a.h = s.h;
  a.w_px = s.w;
  a.tiles = halo::tiles(s.n, s.h, s.w);
  a.relu = relu;
  return a;
}

}  // namespace

void conv2d_forward_halo(const Conv2dShape& s, const ConvJoined<const bf16>& x, const float* w, const float* bias,
                         bool relu, bf16* y, CUstream_st* stream) {
  if (s.pixels() == 0) return;
  launch_ck<false>(forward_args(s, x, w, bias, relu, y), s.c, s.k, stream);
}

void conv2d_forward_halo(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu, bf16* y,
                         CUstream_st* stream) {
  ConvJoined<const bf16> j;
  j.a = x;
  conv2d_forward_halo(s, j, w, bias, relu, y, stream);
}

void conv2d_forward_halo_pooled(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu,
                                bf16* y, bf16* pooled, uint8_t* argmax, CUstream_st* stream) {
  if (s.pixels() == 0) return;
  ConvJoined<const bf16> j;
  j.a = x;
  HaloArgs a = forward_args(s, j, w, bias, relu, y);
  SEIS_KERNEL_CHECK(halo::supports_pooled(s.c, s.k, s.r), "halo pooled conv: C=" << s.c << " K=" << s.k);
  // An image of one row or column pools into nothing: the kernel writes no pooled value then.
  SEIS_KERNEL_CHECK((s.h < 2 || s.w < 2) || (pooled != nullptr && argmax != nullptr && aligned4(pooled)),
                    "halo conv: the pooled output must be 4-byte aligned and the argmax given");
  a.pooled = pooled;
  a.argmax = argmax;
  switch (s.c) {  // halo::supports_pooled: C = K
    case 8:
      return launch<8, 8, false, true>(a, stream);
    case 16:
      return launch<16, 16, false, true>(a, stream);
    case 32:
      return launch<32, 32, false, true>(a, stream);
    case 64:
      return launch<64, 64, false, true>(a, stream);
  }
  SEIS_KERNEL_CHECK(false, "halo pooled conv: " << s.c << " channels");
}

void conv2d_backward_data_halo(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w,
                               const ConvJoined<bf16>& dx, CUstream_st* stream) {
  if (s.pixels() == 0) return;
  check_args(s, s.k, s.c, dy, dx.a, w);
  SEIS_KERNEL_CHECK(y_relu == nullptr || aligned16(y_relu), "halo conv: y_relu must be 16-byte aligned");
  SEIS_KERNEL_CHECK(dx.join != ConvJoin::upsampled || halo::joined_supported(dx.join, s.c, 0, s.h, s.w),
                    "halo conv: the gradient of an upsampled " << s.h << "x" << s.w << " image");
  int ya = 0;
  if (dx.join == ConvJoin::concat) {
    SEIS_KERNEL_CHECK(halo::joined_supported(dx.join, s.c, s.c - dx.cb, s.h, s.w) && dx.b != nullptr && aligned4(dx.b),
                      "halo conv: the gradients of a concat of C=" << s.c << " (second part " << dx.cb << ")");
    ya = static_cast<int>(s.c - dx.cb);
  }
  HaloArgs a{};
  a.x = dy;
  a.join = ConvJoin::none;
  a.mask = y_relu;
  a.w = w;
  a.y = dx.a;
  a.y2 = dx.b;
  a.ya = ya;
  a.up = dx.join == ConvJoin::upsampled;
  a.n = s.n;
  a.h = s.h;
  a.w_px = s.w;
  a.tiles = halo::tiles(s.n, s.h, s.w);
  launch_ck<true>(a, s.k, s.c, stream);
}

void conv2d_backward_data_halo(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w, bf16* dx,
                               CUstream_st* stream) {
  ConvJoined<bf16> j;
  j.a = dx;
  conv2d_backward_data_halo(s, dy, y_relu, w, j, stream);
}

int64_t conv2d_backward_weight_halo_workspace_bytes(const Conv2dShape& s) {
  return halo_wgrad::partial_floats(s.n, s.h, s.w, s.c, s.k) * 4;
}

void conv2d_backward_weight_halo(const Conv2dShape& s, const bf16* x, const bf16* dy, const bf16* y_relu, float* dw,
                                 float* dbias, void* workspace, CUstream_st* stream) {
  ConvJoined<const bf16> j;
  j.a = x;
  conv2d_backward_weight_halo(s, j, dy, y_relu, dw, dbias, workspace, stream);
}

void conv2d_backward_weight_halo(const Conv2dShape& s, const ConvJoined<const bf16>& xj, const bf16* dy,
                                 const bf16* y_relu, float* dw, float* dbias, void* workspace, CUstream_st* stream) {
  const bf16* x = xj.a;
  SEIS_KERNEL_CHECK(halo_wgrad::supports(s.c, s.k, s.r),
                    "halo backward-weight: C=" << s.c << " K=" << s.k << " R=" << s.r);
  SEIS_KERNEL_CHECK(dw != nullptr, "halo backward-weight: null dw");
  const halo_wgrad::Split split = halo_wgrad::split_of(s.n, s.h, s.w, static_cast<int>(s.c), static_cast<int>(s.k));
  if (split.splits == 0) {
    CUDA_CHECK(cudaMemsetAsync(dw, 0, s.weight_numel() * 4, stream));
    if (dbias != nullptr) CUDA_CHECK(cudaMemsetAsync(dbias, 0, s.k * 4, stream));
    return;
  }
  SEIS_KERNEL_CHECK(s.h < (int64_t{1} << 30) && s.w < (int64_t{1} << 30), "conv2d: image " << s.h << "x" << s.w);
  SEIS_KERNEL_CHECK(x != nullptr && dy != nullptr, "halo backward-weight: null pointer");
  SEIS_KERNEL_CHECK(aligned16(x) && aligned16(dy) && (y_relu == nullptr || aligned16(y_relu)),
                    "halo backward-weight: x, dy and y_relu must be 16-byte aligned");
  SEIS_KERNEL_CHECK(split.splits < 65536, "halo backward-weight: " << split.splits << " splits");
  const int ca = joined_first_channels(s, xj);
  const int64_t wn = s.weight_numel(), n = wn + s.k;
  WgradArgs a{};
  a.x = x;
  a.x2 = xj.b;
  a.join = xj.join;
  a.ca = ca;
  a.dy = dy;
  a.mask = y_relu;
  a.out_w = dw;
  a.out_b = dbias;
  a.h = s.h;
  a.w_px = s.w;
  a.split = split;
  float* part = static_cast<float*>(workspace);
  if (split.splits > 1) {
    SEIS_KERNEL_CHECK(part != nullptr, "halo backward-weight: no workspace for " << split.splits << " partials");
    a.out_w = part;
    a.out_b = dbias != nullptr ? part + wn : nullptr;
    a.stride = n;
  }
  switch (s.c) {
    case 8:
      launch_wgrad_k<8>(a, s.k, stream);
      break;
    case 16:
      launch_wgrad_k<16>(a, s.k, stream);
      break;
    case 32:
      launch_wgrad_k<32>(a, s.k, stream);
      break;
    case 64:
      launch_wgrad_k<64>(a, s.k, stream);
      break;
  }
  if (split.splits > 1) {
    sum_split_partials(part, split.splits, n, wn, dw, dbias, stream);
  }
}

}  // namespace seis::cuda
