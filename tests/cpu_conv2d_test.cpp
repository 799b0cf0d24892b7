// CPU conv2d against a direct-loop double reference; its backward against double-precision central
// finite differences of that reference; determinism of every pass. Run as the CPU chooses (the direct
// 3x3 kernel where it has AVX2 with FMA or AVX-512) and, as cpu_conv2d_test_im2col, on the im2col
// path (SEIS_CPU_CONV=im2col, tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "conv_util.h"
#include "kernels/conv2d.h"
#include "test_util.h"

namespace seis {
namespace {

using test::all_close;
using test::random_vector;
using test::ref_pre;
using test::to_double;

std::string describe(const Conv2dShape& s, bool relu) {
  std::ostringstream o;
  o << "N" << s.n << " H" << s.h << " W" << s.w << " C" << s.c << " K" << s.k << " R" << s.r
    << (relu ? " relu" : " linear");
  return o.str();
}

// loss = sum(act(pre) * G), act = ReLU or identity.
double ref_loss(const Conv2dShape& s, bool relu, const std::vector<double>& x, const std::vector<double>& w,
                const std::vector<double>& b, const std::vector<double>& g) {
  const std::vector<double> y = ref_pre(s, x, w, b);
  double loss = 0;
  for (size_t i = 0; i < y.size(); ++i) loss += (relu ? std::max(y[i], 0.0) : y[i]) * g[i];
  return loss;
}

// Analytic gradients of ref_loss by direct loops in double (the reference for shapes too large for FD).
struct RefGrads {
  std::vector<double> dx, dw, db;
};
RefGrads ref_grads(const Conv2dShape& s, bool relu, const std::vector<double>& x, const std::vector<double>& w,
                   const std::vector<double>& b, const std::vector<double>& g) {
  const int64_t p = s.pad();
  std::vector<double> dpre = g;
  if (relu) {
    const std::vector<double> y = ref_pre(s, x, w, b);
    for (size_t i = 0; i < y.size(); ++i)
      if (y[i] <= 0) dpre[i] = 0;
  }
  RefGrads r{std::vector<double>(x.size()), std::vector<double>(w.size()), std::vector<double>(b.size())};
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t h = 0; h < s.h; ++h)
      for (int64_t q = 0; q < s.w; ++q)
        for (int64_t k = 0; k < s.k; ++k) {
          const double d = dpre[((n * s.h + h) * s.w + q) * s.k + k];
          r.db[k] += d;
          for (int64_t rr = 0; rr < s.r; ++rr)
            for (int64_t t = 0; t < s.r; ++t) {
              const int64_t hh = h + rr - p, ww = q + t - p;
              if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
              for (int64_t c = 0; c < s.c; ++c) {
                const int64_t xi = ((n * s.h + hh) * s.w + ww) * s.c + c, wi = ((k * s.r + rr) * s.r + t) * s.c + c;
                r.dx[xi] += d * w[wi];
                r.dw[wi] += d * x[xi];
              }
            }
        }
  return r;
}

// Central differences of ref_loss with respect to every element of v (one of x, w, b).
std::vector<float> finite_differences(const Conv2dShape& s, bool relu, std::vector<double>& x, std::vector<double>& w,
                                      std::vector<double>& b, const std::vector<double>& g, std::vector<double>& v) {
  const double eps = 1e-5;
  std::vector<float> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double keep = v[i];
    v[i] = keep + eps;
    const double up = ref_loss(s, relu, x, w, b, g);
    v[i] = keep - eps;
    const double down = ref_loss(s, relu, x, w, b, g);
    v[i] = keep;
    d[i] = static_cast<float>((up - down) / (2 * eps));
  }
  return d;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

// Inputs of one case, float (for the kernels) and double (for the reference).
struct Case {
  Conv2dShape s;
  bool relu;
  std::vector<float> x, w, b, g;
  Case(const Conv2dShape& shape, bool relu_, uint64_t seed) : s(shape), relu(relu_) {
    x = random_vector(s.pixels() * s.c, seed);
    w = random_vector(s.weight_numel(), seed + 1, -0.5f, 0.5f);
    b = random_vector(s.k, seed + 2, -0.2f, 0.2f);
    g = random_vector(s.pixels() * s.k, seed + 3);
  }
  std::vector<float> forward() const {
    std::vector<float> y(static_cast<size_t>(s.pixels() * s.k), NAN);
    test::cpu_conv_forward(s, x.data(), w.data(), b.data(), relu, y.data());
    return y;
  }
  // Tolerance of a float sum of `terms` products of magnitude about 1.
  static double atol(int64_t terms) { return 1e-6 * std::sqrt(static_cast<double>(terms)) + 1e-6; }
};

const Conv2dShape kSmallShapes[] = {
    // n, h, w, c, k, r
    {2, 5, 7, 3, 5, 3}, {2, 5, 7, 3, 5, 1}, {1, 3, 1, 1, 1, 3}, {2, 3, 1, 2, 3, 3},
    {2, 1, 1, 3, 2, 3}, {2, 6, 4, 1, 8, 3}, {1, 4, 5, 7, 1, 1}, {2, 2, 9, 5, 3, 3},
};

TEST(CpuConv2d, ForwardMatchesDirectReference) {
  uint64_t seed = 100;
  for (const Conv2dShape& s : kSmallShapes) {
    for (bool relu : {false, true}) {
      const Case t(s, relu, seed += 10);
      const std::vector<float> y = t.forward();
      std::vector<double> ref = ref_pre(s, to_double(t.x), to_double(t.w), to_double(t.b));
      if (relu)
        for (double& v : ref) v = std::max(v, 0.0);
      const std::vector<float> ref_f = to_float(ref);
      EXPECT_TRUE(
          all_close(y.data(), ref_f.data(), static_cast<int64_t>(y.size()), Case::atol(s.r * s.r * s.c), 1e-5, 1e-10))
          << describe(s, relu);
    }
  }
}

TEST(CpuConv2d, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 200;
  for (const Conv2dShape& s : kSmallShapes) {
    for (bool relu : {false, true}) {
      const Case t(s, relu, seed += 10);
      const std::vector<float> y = t.forward();
      const float* y_relu = relu ? y.data() : nullptr;
      std::vector<float> dx(t.x.size(), NAN), dw(t.w.size(), NAN), db(t.b.size(), NAN);
      test::cpu_conv_backward_data(s, t.g.data(), y_relu, t.w.data(), dx.data());
      test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), y_relu, dw.data(), db.data());

      std::vector<double> x = to_double(t.x), w = to_double(t.w), b = to_double(t.b), g = to_double(t.g);
      const std::vector<float> fd_x = finite_differences(s, relu, x, w, b, g, x);
      const std::vector<float> fd_w = finite_differences(s, relu, x, w, b, g, w);
      const std::vector<float> fd_b = finite_differences(s, relu, x, w, b, g, b);
      const double fd_tol = 1e-5;  // FD of a piecewise bilinear function in double: rounding only
      EXPECT_TRUE(all_close(dx.data(), fd_x.data(), static_cast<int64_t>(dx.size()),
                            Case::atol(s.r * s.r * s.k) + fd_tol, 1e-5, 1e-9))
          << "dx, " << describe(s, relu);
      EXPECT_TRUE(all_close(dw.data(), fd_w.data(), static_cast<int64_t>(dw.size()), Case::atol(s.pixels()) + fd_tol,
                            1e-5, 1e-9))
          << "dw, " << describe(s, relu);
      EXPECT_TRUE(all_close(db.data(), fd_b.data(), static_cast<int64_t>(db.size()), Case::atol(s.pixels()) + fd_tol,
                            1e-5, 1e-9))
          << "dbias, " << describe(s, relu);

      // The direct double reference used below for larger shapes agrees with the FD too.
      const RefGrads r = ref_grads(s, relu, x, w, b, g);
      const std::vector<float> rdw = to_float(r.dw);
      EXPECT_TRUE(all_close(rdw.data(), fd_w.data(), static_cast<int64_t>(rdw.size()), fd_tol, 1e-6, 1e-10))
          << "reference dw, " << describe(s, relu);
    }
  }
}

// Shapes with several chunks per image, several dw blocks, and rows wider than a chunk buffer.
TEST(CpuConv2d, LargerShapesMatchReference) {
  const Conv2dShape shapes[] = {
      {2, 37, 61, 8, 16, 3}, {3, 19, 33, 16, 8, 1}, {1, 3, 2000, 16, 5, 3}, {2, 24, 24, 1, 8, 3}, {4, 8, 8, 33, 17, 3},
  };
  uint64_t seed = 300;
  for (const Conv2dShape& s : shapes) {
    for (bool relu : {false, true}) {
      const Case t(s, relu, seed += 10);
      const std::vector<float> y = t.forward();
      std::vector<double> x = to_double(t.x), w = to_double(t.w), b = to_double(t.b), g = to_double(t.g);
      std::vector<double> ref = ref_pre(s, x, w, b);
      if (relu)
        for (double& v : ref) v = std::max(v, 0.0);
      const std::vector<float> ref_y = to_float(ref);
      EXPECT_TRUE(
          all_close(y.data(), ref_y.data(), static_cast<int64_t>(y.size()), Case::atol(s.r * s.r * s.c), 1e-5, 1e-10))
          << "y, " << describe(s, relu);

      const float* y_relu = relu ? y.data() : nullptr;
      std::vector<float> dx(t.x.size(), NAN), dw(t.w.size(), NAN), db(t.b.size(), NAN);
      test::cpu_conv_backward_data(s, t.g.data(), y_relu, t.w.data(), dx.data());
      test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), y_relu, dw.data(), db.data());
      const RefGrads r = ref_grads(s, relu, x, w, b, g);
      const std::vector<float> rdx = to_float(r.dx), rdw = to_float(r.dw), rdb = to_float(r.db);
      EXPECT_TRUE(
          all_close(dx.data(), rdx.data(), static_cast<int64_t>(dx.size()), Case::atol(s.r * s.r * s.k), 1e-5, 1e-10))
          << "dx, " << describe(s, relu);
      EXPECT_TRUE(all_close(dw.data(), rdw.data(), static_cast<int64_t>(dw.size()), 1e-6 * s.pixels(), 1e-5, 1e-10))
          << "dw, " << describe(s, relu);
      EXPECT_TRUE(all_close(db.data(), rdb.data(), static_cast<int64_t>(db.size()), 1e-6 * s.pixels(), 1e-5, 1e-10))
          << "dbias, " << describe(s, relu);
    }
  }
}

TEST(CpuConv2d, NullBiasMeansZeroBiasAndNullDbiasIsAllowed) {
  const Conv2dShape s{2, 5, 7, 3, 5, 3};
  Case t(s, false, 400);
  std::fill(t.b.begin(), t.b.end(), 0.0f);
  const std::vector<float> with_zero_bias = t.forward();
  std::vector<float> y(with_zero_bias.size(), NAN);
  test::cpu_conv_forward(s, t.x.data(), t.w.data(), nullptr, false, y.data());
  EXPECT_EQ(0, std::memcmp(y.data(), with_zero_bias.data(), y.size() * sizeof(float)));
  std::vector<float> dw(t.w.size(), NAN), dw_ref(t.w.size(), NAN), db(t.b.size());
  test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), nullptr, dw.data(), nullptr);
  test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), nullptr, dw_ref.data(), db.data());
  EXPECT_EQ(0, std::memcmp(dw.data(), dw_ref.data(), dw.size() * sizeof(float)));
}

int64_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  return -1;
}

TEST(CpuConv2d, EveryPassIsBitIdenticalAcrossRuns) {
  for (const Conv2dShape& s : {Conv2dShape{4, 64, 64, 8, 16, 3}, Conv2dShape{2, 32, 48, 24, 8, 1}}) {
    const Case t(s, true, 500);
    const std::vector<float> y = t.forward();
    std::vector<float> y2 = t.forward();
    EXPECT_EQ(-1, first_difference(y, y2)) << "forward, " << describe(s, true);
    std::vector<float> dx1(t.x.size()), dx2(t.x.size()), dw1(t.w.size()), dw2(t.w.size()), db1(t.b.size()),
        db2(t.b.size());
    test::cpu_conv_backward_data(s, t.g.data(), y.data(), t.w.data(), dx1.data());
    test::cpu_conv_backward_data(s, t.g.data(), y.data(), t.w.data(), dx2.data());
    EXPECT_EQ(-1, first_difference(dx1, dx2)) << "backward_data, " << describe(s, true);
    for (int run = 0; run < 3; ++run) {
      test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), y.data(), dw1.data(), db1.data());
      test::cpu_conv_backward_weight(s, t.x.data(), t.g.data(), y.data(), dw2.data(), db2.data());
      EXPECT_EQ(0, std::memcmp(dw1.data(), dw2.data(), dw1.size() * sizeof(float)))
          << "backward_weight dw first differs at " << first_difference(dw1, dw2) << ", " << describe(s, true);
      EXPECT_EQ(0, std::memcmp(db1.data(), db2.data(), db1.size() * sizeof(float)))
          << "backward_weight dbias first differs at " << first_difference(db1, db2) << ", " << describe(s, true);
    }
  }
}

}  // namespace
}  // namespace seis
