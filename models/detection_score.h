// Scores in the analyst's units (DESIGN.md): detections and picks against a file's ground truth.
// Pure functions, no I/O; O(n log n) in the number of events, arrivals, detections and picks.
//
// Events. An event with arrivals spans [first_arrival_s * 1000 - tol, last_arrival_s * 1000 + tol]
// ms in its gather (edges included); events without arrivals (first/last NaN) cannot be found and
// are counted apart, in neither recall nor precision. A detection (gather, time_ms) can match an
// event of the same gather whose span holds time_ms. Matching is one-to-one (an event is matched by
// at most one detection and a detection matches at most one event) and maximal: per gather, the
// detections are swept in time order and each is given to the unmatched event holding it whose span
// ends first, which is optimal for points against intervals. So two detections in one event are
// one match and one false detection, and one detection in two overlapping events finds one of them.
//   recall = matched events / events with arrivals (0 without events);
//   precision = matched detections / detections (0 without detections, so that detecting nothing
//   scores F1 = 0); F1 = 2PR / (P + R) (0 when P + R = 0);
//   false detections per hour = (detections - matched) / (duration_s / 3600) (0 for no duration).
// Recall by SNR: the edges e0 < e1 < ... make the bins (-inf, e0), [e0, e1), ..., [e_last, +inf);
// only bins that hold events with arrivals are reported.
//
// Picks. For every true arrival (truth.picks), the nearest pick in time on the same (gather, trace)
// (ties: the earlier pick); error = pick time_ms - truth time_s * 1000. A pick may be the nearest
// to more than one arrival (not one-to-one: a P and an S arrival close together may share it).
// hit10 / hit20: |error| <= 10 / 20 ms, over all arrivals (an arrival without a pick on its trace is
// a miss); mean, median, MAE and RMS of the error over the hits within tolerance_ms; the same hit rates for
// P arrivals (phase 0) alone. unmatched_picks: picks with no true arrival of their trace within
// tolerance_ms (false picks).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "io/detection_csv.h"
#include "io/ground_truth.h"

namespace seis {

struct ScoreOptions {
  double tolerance_ms = 50;
  std::vector<double> snr_edges_db = {-6, -3, 0, 3, 6, 10};  // ascending
};

struct SnrBin {
  double lo_db = 0, hi_db = 0;  // [lo, hi); lo may be -inf, hi +inf
  int64_t events = 0, matched = 0;
  double recall() const { return events > 0 ? static_cast<double>(matched) / static_cast<double>(events) : 0.0; }
};

struct EventScore {
  int64_t events = 0;  // with arrivals
  int64_t events_without_arrivals = 0;
  int64_t detections = 0, matched_events = 0, matched_detections = 0;
  double hours = 0;
  std::vector<SnrBin> by_snr;

  int64_t false_detections() const { return detections - matched_detections; }
  double precision() const;
  double recall() const;
  double f1() const;
  double false_per_hour() const;
};

struct PickScore {
  int64_t arrivals = 0, picks = 0;
  int64_t hits10 = 0, hits20 = 0, hits = 0;    // hits: within tolerance_ms
  double mean_ms = 0, mae_ms = 0, rms_ms = 0;  // over the hits within tolerance_ms
  double median_ms = 0;  // of the signed errors of those hits (one process's: to_json leaves it out)
  int64_t p_arrivals = 0, p_hits10 = 0, p_hits20 = 0;
  int64_t unmatched_picks = 0;  // picks with no true arrival on their trace within tolerance_ms

  double hit10() const { return ratio(hits10, arrivals); }
  double hit20() const { return ratio(hits20, arrivals); }
  double p_hit10() const { return ratio(p_hits10, p_arrivals); }
  double p_hit20() const { return ratio(p_hits20, p_arrivals); }

 private:
  static double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
};

// Detections of a gather outside [0, truth.gathers) match nothing (callers reject them first).
EventScore score_events(const GroundTruth& truth, const std::vector<Detection>& detections,
                        const ScoreOptions& options);
PickScore score_picks(const GroundTruth& truth, const std::vector<Pick>& picks, const ScoreOptions& options);

// The counts, the derived rates and the SNR bins (infinite edges as null).
nlohmann::json to_json(const EventScore& s);
nlohmann::json to_json(const PickScore& s);

}  // namespace seis
