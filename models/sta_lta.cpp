// STA/LTA, trigger_onset and coincidence_trigger with obspy's semantics (obspy/signal/src/stalta.c
// and obspy/signal/trigger.py): whole-array references transcribed from obspy, and streaming twins
// that give the same bits over any block sizes.
#include "models/sta_lta.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <deque>
#include <string>

#include "engine/error.h"

namespace seis {
namespace {

// x is float, so x*x is exact in double: the same bits as obspy's pow(data[i], 2) on float64 data.
inline double sq(float x) { return static_cast<double>(x) * static_cast<double>(x); }

void check_windows(int64_t nsta, int64_t nlta) {
  if (nsta < 1) throw UsageError("sta/lta: nsta = " + std::to_string(nsta) + " samples; it must be at least 1");
  if (nlta <= nsta) {
    throw UsageError("sta/lta: nlta = " + std::to_string(nlta) +
                     " samples must be longer than nsta = " + std::to_string(nsta));
  }
}

void check_thresholds(double thr_on, double thr_off, int64_t max_len) {
  if (std::isnan(thr_on) || std::isnan(thr_off) || thr_off > thr_on) {
    throw UsageError("trigger: thr_off = " + std::to_string(thr_off) +
                     " must be a number no larger than thr_on = " + std::to_string(thr_on));
  }
  if (max_len < 0) throw UsageError("trigger: max_len = " + std::to_string(max_len) + " samples must be >= 0");
}

// obspy's cft_peak: tr.data[on:off].max(), or tr.data[on] when that slice is empty. Every sample in
// [on, off] is >= thr_off, so there is no NaN to propagate.
double peak_of(const double* cft, int64_t on, int64_t off) {
  if (off <= on) return cft[on];
  double m = cft[on];
  for (int64_t i = on + 1; i < off; ++i) m = std::max(m, cft[i]);
  return m;
}

}  // namespace

void classic_sta_lta(const float* x, int64_t n, int64_t nsta, int64_t nlta, double* cft) {
  check_windows(nsta, nlta);
  if (n < nlta) {
    throw InputError("classic_sta_lta: the trace has " + std::to_string(n) +
                     " samples, fewer than nlta = " + std::to_string(nlta));
  }
  const double frac = static_cast<double>(nlta) / static_cast<double>(nsta);
  double sta = 0, lta = 0;
  for (int64_t i = 0; i < nsta; ++i) {
    sta += sq(x[i]);
    cft[i] = 0;
  }
  lta = sta;
  for (int64_t i = nsta; i < nlta; ++i) {
    const double buf = sq(x[i]);
    lta += buf;
    sta += buf - sq(x[i - nsta]);
    cft[i] = 0;
  }
  cft[nlta - 1] = sta / lta * frac;
  for (int64_t i = nlta; i < n; ++i) {
    const double buf = sq(x[i]);
    sta += buf - sq(x[i - nsta]);
    lta += buf - sq(x[i - nlta]);
    cft[i] = sta / lta * frac;
  }
}

StaLtaStream::StaLtaStream(int64_t width, int64_t nsta, int64_t nlta) : width_(width), nsta_(nsta), nlta_(nlta) {
  check_windows(nsta, nlta);
  if (width < 1) throw UsageError("sta/lta: width = " + std::to_string(width) + " traces; it must be at least 1");
  frac_ = static_cast<double>(nlta) / static_cast<double>(nsta);
  sta_.assign(static_cast<size_t>(width), 0.0);
  lta_.assign(static_cast<size_t>(width), 0.0);
  ring_.assign(static_cast<size_t>(width * nlta), 0.0f);
}

void StaLtaStream::feed(const float* rows, int64_t count, double* cft_rows) {
  if (count < 0) throw UsageError("sta/lta: feed of " + std::to_string(count) + " rows");
  const int64_t w = width_;
  double* sta = sta_.data();
  double* lta = lta_.data();
  for (int64_t r = 0; r < count; ++r, ++t_) {
    const float* x = rows + r * w;
    double* c = cft_rows + r * w;
    float* slot = ring_.data() + (t_ % nlta_) * w;  // sample t - nlta until overwritten below
    // The three phases of obspy's loops, one sample at a time, in obspy's order of operations.
    if (t_ < nsta_) {
      for (int64_t j = 0; j < w; ++j) {
        sta[j] += sq(x[j]);
        c[j] = 0;
      }
      if (t_ == nsta_ - 1) std::copy(sta, sta + w, lta);
    } else if (t_ < nlta_) {
      const float* gone_sta = ring_.data() + ((t_ - nsta_) % nlta_) * w;
      for (int64_t j = 0; j < w; ++j) {
        const double buf = sq(x[j]);
        lta[j] += buf;
        sta[j] += buf - sq(gone_sta[j]);
        c[j] = t_ == nlta_ - 1 ? sta[j] / lta[j] * frac_ : 0.0;
      }
    } else {
      const float* gone_sta = ring_.data() + ((t_ - nsta_) % nlta_) * w;
      for (int64_t j = 0; j < w; ++j) {
        const double buf = sq(x[j]);
        sta[j] += buf - sq(gone_sta[j]);
        lta[j] += buf - sq(slot[j]);
        c[j] = sta[j] / lta[j] * frac_;
      }
    }
    std::copy(x, x + w, slot);
  }
}

std::vector<TraceTrigger> trigger_onset(const double* cft, int64_t n, double thr_on, double thr_off, int64_t max_len,
                                        int64_t trace) {
  check_thresholds(thr_on, thr_off, max_len);
  // Follows the python line by line: ind1/ind2 are the samples at or above each threshold, `on`
  // the starts of runs in ind1, `of` the ends of runs in ind2.
  std::vector<int64_t> ind1, ind2;
  for (int64_t i = 0; i < n; ++i) {
    if (cft[i] >= thr_on) ind1.push_back(i);
    if (cft[i] >= thr_off) ind2.push_back(i);
  }
  if (ind1.empty()) return {};
  std::deque<int64_t> on{ind1[0]}, of{-1};
  for (size_t k = 0; k < ind2.size(); ++k) {
    if (k + 1 == ind2.size() || ind2[k + 1] - ind2[k] > 1) of.push_back(ind2[k]);
  }
  for (size_t k = 1; k < ind1.size(); ++k) {
    if (ind1[k] - ind1[k - 1] > 1) on.push_back(ind1[k]);
  }
  of.push_back(ind2.back());  // "include last pick if trigger is on"
  of.push_back(n);
  std::vector<TraceTrigger> picks;
  while (on.back() > of.front()) {
    while (on.front() <= of.front()) on.pop_front();
    while (of.front() < on.front()) of.pop_front();
    if (of.front() - on.front() > max_len) of.push_front(on.front() + max_len);
    picks.push_back({trace, on.front(), of.front(), peak_of(cft, on.front(), of.front())});
  }
  return picks;
}

TriggerStream::TriggerStream(int64_t width, double thr_on, double thr_off, int64_t max_len)
    : width_(width), thr_on_(thr_on), thr_off_(thr_off), max_len_(max_len) {
  check_thresholds(thr_on, thr_off, max_len);
  if (width < 1) throw UsageError("trigger: width = " + std::to_string(width) + " traces; it must be at least 1");
  on_.assign(static_cast<size_t>(width), -1);
  peak_.assign(static_cast<size_t>(width), 0.0);
  last_.assign(static_cast<size_t>(width), 0.0);
  above_.assign(static_cast<size_t>(width), 0);
}

void TriggerStream::close(int64_t j, int64_t off, std::vector<TraceTrigger>* closed) {
  const int64_t on = on_[j];
  closed->push_back({j, on, off, off > on ? peak_[j] : last_[j]});
  on_[j] = -1;
}

void TriggerStream::feed(const double* cft_rows, int64_t t0, int64_t count, std::vector<TraceTrigger>* closed) {
  if (finished_) throw UsageError("trigger: feed after finish");
  if (t0 != next_ || count < 0) {
    throw UsageError("trigger: rows [" + std::to_string(t0) + ", +" + std::to_string(count) + ") fed where sample " +
                     std::to_string(next_) + " was next");
  }
  for (int64_t r = 0; r < count; ++r) {
    const int64_t t = t0 + r;
    const double* c = cft_rows + r * width_;
    for (int64_t j = 0; j < width_; ++j) {
      const bool in_on = c[j] >= thr_on_, in_off = c[j] >= thr_off_;  // NaN is in neither, as in numpy
      if (on_[j] >= 0) {
        // Off at the last sample >= thr_off; or obspy's of = on + max_len once it runs longer.
        if (!in_off || t - on_[j] > max_len_) {
          close(j, t - 1, closed);
        } else {
          peak_[j] = std::max(peak_[j], last_[j]);
          last_[j] = c[j];
        }
      }
      // A trigger starts only where a run of samples >= thr_on starts (obspy's `on` list).
      if (on_[j] < 0 && in_on && !above_[j]) {
        on_[j] = t;
        peak_[j] = -HUGE_VAL;
        last_[j] = c[j];
      }
      above_[j] = in_on;
    }
  }
  next_ += count;
  update_watermark();
}

void TriggerStream::finish(int64_t t_end, std::vector<TraceTrigger>* closed) {
  if (finished_) throw UsageError("trigger: finish called twice");
  if (t_end != next_) {
    throw UsageError("trigger: finish at sample " + std::to_string(t_end) + " after " + std::to_string(next_) +
                     " samples were fed");
  }
  // obspy: a trigger still on at the end is kept, with off at the last sample >= thr_off.
  for (int64_t j = 0; j < width_; ++j) {
    if (on_[j] >= 0) close(j, t_end - 1, closed);
  }
  finished_ = true;
  update_watermark();
}

void TriggerStream::update_watermark() {
  int64_t w = next_;
  for (int64_t on : on_) {
    if (on >= 0) w = std::min(w, on);
  }
  watermark_ = w;
}

void TriggerReorder::release_before(int64_t watermark, std::vector<TraceTrigger>* out) {
  while (!heap_.empty() && heap_.top().on < watermark) {
    out->push_back(heap_.top());
    heap_.pop();
  }
}

std::vector<Coincidence> coincidence_trigger(std::vector<TraceTrigger> triggers, double thr_coincidence_sum) {
  std::sort(triggers.begin(), triggers.end(), trigger_before);
  std::vector<Coincidence> events;
  // obspy starts last_off_time at 0.0 s (1970): for a record that starts later, "no event yet".
  bool have_last = false;
  int64_t last_off = 0;
  for (size_t k = 0; k < triggers.size(); ++k) {  // triggers.pop(0)
    Coincidence ev;
    ev.on = triggers[k].on;
    int64_t off = triggers[k].off;
    ev.traces = {triggers[k].trace};
    ev.peaks = {triggers[k].peak};
    ev.coincidence_sum = 1.0;
    for (size_t m = k + 1; m < triggers.size(); ++m) {
      const TraceTrigger& t = triggers[m];
      if (std::find(ev.traces.begin(), ev.traces.end(), t.trace) != ev.traces.end()) continue;
      if (t.on > off) break;
      ev.traces.push_back(t.trace);
      ev.peaks.push_back(t.peak);
      ev.coincidence_sum += 1;
      off = std::max(off, t.off);
    }
    if (ev.coincidence_sum < thr_coincidence_sum) continue;
    if (have_last && off <= last_off) continue;  // a subset of the previous event
    ev.off = off;
    ev.n_traces = static_cast<int64_t>(ev.traces.size());
    events.push_back(std::move(ev));
    have_last = true;
    last_off = off;
  }
  return events;
}

std::vector<Coincidence> coincidence_trigger(const double* cft, int64_t height, int64_t width, double thr_on,
                                             double thr_off, double thr_coincidence_sum, int64_t max_len) {
  std::vector<TraceTrigger> all;
  std::vector<double> column(static_cast<size_t>(height));
  for (int64_t j = 0; j < width; ++j) {
    for (int64_t t = 0; t < height; ++t) column[t] = cft[t * width + j];
    const std::vector<TraceTrigger> tr = trigger_onset(column.data(), height, thr_on, thr_off, max_len, j);
    all.insert(all.end(), tr.begin(), tr.end());
  }
  return coincidence_trigger(std::move(all), thr_coincidence_sum);
}

void CoincidenceStream::add(const TraceTrigger& t) {
  SEIS_CHECK(t.on >= known_before_ && t.on >= last_on_, "coincidence: trigger on "
                                                            << t.on << " after triggers on " << last_on_
                                                            << " and a promise of none before " << known_before_);
  last_on_ = t.on;
  // Ties on `on` are sorted by (off, trace) as obspy sorts; they are few, so insert from the back.
  auto pos = pending_.end();
  while (pos != pending_.begin() + static_cast<std::ptrdiff_t>(head_) && trigger_before(t, *(pos - 1))) --pos;
  pending_.insert(pos, t);
  if (t.trace >= static_cast<int64_t>(seen_.size())) seen_.resize(static_cast<size_t>(t.trace + 1), 0);
  dirty_ = true;
}

void CoincidenceStream::flush_before(int64_t sample, std::vector<Coincidence>* out) {
  SEIS_CHECK(sample >= known_before_,
             "coincidence: flush before " << sample << " after a flush before " << known_before_);
  known_before_ = sample;
  if (head_ > 0 && head_ * 2 >= pending_.size()) {  // drop the triggers already used as event heads
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  while (head_ < pending_.size()) {
    if (!dirty_ && sample <= open_off_) return;  // the head event is still open and nothing changed
    // The event of pending_[head_], built as obspy builds it from the triggers after it.
    const TraceTrigger& first = pending_[head_];
    Coincidence ev;
    ev.on = first.on;
    int64_t off = first.off;
    ev.traces = {first.trace};
    ev.peaks = {first.peak};
    ev.coincidence_sum = 1.0;
    ++stamp_;
    seen_[first.trace] = stamp_;
    for (size_t m = head_ + 1; m < pending_.size(); ++m) {
      const TraceTrigger& t = pending_[m];
      if (seen_[t.trace] == stamp_) continue;
      if (t.on > off) break;
      seen_[t.trace] = stamp_;
      ev.traces.push_back(t.trace);
      ev.peaks.push_back(t.peak);
      ev.coincidence_sum += 1;
      off = std::max(off, t.off);
    }
    // A trigger still to come (on >= sample) could join while sample <= off.
    if (off >= sample) {
      dirty_ = false;
      open_off_ = off;
      return;
    }
    ++head_;
    dirty_ = true;
    if (ev.coincidence_sum >= thr_ && !(have_last_ && off <= last_off_)) {
      ev.off = off;
      ev.n_traces = static_cast<int64_t>(ev.traces.size());
      have_last_ = true;
      last_off_ = off;
      out->push_back(std::move(ev));
    }
  }
}

void CoincidenceStream::finish(std::vector<Coincidence>* out) {
  flush_before(std::numeric_limits<int64_t>::max(), out);
}

StaLtaOptions sta_lta_defaults(double dt) {
  if (!(dt > 0) || !std::isfinite(dt)) {
    throw UsageError("sta/lta: sampling interval dt = " + std::to_string(dt) + " s; it must be > 0");
  }
  StaLtaOptions o;
  o.nsta = std::max<int64_t>(1, std::llround(0.02 / dt));
  o.nlta = std::max<int64_t>(o.nsta + 1, std::llround(0.5 / dt));
  // obspy: max_len = int(max_trigger_length * sampling_rate + 0.5) with max_trigger_length = 1e6 s.
  const double max_len = 1e6 * (1.0 / dt) + 0.5;
  o.max_trigger_len = max_len < 9e18 ? static_cast<int64_t>(max_len) : kNoMaxLen;
  return o;
}

namespace {

const StaLtaOptions& checked(const StaLtaOptions& opt) {
  check_windows(opt.nsta, opt.nlta);
  check_thresholds(opt.thr_on, opt.thr_off, opt.max_trigger_len);
  if (std::isnan(opt.coincidence_sum)) throw UsageError("sta/lta: coincidence_sum is NaN");
  return opt;
}

}  // namespace

StaLtaDetector::StaLtaDetector(int64_t width, const StaLtaOptions& opt)
    : opt_(checked(opt)),
      sta_lta_(width, opt.nsta, opt.nlta),
      trig_(width, opt.thr_on, opt.thr_off, opt.max_trigger_len),
      coinc_(opt.coincidence_sum) {}

void StaLtaDetector::feed(const float* rows, int64_t count, std::vector<TraceTrigger>* triggers,
                          std::vector<Coincidence>* events) {
  if (count < 0) throw UsageError("sta/lta: feed of " + std::to_string(count) + " rows");
  const int64_t w = sta_lta_.width();
  // The cft lives one chunk at a time (about 8 MiB), whatever block the caller hands in.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 20) / w);
  for (int64_t r = 0; r < count; r += chunk) {
    const int64_t n = std::min(chunk, count - r);
    cft_.resize(static_cast<size_t>(n * w));
    const int64_t t0 = sta_lta_.samples_fed();
    sta_lta_.feed(rows + r * w, n, cft_.data());
    trig_.feed(cft_.data(), t0, n, &closed_);
    pass_on(triggers, events);
  }
}

void StaLtaDetector::finish(std::vector<TraceTrigger>* triggers, std::vector<Coincidence>* events) {
  trig_.finish(sta_lta_.samples_fed(), &closed_);
  pass_on(triggers, events);
  SEIS_CHECK(reorder_.empty(), "sta/lta: triggers left in the reorder buffer after finish");
  coinc_.finish(events);
}

void StaLtaDetector::pass_on(std::vector<TraceTrigger>* triggers, std::vector<Coincidence>* events) {
  for (const TraceTrigger& t : closed_) reorder_.push(t);
  closed_.clear();
  reorder_.release_before(trig_.watermark(), &released_);
  for (const TraceTrigger& t : released_) {
    coinc_.add(t);
    if (triggers != nullptr) triggers->push_back(t);
  }
  released_.clear();
  coinc_.flush_before(trig_.watermark(), events);
}

}  // namespace seis
