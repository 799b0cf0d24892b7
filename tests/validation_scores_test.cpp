// Validation scores in the analyst's units (apps/validation_scores.h): the truth of the validation
// gathers renumbered in validation order, and the scorer from logits to event and pick scores.
#include "apps/validation_scores.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

seis::SynthPickRow pick(int64_t gather, int64_t trace, double time_s, int64_t event) {
  seis::SynthPickRow p;
  p.gather = gather;
  p.trace = trace;
  p.time_s = time_s;
  p.event = event;
  return p;
}

seis::SynthEventRow event(int64_t gather, int64_t id, double first_s, double last_s) {
  seis::SynthEventRow e;
  e.gather = gather;
  e.event = id;
  e.first_arrival_s = first_s;
  e.last_arrival_s = last_s;
  return e;
}

// A file's truth of `gathers` gathers of 64 x 16 at 2 ms: one event per gather, one pick per gather
// whose time encodes (file, gather), so that a remapped row tells where it came from.
seis::GroundTruth file_truth(int file, int64_t gathers) {
  seis::GroundTruth t;
  t.dt = 0.002;
  t.gathers = gathers;
  t.samples = 64;
  t.width = 16;
  t.duration_s = static_cast<double>(gathers) * 64 * 0.002;
  for (int64_t g = 0; g < gathers; ++g) {
    const double time = 0.01 * file + 0.001 * static_cast<double>(g);
    t.picks.push_back(pick(g, 3, time, g));
    t.events.push_back(event(g, g, time, time));
  }
  return t;
}

// Validation indices [5, 2] of a set of two 4-gather files: global 5 is file 1's gather 1, global 2
// file 0's gather 2. They become validation gathers 0 and 1; every other gather's rows are dropped.
TEST(ValidationTruth, RowsOfTheValidationGathersAreRenumberedInValidationOrder) {
  const std::vector<seis::GroundTruth> files = {file_truth(0, 4), file_truth(1, 4)};
  const std::vector<seis::SampleSet::Location> where = {{1, 1}, {0, 2}};
  const seis::GroundTruth t = seis::validation_truth(files, where);
  EXPECT_EQ(t.gathers, 2);
  EXPECT_EQ(t.samples, 64);
  EXPECT_EQ(t.width, 16);
  EXPECT_DOUBLE_EQ(t.dt, 0.002);
  EXPECT_DOUBLE_EQ(t.duration_s, 2 * 64 * 0.002);
  ASSERT_EQ(t.picks.size(), 2u) << "the picks of the 6 gathers not validated must be dropped";
  ASSERT_EQ(t.events.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    // The time tells the origin: file 1 gather 1 -> 0.011 s, file 0 gather 2 -> 0.002 s.
    const double expected_time = t.picks[k].gather == 0 ? 0.011 : 0.002;
    EXPECT_NEAR(t.picks[k].time_s, expected_time, 1e-12) << "pick renumbered " << t.picks[k].gather;
    EXPECT_NEAR(t.events[k].first_arrival_s, t.events[k].gather == 0 ? 0.011 : 0.002, 1e-12);
  }
  EXPECT_NE(t.picks[0].gather, t.picks[1].gather);
  EXPECT_EQ(t.events_without_arrivals, 0);
}

// Logits that are +8 on a one-sample band along one front and -8 elsewhere: the scorer must find
// the event and put every pick on its arrival. Gather 1 has no event and no band: nothing is found
// there, and its 0.128 s count towards the duration.
TEST(ArrivalScorer, LogitsOnTheArrivalsScoreAPerfectValidation) {
  const int64_t H = 64, W = 16;
  seis::GroundTruth truth;
  truth.dt = 0.002;
  truth.gathers = 2;
  truth.samples = H;
  truth.width = W;
  truth.duration_s = 2 * H * truth.dt;
  std::vector<float> logits(static_cast<size_t>(H * W), -8.0f);
  for (int64_t w = 0; w < W; ++w) {
    const int64_t sample = 20 + w / 2;  // 1 ms per trace of moveout
    truth.picks.push_back(pick(0, w, static_cast<double>(sample) * truth.dt, 0));
    logits[static_cast<size_t>(sample * W + w)] = 8.0f;
  }
  truth.events.push_back(event(0, 0, 20 * truth.dt, (20 + (W - 1) / 2) * truth.dt));
  seis::ArrivalScorer scorer(truth, 10.0, seis::DetectionSettings{});
  const std::vector<float> quiet(static_cast<size_t>(H * W), -8.0f);
  for (int round = 0; round < 2; ++round) {  // finish() starts over: the second round scores the same
    scorer.add(0, logits.data());
    scorer.add(1, quiet.data());
    const seis::ArrivalScores s = scorer.finish(nullptr);
    EXPECT_EQ(s.events.events, 1) << "round " << round;
    EXPECT_EQ(s.events.detections, 1) << "round " << round;
    EXPECT_DOUBLE_EQ(s.events.f1(), 1.0) << "round " << round;
    EXPECT_DOUBLE_EQ(s.events.hours, 2 * H * truth.dt / 3600.0);
    EXPECT_EQ(s.picks.arrivals, W);
    EXPECT_EQ(s.picks.hits10, W) << "round " << round;
    EXPECT_NEAR(s.pick_mae_ms(), 0.0, 1e-9);
  }
  // Only gather 1 added (another rank has gather 0): its truth alone, so no event to find.
  scorer.add(1, quiet.data());
  const seis::ArrivalScores s = scorer.finish(nullptr);
  EXPECT_EQ(s.events.events, 0);
  EXPECT_EQ(s.picks.arrivals, 0);
  EXPECT_DOUBLE_EQ(s.events.hours, H * truth.dt / 3600.0);
  EXPECT_TRUE(std::isnan(s.pick_mae_ms())) << "no hit: no MAE";
}

}  // namespace
