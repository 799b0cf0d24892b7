// The deep-level convs (kernels/cuda/conv2d_deep.h; layout and algorithm: deep_conv_layout.h):
// forward and backward-data on one kernel. Layout: activations NHWC bf16, weights KRSC fp32, rounded
// once per call to bf16 in the workspace: [K][3][3][C] forward, the flipped and channel-transposed
// [C][3][3][K] backward-data. Writes y or dx (=). Backward-data first writes dy masked by
// (y_relu > 0) into the workspace (one map), so that the kernel's cp.async loads stay plain copies.
//
// Per CTA (128 output pixels x bn output channels, 8 warps of 32 x bn/2): a 3-stage cp.async ring of
// k-steps, each 64 channels of one tap: 128 tap-shifted input rows (zero-filled outside the image
// and past the last pixel: src-size 0) and bn filter rows, 128 bytes each, XOR-swizzled. The loader's
// addresses advance by a cursor (no division in the loop); the per-row tap masks are set up once.
// Per k-step each warp runs 4 k16-steps of 2 A ldmatrix.x4, bn/32 B ldmatrix.x4 and bn/8 mma.sync
// m16n8k16. The epilogue adds the bias, applies ReLU and stores bf16 pairs. Every output is one
// fixed-order sum: deterministic.
#include <cuda_bf16.h>

#include <cstdlib>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_deep.h"
#include "kernels/cuda/conv_impl.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/mma_ptx.cuh"
#include "kernels/elementwise.h"

namespace seis::cuda {
namespace {

using namespace ptx;

struct DeepArgs {
  const bf16* x;  // [N, H, W, C]
  const bf16* w;  // [K, 3, 3, C] bf16
  const float* bias;
  bf16* y;  // [N, H, W, K]
  int64_t pixels, h, w_px, c, k;
  bool relu;
};

template <int kBN>
__global__ void __launch_bounds__(deep::kThreads) deep_conv_kernel(const DeepArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  constexpr int kNF = deep::nfrags(kBN), kBRows = deep::brows_per_thread(kBN);
  constexpr int kStageBytes = deep::stage_bytes(kBN);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const deep::Tile t = deep::tile_of(blockIdx.x, a.k, kBN);
  const int q = deep::load_chunk(tid);

  // The loader's slots, set up once: A rows (input offset of the output pixel, tap mask), B rows.
  deep::ARow rows[deep::kARows];
#pragma unroll
  for (int i = 0; i < deep::kARows; ++i) {
    rows[i] = deep::a_row(t.m0 + deep::load_row(tid, i), a.pixels, a.h, a.w_px, a.c, q);
  }
  const int64_t krow = 9 * a.c;  // a filter row
  const bf16* wsrc = a.w + (t.n0 + deep::load_row(tid, 0)) * krow + 8 * q;
  const uint32_t dst0 = deep::swizzle(deep::load_row(tid, 0), q);
  const int steps = deep::ksteps(a.c);
  deep::Cursor cur = deep::Cursor::start(a.w_px, a.c);
  int loaded = 0, write = 0;

  // Stage `write` <- k-step `loaded` (zeros past the last k-step); then every pointer moves on.
  auto load_next = [&]() {
    const bool live = loaded < steps;
    const uint32_t sb = base + write * kStageBytes + dst0;
#pragma unroll
    for (int i = 0; i < deep::kARows; ++i) {
      const bool valid = live && ((rows[i].taps >> cur.tap) & 1u) != 0;
      cp_async16(sb + deep::load_step(0, i), valid ? a.x + rows[i].base + cur.offset : a.x, valid);
    }
#pragma unroll
    for (int i = 0; i < kBRows; ++i) {
      cp_async16(sb + deep::a_bytes() + deep::load_step(0, i), live ? wsrc + i * deep::kLoadRowsPerPass * krow : a.w,
                 live);
    }
    cp_async_commit();
    cur.advance(a.w_px, a.c);
    wsrc += deep::kBK;
    ++loaded;
    if (++write == deep::kStages) write = 0;
  };

#pragma unroll
  for (int st = 0; st < deep::kStages - 1; ++st) load_next();

  float acc[deep::kMFrags][kNF][4];
#pragma unroll
  for (int mf = 0; mf < deep::kMFrags; ++mf)
#pragma unroll
    for (int nf = 0; nf < kNF; ++nf) acc[mf][nf][0] = acc[mf][nf][1] = acc[mf][nf][2] = acc[mf][nf][3] = 0.0f;

  const int a_lane = deep::a_ldsm_offset(lane, warp, 0, 0), b_lane = deep::b_ldsm_offset(lane, warp, 0, 0, kBN);
  uint32_t read = base;
  for (int ks = 0; ks < steps; ++ks) {
    cp_async_wait<deep::kStages - 2>();  // k-step ks has landed (for this thread)
    __syncthreads();                     // for all threads; and k-step ks - 1's stage is free
    load_next();
#pragma unroll
    for (int kk = 0; kk < deep::kBK / 16; ++kk) {
      uint32_t ra[deep::kMFrags][4];
#pragma unroll
      for (int mf = 0; mf < deep::kMFrags; ++mf) ldsm_x4(read + deep::a_ldsm_step(a_lane, mf, kk), ra[mf]);
#pragma unroll
      for (int nf = 0; nf < kNF; nf += 2) {
        uint32_t rb[4];
        ldsm_x4(read + deep::b_ldsm_step(b_lane, nf, kk), rb);
#pragma unroll
        for (int mf = 0; mf < deep::kMFrags; ++mf) {
          mma_bf16(acc[mf][nf], ra[mf], rb[0], rb[1]);
          mma_bf16(acc[mf][nf + 1], ra[mf], rb[2], rb[3]);
        }
      }
    }
    read = read + kStageBytes == base + deep::kStages * kStageBytes ? base : read + kStageBytes;
  }
  cp_async_wait<0>();  // the zero-filled loads past the end, before the CTA exits

#pragma unroll
  for (int nf = 0; nf < kNF; ++nf) {
    const int col = deep::out_index(lane, warp, 0, nf, 0, kBN).col;
    const float b0 = a.bias != nullptr ? a.bias[t.n0 + col] : 0.0f;
    const float b1 = a.bias != nullptr ? a.bias[t.n0 + col + 1] : 0.0f;
#pragma unroll
    for (int mf = 0; mf < deep::kMFrags; ++mf) {
#pragma unroll
      for (int i = 0; i < 4; i += 2) {  // elements i and i + 1: output channels col and col + 1
        const int64_t pixel = t.m0 + deep::out_index(lane, warp, mf, nf, i, kBN).row;
        if (pixel >= a.pixels) continue;
        float v0 = acc[mf][nf][i] + b0, v1 = acc[mf][nf][i + 1] + b1;
        if (a.relu) {
          v0 = v0 > 0.0f ? v0 : 0.0f;
          v1 = v1 > 0.0f ? v1 : 0.0f;
        }
        *reinterpret_cast<uint32_t*>(a.y + pixel * a.k + t.n0 + col) = mma::pack(to_bf16(v0), to_bf16(v1));
      }
    }
  }
}

template <int kBN>
void launch(const DeepArgs& a, cudaStream_t stream) {
  constexpr int kSmem = deep::smem_bytes(kBN);
  static const bool configured = [] {
    CUDA_CHECK(cudaFuncSetAttribute(deep_conv_kernel<kBN>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)configured;
  const int64_t grid = deep::blocks(a.pixels, a.k, kBN);
  deep_conv_kernel<kBN><<<static_cast<unsigned>(grid), deep::kThreads, kSmem, stream>>>(a);
  SEIS_CUDA_LAUNCH_CHECK();
}

// Either tile width by K of the GEMM.
void run(const DeepArgs& a, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(deep::blocks(a.pixels, a.k, deep::bn_for(a.k)) < (int64_t{1} << 31),
                    "deep conv: " << a.pixels << " pixels need too many CTAs");
  if (deep::bn_for(a.k) == 128) {
    launch<128>(a, stream);
  } else {
    launch<64>(a, stream);
  }
}

// W'[n, kk] (n < C, kk = tap K + ch) = W[ch, 8 - tap, n], rounded to bf16: the backward-data filter,
// [C][3][3][K], as halo::weight_index defines it.
__global__ void flip_filter_kernel(int64_t c, int64_t k, const float* __restrict__ w, bf16* __restrict__ out) {
  const int64_t total = 9 * c * k;
  for (int64_t i = thread_index(); i < total; i += grid_stride()) {
    const int64_t n = i / (9 * k), kk = i - n * 9 * k;
    out[i] = to_bf16(w[halo::weight_index(static_cast<int>(n), static_cast<int>(kk), static_cast<int>(k),
                                          static_cast<int>(c), true)]);
  }
}

void check_args(const Conv2dShape& s, int64_t c, int64_t k, const void* in, const void* out, const float* w,
                const void* workspace) {
  SEIS_KERNEL_CHECK(deep::supports(c, k, s.r), "deep conv: C=" << s.c << " K=" << s.k << " R=" << s.r);
  SEIS_KERNEL_CHECK(in != nullptr && w != nullptr && out != nullptr && workspace != nullptr, "deep conv: null pointer");
  SEIS_KERNEL_CHECK(aligned16(in) && aligned16(workspace) && aligned4(out),
                    "deep conv: input and workspace must be 16-byte and output 4-byte aligned");
}

}  // namespace

bool deep_conv_enabled() {
  static const bool on = conv_impl_lists(std::getenv("SEIS_CONV_IMPL"), "deep");
  return on;
}

int64_t conv2d_forward_deep_workspace_bytes(const Conv2dShape& s) { return deep::filter_bytes(s.c, s.k); }

void conv2d_forward_deep(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu, bf16* y,
                         void* workspace, CUstream_st* stream) {
  if (s.pixels() == 0) return;
  check_args(s, s.c, s.k, x, y, w, workspace);
  bf16* wb = static_cast<bf16*>(workspace);
  convert(s.weight_numel(), w, wb, stream);
  run(DeepArgs{x, wb, bias, y, s.pixels(), s.h, s.w, s.c, s.k, relu}, stream);
}

int64_t conv2d_backward_data_deep_workspace_bytes(const Conv2dShape& s) {
  return deep::backward_data_bytes(s.pixels(), s.c, s.k);
}

void conv2d_backward_data_deep(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w, bf16* dx,
                               void* workspace, CUstream_st* stream) {
  if (s.pixels() == 0) return;
  check_args(s, s.k, s.c, dy, dx, w, workspace);
  bf16* wb = static_cast<bf16*>(workspace);
  flip_filter_kernel<<<grid_for(s.weight_numel()), kThreads, 0, stream>>>(s.c, s.k, w, wb);
  SEIS_CUDA_LAUNCH_CHECK();
  const bf16* in = dy;
  if (y_relu != nullptr) {  // dy where y > 0: one map into the workspace, then the cp.async ring reads it
    bf16* masked = reinterpret_cast<bf16*>(static_cast<char*>(workspace) + deep::filter_bytes(s.c, s.k));
    launch_map2(s.pixels() * s.k, y_relu, dy, masked, ReluMaskOp{}, stream);
    in = masked;
  }
  run(DeepArgs{in, wb, nullptr, dx, s.pixels(), s.h, s.w, s.k, s.c, false}, stream);
}

}  // namespace seis::cuda
