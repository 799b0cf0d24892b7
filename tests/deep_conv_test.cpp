// The deep-level conv's layout (kernels/cuda/deep_conv_layout.h) and its kernel's per-CTA algorithm
// on the CPU emulator (tests/warp_emulator.h), before any GPU runs them: the swizzle is a bijection
// within a stage, the cp.async slots fill every stage chunk once, every ldmatrix of the kernel is
// free of bank conflicts, the incremental ldmatrix offsets and the k-step cursor equal their closed
// forms at every step, and the kernel's algorithm (the 3-stage ring in the kernel's order, with the
// kernel's own index functions) computes the conv: against a double reference on the same bf16
// values and against the CPU bf16 conv, on odd shapes, C and K in {64, 128}; and backward-data on
// the same kernel against the CPU bf16 backward-data.
#include <gtest/gtest.h>

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
#include "kernels/cuda/halo_conv_layout.h"
#include "test_util.h"
#include "warp_emulator.h"

namespace seis {
namespace {

using test::WarpEmulator;
namespace deep = cuda::deep;
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
    if (!valid) {
      std::memset(smem.data() + dst, 0, 16);
      return;
    }
    if (off < 0 || off % 8 != 0 || off + 8 > static_cast<int64_t>(src.size())) {
      throw std::runtime_error("cp.async source " + std::to_string(off) + " outside the tensor");
    }
    std::memcpy(smem.data() + dst, src.data() + off, 16);
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
    int64_t differ = 0;
    for (int64_t i = 0; i < nx; ++i) {
      if (dx[i].bits == dx_cpu[i].bits) continue;
      ++differ;
      ASSERT_LE(std::abs(int(dx[i].bits) - int(dx_cpu[i].bits)), 1)
          << "element " << i << ": " << to_float(dx[i]) << " against " << to_float(dx_cpu[i]);
    }
    EXPECT_LE(differ, nx / 50 + 1);
  }
}

}  // namespace
}  // namespace seis
