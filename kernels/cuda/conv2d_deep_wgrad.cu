// The deep-level backward-weight (kernels/cuda/conv2d_deep.h; layout and algorithm:
// deep_wgrad_layout.h). Layout: activations NHWC bf16 (x [N, H, W, C], dy [N, H, W, K]), dW KRSC
// fp32, dbias fp32. Writes dW and dbias (=). With y_relu, dy is first masked by (y_relu > 0) into
// the workspace (one map), so that the kernel's cp.async loads stay plain copies.
//
// Per CTA (bm output channels x 64 dW columns of one tap, one split of the pixels): a 4-stage
// cp.async ring of k-steps, each 64 consecutive pixels: their dy rows and their x rows at the tap
// (zero-filled outside the image and past the last pixel: src-size 0), 128 bytes per 64 channels,
// XOR-swizzled. The loader's pixels advance by a cursor (no division in the loop). Per k-step each
// warp runs 4 k16-steps of 2 A ldmatrix.x4.trans, nfrags / 2 B ldmatrix.x4.trans and 2 nfrags
// mma.sync m16n8k16; the CTAs of the first column tile also multiply A by a column of ones (dbias).
// Each CTA writes its split's fp32 partial; with several splits a second kernel adds them in split
// order (split_k_sum.h). No atomics: deterministic.
#include <cuda_bf16.h>

#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_deep.h"
#include "kernels/cuda/conv_impl.h"
#include "kernels/cuda/deep_wgrad_layout.h"
#include "kernels/cuda/mma_ptx.cuh"
#include "kernels/cuda/split_k_sum.h"

namespace seis::cuda {
namespace {

using namespace ptx;
namespace L = deep_wgrad;

struct DeepWgradArgs {
  const bf16* x;   // [N, H, W, C]
  const bf16* dy;  // [N, H, W, K], masked
  float* out_w;    // split z writes dW at out_w + z * stride (KRSC)
  float* out_b;    // and dbias at out_b + z * stride (the kBias launch only)
  int64_t stride;
  int64_t pixels, c, k;
  int h, w_px;
  L::PixelStep step;
  int64_t first_col, cols;  // the launch's column tiles
  L::Split split;
};

// bf16 1.0 in both halves: the B fragment of a column of ones.
constexpr uint32_t kOnes = 0x3f803f80u;

template <int kBM, bool kBias>
__global__ void __launch_bounds__(L::kThreads, 2) deep_wgrad_kernel(const DeepWgradArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int kNF = L::nfrags(kBM), kHalves = kBM / 64, kStageBytes = L::stage_bytes(kBM);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const L::Tile t = L::tile_of(blockIdx.x, a.c, a.first_col, a.cols, kBM);
  const int q = L::load_chunk(tid);
  const int64_t z = blockIdx.y, s_begin = L::split_begin(a.split, z);
  const int steps = static_cast<int>(L::split_end(a.split, z) - s_begin);

  // The loader's pixels (set up once: the only divisions), their dy and tapped x chunks.
  const int dr = t.tap / 3 - 1, ds = t.tap % 3 - 1;
  const int64_t xoff = L::tap_offset(t.tap, a.w_px, a.c) + t.c0 + 8 * q;
  L::PixelCursor cur[L::kPixelSlots];
  const bf16* dsrc[L::kPixelSlots];
  const bf16* xsrc[L::kPixelSlots];
#pragma unroll
  for (int i = 0; i < L::kPixelSlots; ++i) {
    cur[i] = L::PixelCursor::start(s_begin * L::kBK + L::load_pixel(tid, i), a.h, a.w_px);
    dsrc[i] = a.dy + cur[i].p * a.k + t.m0 + 8 * q;
    xsrc[i] = a.x + cur[i].p * a.c + xoff;
  }
  const int64_t dstep = L::kBK * a.k, xstep = L::kBK * a.c;
  const uint32_t dst0 = L::swizzle(L::load_pixel(tid, 0), q);
  int loaded = 0, write = 0;

  // Stage `write` <- k-step `loaded` of the split (zeros past its end); then every cursor moves on.
  auto load_next = [&]() {
    const bool live = loaded < steps;
    const uint32_t sb = base + write * kStageBytes;
#pragma unroll
    for (int i = 0; i < L::kPixelSlots; ++i) {
      const bool pix = live && cur[i].p < a.pixels;
      const bool tap = live && cur[i].inside(a.pixels, dr, ds, a.h, a.w_px);
#pragma unroll
      for (int h = 0; h < kHalves; ++h) cp_async16(sb + L::a_dst(dst0, h, i), pix ? dsrc[i] + 64 * h : a.dy, pix);
      cp_async16(sb + L::b_dst(dst0, kBM, i), tap ? xsrc[i] : a.x, tap);
      cur[i].advance(a.step, a.h, a.w_px);
      dsrc[i] += dstep;
      xsrc[i] += xstep;
    }
    cp_async_commit();
    ++loaded;
    if (++write == L::kStages) write = 0;
  };

#pragma unroll
  for (int st = 0; st < L::kStages - 1; ++st) load_next();

  float acc[L::kMFrags][kNF][4];
  float bacc[L::kMFrags][4];
#pragma unroll
  for (int mf = 0; mf < L::kMFrags; ++mf) {
    bacc[mf][0] = bacc[mf][1] = bacc[mf][2] = bacc[mf][3] = 0.0f;
#pragma unroll
    for (int nf = 0; nf < kNF; ++nf) acc[mf][nf][0] = acc[mf][nf][1] = acc[mf][nf][2] = acc[mf][nf][3] = 0.0f;
  }

  const int a_lane = L::a_ldsm_offset(lane, warp, 0, 0, kBM), b_lane = L::b_ldsm_offset(lane, warp, 0, 0, kBM);
  uint32_t read = base;
  for (int ks = 0; ks < steps; ++ks) {
    cp_async_wait<L::kStages - 2>();  // k-step ks has landed (for this thread)
    __syncthreads();                  // for all threads; and k-step ks - 1's stage is free
    load_next();
#pragma unroll
    for (int kk = 0; kk < L::kBK / 16; ++kk) {
      uint32_t ra[L::kMFrags][4];
#pragma unroll
      for (int mf = 0; mf < L::kMFrags; ++mf) ldsm_x4_trans(read + L::a_ldsm_step(a_lane, mf, kk), ra[mf]);
#pragma unroll
      for (int nf = 0; nf < kNF; nf += 2) {
        uint32_t rb[4];
        ldsm_x4_trans(read + L::b_ldsm_step(b_lane, nf, kk), rb);
#pragma unroll
        for (int mf = 0; mf < L::kMFrags; ++mf) {
          mma_bf16(acc[mf][nf], ra[mf], rb[0], rb[1]);
          mma_bf16(acc[mf][nf + 1], ra[mf], rb[2], rb[3]);
        }
      }
      if constexpr (kBias) {
#pragma unroll
        for (int mf = 0; mf < L::kMFrags; ++mf) mma_bf16(bacc[mf], ra[mf], kOnes, kOnes);
      }
    }
    read = read + kStageBytes == base + L::kStages * kStageBytes ? base : read + kStageBytes;
  }
  cp_async_wait<0>();  // the zero-filled loads past the end, before the CTA exits

  const int64_t ncols = 9 * a.c;
  float* out = a.out_w + z * a.stride;
#pragma unroll
  for (int mf = 0; mf < L::kMFrags; ++mf) {
#pragma unroll
    for (int nf = 0; nf < kNF; ++nf) {
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i and i + 1: columns col and col + 1
        const L::OutIndex o = L::out_index(lane, warp, mf, nf, i, kBM);
        *reinterpret_cast<float2*>(out + (t.m0 + o.row) * ncols + t.n0 + o.col) =
            make_float2(acc[mf][nf][i], acc[mf][nf][i + 1]);
      }
    }
    if constexpr (kBias) {
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // every column holds the sum: the first column's lanes write it
        const L::OutIndex o = L::out_index(lane, warp, mf, 0, i, kBM);
        if (o.col == 0) a.out_b[z * a.stride + t.m0 + o.row] = bacc[mf][i];
      }
    }
  }
}

template <int kBM, bool kBias>
void launch(DeepWgradArgs a, int64_t first_col, int64_t cols, cudaStream_t stream) {
  constexpr int kSmem = L::smem_bytes(kBM);
  static const bool configured = [] {
    CUDA_CHECK(cudaFuncSetAttribute(deep_wgrad_kernel<kBM, kBias>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  a.first_col = first_col;
  a.cols = cols;
  const dim3 grid(static_cast<unsigned>(a.k / kBM * cols), static_cast<unsigned>(a.split.splits));
  deep_wgrad_kernel<kBM, kBias><<<grid, L::kThreads, kSmem, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
}

// With dbias: the first column tile on its own launch (with the ones column), the rest on another.
template <int kBM>
void run(const DeepWgradArgs& a, cudaStream_t stream) {
  const int64_t cols = L::col_tiles(a.c);
  if (a.out_b != nullptr) {
    launch<kBM, true>(a, 0, 1, stream);
    launch<kBM, false>(a, 1, cols - 1, stream);
  } else {
    launch<kBM, false>(a, 0, cols, stream);
  }
}

}  // namespace

bool deep_wgrad_enabled() {
  static const bool on = conv_impl_lists(std::getenv("SEIS_CONV_IMPL"), "deep_wgrad");
  return on;
}

int64_t conv2d_backward_weight_deep_workspace_bytes(const Conv2dShape& s) {
  return L::workspace_bytes(s.pixels(), s.c, s.k);
}

void conv2d_backward_weight_deep(const Conv2dShape& s, const bf16* x, const bf16* dy, const bf16* y_relu, float* dw,
                                 float* dbias, void* workspace, CUstream_st* stream) {
  SEIS_KERNEL_CHECK(L::supports(s.c, s.k, s.r), "deep backward-weight: C=" << s.c << " K=" << s.k << " R=" << s.r);
  SEIS_KERNEL_CHECK(dw != nullptr, "deep backward-weight: null dw");
  const L::Split split = L::split_of(s.pixels(), s.c, s.k);
  if (split.splits == 0) {
    CUDA_CHECK(cudaMemsetAsync(dw, 0, s.weight_numel() * 4, stream));
    if (dbias != nullptr) CUDA_CHECK(cudaMemsetAsync(dbias, 0, s.k * 4, stream));
    return;
  }
  SEIS_KERNEL_CHECK(s.h < (int64_t{1} << 30) && s.w < (int64_t{1} << 30), "conv2d: image " << s.h << "x" << s.w);
  SEIS_KERNEL_CHECK(x != nullptr && dy != nullptr && workspace != nullptr, "deep backward-weight: null pointer");
  SEIS_KERNEL_CHECK(aligned16(x) && aligned16(dy) && aligned16(workspace) && (y_relu == nullptr || aligned16(y_relu)),
                    "deep backward-weight: x, dy, y_relu and workspace must be 16-byte aligned");
  SEIS_KERNEL_CHECK(split.splits < 65536, "deep backward-weight: " << split.splits << " splits");
  SEIS_KERNEL_CHECK(s.k / L::bm_for(s.k) * L::col_tiles(s.c) < (int64_t{1} << 31),
                    "deep backward-weight: C=" << s.c << " K=" << s.k << " need too many CTAs");
  const bf16* in = dy;
  if (y_relu != nullptr) {  // dy where y > 0: one map into the workspace, then the cp.async ring reads it
    bf16* masked = reinterpret_cast<bf16*>(static_cast<char*>(workspace) + L::masked_dy_offset(s.pixels(), s.c, s.k));
    launch_map2(s.pixels() * s.k, y_relu, dy, masked, ReluMaskOp{}, stream);
    in = masked;
  }
  const int64_t wn = s.weight_numel(), n = wn + s.k;
  DeepWgradArgs a{
      x, in, dw,   dbias, 0, s.pixels(), s.c, s.k, static_cast<int>(s.h), static_cast<int>(s.w), L::step_of(s.h, s.w),
      0, 0,  split};
  float* part = static_cast<float*>(workspace);
  if (split.splits > 1) {
    a.out_w = part;
    a.out_b = dbias != nullptr ? part + wn : nullptr;
    a.stride = n;
  }
  if (L::bm_for(s.k) == 128) {
    run<128>(a, stream);
  } else {
    run<64>(a, stream);
  }
  if (split.splits > 1) sum_split_partials(part, split.splits, n, wn, dw, dbias, stream);
}

}  // namespace seis::cuda
