// Ground truth of the synthetic generator (SynthSampleInfo::picks and events, SynthRecord): every
// pick sits on label 1 and every labelled run contains a pick, the picks are exactly the arrivals of
// the drawn events inside the window, in the documented order, with first/last arrival their
// extremes; collecting them changes no bit of the gathers. Continuous records: any partition into
// windows gives the same record bit for bit (every noise and transient component on), the noise
// (pink and correlated across receivers included) has unit rms, events have their SNR and arrive at
// the requested rate, and the transients leave the label and the truth alone. Attenuated events
// (on by default) are picked where io/synth_attenuation.h says, with its label half-width.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "io/synth_attenuation.h"
#include "io/synth_microseismic.h"
#include "io/synth_wavelet.h"

namespace seis {
namespace {

// [rows][W] data and label with their picks and events, from a gather or a record.
struct Grid {
  int64_t rows = 0, W = 0;
  double dt = 0;
  std::vector<float> data;
  std::vector<uint8_t> label;
  std::vector<SynthEvent> events;
  std::vector<SynthPick> picks;
};

Grid gather(const SynthConfig& cfg, int64_t index) {
  Grid g;
  g.rows = cfg.height;
  g.W = cfg.width;
  g.dt = cfg.dt;
  g.data.resize(static_cast<size_t>(g.rows * g.W));
  g.label.resize(g.data.size());
  SynthSampleInfo info;
  synth_sample(cfg, index, g.data.data(), g.label.data(), &info);
  g.events = info.events;
  g.picks = info.picks;
  return g;
}

// A whole record, made in windows of `block` rows, with its ground truth.
Grid record(const SynthRecord& rec, int64_t block) {
  Grid g;
  g.rows = rec.samples();
  g.W = rec.config().width;
  g.dt = rec.config().dt;
  g.data.resize(static_cast<size_t>(g.rows * g.W));
  g.label.resize(g.data.size());
  for (int64_t t0 = 0; t0 < g.rows; t0 += block) {
    const int64_t n = std::min(block, g.rows - t0);
    rec.window(t0, n, g.data.data() + t0 * g.W, g.label.data() + t0 * g.W);
  }
  std::vector<SynthEvent> ev;
  std::vector<SynthPick> pk;
  for (int64_t s = 0; s < rec.segments(); ++s) {
    rec.segment_truth(s, static_cast<int64_t>(g.events.size()), &ev, &pk);
    g.events.insert(g.events.end(), ev.begin(), ev.end());
    g.picks.insert(g.picks.end(), pk.begin(), pk.end());
  }
  return g;
}

// Where the arrival of phase `phase` of event e on trace j is picked, and its label half-width: the
// kinematic time and the wavelet's half-width, or for an attenuated event what attenuate_arrival
// makes of them (the same inputs as the generator's, so the same bits).
struct Expected {
  double time = 0, half = 0;
};
Expected expected_arrival(const SynthConfig& cfg, const SynthEvent& e, int64_t j, int phase) {
  const double tt = synth_traveltime(cfg, e.z, static_cast<double>(j) * cfg.dx - e.x, phase == 1, e.velocity_scale);
  const double t = e.origin_time + tt, f = phase == 0 ? e.freq_p : e.freq_s;
  const WaveletShape w =
      make_wavelet(e.wavelet, f, cfg.dt, e.damped_power, e.damped_rate, e.gabor_phase, e.gabor_width);
  const double fixed = cfg.label_half_ms * 1e-3;
  if (e.q_p <= 0) return {t, fixed > 0 ? fixed : w.half};
  AttenuatedArrival a;
  attenuate_arrival(w, t, tt / (phase == 0 ? e.q_p : e.q_s), cfg.dt, &a);
  return {a.pick, fixed > 0 ? fixed : a.half};
}

bool dead_trace(const Grid& g, int64_t j) {
  for (int64_t k = 0; k < g.rows; ++k) {
    if (g.data[k * g.W + j] != 0.0f) return false;
  }
  return true;
}

// Whether some arrival of the events lies outside [0, (rows-1) dt] but labels row `row` of trace j
// (the only way a labelled run can lack a pick).
bool outside_arrival_labels(const Grid& g, const SynthConfig& cfg, int64_t j, int64_t row) {
  const double t_max = static_cast<double>(g.rows - 1) * g.dt;
  for (const SynthEvent& e : g.events) {
    for (int phase = 0; phase < 2; ++phase) {
      const Expected x = expected_arrival(cfg, e, j, phase);
      const double t = x.time;
      if ((t < 0 || t > t_max) && std::fabs(static_cast<double>(row) * g.dt - t) <= x.half + 1e-12) return true;
    }
  }
  return false;
}

// The checks every gather and record must pass.
void expect_consistent_truth(const Grid& g, const SynthConfig& cfg, const std::string& what) {
  SCOPED_TRACE(what);
  const double t_max = static_cast<double>(g.rows - 1) * g.dt;
  std::vector<uint8_t> dead(static_cast<size_t>(g.W));
  for (int64_t j = 0; j < g.W; ++j) dead[j] = dead_trace(g, j);

  // Every pick: on a live trace, inside the window, on label 1, in (event, phase, trace) order.
  std::vector<std::vector<int64_t>> rows_of_trace(static_cast<size_t>(g.W));
  for (size_t k = 0; k < g.picks.size(); ++k) {
    const SynthPick& p = g.picks[k];
    ASSERT_GE(p.trace, 0);
    ASSERT_LT(p.trace, g.W);
    ASSERT_GE(p.event, 0);
    ASSERT_LT(p.event, static_cast<int64_t>(g.events.size()));
    ASSERT_LE(p.phase, 1);
    ASSERT_FALSE(dead[p.trace]) << "pick " << k << " on dead trace " << p.trace;
    ASSERT_GE(p.time, 0.0);
    ASSERT_LE(p.time, t_max);
    const int64_t row = std::llround(p.time / g.dt);
    ASSERT_EQ(g.label[row * g.W + p.trace], 1) << "pick " << k << " at row " << row << " trace " << p.trace;
    rows_of_trace[p.trace].push_back(row);
    if (k > 0) {
      const SynthPick& q = g.picks[k - 1];
      ASSERT_LT(std::make_tuple(q.event, q.phase, q.trace), std::make_tuple(p.event, p.phase, p.trace))
          << "picks " << k - 1 << " and " << k << " out of order";
    }
  }

  // Every labelled run on a live trace contains a pick, unless an arrival outside the window
  // explains it (then it touches the first or last row).
  int64_t runs = 0, edge_runs = 0;
  for (int64_t j = 0; j < g.W; ++j) {
    for (int64_t k = 0; k < g.rows; ++k) {
      if (!g.label[k * g.W + j]) continue;
      ASSERT_FALSE(dead[j]) << "label 1 on dead trace " << j;
      int64_t end = k;
      while (end + 1 < g.rows && g.label[(end + 1) * g.W + j]) ++end;
      ++runs;
      const auto& r = rows_of_trace[j];
      const bool picked = std::any_of(r.begin(), r.end(), [&](int64_t x) { return x >= k && x <= end; });
      if (!picked) {
        ++edge_runs;
        const int64_t edge = k == 0 ? 0 : end;
        ASSERT_TRUE(k == 0 || end == g.rows - 1)
            << "trace " << j << ": labelled rows " << k << ".." << end << " hold no pick";
        ASSERT_TRUE(outside_arrival_labels(g, cfg, j, edge)) << "trace " << j << " rows " << k << ".." << end;
      }
      k = end;
    }
  }
  EXPECT_LE(edge_runs * 4, runs) << "most labelled runs should carry a pick";

  // The picks are exactly the events' arrivals on live traces inside the window.
  for (size_t e = 0; e < g.events.size(); ++e) {
    const SynthEvent& ev = g.events[e];
    std::vector<Expected> want;
    for (int phase = 0; phase < 2; ++phase) {
      for (int64_t j = 0; j < g.W; ++j) {
        if (dead[j]) continue;
        const Expected x = expected_arrival(cfg, ev, j, phase);
        if (x.time >= 0 && x.time <= t_max) want.push_back(x);
      }
    }
    std::vector<double> got, got_half;
    for (const SynthPick& p : g.picks) {
      if (p.event != static_cast<int64_t>(e)) continue;
      got.push_back(p.time);
      got_half.push_back(p.half);
    }
    ASSERT_EQ(got.size(), want.size()) << "event " << e;
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_NEAR(got[k], want[k].time, 1e-12) << "event " << e << " pick " << k;
      ASSERT_NEAR(got_half[k], want[k].half, 1e-12) << "event " << e << " pick " << k;
    }
    if (got.empty()) {
      EXPECT_TRUE(std::isnan(ev.first_arrival) && std::isnan(ev.last_arrival)) << "event " << e;
    } else {
      EXPECT_EQ(ev.first_arrival, *std::min_element(got.begin(), got.end())) << "event " << e;
      EXPECT_EQ(ev.last_arrival, *std::max_element(got.begin(), got.end())) << "event " << e;
    }
  }
}

TEST(SynthTruth, GatherPicksMatchTheLabelAndTheEvents) {
  SynthConfig cfg;
  cfg.seed = 21;
  cfg.height = 160;  // short: far S arrivals leave the window at the bottom
  cfg.width = 72;
  cfg.events_max = 4;
  cfg.dead_fraction = 0.1;
  int64_t picks = 0, events = 0, cut = 0;
  for (int64_t i = 0; i < 12; ++i) {
    const Grid g = gather(cfg, i);
    expect_consistent_truth(g, cfg, "gather " + std::to_string(i));
    picks += static_cast<int64_t>(g.picks.size());
    events += static_cast<int64_t>(g.events.size());
    int64_t live = 0;
    for (int64_t j = 0; j < g.W; ++j) live += !dead_trace(g, j);
    for (size_t e = 0; e < g.events.size(); ++e) {
      EXPECT_EQ(g.events[e].snr_db, g.events.front().snr_db) << "one SNR per gather";
      const auto n = std::count_if(g.picks.begin(), g.picks.end(),
                                   [&](const SynthPick& p) { return p.event == static_cast<int64_t>(e); });
      cut += n < 2 * live;  // some arrivals outside the window
    }
  }
  EXPECT_GT(events, 10);
  EXPECT_GT(picks, events * cfg.width);  // P on nearly every trace, S on many
  EXPECT_GT(cut, 0) << "no arrival left the window: the window checks went untested";
}

TEST(SynthTruth, CollectingTheTruthChangesNoBitAndIsDeterministic) {
  SynthConfig cfg;
  cfg.seed = 8;
  cfg.events_min = 1;
  cfg.spiky_fraction = 0.2;
  for (int64_t i : {0, 5}) {
    std::vector<float> d(static_cast<size_t>(cfg.height * cfg.width));
    std::vector<uint8_t> l(d.size());
    synth_sample(cfg, i, d.data(), l.data());  // without info
    const Grid a = gather(cfg, i), b = gather(cfg, i);
    EXPECT_EQ(std::memcmp(d.data(), a.data.data(), d.size() * 4), 0) << "gather " << i;
    EXPECT_EQ(l, a.label) << "gather " << i;
    ASSERT_EQ(a.picks.size(), b.picks.size());
    for (size_t k = 0; k < a.picks.size(); ++k) {
      EXPECT_EQ(std::memcmp(&a.picks[k].time, &b.picks[k].time, 8), 0);
      EXPECT_EQ(a.picks[k].trace, b.picks[k].trace);
    }
  }
}

// Every component on, the transients at high rates, so that window invariance covers them all.
SynthConfig record_config() {
  SynthConfig cfg;
  cfg.seed = 31;
  cfg.width = 40;
  cfg.dead_fraction = 0.05;
  cfg.spiky_fraction = 0.1;
  cfg.correlated_noise = 1.0;
  cfg.pink_fraction = 0.4;
  cfg.hum = 0.7;
  cfg.bursts_per_minute = 60.0;
  cfg.surface_waves_per_minute = 20.0;
  cfg.coherent_noise = 1.0;
  cfg.reversed_fraction = 0.1;
  cfg.polarity_flips = 0.7;
  return cfg;
}

SynthConfig without_transients(SynthConfig cfg) {
  cfg.hum = cfg.bursts_per_minute = cfg.surface_waves_per_minute = cfg.coherent_noise = 0.0;
  return cfg;
}

TEST(SynthTruth, RecordWindowsDoNotShow) {
  SynthConfig cfg = record_config();
  cfg.q_fraction = 0.8;  // most events attenuated, their Q tails crossing the block boundaries
  cfg.q_lo = 40.0;
  const SynthRecord rec(cfg, 9000, 30.0);  // 18 s, ~9 events
  const Grid whole = record(rec, rec.samples());
  ASSERT_GT(whole.events.size(), 2u);
  for (int64_t block : {4096, 1000, 777, 1}) {
    if (block == 1) {
      // Single rows are slow to make whole: compare a stretch around a block boundary instead.
      std::vector<float> d(static_cast<size_t>(cfg.width));
      std::vector<uint8_t> l(d.size());
      for (int64_t t = 4090; t < 4110; ++t) {
        rec.window(t, 1, d.data(), l.data());
        ASSERT_EQ(std::memcmp(d.data(), whole.data.data() + t * cfg.width, d.size() * 4), 0) << "row " << t;
      }
      continue;
    }
    const Grid g = record(rec, block);
    int64_t bad = 0;
    for (size_t k = 0; k < g.data.size(); ++k) {
      if (std::memcmp(&g.data[k], &whole.data[k], 4) != 0 && ++bad <= 5) {
        ADD_FAILURE() << "block " << block << ": row " << k / cfg.width << " trace " << k % cfg.width << ": "
                      << g.data[k] << " vs " << whole.data[k];
      }
    }
    EXPECT_EQ(bad, 0) << "block " << block;
    EXPECT_EQ(g.label, whole.label) << "block " << block;
  }
  // The comparison covers wavelets that cross a boundary of the 1000-row blocks.
  int64_t crossing = 0;
  for (const SynthPick& p : whole.picks) {
    const double f = p.phase == 0 ? whole.events[p.event].freq_p : whole.events[p.event].freq_s;
    const int64_t a = static_cast<int64_t>(std::ceil((p.time - 1.25 / f) / cfg.dt));
    const int64_t b = static_cast<int64_t>(std::floor((p.time + 1.25 / f) / cfg.dt));
    crossing += a / 1000 != b / 1000;
  }
  EXPECT_GT(crossing, 0) << "no wavelet crosses a block boundary: the test proves little";

  // A shorter record with the same seed is the start of the longer one.
  const SynthRecord head(cfg, 5000, 30.0);
  const Grid h = record(head, 4096);
  EXPECT_EQ(std::memcmp(h.data.data(), whole.data.data(), h.data.size() * 4), 0);
  EXPECT_EQ(0, std::memcmp(h.label.data(), whole.label.data(), h.label.size()));
}

TEST(SynthTruth, RecordPicksMatchTheLabelAndTheEvents) {
  SynthConfig cfg = record_config();
  const SynthRecord rec(cfg, 12000, 20.0);
  const Grid g = record(rec, 4096);
  ASSERT_GT(g.events.size(), 1u);
  expect_consistent_truth(g, cfg, "record");
  for (size_t e = 0; e < g.events.size(); ++e) {
    EXPECT_GE(g.events[e].origin_time, 0.0);
    EXPECT_LT(g.events[e].origin_time, 12000 * cfg.dt);
    if (e > 0) {
      EXPECT_GE(g.events[e].origin_time, g.events[e - 1].origin_time) << "events in origin-time order";
    }
    EXPECT_GE(g.events[e].snr_db, cfg.snr_db_lo);
    EXPECT_LE(g.events[e].snr_db, cfg.snr_db_hi);
  }
  // Same seed, same record; another seed, another.
  const Grid again = record(SynthRecord(cfg, 12000, 20.0), 3000);
  EXPECT_EQ(std::memcmp(again.data.data(), g.data.data(), g.data.size() * 4), 0);
  cfg.seed += 1;
  const Grid other = record(SynthRecord(cfg, 12000, 20.0), 4096);
  EXPECT_NE(std::memcmp(other.data.data(), g.data.data(), g.data.size() * 4), 0);
}

TEST(SynthTruth, RecordNoiseRmsEventSnrAndRate) {
  SynthConfig cfg = without_transients(record_config());  // pink and correlated noise stay on
  cfg.dead_fraction = cfg.spiky_fraction = 0.0;
  // Noise only: unit rms per trace (in expectation; 30000 samples per trace here).
  {
    const Grid g = record(SynthRecord(cfg, 30000, 0.0), 4096);
    EXPECT_TRUE(g.events.empty());
    for (int64_t j = 0; j < cfg.width; ++j) {
      double s2 = 0;
      for (int64_t k = 0; k < g.rows; ++k) s2 += static_cast<double>(g.data[k * g.W + j]) * g.data[k * g.W + j];
      EXPECT_NEAR(std::sqrt(s2 / static_cast<double>(g.rows)), 1.0, 0.05) << "trace " << j;
    }
    // The band-pass filter restarts every 2048 samples: no jump there. Sample-to-sample steps at
    // the restarts have the mean square of the steps elsewhere (~560 steps: +-6%).
    double at = 0, elsewhere = 0;
    int64_t n_at = 0, n_elsewhere = 0;
    for (int64_t k = 1; k < g.rows; ++k) {
      for (int64_t j = 0; j < g.W; ++j) {
        const double d = static_cast<double>(g.data[k * g.W + j]) - g.data[(k - 1) * g.W + j];
        (k % 2048 == 0 ? at : elsewhere) += d * d;
        ++(k % 2048 == 0 ? n_at : n_elsewhere);
      }
    }
    const double ratio = (at / static_cast<double>(n_at)) / (elsewhere / static_cast<double>(n_elsewhere));
    EXPECT_GT(ratio, 0.8) << "steps at the filter restarts";
    EXPECT_LT(ratio, 1.25) << "steps at the filter restarts";
  }
  // Signal only: each event's rms over its labelled samples is its SNR above the unit noise.
  cfg.background_noise = false;
  const Grid g = record(SynthRecord(cfg, 30000, 6.0), 4096);
  ASSERT_GE(g.events.size(), 2u);
  int64_t checked = 0;
  for (size_t e = 0; e < g.events.size(); ++e) {
    const SynthEvent& ev = g.events[e];
    if (std::isnan(ev.first_arrival) || ev.last_arrival + 0.1 > (g.rows - 1) * g.dt) continue;  // cut at the end
    bool alone = true;  // no other event's arrivals within 0.1 s
    for (size_t o = 0; o < g.events.size(); ++o) {
      const SynthEvent& q = g.events[o];
      if (o != e && !std::isnan(q.first_arrival) && q.first_arrival < ev.last_arrival + 0.1 &&
          q.last_arrival > ev.first_arrival - 0.1) {
        alone = false;
      }
    }
    if (!alone) continue;
    double s2 = 0;
    int64_t n = 0;
    for (const SynthPick& p : g.picks) {
      if (p.event != static_cast<int64_t>(e)) continue;
      const double half = p.half;
      for (int64_t k = static_cast<int64_t>(std::ceil((p.time - half) / g.dt));
           k <= static_cast<int64_t>(std::floor((p.time + half) / g.dt)); ++k) {
        if (std::fabs(k * g.dt - p.time) > half) continue;
        s2 += static_cast<double>(g.data[k * g.W + p.trace]) * g.data[k * g.W + p.trace];
        ++n;
      }
    }
    ASSERT_GT(n, 0);
    EXPECT_NEAR(10.0 * std::log10(s2 / static_cast<double>(n)), ev.snr_db, 0.2) << "event " << e;
    ++checked;
  }
  EXPECT_GT(checked, 0);

  // The rate: an hour at 60 events per minute (truth only, which is cheap).
  cfg.width = 4;
  const SynthRecord hour(cfg, 1800000, 60.0);
  std::vector<SynthEvent> ev;
  std::vector<SynthPick> pk;
  int64_t n_events = 0;
  for (int64_t s = 0; s < hour.segments(); ++s) {
    hour.segment_truth(s, n_events, &ev, &pk);
    n_events += static_cast<int64_t>(ev.size());
  }
  EXPECT_NEAR(static_cast<double>(n_events), 3600.0, 4.0 * 60.0) << "Poisson count, 4 sigma";
}

TEST(SynthTruth, RecordEventsWithoutArrivalsInsideKeepTheirRow) {
  // 1 s at 600 events per minute: events late in the record arrive after its end.
  const SynthConfig cfg = record_config();
  const Grid g = record(SynthRecord(cfg, 500, 600.0), 500);
  expect_consistent_truth(g, cfg, "short record");
  int64_t without = 0;
  for (const SynthEvent& e : g.events) {
    EXPECT_EQ(std::isnan(e.first_arrival), std::isnan(e.last_arrival));
    without += std::isnan(e.first_arrival);
  }
  EXPECT_GT(without, 0) << "no event past the end: the NaN rows went untested";
  EXPECT_LT(without, static_cast<int64_t>(g.events.size()));
}

// The transients: present in the data of a record (the record differs), absent from its label and
// truth; hum faded in and out per segment, bursts on few traces.
TEST(SynthTruth, RecordTransientsCarryNoLabel) {
  SynthConfig on = record_config();
  on.hum = 1.0;
  const SynthConfig off = without_transients(on);
  const SynthRecord a(on, 12000, 20.0), b(off, 12000, 20.0);
  EXPECT_GT(a.correlation_length(), 0.0);
  EXPECT_FALSE(a.coherent_velocities().empty());
  EXPECT_TRUE(b.coherent_velocities().empty());
  const double f0 = a.hum_hz();
  EXPECT_TRUE(std::fabs(f0 - 50) <= 0.05 || std::fabs(f0 - 60) <= 0.05) << f0;
  const Grid ga = record(a, 4096), gb = record(b, 4096);
  EXPECT_EQ(ga.label, gb.label);
  ASSERT_EQ(ga.picks.size(), gb.picks.size());
  for (size_t k = 0; k < ga.picks.size(); ++k) {
    ASSERT_TRUE(ga.picks[k].time == gb.picks[k].time && ga.picks[k].trace == gb.picks[k].trace) << "pick " << k;
  }
  ASSERT_EQ(ga.events.size(), gb.events.size());
  for (size_t k = 0; k < ga.events.size(); ++k) EXPECT_EQ(ga.events[k].origin_time, gb.events[k].origin_time);
  // The transients alone: hum at f0 on the traces that carry it, over all rows (every segment has it).
  std::vector<double> diff(ga.data.size());
  for (size_t k = 0; k < diff.size(); ++k) diff[k] = static_cast<double>(ga.data[k]) - gb.data[k];
  auto power_at = [&](int64_t j, double f, int64_t k0, int64_t n) {
    double re = 0, im = 0;
    for (int64_t k = k0; k < k0 + n; ++k) {
      const double ph = 2.0 * 3.14159265358979 * f * k * ga.dt;
      re += diff[k * ga.W + j] * std::cos(ph);
      im -= diff[k * ga.W + j] * std::sin(ph);
    }
    return (re * re + im * im) / static_cast<double>(n);
  };
  double at = 0, beside = 0;
  for (int64_t j = 0; j < ga.W; ++j) {
    at += power_at(j, f0, 0, ga.rows);
    beside += 0.5 * (power_at(j, f0 - 9.0, 0, ga.rows) + power_at(j, f0 + 9.0, 0, ga.rows));
  }
  EXPECT_GT(at, 5 * beside) << "no hum at " << f0 << " Hz";
  // Bursts (3-20 x the unit noise) are there: the difference peaks above what hum (at most ~3) and
  // ground roll (at most 6) reach.
  double peak = 0;
  for (double d : diff) peak = std::max(peak, std::fabs(d));
  EXPECT_GT(peak, 8.0);
}

// Every event attenuated, at low Q: the picks follow the attenuated pulses, later than the kinematic
// arrivals, and label and truth stay consistent in gathers and in records.
TEST(SynthTruth, AttenuatedPicksMatchTheLabelAndTheEvents) {
  SynthConfig cfg;
  cfg.seed = 23;
  cfg.height = 200;
  cfg.width = 48;
  cfg.events_min = 1;
  cfg.q_fraction = 1.0;
  cfg.q_lo = 30.0;
  cfg.q_hi = 60.0;
  int64_t later = 0, picks = 0;
  for (int64_t i = 0; i < 6; ++i) {
    const Grid g = gather(cfg, i);
    expect_consistent_truth(g, cfg, "attenuated gather " + std::to_string(i));
    for (const SynthPick& p : g.picks) {
      const SynthEvent& e = g.events[p.event];
      ASSERT_GT(e.q_p, 0.0);
      const double t = e.origin_time + synth_traveltime(cfg, e.z, p.trace * cfg.dx - e.x, p.phase == 1);
      later += p.time > t;
      ++picks;
    }
  }
  ASSERT_GT(picks, 0);
  EXPECT_GT(later, picks * 9 / 10) << "attenuation delays (nearly) every pick";
  SynthConfig rc = record_config();
  rc.q_fraction = 1.0;
  rc.q_lo = 30.0;
  rc.q_hi = 60.0;
  const Grid r = record(SynthRecord(rc, 8000, 20.0), 4096);
  ASSERT_GT(r.events.size(), 1u);
  expect_consistent_truth(r, rc, "attenuated record");
}

// Receiver statics (SynthConfig::statics_ms): with the same seed the events are the same, and
// every arrival on receiver j moves by that receiver's shift: one P shift per receiver for all
// events, the S shifts the P shifts times one ratio in [1.5, 2.5], of about the asked rms, not the
// same on neighbouring traces; the label moves with the picks. In gathers and in a record.
void expect_statics(const Grid& plain, const Grid& moved, double rms_ms, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(plain.events.size(), moved.events.size());
  for (size_t e = 0; e < plain.events.size(); ++e) {
    EXPECT_EQ(plain.events[e].origin_time, moved.events[e].origin_time);
    EXPECT_EQ(plain.events[e].x, moved.events[e].x);
  }
  std::map<std::tuple<int64_t, int64_t, int>, double> t0;
  for (const SynthPick& p : plain.picks) t0[{p.event, p.trace, p.phase}] = p.time;
  std::map<int64_t, double> shift_p, shift_s;  // per receiver
  int64_t matched = 0;
  for (const SynthPick& p : moved.picks) {
    const int64_t k = std::llround(p.time / moved.dt);
    if (k >= 0 && k < moved.rows) {
      EXPECT_EQ(moved.label[static_cast<size_t>(k * moved.W + p.trace)], 1) << "pick off the label";
    }
    const auto it = t0.find({p.event, p.trace, p.phase});
    if (it == t0.end()) continue;  // moved across the window's edge
    ++matched;
    const double d = p.time - it->second;
    auto& shifts = p.phase == 0 ? shift_p : shift_s;
    const auto [at, fresh] = shifts.emplace(p.trace, d);
    if (!fresh) {
      EXPECT_NEAR(at->second, d, 1e-9) << "trace " << p.trace << ": another shift for another event";
    }
  }
  ASSERT_GT(matched, 100);
  double sum2 = 0, ratio = 0, curvature2 = 0;
  int64_t n_ratio = 0, n_curvature = 0;
  for (const auto& [j, d] : shift_p) {
    sum2 += d * d;
    const auto s = shift_s.find(j);
    if (s != shift_s.end() && std::fabs(d) > 1e-5) {
      const double r = s->second / d;
      if (n_ratio++ == 0) ratio = r;
      EXPECT_NEAR(r, ratio, 1e-6) << "trace " << j << ": S/P shift ratio";
    }
    const auto next = shift_p.find(j + 1), prev = shift_p.find(j - 1);
    if (next != shift_p.end() && prev != shift_p.end()) {
      const double c = next->second - 2 * d + prev->second;
      curvature2 += c * c;
      ++n_curvature;
    }
  }
  ASSERT_GT(n_ratio, 10);
  EXPECT_GE(ratio, 1.5);
  EXPECT_LE(ratio, 2.5);
  const double rms = std::sqrt(sum2 / static_cast<double>(shift_p.size())) * 1e3;
  EXPECT_GT(rms, 0.3 * rms_ms) << "P statics rms " << rms << " ms";
  EXPECT_LT(rms, 2.5 * rms_ms) << "P statics rms " << rms << " ms";
  // The uncorrelated half gives second differences of rms sqrt(6) x its rms; the smooth half (20
  // traces and longer) a tenth of its own at most.
  ASSERT_GT(n_curvature, 10);
  const double curvature = std::sqrt(curvature2 / static_cast<double>(n_curvature)) * 1e3;
  EXPECT_GT(curvature, rms_ms / std::sqrt(2.0)) << "statics without an uncorrelated part";
}

TEST(SynthTruth, StaticsMoveEachReceiversArrivalsAndTheirLabel) {
  SynthConfig cfg;
  cfg.seed = 23;
  cfg.height = 600;
  cfg.width = 96;
  cfg.events_min = 2;
  cfg.events_max = 3;
  SynthConfig moved = cfg;
  moved.statics_ms = 4.0;
  for (int64_t i = 0; i < 3; ++i) {
    const Grid a = gather(cfg, i), b = gather(moved, i);
    EXPECT_NE(std::memcmp(a.data.data(), b.data.data(), a.data.size() * 4), 0);
    expect_statics(a, b, moved.statics_ms, "gather " + std::to_string(i));
  }
  SynthConfig rc = without_transients(record_config());
  SynthConfig rm = rc;
  rm.statics_ms = 3.0;
  expect_statics(record(SynthRecord(rc, 12000, 20.0), 4096), record(SynthRecord(rm, 12000, 20.0), 4096), rm.statics_ms,
                 "record");
  // Statics 0 is the generator without them, bit for bit (the default).
  SynthConfig zero = cfg;
  zero.statics_ms = 0.0;
  const Grid z = gather(zero, 1), d = gather(cfg, 1);
  EXPECT_EQ(std::memcmp(z.data.data(), d.data.data(), z.data.size() * 4), 0);
}

// A factor on the site's velocities drawn per event (SynthConfig::velocity_scale_lo/hi), with
// sources deeper, shallower and beyond the ends of the line: the truth stays consistent with the
// label, each event keeps its own factor within the range, and the slow ones give P fronts steeper
// than the default site does for the same sources (below 1.5 samples of 2 ms per 10 m trace; about
// 1 for the default sources, under the middle of the line).
// The max P slope of the events of `g`, in samples per trace (from the truth of neighbouring traces).
double max_p_slope(const Grid& g) {
  std::map<std::pair<int64_t, int64_t>, double> p;
  for (const SynthPick& k : g.picks) {
    if (k.phase == 0) p[{k.event, k.trace}] = k.time;
  }
  double slope = 0;
  for (const auto& [key, t] : p) {
    const auto next = p.find({key.first, key.second + 1});
    if (next != p.end()) slope = std::max(slope, std::fabs(next->second - t) / g.dt);
  }
  return slope;
}

TEST(SynthTruth, VelocityScaleSlowsTheSiteAndSteepensTheMoveout) {
  SynthConfig cfg;
  cfg.seed = 31;
  cfg.height = 400;
  cfg.width = 128;
  cfg.events_min = 1;
  cfg.events_max = 2;
  cfg.depth_lo = 300.0;
  cfg.depth_hi = 3000.0;
  cfg.lateral_lo = -0.3;
  cfg.lateral_hi = 1.3;
  SynthConfig slow = cfg;
  slow.velocity_scale_lo = 0.4;
  slow.velocity_scale_hi = 0.7;
  double base_slope = 0, slow_slope = 0;
  std::vector<double> scales;
  for (int64_t i = 0; i < 8; ++i) {
    const Grid a = gather(cfg, i), b = gather(slow, i);
    expect_consistent_truth(b, slow, "slow gather " + std::to_string(i));
    ASSERT_EQ(a.events.size(), b.events.size());
    for (size_t e = 0; e < a.events.size(); ++e) {
      EXPECT_EQ(a.events[e].velocity_scale, 1.0);
      EXPECT_EQ(a.events[e].x, b.events[e].x) << "the scale's draw moved another draw";
      EXPECT_EQ(a.events[e].z, b.events[e].z);
      EXPECT_EQ(a.events[e].freq_p, b.events[e].freq_p);
      EXPECT_GE(b.events[e].velocity_scale, slow.velocity_scale_lo);
      EXPECT_LE(b.events[e].velocity_scale, slow.velocity_scale_hi);
      scales.push_back(b.events[e].velocity_scale);
    }
    base_slope = std::max(base_slope, max_p_slope(a));
    slow_slope = std::max(slow_slope, max_p_slope(b));
  }
  ASSERT_GT(scales.size(), 4u);
  EXPECT_GT(*std::max_element(scales.begin(), scales.end()) - *std::min_element(scales.begin(), scales.end()), 0.1)
      << "one factor for every event";
  EXPECT_LT(base_slope, 1.5) << "the default site";
  EXPECT_GT(slow_slope, 2.0) << "the slow sites' fronts are no steeper";
  // A record of deep, slow events: the same checks, and its windows reach every event's arrivals
  // (the reach bound follows the slowest factor: the S arrivals come 2.2-3.5 s after the origin,
  // the unscaled site's bound is 1.2 s).
  SynthConfig rc = record_config();
  rc.depth_lo = 2000.0;
  rc.depth_hi = 3000.0;
  rc.lateral_lo = -0.3;
  rc.lateral_hi = 1.3;
  rc.velocity_scale_lo = 0.4;
  rc.velocity_scale_hi = 0.6;
  const SynthRecord rec(rc, 12000, 30.0);
  const Grid g = record(rec, 500);
  ASSERT_GT(g.events.size(), 5u);
  expect_consistent_truth(g, rc, "slow record");
  EXPECT_EQ(std::memcmp(record(rec, 4096).data.data(), g.data.data(), g.data.size() * 4), 0)
      << "the record depends on its windows";
  // A range of one value draws nothing: the scale applies, the other events are the same.
  SynthConfig fixed = cfg;
  fixed.velocity_scale_lo = fixed.velocity_scale_hi = 0.5;
  const Grid f = gather(fixed, 3), a = gather(cfg, 3);
  expect_consistent_truth(f, fixed, "one-value range");
  for (size_t e = 0; e < f.events.size(); ++e) {
    EXPECT_EQ(f.events[e].velocity_scale, 0.5);
    EXPECT_EQ(f.events[e].x, a.events[e].x);
  }
}

// A fixed label width (SynthConfig::label_half_ms): the data keep their bits (the SNR is measured
// over the wavelets' own widths), the picks their times, and every labelled sample lies within the
// width of a pick on its trace (or of an arrival just outside the window).
void expect_fixed_label(const Grid& wide, const Grid& narrow, const SynthConfig& cfg, const std::string& what,
                        bool narrower = true) {
  const double half = cfg.label_half_ms * 1e-3;
  SCOPED_TRACE(what);
  ASSERT_EQ(std::memcmp(wide.data.data(), narrow.data.data(), wide.data.size() * 4), 0) << "the data changed";
  ASSERT_EQ(wide.picks.size(), narrow.picks.size());
  std::vector<std::vector<double>> on_trace(static_cast<size_t>(narrow.W));
  for (size_t k = 0; k < narrow.picks.size(); ++k) {
    EXPECT_EQ(narrow.picks[k].time, wide.picks[k].time);
    EXPECT_EQ(narrow.picks[k].half, half);
    on_trace[static_cast<size_t>(narrow.picks[k].trace)].push_back(narrow.picks[k].time);
  }
  int64_t n_wide = 0, n_narrow = 0;
  for (int64_t k = 0; k < narrow.rows; ++k) {
    for (int64_t j = 0; j < narrow.W; ++j) {
      n_wide += wide.label[k * wide.W + j];
      if (!narrow.label[k * narrow.W + j]) continue;
      ++n_narrow;
      const auto& t = on_trace[static_cast<size_t>(j)];
      const bool near = std::any_of(t.begin(), t.end(), [&](double p) {
        return std::fabs(static_cast<double>(k) * narrow.dt - p) <= half + 1e-12;
      });
      ASSERT_TRUE(near || outside_arrival_labels(narrow, cfg, j, k))
          << "row " << k << " trace " << j << " far from any pick";
    }
  }
  EXPECT_GT(n_narrow, 0);
  if (narrower) {
    EXPECT_LT(n_narrow * 2, n_wide) << "the label is not narrower";
  } else {
    EXPECT_GT(n_narrow, n_wide) << "the label is not wider";
  }
}

TEST(SynthTruth, FixedLabelWidthKeepsTheDataAndNarrowsTheLabel) {
  SynthConfig cfg;
  cfg.seed = 41;
  cfg.height = 300;
  cfg.width = 64;
  cfg.events_min = 1;
  cfg.q_fraction = 0.5;  // attenuated arrivals too
  SynthConfig narrow = cfg;
  narrow.label_half_ms = 4.0;
  for (int64_t i = 0; i < 6; ++i) {
    const Grid b = gather(narrow, i);
    expect_consistent_truth(b, narrow, "gather " + std::to_string(i));
    expect_fixed_label(gather(cfg, i), b, narrow, "gather " + std::to_string(i));
  }
  // Wider than any wavelet's support (a Ricker is not 0 beyond it: its samples must stay its own).
  SynthConfig ricker = cfg;
  ricker.wavelet_ormsby = ricker.wavelet_berlage = ricker.wavelet_damped = ricker.wavelet_gabor = 0;
  SynthConfig wide = ricker;
  wide.label_half_ms = 120.0;
  for (int64_t i = 0; i < 3; ++i) {
    const Grid b = gather(wide, i);
    expect_consistent_truth(b, wide, "wide-label gather " + std::to_string(i));
    expect_fixed_label(gather(ricker, i), b, wide, "wide-label gather " + std::to_string(i), false);
  }
  // Records: the same, and the label (not only the data) the same in windows of any size.
  SynthConfig rc = record_config();
  rc.q_fraction = 0.5;
  for (double half_ms : {4.0, 300.0}) {
    SynthConfig rn = rc;
    rn.label_half_ms = half_ms;
    const SynthRecord rec(rn, 12000, 20.0);
    const Grid r = record(rec, 137), whole = record(rec, 12000);
    const std::string what = "record, label +-" + std::to_string(half_ms) + " ms";
    expect_consistent_truth(r, rn, what);
    expect_fixed_label(record(SynthRecord(rc, 12000, 20.0), 4096), r, rn, what, half_ms < 10);
    EXPECT_EQ(std::memcmp(r.label.data(), whole.label.data(), r.label.size()), 0) << what << ": label by window";
  }
}

TEST(SynthTruth, RecordRejectsBadArguments) {
  const SynthConfig cfg = record_config();
  EXPECT_THROW(SynthRecord(cfg, 0, 2.0), UsageError);
  EXPECT_THROW(SynthRecord(cfg, 100, -1.0), UsageError);
  EXPECT_THROW(SynthRecord(cfg, 100, std::nan("")), UsageError);
  SynthConfig bad = cfg;
  bad.freq_hi = 1000.0;
  EXPECT_THROW(SynthRecord(bad, 100, 2.0), UsageError);
}

}  // namespace
}  // namespace seis
