// The STA/LTA detector (models/sta_lta.h): classic_sta_lta against its definition and hand-worked
// numbers, the streaming classes bit-identical to the whole-array references over any block sizes,
// a burst on 8 traces found as one coincidence, bad options, and obspy itself when it is installed.
#include "models/sta_lta.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"

namespace seis {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Gaussian noise [T][W] with `bursts` windowed sinusoids, each on 1..6 neighbouring traces.
std::vector<float> noisy_record(int64_t T, int64_t W, uint64_t seed, int bursts) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(T * W));
  for (float& v : x) v = noise(gen);
  std::uniform_int_distribution<int64_t> start(0, T - 1), trace(0, W - 1), len(20, 200), span(1, 6);
  std::uniform_real_distribution<double> amp(3.0, 30.0);
  for (int b = 0; b < bursts; ++b) {
    const int64_t t0 = start(gen), j0 = trace(gen), n = len(gen), m = span(gen);
    const double a = amp(gen);
    for (int64_t j = j0; j < std::min(W, j0 + m); ++j) {
      for (int64_t t = t0; t < std::min(T, t0 + n); ++t) {
        x[t * W + j] += static_cast<float>(a * std::sin(0.7 * static_cast<double>(t - t0)));
      }
    }
  }
  return x;
}

std::vector<float> column(const std::vector<float>& x, int64_t T, int64_t W, int64_t j) {
  std::vector<float> c(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) c[t] = x[t * W + j];
  return c;
}

// Block sizes that add up to T: 0 whole, 1 single rows, 2 random small, 3 random large with zeros and ones.
std::vector<int64_t> blocks(int64_t T, int pattern, uint64_t seed) {
  if (pattern == 0) return {T};
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> small(1, 37), large(0, std::max<int64_t>(1, T / 3)), coin(0, 3);
  std::vector<int64_t> out;
  for (int64_t t = 0; t < T;) {
    int64_t n = pattern == 1 ? 1 : pattern == 2 ? small(gen) : (coin(gen) == 0 ? coin(gen) % 2 : large(gen));
    n = std::min(n, T - t);
    out.push_back(n);
    t += n;
  }
  return out;
}

bool same_bits(const double* a, const double* b, int64_t n) { return std::memcmp(a, b, sizeof(double) * n) == 0; }

// The reference path: classic_sta_lta per trace, then the whole-array trigger and coincidence references.
struct Reference {
  std::vector<double> cft;  // [T][W]
  std::vector<TraceTrigger> triggers;
  std::vector<Coincidence> events;
};

Reference reference(const std::vector<float>& x, int64_t T, int64_t W, const StaLtaOptions& o) {
  Reference r;
  r.cft.resize(static_cast<size_t>(T * W));
  std::vector<double> c(static_cast<size_t>(T));
  for (int64_t j = 0; j < W; ++j) {
    const std::vector<float> xj = column(x, T, W, j);
    classic_sta_lta(xj.data(), T, o.nsta, o.nlta, c.data());
    for (int64_t t = 0; t < T; ++t) r.cft[t * W + j] = c[t];
    const std::vector<TraceTrigger> tr = trigger_onset(c.data(), T, o.thr_on, o.thr_off, o.max_trigger_len, j);
    r.triggers.insert(r.triggers.end(), tr.begin(), tr.end());
  }
  std::sort(r.triggers.begin(), r.triggers.end(), trigger_before);
  r.events = coincidence_trigger(r.cft.data(), T, W, o.thr_on, o.thr_off, o.coincidence_sum, o.max_trigger_len);
  return r;
}

std::string describe(const std::vector<Coincidence>& ev) {
  std::ostringstream os;
  for (const Coincidence& e : ev) {
    os << "[" << e.on << "," << e.off << " n=" << e.n_traces << " sum=" << e.coincidence_sum << " traces";
    for (int64_t t : e.traces) os << " " << t;
    os << "] ";
  }
  return os.str();
}

TEST(StaLta, HandWorkedValues) {
  // obspy's order: sta starts as the sum of the first nsta squares, lta = sta, then lta takes the
  // next squares while sta slides; cft is 0 up to nlta - 2 and set from nlta - 1 on.
  const std::vector<float> x = {1, 2, 3, 0, 1};
  std::vector<double> cft(5, -1.0);
  classic_sta_lta(x.data(), 5, 2, 3, cft.data());
  EXPECT_EQ(cft[0], 0.0);
  EXPECT_EQ(cft[1], 0.0);
  EXPECT_EQ(cft[2], 13.0 / 14.0 * 1.5);  // sta 4+9, lta 1+4+9, frac 3/2
  EXPECT_EQ(cft[3], 9.0 / 13.0 * 1.5);   // sta 9+0, lta 4+9+0
  EXPECT_EQ(cft[4], 1.0 / 10.0 * 1.5);   // sta 0+1, lta 9+0+1
  EXPECT_DOUBLE_EQ(cft[2], 39.0 / 28.0);
  EXPECT_DOUBLE_EQ(cft[4], 0.15);

  // No guard against a zero lta: 0/0 is NaN, as in obspy's C code.
  const std::vector<float> z = {0, 0, 2, 0};
  std::vector<double> cz(4);
  classic_sta_lta(z.data(), 4, 1, 2, cz.data());
  EXPECT_EQ(cz[0], 0.0);
  EXPECT_TRUE(std::isnan(cz[1])) << cz[1];
  EXPECT_EQ(cz[2], 2.0);  // sta 4, lta 0+4, frac 2
  EXPECT_EQ(cz[3], 0.0);  // sta 0, lta 4+0
}

TEST(StaLta, MatchesDefinitionOnRandomTraces) {
  const int64_t n = 4000;
  const std::vector<float> x = noisy_record(n, 1, 11, 6);
  const int64_t windows[][2] = {{1, 2}, {3, 7}, {10, 100}, {50, 1000}, {1, 4000}};
  for (const auto& w : windows) {
    const int64_t nsta = w[0], nlta = w[1];
    std::vector<double> cft(static_cast<size_t>(n));
    classic_sta_lta(x.data(), n, nsta, nlta, cft.data());
    double worst = 0;
    int64_t worst_i = -1;
    for (int64_t i = 0; i < n; ++i) {
      double want = 0;
      if (i >= nlta - 1) {
        double s = 0, l = 0;
        for (int64_t k = i - nsta + 1; k <= i; ++k) s += static_cast<double>(x[k]) * x[k];
        for (int64_t k = i - nlta + 1; k <= i; ++k) l += static_cast<double>(x[k]) * x[k];
        want = (s / static_cast<double>(nsta)) / (l / static_cast<double>(nlta));
      }
      // Relative to max(|cft|, 1): where a sample is near 0 right after a burst, sta is a tiny
      // difference of running sums and only its absolute error stays small (in obspy as here).
      const double err = std::abs(cft[i] - want) / std::max(std::abs(want), 1.0);
      if (i < nlta - 1) {
        ASSERT_EQ(cft[i], 0.0) << "i=" << i;
      }
      if (err > worst) {
        worst = err;
        worst_i = i;
      }
    }
    EXPECT_LE(worst, 1e-9) << "nsta=" << nsta << " nlta=" << nlta << " worst at " << worst_i;
  }
}

TEST(StaLta, ShortTraceIsInputError) {
  const std::vector<float> x(9, 1.0f);
  std::vector<double> cft(9);
  EXPECT_THROW(classic_sta_lta(x.data(), 9, 2, 10, cft.data()), InputError);
  EXPECT_NO_THROW(classic_sta_lta(x.data(), 9, 2, 9, cft.data()));
  EXPECT_EQ(cft[8], 1.0);  // a constant trace: sta and lta means agree
}

TEST(StaLtaStream, BlocksAreBitIdenticalToWholeTrace) {
  const int64_t T = 3000;
  const int64_t widths[] = {1, 3, 17};
  const int64_t windows[][2] = {{1, 2}, {5, 50}, {40, 700}};
  for (int64_t W : widths) {
    std::vector<float> x = noisy_record(T, W, 100 + W, 8);
    // A dead trace (NaN from 0/0) and one that goes dead after a burst (residues of the running sums).
    if (W >= 3) {
      for (int64_t t = 0; t < T; ++t) x[t * W + 1] = 0.0f;
      for (int64_t t = T / 2; t < T; ++t) x[t * W + 2] = 0.0f;
      for (int64_t t = T / 2 - 100; t < T / 2; ++t) x[t * W + 2] = 50.0f;
    }
    for (const auto& w : windows) {
      std::vector<double> want(static_cast<size_t>(T * W));
      std::vector<double> c(static_cast<size_t>(T));
      for (int64_t j = 0; j < W; ++j) {
        const std::vector<float> xj = column(x, T, W, j);
        classic_sta_lta(xj.data(), T, w[0], w[1], c.data());
        for (int64_t t = 0; t < T; ++t) want[t * W + j] = c[t];
      }
      for (int pattern = 0; pattern < 4; ++pattern) {
        StaLtaStream s(W, w[0], w[1]);
        std::vector<double> got(static_cast<size_t>(T * W), -7.0);
        int64_t t = 0;
        for (int64_t n : blocks(T, pattern, 7 * W + pattern)) {
          s.feed(x.data() + t * W, n, got.data() + t * W);
          t += n;
        }
        ASSERT_EQ(s.samples_fed(), T);
        EXPECT_TRUE(same_bits(got.data(), want.data(), T * W))
            << "W=" << W << " nsta=" << w[0] << " nlta=" << w[1] << " pattern=" << pattern;
      }
    }
  }
}

TEST(TriggerOnset, HandWorkedEdges) {
  // On at >= thr_on, on until the last sample >= thr_off; a one-sample trigger; one still on at the end.
  const std::vector<double> c = {0, 3.5, 3.5, 1.5, 1.49, 4, 1, 5};
  const std::vector<TraceTrigger> got = trigger_onset(c.data(), 8, 3.5, 1.5, kNoMaxLen, 4);
  const std::vector<TraceTrigger> want = {{4, 1, 3, 3.5}, {4, 5, 5, 4.0}, {4, 7, 7, 5.0}};
  EXPECT_EQ(got, want);
  // Peak over [on, off): the off sample itself is left out, as in obspy's tr.data[on:off].max().
  const std::vector<double> d = {0, 4, 9, 2, 0};
  const std::vector<TraceTrigger> gd = trigger_onset(d.data(), 5, 3.5, 1.5);
  ASSERT_EQ(gd.size(), 1u);
  EXPECT_EQ(gd[0].off, 3);
  EXPECT_EQ(gd[0].peak, 9.0);
  const std::vector<double> e = {0, 4, 2, 9, 0};
  const std::vector<TraceTrigger> ge = trigger_onset(e.data(), 5, 3.5, 1.5);
  ASSERT_EQ(ge.size(), 1u);  // the rise to 9 without falling below 1.5 is the same trigger
  EXPECT_EQ(ge[0].off, 3);
  EXPECT_EQ(ge[0].peak, 4.0);
  // NaN is below every threshold.
  const std::vector<double> f = {4, NAN, 4};
  EXPECT_EQ(trigger_onset(f.data(), 3, 3.5, 1.5).size(), 2u);
  EXPECT_TRUE(trigger_onset(f.data(), 3, 5.0, 1.5).empty());
}

// trigger_onset through TriggerStream fed one sample at a time: the closed triggers in order.
std::vector<TraceTrigger> stream_one_trace(const std::vector<double>& c, double thr_on, double thr_off,
                                           int64_t max_len = kNoMaxLen) {
  TriggerStream s(1, thr_on, thr_off, max_len);
  std::vector<TraceTrigger> closed;
  for (size_t t = 0; t < c.size(); ++t) s.feed(&c[t], static_cast<int64_t>(t), 1, &closed);
  s.finish(static_cast<int64_t>(c.size()), &closed);
  return closed;
}

TEST(TriggerOnset, StreamOnTheHandWorkedEdges) {
  const std::vector<double> c = {0, 3.5, 3.5, 1.5, 1.49, 4, 1, 5};
  const std::vector<TraceTrigger> want = {{0, 1, 3, 3.5}, {0, 5, 5, 4.0}, {0, 7, 7, 5.0}};
  EXPECT_EQ(stream_one_trace(c, 3.5, 1.5), want);
  const std::vector<double> d = {4, 4, 4, 2, 4, 4, 1};
  const std::vector<TraceTrigger> want_d = {{0, 0, 2, 4.0}, {0, 4, 5, 4.0}};
  EXPECT_EQ(stream_one_trace(d, 3.5, 1.5, 2), want_d);
  const std::vector<double> e = {0, 4, 2, 9, 0};
  const std::vector<TraceTrigger> want_e = {{0, 1, 3, 4.0}};
  EXPECT_EQ(stream_one_trace(e, 3.5, 1.5), want_e);
}

TEST(TriggerOnset, MaxLenReleasesAndWaitsForANewCrossing) {
  const std::vector<double> c = {4, 4, 4, 4, 4, 1, 4};
  const std::vector<TraceTrigger> want = {{0, 0, 2, 4.0}, {0, 6, 6, 4.0}};
  EXPECT_EQ(trigger_onset(c.data(), 7, 3.5, 1.5, 2), want);
  const std::vector<double> d = {4, 4, 4, 2, 4, 4, 1};
  const std::vector<TraceTrigger> want_d = {{0, 0, 2, 4.0}, {0, 4, 5, 4.0}};
  EXPECT_EQ(trigger_onset(d.data(), 7, 3.5, 1.5, 2), want_d);
  const std::vector<TraceTrigger> want_0 = {{0, 0, 0, 4.0}, {0, 4, 4, 4.0}};
  EXPECT_EQ(trigger_onset(d.data(), 7, 3.5, 1.5, 0), want_0);
}

// A cft-like AR(1) process per trace, with a dead (NaN) trace and scattered NaN; the even traces
// take multiples of 0.5 so that values equal to the thresholds come up.
std::vector<double> random_cft(int64_t T, int64_t W, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> noise(0.0, 0.8);
  std::uniform_int_distribution<int> rare(0, 499);
  std::vector<double> c(static_cast<size_t>(T * W));
  std::vector<double> v(static_cast<size_t>(W), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < W; ++j) {
      v[j] = 0.9 * v[j] + noise(gen);
      c[t * W + j] = std::max(0.0, 2.0 + v[j]);
      if (j % 2 == 0) c[t * W + j] = std::round(2 * c[t * W + j]) / 2;  // lands on the thresholds
      if (j == W - 1 || rare(gen) == 0) c[t * W + j] = NAN;
    }
  }
  return c;
}

TEST(TriggerStream, MatchesReferenceOverBlocks) {
  const int64_t T = 4000, W = 9;
  const std::vector<double> cft = random_cft(T, W, 5);
  const double thresholds[][2] = {{3.0, 1.5}, {3.0, 3.0}, {4.0, 0.5}};
  const int64_t max_lens[] = {kNoMaxLen, 0, 3, 40};
  for (const auto& th : thresholds) {
    for (int64_t max_len : max_lens) {
      std::vector<TraceTrigger> want;
      std::vector<double> c(static_cast<size_t>(T));
      for (int64_t j = 0; j < W; ++j) {
        for (int64_t t = 0; t < T; ++t) c[t] = cft[t * W + j];
        const std::vector<TraceTrigger> tr = trigger_onset(c.data(), T, th[0], th[1], max_len, j);
        want.insert(want.end(), tr.begin(), tr.end());
      }
      std::sort(want.begin(), want.end(), trigger_before);
      ASSERT_GT(want.size(), 20u);
      for (double thr_sum : {1.0, 2.0, 3.5}) {
        const std::vector<Coincidence> want_ev = coincidence_trigger(want, thr_sum);
        for (int pattern = 0; pattern < 4; ++pattern) {
          TriggerStream s(W, th[0], th[1], max_len);
          TriggerReorder reorder;
          CoincidenceStream coinc(thr_sum);
          std::vector<TraceTrigger> closed, released;
          std::vector<Coincidence> events;
          auto pass_on = [&]() {
            for (const TraceTrigger& x : closed) reorder.push(x);
            closed.clear();
            const size_t before = released.size();
            reorder.release_before(s.watermark(), &released);
            for (size_t k = before; k < released.size(); ++k) coinc.add(released[k]);
            coinc.flush_before(s.watermark(), &events);
          };
          int64_t t = 0;
          for (int64_t n : blocks(T, pattern, 31 + pattern)) {
            s.feed(cft.data() + t * W, t, n, &closed);
            t += n;
            pass_on();
          }
          s.finish(T, &closed);
          pass_on();
          coinc.finish(&events);
          const std::string where = "thr " + std::to_string(th[0]) + "/" + std::to_string(th[1]) +
                                    " max_len=" + std::to_string(max_len) + " pattern=" + std::to_string(pattern);
          EXPECT_TRUE(reorder.empty()) << where;
          EXPECT_EQ(released, want) << where;
          EXPECT_EQ(events, want_ev) << where << " sum " << thr_sum << "\n got " << describe(events) << "\nwant "
                                     << describe(want_ev);
        }
      }
    }
  }
}

TEST(Coincidence, HandWorkedOverlapsAndSubsets) {
  // A overlaps B, B overlaps C; D is trace 0 again, skipped in A's event but taken in B's.
  const std::vector<TraceTrigger> tr = {{0, 10, 20, 5}, {1, 15, 30, 6}, {2, 25, 26, 7}, {0, 28, 40, 8}};
  const std::vector<Coincidence> got = coincidence_trigger(tr, 2.0);
  ASSERT_EQ(got.size(), 2u) << describe(got);
  EXPECT_EQ(got[0].on, 10);
  EXPECT_EQ(got[0].off, 30);
  EXPECT_EQ(got[0].traces, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(got[0].peaks, (std::vector<double>{5, 6, 7}));
  EXPECT_EQ(got[0].coincidence_sum, 3.0);
  EXPECT_EQ(got[1].on, 15);
  EXPECT_EQ(got[1].off, 40);
  EXPECT_EQ(got[1].traces, (std::vector<int64_t>{1, 2, 0}));
  // C's own event (C alone: D starts after 26) is below the sum; with sum 1 it is a subset (off 26 <= 40).
  const std::vector<Coincidence> one = coincidence_trigger(tr, 1.0);
  ASSERT_EQ(one.size(), 2u) << describe(one);
  // The same through the stream, promises given at every sample.
  for (double thr : {1.0, 2.0, 3.0, 4.0}) {
    CoincidenceStream s(thr);
    std::vector<Coincidence> ev;
    size_t k = 0;
    for (int64_t t = 0; t <= 45; ++t) {
      while (k < tr.size() && tr[k].on == t) s.add(tr[k++]);
      s.flush_before(t + 1, &ev);
    }
    s.finish(&ev);
    EXPECT_EQ(ev, coincidence_trigger(tr, thr)) << "thr " << thr << ": " << describe(ev);
  }
}

TEST(StaLtaDetector, StreamMatchesReference) {
  const int64_t T = 6000, W = 16;
  const std::vector<float> x = noisy_record(T, W, 77, 40);
  StaLtaOptions o;
  o.nsta = 5;
  o.nlta = 60;
  o.thr_on = 3.0;
  o.thr_off = 1.2;
  for (double thr_sum : {1.0, 3.0}) {
    o.coincidence_sum = thr_sum;
    for (int64_t max_len : {kNoMaxLen, int64_t{25}}) {
      o.max_trigger_len = max_len;
      const Reference want = reference(x, T, W, o);
      ASSERT_GT(want.triggers.size(), 30u);
      ASSERT_GT(want.events.size(), 3u);
      for (int pattern = 0; pattern < 4; ++pattern) {
        StaLtaDetector d(W, o);
        std::vector<TraceTrigger> triggers;
        std::vector<Coincidence> events;
        int64_t t = 0;
        for (int64_t n : blocks(T, pattern, 1000 + pattern)) {
          d.feed(x.data() + t * W, n, &triggers, &events);
          t += n;
        }
        d.finish(&triggers, &events);
        EXPECT_EQ(triggers, want.triggers) << "sum " << thr_sum << " max_len " << max_len << " pattern " << pattern;
        EXPECT_EQ(events, want.events) << "sum " << thr_sum << " max_len " << max_len << " pattern " << pattern
                                       << "\n got " << describe(events) << "\nwant " << describe(want.events);
      }
    }
  }
}

TEST(StaLtaDetector, BurstOnEightTracesIsOneEvent) {
  const int64_t T = 6000, W = 24, burst = 3000;
  std::vector<float> x = noisy_record(T, W, 2024, 0);
  for (int64_t j = 8; j < 16; ++j) {
    for (int64_t t = burst; t < burst + 120; ++t) {
      x[t * W + j] += static_cast<float>(10.0 * std::sin(2 * kPi * 0.05 * static_cast<double>(t - burst)));
    }
  }
  const StaLtaOptions o = sta_lta_defaults(0.001);
  for (int pattern = 0; pattern < 4; ++pattern) {
    StaLtaDetector d(W, o);
    std::vector<TraceTrigger> triggers;
    std::vector<Coincidence> events;
    int64_t t = 0;
    for (int64_t n : blocks(T, pattern, 9 + pattern)) {
      d.feed(x.data() + t * W, n, &triggers, &events);
      t += n;
    }
    d.finish(&triggers, &events);
    ASSERT_EQ(events.size(), 1u) << "pattern " << pattern << ": " << describe(events);
    EXPECT_GE(events[0].on, burst);
    EXPECT_LE(events[0].on, burst + 5);
    EXPECT_EQ(events[0].n_traces, 8);
    std::vector<int64_t> traces = events[0].traces;
    std::sort(traces.begin(), traces.end());
    EXPECT_EQ(traces, (std::vector<int64_t>{8, 9, 10, 11, 12, 13, 14, 15}));
    for (size_t k = 1; k < triggers.size(); ++k) EXPECT_LE(triggers[k - 1].on, triggers[k].on);
  }
}

TEST(StaLtaDetector, BadOptionsAreUsageErrors) {
  const StaLtaOptions d = sta_lta_defaults(0.001);
  EXPECT_EQ(d.nsta, 20);
  EXPECT_EQ(d.nlta, 500);
  EXPECT_EQ(d.max_trigger_len, int64_t{1000000000});
  const StaLtaOptions coarse = sta_lta_defaults(0.3);  // windows of under a sample still work
  EXPECT_EQ(coarse.nsta, 1);
  EXPECT_EQ(coarse.nlta, 2);
  EXPECT_THROW(sta_lta_defaults(0.0), UsageError);
  EXPECT_THROW(sta_lta_defaults(-1e-3), UsageError);
  EXPECT_THROW(sta_lta_defaults(NAN), UsageError);

  std::vector<float> x(100, 1.0f);
  std::vector<double> cft(100);
  EXPECT_THROW(classic_sta_lta(x.data(), 100, 0, 10, cft.data()), UsageError);
  EXPECT_THROW(classic_sta_lta(x.data(), 100, 10, 10, cft.data()), UsageError);
  EXPECT_THROW(StaLtaStream(4, 0, 10), UsageError);
  EXPECT_THROW(StaLtaStream(4, 5, 5), UsageError);
  EXPECT_THROW(StaLtaStream(4, 5, 3), UsageError);
  EXPECT_THROW(StaLtaStream(0, 5, 30), UsageError);
  EXPECT_THROW(TriggerStream(4, 1.5, 3.5), UsageError);
  EXPECT_THROW(TriggerStream(4, NAN, 1.0), UsageError);
  EXPECT_THROW(TriggerStream(4, 3.5, 1.5, -1), UsageError);
  EXPECT_THROW(trigger_onset(cft.data(), 100, 1.0, 2.0), UsageError);
  StaLtaOptions bad = d;
  bad.nlta = bad.nsta;
  EXPECT_THROW(StaLtaDetector(4, bad), UsageError);
  bad = d;
  bad.thr_off = 4.0;
  EXPECT_THROW(StaLtaDetector(4, bad), UsageError);
  // Rows must come in order.
  TriggerStream s(2, 3.5, 1.5);
  std::vector<TraceTrigger> closed;
  s.feed(cft.data(), 0, 3, &closed);
  EXPECT_THROW(s.feed(cft.data(), 5, 3, &closed), UsageError);
  EXPECT_THROW(s.finish(4, &closed), UsageError);
}

// ---- obspy itself ------------------------------------------------------------------------------

// The first python that imports obspy: $SEIS_OBSPY_PYTHON, a venv at /opt/seis-obspy, /usr/bin/python3.
std::string obspy_python() {
  std::vector<std::string> candidates;
  if (const char* p = std::getenv("SEIS_OBSPY_PYTHON")) candidates.emplace_back(p);
  candidates.emplace_back("/opt/seis-obspy/bin/python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const std::string& py : candidates) {
    if (std::system(("'" + py + "' -c 'import obspy' >/dev/null 2>&1").c_str()) == 0) return py;
  }
  return "";
}

// obspy's classic_sta_lta (C), trigger_onset and coincidence_trigger(None, ...) on a float32 record
// [T][W]; writes the cft [T][W] as float64, the triggers and the events (peaks as float.hex).
const char* kObspyScript = R"PY(
import sys
import numpy as np
from obspy import Stream, Trace
from obspy.signal.trigger import classic_sta_lta, trigger_onset, coincidence_trigger

path, T, W, nsta, nlta, thr_on, thr_off, thr_sum, out = sys.argv[1:]
T, W, nsta, nlta = int(T), int(W), int(nsta), int(nlta)
thr_on, thr_off, thr_sum = float(thr_on), float(thr_off), float(thr_sum)
x = np.fromfile(path, dtype=np.float32).reshape(T, W)
cft = np.empty((T, W), dtype=np.float64)
for j in range(W):
    cft[:, j] = classic_sta_lta(x[:, j], nsta, nlta)
cft.tofile(out + '.cft')
with open(out + '.trig', 'w') as f:
    for j in range(W):
        c = cft[:, j].copy()
        for on, off in trigger_onset(c, thr_on, thr_off):
            f.write('%d %d %d\n' % (j, on, off))
# Sampling rate 1 Hz from time 0: times are sample numbers; ids sort as the trace numbers do.
st = Stream([Trace(data=cft[:, j].copy(), header={'network': 'XX', 'station': 'S%04d' % j,
                                                  'channel': 'HHZ', 'sampling_rate': 1.0})
             for j in range(W)])
events = coincidence_trigger(None, thr_on, thr_off, st, thr_sum, details=True)
with open(out + '.events', 'w') as f:
    for e in events:
        on = e['time'].timestamp
        traces = [int(i.split('.')[1][1:]) for i in e['trace_ids']]
        f.write('%d %d %s %d %s %s\n' % (round(on), round(on + e['duration']), float(e['coincidence_sum']).hex(),
                                         len(traces), ' '.join(str(t) for t in traces),
                                         ' '.join(float(p).hex() for p in e['cft_peaks'])))
)PY";

TEST(StaLtaObspy, MatchesObspy) {
  const std::string py = obspy_python();
  if (py.empty()) {
    GTEST_SKIP() << "no python imports obspy ($SEIS_OBSPY_PYTHON, /opt/seis-obspy/bin/python3, /usr/bin/python3): "
                    "the comparison with obspy did not run";
  }
  const int64_t T = 6000, W = 10;
  std::vector<float> x = noisy_record(T, W, 4242, 30);
  for (int64_t t = 0; t < T; ++t) x[t * W + 9] = 0.0f;     // dead: 0/0
  for (int64_t t = 4000; t < T; ++t) x[t * W + 8] = 0.0f;  // dead after a burst: running-sum residues
  for (int64_t t = 3900; t < 4000; ++t) x[t * W + 8] = 40.0f;
  for (int64_t j = 2; j < 7; ++j) {  // one clear network event
    for (int64_t t = 2500; t < 2600; ++t) x[t * W + j] += static_cast<float>(15 * std::sin(0.9 * (t - 2500)));
  }
  StaLtaOptions o;
  o.nsta = 10;
  o.nlta = 300;
  o.thr_on = 3.0;
  o.thr_off = 1.5;
  o.coincidence_sum = 3;
  o.max_trigger_len = 1000000;  // obspy: int(1e6 s * 1 Hz + 0.5)

  const std::string dir = test::process_dir("sta_lta_obspy");
  const std::string data = dir + "/record.f32", script = dir + "/obspy_sta_lta.py", out = dir + "/obspy";
  std::ofstream(data, std::ios::binary).write(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
  std::ofstream(script) << kObspyScript;
  std::ostringstream cmd;
  cmd << "'" << py << "' " << script << " " << data << " " << T << " " << W << " " << o.nsta << " " << o.nlta << " "
      << o.thr_on << " " << o.thr_off << " " << o.coincidence_sum << " " << out;
  const test::CliResult r = test::run_command(cmd.str());
  ASSERT_EQ(r.code, 0) << r.err;

  // Ours, streamed in random blocks.
  StaLtaDetector det(W, o);
  StaLtaStream sta_lta(W, o.nsta, o.nlta);
  std::vector<double> cft(static_cast<size_t>(T * W));
  std::vector<TraceTrigger> triggers;
  std::vector<Coincidence> events;
  int64_t t = 0;
  for (int64_t n : blocks(T, 3, 99)) {
    sta_lta.feed(x.data() + t * W, n, cft.data() + t * W);
    det.feed(x.data() + t * W, n, &triggers, &events);
    t += n;
  }
  det.finish(&triggers, &events);

  std::vector<double> want_cft(cft.size());
  std::ifstream(out + ".cft", std::ios::binary)
      .read(reinterpret_cast<char*>(want_cft.data()), static_cast<std::streamsize>(want_cft.size() * sizeof(double)));
  int64_t mismatches = 0;
  for (size_t i = 0; i < cft.size(); ++i) {
    const bool same = std::memcmp(&cft[i], &want_cft[i], sizeof(double)) == 0;
    if (!same && mismatches++ < 10) {
      ADD_FAILURE() << "cft t=" << i / W << " trace " << i % W << ": ours " << cft[i] << " obspy " << want_cft[i];
    }
  }
  EXPECT_EQ(mismatches, 0) << "cft values that differ from obspy's bits";
  EXPECT_TRUE(std::isnan(cft[(T - 1) * W + 9]));

  std::vector<TraceTrigger> want_trig;
  std::ifstream ft(out + ".trig");
  for (TraceTrigger tr; ft >> tr.trace >> tr.on >> tr.off;) want_trig.push_back(tr);
  std::sort(want_trig.begin(), want_trig.end(), trigger_before);
  ASSERT_EQ(triggers.size(), want_trig.size());
  ASSERT_GT(triggers.size(), 10u);
  for (size_t k = 0; k < triggers.size(); ++k) {
    EXPECT_EQ(triggers[k].trace, want_trig[k].trace) << k;
    EXPECT_EQ(triggers[k].on, want_trig[k].on) << k;
    EXPECT_EQ(triggers[k].off, want_trig[k].off) << k;
  }

  std::vector<Coincidence> want_ev;
  std::ifstream fe(out + ".events");
  for (std::string line; std::getline(fe, line);) {
    std::istringstream is(line);
    Coincidence e;
    std::string sum;
    is >> e.on >> e.off >> sum >> e.n_traces;
    e.coincidence_sum = std::strtod(sum.c_str(), nullptr);
    e.traces.resize(static_cast<size_t>(e.n_traces));
    for (int64_t& tr : e.traces) is >> tr;
    for (int64_t k = 0; k < e.n_traces; ++k) {
      std::string p;
      is >> p;
      e.peaks.push_back(std::strtod(p.c_str(), nullptr));
    }
    want_ev.push_back(e);
  }
  ASSERT_GE(want_ev.size(), 1u);
  EXPECT_EQ(events, want_ev) << "\n ours  " << describe(events) << "\nobspy " << describe(want_ev);
}

}  // namespace
}  // namespace seis
