// The ground truth of a file that has it (seisseg synth writes it; io/synth_file.h): the arrivals
// /picks and the events /events, with the shape and sample interval that turn them into the
// analyst's units (ms, hours). Tables are read in row ranges and validated against the shape.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/synth_file.h"

namespace seis {

struct GroundTruth {
  std::vector<SynthPickRow> picks;      // in file order (gather, event, phase, trace for synth files)
  std::vector<SynthEventRow> events;    // every event, also those without arrivals (first/last NaN)
  double dt = 0;                        // s
  bool record = false;                  // a continuous record [T, W] (then gathers = 1)
  int64_t gathers = 0;                  // N, or 1 for a record
  int64_t samples = 0;                  // H per gather, or T of the record
  int64_t width = 0;                    // W: traces per gather or receivers of the record
  double duration_s = 0;                // gathers * samples * dt: the time the detector listened to
  int64_t events_without_arrivals = 0;  // events with NaN first/last arrival: never matched
};

// Reads path's shape (a gathers file [N, H, W] or a continuous record [T, W]), its dt and both
// tables. InputError naming the file: not a dataset file (H5SampleFile / H5RecordFile say why), no
// /picks or no /events table, dt missing or not > 0, or a row whose gather is outside [0, N), trace
// outside [0, W), phase not 0 (P) or 1 (S), time not finite, or an event whose first/last arrival
// is infinite, only one of them NaN, first after last, or whose snr_db is not finite.
GroundTruth read_ground_truth(const std::string& path);

// Several files' ground truths as one, for scoring them together: truth k's gathers are numbered
// after those of the truths before it (first[k], appended to *first, is the number of its gather 0),
// its picks and events moved with them; gathers, duration_s and events_without_arrivals add up.
// The shape fields (dt, samples, width, record) are the first truth's: scores do not use them.
GroundTruth pool_ground_truths(const std::vector<GroundTruth>& truths, std::vector<int64_t>* first);

// True when path has both /picks and /events tables (then read_ground_truth validates them).
bool has_ground_truth(const std::string& path);

}  // namespace seis
