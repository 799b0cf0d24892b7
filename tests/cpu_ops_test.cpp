// CPU kernels other than conv2d: maxpool, upsample, concat, activations, BCE (also masked by
// padding traces, kernel and op), metrics and the optimizer updates, against double references
// and finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/activation.h"
#include "kernels/bce_loss.h"
#include "kernels/concat.h"
#include "kernels/metrics.h"
#include "kernels/optimizer_update.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#include "test_util.h"

namespace seis {
namespace {

using test::all_close;
using test::random_vector;

// Central differences in double of loss(v) with respect to each element of v.
std::vector<float> finite_differences(std::vector<double>& v, const std::function<double()>& loss, double eps = 1e-5) {
  std::vector<float> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + eps;
    const double up = loss();
    v[i] = keep - eps;
    const double down = loss();
    v[i] = keep;
    d[i] = static_cast<float>((up - down) / (2 * eps));
  }
  return d;
}

double dot(const std::vector<double>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---- maxpool -------------------------------------------------------------------------------

// Double reference: y and the index into x of the first maximum, per output.
void ref_maxpool(int64_t n, int64_t h, int64_t w, int64_t c, const std::vector<double>& x, std::vector<double>& y,
                 std::vector<int64_t>& from) {
  const int64_t oh = h / 2, ow = w / 2;
  y.assign(static_cast<size_t>(n * oh * ow * c), 0);
  from.assign(y.size(), -1);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t ch = 0; ch < c; ++ch) {
          const int64_t o = ((b * oh + i) * ow + j) * c + ch;
          for (int64_t q = 0; q < 4; ++q) {
            const int64_t xi = ((b * h + 2 * i + q / 2) * w + 2 * j + q % 2) * c + ch;
            if (from[o] < 0 || x[xi] > y[o]) {
              y[o] = x[xi];
              from[o] = xi;
            }
          }
        }
}

// The 2-bit argmax of output o (flat NHWC index) of an [n, h, w, c] input (kernels/pool.h's layout).
int argmax_of(const std::vector<uint8_t>& arg, int64_t h, int64_t w, int64_t c, int64_t o) {
  const int64_t per_row = (w / 2) * c, r = o / per_row, k = o % per_row;
  (void)h;
  return (arg[static_cast<size_t>(r * maxpool2d_argmax_row_bytes(w, c) + k / 4)] >> (2 * (k % 4))) & 3;
}

TEST(CpuMaxpool, ForwardAndBackwardMatchReferenceOnOddShapes) {
  struct S {
    int64_t n, h, w, c;
  };
  uint64_t seed = 10;
  for (const S& s : {S{2, 5, 7, 3}, S{1, 3, 1, 1}, S{2, 4, 6, 1}, S{1, 7, 5, 9}, S{2, 2, 2, 5}}) {
    const int64_t oh = s.h / 2, ow = s.w / 2, ny = s.n * oh * ow * s.c, nx = s.n * s.h * s.w * s.c;
    const std::vector<float> x = random_vector(nx, seed += 3);
    const std::vector<float> g = random_vector(ny, seed + 1);
    std::vector<float> y(static_cast<size_t>(ny), NAN), dx(static_cast<size_t>(nx), NAN);
    const int64_t arg_bytes = maxpool2d_argmax_bytes(s.n, s.h, s.w, s.c);
    EXPECT_EQ(arg_bytes, s.n * oh * ((ow * s.c + 3) / 4));
    std::vector<uint8_t> arg(static_cast<size_t>(arg_bytes), 255);
    cpu::maxpool2d_forward(s.n, s.h, s.w, s.c, x.data(), y.data(), arg.data());
    cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), arg.data(), dx.data(), false);
    // Accumulating adds exactly that dx to the gradient already there.
    const std::vector<float> base = random_vector(nx, seed + 2);
    std::vector<float> acc(base);
    cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), arg.data(), acc.data(), true);
    for (int64_t i = 0; i < nx; ++i) {
      const size_t k = static_cast<size_t>(i);
      EXPECT_EQ(base[k] + dx[k], acc[k]) << "accumulated dx " << i;
    }

    std::vector<double> xd(x.begin(), x.end()), yd;
    std::vector<int64_t> from;
    ref_maxpool(s.n, s.h, s.w, s.c, xd, yd, from);
    const std::vector<float> yr(yd.begin(), yd.end());
    EXPECT_TRUE(all_close(y.data(), yr.data(), ny, 0, 0, 0)) << "y, N" << s.n << " H" << s.h << " W" << s.w;
    for (int64_t o = 0; o < ny; ++o) {
      // argmax must point at the element that won
      const int64_t ch = o % s.c, j = (o / s.c) % ow, i = (o / s.c / ow) % oh, b = o / s.c / ow / oh;
      const int a = argmax_of(arg, s.h, s.w, s.c, o);
      const int64_t xi = ((b * s.h + 2 * i + a / 2) * s.w + 2 * j + a % 2) * s.c + ch;
      EXPECT_EQ(xi, from[o]) << "argmax of output " << o;
    }
    // The padding bits of each row's last byte are zero (rows are written apart).
    const int64_t rb = maxpool2d_argmax_row_bytes(s.w, s.c), used = ow * s.c;
    for (int64_t r = 0; r < s.n * oh && used % 4 != 0; ++r) {
      EXPECT_EQ(0, arg[static_cast<size_t>(r * rb + rb - 1)] >> (2 * (used % 4))) << "row " << r;
    }
    // loss = sum(y * g): FD in double (inputs are distinct, so no ties).
    const std::vector<float> fd = finite_differences(xd, [&] {
      std::vector<double> yy;
      std::vector<int64_t> ff;
      ref_maxpool(s.n, s.h, s.w, s.c, xd, yy, ff);
      return dot(yy, g);
    });
    EXPECT_TRUE(all_close(dx.data(), fd.data(), nx, 1e-6, 1e-6)) << "dx, N" << s.n << " H" << s.h << " W" << s.w;
  }
}

TEST(CpuMaxpool, TiesTakeTheFirstMaximum) {
  // One 2x2 window (C = 4 channels), each channel a different tie pattern, in window order
  // (0,0), (0,1), (1,0), (1,1).
  const float win[4][4] = {{1, 1, 1, 1}, {0, 2, 2, 2}, {0, 1, 3, 3}, {-1, -1, -1, -0.5f}};
  const uint8_t expect_arg[4] = {0, 1, 2, 3};
  std::vector<float> x(16);
  for (int q = 0; q < 4; ++q)
    for (int ch = 0; ch < 4; ++ch) x[q * 4 + ch] = win[ch][q];
  std::vector<float> y(4);
  std::vector<uint8_t> arg(1);  // four 2-bit positions
  cpu::maxpool2d_forward(1, 2, 2, 4, x.data(), y.data(), arg.data());
  EXPECT_EQ(0 | 1 << 2 | 2 << 4 | 3 << 6, int{arg[0]});
  const float expect_y[4] = {1, 2, 3, -0.5f};
  for (int ch = 0; ch < 4; ++ch) {
    EXPECT_EQ(expect_y[ch], y[ch]) << "channel " << ch;
  }
  // Backward routes each gradient to exactly the first maximum only.
  const std::vector<float> dy = {10, 20, 30, 40};
  std::vector<float> dx(16, NAN);
  cpu::maxpool2d_backward(1, 2, 2, 4, dy.data(), arg.data(), dx.data(), false);
  for (int q = 0; q < 4; ++q)
    for (int ch = 0; ch < 4; ++ch)
      EXPECT_EQ(q == expect_arg[ch] ? dy[ch] : 0.0f, dx[q * 4 + ch]) << "window position " << q << " channel " << ch;
}

// ---- upsample -------------------------------------------------------------------------------

TEST(CpuUpsample, ForwardCopiesAndBackwardMatchesFiniteDifferences) {
  const int64_t n = 2, h = 3, w = 5, c = 3, nx = n * h * w * c, ny = 4 * nx;
  const std::vector<float> x = random_vector(nx, 21), g = random_vector(ny, 22);
  std::vector<float> y(ny, NAN), dx(nx, NAN);
  cpu::upsample2x_forward(n, h, w, c, x.data(), y.data());
  cpu::upsample2x_backward(n, h, w, c, g.data(), dx.data());
  auto ref_up = [&](const std::vector<double>& xs) {
    std::vector<double> ys(ny);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < 2 * h; ++i)
        for (int64_t j = 0; j < 2 * w; ++j)
          for (int64_t ch = 0; ch < c; ++ch)
            ys[((b * 2 * h + i) * 2 * w + j) * c + ch] = xs[((b * h + i / 2) * w + j / 2) * c + ch];
    return ys;
  };
  std::vector<double> xd(x.begin(), x.end());
  const std::vector<double> yd = ref_up(xd);
  const std::vector<float> yr(yd.begin(), yd.end());
  EXPECT_TRUE(all_close(y.data(), yr.data(), ny, 0, 0, 0)) << "upsample forward";
  const std::vector<float> fd = finite_differences(xd, [&] { return dot(ref_up(xd), g); });
  EXPECT_TRUE(all_close(dx.data(), fd.data(), nx, 1e-6, 1e-6)) << "upsample backward";
}

// ---- concat -------------------------------------------------------------------------------

TEST(CpuConcat, ConcatPlacesChannelsAndSplitInvertsIt) {
  const int64_t pixels = 35, ca = 3, cb = 5;
  const std::vector<float> a = random_vector(pixels * ca, 31), b = random_vector(pixels * cb, 32);
  std::vector<float> y(pixels * (ca + cb), NAN), a2(a.size(), NAN), b2(b.size(), NAN);
  cpu::concat_channels(pixels, ca, cb, a.data(), b.data(), y.data());
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t ch = 0; ch < ca; ++ch) ASSERT_EQ(a[p * ca + ch], y[p * (ca + cb) + ch]) << "pixel " << p;
    for (int64_t ch = 0; ch < cb; ++ch) ASSERT_EQ(b[p * cb + ch], y[p * (ca + cb) + ca + ch]) << "pixel " << p;
  }
  cpu::split_channels(pixels, ca, cb, y.data(), a2.data(), b2.data());
  EXPECT_EQ(0, std::memcmp(a.data(), a2.data(), a.size() * sizeof(float))) << "split part a";
  EXPECT_EQ(0, std::memcmp(b.data(), b2.data(), b.size() * sizeof(float))) << "split part b";
}

// ---- activations ----------------------------------------------------------------------------

TEST(CpuActivation, ReluSigmoidMatchReference) {
  const int64_t n = 1001;
  std::vector<float> x = random_vector(n, 41, -3, 3);
  x[0] = 0.0f;
  x[1] = -100.0f;
  x[2] = 100.0f;
  const std::vector<float> g = random_vector(n, 42);
  std::vector<float> y(n, NAN), dx(n, NAN), s(n, NAN);
  cpu::relu_forward(n, x.data(), y.data());
  cpu::relu_backward(n, y.data(), g.data(), dx.data());
  cpu::sigmoid_forward(n, x.data(), s.data());
  std::vector<float> ry(n), rdx(n), rs(n);
  for (int64_t i = 0; i < n; ++i) {
    ry[i] = x[i] > 0 ? x[i] : 0.0f;
    rdx[i] = x[i] > 0 ? g[i] : 0.0f;  // d relu / dx, the subgradient 0 at 0 as PyTorch
    rs[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(x[i]))));
  }
  EXPECT_TRUE(all_close(y.data(), ry.data(), n, 0, 0, 0)) << "relu";
  EXPECT_TRUE(all_close(dx.data(), rdx.data(), n, 0, 0, 0)) << "relu backward";
  EXPECT_TRUE(all_close(s.data(), rs.data(), n, 1e-7, 2e-7)) << "sigmoid";
}

// ---- BCE with logits ----------------------------------------------------------------------

double ref_bce_mean(const std::vector<double>& x, const std::vector<uint8_t>& t, double pw) {
  double sum = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-x[i]));
    // -log s and -log(1 - s), stable for |x| up to ~700
    const double neg_log_s = std::log1p(std::exp(-std::fabs(x[i]))) + std::max(-x[i], 0.0);
    const double neg_log_1ms = neg_log_s + x[i];
    (void)s;
    sum += t[i] ? pw * neg_log_s : neg_log_1ms;
  }
  return sum / static_cast<double>(x.size());
}

TEST(CpuBce, ForwardMatchesReferenceAndBackwardMatchesFiniteDifferences) {
  const int64_t n = 40000;  // several reduction blocks
  std::vector<float> x = random_vector(n, 51, -8, 8);
  x[0] = 60.0f;  // saturated logits with either label
  x[1] = -60.0f;
  x[2] = 60.0f;
  x[3] = -60.0f;
  std::vector<uint8_t> t(n);
  const std::vector<float> u = random_vector(n, 52, 0, 1);
  for (int64_t i = 0; i < n; ++i) t[i] = u[i] < 0.1f;
  t[0] = 1, t[1] = 0, t[2] = 0, t[3] = 1;
  std::vector<double> xd(x.begin(), x.end());
  for (float pw : {1.0f, 3.0f}) {
    float loss = NAN;
    cpu::bce_with_logits_forward(n, x.data(), t.data(), pw, &loss);
    const double ref = ref_bce_mean(xd, t, pw);
    EXPECT_NEAR(ref, loss, 1e-6 * std::fabs(ref)) << "pos_weight " << pw;
    float loss2 = NAN;
    cpu::bce_with_logits_forward(n, x.data(), t.data(), pw, &loss2);
    EXPECT_EQ(0, std::memcmp(&loss, &loss2, sizeof(float))) << "forward not deterministic";
  }
  // Backward on a small set against FD of the double mean; grad_scale = dloss / n_total.
  const int64_t m = 64;
  std::vector<double> xs(xd.begin(), xd.begin() + m);
  const std::vector<uint8_t> ts(t.begin(), t.begin() + m);
  const std::vector<float> xsf(x.begin(), x.begin() + m);
  for (float pw : {1.0f, 3.0f}) {
    for (float dloss : {1.0f, 0.5f}) {
      std::vector<float> dx(m, NAN);
      const float scale = dloss / static_cast<float>(m);
      cpu::bce_with_logits_backward(m, xsf.data(), ts.data(), pw, &scale, dx.data());
      std::vector<float> fd = finite_differences(
          xs, [&] { return ref_bce_mean(xs, ts, pw); }, 1e-4);
      for (float& v : fd) v *= dloss;
      EXPECT_TRUE(all_close(dx.data(), fd.data(), m, 1e-7, 1e-5)) << "pos_weight " << pw << " dloss " << dloss;
    }
  }
}

// ---- BCE masked by padding traces ------------------------------------------------------------

// A batch [N, H, W] with padding traces: trace_valid [N, W] (gather 1 is all real, the others not),
// and the real columns gathered into [N, H, W_real] per gather (the unmasked reference's input).
struct PaddedBatch {
  int64_t n = 3, h = 5, w = 7;
  std::vector<uint8_t> valid;
  int64_t real_traces() const {
    int64_t r = 0;
    for (uint8_t v : valid) r += v;
    return r;
  }
};

PaddedBatch padded_batch() {
  PaddedBatch b;
  b.valid = {1, 1, 1, 0, 0, 0, 0,   // 3 real traces then padding
             1, 1, 1, 1, 1, 1, 1,   // all real
             1, 0, 1, 1, 0, 1, 0};  // padding between real traces (any pattern is allowed)
  return b;
}

// Elements of x [N, H, W] on real traces, in order.
template <typename T>
std::vector<T> real_elements(const PaddedBatch& b, const std::vector<T>& x) {
  std::vector<T> r;
  for (int64_t i = 0; i < b.n * b.h * b.w; ++i) {
    if (b.valid[static_cast<size_t>(i / (b.h * b.w) * b.w + i % b.w)]) r.push_back(x[static_cast<size_t>(i)]);
  }
  return r;
}

TEST(CpuBceMasked, ForwardIsTheMeanOverRealTracesAndBackwardMatchesFiniteDifferences) {
  const PaddedBatch b = padded_batch();
  const int64_t n = b.n * b.h * b.w;
  std::vector<float> x = random_vector(n, 71, -6, 6);
  std::vector<uint8_t> t(static_cast<size_t>(n));
  const std::vector<float> u = random_vector(n, 72, 0, 1);
  for (int64_t i = 0; i < n; ++i) t[i] = u[i] < 0.3f;
  const int64_t real = b.real_traces() * b.h;
  std::vector<double> xd(x.begin(), x.end());
  // The reference: the double mean over the real elements only, whatever the padding holds.
  auto ref = [&](double pw) {
    std::vector<double> xr;
    std::vector<uint8_t> tr = real_elements(b, t);
    for (double v : real_elements(b, xd)) xr.push_back(v);
    return ref_bce_mean(xr, tr, pw) * static_cast<double>(xr.size()) / static_cast<double>(real);
  };
  for (float pw : {1.0f, 3.0f}) {
    float loss = NAN;
    cpu::bce_with_logits_masked_forward(n, x.data(), t.data(), b.valid.data(), b.h, b.w, pw, real, &loss);
    EXPECT_NEAR(ref(pw), loss, 1e-6 * std::fabs(ref(pw))) << "pos_weight " << pw;
    // Padding logits and labels change nothing.
    std::vector<float> x2 = x;
    std::vector<uint8_t> t2 = t;
    for (int64_t i = 0; i < n; ++i) {
      if (!b.valid[static_cast<size_t>(i / (b.h * b.w) * b.w + i % b.w)]) x2[i] = 50.0f, t2[i] = 0;
    }
    float loss2 = NAN;
    cpu::bce_with_logits_masked_forward(n, x2.data(), t2.data(), b.valid.data(), b.h, b.w, pw, real, &loss2);
    EXPECT_EQ(0, std::memcmp(&loss, &loss2, sizeof(float))) << "padding changed the loss: " << loss << " vs " << loss2;
    for (float dloss : {1.0f, 0.5f}) {
      std::vector<float> dx(static_cast<size_t>(n), NAN);
      const float scale = dloss / static_cast<float>(real);
      cpu::bce_with_logits_masked_backward(n, x.data(), t.data(), b.valid.data(), b.h, b.w, pw, &scale, dx.data());
      std::vector<float> fd = finite_differences(
          xd, [&] { return ref(pw); }, 1e-4);
      for (float& v : fd) v *= dloss;
      EXPECT_TRUE(all_close(dx.data(), fd.data(), n, 1e-7, 1e-5)) << "pos_weight " << pw << " dloss " << dloss;
      for (int64_t i = 0; i < n; ++i) {
        if (!b.valid[static_cast<size_t>(i / (b.h * b.w) * b.w + i % b.w)]) {
          ASSERT_EQ(0.0f, dx[i]) << "gradient on padding element " << i;
        }
      }
    }
  }
}

TEST(CpuBceMasked, AllRealMaskGivesTheUnmaskedBitsAndMetricsSkipPadding) {
  // Several reduction blocks: [4, 97, 131] = 50828 elements.
  const int64_t n_g = 4, h = 97, w = 131, n = n_g * h * w;
  const std::vector<float> x = random_vector(n, 81, -5, 5), u = random_vector(n, 82, 0, 1);
  std::vector<uint8_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = u[i] < 0.2f;
  const std::vector<uint8_t> ones(static_cast<size_t>(n_g * w), 1);
  float a = NAN, m = NAN;
  cpu::bce_with_logits_forward(n, x.data(), t.data(), 2.0f, &a);
  cpu::bce_with_logits_masked_forward(n, x.data(), t.data(), ones.data(), h, w, 2.0f, n, &m);
  EXPECT_EQ(0, std::memcmp(&a, &m, sizeof(float))) << a << " vs " << m;
  std::vector<float> ga(static_cast<size_t>(n)), gm(static_cast<size_t>(n));
  const float scale = 1e-3f;
  cpu::bce_with_logits_backward(n, x.data(), t.data(), 2.0f, &scale, ga.data());
  cpu::bce_with_logits_masked_backward(n, x.data(), t.data(), ones.data(), h, w, 2.0f, &scale, gm.data());
  EXPECT_EQ(0, std::memcmp(ga.data(), gm.data(), ga.size() * sizeof(float))) << "gradients differ";

  // Confusion counts over real traces equal the unmasked counts of the real elements alone.
  PaddedBatch pb;
  pb.n = n_g;
  pb.h = h;
  pb.w = w;
  const std::vector<float> v = random_vector(n_g * w, 83, 0, 1);
  for (float f : v) pb.valid.push_back(f < 0.6f);
  const std::vector<float> xr = real_elements(pb, x);
  const std::vector<uint8_t> tr = real_elements(pb, t);
  int64_t want[3] = {-1, -1, -1}, got[3] = {-1, -1, -1};
  cpu::confusion_counts(static_cast<int64_t>(xr.size()), xr.data(), tr.data(), 0.3f, want);
  cpu::confusion_counts_masked(n, x.data(), t.data(), pb.valid.data(), h, w, 0.3f, got);
  for (int q = 0; q < 3; ++q) EXPECT_EQ(want[q], got[q]) << "count " << q;
  int64_t all[3];
  cpu::confusion_counts(n, x.data(), t.data(), 0.3f, all);
  EXPECT_GT(all[0] + all[1] + all[2], got[0] + got[1] + got[2]) << "padding was not left out";
}

TEST(OpsBceMasked, LossAndGradientsEqualTheUnmaskedOpOnTheRealColumns) {
  // Gathers whose first wr columns are real (a converted SEG-Y's padding is at the end): the masked
  // op on [N, H, W] against the unmasked op on the [N, H, wr] real part.
  const int64_t n = 2, h = 9, w = 11, wr = 6;
  const std::vector<float> x = random_vector(n * h * w, 91, -4, 4), u = random_vector(n * h * w, 92, 0, 1);
  Tensor logits = Tensor::empty({n, h, w, 1}), labels = Tensor::empty({n, h, w}, DType::u8);
  Tensor logits_r = Tensor::empty({n, h, wr, 1}), labels_r = Tensor::empty({n, h, wr}, DType::u8);
  Tensor valid = Tensor::zeros({n, w}, DType::u8);
  for (int64_t i = 0; i < n * h * w; ++i) {
    logits.data<float>()[i] = x[i];
    labels.data<uint8_t>()[i] = u[i] < 0.25f;
  }
  for (int64_t g = 0; g < n; ++g) {
    for (int64_t j = 0; j < wr; ++j) valid.data<uint8_t>()[g * w + j] = 1;
    for (int64_t r = 0; r < h; ++r) {
      for (int64_t j = 0; j < wr; ++j) {
        logits_r.data<float>()[(g * h + r) * wr + j] = logits.data<float>()[(g * h + r) * w + j];
        labels_r.data<uint8_t>()[(g * h + r) * wr + j] = labels.data<uint8_t>()[(g * h + r) * w + j];
      }
    }
  }
  EXPECT_EQ(n * h * wr, counted_elements(labels, valid));
  EXPECT_EQ(n * h * w, counted_elements(labels, Tensor()));
  for (float pw : {1.0f, 2.5f}) {
    Tape tape, tape_r;
    Var xm = make_var(logits.clone(), true), xr = make_var(logits_r.clone(), true);
    const Var lm = bce_with_logits(&tape, xm, labels, pw, 0, valid);
    const Var lr = bce_with_logits(&tape_r, xr, labels_r, pw);
    EXPECT_NEAR(scalar_value(lr->value), scalar_value(lm->value), 1e-6 * std::fabs(scalar_value(lr->value)))
        << "pos_weight " << pw;
    tape.backward(lm);
    tape_r.backward(lr);
    const float* gm = xm->grad.data<float>();
    const float* gr = xr->grad.data<float>();
    for (int64_t g = 0; g < n; ++g) {
      for (int64_t r = 0; r < h; ++r) {
        for (int64_t j = 0; j < w; ++j) {
          const float got = gm[(g * h + r) * w + j];
          const float want = j < wr ? gr[(g * h + r) * wr + j] : 0.0f;
          ASSERT_NEAR(want, got, 1e-6f * std::fabs(want) + 1e-9f) << "gather " << g << " row " << r << " trace " << j;
        }
      }
    }
    // A global count (a rank's share of a batch): the loss scales by counted / mean_over.
    const Var half = bce_with_logits(nullptr, make_var(logits), labels, pw, 2 * n * h * wr, valid);
    EXPECT_NEAR(scalar_value(lm->value) / 2, scalar_value(half->value), 1e-6 * std::fabs(scalar_value(lm->value)));
  }
  const auto cm = confusion_counts(logits, labels, 0.5f, valid);
  const auto cr = confusion_counts(logits_r, labels_r, 0.5f);
  EXPECT_EQ(cr, cm) << "confusion counts over the real columns";
}

// ---- metrics ------------------------------------------------------------------------------

TEST(CpuMetrics, ConfusionCountsOfAHandmadeCase) {
  // threshold logit 0 (probability 0.5): >= counts as positive.
  const std::vector<float> logits = {2.0f, 0.0f, -0.1f, -3.0f, 1.0f, -1.0f, 5.0f, -0.0f};
  const std::vector<uint8_t> labels = {1, 1, 1, 0, 0, 0, 1, 0};
  // pred: 1 1 0 0 1 0 1 1 -> TP = 3 (0,1,6), FP = 2 (4,7), FN = 1 (2)
  int64_t counts[3] = {-1, -1, -1};
  cpu::confusion_counts(8, logits.data(), labels.data(), 0.0f, counts);
  EXPECT_EQ(3, counts[0]) << "TP";
  EXPECT_EQ(2, counts[1]) << "FP";
  EXPECT_EQ(1, counts[2]) << "FN";
  // A higher threshold (probability 0.8 -> logit log 4) turns 0, 1, 4, 7 negative.
  cpu::confusion_counts(8, logits.data(), labels.data(), std::log(4.0f), counts);
  EXPECT_EQ(2, counts[0]) << "TP at 0.8";
  EXPECT_EQ(0, counts[1]) << "FP at 0.8";
  EXPECT_EQ(2, counts[2]) << "FN at 0.8";
}

TEST(CpuMetrics, LargeInputCountsMatchSerialLoop) {
  const int64_t n = 300001;
  const std::vector<float> x = random_vector(n, 61, -2, 2), u = random_vector(n, 62, 0, 1);
  std::vector<uint8_t> t(n);
  int64_t want[3] = {0, 0, 0};
  for (int64_t i = 0; i < n; ++i) {
    t[i] = u[i] < 0.3f;
    const bool p = x[i] >= 0.25f;
    want[0] += p && t[i];
    want[1] += p && !t[i];
    want[2] += !p && t[i];
  }
  int64_t got[3];
  cpu::confusion_counts(n, x.data(), t.data(), 0.25f, got);
  for (int q = 0; q < 3; ++q) EXPECT_EQ(want[q], got[q]) << "count " << q;
}

// ---- optimizers ---------------------------------------------------------------------------

TEST(CpuOptimizer, SgdMatchesPyTorchFormulaForThreeSteps) {
  const int64_t n = 7;
  for (float momentum : {0.0f, 0.9f}) {
    for (float wd : {0.0f, 0.01f}) {
      std::vector<float> p = random_vector(n, 71), buf(n, NAN);
      std::vector<double> pr(p.begin(), p.end()), br(n, 0);
      SgdParams sp;
      sp.lr = 0.1f, sp.momentum = momentum, sp.weight_decay = wd;
      for (int step = 1; step <= 3; ++step) {
        const std::vector<float> g = random_vector(n, 80 + step);
        sp.first_step = step == 1;
        cpu::sgd_update(n, sp, p.data(), g.data(), momentum != 0 ? buf.data() : nullptr);
        for (int64_t i = 0; i < n; ++i) {
          double d = g[i] + double{wd} * pr[i];
          if (momentum != 0) {
            br[i] = step == 1 ? d : double{momentum} * br[i] + d;
            d = br[i];
          }
          pr[i] -= double{sp.lr} * d;
        }
        const std::vector<float> prf(pr.begin(), pr.end());
        EXPECT_TRUE(all_close(p.data(), prf.data(), n, 1e-6, 1e-6))
            << "step " << step << " momentum " << momentum << " wd " << wd;
      }
    }
  }
}

TEST(CpuOptimizer, AdamAndAdamWMatchPyTorchFormulaForThreeSteps) {
  const int64_t n = 9;
  for (bool decoupled : {false, true}) {
    for (float wd : {0.0f, 0.1f}) {
      AdamParams ap;
      ap.lr = 0.01f, ap.weight_decay = wd, ap.decoupled = decoupled;
      std::vector<float> p = random_vector(n, 91), m(n, 0.0f), v(n, 0.0f);
      std::vector<double> pr(p.begin(), p.end()), mr(n, 0), vr(n, 0);
      const double b1 = ap.beta1, b2 = ap.beta2, eps = ap.eps, lr = ap.lr;
      for (int step = 1; step <= 3; ++step) {
        const std::vector<float> g = random_vector(n, 100 + step, -0.1f, 0.1f);
        ap.step = step;
        cpu::adam_update(n, ap, p.data(), g.data(), m.data(), v.data());
        for (int64_t i = 0; i < n; ++i) {
          double gi = g[i];
          if (decoupled) {
            pr[i] *= 1.0 - lr * wd;
          } else {
            gi += wd * pr[i];
          }
          mr[i] = b1 * mr[i] + (1 - b1) * gi;
          vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
          const double m_hat = mr[i] / (1 - std::pow(b1, step)), v_hat = vr[i] / (1 - std::pow(b2, step));
          pr[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
        }
        const std::vector<float> prf(pr.begin(), pr.end()), mrf(mr.begin(), mr.end()), vrf(vr.begin(), vr.end());
        const char* name = decoupled ? "AdamW" : "Adam";
        EXPECT_TRUE(all_close(p.data(), prf.data(), n, 1e-6, 1e-5)) << name << " param, step " << step << " wd " << wd;
        EXPECT_TRUE(all_close(m.data(), mrf.data(), n, 1e-9, 1e-5)) << name << " m, step " << step << " wd " << wd;
        EXPECT_TRUE(all_close(v.data(), vrf.data(), n, 1e-12, 1e-5)) << name << " v, step " << step << " wd " << wd;
      }
    }
  }
}

}  // namespace
}  // namespace seis
