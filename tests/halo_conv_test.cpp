// The tensor-core layouts and the halo conv kernel's per-tile algorithm on the CPU emulator
// (tests/warp_emulator.h), before any GPU runs them: the PTX fragment maps are bijections and an
// ldmatrix + mma product equals the matrix product; the halo's swizzle makes every ldmatrix of the
// kernel free of bank conflicts; and the kernel's algorithm, written with the kernel's own index
// functions (kernels/cuda/halo_conv_layout.h), computes the conv: against a double reference on
// the same bf16 values and against the CPU bf16 conv, on odd shapes, every supported C and K; its
// pool epilogue gives the CPU maxpool of what it stores, bit for bit. The same for the
// backward-weight kernel (kernels/cuda/halo_wgrad_layout.h): its output split, split-K partition and
// staging layouts are bijections within bounds, and its algorithm, CTA by CTA with the final sum
// over the splits, computes dW and dbias.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <set>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#include "test_util.h"
#include "warp_emulator.h"

namespace seis {
namespace {

using test::WarpEmulator;
namespace halo = cuda::halo;
namespace wg = cuda::halo_wgrad;
namespace mma = cuda::mma;

// 64-byte-aligned scratch of at least `bytes` (the CPU kernels' workspace contract).
class Workspace {
 public:
  explicit Workspace(int64_t bytes) : buf_(static_cast<size_t>(bytes) + 64) {}
  void* get() { return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(buf_.data()) + 63) / 64 * 64); }

 private:
  std::vector<uint8_t> buf_;
};

// got against the CPU's bf16 ref: no element more than one bf16 ulp away, and at most 2% (+1) of
// them differ (fp32 sums added in another order round to the neighbouring bf16 now and then).
::testing::AssertionResult within_an_ulp(const std::vector<bf16>& got, const std::vector<bf16>& ref) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << "sizes " << got.size() << ", " << ref.size();
  int64_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].bits == ref[i].bits) continue;
    ++differ;
    if (std::abs(int(got[i].bits) - int(ref[i].bits)) > 1) {
      return ::testing::AssertionFailure()
             << "element " << i << ": " << to_float(got[i]) << " against " << to_float(ref[i]);
    }
  }
  if (differ > static_cast<int64_t>(got.size()) / 50 + 1) {
    return ::testing::AssertionFailure() << differ << " of " << got.size() << " elements differ";
  }
  return ::testing::AssertionSuccess();
}

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
// The 8 channels of chunk q of pixel (img, iy, ix) of the c-channel input x (joined or not), where
// the kernels' staging reads them (halo::joined_chunk).
const bf16* staged_chunk(const Conv2dShape& s, const ConvJoined<const bf16>& x, int c, int64_t img, int64_t iy,
                         int64_t ix, int q) {
  const halo::JoinedChunk src = halo::joined_chunk(
      x.join, c, x.join == ConvJoin::concat ? static_cast<int>(c - x.cb) : 0, img, iy, ix, q, s.h, s.w);
  return (src.src == 0 ? x.a : x.b) + src.off;
}

ConvJoined<const bf16> plain(const std::vector<bf16>& x) {
  ConvJoined<const bf16> j;
  j.a = x.data();
  return j;
}

// Where the epilogue stores output channel n of pixel px: y [.., k], or with ya > 0 (the gradients
// of a concat) channels below ya in y [.., ya] and the others in y2 [.., k - ya].
bf16* stored_at(bf16* y, bf16* y2, int ya, int k, int64_t px, int n) {
  if (ya == 0) return y + px * k + n;
  return n < ya ? y + px * ya + n : y2 + px * (k - ya) + (n - ya);
}

// The accumulators of one tile, [warp][n-fragment], from staging and the k-loop.
using TileAcc = std::vector<std::vector<test::Acc4>>;
TileAcc tile_accumulators(const Conv2dShape& s, bool bwd, const ConvJoined<const bf16>& x, const std::vector<float>& w,
                          int64_t tile, int64_t* ldsm) {
  const int c = static_cast<int>(bwd ? s.k : s.c), k = static_cast<int>(bwd ? s.c : s.k), cpp = halo::chunks(c);
  const halo::Tile t = halo::tile_of(tile, s.h, s.w);
  std::vector<uint8_t> smem(static_cast<size_t>(halo::smem_bytes(c, k)), 0);
  for (int p = 0; p < halo::kHaloPixels; ++p) {
    const int64_t iy = t.y0 - 1 + p / halo::kHaloW, ix = t.x0 - 1 + p % halo::kHaloW;
    const bool inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
    for (int q = 0; q < cpp; ++q) {
      uint8_t* dst = smem.data() + halo::halo_offset(p, q, cpp);
      if (inside) {
        std::memcpy(dst, staged_chunk(s, x, c, t.img, iy, ix, q), 16);
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
  TileAcc accs(halo::kWarps, std::vector<test::Acc4>(frags, test::Acc4{}));
  for (int warp = 0; warp < halo::kWarps; ++warp) {
    std::vector<test::Acc4>& acc = accs[warp];
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
  }
  *ldsm += em.wavefronts;
  return accs;
}

void emulate_tile(const Conv2dShape& s, bool bwd, const ConvJoined<const bf16>& x, const std::vector<float>& w,
                  const std::vector<float>& bias, bool relu, int64_t tile, bf16* y, bf16* y2, int ya, int64_t* ldsm) {
  const int k = static_cast<int>(bwd ? s.c : s.k), frags = k / 8;
  const halo::Tile t = halo::tile_of(tile, s.h, s.w);
  const TileAcc accs = tile_accumulators(s, bwd, x, w, tile, ldsm);
  for (int warp = 0; warp < halo::kWarps; ++warp) {
    const std::vector<test::Acc4>& acc = accs[warp];
    for (int lane = 0; lane < 32; ++lane)
      for (int f = 0; f < frags; ++f)
        for (int i = 0; i < 4; ++i) {
          const halo::OutIndex o = halo::out_index(lane, warp, f, i);
          const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
          if (oy >= s.h || ox >= s.w) continue;
          float v = acc[f][lane][i] + (bwd ? 0.0f : bias[o.n]);
          if (relu && !bwd) v = v > 0.0f ? v : 0.0f;
          *stored_at(y, y2, ya, k, (t.img * s.h + oy) * s.w + ox, o.n) = to_bf16(v);
        }
  }
}

// Backward-data of an upsampled input (the kernel's up_epilogue): the upper warp of each row pair
// writes (0,0) + (0,1) of the rounded values to the pair sums (NaN until written), the lower warp
// adds (1,0) and (1,1) and stores into da [N, H/2, W/2, C].
void emulate_up_tile(const Conv2dShape& s, const std::vector<bf16>& dy_masked, const std::vector<float>& w,
                     int64_t tile, bf16* da, int64_t* ldsm) {
  const int k = static_cast<int>(s.c), frags = k / 8;
  const halo::Tile t = halo::tile_of(tile, s.h, s.w);
  const TileAcc accs = tile_accumulators(s, true, plain(dy_masked), w, tile, ldsm);
  std::vector<float> sums(static_cast<size_t>(halo::up_bytes(k) / 4), std::nanf(""));
  auto rounded = [&](int warp, int f, int lane, int i) { return round_bf16(accs[warp][f][lane][i] + 0.0f); };
  for (int pass = 0; pass < 2; ++pass)  // upper warps, the barrier, lower warps
    for (int warp = pass; warp < halo::kWarps; warp += 2)
      for (int lane = 0; lane < 32; ++lane)
        for (int f = 0; f < frags; ++f)
          for (int i = 0; i < 4; ++i) {
            const float v = rounded(warp, f, lane, i), pair = rounded(warp, f, lane ^ halo::kPairLane, i);
            const halo::OutIndex o = halo::out_index(lane, warp, f, i);
            if ((o.tx & 1) != 0) continue;
            const int q = halo::up_index(o.ty, o.tx, o.n, k);
            if (pass == 0) {
              sums[q] = v + pair;
              continue;
            }
            const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
            if (oy >= s.h || ox >= s.w) continue;
            da[((t.img * (s.h / 2) + oy / 2) * (s.w / 2) + ox / 2) * k + o.n] = to_bf16((sums[q] + v) + pair);
          }
}

void emulate_tile(const Conv2dShape& s, bool bwd, const std::vector<bf16>& x, const std::vector<float>& w,
                  const std::vector<float>& bias, bool relu, int64_t tile, std::vector<bf16>& y, int64_t* ldsm) {
  emulate_tile(s, bwd, plain(x), w, bias, relu, tile, y.data(), nullptr, 0, ldsm);
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
    Workspace ws(cpu::conv2d_workspace_bytes(s, ConvPass::backward_data, true));
    cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), ymask.data(), w.data(), dx_cpu.data(), ws.get());
    EXPECT_TRUE(within_an_ulp(dx, dx_cpu));
  }
}

// ---- backward-weight -------------------------------------------------------------------------------

constexpr int kChannels[] = {8, 16, 32, 64};

// Every (m-tile, n-fragment) in exactly one warp's block, every dW element from exactly one
// accumulator, warps and shared memory within bounds.
TEST(HaloWgradLayout, PlanCoversTheOutputOnce) {
  for (int c : kChannels) {
    for (int k : kChannels) {
      SCOPED_TRACE(::testing::Message() << "C=" << c << " K=" << k);
      const wg::Plan p = wg::plan(c, k);
      EXPECT_EQ(p.slices * p.pgroups, halo::kWarps);
      EXPECT_EQ(p.slices * p.groups, p.blocks);
      EXPECT_EQ(p.mtiles % p.mw, 0);
      EXPECT_EQ(p.nfrags % p.nw, 0);
      EXPECT_LE(p.mw * p.nw, 10);  // accumulator registers per thread: 4 per fragment
      // No half-empty tiles but C = 8's last m-tile (two taps per tile, nine taps).
      EXPECT_EQ(16 * p.mtiles - 9 * c, c == 8 ? 8 : 0);
      EXPECT_EQ(8 * p.nfrags, k);
      EXPECT_LE(wg::smem_bytes(c, k), 227 * 1024);
      // The dbias sums (float4 pairs) after both uses of the shared buffer.
      EXPECT_EQ(wg::bias_offset(c, k) % 16, 0);
      EXPECT_GE(wg::bias_offset(c, k), wg::staging_bytes(c, k));
      EXPECT_GE(wg::bias_offset(c, k), wg::reduce_floats(p) * 4);
      std::set<std::pair<int, int>> tiles;
      std::vector<int> hits(static_cast<size_t>(9 * c * k), 0);
      for (int b = 0; b < p.blocks; ++b) {
        for (int mt = 0; mt < p.mw; ++mt) {
          for (int f = 0; f < p.nw; ++f) {
            const int m = wg::block_mtile(p, b) + mt, n = wg::block_nfrag(p, b) + f;
            EXPECT_TRUE(tiles.insert({m, n}).second);
            for (int lane = 0; lane < 32; ++lane)
              for (int e = 0; e < 4; ++e) {
                const int64_t o = wg::out_index(lane, m, n, e, c);
                if (o < 0) continue;
                ASSERT_LT(o, 9 * c * k);
                ++hits[static_cast<size_t>(o)];
              }
          }
        }
      }
      EXPECT_EQ(tiles.size(), static_cast<size_t>(p.mtiles * p.nfrags));
      // The kernel's A addresses: a_bases(c) per-lane bases and whole halo rows give every m-tile's.
      EXPECT_EQ(p.mw % wg::a_bases(c), 0);
      for (int b = 0; b < p.blocks; ++b)
        for (int g = 0; g < p.pgroups; ++g)
          for (int mt = 0; mt < p.mw; ++mt)
            for (int lane = 0; lane < 32; ++lane) {
              const int mt0 = wg::block_mtile(p, b), ab = wg::a_bases(c);
              ASSERT_EQ(wg::a_offset(lane, g, mt0 + mt, c),
                        wg::a_offset(lane, g, mt0 + mt % ab, c) + mt / ab * wg::x_row_step(c, 1));
            }
      for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << "dW element " << i;
    }
  }
}

TEST(HaloWgradLayout, StagingLayoutsAreBijectionsWithinBounds) {
  for (int c : kChannels) {
    const int cpp = c / 8;
    std::set<int> x, dy;
    for (int hy = 0; hy < halo::kHaloH; ++hy)
      for (int hx = 0; hx < wg::kRowPitch; ++hx)
        for (int q = 0; q < cpp; ++q) x.insert(wg::x_offset(hy, hx, q, cpp));
    EXPECT_EQ(x.size(), static_cast<size_t>(halo::kHaloH * wg::kRowPitch * cpp));
    EXPECT_EQ(*x.rbegin() + 16, wg::x_bytes(c));
    for (int ty = 0; ty < halo::kTileH; ++ty)
      for (int tx = 0; tx < halo::kTileW; ++tx)
        for (int q = 0; q < cpp; ++q) dy.insert(wg::dy_offset(ty, tx, q, cpp));
    EXPECT_EQ(dy.size(), static_cast<size_t>(halo::kTileH * halo::kTileW * cpp));
    EXPECT_EQ(*dy.rbegin() + 16, wg::dy_bytes(c));
    // One row down is a constant: the swizzle repeats every row.
    for (int hx = 0; hx < wg::kRowPitch; ++hx)
      for (int q = 0; q < cpp; ++q)
        EXPECT_EQ(wg::x_offset(3, hx, q, cpp) - wg::x_offset(1, hx, q, cpp), wg::x_row_step(c, 2));
  }
}

// The split-K partition: contiguous, non-empty ranges that cover every tile once, and every pixel
// is in exactly one tile; a function of the shape alone, in int64 past 2^31 pixels.
TEST(HaloWgradLayout, SplitCoversEveryTileOnce) {
  for (const auto& [n, h, w] : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {1, 8, 16}, {2, 19, 37}, {3, 13, 37}, {1, 4096, 4096}, {5, 1, 17}, {1, 1024, 1024}}) {
    for (const auto& [c, k] : std::vector<std::array<int, 2>>{{8, 8}, {32, 32}, {64, 32}, {64, 64}}) {
      SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k);
      const int groups = wg::plan(c, k).groups;
      const wg::Split s = wg::split_of(n, h, w, c, k);
      EXPECT_EQ(s.tiles, halo::tiles(n, h, w));
      EXPECT_GE(s.per_split, wg::min_tiles(c, k));
      EXPECT_GE(wg::min_tiles(c, k), wg::kMinTiles);
      // A split's partials are at most a quarter of the bf16 bytes its tiles read.
      EXPECT_LE((9 * c * k + k) * 4, wg::min_tiles(c, k) * 128 * (c + k) * 2 / 4);
      EXPECT_LE(s.splits * groups, wg::kTargetCtas + groups);
      int64_t next = 0;
      for (int64_t z = 0; z < s.splits; ++z) {
        ASSERT_EQ(wg::split_begin(s, z), next);
        ASSERT_LT(wg::split_begin(s, z), wg::split_end(s, z));
        next = wg::split_end(s, z);
      }
      EXPECT_EQ(next, s.tiles);
      if (n * h * w <= 4096) {
        std::vector<int> hits(static_cast<size_t>(n * h * w), 0);
        for (int64_t t = 0; t < s.tiles; ++t) {
          const halo::Tile tl = halo::tile_of(t, h, w);
          for (int ty = 0; ty < halo::kTileH; ++ty)
            for (int tx = 0; tx < halo::kTileW; ++tx)
              if (tl.y0 + ty < h && tl.x0 + tx < w)
                ++hits[static_cast<size_t>((tl.img * h + tl.y0 + ty) * w + tl.x0 + tx)];
        }
        for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i], 1) << "pixel " << i;
      }
    }
  }
  const wg::Split big = wg::split_of(int64_t{300}, 4096, 4096, 64, 64);  // 5e9 pixels
  EXPECT_EQ(big.tiles, int64_t{300} * 512 * 256);
  EXPECT_EQ(wg::split_end(big, big.splits - 1), big.tiles);
  EXPECT_GT(big.per_split * big.splits, int64_t{1} << 31 >> 7);
  // The workspace the conv dispatch hands over holds the partials.
  for (int c : kChannels)
    for (int k : kChannels) {
      const Conv2dShape sh{5, 1, 17, c, k, 3};
      EXPECT_GE(cuda::conv2d_workspace_bytes(sh, ConvPass::backward_weight, true),
                wg::partial_floats(sh.n, sh.h, sh.w, c, k) * 4);
    }
}

// One CTA (group, split) of the backward-weight kernel on the emulator, every warp and thread as
// the kernel orders them: stage each tile's x halo and masked dy tile (summing dbias), run the
// warps' tile rows, add the pixel groups in order and write the CTA's partial [dW, dbias] to part
// (row `split` of stride 9CK + K). Counts the ldmatrix.x4 and their wavefronts.
void emulate_wgrad_cta(const Conv2dShape& s, const ConvJoined<const bf16>& x, const std::vector<bf16>& dy_masked,
                       const wg::Split& sp, int group, int64_t split, std::vector<float>& part, int64_t* ldsm,
                       int64_t* wavefronts) {
  const int c = static_cast<int>(s.c), k = static_cast<int>(s.k), cpp = c / 8, kcpp = k / 8;
  const wg::Plan p = wg::plan(c, k);
  const int np = (p.nw + 1) / 2;
  const int64_t stride = 9 * s.c * s.k + s.k;
  WarpEmulator em;
  std::vector<std::vector<test::Acc4>> acc(halo::kWarps, std::vector<test::Acc4>(p.mw * p.nw, test::Acc4{}));
  std::vector<std::array<float, 8>> bsum(halo::kThreads, std::array<float, 8>{});
  for (int64_t tile = wg::split_begin(sp, split); tile < wg::split_end(sp, split); ++tile) {
    const halo::Tile t = halo::tile_of(tile, s.h, s.w);
    std::vector<uint8_t> smem(static_cast<size_t>(wg::staging_bytes(c, k)), 0xff);  // unstaged bytes: NaN
    for (int i = 0; i < halo::kHaloPixels * cpp; ++i) {
      const int pp = i / cpp, q = i % cpp, hy = pp / halo::kHaloW, hx = pp % halo::kHaloW;
      const int64_t iy = t.y0 - 1 + hy, ix = t.x0 - 1 + hx;
      uint8_t* dst = smem.data() + wg::x_offset(hy, hx, q, cpp);
      if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) {
        std::memcpy(dst, staged_chunk(s, x, c, t.img, iy, ix, q), 16);
      } else {
        std::memset(dst, 0, 16);
      }
    }
    for (int tid = 0; tid < halo::kThreads; ++tid) {
      for (int i = tid; i < halo::kTileH * halo::kTileW * kcpp; i += halo::kThreads) {
        const int pp = i / kcpp, q = i % kcpp, ty = pp / halo::kTileW, tx = pp % halo::kTileW;
        const int64_t oy = t.y0 + ty, ox = t.x0 + tx;
        bf16 v[8] = {};
        if (oy < s.h && ox < s.w) std::memcpy(v, dy_masked.data() + ((t.img * s.h + oy) * s.w + ox) * k + 8 * q, 16);
        for (int e = 0; e < 8; ++e) bsum[tid][e] += to_float(v[e]);
        std::memcpy(smem.data() + wg::x_bytes(c) + wg::dy_offset(ty, tx, q, kcpp), v, 16);
      }
    }
    for (int warp = 0; warp < halo::kWarps; ++warp) {
      const int g = warp / p.slices, b = group * p.slices + warp % p.slices;
      const int mt0 = wg::block_mtile(p, b), f0 = wg::block_nfrag(p, b);
      for (int r = 0; r < p.slices; ++r) {
        std::vector<test::Regs4> rb(np);
        for (int fp = 0; fp < np; ++fp) {
          test::LaneAddrs ba{};
          for (int lane = 0; lane < 32; ++lane)
            ba[lane] = wg::x_bytes(c) + wg::b_offset(lane, g, f0 + 2 * fp, f0 + p.nw - 1, k) +
                       r * wg::dy_row_step(k, p.pgroups);
          rb[fp] = em.ldmatrix_x4(smem, ba, true);
          ++*ldsm;
        }
        for (int mt = 0; mt < p.mw; ++mt) {
          test::LaneAddrs aa{};
          const int ab = wg::a_bases(c);  // as the kernel: a base plus whole halo rows
          for (int lane = 0; lane < 32; ++lane)
            aa[lane] = wg::a_offset(lane, g, mt0 + mt % ab, c) + mt / ab * wg::x_row_step(c, 1) +
                       r * wg::x_row_step(c, p.pgroups);
          const test::Regs4 a = em.ldmatrix_x4(smem, aa, true);
          ++*ldsm;
          for (int f = 0; f < p.nw; ++f) {
            std::array<std::array<uint32_t, 2>, 32> bb{};
            for (int lane = 0; lane < 32; ++lane)
              bb[lane] = {rb[f / 2][lane][2 * (f % 2)], rb[f / 2][lane][2 * (f % 2) + 1]};
            WarpEmulator::mma_m16n8k16(a, bb.data(), acc[warp][mt * p.nw + f]);
          }
        }
      }
    }
  }
  *wavefronts += em.wavefronts;
  for (int slice = 0; slice < p.slices; ++slice) {  // warp (0, slice) adds groups 1, 2, ... in order
    const int b = group * p.slices + slice;
    for (int gg = 1; gg < p.pgroups; ++gg)
      for (int i = 0; i < p.mw * p.nw; ++i)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 4; ++e) acc[slice][i][lane][e] += acc[gg * p.slices + slice][i][lane][e];
    for (int mt = 0; mt < p.mw; ++mt)
      for (int f = 0; f < p.nw; ++f)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 4; ++e) {
            const int64_t o = wg::out_index(lane, wg::block_mtile(p, b) + mt, wg::block_nfrag(p, b) + f, e, c);
            if (o >= 0) part[split * stride + o] = acc[slice][mt * p.nw + f][lane][e];
          }
  }
  if (group == 0) {
    for (int n = 0; n < k; ++n) {
      float sum = 0.0f;
      for (int th = n / 8; th < halo::kThreads; th += kcpp) sum += bsum[th][n % 8];
      part[split * stride + 9 * c * k + n] = sum;
    }
  }
}

TEST(HaloWgrad, EmulatedKernelComputesTheWeightGradient) {
  for (int c : kChannels) {
    for (int k : kChannels) {
      // Partial tiles in H and W, N > 1, and (the second) several splits.
      for (const auto& [n, h, w] : std::vector<std::array<int64_t, 3>>{{2, 11, 21}, {3, 19, 37}}) {
        const Conv2dShape s{n, h, w, c, k, 3};
        const bool with_mask = (c + k + h) % 2 == 0;
        SCOPED_TRACE(::testing::Message()
                     << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " mask " << with_mask);
        ASSERT_TRUE(wg::supports(s.c, s.k, s.r));
        const int64_t nx = s.pixels() * c, ny = s.pixels() * k, wn = s.weight_numel(), stride = wn + k;
        const std::vector<float> xf = test::random_vector(nx, 11 + c + k), dyf = test::random_vector(ny, 12 + c + k),
                                 yf = test::random_vector(ny, 13 + c + k);
        std::vector<bf16> xb(nx), dyb(ny), yb(ny), dym(ny);
        for (int64_t i = 0; i < nx; ++i) xb[i] = to_bf16(xf[i]);
        for (int64_t i = 0; i < ny; ++i) {
          dyb[i] = to_bf16(dyf[i]);
          yb[i] = to_bf16(yf[i] > 0 ? yf[i] : 0.0f);
          dym[i] = !with_mask || to_float(yb[i]) > 0.0f ? dyb[i] : bf16{0};  // as kernel's masked()
        }
        const wg::Plan p = wg::plan(c, k);
        const wg::Split sp = wg::split_of(s.n, s.h, s.w, c, k);
        if (h == 19) {
          EXPECT_GT(sp.splits, 1);
        }
        std::vector<float> part(static_cast<size_t>(sp.splits * stride), NAN);
        int64_t ldsm = 0, wavefronts = 0;
        for (int64_t z = 0; z < sp.splits; ++z)
          for (int g = 0; g < p.groups; ++g) emulate_wgrad_cta(s, plain(xb), dym, sp, g, z, part, &ldsm, &wavefronts);
        EXPECT_EQ(wavefronts, 4 * ldsm) << "bank conflicts";
        EXPECT_EQ(ldsm, sp.tiles * halo::kWarps * p.slices * p.groups * (p.mw + (p.nw + 1) / 2));
        std::vector<float> dw(static_cast<size_t>(wn)), db(static_cast<size_t>(k));  // the final sum, in split order
        for (int64_t i = 0; i < stride; ++i) {
          float sum = 0.0f;
          for (int64_t z = 0; z < sp.splits; ++z) sum += part[z * stride + i];
          (i < wn ? dw[i] : db[i - wn]) = sum;
        }
        // fp64 reference on the same bf16 values, and the CPU bf16 backward_weight.
        std::vector<double> ref(static_cast<size_t>(wn), 0.0), mag(static_cast<size_t>(wn), 0.0),
            dbref(static_cast<size_t>(k), 0.0), dbmag(static_cast<size_t>(k), 0.0);
        for (int64_t px = 0; px < s.pixels(); ++px) {
          const int64_t img = px / (h * w), oy = px / w % h, ox = px % w;
          for (int64_t kk = 0; kk < k; ++kk) {
            const double d = to_float(dym[px * k + kk]);
            dbref[kk] += d;
            dbmag[kk] += std::fabs(d);
            for (int tap = 0; tap < 9; ++tap) {
              const int64_t iy = oy + tap / 3 - 1, ix = ox + tap % 3 - 1;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (int64_t ch = 0; ch < c; ++ch) {
                const double v = d * to_float(xb[((img * h + iy) * w + ix) * c + ch]);
                ref[(kk * 9 + tap) * c + ch] += v;
                mag[(kk * 9 + tap) * c + ch] += std::fabs(v);
              }
            }
          }
        }
        std::vector<float> dw_cpu(static_cast<size_t>(wn)), db_cpu(static_cast<size_t>(k));
        std::vector<uint8_t> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(s, ConvPass::backward_weight, true)) +
                                64);
        void* aligned = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) / 64 * 64);
        cpu::conv2d_backward_weight(s, ConvMath::bf16, xb.data(), dyb.data(), with_mask ? yb.data() : nullptr,
                                    dw_cpu.data(), db_cpu.data(), aligned);
        // fp32 sums of at most a few thousand terms: within 1e-5 of the sum of magnitudes.
        for (int64_t i = 0; i < wn; ++i) {
          ASSERT_NEAR(dw[i], ref[i], 1e-5 * mag[i] + 1e-7) << "dW element " << i;
          ASSERT_NEAR(dw[i], dw_cpu[i], 2e-5 * mag[i] + 1e-7) << "dW element " << i << " against the CPU";
        }
        for (int64_t i = 0; i < k; ++i) {
          ASSERT_NEAR(db[i], dbref[i], 1e-5 * dbmag[i] + 1e-7) << "dbias " << i;
          ASSERT_NEAR(db[i], db_cpu[i], 2e-5 * dbmag[i] + 1e-7) << "dbias " << i << " against the CPU";
        }
      }
    }
  }
}

// ---- the decoder's joined inputs ------------------------------------------------------------------

std::vector<bf16> random_bf16(int64_t n, uint32_t seed) {
  const std::vector<float> f = test::random_vector(n, seed);
  std::vector<bf16> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = to_bf16(f[i]);
  return v;
}

// [a | b] along channels over px pixels.
std::vector<bf16> concat_of(const std::vector<bf16>& a, const std::vector<bf16>& b, int64_t px, int64_t ca,
                            int64_t cb) {
  std::vector<bf16> x(static_cast<size_t>(px * (ca + cb)));
  for (int64_t p = 0; p < px; ++p) {
    std::memcpy(x.data() + p * (ca + cb), a.data() + p * ca, ca * 2);
    std::memcpy(x.data() + p * (ca + cb) + ca, b.data() + p * cb, cb * 2);
  }
  return x;
}

// a [n, h/2, w/2, c] upsampled 2x by nearest neighbour to [n, h, w, c].
std::vector<bf16> upsampled_of(const std::vector<bf16>& a, int64_t n, int64_t h, int64_t w, int64_t c) {
  std::vector<bf16> x(static_cast<size_t>(n * h * w * c));
  for (int64_t img = 0; img < n; ++img)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t xx = 0; xx < w; ++xx)
        std::memcpy(x.data() + ((img * h + y) * w + xx) * c,
                    a.data() + ((img * (h / 2) + y / 2) * (w / 2) + xx / 2) * c, c * 2);
  return x;
}

// A joined conv input of shape s and its materialised form.
struct JoinedInput {
  std::vector<bf16> a, b, whole;
  ConvJoined<const bf16> parts;
};
JoinedInput joined_input(const Conv2dShape& s, ConvJoin join, int64_t cb, uint32_t seed) {
  JoinedInput in;
  in.parts.join = join;
  if (join == ConvJoin::concat) {
    in.a = random_bf16(s.pixels() * (s.c - cb), seed);
    in.b = random_bf16(s.pixels() * cb, seed + 1);
    in.whole = concat_of(in.a, in.b, s.pixels(), s.c - cb, cb);
    in.parts.b = in.b.data();
    in.parts.cb = cb;
  } else {
    in.a = random_bf16(s.n * (s.h / 2) * (s.w / 2) * s.c, seed);
    in.whole = upsampled_of(in.a, s.n, s.h, s.w, s.c);
  }
  in.parts.a = in.a.data();
  return in;
}

struct JoinCase {
  Conv2dShape s;
  ConvJoin join;
  int64_t cb;  // concat: the second part's channels
};
// The UNet's decoder joins (skip and up of equal channels) and uneven splits; tiles cut by the
// image edge; the upsampled input of odd half-resolution size.
const JoinCase kJoinCases[] = {
    {{2, 10, 22, 16, 8, 3}, ConvJoin::concat, 8},    {{1, 16, 32, 64, 32, 3}, ConvJoin::concat, 32},
    {{1, 6, 18, 32, 16, 3}, ConvJoin::concat, 8},    {{1, 9, 17, 64, 64, 3}, ConvJoin::concat, 56},
    {{1, 10, 34, 16, 8, 3}, ConvJoin::upsampled, 0}, {{2, 8, 16, 64, 32, 3}, ConvJoin::upsampled, 0},
    {{1, 14, 6, 8, 16, 3}, ConvJoin::upsampled, 0}};

// Chunk q of every pixel, read from the parts where halo::joined_chunk points, is the chunk of the
// materialised input; joined_supported refuses what the staging cannot read.
TEST(HaloLayout, JoinedChunksAreTheMaterialisedInputsChunks) {
  for (const JoinCase& jc : kJoinCases) {
    const Conv2dShape& s = jc.s;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " join "
                                      << static_cast<int>(jc.join));
    ASSERT_TRUE(halo::joined_supported(jc.join, s.c, s.c - jc.cb, s.h, s.w));
    const JoinedInput in = joined_input(s, jc.join, jc.cb, 21);
    for (int64_t img = 0; img < s.n; ++img)
      for (int64_t iy = 0; iy < s.h; ++iy)
        for (int64_t ix = 0; ix < s.w; ++ix)
          for (int q = 0; q < s.c / 8; ++q) {
            const bf16* got = staged_chunk(s, in.parts, static_cast<int>(s.c), img, iy, ix, q);
            const bf16* part = jc.join == ConvJoin::concat && 8 * q >= s.c - jc.cb ? in.b.data() : in.a.data();
            const size_t part_size = part == in.b.data() ? in.b.size() : in.a.size();
            ASSERT_TRUE(got >= part && got + 8 <= part + part_size) << "chunk " << q << " out of its part";
            ASSERT_EQ(std::memcmp(got, in.whole.data() + ((img * s.h + iy) * s.w + ix) * s.c + 8 * q, 16), 0)
                << "pixel (" << img << ", " << iy << ", " << ix << ") chunk " << q;
          }
  }
  EXPECT_FALSE(halo::joined_supported(ConvJoin::concat, 32, 12, 8, 8));  // a chunk across the parts
  EXPECT_FALSE(halo::joined_supported(ConvJoin::concat, 32, 32, 8, 8));  // no second part
  EXPECT_FALSE(halo::joined_supported(ConvJoin::upsampled, 32, 0, 9, 8));
  EXPECT_TRUE(halo::joined_supported(ConvJoin::none, 24, 0, 9, 9));
}

// Forward on a joined input stages the same bytes as on the materialised input, so it gives the
// same bits; against the CPU's joined forward, one ulp at most as for the plain conv.
TEST(HaloConv, EmulatedJoinedForwardIsTheMaterialisedForward) {
  for (const JoinCase& jc : kJoinCases) {
    const Conv2dShape& s = jc.s;
    if (!halo::supports(s.c, s.k, s.r)) continue;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k << " join "
                                      << static_cast<int>(jc.join));
    const JoinedInput in = joined_input(s, jc.join, jc.cb, 31);
    const std::vector<float> w = test::random_vector(s.weight_numel(), 32, -0.3f, 0.3f),
                             bias = test::random_vector(s.k, 33);
    const int64_t ny = s.pixels() * s.k;
    std::vector<bf16> yj(ny, bf16{0x7fc0}), ym(ny, bf16{0x7fc0}), y_cpu(ny);
    int64_t ldsm = 0;
    for (int64_t t = 0; t < halo::tiles(s.n, s.h, s.w); ++t) {
      emulate_tile(s, false, in.parts, w, bias, true, t, yj.data(), nullptr, 0, &ldsm);
      emulate_tile(s, false, in.whole, w, bias, true, t, ym, &ldsm);
    }
    for (int64_t i = 0; i < ny; ++i) ASSERT_EQ(yj[i].bits, ym[i].bits) << "element " << i;
    Workspace ws(cpu::conv2d_workspace_bytes(s, ConvPass::forward, true, jc.join));
    cpu::conv2d_forward(s, ConvMath::bf16, in.parts, w.data(), bias.data(), true, y_cpu.data(), ws.get());
    EXPECT_TRUE(within_an_ulp(yj, y_cpu));
  }
}

// Backward-data into a concat's two gradients: the epilogue's split store gives the two channel
// ranges of the unsplit dx, bit for bit, and the CPU's joined backward-data within one ulp.
TEST(HaloConv, EmulatedBackwardDataWritesBothConcatGradients) {
  for (const JoinCase& jc : kJoinCases) {
    const Conv2dShape& s = jc.s;
    if (jc.join != ConvJoin::concat || !halo::supports(s.k, s.c, s.r)) continue;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, ca = s.c - jc.cb;
    const std::vector<bf16> dy = random_bf16(ny, 41), y = random_bf16(ny, 42);
    std::vector<bf16> ymask(ny), staged(ny);
    for (int64_t i = 0; i < ny; ++i) {
      ymask[i] = to_float(y[i]) > 0.0f ? y[i] : bf16{0};
      staged[i] = to_float(ymask[i]) > 0.0f ? dy[i] : bf16{0};
    }
    const std::vector<float> w = test::random_vector(s.weight_numel(), 43, -0.3f, 0.3f);
    std::vector<bf16> dx(nx, bf16{0x7fc0}), dxa(s.pixels() * ca, bf16{0x7fc0}), dxb(s.pixels() * jc.cb, bf16{0x7fc0});
    int64_t ldsm = 0;
    for (int64_t t = 0; t < halo::tiles(s.n, s.h, s.w); ++t) {
      emulate_tile(s, true, staged, w, {}, false, t, dx, &ldsm);
      emulate_tile(s, true, plain(staged), w, {}, false, t, dxa.data(), dxb.data(), static_cast<int>(ca), &ldsm);
    }
    const std::vector<bf16> joined = concat_of(dxa, dxb, s.pixels(), ca, jc.cb);
    ASSERT_EQ(std::memcmp(joined.data(), dx.data(), nx * 2), 0);
    std::vector<bf16> cpa(dxa.size()), cpb(dxb.size());
    ConvJoined<bf16> g;
    g.join = ConvJoin::concat;
    g.a = cpa.data();
    g.b = cpb.data();
    g.cb = jc.cb;
    Workspace ws(cpu::conv2d_workspace_bytes(s, ConvPass::backward_data, true, ConvJoin::concat));
    cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), ymask.data(), w.data(), g, ws.get());
    EXPECT_TRUE(within_an_ulp(dx, concat_of(cpa, cpb, s.pixels(), ca, jc.cb)));
  }
}

// The up epilogue's exchange: lane ^ kPairLane holds pixel tx ^ 1 of the same row and channel, and
// the pair sums of a tile's even pixels fill up_bytes exactly once.
TEST(HaloLayout, UpEpiloguePairsAndSumsCoverTheTile) {
  for (int k : {8, 16, 32, 64}) {
    std::vector<int> written(static_cast<size_t>(halo::up_bytes(k) / 4), 0);
    for (int warp = 0; warp < halo::kWarps; ++warp)
      for (int lane = 0; lane < 32; ++lane)
        for (int f = 0; f < k / 8; ++f)
          for (int i = 0; i < 4; ++i) {
            const halo::OutIndex o = halo::out_index(lane, warp, f, i),
                                 p = halo::out_index(lane ^ halo::kPairLane, warp, f, i);
            ASSERT_EQ(p.ty, o.ty);
            ASSERT_EQ(p.tx, o.tx ^ 1);
            ASSERT_EQ(p.n, o.n);
            if (warp % 2 == 0 && o.tx % 2 == 0) {
              const int q = halo::up_index(o.ty, o.tx, o.n, k);
              ASSERT_GE(q, 0);
              ASSERT_LT(q, halo::up_bytes(k) / 4);
              ++written[q];
            }
          }
    for (int v : written) EXPECT_EQ(v, 1) << "k " << k;
  }
}

// Backward-data into the gradient of an upsampled input: the up epilogue gives, bit for bit, the
// full-resolution gradient summed 2x2 by the CPU's upsample2x_backward, and the CPU's joined
// backward-data within one ulp.
TEST(HaloConv, EmulatedBackwardDataSumsTheUpsampledGradient) {
  int cases = 0;
  for (const JoinCase& jc : kJoinCases) {
    const Conv2dShape& s = jc.s;
    if (jc.join != ConvJoin::upsampled || !halo::supports(s.k, s.c, s.r)) continue;
    ++cases;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, na = nx / 4;
    const std::vector<bf16> dy = random_bf16(ny, 61), y = random_bf16(ny, 62);
    std::vector<bf16> ymask(ny), staged(ny);
    for (int64_t i = 0; i < ny; ++i) {
      ymask[i] = to_float(y[i]) > 0.0f ? y[i] : bf16{0};
      staged[i] = to_float(ymask[i]) > 0.0f ? dy[i] : bf16{0};
    }
    const std::vector<float> w = test::random_vector(s.weight_numel(), 63, -0.3f, 0.3f);
    std::vector<bf16> dx(nx, bf16{0x7fc0}), da(na, bf16{0x7fc0}), summed(na);
    int64_t ldsm = 0;
    for (int64_t t = 0; t < halo::tiles(s.n, s.h, s.w); ++t) {
      emulate_tile(s, true, staged, w, {}, false, t, dx, &ldsm);
      emulate_up_tile(s, staged, w, t, da.data(), &ldsm);
    }
    cpu::upsample2x_backward(s.n, s.h / 2, s.w / 2, s.c, dx.data(), summed.data());
    for (int64_t i = 0; i < na; ++i) ASSERT_EQ(da[i].bits, summed[i].bits) << "element " << i;
    std::vector<bf16> da_cpu(na);
    ConvJoined<bf16> g;
    g.join = ConvJoin::upsampled;
    g.a = da_cpu.data();
    Workspace ws(cpu::conv2d_workspace_bytes(s, ConvPass::backward_data, true, ConvJoin::upsampled));
    cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), ymask.data(), w.data(), g, ws.get());
    EXPECT_TRUE(within_an_ulp(da, da_cpu));
  }
  EXPECT_EQ(cases, 3);
}

// The forward's pool epilogue (the kernel's pool_epilogue): the upper warp of each row pair writes
// the leader of (0,0) and (0,1) of the stored values to the leader words (poisoned until written),
// the lower warp takes (1,0) and (1,1), stores the pooled pair and, in the lane of channels n % 4 ==
// 0, the argmax byte joined with the nibble of lane ^ kNibbleLane. Counts every pooled element and
// argmax byte it writes.
void emulate_pool_tile(const Conv2dShape& s, const std::vector<bf16>& x, const std::vector<float>& w,
                       const std::vector<float>& bias, bool relu, int64_t tile, std::vector<bf16>& pooled,
                       std::vector<uint8_t>& argmax, std::vector<int>& pooled_writes, std::vector<int>& argmax_writes) {
  const int k = static_cast<int>(s.k), frags = k / 8;
  const halo::Tile t = halo::tile_of(tile, s.h, s.w);
  int64_t ldsm = 0;
  const TileAcc accs = tile_accumulators(s, false, plain(x), w, tile, &ldsm);
  auto stored = [&](int warp, int f, int lane, int i) {
    const halo::OutIndex o = halo::out_index(lane, warp, f, i);
    float v = accs[warp][f][lane][i] + bias[o.n];
    if (relu) v = v > 0.0f ? v : 0.0f;
    return to_bf16(v);
  };
  std::vector<uint32_t> words(static_cast<size_t>(halo::up_bytes(k) / 4), 0xffffffffu);
  for (int warp = 0; warp < halo::kWarps; warp += 2)
    for (int lane = 0; lane < 32; ++lane)
      for (int f = 0; f < frags; ++f)
        for (int i = 0; i < 4; ++i) {
          const halo::OutIndex o = halo::out_index(lane, warp, f, i);
          if ((o.tx & 1) != 0) continue;
          const bf16 v = stored(warp, f, lane, i), right = stored(warp, f, lane ^ halo::kPairLane, i);
          words[halo::up_index(o.ty, o.tx, o.n, k)] = halo::pool_word(halo::pool_take({v, 0}, right, 1));
        }
  for (int warp = 1; warp < halo::kWarps; warp += 2)
    for (int f = 0; f < frags; ++f)
      for (int i = 0; i < 4; i += 2) {
        std::array<halo::PoolLead, 64> lead{};
        std::array<uint32_t, 32> nibble{};
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 2; ++e) {
            const halo::OutIndex o = halo::out_index(lane, warp, f, i);
            const bf16 v = stored(warp, f, lane, i + e), right = stored(warp, f, lane ^ halo::kPairLane, i + e);
            halo::PoolLead l = halo::pool_lead(words[halo::up_index(o.ty, o.tx, o.n + e, k)]);
            l = halo::pool_take(halo::pool_take(l, v, 2), right, 3);
            lead[2 * lane + e] = l;
            nibble[lane] |= static_cast<uint32_t>(l.arg) << (2 * e);
          }
        for (int lane = 0; lane < 32; ++lane) {
          const halo::OutIndex o = halo::out_index(lane, warp, f, i);
          const int64_t oy = t.y0 + o.ty, ox = t.x0 + o.tx;
          if ((o.tx & 1) != 0 || oy >= s.h || ox + 1 >= s.w) continue;
          const int64_t px = (t.img * (s.h / 2) + oy / 2) * (s.w / 2) + ox / 2;
          for (int e = 0; e < 2; ++e) {
            pooled[px * k + o.n + e] = lead[2 * lane + e].v;
            ++pooled_writes[px * k + o.n + e];
          }
          if ((o.n & 3) != 0) continue;
          const int64_t byte = halo::pool_argmax_byte(t.img, oy, ox, o.n, s.h, s.w, k);
          argmax[byte] = static_cast<uint8_t>(nibble[lane] | nibble[lane ^ halo::kNibbleLane] << 4);
          ++argmax_writes[byte];
        }
      }
}

// The pooled forward (the encoder's second conv and its maxpool in one kernel): the pooled tensor
// and the argmax the epilogue writes are, bit for bit, the CPU's maxpool2d_forward of the y the same
// tile stores, every element and byte written once, on odd shapes (the last row and column of an
// odd image pool into nothing), without ReLU (negative maxima), and with many ties (outputs of five
// values: the first maximum must win).
TEST(HaloConv, EmulatedPoolEpilogueIsTheMaxpoolOfTheStoredOutput) {
  struct PoolCase {
    Conv2dShape s;
    bool relu, ties;
  };
  for (const PoolCase& pc : {PoolCase{{2, 11, 21, 8, 8, 3}, true, false}, PoolCase{{1, 9, 17, 16, 32, 3}, true, false},
                             PoolCase{{1, 16, 32, 32, 16, 3}, false, false}, PoolCase{{1, 5, 7, 64, 64, 3}, true, true},
                             PoolCase{{3, 17, 15, 16, 8, 3}, true, true}, PoolCase{{1, 2, 2, 8, 64, 3}, false, true},
                             PoolCase{{1, 1, 9, 8, 8, 3}, true, false}}) {
    const Conv2dShape& s = pc.s;
    ASSERT_TRUE(halo::supports(s.c, s.k, s.r));
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k
                                      << (pc.relu ? " relu" : "") << (pc.ties ? " ties" : ""));
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, np = s.n * (s.h / 2) * (s.w / 2) * s.k;
    const int64_t nb = maxpool2d_argmax_bytes(s.n, s.h, s.w, s.k);
    std::vector<float> xf = test::random_vector(nx, 71), w = test::random_vector(s.weight_numel(), 72, -0.3f, 0.3f),
                       bias = test::random_vector(s.k, 73, -0.2f, 0.2f);
    if (pc.ties) {
      // y = a quarter of the ones among the centre pixel's first 4 channels: 5 values, ties everywhere.
      for (float& v : xf) v = v > 0.0f ? 1.0f : 0.0f;
      for (int64_t i = 0; i < s.weight_numel(); ++i) w[i] = i / s.c % 9 == 4 && i % s.c < 4 ? 0.25f : 0.0f;
      for (float& v : bias) v = 0.0f;
    }
    std::vector<bf16> x(nx), y(ny, bf16{0x7fc0}), pooled(np, bf16{0x7fc0}), pooled_cpu(np);
    for (int64_t i = 0; i < nx; ++i) x[i] = to_bf16(xf[i]);
    std::vector<uint8_t> argmax(nb, 0xaa), argmax_cpu(nb);
    std::vector<int> pooled_writes(np, 0), argmax_writes(nb, 0);
    int64_t ldsm = 0;
    for (int64_t t = 0; t < halo::tiles(s.n, s.h, s.w); ++t) {
      emulate_tile(s, false, x, w, bias, pc.relu, t, y, &ldsm);
      emulate_pool_tile(s, x, w, bias, pc.relu, t, pooled, argmax, pooled_writes, argmax_writes);
    }
    cpu::maxpool2d_forward(s.n, s.h, s.w, s.k, y.data(), pooled_cpu.data(), argmax_cpu.data());
    for (int64_t i = 0; i < np; ++i) {
      ASSERT_EQ(pooled_writes[i], 1) << "pooled element " << i;
      ASSERT_EQ(pooled[i].bits, pooled_cpu[i].bits) << "pooled element " << i;
    }
    for (int64_t i = 0; i < nb; ++i) {
      ASSERT_EQ(argmax_writes[i], 1) << "argmax byte " << i;
      ASSERT_EQ(argmax[i], argmax_cpu[i]) << "argmax byte " << i;
    }
    if (pc.ties) {  // the case is what it claims: some quads tie at their maximum
      int64_t tied = 0;
      for (int64_t i = 0; i < np; ++i) {
        const int64_t c = i % s.k, px = i / s.k, img = px / ((s.h / 2) * (s.w / 2)), oy = px / (s.w / 2) % (s.h / 2),
                      ox = px % (s.w / 2);
        int equal = 0;
        for (int q = 0; q < 4; ++q)
          equal += y[((img * s.h + 2 * oy + q / 2) * s.w + 2 * ox + q % 2) * s.k + c].bits == pooled[i].bits;
        tied += equal > 1;
      }
      EXPECT_GT(tied, np / 10);
    }
  }
}

// Backward-weight on a joined input stages the same x halo as on the materialised input: the same
// partials, bit for bit, whatever the split.
TEST(HaloWgrad, EmulatedKernelReadsJoinedInputs) {
  for (const JoinCase& jc : kJoinCases) {
    const Conv2dShape& s = jc.s;
    if (!wg::supports(s.c, s.k, s.r)) continue;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k << " join "
                                      << static_cast<int>(jc.join));
    const JoinedInput in = joined_input(s, jc.join, jc.cb, 51);
    const std::vector<bf16> dy = random_bf16(s.pixels() * s.k, 52);
    const int c = static_cast<int>(s.c), k = static_cast<int>(s.k);
    const wg::Plan p = wg::plan(c, k);
    const wg::Split sp = wg::split_of(s.n, s.h, s.w, c, k);
    const int64_t stride = s.weight_numel() + s.k;
    std::vector<float> pj(static_cast<size_t>(sp.splits * stride), NAN), pm = pj;
    int64_t ldsm = 0, wavefronts = 0;
    for (int64_t z = 0; z < sp.splits; ++z)
      for (int g = 0; g < p.groups; ++g) {
        emulate_wgrad_cta(s, in.parts, dy, sp, g, z, pj, &ldsm, &wavefronts);
        emulate_wgrad_cta(s, plain(in.whole), dy, sp, g, z, pm, &ldsm, &wavefronts);
      }
    ASSERT_EQ(std::memcmp(pj.data(), pm.data(), pj.size() * 4), 0);
    for (float v : pj) ASSERT_TRUE(std::isfinite(v));
  }
}

}  // namespace
}  // namespace seis
