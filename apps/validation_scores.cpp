#include "apps/validation_scores.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "engine/error.h"

namespace seis {

GroundTruth validation_truth(const std::vector<GroundTruth>& files, const std::vector<SampleSet::Location>& gathers) {
  GroundTruth t;
  t.gathers = static_cast<int64_t>(gathers.size());
  if (!gathers.empty()) {
    const GroundTruth& first = files.at(static_cast<size_t>(gathers[0].file));
    t.dt = first.dt;
    t.samples = first.samples;
    t.width = first.width;
  }
  t.duration_s = static_cast<double>(t.gathers) * static_cast<double>(t.samples) * t.dt;
  // Per file, the validation number of each local gather (-1: not validated). The indices of a
  // validation are distinct, so one number per gather is enough.
  std::vector<std::vector<int64_t>> renumber(files.size());
  for (size_t f = 0; f < files.size(); ++f) renumber[f].assign(static_cast<size_t>(files[f].gathers), -1);
  for (size_t i = 0; i < gathers.size(); ++i) {
    const SampleSet::Location& l = gathers[i];
    SEIS_CHECK(l.file >= 0 && static_cast<size_t>(l.file) < files.size() && l.local >= 0 &&
                   l.local < files[static_cast<size_t>(l.file)].gathers,
               "validation gather outside its file's truth");
    renumber[static_cast<size_t>(l.file)][static_cast<size_t>(l.local)] = static_cast<int64_t>(i);
  }
  for (size_t f = 0; f < files.size(); ++f) {
    const std::vector<int64_t>& to = renumber[f];
    for (SynthPickRow p : files[f].picks) {
      p.gather = to[static_cast<size_t>(p.gather)];
      if (p.gather >= 0) t.picks.push_back(p);
    }
    for (SynthEventRow e : files[f].events) {
      e.gather = to[static_cast<size_t>(e.gather)];
      if (e.gather < 0) continue;
      t.events.push_back(e);
      t.events_without_arrivals += std::isnan(e.first_arrival_s) ? 1 : 0;
    }
  }
  return t;
}

double ArrivalScores::pick_mae_ms() const {
  return picks.hits > 0 ? picks.mae_ms : std::numeric_limits<double>::quiet_NaN();
}

ArrivalScorer::ArrivalScorer(GroundTruth truth, double dx, const DetectionSettings& settings)
    : truth_(std::move(truth)),
      prob_(static_cast<size_t>(truth_.samples * truth_.width)),
      added_(static_cast<size_t>(truth_.gathers), 0) {
  SEIS_CHECK(truth_.dt > 0 && truth_.samples > 0 && truth_.width > 0, "validation truth without a shape or dt");
  detector_ = std::make_unique<ArrivalDetector>(truth_.width, truth_.dt, picker_options(settings, truth_.dt),
                                                association_options(settings, dx, truth_.width, "the validation data"));
}

void ArrivalScorer::add(int64_t i, const float* logits) {
  SEIS_CHECK(i >= 0 && i < truth_.gathers, "validation gather out of range");
  const int64_t n = truth_.samples * truth_.width;
  for (int64_t k = 0; k < n; ++k) prob_[static_cast<size_t>(k)] = 1.0f / (1.0f + std::exp(-logits[k]));
  detector_->begin(i);
  detector_->feed(prob_.data(), truth_.samples, &picks_, &events_);
  detector_->finish(&picks_, &events_);
  added_[static_cast<size_t>(i)] = 1;
}

ArrivalScores ArrivalScorer::finish(Communicator* comm) {
  // The truth of the gathers this rank added: the others are another rank's (or not validated).
  int64_t added = 0;
  for (char a : added_) added += a;
  GroundTruth mine;
  const GroundTruth* truth = &truth_;
  if (added < truth_.gathers) {
    mine.dt = truth_.dt;
    mine.gathers = truth_.gathers;
    mine.samples = truth_.samples;
    mine.width = truth_.width;
    mine.duration_s = static_cast<double>(added) * static_cast<double>(truth_.samples) * truth_.dt;
    for (const SynthPickRow& p : truth_.picks) {
      if (added_[static_cast<size_t>(p.gather)]) mine.picks.push_back(p);
    }
    for (const SynthEventRow& e : truth_.events) {
      if (added_[static_cast<size_t>(e.gather)]) mine.events.push_back(e);
    }
    truth = &mine;
  }
  ArrivalScores s;
  s.events = score_events(*truth, events_, ScoreOptions{});
  s.picks = score_picks(*truth, picks_, ScoreOptions{});
  picks_.clear();
  events_.clear();
  std::fill(added_.begin(), added_.end(), 0);
  if (comm == nullptr || comm->world() == 1) return s;

  // Matching is within a gather, so the counts of the ranks' disjoint shares add up exactly; the
  // pick errors add up as sums (mean x hits).
  EventScore& e = s.events;
  PickScore& p = s.picks;
  int64_t counts[] = {e.events,
                      e.events_without_arrivals,
                      e.detections,
                      e.matched_events,
                      e.matched_detections,
                      p.arrivals,
                      p.picks,
                      p.hits10,
                      p.hits20,
                      p.hits,
                      p.p_arrivals,
                      p.p_hits10,
                      p.p_hits20,
                      p.unmatched_picks};
  const double n = static_cast<double>(p.hits);
  double sums[] = {e.hours, p.mean_ms * n, p.mae_ms * n, p.rms_ms * p.rms_ms * n};
  comm->allreduce_sum_host(counts, static_cast<int64_t>(std::size(counts)));
  comm->allreduce_sum_host(sums, static_cast<int64_t>(std::size(sums)));
  // MPI does not promise bit-identical float sums on every rank; "best" must be one decision.
  comm->broadcast_host_bytes(sums, sizeof sums, 0);
  ArrivalScores r;
  int64_t* c = counts;
  for (int64_t* f :
       {&r.events.events, &r.events.events_without_arrivals, &r.events.detections, &r.events.matched_events,
        &r.events.matched_detections, &r.picks.arrivals, &r.picks.picks, &r.picks.hits10, &r.picks.hits20,
        &r.picks.hits, &r.picks.p_arrivals, &r.picks.p_hits10, &r.picks.p_hits20, &r.picks.unmatched_picks}) {
    *f = *c++;
  }
  r.events.hours = sums[0];
  if (r.picks.hits > 0) {
    const double hits = static_cast<double>(r.picks.hits);
    r.picks.mean_ms = sums[1] / hits;
    r.picks.mae_ms = sums[2] / hits;
    r.picks.rms_ms = std::sqrt(sums[3] / hits);
  }
  return r;
}

std::unique_ptr<ArrivalScorer> make_validation_scorer(const SampleSet& set, const std::vector<int64_t>& indices,
                                                      std::string* why_not) {
  if (indices.empty()) {
    *why_not = "there is no validation (--val-fraction 0)";
    return nullptr;
  }
  std::vector<SampleSet::Location> where;
  where.reserve(indices.size());
  for (int64_t g : indices) where.push_back(set.locate(g));
  std::vector<char> holds(static_cast<size_t>(set.num_files()), 0);
  for (const SampleSet::Location& l : where) holds[static_cast<size_t>(l.file)] = 1;
  std::vector<GroundTruth> truths(holds.size());
  double dt = 0;
  for (size_t f = 0; f < holds.size(); ++f) {
    if (!holds[f]) continue;
    const std::string& path = set.file(static_cast<int>(f)).info().path;
    if (!has_ground_truth(path)) {
      *why_not = path + " has no ground truth (/picks and /events, as seisseg synth writes them)";
      return nullptr;
    }
    truths[f] = read_ground_truth(path);
    if (dt == 0) dt = truths[f].dt;
    if (truths[f].dt != dt) {  // one detector, one dt
      *why_not =
          path + " has dt " + std::to_string(truths[f].dt) + " s, another validation file " + std::to_string(dt) + " s";
      return nullptr;
    }
  }
  const double dx = set.file(where[0].file).info().dx;
  return std::make_unique<ArrivalScorer>(validation_truth(truths, where), dx, DetectionSettings{});
}

}  // namespace seis
