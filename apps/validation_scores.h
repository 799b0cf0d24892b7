// Validation scores in the analyst's units (DESIGN.md): during a training run's validation, each
// gather's probabilities (sigmoid of the logits) are picked by ArrivalDetector and the picks and
// events are scored (models/detection_score.h) against the ground truth of the validation gathers.
//
// A validation source is a subset of a sample set's global indices, and a set may span several
// files, while a file's truth numbers its gathers within that file. validation_truth() takes the
// truth rows of the validation gathers and renumbers them 0..n-1 in validation order, so that the
// detector, fed validation gather i as gather i, is scored against the right rows.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/detection_flags.h"
#include "engine/communicator.h"
#include "io/ground_truth.h"
#include "io/sample_set.h"
#include "models/detection_score.h"
#include "models/picking.h"

namespace seis {

// The truth of the validation gathers out of the truths of a set's files: gathers[i] is the
// (file, local gather) of validation gather i. Rows of other gathers are dropped; the rest are
// renumbered i. dt, samples and width come from the first gather's file (the caller checks that
// the files agree); duration_s = n * samples * dt.
GroundTruth validation_truth(const std::vector<GroundTruth>& files, const std::vector<SampleSet::Location>& gathers);

struct ArrivalScores {
  EventScore events;  // without the SNR bins when reduced over ranks
  PickScore picks;
  // The pick MAE when some arrival was picked within the tolerance; NaN (null in JSON) otherwise.
  double pick_mae_ms() const;
};

// Picks and scores validation gathers one at a time: memory holds one gather's probabilities and
// the picks and events of the gathers added since the last finish().
class ArrivalScorer {
 public:
  // truth: validation_truth() of the validation gathers; dx (m) sets the association's moveout.
  ArrivalScorer(GroundTruth truth, double dx, const DetectionSettings& settings);
  // Validation gather i (0 <= i < truth.gathers): its logits [H][W] (H = truth.samples, W = width).
  void add(int64_t i, const float* logits);
  // The scores of the gathers added since the last finish(), on this rank and, with a communicator
  // of world > 1, on every rank (each rank adds its own share; the counts are summed and rank 0's
  // sums of errors are broadcast, so that every rank gets the same figures). Starts over.
  ArrivalScores finish(Communicator* comm);

 private:
  GroundTruth truth_;
  std::unique_ptr<ArrivalDetector> detector_;
  std::vector<float> prob_;
  std::vector<char> added_;
  std::vector<Pick> picks_;
  std::vector<Detection> events_;
};

// The scorer of the validation gathers `indices` of `set` (default DetectionSettings; dx of the
// first file), or null with the reason in *why_not when they have no truth to score against: no
// validation gathers, a file holding some of them without /picks and /events (has_ground_truth),
// or files of different dt. Reads each such file's truth once (read_ground_truth's InputErrors).
std::unique_ptr<ArrivalScorer> make_validation_scorer(const SampleSet& set, const std::vector<int64_t>& indices,
                                                      std::string* why_not);

}  // namespace seis
