// Picks and events from probabilities (models/picking.h): weighted centres, the minimum separation,
// moveout-linked fronts, P and S merged into one event, and the same output whatever the block
// sizes of the stream.
#include "models/picking.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "engine/error.h"

namespace seis {
namespace {

std::vector<Pick> pick_all(const std::vector<float>& prob, int64_t T, int64_t W, const PickerOptions& o,
                           const std::vector<int64_t>& blocks) {
  TracePicker picker(W, o);
  std::vector<Pick> out;
  int64_t t = 0;
  size_t b = 0;
  while (t < T) {
    const int64_t rows = std::min(T - t, blocks.empty() ? T : blocks[b++ % blocks.size()]);
    const double before = picker.watermark();
    const size_t n0 = out.size();
    picker.feed(prob.data() + t * W, rows, &out);
    for (size_t k = n0; k < out.size(); ++k) EXPECT_GE(out[k].sample, before - 1e-9) << "a pick behind the watermark";
    t += rows;
  }
  picker.finish(&out);
  std::sort(out.begin(), out.end(),
            [](const Pick& a, const Pick& c) { return a.trace != c.trace ? a.trace < c.trace : a.sample < c.sample; });
  return out;
}

TEST(TracePicker, WeightedCentreAndPeak) {
  const int64_t T = 30, W = 2;
  std::vector<float> prob(T * W, 0.1f);
  const float run[] = {0.6f, 0.9f, 0.6f};
  for (int k = 0; k < 3; ++k) prob[(11 + k) * W + 1] = run[k];  // centre exactly 12
  prob[20 * W + 0] = 0.7f;                                      // one sample: centre 20
  prob[21 * W + 0] = 0.5f;                                      // >= threshold counts: centre (0.7*20 + 0.5*21) / 1.2
  PickerOptions o;
  const std::vector<Pick> p = pick_all(prob, T, W, o, {});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].trace, 0);
  EXPECT_NEAR(p[0].sample, (0.7 * 20 + 0.5 * 21) / 1.2, 1e-6);
  EXPECT_FLOAT_EQ(p[0].score, 0.7f);
  EXPECT_EQ(p[1].trace, 1);
  EXPECT_NEAR(p[1].sample, 12.0, 1e-6);
  EXPECT_FLOAT_EQ(p[1].score, 0.9f);
}

TEST(TracePicker, MinimumSeparationKeepsTheStronger) {
  const int64_t T = 100, W = 1;
  std::vector<float> prob(T, 0.0f);
  prob[10] = 0.6f;
  prob[14] = 0.8f;   // 4 samples later, stronger: replaces the first
  prob[17] = 0.7f;   // 3 after the kept one, weaker: dropped
  prob[40] = 0.55f;  // far enough: kept
  prob[99] = 0.9f;   // a run open at the end closes there
  PickerOptions o;
  o.min_separation = 10;
  const std::vector<Pick> p = pick_all(prob, T, W, o, {});
  ASSERT_EQ(p.size(), 3u);
  EXPECT_DOUBLE_EQ(p[0].sample, 14.0);
  EXPECT_DOUBLE_EQ(p[1].sample, 40.0);
  EXPECT_DOUBLE_EQ(p[2].sample, 99.0);
}

TEST(TracePicker, BlockSizesDoNotChangeThePicks) {
  const int64_t T = 3000, W = 7;
  std::mt19937_64 gen(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> prob(T * W);
  for (auto& v : prob) v = u(gen) < 0.9f ? 0.2f * u(gen) : u(gen);  // sparse, ragged runs
  PickerOptions o;
  o.min_separation = 4;
  const std::vector<Pick> whole = pick_all(prob, T, W, o, {});
  ASSERT_GT(whole.size(), 100u);
  for (const std::vector<int64_t>& blocks : {std::vector<int64_t>{1}, {7, 1, 64}, {1000}, {3, 250}}) {
    const std::vector<Pick> split = pick_all(prob, T, W, o, blocks);
    ASSERT_EQ(split.size(), whole.size());
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(split[k].trace, whole[k].trace);
      EXPECT_EQ(split[k].sample, whole[k].sample);  // bit-identical: the same sums in the same order
      EXPECT_EQ(split[k].score, whole[k].score);
    }
  }
}

// Picks of one source on W traces: P at t0 + hyperbolic moveout, S at 1.7 x the P traveltime.
std::vector<Pick> source_picks(int64_t W, double origin_ms, double depth_m, double apex, double dx) {
  std::vector<Pick> p;
  for (int phase = 0; phase < 2; ++phase) {
    const double v = phase == 0 ? 5000.0 : 5000.0 / 1.7;
    for (int64_t j = 0; j < W; ++j) {
      const double h = (static_cast<double>(j) - apex) * dx;
      Pick k;
      k.trace = j;
      k.time_ms = origin_ms + std::sqrt(depth_m * depth_m + h * h) / v * 1000.0;
      k.score = 0.8f;
      p.push_back(k);
    }
  }
  return p;
}

std::vector<Detection> associate(std::vector<Pick> picks, const AssociationOptions& o) {
  std::stable_sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) { return a.time_ms < b.time_ms; });
  EventAssociator a(o, 3, 10);
  std::vector<Detection> out;
  for (const Pick& p : picks) a.add(p, &out);
  a.finish(&out);
  return out;
}

TEST(EventAssociator, PAndSOfOneSourceAreOneEvent) {
  const int64_t W = 48;
  AssociationOptions o;
  o.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  const std::vector<Pick> picks = source_picks(W, 1000.0, 1500.0, 20.0, 10.0);
  const std::vector<Detection> d = associate(picks, o);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].gather, 3);
  EXPECT_EQ(d[0].event, 10);
  EXPECT_EQ(d[0].n_traces, W);
  EXPECT_NEAR(d[0].time_ms, 1000.0 + 1500.0 / 5000.0 * 1000.0, 1e-9);  // the apex P arrival
  EXPECT_FLOAT_EQ(d[0].score, 0.8f);
}

TEST(EventAssociator, SeparateSourcesAndScatteredNoise) {
  const int64_t W = 40;
  AssociationOptions o;
  o.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  std::vector<Pick> picks = source_picks(W, 0.0, 1200.0, 5.0, 10.0);
  const std::vector<Pick> second = source_picks(W, 4000.0, 2000.0, 30.0, 10.0);
  picks.insert(picks.end(), second.begin(), second.end());
  // Noise: isolated picks, each far from the others in time or across traces.
  for (int k = 0; k < 12; ++k) {
    Pick p;
    p.trace = (k * 7) % W;
    p.time_ms = 2000.0 + 97.0 * k;
    p.score = 0.6f;
    picks.push_back(p);
  }
  const std::vector<Detection> d = associate(picks, o);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].event, 10);
  EXPECT_EQ(d[1].event, 11);
  EXPECT_NEAR(d[0].time_ms, 1200.0 / 5000.0 * 1000.0, 1e-9);
  EXPECT_NEAR(d[1].time_ms, 4000.0 + 2000.0 / 5000.0 * 1000.0, 1e-9);
  EXPECT_EQ(d[1].n_traces, W);
}

TEST(EventAssociator, TooFewTracesOrTooSteepIsNoEvent) {
  AssociationOptions o;
  o.ms_per_trace = 5;
  o.tolerance_ms = 2;
  o.min_traces = 8;
  std::vector<Pick> picks;
  for (int64_t j = 0; j < 7; ++j) picks.push_back(Pick{0, j, 0, 100.0 + j, 0.9f});           // 7 traces: too few
  for (int64_t j = 0; j < 20; ++j) picks.push_back(Pick{0, j, 0, 3000.0 + 20.0 * j, 0.9f});  // 20 ms/trace: too steep
  EXPECT_TRUE(associate(picks, o).empty());
  picks.push_back(Pick{0, 7, 0, 107.0, 0.9f});  // the eighth trace makes it a front
  EXPECT_EQ(associate(picks, o).size(), 1u);
}

// A Gaussian bump of the given peak (sigma 3 samples) centred on `centre` (samples, fractional) on
// trace j of prob [T][W], kept where prob is already higher.
void add_bump(std::vector<float>& prob, int64_t T, int64_t W, int64_t j, double centre, double peak) {
  for (int64_t t = 0; t < T; ++t) {
    const double z = (static_cast<double>(t) - centre) / 3.0;
    prob[t * W + j] = std::max(prob[t * W + j], static_cast<float>(peak * std::exp(-0.5 * z * z)));
  }
}

// ArrivalDetector over prob [T][W] fed in blocks of `block` rows: its picks and events.
std::pair<std::vector<Pick>, std::vector<Detection>> detect_in_blocks(const std::vector<float>& prob, int64_t T,
                                                                      int64_t W, double dt, const PickerOptions& po,
                                                                      const AssociationOptions& ao, int64_t block) {
  ArrivalDetector det(W, dt, po, ao);
  det.begin(0);
  std::vector<Pick> picks;
  std::vector<Detection> events;
  for (int64_t t = 0; t < T; t += block) det.feed(prob.data() + t * W, std::min(block, T - t), &picks, &events);
  det.finish(&picks, &events);
  return {picks, events};
}

// The same picks (trace and sample) and the same events' times as `whole`.
void expect_same_output(const std::pair<std::vector<Pick>, std::vector<Detection>>& split,
                        const std::pair<std::vector<Pick>, std::vector<Detection>>& whole, int64_t block) {
  ASSERT_EQ(split.first.size(), whole.first.size()) << "block " << block;
  for (size_t k = 0; k < split.first.size(); ++k) {
    EXPECT_EQ(split.first[k].trace, whole.first[k].trace) << "block " << block;
    EXPECT_EQ(split.first[k].sample, whole.first[k].sample) << "block " << block;
  }
  ASSERT_EQ(split.second.size(), whole.second.size()) << "block " << block;
  for (size_t k = 0; k < split.second.size(); ++k) {
    EXPECT_EQ(split.second[k].time_ms, whole.second[k].time_ms) << "block " << block << ", event " << k;
  }
}

TEST(ArrivalDetector, PicksLandOnTheArrivalsWhateverTheBlocks) {
  const int64_t T = 2000, W = 32;
  const double dt = 0.002;
  std::vector<float> prob(T * W, 0.01f);
  std::vector<double> truth(W);
  for (int64_t j = 0; j < W; ++j) {
    const double h = (static_cast<double>(j) - 12.0) * 10.0;
    truth[j] = (0.5 + std::sqrt(1500.0 * 1500.0 + h * h) / 5000.0) / dt;  // in samples, fractional
    add_bump(prob, T, W, j, truth[j], 0.95);
  }
  PickerOptions po;
  po.min_separation = 20;
  AssociationOptions ao;
  ao.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  auto run = [&](int64_t block) { return detect_in_blocks(prob, T, W, dt, po, ao, block); };
  const auto whole = run(T);
  ASSERT_EQ(whole.first.size(), static_cast<size_t>(W));
  for (size_t k = 1; k < whole.first.size(); ++k) EXPECT_LE(whole.first[k - 1].time_ms, whole.first[k].time_ms);
  for (const Pick& p : whole.first) {
    EXPECT_NEAR(p.sample, truth[p.trace], 0.25) << "trace " << p.trace;  // the run truncates the bump unevenly
    EXPECT_NEAR(p.time_ms, p.sample * dt * 1000.0, 1e-9);
  }
  ASSERT_EQ(whole.second.size(), 1u);
  EXPECT_EQ(whole.second[0].n_traces, W);
  EXPECT_NEAR(whole.second[0].time_ms, truth[12] * dt * 1000.0, 0.1);
  for (int64_t block : {1, 17, 500}) expect_same_output(run(block), whole, block);
}

// Picks at a lower threshold than events: the weak picks of a front that is strong on some of its
// traces are kept (chained to the strong ones), a front that is weak on every trace and a weak blob
// on one trace are not; the events are those of the strong picks alone.
TEST(ArrivalDetector, WeakPicksChainedToAStrongFrontAreKeptTheOthersDropped) {
  const int64_t T = 3000, W = 48;
  const double dt = 0.002;
  std::vector<float> prob(T * W, 0.01f);
  std::vector<double> front_a(W), front_b(W);
  auto bump = [&](int64_t j, double centre, float peak) { add_bump(prob, T, W, j, centre, peak); };
  for (int64_t j = 0; j < W; ++j) {
    const double h = (static_cast<double>(j) - 12.0) * 10.0;
    front_a[j] = (0.5 + std::sqrt(1500.0 * 1500.0 + h * h) / 5000.0) / dt;
    front_b[j] = (4.0 + std::sqrt(1500.0 * 1500.0 + h * h) / 5000.0) / dt;
    bump(j, front_a[j], j < 16 ? 0.95f : 0.6f);  // strong on traces 0-15, weak on the rest
    bump(j, front_b[j], 0.6f);                   // weak everywhere
  }
  bump(40, 1.5 / dt, 0.6f);  // a weak blob on one trace
  PickerOptions po;
  po.min_separation = 20;
  po.threshold = 0.4f;
  AssociationOptions ao;
  ao.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  ao.min_score = 0.8f;
  auto run = [&](const PickerOptions& o, int64_t block) { return detect_in_blocks(prob, T, W, dt, o, ao, block); };
  const auto whole = run(po, T);
  ASSERT_EQ(whole.first.size(), static_cast<size_t>(W)) << "front A's picks, strong and weak, and nothing else";
  for (size_t k = 1; k < whole.first.size(); ++k) {
    const Pick &a = whole.first[k - 1], &b = whole.first[k];
    EXPECT_TRUE(a.sample < b.sample || (a.sample == b.sample && a.trace < b.trace)) << "picks out of order at " << k;
  }
  std::vector<int> per_trace(W, 0);
  for (const Pick& p : whole.first) {
    EXPECT_NEAR(p.sample, front_a[p.trace], 0.5) << "trace " << p.trace;
    EXPECT_EQ(p.score >= 0.8f, p.trace < 16) << "trace " << p.trace;
    ++per_trace[static_cast<size_t>(p.trace)];
  }
  EXPECT_EQ(std::count(per_trace.begin(), per_trace.end(), 1), W);
  // The events: front A's strong traces only, as if the picks ran at the events' threshold.
  PickerOptions strong_only = po;
  strong_only.threshold = 0.8f;
  const auto reference = run(strong_only, T);
  ASSERT_EQ(whole.second.size(), 1u);
  ASSERT_EQ(reference.second.size(), 1u);
  EXPECT_EQ(whole.second[0].n_traces, 16);
  EXPECT_EQ(reference.second[0].n_traces, 16);
  EXPECT_NEAR(whole.second[0].time_ms, reference.second[0].time_ms, 1e-9);
  EXPECT_EQ(reference.first.size(), 16u);
  for (int64_t block : {1, 17, 500}) expect_same_output(run(po, block), whole, block);
}

// A weak pick is kept only when its chain holds strong picks on anchor_traces distinct traces
// (detect: --min-traces by default, the traces of an event's front); strong picks are written
// whatever their chain. Four fronts, 3 s apart, weak (0.6) wherever not said:
// - A, a hyperbola strong on 8 traces (an event at min_traces 8);
// - C, a hyperbola strong on 7 traces, with a second strong pick on trace 0 (8 strong picks on 7
//   traces: no event);
// - L and R, two arms from the array's ends meeting in the middle (two chains until they meet),
//   one arm strong on 9 traces, the other weak: L strong on the left, R on the right, so that the
//   anchored chain is once the one taking the other in and once the one taken in.
// Counted per front for anchor_traces 1 (every pick), 8, 9 and 10; the output does not depend on
// the blocks.
TEST(ArrivalDetector, WeakPicksNeedAChainStrongOnAnchorTraces) {
  const int64_t T = 6000, W = 48;
  const double dt = 0.002;
  std::vector<float> prob(T * W, 0.01f);
  auto bump = [&](int64_t j, double centre, float peak) { add_bump(prob, T, W, j, centre, peak); };
  enum { kA, kC, kCExtra, kL, kR, kFronts };
  std::vector<std::vector<double>> at(kFronts, std::vector<double>(W, -1e9));
  for (int64_t j = 0; j < W; ++j) {
    const double h = (static_cast<double>(j) - 20.0) * 10.0;
    const double arm = 2.0 * static_cast<double>(std::min(j, W - 1 - j));  // samples after the ends' arrival
    at[kA][j] = (0.5 + std::sqrt(1500.0 * 1500.0 + h * h) / 5000.0) / dt;
    at[kC][j] = (3.5 + std::sqrt(1500.0 * 1500.0 + h * h) / 5000.0) / dt;
    at[kL][j] = 6.5 / dt + arm;
    at[kR][j] = 9.5 / dt + arm;
    bump(j, at[kA][j], j < 8 ? 0.95f : 0.6f);
    bump(j, at[kC][j], j < 7 ? 0.95f : 0.6f);
    bump(j, at[kL][j], j < 9 ? 0.95f : 0.6f);
    bump(j, at[kR][j], j >= W - 9 ? 0.95f : 0.6f);
  }
  at[kCExtra][0] = at[kC][0] + 12.0;  // 24 ms later: a pick of its own, linked to C's trace 4
  bump(0, at[kCExtra][0], 0.95f);
  PickerOptions po;
  po.min_separation = 10;
  po.threshold = 0.4f;
  AssociationOptions ao;
  ao.ms_per_trace = 10.0 / 1500.0 * 1000.0;
  ao.min_score = 0.8f;
  ao.min_traces = 8;
  struct Case {
    int64_t anchor;
    std::array<int64_t, kFronts> picks;  // per front
  };
  const int64_t w = W;
  for (const Case& c :
       {Case{1, {w, w, 1, w, w}}, Case{8, {w, 7, 1, w, w}}, Case{9, {8, 7, 1, w, w}}, Case{10, {8, 7, 1, 9, 9}}}) {
    SCOPED_TRACE(::testing::Message() << "anchor_traces " << c.anchor);
    ao.anchor_traces = c.anchor;
    const auto whole = detect_in_blocks(prob, T, W, dt, po, ao, T);
    std::array<int64_t, kFronts> count{};
    for (const Pick& p : whole.first) {
      int front = -1;
      for (int f = 0; f < kFronts; ++f) {
        if (std::fabs(p.sample - at[f][p.trace]) < 0.5) front = f;
      }
      ASSERT_GE(front, 0) << "a pick on no front: trace " << p.trace << ", sample " << p.sample;
      ++count[front];
    }
    for (int f = 0; f < kFronts; ++f) EXPECT_EQ(count[f], c.picks[f]) << "front " << f;
    ASSERT_EQ(whole.second.size(), 3u) << "A, L and R are events; C's 7 strong traces are not";
    EXPECT_EQ(whole.second[0].n_traces, 8);
    EXPECT_EQ(whole.second[1].n_traces, 9);
    EXPECT_EQ(whole.second[2].n_traces, 9);
    for (int64_t block : {1, 17, 500})
      expect_same_output(detect_in_blocks(prob, T, W, dt, po, ao, block), whole, block);
  }
  ao.anchor_traces = 0;
  EXPECT_THROW(PickChains{ao}, UsageError);
}

// The picker's delay (PickerOptions::delay_ms, detect --pick-delay-ms): every pick and the event's
// time move by the same amount, earlier for a positive delay, later for a negative one, never below
// sample 0; the same output whatever the blocks.
TEST(ArrivalDetector, ADelayMovesEveryPickAndTheEventWhateverTheBlocks) {
  const int64_t T = 1200, W = 24;
  const double dt = 0.002;
  std::vector<float> prob(T * W, 0.01f);
  auto bump = [&](int64_t j, double centre) { add_bump(prob, T, W, j, centre, 0.95); };
  for (int64_t j = 0; j < W; ++j) bump(j, 300.0 + 2.0 * static_cast<double>(j));
  bump(3, 2.0);  // an arrival at the record's start: a 10 ms delay would take it below sample 0
  PickerOptions po;
  po.min_separation = 20;
  AssociationOptions ao;
  ao.ms_per_trace = 10.0;
  const auto plain = detect_in_blocks(prob, T, W, dt, po, ao, T);
  ASSERT_EQ(plain.first.size(), static_cast<size_t>(W + 1));
  ASSERT_EQ(plain.second.size(), 1u);
  for (double delay_ms : {7.0, -4.0, 10.0}) {
    SCOPED_TRACE(::testing::Message() << "delay " << delay_ms << " ms");
    po.delay_ms = delay_ms;
    const auto moved = detect_in_blocks(prob, T, W, dt, po, ao, T);
    ASSERT_EQ(moved.first.size(), plain.first.size());
    for (size_t k = 0; k < plain.first.size(); ++k) {
      const Pick &a = plain.first[k], &b = moved.first[k];
      EXPECT_EQ(b.trace, a.trace);
      EXPECT_NEAR(b.sample, std::max(0.0, a.sample - delay_ms / 2.0), 1e-9);
      EXPECT_NEAR(b.time_ms, b.sample * 2.0, 1e-9);
      EXPECT_EQ(b.score, a.score);
    }
    ASSERT_EQ(moved.second.size(), 1u);
    EXPECT_NEAR(moved.second[0].time_ms, plain.second[0].time_ms - delay_ms, 1e-9);
    for (int64_t block : {1, 17, 500})
      expect_same_output(detect_in_blocks(prob, T, W, dt, po, ao, block), moved, block);
  }
}

TEST(Picking, BadOptionsAreUsageErrors) {
  PickerOptions o;
  o.threshold = 1.0f;
  EXPECT_THROW(TracePicker(4, o), UsageError);
  o.threshold = 0.5f;
  o.min_separation = 0;
  EXPECT_THROW(TracePicker(4, o), UsageError);
  o.min_separation = 1;
  o.delay_ms = std::nan("");
  EXPECT_THROW(ArrivalDetector(4, 0.002, o, AssociationOptions{}), UsageError);
  AssociationOptions a;
  a.min_traces = 0;
  EXPECT_THROW(EventAssociator(a, 0, 0), UsageError);
}

}  // namespace
}  // namespace seis
