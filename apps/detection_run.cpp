#include "apps/detection_run.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "io/ground_truth.h"

namespace seis {

void detect_unet(DetectInput& input, const WindowedInference& inference, const PickerOptions& picker,
                 const AssociationOptions& association, const DetectionCallbacks& cb, const MoveoutFillOptions& fill) {
  const int64_t T = input.rows(), W = input.width();
  ArrivalDetector detector(W, input.dt(), picker, association, fill);
  std::vector<Pick> picks;
  std::vector<Detection> events;
  const bool padded = input.segy() != nullptr && input.segy()->has_padding();
  std::vector<float> masked;
  auto pass_on = [&] {
    if (cb.found && (!picks.empty() || !events.empty())) cb.found(picks, events);
    picks.clear();
    events.clear();
  };
  for (int64_t g = 0; g < input.gathers(); ++g) {
    input.begin(g);
    detector.begin(g);
    if (padded) detector.set_live_traces(input.segy()->valid_mask());
    inference.run(
        T, W, [&](int64_t t0, int64_t rows, float* dst) { input.read(t0, rows, dst); },
        [&](int64_t t0, int64_t rows, const float* p) {
          if (padded) {
            // Padding traces of a converted file: probability 0, so no pick or event comes from them.
            masked.assign(p, p + rows * W);
            const std::vector<uint8_t>& valid = input.segy()->valid_mask();
            for (int64_t t = 0; t < rows; ++t) {
              for (int64_t j = 0; j < W; ++j) {
                if (valid[static_cast<size_t>(j)] == 0) masked[static_cast<size_t>(t * W + j)] = 0.0f;
              }
            }
            p = masked.data();
          }
          detector.feed(p, rows, &picks, &events);
          pass_on();
          if (cb.prob) cb.prob(g, t0, rows, p);
        },
        [&](int64_t done) {
          if (cb.progress) cb.progress(g * T + done);
        });
    detector.finish(&picks, &events);
    pass_on();
    if (cb.gather_end) cb.gather_end(g);
  }
}

void detect_sta_lta(DetectInput& input, const StaLtaOptions& options, double event_gap_ms,
                    const DetectionCallbacks& cb) {
  const int64_t T = input.rows(), W = input.width();
  const double dt_ms = input.dt() * 1000.0;
  const int64_t block = std::max<int64_t>(1, std::min<int64_t>(T, (int64_t{8} << 20) / (4 * W)));
  std::vector<float> rows(static_cast<size_t>(block * W));
  std::vector<TraceTrigger> triggers;
  std::vector<Coincidence> coincidences;
  std::vector<Pick> picks;
  std::vector<Detection> events;
  int64_t next_event = 0;
  for (int64_t g = 0; g < input.gathers(); ++g) {
    input.begin(g);
    StaLtaDetector detector(W, options);
    FrontMerger merger(event_gap_ms, g, next_event);
    auto pass_on = [&] {
      for (const TraceTrigger& t : triggers) {
        Pick p;
        p.gather = g;
        p.trace = t.trace;
        p.sample = static_cast<double>(t.on);
        p.time_ms = p.sample * dt_ms;
        p.score = static_cast<float>(t.peak);
        picks.push_back(p);
      }
      for (const Coincidence& c : coincidences) {
        Front f;
        f.first_ms = static_cast<double>(c.on) * dt_ms;
        f.last_ms = static_cast<double>(c.off) * dt_ms;
        f.traces = c.traces;
        std::sort(f.traces.begin(), f.traces.end());
        for (double pk : c.peaks) f.score_sum += pk;
        f.picks = static_cast<int64_t>(c.peaks.size());
        merger.add(f, &events);
      }
      if (cb.found && (!picks.empty() || !events.empty())) cb.found(picks, events);
      triggers.clear();
      coincidences.clear();
      picks.clear();
      events.clear();
    };
    for (int64_t t0 = 0; t0 < T; t0 += block) {
      const int64_t n = std::min(block, T - t0);
      input.read(t0, n, rows.data());
      detector.feed(rows.data(), n, &triggers, &coincidences);
      pass_on();
      if (cb.progress) cb.progress(g * T + t0 + n);
    }
    detector.finish(&triggers, &coincidences);
    pass_on();
    merger.finish(&events);
    if (cb.found && !events.empty()) cb.found(picks, events);
    events.clear();
    next_event = merger.next_event();
    if (cb.gather_end) cb.gather_end(g);
  }
}

DetectionCallbacks collect_into(DetectionResult* r) {
  DetectionCallbacks cb;
  cb.found = [r](const std::vector<Pick>& p, const std::vector<Detection>& e) {
    r->picks.insert(r->picks.end(), p.begin(), p.end());
    r->events.insert(r->events.end(), e.begin(), e.end());
  };
  return cb;
}

namespace {

// The ground truths of the files to tune on as one (pool_ground_truths: file k's gather 0 is
// first[k]), so that events and picks score over all the files at once, as if they were one file of
// many gathers. An InputError when none of them has an event to find.
GroundTruth pooled_truth(const std::vector<std::string>& paths, const std::string& what, std::vector<int64_t>* first) {
  SEIS_CHECK(!paths.empty(), "no file to tune on");
  std::vector<GroundTruth> truths;
  for (const std::string& path : paths) truths.push_back(read_ground_truth(path));
  GroundTruth all = pool_ground_truths(truths, first);
  if (static_cast<int64_t>(all.events.size()) == all.events_without_arrivals) {
    throw InputError(paths.size() == 1
                         ? paths[0] + ": no events with arrivals to choose " + what + " on"
                         : paths[0] + " and the " + std::to_string(paths.size() - 1) +
                               " other files to tune on: no events with arrivals to choose " + what + " on");
  }
  return all;
}

// Moves the gathers of one file's detections and picks to their numbers in the pooled truth.
void shift_gathers(int64_t first, std::vector<Pick>* picks, size_t picks_from, std::vector<Detection>* events,
                   size_t events_from) {
  for (size_t k = picks_from; k < picks->size(); ++k) (*picks)[k].gather += first;
  for (size_t k = events_from; k < events->size(); ++k) (*events)[k].gather += first;
}

// The best point of a threshold grid: the best event F1; ties: the fewer false detections, then
// the earlier point. Every point's scores go to *table when it is not null.
template <typename Options>
class GridChoice {
 public:
  GridChoice(Options first, nlohmann::json* table) : best_(std::move(first)), table_(table) {}
  void offer(const Options& o, const EventScore& s, nlohmann::json row) {
    if (table_) {
      row["f1"] = s.f1();
      row["precision"] = s.precision();
      row["recall"] = s.recall();
      row["false_detections"] = s.false_detections();
      row["events"] = s.events;
      row["matched_events"] = s.matched_events;
      row["detections"] = s.detections;
      table_->push_back(std::move(row));
    }
    if (s.f1() > best_f1_ || (s.f1() == best_f1_ && s.false_detections() < best_false_)) {
      best_f1_ = s.f1();
      best_false_ = s.false_detections();
      best_ = o;
    }
  }
  const Options& best() const { return best_; }

 private:
  Options best_;
  nlohmann::json* table_;
  double best_f1_ = -1;
  int64_t best_false_ = 0;
};

}  // namespace

StaLtaOptions tune_sta_lta(const std::vector<std::string>& paths, const StaLtaOptions& base, double dt,
                           double event_gap_ms, const ScoreOptions& score, nlohmann::json* table) {
  std::vector<int64_t> first;
  const GroundTruth truth = pooled_truth(paths, "STA/LTA thresholds", &first);
  // The windows are counted in samples of dt: every file must be sampled so, and hold one LTA window.
  std::vector<double> sums;
  for (const std::string& path : paths) {
    DetectInput input(path);
    if (std::fabs(input.dt() - dt) > 1e-9 * dt) {
      throw InputError(path + ": sampled at dt " + std::to_string(input.dt()) + " s, not at the " + std::to_string(dt) +
                       " s that the STA/LTA windows are counted in; tune on files sampled as the input");
    }
    if (input.rows() < base.nlta) {
      throw InputError(path + ": " + std::to_string(input.rows()) + " samples are shorter than the LTA window of " +
                       std::to_string(base.nlta));
    }
    const int64_t W = input.width();
    for (double s : {2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0}) {
      if (s <= static_cast<double>(W)) sums.push_back(s);
    }
    for (double f : {0.125, 0.25, 0.5}) {
      const double s = std::round(f * static_cast<double>(W));
      if (s >= 2) sums.push_back(s);
    }
  }
  std::sort(sums.begin(), sums.end());
  sums.erase(std::unique(sums.begin(), sums.end()), sums.end());
  GridChoice<StaLtaOptions> choice(base, table);
  for (double on : {2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0}) {
    for (double sum : sums) {
      StaLtaOptions o = base;
      o.thr_on = on;
      o.thr_off = std::max(1.0, 0.5 * on);
      o.coincidence_sum = sum;
      DetectionResult r;
      for (size_t k = 0; k < paths.size(); ++k) {  // one file open at a time
        DetectInput input(paths[k]);
        const size_t picks_from = r.picks.size(), events_from = r.events.size();
        detect_sta_lta(input, o, event_gap_ms, collect_into(&r));
        shift_gathers(first[k], &r.picks, picks_from, &r.events, events_from);
      }
      choice.offer(o, score_events(truth, r.events, score),
                   {{"thr_on", on}, {"thr_off", o.thr_off}, {"coincidence_sum", sum}});
    }
  }
  return choice.best();
}

DetectionSettings tune_unet_detector(const std::vector<std::string>& paths, const WindowedInference& inference,
                                     const DetectionSettings& base, const ScoreOptions& score, nlohmann::json* table,
                                     int64_t max_bytes, const TunedFlags& fixed) {
  std::vector<int64_t> first;
  const GroundTruth truth = pooled_truth(paths, "the network's threshold", &first);
  // The shapes first: the probabilities of all the files must fit in max_bytes before any pass.
  struct Tuning {
    std::string path;
    int64_t N = 0, T = 0, W = 0;
    double dt = 0, dx = 0;
    std::vector<float> prob;  // [N, T, W]
  };
  std::vector<Tuning> files;
  int64_t held = 0;  // bytes of the probabilities of the files so far
  for (const std::string& path : paths) {
    DetectInput input(path);
    if (fixed.threshold && fixed.pick_threshold) picker_options(base, input.dt());  // a usage error before any work
    Tuning f;
    f.path = path;
    f.N = input.gathers();
    f.T = input.rows();
    f.W = input.width();
    f.dt = input.dt();
    f.dx = input.dx();
    const int64_t gather_floats = f.T * f.W;
    if (f.N > (max_bytes - held) / 4 / std::max<int64_t>(1, gather_floats)) {
      throw InputError(
          path + ": " + std::to_string(f.N) + " x " + std::to_string(f.T) + " x " + std::to_string(f.W) +
          " probabilities are more than the " + std::to_string(max_bytes >> 20) + " MiB that tuning holds in memory" +
          (held > 0 ? " with those of the files before it; tune on shorter records" : "; tune on a shorter record"));
    }
    held += f.N * gather_floats * 4;
    files.push_back(std::move(f));
  }
  // One pass of the network over each file (one open at a time): the picker's settings do not
  // change the probabilities.
  for (Tuning& f : files) {
    DetectInput input(f.path);
    const int64_t gather_floats = f.T * f.W;
    f.prob.resize(static_cast<size_t>(f.N * gather_floats));
    DetectionCallbacks keep;
    keep.prob = [&f, gather_floats](int64_t g, int64_t t0, int64_t rows, const float* p) {
      std::copy(p, p + rows * f.W, f.prob.begin() + g * gather_floats + t0 * f.W);
    };
    DetectionSettings plain = base;
    plain.pick_threshold = 0;
    detect_unet(input, inference, picker_options(plain, f.dt), association_options(plain, f.dx, f.W, f.path), keep);
  }

  std::vector<int64_t> counts;
  if (fixed.min_traces) {
    counts.push_back(base.min_traces);
  } else {
    for (const Tuning& f : files) {
      for (int64_t c : {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128}) {
        if (c <= f.W) counts.push_back(c);
      }
      for (int64_t d : {8, 4, 2}) {
        if (f.W / d >= 2) counts.push_back(f.W / d);
      }
    }
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  }
  std::vector<float> thresholds;
  if (fixed.threshold) {
    thresholds.push_back(base.threshold);
  } else {
    for (float t : {0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f}) {
      if (!fixed.pick_threshold || t >= base.pick_threshold) thresholds.push_back(t);
    }
    if (thresholds.empty()) thresholds.push_back(base.pick_threshold);  // a given pick threshold above 0.9
  }
  // The picks and events of settings `o` on the tuning files, numbered as in the pooled truth.
  auto run = [&](const DetectionSettings& o, std::vector<Pick>* picks, std::vector<Detection>* events) {
    for (size_t k = 0; k < files.size(); ++k) {
      const Tuning& f = files[k];
      ArrivalDetector detector(f.W, f.dt, picker_options(o, f.dt), association_options(o, f.dx, f.W, f.path));
      const size_t picks_from = picks->size(), events_from = events->size();
      for (int64_t g = 0; g < f.N; ++g) {
        detector.begin(g);
        detector.feed(f.prob.data() + g * f.T * f.W, f.T, picks, events);
        detector.finish(picks, events);
      }
      shift_gathers(first[k], picks, picks_from, events, events_from);
    }
  };
  GridChoice<DetectionSettings> choice(base, table);
  std::vector<Pick> picks;
  for (float threshold : thresholds) {
    for (int64_t count : counts) {
      DetectionSettings o = base;
      o.threshold = threshold;
      o.min_traces = count;
      if (!fixed.pick_threshold || o.pick_threshold >= threshold) o.pick_threshold = 0;
      std::vector<Detection> events;
      picks.clear();
      run(o, &picks, &events);
      choice.offer(o, score_events(truth, events, score), {{"threshold", threshold}, {"min_traces", count}});
    }
  }
  DetectionSettings best = choice.best();
  // The picks of `o` with the picker's delay measured on them (unless fixed): the median error of
  // the picks at delay 0 that lie within the scores' tolerance of a true arrival, to 0.1 ms, once at
  // least kMinHits arrivals are picked so (else 0); then the picks at that delay.
  constexpr int64_t kMinHits = 20;
  auto run_delayed = [&](DetectionSettings& o, std::vector<Pick>* picks_out, std::vector<Detection>* events) {
    if (!fixed.pick_delay) {
      o.pick_delay_ms = 0;
      run(o, picks_out, events);
      const PickScore s = score_picks(truth, *picks_out, score);
      o.pick_delay_ms = s.hits >= kMinHits ? std::round(s.median_ms * 10.0) / 10.0 : 0.0;
      picks_out->clear();
      events->clear();
    }
    run(o, picks_out, events);
  };
  if (fixed.pick_threshold) {
    std::vector<Detection> events;
    picks.clear();
    run_delayed(best, &picks, &events);
    return best;
  }
  // Then the picks' own threshold, at most the events', each with its delay: the best pick F1
  // within 10 ms (a pick is right when a true arrival of its trace lies within 10 ms of it; an
  // arrival is found when its nearest pick does); ties: the higher threshold. A pick peaking below
  // the events' threshold joins no event, but runs at a lower threshold can merge or move strong
  // picks: a candidate whose events score a lower F1 than at the events' threshold is not taken.
  ScoreOptions within10 = score;
  within10.tolerance_ms = 10;
  double best_f1 = -1, event_f1 = -1;
  DetectionSettings chosen = best;
  std::vector<float> candidates = {best.threshold};
  for (float p : {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.25f, 0.2f, 0.15f, 0.1f}) {
    if (p < best.threshold) candidates.push_back(p);
  }
  for (float p : candidates) {
    DetectionSettings o = best;
    o.pick_threshold = p < best.threshold ? p : 0;
    std::vector<Detection> events;
    picks.clear();
    run_delayed(o, &picks, &events);
    const PickScore s = score_picks(truth, picks, within10);
    const double f1_events = score_events(truth, events, score).f1();
    if (event_f1 < 0) event_f1 = f1_events;  // the first candidate: picks at the events' threshold
    const double recall = s.hit10();
    const double precision =
        s.picks > 0 ? static_cast<double>(s.picks - s.unmatched_picks) / static_cast<double>(s.picks) : 0.0;
    const double f1 = recall + precision > 0 ? 2 * recall * precision / (recall + precision) : 0;
    if (table) {
      table->push_back({{"pick_threshold", p},
                        {"pick_delay_ms", o.pick_delay_ms},
                        {"pick_f1_10ms", f1},
                        {"hit10", recall},
                        {"pick_precision_10ms", precision},
                        {"p_hit10", s.p_hit10()},
                        {"event_f1", f1_events}});
    }
    if (f1 > best_f1 && f1_events >= event_f1) {
      best_f1 = f1;
      chosen = o;
    }
  }
  return chosen;
}

}  // namespace seis
