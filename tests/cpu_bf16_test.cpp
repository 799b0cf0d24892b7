// bf16 storage on the CPU (--precision bf16): each bf16 kernel against its f32 twin run on the same
// bf16 values: equal to the f32 result rounded once (bit for bit), which pins the rounding points
// that the CUDA kernels are tested against. Operand rounding of the conv (ConvMath bf16/tf32) where
// the CUDA kernels round, and not where they do not. Then the UNet end to end: bf16 activations,
// a loss curve that tracks fp32, bit-identical reruns, and half the planned memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "apps/memory_plan.h"
#include "apps/trainer.h"
#include "engine/ops.h"
#include "kernels/activation.h"
#include "kernels/bce_loss.h"
#include "kernels/concat.h"
#include "kernels/conv2d.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/elementwise.h"
#include "kernels/metrics.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#include "test_util.h"

namespace seis {
namespace {

// Random values that are exactly representable in bf16, as f32 and as bf16.
struct Values {
  std::vector<float> f;
  std::vector<bf16> h;
};
Values bf16_values(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Values v;
  v.f = test::random_vector(n, seed, lo, hi);
  for (float& x : v.f) {
    v.h.push_back(to_bf16(x));
    x = to_float(v.h.back());
  }
  return v;
}

// Every bf16 element equals the f32 element rounded to bf16 (same bits).
::testing::AssertionResult rounds_to(const std::vector<bf16>& got, const std::vector<float>& f32) {
  if (got.size() != f32.size()) return ::testing::AssertionFailure() << got.size() << " vs " << f32.size();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].bits != to_bf16(f32[i]).bits) {
      if (bad++ == 0) first = static_cast<int64_t>(i);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.size() << " differ; first [" << first << "]: bf16 "
                                       << to_float(got[first]) << ", f32 " << f32[first] << " rounds to "
                                       << round_bf16(f32[first]);
}

TEST(Bf16, ConversionRoundsToNearestEvenAndKeepsSpecials) {
  EXPECT_EQ(to_bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1). 1 + 3*2^-8 ties up to 1 + 2^-6.
  EXPECT_EQ(to_float(to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(to_float(to_bf16(1.0f + 3.0f / 256)), 1.0f + 1.0f / 64);
  EXPECT_TRUE(std::isnan(to_float(to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(to_float(to_bf16(INFINITY))));
  EXPECT_EQ(to_bf16(-0.0f).bits, 0x8000);
  // tf32 (cvt.rna): 10 mantissa bits, ties away from zero.
  EXPECT_EQ(round_operand(ConvMath::tf32, 1.0f + 1.0f / 2048), 1.0f + 1.0f / 1024);
  EXPECT_EQ(round_operand(ConvMath::tf32, 1.0f + 1.0f / 4096), 1.0f);
  EXPECT_EQ(round_operand(ConvMath::tf32, -(1.0f + 1.0f / 2048)), -(1.0f + 1.0f / 1024));
  EXPECT_EQ(round_operand(ConvMath::f32, 1.0f + 1.0f / 4096), 1.0f + 1.0f / 4096);
}

TEST(Bf16, ElementwiseKernelsEqualTheirF32TwinsRounded) {
  const int64_t n = 1003;
  const Values x = bf16_values(n, 1), y = bf16_values(n, 2);
  std::vector<float> f(n), f2(n);
  std::vector<bf16> h(n), h2(n);
  cpu::relu_forward(n, x.f.data(), f.data());
  cpu::relu_forward(n, x.h.data(), h.data());
  EXPECT_TRUE(rounds_to(h, f));
  cpu::relu_backward(n, x.f.data(), y.f.data(), f.data());
  cpu::relu_backward(n, x.h.data(), y.h.data(), h.data());
  EXPECT_TRUE(rounds_to(h, f));
  cpu::sigmoid_forward(n, x.f.data(), f.data());
  cpu::sigmoid_forward(n, x.h.data(), f2.data());
  EXPECT_EQ(f, f2);
  // add: the fp32 sum rounded once.
  f = y.f;
  h = y.h;
  cpu::add_inplace(n, x.f.data(), f.data());
  cpu::add_inplace(n, x.h.data(), h.data());
  EXPECT_TRUE(rounds_to(h, f));
  cpu::convert(n, x.f.data(), h.data());
  EXPECT_TRUE(rounds_to(h, x.f));
  cpu::convert(n, x.h.data(), f.data());
  EXPECT_EQ(f, x.f);
  // BCE: the loss from widened logits is the f32 loss; dlogits rounded once.
  std::vector<uint8_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 7 == 0;
  float lf = 0, lh = 0;
  cpu::bce_with_logits_forward(n, x.f.data(), labels.data(), 2.5f, &lf);
  cpu::bce_with_logits_forward(n, x.h.data(), labels.data(), 2.5f, &lh);
  EXPECT_EQ(lf, lh);
  const float scale = 0.37f;
  cpu::bce_with_logits_backward(n, x.f.data(), labels.data(), 2.5f, &scale, f.data());
  cpu::bce_with_logits_backward(n, x.h.data(), labels.data(), 2.5f, &scale, h.data());
  EXPECT_TRUE(rounds_to(h, f));
  int64_t cf[3], ch[3];
  cpu::confusion_counts(n, x.f.data(), labels.data(), 0.1f, cf);
  cpu::confusion_counts(n, x.h.data(), labels.data(), 0.1f, ch);
  EXPECT_EQ(std::vector<int64_t>(cf, cf + 3), std::vector<int64_t>(ch, ch + 3));
}

TEST(Bf16, PoolUpsampleConcatEqualTheirF32TwinsRounded) {
  for (auto [n, hh, ww, c] : std::vector<std::array<int64_t, 4>>{{2, 7, 9, 3}, {1, 4, 4, 1}, {3, 6, 10, 5}}) {
    const int64_t nx = n * hh * ww * c, ny = n * (hh / 2) * (ww / 2) * c;
    const Values x = bf16_values(nx, 3);
    std::vector<float> yf(ny), dxf(nx);
    std::vector<bf16> yh(ny), dxh(nx);
    std::vector<uint8_t> af(static_cast<size_t>(maxpool2d_argmax_bytes(n, hh, ww, c))), ah(af.size());
    cpu::maxpool2d_forward(n, hh, ww, c, x.f.data(), yf.data(), af.data());
    cpu::maxpool2d_forward(n, hh, ww, c, x.h.data(), yh.data(), ah.data());
    EXPECT_TRUE(rounds_to(yh, yf));
    EXPECT_EQ(af, ah);
    const Values g = bf16_values(ny, 4);
    cpu::maxpool2d_backward(n, hh, ww, c, g.f.data(), af.data(), dxf.data(), false);
    cpu::maxpool2d_backward(n, hh, ww, c, g.h.data(), ah.data(), dxh.data(), false);
    EXPECT_TRUE(rounds_to(dxh, dxf));
    // Accumulated into a gradient already there: the bits of add_inplace of the written dx.
    const Values base = bf16_values(nx, 6);
    std::vector<bf16> acc(base.h), added(base.h);
    cpu::maxpool2d_backward(n, hh, ww, c, g.h.data(), ah.data(), acc.data(), true);
    cpu::add_inplace(nx, dxh.data(), added.data());
    EXPECT_EQ(0, std::memcmp(acc.data(), added.data(), acc.size() * sizeof(bf16)));
    // Upsample of x, and the backward of a gradient at the upsampled size: four values summed.
    const int64_t nu = 4 * nx;
    std::vector<float> uf(nu);
    std::vector<bf16> uh(nu);
    cpu::upsample2x_forward(n, hh, ww, c, x.f.data(), uf.data());
    cpu::upsample2x_forward(n, hh, ww, c, x.h.data(), uh.data());
    EXPECT_TRUE(rounds_to(uh, uf));
    const Values du = bf16_values(nu, 5);
    cpu::upsample2x_backward(n, hh, ww, c, du.f.data(), dxf.data());
    cpu::upsample2x_backward(n, hh, ww, c, du.h.data(), dxh.data());
    EXPECT_TRUE(rounds_to(dxh, dxf));
    // Concat x with itself and split it back.
    const int64_t px = n * hh * ww;
    std::vector<float> cf(2 * nx), af2(nx), bf2(nx);
    std::vector<bf16> chh(2 * nx), ah2(nx), bh2(nx);
    cpu::concat_channels(px, c, c, x.f.data(), x.f.data(), cf.data());
    cpu::concat_channels(px, c, c, x.h.data(), x.h.data(), chh.data());
    EXPECT_TRUE(rounds_to(chh, cf));
    cpu::split_channels(px, c, c, chh.data(), ah2.data(), bh2.data());
    EXPECT_TRUE(rounds_to(ah2, x.f));
    EXPECT_TRUE(rounds_to(bh2, x.f));
  }
}

Tensor workspace(const Conv2dShape& s, ConvPass pass, bool bf16) {
  const int64_t bytes = cpu::conv2d_workspace_bytes(s, pass, bf16);
  return bytes > 0 ? Tensor::empty({bytes}, DType::u8) : Tensor();
}

// The three passes of a conv on f32 storage and on bf16 storage of the same bf16 values.
TEST(Bf16, ConvEqualsTheF32ConvOnTheSameValuesRounded) {
  for (const Conv2dShape& s :
       {Conv2dShape{2, 9, 7, 3, 5, 3}, Conv2dShape{1, 16, 12, 8, 8, 3}, Conv2dShape{1, 6, 10, 16, 1, 1},
        Conv2dShape{1, 8, 8, 1, 8, 3}, Conv2dShape{3, 5, 5, 24, 40, 3}}) {
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k
                                      << " R=" << s.r);
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k;
    const Values x = bf16_values(nx, 6), dy = bf16_values(ny, 7), ymask = bf16_values(ny, 8);
    const std::vector<float> w = test::random_vector(s.weight_numel(), 9, -0.5f, 0.5f);
    const std::vector<float> b = test::random_vector(s.k, 10);
    for (ConvMath math : {ConvMath::bf16, ConvMath::f32}) {
      std::vector<float> yf(ny), dxf(nx), dwf(s.weight_numel()), dbf(s.k), dwh(s.weight_numel()), dbh(s.k);
      std::vector<bf16> yh(ny), dxh(nx);
      cpu::conv2d_forward(s, math, x.f.data(), w.data(), b.data(), true, yf.data(),
                          workspace(s, ConvPass::forward, false).raw());
      cpu::conv2d_forward(s, math, x.h.data(), w.data(), b.data(), true, yh.data(),
                          workspace(s, ConvPass::forward, true).raw());
      EXPECT_TRUE(rounds_to(yh, yf));
      cpu::conv2d_backward_data(s, math, dy.f.data(), ymask.f.data(), w.data(), dxf.data(),
                                workspace(s, ConvPass::backward_data, false).raw());
      cpu::conv2d_backward_data(s, math, dy.h.data(), ymask.h.data(), w.data(), dxh.data(),
                                workspace(s, ConvPass::backward_data, true).raw());
      EXPECT_TRUE(rounds_to(dxh, dxf));
      cpu::conv2d_backward_weight(s, math, x.f.data(), dy.f.data(), ymask.f.data(), dwf.data(), dbf.data(),
                                  workspace(s, ConvPass::backward_weight, false).raw());
      cpu::conv2d_backward_weight(s, math, x.h.data(), dy.h.data(), ymask.h.data(), dwh.data(), dbh.data(),
                                  workspace(s, ConvPass::backward_weight, true).raw());
      EXPECT_EQ(dwf, dwh);
      EXPECT_EQ(dbf, dbh);
    }
  }
}

// Forward of one output element in double from operands rounded to `math`.
double ref_conv_at(const Conv2dShape& s, ConvMath math, const std::vector<float>& x, const std::vector<float>& w,
                   int64_t n, int64_t i, int64_t j, int64_t k) {
  double acc = 0;
  const int64_t pad = s.pad();
  for (int64_t r = 0; r < s.r; ++r)
    for (int64_t q = 0; q < s.r; ++q)
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t ii = i + r - pad, jj = j + q - pad;
        if (ii < 0 || ii >= s.h || jj < 0 || jj >= s.w) continue;
        acc += static_cast<double>(round_operand(math, x[((n * s.h + ii) * s.w + jj) * s.c + c])) *
               round_operand(math, w[((k * s.r + r) * s.r + q) * s.c + c]);
      }
  return acc;
}

// With f32 storage, ConvMath bf16/tf32 rounds the operands where the CUDA kernels run tensor-core
// GEMMs (8 channels in and out), and computes exactly where they run direct kernels (1 channel in).
TEST(Bf16, ConvRoundsOperandsWhereTheGpuGemmsDo) {
  for (const Conv2dShape& s : {Conv2dShape{1, 6, 7, 8, 8, 3}, Conv2dShape{1, 6, 7, 1, 8, 3}}) {
    const bool gemm = cuda::conv_layout::rounds_operands(s, ConvPass::forward);
    EXPECT_EQ(gemm, s.c == 8);
    const std::vector<float> x = test::random_vector(s.pixels() * s.c, 11);
    const std::vector<float> w = test::random_vector(s.weight_numel(), 12);
    for (ConvMath math : {ConvMath::bf16, ConvMath::tf32}) {
      std::vector<float> y(s.pixels() * s.k);
      cpu::conv2d_forward(s, math, x.data(), w.data(), nullptr, false, y.data(),
                          workspace(s, ConvPass::forward, false).raw());
      double worst_rounded = 0, worst_exact = 0;
      for (int64_t i = 0; i < s.h; ++i)
        for (int64_t j = 0; j < s.w; ++j)
          for (int64_t k = 0; k < s.k; ++k) {
            const float got = y[(i * s.w + j) * s.k + k];
            worst_rounded = std::max(worst_rounded, std::fabs(got - ref_conv_at(s, math, x, w, 0, i, j, k)));
            worst_exact = std::max(worst_exact, std::fabs(got - ref_conv_at(s, ConvMath::f32, x, w, 0, i, j, k)));
          }
      // fp32 sums of 72 products differ from double by ~1e-6; rounded operands move results by ~1e-3.
      if (gemm) {
        EXPECT_LT(worst_rounded, 1e-5) << precision_name(math);
        EXPECT_GT(worst_exact, 1e-4) << precision_name(math);
      } else {
        EXPECT_LT(worst_exact, 1e-5) << precision_name(math);
      }
    }
  }
}

// A few steps of the UNet on the CPU in one precision; returns the losses and the final weights.
struct TrainRun {
  std::vector<float> losses;
  std::vector<float> weights;
  DType logits_type = DType::f32;
};
TrainRun train_steps(ConvMath math, int steps) {
  ExecConfig exec;
  exec.math = math;
  UNetConfig mc;
  mc.levels = 3;
  mc.base = 4;
  UNet net(mc, 21, Device::cpu());
  net.set_exec(exec);
  Optimizer opt(OptimizerConfig{OptimizerKind::adam, 3e-3f}, net.param_vars());
  TrainRun r;
  const int64_t b = 2, h = 16, w = 20;
  for (int step = 0; step < steps; ++step) {
    const Tensor data = Tensor::from_vector({b, h, w, 1}, test::random_vector(b * h * w, 100 + step));
    Tensor label = Tensor::zeros({b, h, w}, DType::u8);
    for (int64_t i = step % 3; i < b * h * w; i += 5) label.data<uint8_t>()[i] = 1;
    Tape tape;
    const Var loss = step_forward(tape, net, data, label, 2.0f, 1);
    r.losses.push_back(scalar_value(loss->value));
    step_backward(tape, loss, nullptr, opt, 3e-3f);
  }
  r.logits_type = net.forward(nullptr, make_var(Tensor::zeros({1, h, w, 1})))->value.dtype();
  for (const Var& p : net.param_vars()) {
    const std::vector<float> v = p->value.to_vector();
    r.weights.insert(r.weights.end(), v.begin(), v.end());
  }
  return r;
}

TEST(Bf16, UNetTrainsInBf16TrackingFp32AndRerunsBitIdentically) {
  const TrainRun f = train_steps(ConvMath::f32, 12), h = train_steps(ConvMath::bf16, 12),
                 h2 = train_steps(ConvMath::bf16, 12);
  EXPECT_EQ(f.logits_type, DType::f32);
  EXPECT_EQ(h.logits_type, DType::bf16);
  ASSERT_EQ(f.losses.size(), h.losses.size());
  for (size_t i = 0; i < f.losses.size(); ++i) {
    EXPECT_NEAR(h.losses[i], f.losses[i], 0.02 * f.losses[i] + 1e-3) << "step " << i;
  }
  EXPECT_LT(h.losses.back(), h.losses.front());
  EXPECT_NE(h.weights, f.weights);   // rounding happened
  EXPECT_EQ(h.weights, h2.weights);  // and deterministically
  EXPECT_EQ(h.losses, h2.losses);
}

TEST(Bf16, PlannedActivationMemoryHalves) {
  PlanRequest r;
  r.model.levels = 5;
  r.height = r.width = 512;
  r.device = Device::cpu();
  MemoryPlanner f32(r);
  r.math = ConvMath::bf16;
  MemoryPlanner h(r);
  const double per_f32 = static_cast<double>(f32.step_peak_bytes(2) - f32.step_peak_bytes(1));
  const double per_h = static_cast<double>(h.step_peak_bytes(2) - h.step_peak_bytes(1));
  EXPECT_LT(per_h, 0.55 * per_f32);
  EXPECT_GT(per_h, 0.45 * per_f32);
}

}  // namespace
}  // namespace seis
