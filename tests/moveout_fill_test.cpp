// Picks along an event's fitted moveout (models/moveout_fill.h): the fit recovers a hyperbola
// through outliers, and its origin time, and ArrivalDetector with the fill picks the traces the network left unpicked,
// on the moveout, in time order, whatever the block sizes, and never on traces that are not live.
#include "models/moveout_fill.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "engine/error.h"
#include "models/picking.h"

namespace seis {
namespace {

// The traveltime (ms) of a source at depth z and position x0 (in traces of 10 m) at 3000 m/s, after
// an origin time of t0 ms.
double hyperbola_ms(double x, double x0, double z_m, double t0_ms) {
  const double h = (x - x0) * 10.0;
  return t0_ms + std::sqrt(z_m * z_m + h * h) / 3000.0 * 1000.0;
}

TEST(FitMoveout, RecoversAHyperbolaThroughOutliers) {
  std::vector<double> x, t;
  for (int j = 0; j < 60; ++j) {
    if (j % 7 == 3) continue;  // missed traces
    x.push_back(j);
    // Receiver statics of up to +-2 ms, and a late (S-like) pick on every fifth trace.
    double tj = hyperbola_ms(j, 22.5, 800, 1000) + 2.0 * std::sin(1.7 * j);
    if (j % 5 == 0) tj += 180.0;
    t.push_back(tj);
  }
  MoveoutFit fit;
  ASSERT_TRUE(fit_moveout(x, t, 6.0, 8, &fit));
  EXPECT_GE(fit.inliers, 35);
  EXPECT_LE(fit.inliers, 44);  // the late picks follow no front with the others
  for (int j = 0; j < 60; ++j) {
    double tj = 0;
    ASSERT_TRUE(fit.time_at(j, &tj)) << j;
    // Within the statics (+-2 ms) of the hyperbola after its origin time.
    EXPECT_NEAR(tj, hyperbola_ms(j, 22.5, 800, 1000), 2.0) << j;
  }
  // The same fit again: deterministic.
  MoveoutFit again;
  ASSERT_TRUE(fit_moveout(x, t, 6.0, 8, &again));
  EXPECT_EQ(again.a, fit.a);
  EXPECT_EQ(again.b, fit.b);
  EXPECT_EQ(again.c, fit.c);
  EXPECT_EQ(again.t0, fit.t0);
}

TEST(FitMoveout, FindsTheOriginTimeOfAnExactHyperbola) {
  // Picks of a shallow source, 400 m under trace 20 of 128, origin 61 s into a continuous record:
  // t^2 quadratic in x without an origin time (a parabola at such times) misses its far traces by
  // up to 16 ms.
  std::vector<double> x, t;
  for (int j = 0; j < 128; j += 2) {
    x.push_back(j);
    t.push_back(hyperbola_ms(j, 20.0, 400, 61000));
  }
  MoveoutFit fit;
  ASSERT_TRUE(fit_moveout(x, t, 3.0, 8, &fit));
  EXPECT_EQ(fit.inliers, 64);
  EXPECT_NEAR(fit.t0, 61000.0, 1.0);
  for (int j = 0; j < 128; ++j) {
    double tj = 0;
    ASSERT_TRUE(fit.time_at(j, &tj)) << j;
    EXPECT_NEAR(tj, hyperbola_ms(j, 20.0, 400, 61000), 0.05) << j;
  }
}

TEST(FitMoveout, KeepsTheStifferModelWhenItPredictsTheOuterPicksAsWell) {
  // A source that fires at the start of the gather: t^2 is exactly quadratic in x, so both models
  // follow every pick, and the stiffer one (t0 = 0) is kept.
  std::vector<double> x, t;
  for (int j = 0; j < 96; ++j) {
    x.push_back(j);
    t.push_back(hyperbola_ms(j, 30.0, 900, 0.0));
  }
  MoveoutFit fit;
  ASSERT_TRUE(fit_moveout(x, t, 3.0, 8, &fit));
  EXPECT_EQ(fit.t0, 0.0);
  EXPECT_EQ(fit.inliers, 96);
  double t_far = 0;
  ASSERT_TRUE(fit.time_at(140.0, &t_far));  // beyond the picks
  EXPECT_NEAR(t_far, hyperbola_ms(140.0, 30.0, 900, 0.0), 0.01);
}

TEST(FitMoveout, RefusesTooFewOrScatteredPicks) {
  MoveoutFit fit;
  EXPECT_FALSE(fit_moveout({1, 2}, {10, 11}, 5.0, 2, &fit));
  EXPECT_FALSE(fit_moveout({1, 2, 3}, {10, 11}, 5.0, 2, &fit));  // sizes differ
  // Twelve picks scattered over a second: no front holds eight of them.
  std::vector<double> x, t;
  for (int j = 0; j < 12; ++j) {
    x.push_back(j * 3);
    t.push_back(500.0 + std::fmod(j * 377.0, 1000.0));
  }
  EXPECT_FALSE(fit_moveout(x, t, 5.0, 8, &fit));
  // The same traces on a line are a front.
  for (int j = 0; j < 12; ++j) t[static_cast<size_t>(j)] = 500.0 + 2.0 * j;
  EXPECT_TRUE(fit_moveout(x, t, 5.0, 8, &fit));
}

// Probabilities [T][W] with a bump on every trace of one source's P front, except on the traces
// marked missed, where the network saw nothing.
struct Scene {
  int64_t T = 3000, W = 64;
  double dt = 0.002;
  std::vector<float> prob;
  std::vector<double> arrival_ms;
  std::vector<char> missed;
};

Scene make_scene() {
  Scene s;
  s.prob.assign(static_cast<size_t>(s.T * s.W), 0.01f);
  s.arrival_ms.resize(static_cast<size_t>(s.W));
  s.missed.assign(static_cast<size_t>(s.W), 0);
  for (int64_t j = 0; j < s.W; ++j) {
    s.arrival_ms[static_cast<size_t>(j)] = hyperbola_ms(static_cast<double>(j), 20.0, 1200, 1500);
    // A run of missed traces in the middle, and every fourth trace towards the far end.
    s.missed[static_cast<size_t>(j)] = (j >= 30 && j < 36) || (j > 44 && j % 4 == 0);
    if (s.missed[static_cast<size_t>(j)]) continue;
    const double centre = s.arrival_ms[static_cast<size_t>(j)] / (s.dt * 1000.0);
    for (int64_t t = 0; t < s.T; ++t) {
      const double z = (static_cast<double>(t) - centre) / 3.0;
      float& p = s.prob[static_cast<size_t>(t * s.W + j)];
      p = std::max(p, static_cast<float>(0.95 * std::exp(-0.5 * z * z)));
    }
  }
  return s;
}

// weak: picks from 0.3, events from 0.5 (weak picks wait in chains).
std::pair<std::vector<Pick>, std::vector<Detection>> run_scene(const Scene& s, int64_t block, bool fill,
                                                               std::vector<uint8_t> live = {},
                                                               std::unique_ptr<ArrivalDetector>* keep = nullptr,
                                                               bool weak = false) {
  PickerOptions po;
  po.min_separation = 20;
  AssociationOptions ao;
  ao.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  if (weak) {
    po.threshold = 0.3f;
    ao.min_score = 0.5f;
  }
  MoveoutFillOptions fo;
  fo.enabled = fill;
  fo.tolerance_ms = 6;
  auto det = std::make_unique<ArrivalDetector>(s.W, s.dt, po, ao, fo);
  det->begin(0);
  if (!live.empty()) det->set_live_traces(live);
  std::vector<Pick> picks;
  std::vector<Detection> events;
  for (int64_t t = 0; t < s.T; t += block) {
    det->feed(s.prob.data() + t * s.W, std::min(block, s.T - t), &picks, &events);
  }
  det->finish(&picks, &events);
  if (keep != nullptr) *keep = std::move(det);
  return {picks, events};
}

// The same picks, filled ones included, as a run over the whole record.
void expect_same_picks(const std::vector<Pick>& split, const std::vector<Pick>& whole, int64_t block) {
  ASSERT_EQ(split.size(), whole.size()) << "block " << block;
  for (size_t k = 0; k < split.size(); ++k) {
    EXPECT_EQ(split[k].trace, whole[k].trace) << "block " << block;
    EXPECT_EQ(split[k].sample, whole[k].sample) << "block " << block;
    EXPECT_EQ(split[k].filled, whole[k].filled) << "block " << block;
  }
}

TEST(MoveoutFill, FillsTheUnpickedTracesOnTheMoveoutInTimeOrder) {
  const Scene s = make_scene();
  int64_t n_missed = 0;
  for (char m : s.missed) n_missed += m;
  const auto plain = run_scene(s, s.T, false);
  ASSERT_EQ(plain.first.size(), static_cast<size_t>(s.W - n_missed));
  for (const Pick& p : plain.first) EXPECT_FALSE(p.filled);

  std::unique_ptr<ArrivalDetector> det;
  const auto filled = run_scene(s, s.T, true, {}, &det);
  ASSERT_EQ(filled.second.size(), 1u);
  ASSERT_EQ(filled.first.size(), static_cast<size_t>(s.W));  // one pick per trace now
  EXPECT_EQ(det->filled(), n_missed);
  EXPECT_EQ(det->fill_dropped(), 0);
  std::vector<int> seen(static_cast<size_t>(s.W), 0);
  for (size_t k = 0; k < filled.first.size(); ++k) {
    const Pick& p = filled.first[k];
    if (k > 0) {
      EXPECT_LE(filled.first[k - 1].time_ms, p.time_ms) << "out of time order at " << k;
    }
    ++seen[static_cast<size_t>(p.trace)];
    EXPECT_EQ(p.filled, s.missed[static_cast<size_t>(p.trace)] != 0) << "trace " << p.trace;
    if (p.filled) {
      EXPECT_EQ(p.score, 0.0f);
      EXPECT_NEAR(p.time_ms, p.sample * s.dt * 1000.0, 1e-9);
      // The fitted t^2 quadratic against the true hyperbola with an origin time: within 3 ms.
      EXPECT_NEAR(p.time_ms, s.arrival_ms[static_cast<size_t>(p.trace)], 3.0) << "trace " << p.trace;
    }
  }
  for (int64_t j = 0; j < s.W; ++j) EXPECT_EQ(seen[static_cast<size_t>(j)], 1) << "trace " << j;
  // The picks the network made, and the event, are the same with and without the fill.
  std::vector<Pick> mine;
  for (const Pick& p : filled.first) {
    if (!p.filled) mine.push_back(p);
  }
  ASSERT_EQ(mine.size(), plain.first.size());
  for (size_t k = 0; k < mine.size(); ++k) {
    EXPECT_EQ(mine[k].trace, plain.first[k].trace);
    EXPECT_EQ(mine[k].sample, plain.first[k].sample);
  }
  EXPECT_EQ(filled.second[0].time_ms, plain.second[0].time_ms);
  EXPECT_EQ(filled.second[0].n_traces, plain.second[0].n_traces);

  // Whatever the blocks of the stream: the same picks, filled ones included.
  for (int64_t block : {1, 37, 400}) {
    expect_same_picks(run_scene(s, block, true).first, filled.first, block);
  }
}

// With picks below the event threshold, the weak ones wait in their chains: weak codas 400 and
// 800 ms after the arrival keep chains open past the moment the event closes. The event must still be
// filled from all of its picks, the same way whatever the blocks.
TEST(MoveoutFill, WaitsForTheWeakPicksOfTheEventsChains) {
  Scene s = make_scene();
  for (int64_t j = 0; j < s.W; ++j) {
    if (s.missed[static_cast<size_t>(j)]) continue;
    for (double lag : {400.0, 800.0}) {  // two weak bumps along the front: a chain that spans 800 ms
      const double centre = (s.arrival_ms[static_cast<size_t>(j)] + lag) / (s.dt * 1000.0);
      for (int64_t t = 0; t < s.T; ++t) {
        const double z = (static_cast<double>(t) - centre) / 3.0;
        float& p = s.prob[static_cast<size_t>(t * s.W + j)];
        p = std::max(p, static_cast<float>(0.4 * std::exp(-0.5 * z * z)));
      }
    }
  }
  int64_t n_missed = 0;
  for (char m : s.missed) n_missed += m;
  std::unique_ptr<ArrivalDetector> det;
  const auto whole = run_scene(s, s.T, true, {}, &det, true);
  ASSERT_EQ(whole.second.size(), 1u);
  EXPECT_EQ(det->filled(), n_missed);
  // The codas chain only to each other (no strong pick among them): they are dropped, but their
  // open chains held the picks back.
  EXPECT_EQ(whole.first.size(), static_cast<size_t>(s.W));
  for (size_t k = 1; k < whole.first.size(); ++k) EXPECT_LE(whole.first[k - 1].time_ms, whole.first[k].time_ms) << k;
  for (int64_t block : {1, 37, 400}) {
    std::unique_ptr<ArrivalDetector> d2;
    const auto split = run_scene(s, block, true, {}, &d2, true);
    EXPECT_EQ(d2->filled(), n_missed) << "block " << block;
    expect_same_picks(split.first, whole.first, block);
  }
}

// An event is filled only once every pick that can lie on its moveout has arrived: a network pick
// on a far trace that comes after the event was emitted is kept, and that trace is not filled too.
TEST(MoveoutFill, FillsAnEventOnlyOnceItsPicksAreIn) {
  MoveoutFillOptions o;
  o.enabled = true;
  o.tolerance_ms = 5;
  MoveoutFill fill(40, 2.0, o);
  auto pick = [](int64_t trace, double t) {
    Pick p;
    p.trace = trace;
    p.time_ms = t;
    p.sample = t / 2.0;
    p.score = 0.9f;
    return p;
  };
  std::vector<Pick> front, out;
  for (int64_t j = 0; j < 20; ++j) front.push_back(pick(j, 1000.0 + 2.0 * j));
  Detection d;
  d.time_ms = 1000;
  d.last_ms = 1038;
  // The event is emitted; picks up to 1200 ms are in, those of the far traces are not yet.
  fill.add(front, {d}, 1200, 1200, 1200, &out);
  EXPECT_EQ(fill.filled(), 0) << "filled before its window was complete";
  fill.add({pick(30, 1060.0)}, {}, 5000, 5000, 5000, &out);
  fill.finish(&out);
  EXPECT_EQ(fill.filled(), 19);  // traces 20-29 and 31-39
  std::vector<int> on(40, 0);
  for (size_t k = 0; k < out.size(); ++k) {
    if (k > 0) {
      EXPECT_LE(out[k - 1].time_ms, out[k].time_ms);
    }
    ++on[static_cast<size_t>(out[k].trace)];
    if (out[k].trace == 30) {
      EXPECT_FALSE(out[k].filled);
    }
    if (out[k].filled) {
      EXPECT_NEAR(out[k].time_ms, 1000.0 + 2.0 * static_cast<double>(out[k].trace), 1e-6);
    }
  }
  for (int j = 0; j < 40; ++j) EXPECT_EQ(on[static_cast<size_t>(j)], 1) << "trace " << j;
}

TEST(MoveoutFill, NeverFillsTracesThatAreNotLive) {
  const Scene s = make_scene();
  std::vector<uint8_t> live(64, 1);
  std::fill(live.begin() + 30, live.begin() + 33, uint8_t{0});  // padding of a converted file
  std::unique_ptr<ArrivalDetector> det;
  const auto r = run_scene(s, 100, true, live, &det);
  for (const Pick& p : r.first) {
    if (p.filled) {
      EXPECT_NE(live[static_cast<size_t>(p.trace)], 0) << "filled padding trace " << p.trace;
    }
  }
  int64_t n_missed = 0;
  for (char m : s.missed) n_missed += m;
  EXPECT_EQ(det->filled(), n_missed - 3);
}

TEST(MoveoutFill, NoEventNoFill) {
  // One lonely bump: a pick, no event, nothing to fill.
  Scene s = make_scene();
  std::fill(s.prob.begin(), s.prob.end(), 0.01f);
  for (int64_t t = 990; t < 1010; ++t) s.prob[static_cast<size_t>(t * s.W + 5)] = 0.9f;
  std::unique_ptr<ArrivalDetector> det;
  const auto r = run_scene(s, 64, true, {}, &det);
  EXPECT_EQ(r.first.size(), 1u);
  EXPECT_TRUE(r.second.empty());
  EXPECT_EQ(det->filled(), 0);
}

TEST(MoveoutFill, RejectsBadOptions) {
  MoveoutFillOptions o;
  o.enabled = true;
  o.tolerance_ms = 0;
  EXPECT_THROW(MoveoutFill(8, 2.0, o), UsageError);
  o.tolerance_ms = 5;
  EXPECT_THROW(MoveoutFill(0, 2.0, o), UsageError);
  EXPECT_THROW(MoveoutFill(8, 0.0, o), UsageError);
}

}  // namespace
}  // namespace seis
