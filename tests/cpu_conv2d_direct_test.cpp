// The CPU's direct 3x3 conv (kernels/cpu/conv2d_direct.h): forward and backward_data against a
// double reference and against the im2col path, on odd and tile-misaligned shapes, every input form
// (plain, masked, concat, upsampled), f32 and bf16 storage, f32, tf32 and bf16 operands; and its
// AVX2 and AVX-512 kernels bit for bit.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "conv_util.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/conv2d_direct.h"
#include "test_util.h"

namespace seis {
namespace {

using cpu::direct::Isa;

// Restores the kernel choice when a test ends.
struct IsaGuard {
  Isa saved = cpu::direct::isa();
  ~IsaGuard() { cpu::direct::set_isa(saved); }
};

// The direct kernels this CPU runs.
std::vector<Isa> direct_isas() {
  IsaGuard guard;
  std::vector<Isa> out;
  for (Isa isa : {Isa::avx2, Isa::avx512}) {
    cpu::direct::set_isa(isa);
    if (cpu::direct::isa() == isa) out.push_back(isa);
  }
  return out;
}

template <typename T>
std::vector<T> stored(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) store(&out[i], v[i]);
  return out;
}
template <typename T>
std::vector<float> widened(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

// One case: the conv's shape, how its input (forward) or input gradient (backward_data) is joined,
// and its data as floats (stored as T by the runs).
struct Case {
  Conv2dShape s;
  ConvJoin join = ConvJoin::none;
  int64_t cb = 0;              // concat: b's channels
  std::vector<float> a, b;     // forward input parts (upsampled: a at half resolution)
  std::vector<float> w, bias;  // [K,3,3,C], [K]
  std::vector<float> dy, y_relu;

  Case(const Conv2dShape& shape, ConvJoin j, uint64_t seed) : s(shape), join(j) {
    const int64_t ca = join == ConvJoin::concat ? s.c - s.c / 2 : s.c;
    cb = join == ConvJoin::concat ? s.c / 2 : 0;
    const int64_t pix = join == ConvJoin::upsampled ? s.n * (s.h / 2) * (s.w / 2) : s.pixels();
    a = test::random_vector(pix * ca, seed);
    b = test::random_vector(s.pixels() * cb, seed + 1);
    w = test::random_vector(s.weight_numel(), seed + 2, -0.5f, 0.5f);
    bias = test::random_vector(s.k, seed + 3, -0.2f, 0.2f);
    dy = test::random_vector(s.pixels() * s.k, seed + 4);
    y_relu = test::random_vector(s.pixels() * s.k, seed + 5);  // about half of dy masked
  }

  // The materialised forward input [N,H,W,C].
  std::vector<float> input() const {
    std::vector<float> x(static_cast<size_t>(s.pixels() * s.c));
    const int64_t ca = s.c - cb;
    for (int64_t p = 0; p < s.pixels(); ++p) {
      const int64_t n = p / (s.h * s.w), h = p / s.w % s.h, x0 = p % s.w;
      for (int64_t c = 0; c < s.c; ++c) {
        if (join == ConvJoin::upsampled) {
          x[p * s.c + c] = a[((n * (s.h / 2) + h / 2) * (s.w / 2) + x0 / 2) * s.c + c];
        } else {
          x[p * s.c + c] = c < ca ? a[p * ca + c] : b[p * cb + c - ca];
        }
      }
    }
    return x;
  }
};

// forward's y, widened, run with the kernel choice in force.
template <typename T>
std::vector<float> run_forward(const Case& t, ConvMath math, bool relu, bool with_bias = true) {
  const std::vector<T> a = stored<T>(t.a), b = stored<T>(t.b);
  std::vector<T> y(static_cast<size_t>(t.s.pixels() * t.s.k));
  const bool bf = std::is_same_v<T, bf16>;
  std::vector<char> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(t.s, ConvPass::forward, bf, t.join) + 64));
  void* wp = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
  cpu::conv2d_forward(t.s, math, ConvJoined<const T>{t.join, a.data(), b.data(), t.cb}, t.w.data(),
                      with_bias ? t.bias.data() : nullptr, relu, y.data(), wp);
  return widened(y);
}

// backward_data's dx parts, widened and concatenated (a then b), with dy masked by y_relu or not.
template <typename T>
std::vector<float> run_backward_data(const Case& t, ConvMath math, bool masked) {
  const std::vector<T> dy = stored<T>(t.dy), y_relu = stored<T>(t.y_relu);
  std::vector<T> da(t.a.size()), db(t.b.size());
  const bool bf = std::is_same_v<T, bf16>;
  std::vector<char> ws(static_cast<size_t>(cpu::conv2d_workspace_bytes(t.s, ConvPass::backward_data, bf, t.join) + 64));
  void* wp = ws.data() + (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
  cpu::conv2d_backward_data(t.s, math, dy.data(), masked ? y_relu.data() : nullptr, t.w.data(),
                            ConvJoined<T>{t.join, da.data(), db.data(), t.cb}, wp);
  std::vector<float> out = widened(da), bout = widened(db);
  out.insert(out.end(), bout.begin(), bout.end());
  return out;
}

// Forward in double (test::ref_pre), plain input x [N,H,W,C], then ReLU.
std::vector<float> ref_forward(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                               const std::vector<float>& bias, bool relu) {
  const std::vector<double> pre = test::ref_pre(s, test::to_double(x), test::to_double(w), test::to_double(bias));
  std::vector<float> y(pre.size());
  for (size_t i = 0; i < pre.size(); ++i) y[i] = static_cast<float>(relu && pre[i] < 0 ? 0.0 : pre[i]);
  return y;
}

// backward_data in double: dx [N,H,W,C] of dy masked by (y_relu > 0) when masked.
std::vector<float> ref_backward_data(const Case& t, bool masked) {
  const Conv2dShape& s = t.s;
  std::vector<double> dx(static_cast<size_t>(s.pixels() * s.c), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t h = 0; h < s.h; ++h)
      for (int64_t x0 = 0; x0 < s.w; ++x0)
        for (int64_t k = 0; k < s.k; ++k) {
          const int64_t i = ((n * s.h + h) * s.w + x0) * s.k + k;
          if (masked && !(t.y_relu[i] > 0.0f)) continue;
          for (int64_t r = 0; r < 3; ++r)
            for (int64_t q = 0; q < 3; ++q) {
              const int64_t hh = h + r - 1, ww = x0 + q - 1;
              if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
              for (int64_t c = 0; c < s.c; ++c)
                dx[((n * s.h + hh) * s.w + ww) * s.c + c] += double{t.dy[i]} * t.w[((k * 3 + r) * 3 + q) * s.c + c];
            }
        }
  return std::vector<float>(dx.begin(), dx.end());
}

std::string describe(const Case& t) {
  const Conv2dShape& s = t.s;
  return "n" + std::to_string(s.n) + " h" + std::to_string(s.h) + " w" + std::to_string(s.w) + " c" +
         std::to_string(s.c) + " k" + std::to_string(s.k) + " join " + std::to_string(static_cast<int>(t.join));
}

// Odd, tile-misaligned, one-pixel, one-channel and multi-chunk shapes; K and C multiples of 8 where
// the case needs the direct kernel in both passes.
const Conv2dShape kShapes[] = {
    // n, h, w, c, k (c a multiple of 8 where backward_data should run the direct kernel too)
    {1, 1, 1, 1, 8, 3},   {1, 1, 1, 8, 8, 3},   {2, 3, 5, 3, 8, 3},    {2, 3, 5, 8, 16, 3},
    {1, 7, 47, 8, 8, 3},  {2, 5, 49, 8, 16, 3}, {1, 4, 95, 17, 24, 3}, {1, 4, 95, 16, 24, 3},
    {1, 9, 16, 1, 32, 3}, {1, 9, 16, 8, 32, 3}, {2, 6, 50, 16, 40, 3}, {1, 40, 200, 8, 8, 3},
};

TEST(CpuConv2dDirect, ForwardAndBackwardDataMatchTheDoubleReference) {
  IsaGuard guard;
  const std::vector<Isa> isas = direct_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2 with FMA nor AVX-512: the direct kernel never runs";
  uint64_t seed = 10;
  for (Isa isa : isas) {
    cpu::direct::set_isa(isa);
    for (const Conv2dShape& s : kShapes) {
      const Case t(s, ConvJoin::none, seed += 10);
      const std::vector<float> no_bias(static_cast<size_t>(s.k), 0.0f);
      for (bool relu : {false, true})
        for (bool with_bias : {true, false}) {
          const std::vector<float> ref = ref_forward(s, t.input(), t.w, with_bias ? t.bias : no_bias, relu);
          const std::vector<float> y = run_forward<float>(t, ConvMath::f32, relu, with_bias);
          EXPECT_TRUE(test::all_close(y.data(), ref.data(), static_cast<int64_t>(y.size()),
                                      2e-6 * std::sqrt(9.0 * s.c) + 1e-6, 1e-5, 1e-10))
              << cpu::direct::isa_name(isa) << " forward relu " << relu << " bias " << with_bias << ", " << describe(t);
        }
      for (bool masked : {false, true}) {
        const std::vector<float> ref = ref_backward_data(t, masked);
        const std::vector<float> dx = run_backward_data<float>(t, ConvMath::f32, masked);
        EXPECT_TRUE(test::all_close(dx.data(), ref.data(), static_cast<int64_t>(dx.size()),
                                    2e-6 * std::sqrt(9.0 * s.k) + 1e-6, 1e-5, 1e-10))
            << cpu::direct::isa_name(isa) << " backward_data masked " << masked << ", " << describe(t);
      }
    }
  }
}

// Every input form, storage and operand precision: the direct kernel against the im2col path (which
// cpu_conv2d_test and cpu_bf16_test hold to the references when ctest runs their *_im2col copies,
// SEIS_CPU_CONV=im2col). The two sum in different orders, so f32 outputs agree to rounding and bf16
// outputs to one bf16 step.
template <typename T>
void expect_direct_matches_im2col(Isa isa, const Case& t, ConvMath math, const std::string& what) {
  const bool bf = std::is_same_v<T, bf16>;
  const double rtol = bf ? 1.0 / 64 : 1e-5, atol_f = bf ? 1e-3 : 2e-6 * std::sqrt(9.0 * t.s.c) + 1e-6;
  const double atol_b = bf ? 1e-3 : 2e-6 * std::sqrt(9.0 * t.s.k) + 1e-6;
  for (bool flag : {false, true}) {
    cpu::direct::set_isa(Isa::none);
    const std::vector<float> y0 = run_forward<T>(t, math, flag), dx0 = run_backward_data<T>(t, math, flag);
    cpu::direct::set_isa(isa);
    const std::vector<float> y1 = run_forward<T>(t, math, flag), dx1 = run_backward_data<T>(t, math, flag);
    EXPECT_TRUE(test::all_close(y1.data(), y0.data(), static_cast<int64_t>(y0.size()), atol_f, rtol, bf ? 1e-4 : 1e-10))
        << cpu::direct::isa_name(isa) << " forward relu " << flag << ", " << what << ", " << describe(t);
    EXPECT_TRUE(
        test::all_close(dx1.data(), dx0.data(), static_cast<int64_t>(dx0.size()), atol_b, rtol, bf ? 1e-4 : 1e-10))
        << cpu::direct::isa_name(isa) << " backward_data masked " << flag << ", " << what << ", " << describe(t);
  }
}

TEST(CpuConv2dDirect, EveryInputFormAndPrecisionMatchesTheIm2colPath) {
  IsaGuard guard;
  const std::vector<Isa> isas = direct_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2 with FMA nor AVX-512: the direct kernel never runs";
  // Even heights and widths for the upsampled join.
  const Conv2dShape shapes[] = {{2, 6, 10, 8, 8, 3}, {1, 4, 98, 16, 16, 3}, {2, 2, 2, 24, 8, 3}, {1, 12, 50, 8, 32, 3}};
  uint64_t seed = 1000;
  for (Isa isa : isas) {
    for (const Conv2dShape& s : shapes) {
      for (ConvJoin join : {ConvJoin::none, ConvJoin::concat, ConvJoin::upsampled}) {
        const Case t(s, join, seed += 10);
        expect_direct_matches_im2col<float>(isa, t, ConvMath::f32, "f32");
        expect_direct_matches_im2col<float>(isa, t, ConvMath::tf32, "f32 storage, tf32 operands");
        expect_direct_matches_im2col<bf16>(isa, t, ConvMath::bf16, "bf16");
      }
    }
  }
}

// The AVX2 kernel (4 output channels per block, 8 lanes) and the AVX-512 one (8 channels, 16 lanes)
// sum each output in the same order: the same bits.
TEST(CpuConv2dDirect, Avx2AndAvx512GiveTheSameBits) {
  IsaGuard guard;
  const std::vector<Isa> isas = direct_isas();
  if (isas.size() < 2) GTEST_SKIP() << "this CPU runs only " << isas.size() << " of the two direct kernels";
  uint64_t seed = 2000;
  for (const Conv2dShape& s : kShapes) {
    if (s.c % 8 != 0) continue;  // backward_data's output channels must fill both kernels' blocks
    for (ConvJoin join : {ConvJoin::none, ConvJoin::concat}) {
      const Case t(s, join, seed += 10);
      std::vector<float> out[2];
      for (int i = 0; i < 2; ++i) {
        cpu::direct::set_isa(isas[i]);
        out[i] = run_forward<float>(t, ConvMath::f32, true);
        const std::vector<float> dx = run_backward_data<bf16>(t, ConvMath::bf16, true);
        out[i].insert(out[i].end(), dx.begin(), dx.end());
      }
      EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float))) << describe(t);
    }
  }
}

// The rows are cut into chunks by the shape alone: the same bits with one thread as with several.
TEST(CpuConv2dDirect, TheBitsDoNotDependOnTheThreadCount) {
  IsaGuard guard;
  const std::vector<Isa> isas = direct_isas();
  if (isas.empty()) GTEST_SKIP() << "this CPU has neither AVX2 with FMA nor AVX-512: the direct kernel never runs";
  const int threads = std::max(2, omp_get_max_threads());
  uint64_t seed = 3000;
  for (Isa isa : isas) {
    cpu::direct::set_isa(isa);
    for (const Conv2dShape& s : {Conv2dShape{2, 37, 61, 8, 16, 3}, Conv2dShape{1, 40, 200, 8, 8, 3}}) {
      for (ConvJoin join : {ConvJoin::none, ConvJoin::concat}) {
        const Case t(s, join, seed += 10);
        std::vector<float> out[2];
        for (int i = 0; i < 2; ++i) {
          omp_set_num_threads(i == 0 ? 1 : threads);
          out[i] = run_forward<float>(t, ConvMath::f32, true);
          const std::vector<float> dx = run_backward_data<bf16>(t, ConvMath::bf16, true);
          out[i].insert(out[i].end(), dx.begin(), dx.end());
        }
        omp_set_num_threads(threads);
        EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), out[0].size() * sizeof(float)))
            << cpu::direct::isa_name(isa) << ", 1 thread against " << threads << ", " << describe(t);
      }
    }
  }
}

}  // namespace
}  // namespace seis
