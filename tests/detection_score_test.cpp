// Scores in the analyst's units (models/detection_score.h) on hand-built ground truth with exact
// expected figures: event precision, recall, F1 and false detections per hour, one-to-one and
// maximal matching (checked against a brute-force maximum matching on random cases), events without
// arrivals, SNR bins; pick hit rates, mean error, MAE and RMS (checked against a brute-force nearest
// pick on random cases), and the JSON form.
#include "models/detection_score.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace seis {
namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

SynthEventRow event(int64_t gather, double first_s, double last_s, double snr_db) {
  SynthEventRow e;
  e.gather = gather;
  e.first_arrival_s = first_s;
  e.last_arrival_s = last_s;
  e.snr_db = snr_db;
  return e;
}

Detection detection(int64_t gather, double time_ms) {
  Detection d;
  d.gather = gather;
  d.time_ms = time_ms;
  return d;
}

SynthPickRow arrival(int64_t gather, int64_t trace, int phase, double time_s) {
  SynthPickRow p;
  p.gather = gather;
  p.trace = trace;
  p.phase = static_cast<uint8_t>(phase);
  p.time_s = time_s;
  return p;
}

Pick pick(int64_t gather, int64_t trace, double time_ms) {
  Pick p;
  p.gather = gather;
  p.trace = trace;
  p.time_ms = time_ms;
  return p;
}

GroundTruth two_hours() {
  GroundTruth t;
  t.gathers = 2;
  t.samples = 1000;
  t.width = 8;
  t.dt = 3.6;  // 2 x 1000 x 3.6 s = 2 hours
  t.duration_s = 7200;
  return t;
}

TEST(DetectionScore, EventFiguresOnHandNumbers) {
  GroundTruth t = two_hours();
  t.events = {event(0, 1.0, 1.2, -8),     // span [950, 1250] ms
              event(0, 1.1, 1.15, 2),     // span [1050, 1200], inside the first
              event(0, kNaN, kNaN, 5),    // no arrivals: never scored, in no bin
              event(1, 2.0, 2.0, 12),     // span [1950, 2050]
              event(1, 10.0, 10.0, -6)};  // span [9950, 10050], missed
  // Out of order on purpose: the scorer sorts.
  const std::vector<Detection> d = {detection(1, 5000),   // false: no event
                                    detection(0, 1245),   // false: the first event is taken by 1240
                                    detection(0, 1240),   // the first event (the second ended at 1200)
                                    detection(1, 2050),   // span edge included
                                    detection(0, 900),    // false: before any span
                                    detection(0, 1100)};  // both spans: the one ending first (the second)
  const EventScore s = score_events(t, d, ScoreOptions{});
  EXPECT_EQ(s.events, 4);
  EXPECT_EQ(s.events_without_arrivals, 1);
  EXPECT_EQ(s.detections, 6);
  EXPECT_EQ(s.matched_events, 3);
  EXPECT_EQ(s.matched_detections, 3);
  EXPECT_EQ(s.false_detections(), 3);
  EXPECT_DOUBLE_EQ(s.hours, 2.0);
  EXPECT_DOUBLE_EQ(s.precision(), 0.5);
  EXPECT_DOUBLE_EQ(s.recall(), 0.75);
  EXPECT_DOUBLE_EQ(s.f1(), 0.6);
  EXPECT_DOUBLE_EQ(s.false_per_hour(), 1.5);

  // Bins (-inf, -6): the first event, [-6, -3): the missed one, [0, 3): the second, [10, inf): the
  // gather-1 event; [3, 6) would hold only the event without arrivals, so it is not reported.
  ASSERT_EQ(s.by_snr.size(), 4u);
  EXPECT_TRUE(std::isinf(s.by_snr[0].lo_db) && s.by_snr[0].lo_db < 0);
  EXPECT_EQ(s.by_snr[0].hi_db, -6);
  EXPECT_EQ(s.by_snr[0].events, 1);
  EXPECT_EQ(s.by_snr[0].matched, 1);
  EXPECT_EQ(s.by_snr[1].lo_db, -6);
  EXPECT_EQ(s.by_snr[1].hi_db, -3);
  EXPECT_EQ(s.by_snr[1].events, 1);
  EXPECT_EQ(s.by_snr[1].matched, 0);
  EXPECT_DOUBLE_EQ(s.by_snr[1].recall(), 0.0);
  EXPECT_EQ(s.by_snr[2].lo_db, 0);
  EXPECT_EQ(s.by_snr[2].hi_db, 3);
  EXPECT_EQ(s.by_snr[2].matched, 1);
  EXPECT_EQ(s.by_snr[3].lo_db, 10);
  EXPECT_TRUE(std::isinf(s.by_snr[3].hi_db) && s.by_snr[3].hi_db > 0);
  EXPECT_EQ(s.by_snr[3].matched, 1);

  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j["matched_events"], 3);
  EXPECT_DOUBLE_EQ(j["f1"].get<double>(), 0.6);
  EXPECT_TRUE(j["by_snr"][0]["lo_db"].is_null());
  EXPECT_EQ(j["by_snr"][1]["lo_db"].get<double>(), -6);
}

TEST(DetectionScore, MatchingIsOneToOne) {
  GroundTruth t = two_hours();
  t.events = {event(0, 1.0, 1.0, 0)};
  // Two detections in one event: one match, one false.
  EventScore s = score_events(t, {detection(0, 990), detection(0, 1010)}, ScoreOptions{});
  EXPECT_EQ(s.matched_events, 1);
  EXPECT_EQ(s.false_detections(), 1);
  EXPECT_DOUBLE_EQ(s.precision(), 0.5);
  EXPECT_DOUBLE_EQ(s.recall(), 1.0);
  // One detection in two overlapping events: it finds one of them.
  t.events = {event(0, 1.0, 1.3, 0), event(0, 1.1, 1.2, 0)};
  s = score_events(t, {detection(0, 1150)}, ScoreOptions{});
  EXPECT_EQ(s.matched_events, 1);
  EXPECT_DOUBLE_EQ(s.recall(), 0.5);
  EXPECT_DOUBLE_EQ(s.precision(), 1.0);
  // Maximal: the detection in both goes to the short event, so the later one still finds the long.
  t.events = {event(0, 0.05, 1.0, 0), event(0, 0.15, 0.15, 0)};
  s = score_events(t, {detection(0, 150), detection(0, 500)}, ScoreOptions{});
  EXPECT_EQ(s.matched_events, 2);
  // Another gather's detection finds nothing.
  s = score_events(t, {detection(1, 150)}, ScoreOptions{});
  EXPECT_EQ(s.matched_events, 0);
}

TEST(DetectionScore, NothingDetectedScoresZero) {
  GroundTruth t = two_hours();
  t.events = {event(0, 1.0, 1.0, 0), event(1, kNaN, kNaN, 0)};
  const EventScore s = score_events(t, {}, ScoreOptions{});
  EXPECT_EQ(s.events, 1);
  EXPECT_EQ(s.events_without_arrivals, 1);
  EXPECT_DOUBLE_EQ(s.precision(), 0.0);
  EXPECT_DOUBLE_EQ(s.recall(), 0.0);
  EXPECT_DOUBLE_EQ(s.f1(), 0.0);
  EXPECT_DOUBLE_EQ(s.false_per_hour(), 0.0);
  // The tolerance widens the spans.
  ScoreOptions wide;
  wide.tolerance_ms = 200;
  EXPECT_EQ(score_events(t, {detection(0, 820)}, ScoreOptions{}).matched_events, 0);
  EXPECT_EQ(score_events(t, {detection(0, 820)}, wide).matched_events, 1);
}

// The size of a maximum matching of detections to events, by augmenting paths (Kuhn).
int64_t brute_force_matching(const GroundTruth& t, const std::vector<Detection>& d, double tol) {
  const size_t ne = t.events.size();
  std::vector<int> owner(ne, -1);
  auto holds = [&](size_t e, size_t k) {
    const SynthEventRow& ev = t.events[e];
    return ev.gather == d[k].gather && d[k].time_ms >= ev.first_arrival_s * 1000 - tol &&
           d[k].time_ms <= ev.last_arrival_s * 1000 + tol;
  };
  int64_t n = 0;
  for (size_t k = 0; k < d.size(); ++k) {
    std::vector<char> seen(ne, 0);
    std::function<bool(size_t)> augment = [&](size_t det) {
      for (size_t e = 0; e < ne; ++e) {
        if (seen[e] || !holds(e, det)) continue;
        seen[e] = 1;
        if (owner[e] < 0 || augment(static_cast<size_t>(owner[e]))) {
          owner[e] = static_cast<int>(det);
          return true;
        }
      }
      return false;
    };
    n += augment(k);
  }
  return n;
}

TEST(DetectionScore, MatchingIsMaximumOnRandomCases) {
  std::mt19937_64 rng(2024);
  std::uniform_real_distribution<double> u(0, 1);
  for (int trial = 0; trial < 200; ++trial) {
    GroundTruth t = two_hours();
    const int ne = 1 + static_cast<int>(rng() % 12), nd = static_cast<int>(rng() % 15);
    for (int e = 0; e < ne; ++e) {
      const double first = u(rng) * 2.0, len = u(rng) * 0.4;
      t.events.push_back(event(static_cast<int64_t>(rng() % 2), first, first + len, 0));
    }
    std::vector<Detection> d;
    for (int k = 0; k < nd; ++k) d.push_back(detection(static_cast<int64_t>(rng() % 2), u(rng) * 2500));
    const EventScore s = score_events(t, d, ScoreOptions{});
    ASSERT_EQ(s.matched_events, brute_force_matching(t, d, 50)) << "trial " << trial;
  }
}

TEST(DetectionScore, PickFiguresOnHandNumbers) {
  GroundTruth t = two_hours();
  t.picks = {arrival(0, 0, 0, 1.000),   // nearest pick 1006: +6
             arrival(0, 0, 1, 1.030),   // nearest pick 1041: +11 (1006 is 24 away)
             arrival(0, 1, 0, 0.500),   // 485: -15
             arrival(0, 2, 1, 0.800),   // no pick on its trace: a miss
             arrival(1, 0, 0, 2.000)};  // 2100: +100, outside the tolerance
  const std::vector<Pick> p = {pick(1, 0, 2100), pick(0, 0, 1041), pick(0, 3, 800), pick(0, 1, 485), pick(0, 0, 1006)};
  const PickScore s = score_picks(t, p, ScoreOptions{});
  EXPECT_EQ(s.arrivals, 5);
  EXPECT_EQ(s.picks, 5);
  EXPECT_EQ(s.hits10, 1);
  EXPECT_EQ(s.hits20, 3);
  EXPECT_EQ(s.hits, 3);
  EXPECT_DOUBLE_EQ(s.hit10(), 0.2);
  EXPECT_DOUBLE_EQ(s.hit20(), 0.6);
  EXPECT_NEAR(s.mean_ms, 2.0 / 3.0, 1e-9);
  EXPECT_NEAR(s.mae_ms, 32.0 / 3.0, 1e-9);
  EXPECT_NEAR(s.rms_ms, std::sqrt(382.0 / 3.0), 1e-9);
  EXPECT_NEAR(s.median_ms, 6.0, 1e-9);  // of -15, +6, +11
  EXPECT_EQ(s.p_arrivals, 3);
  EXPECT_EQ(s.p_hits10, 1);
  EXPECT_EQ(s.p_hits20, 2);
  EXPECT_DOUBLE_EQ(s.p_hit10(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.p_hit20(), 2.0 / 3.0);
  EXPECT_EQ(s.unmatched_picks, 2);  // the pick on trace 3 and the one 100 ms off

  // A tie goes to the earlier pick: error -10, not +10.
  t.picks = {arrival(0, 0, 0, 1.0)};
  const PickScore tie = score_picks(t, {pick(0, 0, 1010), pick(0, 0, 990)}, ScoreOptions{});
  EXPECT_DOUBLE_EQ(tie.mean_ms, -10.0);
  EXPECT_DOUBLE_EQ(tie.median_ms, -10.0);
  EXPECT_EQ(tie.unmatched_picks, 0);
  // An even count: the median is the mean of the middle two (+6 and +11 of -15, +6, +11, +12).
  GroundTruth four = two_hours();
  four.picks = {arrival(0, 0, 0, 1.000), arrival(0, 0, 1, 1.030), arrival(0, 1, 0, 0.500), arrival(0, 4, 0, 0.300)};
  std::vector<Pick> p4 = p;
  p4.push_back(pick(0, 4, 312));
  EXPECT_NEAR(score_picks(four, p4, ScoreOptions{}).median_ms, 8.5, 1e-9);

  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j["hits20"], 3);
  EXPECT_NEAR(j["mae_ms"].get<double>(), 32.0 / 3.0, 1e-9);
}

TEST(DetectionScore, PicksMatchBruteForceOnRandomCases) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> u(0, 1);
  GroundTruth t = two_hours();
  std::vector<Pick> p;
  for (int k = 0; k < 3000; ++k) {
    t.picks.push_back(arrival(static_cast<int64_t>(rng() % 2), static_cast<int64_t>(rng() % 8),
                              static_cast<int>(rng() % 2), u(rng) * 4));
  }
  for (int k = 0; k < 4000; ++k) {
    p.push_back(pick(static_cast<int64_t>(rng() % 2), static_cast<int64_t>(rng() % 8), u(rng) * 4000));
  }
  ScoreOptions o;
  o.tolerance_ms = 30;
  const PickScore s = score_picks(t, p, o);
  int64_t hits10 = 0, hits20 = 0, hits = 0, p_hits10 = 0, unmatched = 0;
  double sum_abs = 0;
  for (const SynthPickRow& a : t.picks) {
    double best = std::numeric_limits<double>::infinity();
    for (const Pick& q : p) {
      if (q.gather == a.gather && q.trace == a.trace) best = std::min(best, std::fabs(q.time_ms - a.time_s * 1000));
    }
    hits10 += best <= 10;
    hits20 += best <= 20;
    p_hits10 += a.phase == 0 && best <= 10;
    if (best <= 30) {
      ++hits;
      sum_abs += best;
    }
  }
  for (const Pick& q : p) {
    bool near = false;
    for (const SynthPickRow& a : t.picks) {
      near = near || (q.gather == a.gather && q.trace == a.trace && std::fabs(q.time_ms - a.time_s * 1000) <= 30);
    }
    unmatched += !near;
  }
  EXPECT_EQ(s.hits10, hits10);
  EXPECT_EQ(s.hits20, hits20);
  EXPECT_EQ(s.hits, hits);
  EXPECT_EQ(s.p_hits10, p_hits10);
  EXPECT_EQ(s.unmatched_picks, unmatched);
  EXPECT_NEAR(s.mae_ms, sum_abs / static_cast<double>(hits), 1e-9);
  EXPECT_GT(hits10, 100) << "the random case should exercise hits";
}

}  // namespace
}  // namespace seis
