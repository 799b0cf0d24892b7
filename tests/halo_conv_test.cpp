// The tensor-core layouts and the halo conv kernel's per-tile algorithm on the CPU emulator
// (tests/warp_emulator.h), before any GPU runs them: the PTX fragment maps are bijections and an
// ldmatrix + mma product equals the matrix product; the halo's swizzle makes every ldmatrix of the
// kernel free of bank conflicts; and the kernel's algorithm, written with the kernel's own index
// functions (kernels/cuda/halo_conv_layout.h), computes the conv: against a double reference on
// the same bf16 values and against the CPU bf16 conv, on odd shapes, every supported C and K.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "test_util.h"
#include "warp_emulator.h"

namespace seis {
namespace {

using test::WarpEmulator;
namespace halo = cuda::halo;
namespace mma = cuda::mma;

TEST(MmaLayout, FragmentMapsCoverEachMatrixOnce) {
  std::set<std::pair<int, int>> a, b, c;
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) a.insert({mma::a_element(lane, i).row, mma::a_element(lane, i).col});
    for (int i = 0; i < 4; ++i) b.insert({mma::b_element(lane, i).row, mma::b_element(lane, i).col});
    for (int i = 0; i < 4; ++i) c.insert({mma::c_element(lane, i).row, mma::c_element(lane, i).col});
  }
  EXPECT_EQ(a.size(), 256u);
  EXPECT_EQ(b.size(), 128u);
  EXPECT_EQ(c.size(), 128u);
  for (auto [r, col] : a) EXPECT_TRUE(r < 16 && col < 16);
  for (auto [r, col] : b) EXPECT_TRUE(r < 16 && col < 8);
  for (auto [r, col] : c) EXPECT_TRUE(r < 16 && col < 8);
  // The PTX ISA's first entries: lane 5 is group 1, quad 1.
  EXPECT_EQ(mma::a_element(5, 0).row, 1);
  EXPECT_EQ(mma::a_element(5, 0).col, 2);
  EXPECT_EQ(mma::a_element(5, 7).row, 9);
  EXPECT_EQ(mma::a_element(5, 7).col, 11);
  EXPECT_EQ(mma::b_element(5, 3).row, 11);
  EXPECT_EQ(mma::b_element(5, 3).col, 1);
}

// A row-major [16][16] A and a [8 n][16 k] B (columns of B as rows), loaded by ldmatrix exactly as
// the halo kernel loads them, multiply to the double product. The .trans form of a transposed
// store loads the same registers.
TEST(MmaLayout, LdmatrixThenMmaIsTheMatrixProduct) {
  const std::vector<float> av = test::random_vector(256, 1), bv = test::random_vector(128, 2);
  std::vector<uint8_t> smem(256 * 2 + 128 * 2 + 256 * 2);
  auto put = [&](int64_t off, float v) {
    const bf16 h = to_bf16(v);
    std::memcpy(smem.data() + off, &h, 2);
  };
  for (int m = 0; m < 16; ++m)
    for (int k = 0; k < 16; ++k) put((m * 16 + k) * 2, av[m * 16 + k]);
  for (int n = 0; n < 8; ++n)
    for (int k = 0; k < 16; ++k) put(512 + (n * 16 + k) * 2, bv[n * 16 + k]);
  for (int k = 0; k < 16; ++k)  // A transposed: [k][m]
    for (int m = 0; m < 16; ++m) put(768 + (k * 16 + m) * 2, av[m * 16 + k]);
  test::LaneAddrs aa{}, at{}, ba{};
  for (int lane = 0; lane < 32; ++lane) {
    const int j = mma::ldsm_matrix(lane), r = mma::ldsm_row(lane);
    aa[lane] = ((r + 8 * (j & 1)) * 16 + 8 * (j >> 1)) * 2;
    // .trans: matrix j is the transpose of the stored 8x8 block rows k = 8 (j >> 1) + r, columns m.
    at[lane] = 768 + ((8 * (j >> 1) + r) * 16 + 8 * (j & 1)) * 2;
    ba[lane] = 512 + (r * 16 + 8 * (j & 1)) * 2;  // matrices 2, 3 repeat the one n-fragment
  }
  WarpEmulator w;
  const test::Regs4 a = w.ldmatrix_x4(smem, aa, false), a_t = w.ldmatrix_x4(smem, at, true);
  EXPECT_EQ(a, a_t);
  const test::Regs4 b4 = w.ldmatrix_x4(smem, ba, false);
  std::array<std::array<uint32_t, 2>, 32> b{};
  for (int lane = 0; lane < 32; ++lane) b[lane] = {b4[lane][0], b4[lane][1]};
  test::Acc4 c{};
  WarpEmulator::mma_m16n8k16(a, b.data(), c);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const mma::RowCol rc = mma::c_element(lane, i);
      double ref = 0;
      for (int k = 0; k < 16; ++k) ref += double(round_bf16(av[rc.row * 16 + k])) * round_bf16(bv[rc.col * 16 + k]);
      EXPECT_NEAR(c[lane][i], ref, 1e-5) << "lane " << lane << " element " << i;
    }
  }
  EXPECT_THROW(w.ldmatrix_x4(smem, test::LaneAddrs{8}, false), std::runtime_error);  // unaligned
}

TEST(HaloLayout, SwizzleIsAPermutationAndEveryLdmatrixIsConflictFree) {
  EXPECT_FALSE(halo::supports(24, 8, 3));  // 3 chunks per pixel: no XOR permutation
  EXPECT_FALSE(halo::supports(128, 8, 3));
  EXPECT_FALSE(halo::supports(8, 8, 1));
  for (int c : {8, 16, 32, 64}) {
    const int cpp = halo::chunks(c);
    std::set<int> offsets;
    for (int p = 0; p < halo::kHaloPixels; ++p)
      for (int q = 0; q < cpp; ++q) offsets.insert(halo::halo_offset(p, q, cpp));
    EXPECT_EQ(offsets.size(), static_cast<size_t>(halo::kHaloPixels * cpp)) << c;
    EXPECT_EQ(*offsets.rbegin() + 16, halo::halo_bytes(c)) << c;
  }
}

// One CTA tile of the halo kernel, every warp, on the emulator: stage the halo (x, or dy already
// masked) and the weights as the kernel does, then run its k-loop and epilogue (bias and ReLU in
// forward only). Adds the bank-conflict wavefronts of the A and B loads to *ldsm.
void emulate_tile(const Conv2dShape& s, bool bwd, const std::vector<bf16>& x, const std::vector<float>& w,
                  const std::vector<float>& bias, bool relu, int64_t tile, std::vector<bf16>& y, int64_t* ldsm) {
  const int c = static_cast<int>(bwd ? s.k : s.c), k = static_cast<int>(bwd ? s.c : s.k), cpp = halo::chunks(c);
  const halo::Tile t = halo::tile_of(tile, s.h, s.w);
  std::vector<uint8_t> smem(static_cast<size_t>(halo::smem_bytes(c, k)), 0);
  for (int p = 0; p < halo::kHaloPixels; ++p) {
    const int64_t iy = t.y0 - 1 + p / halo::kHaloW, ix = t.x0 - 1 + p % halo::kHaloW;
    const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
    for (int q = 0; q < cpp; ++q) {
      uint8_t* dst = smem.data() + halo::halo_offset(p, q, cpp);
      if (inside) {
        std::memcpy(dst, x.data() + ((t.img * s.h + iy) * s.w + ix) * c + 8 * q, 16);
      } else {
        std::memset(dst, 0, 16);
      }
    }
  }
  uint8_t* wsm = smem.data() + halo::halo_bytes(c);
  for (int n = 0; n < k; ++n)
    for (int kk = 0; kk < 9 * c; ++kk) {
      const bf16 v = to_bf16(w[halo::weight_index(n, kk, c, k, bwd)]);
      std::memcpy(wsm + (n * halo::wstride(c) + kk) * 2, &v, 2);
    }
  WarpEmulator em;
  const int frags = k / 8;
  for (int warp = 0; warp < halo::kWarps; ++warp) {
    std::vector<test::Acc4> acc(frags, test::Acc4{});
    for (int st = 0; st < halo::ksteps(c); ++st) {
      test::LaneAddrs aa{};
      for (int lane = 0; lane < 32; ++lane) aa[lane] = halo::a_offset(lane, warp, st, c);
      const test::Regs4 a = em.ldmatrix_x4(smem, aa, false);
      for (int f = 0; f < frags; f += 2) {
        test::LaneAddrs ba{};
        for (int lane = 0; lane < 32; ++lane) ba[lane] = halo::halo_bytes(c) + halo::b_offset(lane, f, st, c, k);
        const test::Regs4 b4 = em.ldmatrix_x4(smem, ba, false);
        for (int g = f; g < std::min(f + 2, frags); ++g) {
          std::array<std::array<uint32_t, 2>, 32> b{};
          for (int lane = 0; lane < 32; ++lane) b[lane] = {b4[lane][2 * (g - f)], b4[lane][2 * (g - f) + 1]};
          WarpEmulator::mma_m16n8k16(a, b.data(), acc[g]);
        }
      }
    }
    for (int lane = 0; lane < 32; ++lane)
      for (int f = 0; f < frags; ++f)
        for (int i = 0; i < 4; ++i) {
          const halo::OutIndex o = halo::out_index(lane, warp, f, i);
          const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
          if (oy >= s.h || ox >= s.w) continue;
          float v = acc[f][lane][i] + (bwd ? 0.0f : bias[o.n]);
          if (relu && !bwd) v = v > 0.0f ? v : 0.0f;
          y[((t.img * s.h + oy) * s.w + ox) * k + o.n] = to_bf16(v);
        }
  }
  *ldsm += em.wavefronts;
}

TEST(HaloConv, EmulatedKernelComputesTheConv) {
  for (const Conv2dShape& s :
       {Conv2dShape{2, 11, 21, 8, 8, 3}, Conv2dShape{1, 9, 17, 16, 32, 3}, Conv2dShape{1, 16, 32, 32, 16, 3},
        Conv2dShape{1, 5, 7, 64, 64, 3}, Conv2dShape{1, 8, 16, 32, 8, 3}, Conv2dShape{1, 3, 3, 8, 64, 3},
        Conv2dShape{3, 17, 15, 16, 8, 3}}) {
    ASSERT_TRUE(halo::supports(s.c, s.k, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k;
    const std::vector<float> xf = test::random_vector(nx, 3), w = test::random_vector(s.weight_numel(), 4, -0.3f, 0.3f),
                             bias = test::random_vector(s.k, 5);
    std::vector<bf16> x(nx), y(ny, bf16{0x7fc0}), y_cpu(ny);  // y poisoned with NaN
    for (int64_t i = 0; i < nx; ++i) x[i] = to_bf16(xf[i]);
    int64_t ldsm = 0;
    const int64_t tiles = halo::tiles(s.n, s.h, s.w);
    for (int64_t t = 0; t < tiles; ++t) emulate_tile(s, false, x, w, bias, true, t, y, &ldsm);
    // Conflict-free: 4 wavefronts per ldmatrix.x4.
    const int64_t per_tile = halo::kWarps * halo::ksteps(static_cast<int>(s.c)) * (1 + (s.k / 8 + 1) / 2);
    EXPECT_EQ(ldsm, 4 * per_tile * tiles);
    // The double reference on the same bf16 inputs and bf16-rounded weights, and the CPU bf16 conv.
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
                double(to_float(x[((img * s.h + iy) * s.w + ix) * s.c + ch])) * round_bf16(w[(n * 9 + tap) * s.c + ch]);
        }
        ref = ref > 0 ? ref : 0;
        const float got = to_float(y[p * s.k + n]);
        // Rounded once to bf16 (half an ulp, 2^-9 relative) after an fp32-accurate sum.
        if (!(std::fabs(got - ref) <= std::fabs(ref) * (1.0 / 256) + 1e-5)) ++bad;
        off_by_ulp += y[p * s.k + n].bits != y_cpu[p * s.k + n].bits;
        if (y[p * s.k + n].bits != y_cpu[p * s.k + n].bits) {
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

// Backward-data on the same kernel: dy masked by (y > 0) staged as the halo, the filter mirrored
// and transposed through halo::weight_index; against the CPU bf16 backward_data, one ulp at most.
TEST(HaloConv, EmulatedBackwardDataComputesTheCpuBackwardData) {
  for (const Conv2dShape& s : {Conv2dShape{2, 11, 21, 8, 8, 3}, Conv2dShape{1, 9, 17, 16, 32, 3},
                               Conv2dShape{1, 5, 7, 64, 32, 3}, Conv2dShape{1, 8, 16, 8, 64, 3}}) {
    ASSERT_TRUE(halo::supports(s.k, s.c, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k;
    const std::vector<float> dyf = test::random_vector(ny, 6), yf = test::random_vector(ny, 7),
                             w = test::random_vector(s.weight_numel(), 8, -0.3f, 0.3f);
    std::vector<bf16> dy(ny), ymask(ny), staged(ny), dx(nx, bf16{0x7fc0}), dx_cpu(nx);
    for (int64_t i = 0; i < ny; ++i) {
      dy[i] = to_bf16(dyf[i]);
      ymask[i] = to_bf16(yf[i] > 0 ? yf[i] : 0.0f);  // a ReLU output: zeros and positives
      staged[i] = to_float(ymask[i]) > 0.0f ? dy[i] : bf16{0};
    }
    int64_t ldsm = 0;
    for (int64_t t = 0; t < halo::tiles(s.n, s.h, s.w); ++t) emulate_tile(s, true, staged, w, {}, false, t, dx, &ldsm);
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
