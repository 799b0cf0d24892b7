// Picks along a detected event's moveout, on the traces where the network picked nothing
// (`detect --fill-moveout`): the analyst's gap filling of a first-arrival front.
//
// For each event, the earliest pick of every trace within the event's span is fitted by a
// hyperbolic moveout after an origin time, t(x) = t0 + sqrt(a + b x + c x^2) over the trace index x
// (the traveltime of a point source below a straight line in a constant velocity, a close fit of
// smooth velocity gradients over a few kilometres): for each of a fixed set of origin times before
// the earliest pick (2 ms to 2.5 s), the fit with the most picks within a tolerance among candidate
// triples of picks (a deterministic RANSAC), refitted by least squares on those picks; the origin
// time whose fit the most picks follow, then refined between its neighbours on those picks. Or by
// the stiffer t0 = 0 (t^2 quadratic in the time from the start of the gather or record): the model
// kept is the one that, fitted to the inner three fifths of the picks' traces, has more of the
// outer picks within the tolerance (the fill extrapolates; with scattered picks the four
// parameters of the origin model trade off and carry the front astray). Where the earliest
// picks follow no front (fewer than min_inliers within the tolerance), nothing is filled. Every
// trace without a pick within the tolerance of the fitted time gets a pick there (from the event's
// first arrival less the tolerance to max_span_ms after it, or its last pick): score 0 (no
// probability run holds it), `filled` set.
//
// Streaming: MoveoutFill holds the picks of the detector until no event that is still to come can
// hold them (the associator says how far back its open fronts reach), and fills an event only once
// every pick that can lie in its window has arrived (weak picks wait in their chains), so that the
// filled picks join the others in time order and the output does not depend on the block sizes of
// the stream. An event that stays open longer than max_hold_ms (noise fronts that follow each
// other without a gap for minutes) lets the oldest picks go: filled picks behind them are dropped
// and counted.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "io/detection_csv.h"

namespace seis {

struct MoveoutFillOptions {
  bool enabled = false;
  double tolerance_ms = 12;    // a pick within this of the fitted time follows the front
  int64_t min_inliers = 8;     // picks that a fit must follow to be used
  double max_hold_ms = 120e3;  // the longest stretch of picks held back for a still open event
  double max_span_ms = 3000;   // filled picks lie up to this after the event's first arrival (or its last pick)
};

// t(x) = t0 + sqrt(a + b u + c u^2), u = (x - x0) / scale (x: trace index; u within [-1, 1] over
// the fitted picks), fitted to the picks (x[i], t[i]) in ms.
struct MoveoutFit {
  double a = 0, b = 0, c = 0, t0 = 0, x0 = 0, scale = 1;
  double x_lo = 0, x_hi = 0;  // the traces of the picks that follow the fit
  int64_t inliers = 0;
  // The fitted time at trace x; false where the quadratic is not positive there.
  bool time_at(double x, double* t_ms) const;
};

// The fit that the most picks follow within tolerance_ms, or false when fewer than min_inliers
// do (or fewer than three picks on distinct traces are given). Deterministic.
bool fit_moveout(const std::vector<double>& x, const std::vector<double>& t, double tolerance_ms, int64_t min_inliers,
                 MoveoutFit* fit);

class MoveoutFill {
 public:
  MoveoutFill(int64_t width, double dt_ms, const MoveoutFillOptions& options);

  // The picks and events the detector has just made final (picks in any order, none before
  // what has gone out); safe_ms: no event still to come holds a pick before it; floor_ms: every
  // pick before it has been given; now_ms: no pick still to come lies before it (the detector's
  // watermark; floor_ms is below it while weak picks wait in their chains). Events whose window
  // lies before floor_ms are filled; the held picks (and the filled ones) that no unfilled event
  // can look at are appended to `out` in (time, trace) order, and those more than max_hold_ms
  // before now_ms whatever the events say.
  void add(const std::vector<Pick>& picks, const std::vector<Detection>& events, double safe_ms, double floor_ms,
           double now_ms, std::vector<Pick>* out);
  // End of a gather or record: the events still waiting are filled, every held pick goes out.
  void finish(std::vector<Pick>* out);
  // A new gather or record (what is held is dropped; the counts stay).
  void reset();
  // Traces that may be filled: live[j] != 0 (padding of a converted SEG-Y file is not); all when
  // empty. For the current gather.
  void set_live(std::vector<uint8_t> live) { live_ = std::move(live); }

  int64_t filled() const { return filled_; }    // picks added along a moveout
  int64_t dropped() const { return dropped_; }  // filled picks behind a forced release

 private:
  // The window of an event: its earliest picks in [lo, hi] are fitted; filled picks lie in [lo, reach].
  double lo(const Detection& d) const { return d.time_ms - options_.tolerance_ms; }
  double reach(const Detection& d) const;
  void fill_event(const Detection& d);
  void release(double below_ms, std::vector<Pick>* out);

  int64_t width_;
  double dt_ms_;
  MoveoutFillOptions options_;
  std::vector<uint8_t> live_;
  std::vector<Pick> held_;          // sorted by (time_ms, trace) after each add
  std::vector<Detection> waiting_;  // events whose window still lacks picks
  double released_ = -1e300;        // every pick before this has gone out
  int64_t filled_ = 0, dropped_ = 0;
};

}  // namespace seis
