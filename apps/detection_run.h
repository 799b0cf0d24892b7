// Detection over a DetectInput (a continuous record or a file of gathers), by either method, with
// picks, events and probabilities handed to callbacks as they become final: the one loop that
// detect, the demo and the STA/LTA tuning share.
//   unet:    the network in overlapping windows -> ArrivalDetector (models/picking.h);
//   sta-lta: classic STA/LTA and trigger per trace, coincidence across traces (models/sta_lta.h);
//            a trigger's on sample is its pick (score: the peak STA/LTA ratio), a coincidence is a
//            front, merged into events by the same rule as the network's (P and S one event).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/detect_input.h"
#include "apps/detection_flags.h"
#include "models/detection_score.h"
#include "models/picking.h"
#include "models/sta_lta.h"
#include "models/windowed_inference.h"

namespace seis {

struct DetectionCallbacks {
  // Final picks and events, in time order within each gather (either may be empty).
  std::function<void(const std::vector<Pick>&, const std::vector<Detection>&)> found;
  // unet only: final probabilities, rows [t0, t0 + rows) of gather g, in order.
  std::function<void(int64_t g, int64_t t0, int64_t rows, const float* prob)> prob;
  // Rows done over all gathers.
  std::function<void(int64_t rows_done)> progress;
  // Gather g is done: every pick, event and probability row of it was handed over; called before
  // the input moves on (input.segy() still holds gather g's headers).
  std::function<void(int64_t g)> gather_end;
};

// fill: picks along each event's moveout as well (models/moveout_fill.h; off by default).
void detect_unet(DetectInput& input, const WindowedInference& inference, const PickerOptions& picker,
                 const AssociationOptions& association, const DetectionCallbacks& cb,
                 const MoveoutFillOptions& fill = {});
void detect_sta_lta(DetectInput& input, const StaLtaOptions& options, double event_gap_ms,
                    const DetectionCallbacks& cb);

// All picks and events of a run, in memory (the demo, tuning and tests: inputs of modest size).
struct DetectionResult {
  std::vector<Pick> picks;
  std::vector<Detection> events;
};
DetectionCallbacks collect_into(DetectionResult* r);

// Both tuners choose on one or more files with ground truth, pooled: the events and picks of all
// the files are scored together, as one file of many gathers would be (a threshold is chosen for
// the whole set, not per file, and a short quiet record counts for its share of the time). An
// InputError when no file has an event with arrivals.
//
// STA/LTA thresholds: the grid of trigger-on thresholds (trigger-off = half of it, at least 1) and
// coincidence counts whose events score the best F1 (ties: the fewer false detections, then the
// earlier grid point). nsta, nlta are kept: they count samples of dt, and a file sampled at another
// dt, or shorter than nlta, is an InputError naming it. The grid and every score (with the counts
// of events, matched events and detections) go to *table when it is not null.
StaLtaOptions tune_sta_lta(const std::vector<std::string>& paths, const StaLtaOptions& base, double dt,
                           double event_gap_ms, const ScoreOptions& score, nlohmann::json* table = nullptr);

// The network's --threshold and --min-traces chosen the same way: the network runs once over each
// file (the probabilities of all of them held in memory: an InputError naming the file with which
// they would pass max_bytes), then the grid of thresholds and minimum trace counts is scored on
// their events (best F1; ties: the fewer false detections, then the earlier grid point). Then the
// pick threshold (from the chosen threshold down to 0.1), each with its picker's delay
// (--pick-delay-ms: the median error of its picks at delay 0 that lie within score.tolerance_ms of
// a true arrival, to 0.1 ms; 0 with fewer than 20 such arrivals), for the best pick F1 within 10 ms
// at that delay (a pick is right when a true arrival of its trace lies within 10 ms of it; an
// arrival is found when its nearest pick does; ties: the higher threshold) among those whose events
// score no lower F1 (runs at a lower threshold can merge or move strong picks); every row goes to
// *table too. The settings marked in `fixed` (flags the user gave) keep base's values and the grid
// adapts: thresholds at or above a fixed pick threshold. The other settings are kept.
struct TunedFlags {
  bool threshold = false, min_traces = false, pick_threshold = false, pick_delay = false;
};
DetectionSettings tune_unet_detector(const std::vector<std::string>& paths, const WindowedInference& inference,
                                     const DetectionSettings& base, const ScoreOptions& score,
                                     nlohmann::json* table = nullptr, int64_t max_bytes = int64_t{2} << 30,
                                     const TunedFlags& fixed = {});

}  // namespace seis
