// The network over records of any size in overlapping windows (models/windowed_inference.h): the
// window layout, every row delivered once and in order, and stitching that gives the result of one
// whole window wherever the network's view does not reach a window edge.
#include "models/windowed_inference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/error.h"
#include "test_util.h"

namespace seis {
namespace {

TEST(WindowAxis, CoversTheAxisWithPositiveWeights) {
  for (int64_t n : {1, 5, 64, 100, 257, 1000}) {
    for (int64_t win : {1, 8, 64, 100}) {
      for (double overlap : {0.0, 0.25, 0.5, 0.75}) {
        const WindowAxis a = window_axis(n, win, overlap, 0.125);
        ASSERT_EQ(a.starts.front(), 0);
        ASSERT_EQ(a.starts.back() + a.size, n) << "the last window ends at n";
        std::vector<double> total(static_cast<size_t>(n), 0.0);
        for (size_t k = 0; k < a.starts.size(); ++k) {
          if (k > 0) {
            ASSERT_GT(a.starts[k], a.starts[k - 1]);
            ASSERT_LE(a.starts[k] - a.starts[k - 1], a.hop);
          }
          for (int64_t i = 0; i < a.size; ++i) total[static_cast<size_t>(a.starts[k] + i)] += a.weight(a.starts[k], i);
        }
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_GT(total[static_cast<size_t>(i)], 0.0) << "n " << n << " window " << win << " overlap " << overlap;
        }
      }
    }
  }
  const WindowAxis a = window_axis(1000, 100, 0.5, 0.125);
  EXPECT_EQ(a.hop, 50);
  EXPECT_EQ(a.blind, 13);            // round(12.5)
  EXPECT_EQ(a.weight(0, 0), 1.0f);   // the record's own start is not blinded
  EXPECT_EQ(a.weight(50, 0), 0.0f);  // a shared edge is
  EXPECT_EQ(a.weight(50, 12), 0.0f);
  EXPECT_GT(a.weight(50, 13), 0.0f);
  EXPECT_EQ(a.weight(50, 49), 1.0f);   // past the ramp
  EXPECT_EQ(a.weight(900, 99), 1.0f);  // the record's own end
}

struct RunResult {
  std::vector<float> prob;
  std::vector<int64_t> order;  // t0 of each sink call
};

RunResult run(const UNet& model, const WindowOptions& o, const std::vector<float>& x, int64_t T, int64_t W) {
  RunResult r;
  r.prob.assign(static_cast<size_t>(T * W), -1.0f);
  WindowedInference inf(model, o);
  int64_t next = 0;
  inf.run(
      T, W,
      [&](int64_t t0, int64_t rows, float* dst) { std::memcpy(dst, x.data() + t0 * W, sizeof(float) * rows * W); },
      [&](int64_t t0, int64_t rows, const float* p) {
        EXPECT_EQ(t0, next) << "rows out of order";
        next = t0 + rows;
        r.order.push_back(t0);
        std::memcpy(r.prob.data() + t0 * W, p, sizeof(float) * rows * W);
      });
  EXPECT_EQ(next, T);
  return r;
}

// A one-level UNet sees 2 samples around each output (two 3x3 convs), and with no normalisation a
// window's output away from its edges is the whole record's: blinding more than that at shared
// edges makes the stitched result the one-window result.
TEST(WindowedInference, StitchingEqualsOneWholeWindow) {
  UNetConfig c;
  c.levels = 1;
  c.base = 3;
  UNet model(c, 7, Device::cpu());
  const int64_t T = 203, W = 37;
  const std::vector<float> x = test::random_vector(T * W, 11);
  WindowOptions whole;
  whole.normalize = Normalize::none;
  const RunResult ref = run(model, whole, x, T, W);
  ASSERT_EQ(ref.order.size(), 1u);
  for (float p : ref.prob) ASSERT_TRUE(p > 0.0f && p < 1.0f);
  WindowOptions win = whole;
  win.rows = 40;
  win.cols = 16;
  win.overlap = 0.5;
  win.blind = 0.2;  // 8 rows, 3 receivers: more than the 2 the network sees
  win.batch = 2;
  const RunResult tiled = run(model, win, x, T, W);
  EXPECT_GT(tiled.order.size(), 5u);
  double worst = 0;
  for (size_t k = 0; k < ref.prob.size(); ++k) worst = std::max(worst, std::fabs(double(tiled.prob[k]) - ref.prob[k]));
  EXPECT_LT(worst, 1e-6);
}

TEST(WindowedInference, AnySizeIsPaddedToTheNetworksMultiple) {
  UNetConfig c;
  c.levels = 3;
  c.base = 2;
  UNet model(c, 3, Device::cpu());
  const int64_t T = 77, W = 13;  // neither a multiple of 4
  const std::vector<float> x = test::random_vector(T * W, 2);
  WindowOptions o;
  const RunResult whole = run(model, o, x, T, W);
  for (float p : whole.prob) ASSERT_TRUE(p > 0.0f && p < 1.0f);
  o.rows = 30;
  o.overlap = 0.25;
  const RunResult tiled = run(model, o, x, T, W);
  for (float p : tiled.prob) ASSERT_TRUE(p > 0.0f && p < 1.0f);
}

TEST(WindowedInference, BadOptionsAreUsageErrors) {
  UNetConfig c;
  c.levels = 1;
  c.base = 1;
  UNet model(c, 1, Device::cpu());
  WindowOptions o;
  o.overlap = 1.0;
  EXPECT_THROW(WindowedInference(model, o), UsageError);
  o.overlap = 0.5;
  o.batch = 0;
  EXPECT_THROW(WindowedInference(model, o), UsageError);
}

}  // namespace
}  // namespace seis
