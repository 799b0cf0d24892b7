// The deep-level conv's layout (kernels/cuda/deep_conv_layout.h) and its kernel's per-CTA algorithm
// on the CPU emulator (tests/warp_emulator.h), before any GPU runs them: the swizzle is a bijection
// within a stage, the cp.async slots fill every stage chunk once, every ldmatrix of the kernel is
// free of bank conflicts, the incremental ldmatrix offsets and the k-step cursor equal their closed
// forms at every step, and the kernel's algorithm (the 3-stage ring in the kernel's order, with the
// kernel's own index functions) computes the conv: against a double reference on the same bf16
// values and against the CPU bf16 conv, on odd shapes, C and K in {64, 128}; and backward-data on
// the same kernel against the CPU bf16 backward-data. The backward-weight's layout
// (kernels/cuda/deep_wgrad_layout.h) likewise: stage and tile coverage, stepped ldmatrix offsets,
// the pixel cursor, the split-K partition; and its per-CTA algorithm, dbias by the column of ones
// and the fixed-order sum of the splits, against a double reference and the CPU bf16 backward-weight.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/cuda/conv_impl.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/deep_wgrad_layout.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "test_util.h"
#include "warp_emulator.h"

namespace seis {
namespace {

using test::WarpEmulator;
namespace deep = cuda::deep;
namespace dwg = cuda::deep_wgrad;
namespace mma = cuda::mma;

TEST(ConvImpl, ListsWholeFamilyNames) {
  EXPECT_TRUE(cuda::conv_impl_lists("halo", "halo"));
  EXPECT_FALSE(cuda::conv_impl_lists("halo", "deep"));
  EXPECT_TRUE(cuda::conv_impl_lists("halo,deep", "halo"));
  EXPECT_TRUE(cuda::conv_impl_lists("halo,deep", "deep"));
  EXPECT_TRUE(cuda::conv_impl_lists("deep,halo", "deep"));
  EXPECT_FALSE(cuda::conv_impl_lists("halos", "halo"));
  EXPECT_FALSE(cuda::conv_impl_lists("", "halo"));
  EXPECT_FALSE(cuda::conv_impl_lists(nullptr, "deep"));
  // The deep backward-weight has its own name: "deep" does not switch it on, nor it "deep".
  EXPECT_FALSE(cuda::conv_impl_lists("deep", "deep_wgrad"));
  EXPECT_FALSE(cuda::conv_impl_lists("deep_wgrad", "deep"));
  EXPECT_TRUE(cuda::conv_impl_lists("halo,deep,deep_wgrad", "deep_wgrad"));
}

TEST(DeepLayout, SupportsTheDeepLevelsAndSizesTheWorkspace) {
  EXPECT_TRUE(deep::supports(64, 128, 3));
  EXPECT_TRUE(deep::supports(512, 512, 3));
  EXPECT_TRUE(deep::supports(256, 192, 3));
  EXPECT_FALSE(deep::supports(32, 64, 3));
  EXPECT_FALSE(deep::supports(96, 64, 3));
  EXPECT_FALSE(deep::supports(128, 128, 1));
  EXPECT_EQ(deep::bn_for(192), 64);
  EXPECT_EQ(deep::bn_for(256), 128);
  // Two CTAs of the larger tile fit an H100/H200 SM (227 KB of shared memory).
  EXPECT_LE(2 * deep::smem_bytes(128), 227 * 1024);
  for (const Conv2dShape& s : {Conv2dShape{1, 3, 5, 512, 512, 3}, Conv2dShape{2, 32, 32, 128, 64, 3}}) {
    EXPECT_GE(cuda::conv2d_workspace_bytes(s, ConvPass::forward, true), s.weight_numel() * 2);
  }
}

TEST(DeepLayout, SwizzleAndLoadSlotsCoverEachStageOnce) {
  for (int bn : {64, 128}) {
    std::set<int> offsets;
    for (int row = 0; row < deep::kBM + bn; ++row)
      for (int q = 0; q < deep::kChunks; ++q) offsets.insert(deep::swizzle(row, q));
    EXPECT_EQ(offsets.size(), static_cast<size_t>((deep::kBM + bn) * deep::kChunks));
    EXPECT_EQ(*offsets.begin(), 0);
    EXPECT_EQ(*offsets.rbegin() + 16, deep::stage_bytes(bn));
    for (int off : offsets) EXPECT_EQ(off % 16, 0);
    // The cp.async slots: every A and B chunk of a stage from exactly one (thread, slot), and the
    // kernel's stepped destinations equal the swizzle.
    std::set<int> a, b;
    for (int tid = 0; tid < deep::kThreads; ++tid) {
      const int q = deep::load_chunk(tid), dst0 = deep::swizzle(deep::load_row(tid, 0), q);
      for (int i = 0; i < deep::kARows; ++i) {
        EXPECT_EQ(deep::load_step(dst0, i), deep::swizzle(deep::load_row(tid, i), q));
        a.insert(deep::swizzle(deep::load_row(tid, i), q));
      }
      for (int i = 0; i < deep::brows_per_thread(bn); ++i) b.insert(deep::swizzle(deep::load_row(tid, i), q));
    }
    EXPECT_EQ(a.size(), static_cast<size_t>(deep::kBM * deep::kChunks));
    EXPECT_EQ(*a.rbegin() + 16, deep::a_bytes());
    EXPECT_EQ(b.size(), static_cast<size_t>(bn * deep::kChunks));
    EXPECT_EQ(*b.rbegin() + 16, bn * deep::kRowBytes);
    // The accumulators: every (pixel row, output channel) of the CTA tile from exactly one element.
    std::set<std::pair<int, int>> out;
    for (int warp = 0; warp < deep::kThreads / 32; ++warp)
      for (int lane = 0; lane < 32; ++lane)
        for (int mf = 0; mf < deep::kMFrags; ++mf)
          for (int nf = 0; nf < deep::nfrags(bn); ++nf)
            for (int i = 0; i < 4; ++i) {
              const deep::OutIndex o = deep::out_index(lane, warp, mf, nf, i, bn);
              EXPECT_TRUE(o.row >= 0 && o.row < deep::kBM && o.col >= 0 && o.col < bn);
              out.insert({o.row, o.col});
            }
    EXPECT_EQ(out.size(), static_cast<size_t>(deep::kBM * bn));
  }
}

// The kernel computes each lane's ldmatrix offset once and steps it; the steps equal the closed forms.
TEST(DeepLayout, SteppedLdmatrixOffsetsEqualTheClosedForms) {
  for (int bn : {64, 128})
    for (int warp = 0; warp < deep::kThreads / 32; ++warp)
      for (int lane = 0; lane < 32; ++lane)
        for (int kk = 0; kk < deep::kBK / 16; ++kk) {
          const int a0 = deep::a_ldsm_offset(lane, warp, 0, 0), b0 = deep::b_ldsm_offset(lane, warp, 0, 0, bn);
          for (int mf = 0; mf < deep::kMFrags; ++mf)
            ASSERT_EQ(deep::a_ldsm_step(a0, mf, kk), deep::a_ldsm_offset(lane, warp, mf, kk)) << lane << " " << warp;
          for (int nf = 0; nf < deep::nfrags(bn); nf += 2)
            ASSERT_EQ(deep::b_ldsm_step(b0, nf, kk), deep::b_ldsm_offset(lane, warp, nf, kk, bn))
                << lane << " " << warp;
        }
}

// The loader's cursor, advanced once per k-step as in the kernel, equals the closed form at every
// k-step; its tap is ks / (C / 64). Offsets are int64: a row of 2^20 pixels of 4096 channels.
TEST(DeepLayout, CursorEqualsTheClosedFormAtEveryKStep) {
  for (int64_t w : {int64_t{1}, int64_t{3}, int64_t{21}, int64_t{256}, int64_t{1} << 20})
    for (int64_t c : {64, 128, 192, 512, 4096}) {
      deep::Cursor cur = deep::Cursor::start(w, c);
      for (int ks = 0; ks < deep::ksteps(c); ++ks) {
        ASSERT_EQ(cur.offset, deep::tap_offset(ks, w, c)) << "W " << w << " C " << c << " k-step " << ks;
        ASSERT_EQ(cur.tap, ks / (c / deep::kBK));
        ASSERT_EQ(cur.ch, ks % (c / deep::kBK) * deep::kBK);
        cur.advance(w, c);
      }
      EXPECT_EQ(cur.tap, 9);
    }
  // A pixel past 2^31 elements: the row base and the tap mask of the last pixel of a 256x256 image.
  const int64_t pixels = int64_t{64} * 256 * 256;
  const deep::ARow r = deep::a_row(pixels - 1, pixels, 256, 256, 512, 7);
  EXPECT_EQ(r.base, (pixels - 1) * 512 + 56);
  EXPECT_EQ(r.taps, 0x1bu);  // taps (0, 0), (0, 1), (1, 0), (1, 1): up and left only
  EXPECT_EQ(deep::a_row(pixels, pixels, 256, 256, 512, 0).taps, 0u);
}

// One 16-byte cp.async into smem at dst: 8 bf16 of src from element off, or zeros (src-size 0) when
// !valid; a source outside src throws.
void emulate_cp_async16(std::vector<uint8_t>& smem, int dst, const std::vector<bf16>& src, int64_t off, bool valid) {
  if (!valid) {
    std::memset(smem.data() + dst, 0, 16);
    return;
  }
  if (off < 0 || off % 8 != 0 || off + 8 > static_cast<int64_t>(src.size())) {
    throw std::runtime_error("cp.async source " + std::to_string(off) + " outside the tensor");
  }
  std::memcpy(smem.data() + dst, src.data() + off, 16);
}

// One CTA of the deep kernel on the emulator, in the kernel's order: the ring's prologue, then per
// k-step the load of k-step ks + 2 into the stage k-step ks - 1 left, and each warp's ldmatrix and
// mma on stage ks % 3; the epilogue adds the bias and applies ReLU. The cp.async sources are checked
// against the tensors' bounds. Adds the ldmatrix wavefronts to *ldsm.
void emulate_cta(const Conv2dShape& s, const std::vector<bf16>& x, const std::vector<bf16>& wb,
                 const std::vector<float>& bias, bool relu, int64_t block, std::vector<bf16>& y, int64_t* ldsm) {
  const int bn = deep::bn_for(s.k), nf_count = deep::nfrags(bn), warps = deep::kThreads / 32;
  const int64_t pixels = s.pixels(), krow = 9 * s.c;
  const deep::Tile t = deep::tile_of(block, s.k, bn);
  std::vector<uint8_t> smem(static_cast<size_t>(deep::smem_bytes(bn)), 0xcd);
  struct Thread {
    std::array<deep::ARow, deep::kARows> rows;
    int64_t wsrc;  // element offset into the bf16 filter
    int dst0;
  };
  std::vector<Thread> th(deep::kThreads);
  for (int tid = 0; tid < deep::kThreads; ++tid) {
    const int q = deep::load_chunk(tid);
    for (int i = 0; i < deep::kARows; ++i)
      th[tid].rows[i] = deep::a_row(t.m0 + deep::load_row(tid, i), pixels, s.h, s.w, s.c, q);
    th[tid].wsrc = (t.n0 + deep::load_row(tid, 0)) * krow + 8 * q;
    th[tid].dst0 = deep::swizzle(deep::load_row(tid, 0), q);
  }
  const int steps = deep::ksteps(s.c);
  deep::Cursor cur = deep::Cursor::start(s.w, s.c);
  int loaded = 0, write = 0;
  auto cp_async = [&](int dst, const std::vector<bf16>& src, int64_t off, bool valid) {
    emulate_cp_async16(smem, dst, src, off, valid);
  };
  auto load_next = [&]() {
    const bool live = loaded < steps;
    for (int tid = 0; tid < deep::kThreads; ++tid) {
      const int sb = write * deep::stage_bytes(bn) + th[tid].dst0;
      for (int i = 0; i < deep::kARows; ++i) {
        const bool valid = live && ((th[tid].rows[i].taps >> cur.tap) & 1u) != 0;
        cp_async(sb + deep::load_step(0, i), x, th[tid].rows[i].base + cur.offset, valid);
      }
      for (int i = 0; i < deep::brows_per_thread(bn); ++i)
        cp_async(sb + deep::a_bytes() + deep::load_step(0, i), wb, th[tid].wsrc + i * deep::kLoadRowsPerPass * krow,
                 live);
      th[tid].wsrc += deep::kBK;
    }
    cur.advance(s.w, s.c);
    ++loaded;
    if (++write == deep::kStages) write = 0;
  };
  for (int st = 0; st < deep::kStages - 1; ++st) load_next();

  WarpEmulator em;
  std::vector<std::vector<std::array<test::Acc4, 2>>> acc(warps, std::vector<std::array<test::Acc4, 2>>(nf_count));
  int read = 0;
  for (int ks = 0; ks < steps; ++ks) {
    load_next();
    const int sb = read * deep::stage_bytes(bn);
    for (int warp = 0; warp < warps; ++warp) {
      test::LaneAddrs a_lane{}, b_lane{};
      for (int lane = 0; lane < 32; ++lane) {
        a_lane[lane] = deep::a_ldsm_offset(lane, warp, 0, 0);
        b_lane[lane] = deep::b_ldsm_offset(lane, warp, 0, 0, bn);
      }
      for (int kk = 0; kk < deep::kBK / 16; ++kk) {
        std::array<test::Regs4, deep::kMFrags> ra;
        for (int mf = 0; mf < deep::kMFrags; ++mf) {
          test::LaneAddrs aa{};
          for (int lane = 0; lane < 32; ++lane) aa[lane] = sb + deep::a_ldsm_step(int(a_lane[lane]), mf, kk);
          ra[mf] = em.ldmatrix_x4(smem, aa, false);
        }
        for (int nf = 0; nf < nf_count; nf += 2) {
          test::LaneAddrs ba{};
          for (int lane = 0; lane < 32; ++lane) ba[lane] = sb + deep::b_ldsm_step(int(b_lane[lane]), nf, kk);
          const test::Regs4 rb = em.ldmatrix_x4(smem, ba, false);
          for (int g = 0; g < 2; ++g) {
            test::Regs2 b{};
            for (int lane = 0; lane < 32; ++lane) b[lane] = {rb[lane][2 * g], rb[lane][2 * g + 1]};
            for (int mf = 0; mf < deep::kMFrags; ++mf)
              WarpEmulator::mma_m16n8k16(ra[mf], b.data(), acc[warp][nf + g][mf]);
          }
        }
      }
    }
    if (++read == deep::kStages) read = 0;
  }
  for (int warp = 0; warp < warps; ++warp)
    for (int lane = 0; lane < 32; ++lane)
      for (int nf = 0; nf < nf_count; ++nf)
        for (int mf = 0; mf < deep::kMFrags; ++mf)
          for (int i = 0; i < 4; ++i) {
            const deep::OutIndex o = deep::out_index(lane, warp, mf, nf, i, bn);
            const int64_t pixel = t.m0 + o.row;
            if (pixel >= pixels) continue;
            float v = acc[warp][nf][mf][lane][i] + bias[t.n0 + o.col];
            if (relu) v = v > 0.0f ? v : 0.0f;
            y[pixel * s.k + t.n0 + o.col] = to_bf16(v);
          }
  *ldsm += em.wavefronts;
}

TEST(DeepConv, EmulatedKernelComputesTheConv) {
  for (const Conv2dShape& s : {Conv2dShape{1, 13, 21, 64, 128, 3}, Conv2dShape{2, 17, 19, 128, 64, 3},
                               Conv2dShape{1, 7, 9, 128, 128, 3}, Conv2dShape{3, 5, 11, 64, 64, 3}}) {
    ASSERT_TRUE(deep::supports(s.c, s.k, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k;
    const std::vector<float> xf = test::random_vector(nx, 13),
                             w = test::random_vector(s.weight_numel(), 14, -0.3f, 0.3f),
                             bias = test::random_vector(s.k, 15);
    std::vector<bf16> x(nx), wb(s.weight_numel()), y(ny, bf16{0x7fc0}), y_cpu(ny);  // y poisoned with NaN
    for (int64_t i = 0; i < nx; ++i) x[i] = to_bf16(xf[i]);
    for (int64_t i = 0; i < s.weight_numel(); ++i) wb[i] = to_bf16(w[i]);  // the kernel's filter conversion
    int64_t ldsm = 0;
    const int bn = deep::bn_for(s.k);
    const int64_t blocks = deep::blocks(s.pixels(), s.k, bn);
    for (int64_t b = 0; b < blocks; ++b) emulate_cta(s, x, wb, bias, true, b, y, &ldsm);
    // Conflict-free: 4 wavefronts per ldmatrix.x4 (per warp and k16-step: 2 of A, bn / 32 of B).
    const int64_t per_cta = int64_t{deep::kThreads / 32} * deep::ksteps(s.c) * (deep::kBK / 16) * (2 + bn / 32);
    EXPECT_EQ(ldsm, 4 * per_cta * blocks);
    std::vector<uint8_t> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(s, ConvPass::forward, true)) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) / 64 * 64);
    cpu::conv2d_forward(s, ConvMath::bf16, x.data(), w.data(), bias.data(), true, y_cpu.data(), aligned);
    int64_t bad = 0, off_by_ulp = 0;
    for (int64_t p = 0; p < s.pixels(); ++p) {
      const int64_t img = p / (s.h * s.w), oy = p / s.w % s.h, ox = p % s.w;
      for (int64_t n = 0; n < s.k; ++n) {
        double ref = bias[n];
        for (int64_t tap = 0; tap < 9; ++tap) {
          const int64_t iy = oy + tap / 3 - 1, ix = ox + tap % 3 - 1;
          if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
          for (int64_t ch = 0; ch < s.c; ++ch)
            ref +=
                double(to_float(x[((img * s.h + iy) * s.w + ix) * s.c + ch])) * to_float(wb[(n * 9 + tap) * s.c + ch]);
        }
        ref = ref > 0 ? ref : 0;
        const float got = to_float(y[p * s.k + n]);
        // Rounded once to bf16 (half an ulp, 2^-9 relative) after an fp32-accurate sum.
        if (!(std::fabs(got - ref) <= std::fabs(ref) * (1.0 / 256) + 1e-5)) {
          if (bad < 10) ADD_FAILURE() << "pixel " << p << " n " << n << ": " << got << " against " << ref;
          ++bad;
        }
        if (y[p * s.k + n].bits != y_cpu[p * s.k + n].bits) {
          ++off_by_ulp;
          EXPECT_LE(std::abs(int(y[p * s.k + n].bits) - int(y_cpu[p * s.k + n].bits)), 1)
              << "pixel " << p << " n " << n;
        }
      }
    }
    EXPECT_EQ(bad, 0);
    // Different fp32 summation orders may round a few outputs to the neighbouring bf16.
    EXPECT_LE(off_by_ulp, ny / 50 + 1);
  }
}

// Backward-data on the same kernel: dy masked by (y > 0) (the map the host function runs first) as
// the staged tensor, the filter flipped and transposed through halo::weight_index (as the kernel's
// conversion does); against the CPU bf16 backward_data, one ulp at most.
TEST(DeepConv, EmulatedBackwardDataComputesTheCpuBackwardData) {
  for (const Conv2dShape& s : {Conv2dShape{1, 13, 21, 128, 64, 3}, Conv2dShape{2, 9, 7, 64, 128, 3}}) {
    ASSERT_TRUE(deep::supports(s.k, s.c, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k;
    const std::vector<float> dyf = test::random_vector(ny, 16), yf = test::random_vector(ny, 17),
                             w = test::random_vector(s.weight_numel(), 18, -0.3f, 0.3f);
    std::vector<bf16> dy(ny), ymask(ny), staged(ny), wb(s.weight_numel()), dx(nx, bf16{0x7fc0}), dx_cpu(nx);
    for (int64_t i = 0; i < ny; ++i) {
      dy[i] = to_bf16(dyf[i]);
      ymask[i] = to_bf16(yf[i] > 0 ? yf[i] : 0.0f);  // a ReLU output: zeros and positives
      staged[i] = to_float(ymask[i]) > 0.0f ? dy[i] : bf16{0};
    }
    const int c = static_cast<int>(s.c), k = static_cast<int>(s.k);
    for (int n = 0; n < c; ++n)
      for (int kk = 0; kk < 9 * k; ++kk) wb[n * 9 * k + kk] = to_bf16(w[cuda::halo::weight_index(n, kk, k, c, true)]);
    const Conv2dShape g{s.n, s.h, s.w, s.k, s.c, 3};  // the forward-form GEMM: K channels in, C out
    const std::vector<float> zero(static_cast<size_t>(s.c), 0.0f);
    int64_t ldsm = 0;
    for (int64_t b = 0; b < deep::blocks(g.pixels(), g.k, deep::bn_for(g.k)); ++b)
      emulate_cta(g, staged, wb, zero, false, b, dx, &ldsm);
    std::vector<uint8_t> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(s, ConvPass::backward_data, true)) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) / 64 * 64);
    cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), ymask.data(), w.data(), dx_cpu.data(), aligned);
    // The scale of each sum: the same backward-data over |dy| and |w|. Two fp32 summation orders
    // (the CPU's GEMM kernel depends on the machine) differ by a few units of 2^-24 of it, which
    // can move an output that nearly cancels by more than one bf16 ulp.
    std::vector<bf16> dy_abs(ny), scale(nx);
    std::vector<float> w_abs(w.size());
    for (int64_t i = 0; i < ny; ++i) dy_abs[i] = to_bf16(std::fabs(to_float(dy[i])));
    for (size_t i = 0; i < w.size(); ++i) w_abs[i] = std::fabs(w[i]);
    cpu::conv2d_backward_data(s, ConvMath::bf16, dy_abs.data(), ymask.data(), w_abs.data(), scale.data(), aligned);
    int64_t differ = 0;
    for (int64_t i = 0; i < nx; ++i) {
      if (dx[i].bits == dx_cpu[i].bits) continue;
      ++differ;
      const bool ulp = std::abs(int(dx[i].bits) - int(dx_cpu[i].bits)) <= 1;
      const bool cancels = std::fabs(to_float(dx[i]) - to_float(dx_cpu[i])) <= std::ldexp(to_float(scale[i]), -20);
      ASSERT_TRUE(ulp || cancels) << "element " << i << ": " << to_float(dx[i]) << " against " << to_float(dx_cpu[i])
                                  << ", sum of magnitudes " << to_float(scale[i]);
    }
    EXPECT_LE(differ, nx / 50 + 1);
  }
}

// ---- backward-weight ------------------------------------------------------------------------------

TEST(DeepWgradLayout, StageSlotsTilesAndAccumulatorsCoverEachOnce) {
  EXPECT_EQ(dwg::bm_for(128), 128);
  EXPECT_EQ(dwg::bm_for(192), 64);
  EXPECT_EQ(dwg::bm_for(64), 64);
  // Two CTAs of the larger tile fit an H100/H200 SM (227 KB of shared memory).
  EXPECT_LE(2 * dwg::smem_bytes(128), 227 * 1024);
  for (int bm : {64, 128}) {
    SCOPED_TRACE(::testing::Message() << "bm " << bm);
    EXPECT_EQ(dwg::warps_m(bm) * dwg::warps_n(bm), dwg::kWarps);
    EXPECT_EQ(dwg::nfrags(bm) % 2, 0);  // B ldmatrix.x4 serve fragment pairs
    // The cp.async slots: every dy and x chunk of a stage from exactly one (thread, slot), the
    // stepped destinations equal the swizzle of their rows, all inside the stage.
    std::set<int> a, b;
    for (int tid = 0; tid < dwg::kThreads; ++tid) {
      const int q = dwg::load_chunk(tid), dst0 = dwg::swizzle(dwg::load_pixel(tid, 0), q);
      for (int i = 0; i < dwg::kPixelSlots; ++i) {
        const int px = dwg::load_pixel(tid, i);
        ASSERT_LT(px, dwg::kBK);
        for (int h = 0; h < bm / 64; ++h) {
          ASSERT_EQ(dwg::a_dst(dst0, h, i), dwg::swizzle(dwg::a_row(h, px), q));
          a.insert(dwg::a_dst(dst0, h, i));
        }
        ASSERT_EQ(dwg::b_dst(dst0, bm, i), dwg::swizzle(dwg::b_row(bm, px), q));
        b.insert(dwg::b_dst(dst0, bm, i));
      }
    }
    EXPECT_EQ(a.size(), static_cast<size_t>(bm / 64 * dwg::kBK * dwg::kChunks));
    EXPECT_EQ(*a.begin(), 0);
    EXPECT_EQ(*a.rbegin() + 16, dwg::a_bytes(bm));
    EXPECT_EQ(b.size(), static_cast<size_t>(dwg::kBK * dwg::kChunks));
    EXPECT_EQ(*b.begin(), dwg::a_bytes(bm));
    EXPECT_EQ(*b.rbegin() + 16, dwg::stage_bytes(bm));
    // The accumulators: every (output channel, column) of the CTA tile from exactly one element.
    std::set<std::pair<int, int>> out;
    for (int warp = 0; warp < dwg::kWarps; ++warp)
      for (int lane = 0; lane < 32; ++lane)
        for (int mf = 0; mf < dwg::kMFrags; ++mf)
          for (int nf = 0; nf < dwg::nfrags(bm); ++nf)
            for (int i = 0; i < 4; ++i) {
              const dwg::OutIndex o = dwg::out_index(lane, warp, mf, nf, i, bm);
              ASSERT_TRUE(o.row >= 0 && o.row < bm && o.col >= 0 && o.col < dwg::kBN);
              out.insert({o.row, o.col});
            }
    EXPECT_EQ(out.size(), static_cast<size_t>(bm * dwg::kBN));
    // The stepped ldmatrix offsets equal their closed forms and stay inside the stage's A or B rows.
    for (int warp = 0; warp < dwg::kWarps; ++warp)
      for (int lane = 0; lane < 32; ++lane) {
        const int a0 = dwg::a_ldsm_offset(lane, warp, 0, 0, bm), b0 = dwg::b_ldsm_offset(lane, warp, 0, 0, bm);
        for (int kk = 0; kk < dwg::kBK / 16; ++kk) {
          for (int mf = 0; mf < dwg::kMFrags; ++mf) {
            const int off = dwg::a_ldsm_offset(lane, warp, mf, kk, bm);
            ASSERT_EQ(dwg::a_ldsm_step(a0, mf, kk), off) << lane << " " << warp;
            ASSERT_TRUE(off >= 0 && off + 16 <= dwg::a_bytes(bm));
          }
          for (int nf = 0; nf < dwg::nfrags(bm); nf += 2) {
            const int off = dwg::b_ldsm_offset(lane, warp, nf, kk, bm);
            ASSERT_EQ(dwg::b_ldsm_step(b0, nf, kk), off) << lane << " " << warp;
            ASSERT_TRUE(off >= dwg::a_bytes(bm) && off + 16 <= dwg::stage_bytes(bm));
          }
        }
      }
  }
  // The CTA tiles: the dbias launch (first column tile) and the other (the rest) cover every
  // (row tile, column tile) once; the tap and channel block are those of the column.
  for (int64_t c : {64, 128, 320})
    for (int64_t k : {64, 128, 192}) {
      const int bm = dwg::bm_for(k);
      const int64_t cols = dwg::col_tiles(c);
      ASSERT_EQ(cols * dwg::kBN, 9 * c);
      std::set<std::pair<int, int64_t>> seen;
      for (const auto& [first, count] : std::vector<std::array<int64_t, 2>>{{0, 1}, {1, cols - 1}})
        for (int64_t block = 0; block < k / bm * count; ++block) {
          const dwg::Tile t = dwg::tile_of(block, c, first, count, bm);
          ASSERT_TRUE(t.m0 >= 0 && t.m0 + bm <= k && t.n0 >= first * dwg::kBN && t.n0 < (first + count) * dwg::kBN);
          ASSERT_EQ(t.n0, t.tap * c + t.c0);
          ASSERT_TRUE(t.tap >= 0 && t.tap < 9 && t.c0 % 64 == 0 && t.c0 + 64 <= c);
          seen.insert({t.m0, t.n0});
        }
      EXPECT_EQ(seen.size(), static_cast<size_t>(k / bm * cols)) << "C " << c << " K " << k;
    }
}

// The loader's pixel cursor, advanced by kBK per k-step as in the kernel, equals the closed form
// (with division) at every step, from any start; its inside() equals the direct test. Pixels past
// 2^31 (int64) included.
TEST(DeepWgradLayout, PixelCursorEqualsTheClosedFormAtEveryStep) {
  for (const auto& [n, h, w] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {3, 1, 1}, {2, 7, 9}, {2, 33, 17}, {1, 1, 200}, {5, 3, 64}, {2, 65, 63}, {1, 256, 256}}) {
    const int64_t pixels = n * h * w;
    const dwg::PixelStep st = dwg::step_of(h, w);
    for (int64_t p0 : {int64_t{0}, int64_t{5}, int64_t{31}, pixels / 3}) {
      dwg::PixelCursor cur = dwg::PixelCursor::start(p0, h, w);
      for (int64_t p = p0; p < pixels + 2 * dwg::kBK; p += dwg::kBK) {
        ASSERT_EQ(cur.p, p);
        ASSERT_EQ(cur.y, p / w % h) << n << "x" << h << "x" << w << " pixel " << p;
        ASSERT_EQ(cur.x, p % w) << n << "x" << h << "x" << w << " pixel " << p;
        for (int tap = 0; tap < 9; ++tap) {
          const int64_t iy = p / w % h + tap / 3 - 1, ix = p % w + tap % 3 - 1;
          ASSERT_EQ(cur.inside(pixels, tap / 3 - 1, tap % 3 - 1, static_cast<int>(h), static_cast<int>(w)),
                    p < pixels && iy >= 0 && iy < h && ix >= 0 && ix < w);
        }
        cur.advance(st, static_cast<int>(h), static_cast<int>(w));
      }
    }
  }
  const int64_t h = 256, w = 256, pixels = int64_t{64} * h * w * 1024;  // a pixel index past 2^32
  dwg::PixelCursor cur = dwg::PixelCursor::start(pixels - 3 * dwg::kBK - 1, h, w);
  for (int i = 0; i < 3; ++i) cur.advance(dwg::step_of(h, w), 256, 256);
  EXPECT_EQ(cur.p, pixels - 1);
  EXPECT_EQ(cur.y, 255);
  EXPECT_EQ(cur.x, 255);
  EXPECT_EQ(dwg::tap_offset(0, 256, 512), -257 * 512);
  EXPECT_EQ(dwg::tap_offset(8, 256, 512), 257 * 512);
  EXPECT_EQ(dwg::tap_offset(4, 256, 512), 0);
}

// The split-K partition: contiguous, non-empty ranges of k-steps that cover every k-step once; a
// function of the shape alone, in int64 past 2^31 pixels; bounded CTAs and partial bytes.
TEST(DeepWgradLayout, SplitCoversEveryKStepOnce) {
  for (int64_t pixels : {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{4096}, int64_t{2} * 33 * 17,
                         int64_t{16} * 128 * 128, int64_t{256} * 256, int64_t{512} * 512, int64_t{5} << 30}) {
    for (const auto& [c, k] : std::vector<std::array<int64_t, 2>>{{64, 64}, {128, 128}, {256, 512}, {512, 512}}) {
      SCOPED_TRACE(::testing::Message() << pixels << " pixels C=" << c << " K=" << k);
      const dwg::Split s = dwg::split_of(pixels, c, k);
      const int64_t ctas = dwg::ctas_per_split(c, k);
      EXPECT_EQ(s.tiles, (pixels + 63) / 64);
      EXPECT_GE(s.per_split, dwg::min_steps(c, k));
      EXPECT_GE(dwg::min_steps(c, k), dwg::kMinSteps);
      // A split's partials are at most half the bf16 bytes its k-steps read.
      EXPECT_LE((9 * c * k + k) * 4, dwg::min_steps(c, k) * 64 * (c + k) * 2 / 2);
      EXPECT_LE(s.splits * ctas, dwg::kTargetCtas + ctas);
      EXPECT_LT(s.splits, 65536);
      int64_t next = 0;
      for (int64_t z = 0; z < s.splits; ++z) {
        ASSERT_EQ(dwg::split_begin(s, z), next);
        ASSERT_LT(dwg::split_begin(s, z), dwg::split_end(s, z));
        ASSERT_LE(dwg::split_end(s, z) - dwg::split_begin(s, z), s.per_split);
        next = dwg::split_end(s, z);
      }
      EXPECT_EQ(next, s.tiles);
      EXPECT_EQ(dwg::partial_floats(pixels, c, k), s.splits > 1 ? s.splits * (9 * c * k + k) : 0);
      // The workspace the conv dispatch hands over holds the partials and the masked dy.
      const Conv2dShape sh{1, 1, pixels, c, k, 3};
      EXPECT_GE(cuda::conv2d_workspace_bytes(sh, ConvPass::backward_weight, true), dwg::workspace_bytes(pixels, c, k));
      EXPECT_GE(dwg::workspace_bytes(pixels, c, k), dwg::partial_floats(pixels, c, k) * 4 + pixels * k * 2);
    }
  }
  EXPECT_EQ(dwg::split_of(0, 64, 64).splits, 0);
  EXPECT_EQ(dwg::workspace_bytes(0, 64, 64), 0);
}

// One CTA (block of a launch over column tiles [first, first + count), split z) of the deep
// backward-weight kernel on the emulator, in the kernel's order: the ring's prologue, then per
// k-step the load of k-step ks + 3 into the stage that k-step ks - 1 left and each warp's ldmatrix
// and mma on stage ks % 4 (with kBias, one more mma per A fragment against a column of ones); the
// epilogue writes the CTA's fp32 outputs at out_w (+ z * stride) and dbias at out_b. The cp.async
// sources are checked against the tensors' bounds, unstaged shared bytes are NaN. Adds the
// ldmatrix.x4 count and their wavefronts.
void emulate_wgrad_cta(const Conv2dShape& s, const std::vector<bf16>& x, const std::vector<bf16>& dy, bool bias,
                       int64_t first, int64_t count, int64_t block, const dwg::Split& sp, int64_t z, float* out_w,
                       float* out_b, int64_t stride, int64_t* ldsm, int64_t* wavefronts) {
  const int bm = dwg::bm_for(s.k), nf_count = dwg::nfrags(bm);
  const int h = static_cast<int>(s.h), w = static_cast<int>(s.w);
  const dwg::Tile t = dwg::tile_of(block, s.c, first, count, bm);
  const int64_t s_begin = dwg::split_begin(sp, z);
  const int steps = static_cast<int>(dwg::split_end(sp, z) - s_begin);
  const int dr = t.tap / 3 - 1, ds = t.tap % 3 - 1;
  const dwg::PixelStep step = dwg::step_of(s.h, s.w);
  std::vector<uint8_t> smem(static_cast<size_t>(dwg::smem_bytes(bm)), 0xff);
  struct Thread {
    std::array<dwg::PixelCursor, dwg::kPixelSlots> cur;
    std::array<int64_t, dwg::kPixelSlots> dsrc, xsrc;  // element offsets
    int dst0;
  };
  std::vector<Thread> th(dwg::kThreads);
  for (int tid = 0; tid < dwg::kThreads; ++tid) {
    const int q = dwg::load_chunk(tid);
    for (int i = 0; i < dwg::kPixelSlots; ++i) {
      th[tid].cur[i] = dwg::PixelCursor::start(s_begin * dwg::kBK + dwg::load_pixel(tid, i), s.h, s.w);
      th[tid].dsrc[i] = th[tid].cur[i].p * s.k + t.m0 + 8 * q;
      th[tid].xsrc[i] = th[tid].cur[i].p * s.c + dwg::tap_offset(t.tap, s.w, s.c) + t.c0 + 8 * q;
    }
    th[tid].dst0 = dwg::swizzle(dwg::load_pixel(tid, 0), q);
  }
  int loaded = 0, write = 0;
  auto cp_async = [&](int dst, const std::vector<bf16>& src, int64_t off, bool valid) {
    emulate_cp_async16(smem, dst, src, off, valid);
  };
  auto load_next = [&]() {
    const bool live = loaded < steps;
    const int sb = write * dwg::stage_bytes(bm);
    for (int tid = 0; tid < dwg::kThreads; ++tid) {
      Thread& u = th[tid];
      for (int i = 0; i < dwg::kPixelSlots; ++i) {
        const bool pix = live && u.cur[i].p < s.pixels();
        const bool tap = live && u.cur[i].inside(s.pixels(), dr, ds, h, w);
        for (int hh = 0; hh < bm / 64; ++hh) cp_async(sb + dwg::a_dst(u.dst0, hh, i), dy, u.dsrc[i] + 64 * hh, pix);
        cp_async(sb + dwg::b_dst(u.dst0, bm, i), x, u.xsrc[i], tap);
        u.cur[i].advance(step, h, w);
        u.dsrc[i] += dwg::kBK * s.k;
        u.xsrc[i] += dwg::kBK * s.c;
      }
    }
    ++loaded;
    if (++write == dwg::kStages) write = 0;
  };
  for (int st = 0; st < dwg::kStages - 1; ++st) load_next();

  WarpEmulator em;
  test::Regs2 ones{};
  for (auto& r : ones) r = {0x3f803f80u, 0x3f803f80u};
  std::vector<std::vector<std::array<test::Acc4, dwg::kMFrags>>> acc(
      dwg::kWarps, std::vector<std::array<test::Acc4, dwg::kMFrags>>(nf_count));
  std::vector<std::array<test::Acc4, dwg::kMFrags>> bacc(dwg::kWarps);
  int read = 0;
  for (int ks = 0; ks < steps; ++ks) {
    load_next();
    const int sb = read * dwg::stage_bytes(bm);
    for (int warp = 0; warp < dwg::kWarps; ++warp) {
      test::LaneAddrs a_lane{}, b_lane{};
      for (int lane = 0; lane < 32; ++lane) {
        a_lane[lane] = dwg::a_ldsm_offset(lane, warp, 0, 0, bm);
        b_lane[lane] = dwg::b_ldsm_offset(lane, warp, 0, 0, bm);
      }
      for (int kk = 0; kk < dwg::kBK / 16; ++kk) {
        std::array<test::Regs4, dwg::kMFrags> ra;
        for (int mf = 0; mf < dwg::kMFrags; ++mf) {
          test::LaneAddrs aa{};
          for (int lane = 0; lane < 32; ++lane) aa[lane] = sb + dwg::a_ldsm_step(int(a_lane[lane]), mf, kk);
          ra[mf] = em.ldmatrix_x4(smem, aa, true);
          ++*ldsm;
        }
        for (int nf = 0; nf < nf_count; nf += 2) {
          test::LaneAddrs ba{};
          for (int lane = 0; lane < 32; ++lane) ba[lane] = sb + dwg::b_ldsm_step(int(b_lane[lane]), nf, kk);
          const test::Regs4 rb = em.ldmatrix_x4(smem, ba, true);
          ++*ldsm;
          for (int g = 0; g < 2; ++g) {
            test::Regs2 b{};
            for (int lane = 0; lane < 32; ++lane) b[lane] = {rb[lane][2 * g], rb[lane][2 * g + 1]};
            for (int mf = 0; mf < dwg::kMFrags; ++mf)
              WarpEmulator::mma_m16n8k16(ra[mf], b.data(), acc[warp][nf + g][mf]);
          }
        }
        if (bias)
          for (int mf = 0; mf < dwg::kMFrags; ++mf) WarpEmulator::mma_m16n8k16(ra[mf], ones.data(), bacc[warp][mf]);
      }
    }
    if (++read == dwg::kStages) read = 0;
  }
  const int64_t ncols = 9 * s.c;
  for (int warp = 0; warp < dwg::kWarps; ++warp)
    for (int lane = 0; lane < 32; ++lane)
      for (int mf = 0; mf < dwg::kMFrags; ++mf) {
        for (int nf = 0; nf < nf_count; ++nf)
          for (int i = 0; i < 4; ++i) {
            const dwg::OutIndex o = dwg::out_index(lane, warp, mf, nf, i, bm);
            out_w[z * stride + (t.m0 + o.row) * ncols + t.n0 + o.col] = acc[warp][nf][mf][lane][i];
          }
        if (bias)
          for (int i = 0; i < 4; i += 2) {
            const dwg::OutIndex o = dwg::out_index(lane, warp, mf, 0, i, bm);
            if (o.col == 0) out_b[z * stride + t.m0 + o.row] = bacc[warp][mf][lane][i];
          }
      }
  *wavefronts += em.wavefronts;
}

// The host function's order on the emulator: with dbias the launch of the first column tile (with
// the ones column) and the launch of the rest; with several splits the partials, then their sum in
// split order. `per_split` > 0 forces a finer partition than split_of's (to run the sum on small
// shapes); the kernel takes whatever partition the host hands it.
void emulate_wgrad(const Conv2dShape& s, const std::vector<bf16>& x, const std::vector<bf16>& dy, bool with_bias,
                   int64_t per_split, std::vector<float>& dw, std::vector<float>& db, int64_t* ldsm,
                   int64_t* wavefronts) {
  dwg::Split sp = dwg::split_of(s.pixels(), s.c, s.k);
  if (per_split > 0) {
    sp.per_split = per_split;
    sp.splits = (sp.tiles + per_split - 1) / per_split;
  }
  const int64_t wn = s.weight_numel(), n = wn + s.k, cols = dwg::col_tiles(s.c), rows = s.k / dwg::bm_for(s.k);
  std::vector<float> part(static_cast<size_t>(sp.splits > 1 ? sp.splits * n : 0), NAN);
  float* out_w = sp.splits > 1 ? part.data() : dw.data();
  float* out_b = sp.splits > 1 ? part.data() + wn : db.data();
  const int64_t stride = sp.splits > 1 ? n : 0;
  std::vector<std::array<int64_t, 3>> launches;  // first column, count, bias
  if (with_bias) {
    launches = {{0, 1, 1}, {1, cols - 1, 0}};
  } else {
    launches = {{0, cols, 0}};
  }
  for (const auto& [first, count, bias] : launches)
    for (int64_t z = 0; z < sp.splits; ++z)
      for (int64_t block = 0; block < rows * count; ++block)
        emulate_wgrad_cta(s, x, dy, bias != 0, first, count, block, sp, z, out_w, out_b, stride, ldsm, wavefronts);
  if (sp.splits > 1) {
    for (int64_t i = 0; i < n; ++i) {
      if (i >= wn && !with_bias) continue;
      float sum = 0.0f;
      for (int64_t z = 0; z < sp.splits; ++z) sum += part[static_cast<size_t>(z * n + i)];
      (i < wn ? dw[static_cast<size_t>(i)] : db[static_cast<size_t>(i - wn)]) = sum;
    }
  }
}

TEST(DeepWgrad, EmulatedKernelComputesTheBackwardWeight) {
  struct Case {
    Conv2dShape s;
    bool mask, bias;
    int64_t per_split;
  };
  for (const Case& cs : {Case{{1, 7, 9, 64, 64, 3}, true, true, 0}, Case{{2, 7, 9, 128, 128, 3}, false, true, 1},
                         Case{{1, 1, 1, 64, 128, 3}, true, true, 0}, Case{{2, 1, 1, 128, 64, 3}, false, false, 0},
                         Case{{2, 33, 17, 64, 128, 3}, true, true, 5}, Case{{1, 33, 17, 128, 64, 3}, true, false, 0},
                         Case{{1, 8, 16, 64, 192, 3}, false, true, 1}}) {
    const Conv2dShape& s = cs.s;
    ASSERT_TRUE(dwg::supports(s.c, s.k, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k << " mask "
                                      << cs.mask << " dbias " << cs.bias << " per_split " << cs.per_split);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, wn = s.weight_numel();
    const std::vector<float> xf = test::random_vector(nx, 31), dyf = test::random_vector(ny, 32),
                             yf = test::random_vector(ny, 33);
    std::vector<bf16> x(nx), dy(ny), ymask(ny), staged(ny);
    for (int64_t i = 0; i < nx; ++i) x[i] = to_bf16(xf[i]);
    for (int64_t i = 0; i < ny; ++i) {
      dy[i] = to_bf16(dyf[i]);
      ymask[i] = to_bf16(yf[i] > 0 ? yf[i] : 0.0f);  // a ReLU output: zeros and positives
      // The host function's map: dy where y > 0 (or dy itself without a mask).
      staged[i] = !cs.mask || to_float(ymask[i]) > 0.0f ? dy[i] : bf16{0};
    }
    std::vector<float> dw(static_cast<size_t>(wn), NAN), db(static_cast<size_t>(s.k), NAN);
    int64_t ldsm = 0, wavefronts = 0;
    emulate_wgrad(s, x, staged, cs.bias, cs.per_split, dw, db, &ldsm, &wavefronts);
    EXPECT_EQ(wavefronts, 4 * ldsm);  // conflict-free: 4 wavefronts per ldmatrix.x4
    // fp64 reference on the same bf16 values; the error of fp32 sums of at most P products.
    std::vector<double> ref_w(static_cast<size_t>(wn), 0.0), ref_b(static_cast<size_t>(s.k), 0.0);
    for (int64_t p = 0; p < s.pixels(); ++p) {
      const int64_t img = p / (s.h * s.w), oy = p / s.w % s.h, ox = p % s.w;
      for (int64_t m = 0; m < s.k; ++m) {
        const double g = to_float(staged[p * s.k + m]);
        ref_b[m] += g;
        if (g == 0.0) continue;
        for (int64_t tap = 0; tap < 9; ++tap) {
          const int64_t iy = oy + tap / 3 - 1, ix = ox + tap % 3 - 1;
          if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
          const bf16* xp = x.data() + ((img * s.h + iy) * s.w + ix) * s.c;
          double* rp = ref_w.data() + (m * 9 + tap) * s.c;
          for (int64_t ch = 0; ch < s.c; ++ch) rp[ch] += g * to_float(xp[ch]);
        }
      }
    }
    const double atol = 4e-6 * static_cast<double>(s.pixels()) + 1e-6;
    const std::vector<float> rw(ref_w.begin(), ref_w.end()), rb(ref_b.begin(), ref_b.end());
    EXPECT_TRUE(test::all_close(dw.data(), rw.data(), wn, atol, 1e-5));
    if (cs.bias) {
      EXPECT_TRUE(test::all_close(db.data(), rb.data(), s.k, atol, 1e-5));
    } else {
      EXPECT_TRUE(std::all_of(db.begin(), db.end(), [](float v) { return std::isnan(v); })) << "dbias written";
    }
    // And the CPU bf16 backward-weight (the CUDA kernels' oracle), from the unmasked dy and the mask.
    std::vector<float> cpu_w(static_cast<size_t>(wn)), cpu_b(static_cast<size_t>(s.k));
    std::vector<uint8_t> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(s, ConvPass::backward_weight, true)) + 64);
    void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) / 64 * 64);
    cpu::conv2d_backward_weight(s, ConvMath::bf16, x.data(), dy.data(), cs.mask ? ymask.data() : nullptr, cpu_w.data(),
                                cpu_b.data(), aligned);
    EXPECT_TRUE(test::all_close(dw.data(), cpu_w.data(), wn, atol, 1e-4));
    if (cs.bias) {
      EXPECT_TRUE(test::all_close(db.data(), cpu_b.data(), s.k, atol, 1e-4));
    }
  }
}

}  // namespace
}  // namespace seis
