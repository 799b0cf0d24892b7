// Event and pick scores (models/detection_score.h): sorts and binary searches, one pass each.
#include "models/detection_score.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <queue>
#include <utility>

#include "engine/error.h"

namespace seis {

namespace {

// One event with arrivals: its span in ms and its SNR.
struct Span {
  int64_t gather = 0;
  double start = 0, end = 0, snr_db = 0;
};

// A time on one trace, for nearest-neighbour searches.
struct TraceTime {
  int64_t gather = 0, trace = 0;
  double ms = 0;
  bool operator<(const TraceTime& o) const {
    if (gather != o.gather) return gather < o.gather;
    if (trace != o.trace) return trace < o.trace;
    return ms < o.ms;
  }
};

// Signed distance (found - q.ms) to the nearest time on q's trace in `sorted`; false when the trace
// holds none. Ties go to the earlier time.
bool nearest(const std::vector<TraceTime>& sorted, const TraceTime& q, double* error) {
  const auto hi = std::lower_bound(sorted.begin(), sorted.end(), q);
  const bool has_hi = hi != sorted.end() && hi->gather == q.gather && hi->trace == q.trace;
  const bool has_lo = hi != sorted.begin() && (hi - 1)->gather == q.gather && (hi - 1)->trace == q.trace;
  if (!has_hi && !has_lo) return false;
  const double e_hi = has_hi ? hi->ms - q.ms : std::numeric_limits<double>::infinity();
  const double e_lo = has_lo ? (hi - 1)->ms - q.ms : -std::numeric_limits<double>::infinity();
  *error = -e_lo <= e_hi ? e_lo : e_hi;
  return true;
}

double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

// +-inf as null: JSON has no infinity.
nlohmann::json edge(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

double EventScore::precision() const { return ratio(matched_detections, detections); }
double EventScore::recall() const { return ratio(matched_events, events); }
double EventScore::f1() const {
  const double p = precision(), r = recall();
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}
double EventScore::false_per_hour() const { return hours > 0 ? static_cast<double>(false_detections()) / hours : 0.0; }

EventScore score_events(const GroundTruth& truth, const std::vector<Detection>& detections,
                        const ScoreOptions& options) {
  const std::vector<double>& edges = options.snr_edges_db;
  for (size_t k = 0; k < edges.size(); ++k) {
    SEIS_CHECK(std::isfinite(edges[k]) && (k == 0 || edges[k - 1] < edges[k]), "SNR edges must ascend");
  }
  const double tol = options.tolerance_ms;
  EventScore s;
  s.hours = truth.duration_s / 3600.0;
  s.detections = static_cast<int64_t>(detections.size());

  std::vector<Span> spans;
  spans.reserve(truth.events.size());
  for (const SynthEventRow& e : truth.events) {
    if (std::isnan(e.first_arrival_s) || std::isnan(e.last_arrival_s)) {
      ++s.events_without_arrivals;
      continue;
    }
    spans.push_back({e.gather, e.first_arrival_s * 1000.0 - tol, e.last_arrival_s * 1000.0 + tol, e.snr_db});
  }
  s.events = static_cast<int64_t>(spans.size());
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.gather != b.gather ? a.gather < b.gather : a.start < b.start;
  });
  std::vector<size_t> order(detections.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Detection &da = detections[a], &db = detections[b];
    return da.gather != db.gather ? da.gather < db.gather : da.time_ms < db.time_ms;
  });

  // Sweep: `open` holds the unmatched events of the current gather that have started, by end.
  std::vector<char> matched(spans.size(), 0);
  using Open = std::pair<double, size_t>;
  std::priority_queue<Open, std::vector<Open>, std::greater<Open>> open;
  size_t next = 0;
  int64_t gather = std::numeric_limits<int64_t>::min();
  for (size_t i : order) {
    const Detection& d = detections[i];
    if (d.gather != gather) {
      gather = d.gather;
      open = {};
      while (next < spans.size() && spans[next].gather < gather) ++next;
    }
    while (next < spans.size() && spans[next].gather == gather && spans[next].start <= d.time_ms) {
      open.push({spans[next].end, next});
      ++next;
    }
    while (!open.empty() && open.top().first < d.time_ms) open.pop();  // ended before this detection
    if (open.empty()) continue;
    matched[open.top().second] = 1;
    open.pop();
    ++s.matched_detections;
  }
  s.matched_events = s.matched_detections;

  std::vector<SnrBin> bins(edges.size() + 1);
  for (size_t b = 0; b < bins.size(); ++b) {
    bins[b].lo_db = b == 0 ? -std::numeric_limits<double>::infinity() : edges[b - 1];
    bins[b].hi_db = b == edges.size() ? std::numeric_limits<double>::infinity() : edges[b];
  }
  for (size_t k = 0; k < spans.size(); ++k) {
    if (std::isnan(spans[k].snr_db)) continue;
    SnrBin& bin =
        bins[static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), spans[k].snr_db) - edges.begin())];
    ++bin.events;
    bin.matched += matched[k];
  }
  for (const SnrBin& b : bins) {
    if (b.events > 0) s.by_snr.push_back(b);
  }
  return s;
}

PickScore score_picks(const GroundTruth& truth, const std::vector<Pick>& picks, const ScoreOptions& options) {
  const double tol = options.tolerance_ms;
  PickScore s;
  s.picks = static_cast<int64_t>(picks.size());
  s.arrivals = static_cast<int64_t>(truth.picks.size());
  std::vector<TraceTime> picked(picks.size()), arrivals(truth.picks.size());
  for (size_t k = 0; k < picks.size(); ++k) picked[k] = {picks[k].gather, picks[k].trace, picks[k].time_ms};
  for (size_t k = 0; k < truth.picks.size(); ++k) {
    const SynthPickRow& a = truth.picks[k];
    arrivals[k] = {a.gather, a.trace, a.time_s * 1000.0};
  }
  std::sort(picked.begin(), picked.end());

  double sum = 0, sum_abs = 0, sum_sq = 0;
  std::vector<double> errors;
  for (size_t k = 0; k < arrivals.size(); ++k) {
    const bool p_phase = truth.picks[k].phase == 0;
    s.p_arrivals += p_phase;
    double err = 0;
    if (!nearest(picked, arrivals[k], &err)) continue;
    const double a = std::fabs(err);
    s.hits10 += a <= 10;
    s.hits20 += a <= 20;
    s.p_hits10 += p_phase && a <= 10;
    s.p_hits20 += p_phase && a <= 20;
    if (a <= tol) {
      ++s.hits;
      errors.push_back(err);
      sum += err;
      sum_abs += a;
      sum_sq += err * err;
    }
  }
  if (s.hits > 0) {
    const double n = static_cast<double>(s.hits);
    s.mean_ms = sum / n;
    s.mae_ms = sum_abs / n;
    s.rms_ms = std::sqrt(sum_sq / n);
    std::sort(errors.begin(), errors.end());
    const size_t m = errors.size() / 2;
    s.median_ms = errors.size() % 2 == 1 ? errors[m] : 0.5 * (errors[m - 1] + errors[m]);
  }

  std::sort(arrivals.begin(), arrivals.end());
  for (const TraceTime& p : picked) {
    double err = 0;
    if (!nearest(arrivals, p, &err) || std::fabs(err) > tol) ++s.unmatched_picks;
  }
  return s;
}

nlohmann::json to_json(const EventScore& s) {
  nlohmann::json bins = nlohmann::json::array();
  for (const SnrBin& b : s.by_snr) {
    bins.push_back({{"lo_db", edge(b.lo_db)},
                    {"hi_db", edge(b.hi_db)},
                    {"events", b.events},
                    {"matched", b.matched},
                    {"recall", b.recall()}});
  }
  return {{"events", s.events},
          {"events_without_arrivals", s.events_without_arrivals},
          {"detections", s.detections},
          {"matched_events", s.matched_events},
          {"matched_detections", s.matched_detections},
          {"false_detections", s.false_detections()},
          {"hours", s.hours},
          {"precision", s.precision()},
          {"recall", s.recall()},
          {"f1", s.f1()},
          {"false_per_hour", s.false_per_hour()},
          {"by_snr", bins}};
}

nlohmann::json to_json(const PickScore& s) {
  return {{"arrivals", s.arrivals},
          {"picks", s.picks},
          {"hits10", s.hits10},
          {"hits20", s.hits20},
          {"hits", s.hits},
          {"hit10", s.hit10()},
          {"hit20", s.hit20()},
          {"mean_ms", s.mean_ms},
          {"mae_ms", s.mae_ms},
          {"rms_ms", s.rms_ms},
          {"p_arrivals", s.p_arrivals},
          {"p_hits10", s.p_hits10},
          {"p_hits20", s.p_hits20},
          {"p_hit10", s.p_hit10()},
          {"p_hit20", s.p_hit20()},
          {"unmatched_picks", s.unmatched_picks}};
}

}  // namespace seis
