// The classical STA/LTA detector with obspy's semantics (obspy.signal.trigger: classic_sta_lta,
// i.e. the C function `stalta`; trigger_onset; coincidence_trigger with trigger_type=None, all
// weights 1, delete_long_trigger=False), streaming over a record [T time samples][W traces] that
// arrives in blocks of rows. Every streaming class gives the same bits whatever the block sizes.
// Sample indices count from the record's first sample; trigger on/off are inclusive, as obspy's.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <queue>
#include <vector>

namespace seis {

// max_len (samples) that never releases a trigger early: trigger_onset's default of 9e99.
constexpr int64_t kNoMaxLen = std::numeric_limits<int64_t>::max();

// obspy's classic_sta_lta on one trace x[0, n): cft[i] = 0 for i < nlta - 1, else
// (sta_sum / lta_sum) * (nlta / nsta) from running sums of x^2 in double, in obspy's order, with
// no guard: a zero lta gives NaN or inf as in obspy. UsageError unless 1 <= nsta < nlta;
// InputError when n < nlta (obspy raises there too).
void classic_sta_lta(const float* x, int64_t n, int64_t nsta, int64_t nlta, double* cft);

// classic_sta_lta per trace over blocks of rows: bit-identical to classic_sta_lta on the whole
// trace. Keeps the last nlta samples of each trace (W * nlta floats). A record shorter than nlta
// gives zeros here, where obspy raises.
class StaLtaStream {
 public:
  StaLtaStream(int64_t width, int64_t nsta, int64_t nlta);
  // rows [count][W] are the next `count` samples; writes cft_rows [count][W].
  void feed(const float* rows, int64_t count, double* cft_rows);
  int64_t width() const { return width_; }
  int64_t samples_fed() const { return t_; }

 private:
  int64_t width_, nsta_, nlta_, t_ = 0;
  double frac_;
  std::vector<double> sta_, lta_;  // running sums of x^2, per trace
  std::vector<float> ring_;        // [nlta][W]: row i % nlta holds sample i
};

// One trace's trigger: on is the first sample with cft >= thr_on, off the last with cft >= thr_off
// (or on + max_len; or the last sample of the record while still on). peak is obspy's cft_peak:
// max cft over [on, off), or cft[on] when on == off.
struct TraceTrigger {
  int64_t trace = 0, on = 0, off = 0;
  double peak = 0;
};
inline bool operator==(const TraceTrigger& a, const TraceTrigger& b) {
  return a.trace == b.trace && a.on == b.on && a.off == b.off && a.peak == b.peak;
}
// obspy's order of all triggers (triggers.sort() on (on time, off time, trace id)).
inline bool trigger_before(const TraceTrigger& a, const TraceTrigger& b) {
  if (a.on != b.on) return a.on < b.on;
  if (a.off != b.off) return a.off < b.off;
  return a.trace < b.trace;
}

// obspy's trigger_onset(cft, thr_on, thr_off, max_len, max_len_delete=False) on one trace,
// transcribed from the python; `trace` is copied into the results. UsageError unless
// thr_off <= thr_on (obspy's algorithm assumes it) and max_len >= 0.
std::vector<TraceTrigger> trigger_onset(const double* cft, int64_t n, double thr_on, double thr_off,
                                        int64_t max_len = kNoMaxLen, int64_t trace = 0);

// trigger_onset per trace over blocks of cft rows. Triggers close in (off, trace) order.
class TriggerStream {
 public:
  TriggerStream(int64_t width, double thr_on, double thr_off, int64_t max_len = kNoMaxLen);
  // cft_rows [count][W] are samples [t0, t0 + count); t0 must be the next sample. Appends the
  // triggers that closed to *closed.
  void feed(const double* cft_rows, int64_t t0, int64_t count, std::vector<TraceTrigger>* closed);
  // Closes the triggers still on at the end of the record (t_end = samples fed) with off = t_end - 1.
  void finish(int64_t t_end, std::vector<TraceTrigger>* closed);
  // No trigger closed later has on < watermark(): the first on of the open triggers, else the next sample.
  int64_t watermark() const { return watermark_; }

 private:
  void close(int64_t j, int64_t off, std::vector<TraceTrigger>* closed);
  void update_watermark();

  int64_t width_;
  double thr_on_, thr_off_;
  int64_t max_len_;
  int64_t next_ = 0, watermark_ = 0;
  bool finished_ = false;
  std::vector<int64_t> on_;     // on sample of the open trigger, -1 when none
  std::vector<double> peak_;    // max cft over [on, last sample) of the open trigger
  std::vector<double> last_;    // cft at the last sample of the open trigger
  std::vector<uint8_t> above_;  // the previous sample had cft >= thr_on
};

// Puts triggers that close in off order back into trigger_before order.
class TriggerReorder {
 public:
  void push(const TraceTrigger& t) { heap_.push(t); }
  // Appends, in trigger_before order, the held triggers with on < watermark.
  void release_before(int64_t watermark, std::vector<TraceTrigger>* out);
  bool empty() const { return heap_.empty(); }

 private:
  struct After {
    bool operator()(const TraceTrigger& a, const TraceTrigger& b) const { return trigger_before(b, a); }
  };
  std::priority_queue<TraceTrigger, std::vector<TraceTrigger>, After> heap_;
};

// A network coincidence: obspy's event with time = on, duration = off - on, trace_ids = traces
// (in obspy's order: the first trigger's trace, then those it took in), cft_peaks = peaks.
struct Coincidence {
  int64_t on = 0, off = 0;
  int64_t n_traces = 0;
  std::vector<int64_t> traces;
  std::vector<double> peaks;
  double coincidence_sum = 0;
};
inline bool operator==(const Coincidence& a, const Coincidence& b) {
  return a.on == b.on && a.off == b.off && a.n_traces == b.n_traces && a.traces == b.traces && a.peaks == b.peaks &&
         a.coincidence_sum == b.coincidence_sum;
}

// obspy's coincidence loop over single-trace triggers (any order: they are sorted first),
// transcribed from the python. Events with coincidence_sum < thr_coincidence_sum are dropped, and
// so is an event whose off is <= the off of the last event kept.
std::vector<Coincidence> coincidence_trigger(std::vector<TraceTrigger> triggers, double thr_coincidence_sum);
// The same from a whole cft array [height][width]: trigger_onset per trace, then the loop above.
std::vector<Coincidence> coincidence_trigger(const double* cft, int64_t height, int64_t width, double thr_on,
                                             double thr_off, double thr_coincidence_sum, int64_t max_len = kNoMaxLen);

// coincidence_trigger over triggers that arrive in nondecreasing on order.
class CoincidenceStream {
 public:
  explicit CoincidenceStream(double thr_coincidence_sum) : thr_(thr_coincidence_sum) {}
  void add(const TraceTrigger& t);
  // Promise: no trigger added later has on < sample. Appends the events that are now final.
  void flush_before(int64_t sample, std::vector<Coincidence>* out);
  void finish(std::vector<Coincidence>* out);

 private:
  double thr_;
  std::vector<TraceTrigger> pending_;  // not yet an event's first trigger, in trigger_before order
  size_t head_ = 0;                    // pending_[head_] is the next event's first trigger
  int64_t known_before_ = std::numeric_limits<int64_t>::min();
  int64_t last_on_ = std::numeric_limits<int64_t>::min();
  int64_t last_off_ = 0;  // off of the last event kept
  bool have_last_ = false;
  bool dirty_ = true;          // triggers came in since the head event was last found open
  int64_t open_off_ = 0;       // that event's off: it is final once the promise passes it
  std::vector<int64_t> seen_;  // seen_[trace] == stamp_: the trace is in the event being built
  int64_t stamp_ = 0;
};

struct StaLtaOptions {
  int64_t nsta = 0, nlta = 0;  // windows in samples
  double thr_on = 3.5, thr_off = 1.5;
  double coincidence_sum = 3;           // traces that must trigger together
  int64_t max_trigger_len = kNoMaxLen;  // samples; obspy's coincidence_trigger uses 1e6 s
};
// Microseismic defaults for a sampling interval dt (s): STA 0.02 s, LTA 0.5 s, thresholds 3.5 and
// 1.5, 3 traces, triggers released after 1e6 s as in obspy. UsageError unless dt > 0.
StaLtaOptions sta_lta_defaults(double dt);

// STA/LTA, single-trace triggers and network coincidences over a record fed in blocks of rows.
class StaLtaDetector {
 public:
  StaLtaDetector(int64_t width, const StaLtaOptions& opt);
  // rows [count][W]: the next samples. Appends the triggers now known, in trigger_before order,
  // to *triggers (may be null) and the events now final, in time order, to *events.
  void feed(const float* rows, int64_t count, std::vector<TraceTrigger>* triggers, std::vector<Coincidence>* events);
  // The end of the record: the rest of the triggers and events.
  void finish(std::vector<TraceTrigger>* triggers, std::vector<Coincidence>* events);
  int64_t samples_fed() const { return sta_lta_.samples_fed(); }
  const StaLtaOptions& options() const { return opt_; }

 private:
  void pass_on(std::vector<TraceTrigger>* triggers, std::vector<Coincidence>* events);

  StaLtaOptions opt_;
  StaLtaStream sta_lta_;
  TriggerStream trig_;
  TriggerReorder reorder_;
  CoincidenceStream coinc_;
  std::vector<double> cft_;
  std::vector<TraceTrigger> closed_, released_;
};

}  // namespace seis
