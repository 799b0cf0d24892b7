// From arrival probabilities to picks and events (DESIGN.md, "Picks and events"), streaming over a
// gather or a continuous record [T][W] (T time samples, W traces) that arrives in blocks of rows,
// with memory bounded by W and the picks of the last few seconds, whatever T is. The same
// blocks give the same picks and events whatever their sizes.
//
// - TracePicker: on each trace, a run of samples with probability >= threshold is one arrival,
//   picked at its probability-weighted centre (sub-sample) with its peak probability as score; of
//   two picks closer than the minimum separation the weaker is dropped. ArrivalDetector moves every
//   pick earlier by the picker's delay (PickerOptions::delay_ms, 0 unless given or tuned: the
//   median lateness of the centres against an analyst's picks on a record with ground truth).
// - Picks may run at a lower threshold than events (hysteresis, as a trigger's on and off levels):
//   only strong picks, whose peak reaches AssociationOptions::min_score, form fronts. A weak pick
//   (peak below it) is kept only when the same links chain it to strong picks on at least
//   AssociationOptions::anchor_traces traces (PickChains; detect's default is min_traces, the
//   traces of an event's front, --anchor-traces): a weak arrival on the traces of a strong front is
//   picked, weak picks away from every such front are not. Strong picks are kept whatever their
//   chain. A chain closed for spanning max_front_ms (noise fronts that go on for seconds) is split
//   where the sweeps fall, as the associator's fronts are, and each part anchors on its own.
// - FrontMerger and EventAssociator: picks linked across traces by a moveout bound (neighbouring
//   traces at most ms_per_trace apart, up to max_trace_gap traces apart, plus a tolerance) form a
//   front; a front on at least min_traces traces is one phase of one source. Fronts that begin
//   within event_gap_ms of the end of the previous one are one event (the P and the S arrival of a
//   source are one event, not two): its time is its earliest arrival, n_traces the traces holding
//   any of its picks, score the mean score of its picks.
#pragma once
#include <cstdint>
#include <memory>
#include <queue>
#include <vector>

#include "io/detection_csv.h"
#include "models/moveout_fill.h"

namespace seis {

struct PickerOptions {
  float threshold = 0.5f;      // a run is the samples with probability >= threshold
  int64_t min_separation = 1;  // samples between two picks of one trace (the weaker goes)
  double delay_ms = 0;         // ArrivalDetector: subtracted from every pick's time (not below 0)
};

class TracePicker {
 public:
  TracePicker(int64_t width, const PickerOptions& options);

  // Starts over at sample 0 of a new gather (or record).
  void reset();
  // The next `rows` rows [rows][W] of probabilities. Picks that are final (trace, sample and
  // score; gather and time_ms are the caller's) are appended to `out`, in no particular order.
  void feed(const float* prob, int64_t rows, std::vector<Pick>* out);
  // Ends the gather or record: the runs still open close at its last sample.
  void finish(std::vector<Pick>* out);
  // No pick appended after this call has a sample below the returned value.
  double watermark() const;
  int64_t next_sample() const { return next_; }

 private:
  struct TraceState {
    bool in_run = false;
    int64_t run_start = 0;
    double sum_p = 0, sum_pt = 0;
    float peak = 0;
    bool held = false;  // a closed pick that a later, stronger one within min_separation may replace
    double held_sample = 0;
    float held_score = 0;
  };
  void close_run(int64_t trace, TraceState& s, std::vector<Pick>* out);
  void emit_held(int64_t trace, TraceState& s, std::vector<Pick>* out);

  int64_t width_;
  PickerOptions options_;
  std::vector<TraceState> traces_;
  int64_t next_ = 0;
};

struct AssociationOptions {
  double ms_per_trace = 5.0;    // largest moveout between neighbouring traces: dx / slowest apparent velocity
  double tolerance_ms = 6.0;    // picking jitter on top of the moveout
  int64_t max_trace_gap = 4;    // picks this many traces apart still link (dead traces, missed picks)
  int64_t min_traces = 8;       // a front needs picks on this many traces
  double event_gap_ms = 500.0;  // a front beginning this soon after an event's last arrival joins it
  double max_front_ms = 10000;  // a front is closed when it spans this long (bounds memory on noise)
  float min_score = 0;          // picks peaking below this (weak) join no front; see PickChains
  int64_t anchor_traces = 1;    // PickChains: a chain keeps its weak picks when its strong ones lie on this many traces
};

// One phase front of one source, or one STA/LTA coincidence.
struct Front {
  double first_ms = 0, last_ms = 0;
  std::vector<int64_t> traces;  // sorted, distinct
  double score_sum = 0;
  int64_t picks = 0;
};

// Fronts (in nondecreasing first_ms order) into events of one gather; events come out numbered
// from `first_event` in time order.
class FrontMerger {
 public:
  FrontMerger(double event_gap_ms, int64_t gather, int64_t first_event);
  void add(const Front& f, std::vector<Detection>* out);
  // No front added later begins before t_ms.
  void advance(double t_ms, std::vector<Detection>* out);
  void finish(std::vector<Detection>* out);
  int64_t next_event() const { return next_event_; }
  // The first arrival of the open event (infinity when none is open).
  double open_first_ms() const;

 private:
  void close(std::vector<Detection>* out);
  double gap_ms_;
  int64_t gather_, next_event_;
  bool open_ = false;
  Front event_;
};

// Picks of one gather (in nondecreasing time_ms order) into events.
class EventAssociator {
 public:
  EventAssociator(const AssociationOptions& options, int64_t gather, int64_t first_event);
  ~EventAssociator();
  void add(const Pick& p, std::vector<Detection>* out);
  // No pick added later has time_ms below t_ms.
  void advance(double t_ms, std::vector<Detection>* out);
  void finish(std::vector<Detection>* out);
  int64_t next_event() const { return merger_.next_event(); }
  // No event emitted later holds a pick added before this time (its open fronts, the fronts
  // waiting for earlier ones and the open event; infinity when nothing is open).
  double pending_since_ms() const;

 private:
  struct Node {
    int64_t trace;
    double t;
    float score;
    int64_t parent;  // index into nodes_ (union-find)
  };
  struct Component {
    double first = 0, last = 0;
    std::vector<int64_t> traces;
    double score_sum = 0;
    int64_t picks = 0;
  };
  int64_t find(int64_t i);
  void unite(int64_t a, int64_t b);
  // Closes the components that no later pick can reach, passes fronts on in order of first time.
  void sweep(double now_ms, bool all, std::vector<Detection>* out);

  AssociationOptions options_;
  double reach_ms_;  // the longest time a link can span
  std::vector<Node> nodes_;
  std::vector<Component> comps_;  // per root index, parallel to nodes_
  std::vector<Front> ready_;      // closed fronts waiting for the fronts that may begin earlier
  double last_sweep_ms_ = -1e300;
  FrontMerger merger_;
};

// Order of a min-heap of picks: by sample, then trace.
struct PickLater {
  bool operator()(const Pick& a, const Pick& b) const {
    return a.sample != b.sample ? a.sample > b.sample : a.trace > b.trace;
  }
};

// Picks of one gather (in nondecreasing time_ms order), strong and weak, linked by the associator's
// moveout bound into chains. Strong picks (score >= min_score) are kept; weak ones only in a chain
// whose strong picks lie on at least anchor_traces distinct traces (1: any strong pick anchors its
// chain). Picks come out in (sample, trace) order, each once no later pick can link to its chain (a
// chain is closed, as a front is, when it spans max_front_ms).
class PickChains {
 public:
  explicit PickChains(const AssociationOptions& options);
  void add(const Pick& p, std::vector<Pick>* out);
  // No pick added later has time_ms below t_ms.
  void advance(double t_ms, std::vector<Pick>* out);
  void finish(std::vector<Pick>* out);
  // The earliest pick still held in an open chain or waiting to go out (infinity when none).
  double pending_since_ms() const;

 private:
  struct Node {
    Pick pick;
    int64_t parent;  // index into nodes_ (union-find)
  };
  struct Chain {
    double first = 0, last = 0;
    bool anchored = false;               // its strong picks lie on at least anchor_traces traces
    std::vector<int64_t> strong_traces;  // sorted, distinct, until anchored (then released)
  };
  // The chain at root a takes in the one at root b.
  void merge(Chain& a, Chain& b) const;
  int64_t find(int64_t i);
  void sweep(double now_ms, bool all, std::vector<Pick>* out);

  AssociationOptions options_;
  double reach_ms_;
  double last_sweep_ms_ = -1e300;
  std::vector<Node> nodes_;
  std::vector<Chain> chains_;  // per root index, parallel to nodes_
  std::priority_queue<Pick, std::vector<Pick>, PickLater> kept_;
};

// TracePicker and EventAssociator over a gather or record: probabilities in, picks (in time
// order, with gather and time_ms set) and events out; with fill.enabled, the picks along each
// event's moveout as well (models/moveout_fill.h).
class ArrivalDetector {
 public:
  ArrivalDetector(int64_t width, double dt, const PickerOptions& picker, const AssociationOptions& association,
                  const MoveoutFillOptions& fill = {});
  ~ArrivalDetector();
  // Starts gather `gather` (a record is gather 0).
  void begin(int64_t gather);
  void feed(const float* prob, int64_t rows, std::vector<Pick>* picks, std::vector<Detection>* events);
  void finish(std::vector<Pick>* picks, std::vector<Detection>* events);
  // With the moveout fill: the traces it may fill in this gather (MoveoutFill::set_live).
  void set_live_traces(std::vector<uint8_t> live);
  // Picks added along moveouts, and those dropped behind a forced release (MoveoutFill), so far.
  int64_t filled() const;
  int64_t fill_dropped() const;

 private:
  void release(double below_sample, std::vector<Pick>* picks, std::vector<Detection>* events);
  // The picks and events made final since picks[p0] and events[e0] through the moveout fill.
  void pass_to_fill(size_t p0, size_t e0, double now_ms, bool last, std::vector<Pick>* picks,
                    const std::vector<Detection>* events);
  void queue_picks();  // scratch_'s picks, delayed, into pending_
  double dt_ms_;
  double delay_samples_ = 0;
  TracePicker picker_;
  AssociationOptions association_;
  std::unique_ptr<EventAssociator> associator_;
  std::priority_queue<Pick, std::vector<Pick>, PickLater> pending_;
  std::vector<Pick> scratch_;
  std::unique_ptr<PickChains> chains_;  // when the picker's threshold is below min_score
  std::unique_ptr<MoveoutFill> fill_;   // when fill.enabled
  std::vector<Pick> fill_in_;
  std::vector<Detection> fill_events_;
  int64_t gather_ = 0;
};

}  // namespace seis
