// The synthetic microseismic generator: determinism, label sparsity, labels on the arrivals, the
// SNR definition and the moveout; the wavelet mix, coloured noise (pink, correlated across
// receivers) and the unlabelled transients (hum, bursts, ground roll), each present when on and
// absent when off, none changing the label or the truth.
#include "io/synth_microseismic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "io/synth_wavelet.h"

namespace seis {
namespace {

struct Sample {
  std::vector<float> data;
  std::vector<uint8_t> label;
  SynthSampleInfo info;
};

Sample make(const SynthConfig& cfg, int64_t index) {
  Sample s;
  s.data.resize(static_cast<size_t>(cfg.height * cfg.width));
  s.label.resize(s.data.size());
  synth_sample(cfg, index, s.data.data(), s.label.data(), &s.info);
  return s;
}

// No hum, bursts, ground roll or coherent noise.
SynthConfig without_transients(SynthConfig cfg) {
  cfg.hum = cfg.bursts = cfg.surface_waves = cfg.coherent_noise = 0.0;
  return cfg;
}

double label_fraction(const Sample& s) {
  int64_t n = 0;
  for (uint8_t v : s.label) n += v;
  return static_cast<double>(n) / static_cast<double>(s.label.size());
}

TEST(SynthMicroseismic, DeterministicPerSeedAndIndex) {
  SynthConfig cfg;
  cfg.seed = 1234;
  cfg.events_min = 1;
  const Sample a = make(cfg, 7), b = make(cfg, 7), c = make(cfg, 8);
  // Generating other samples in between must not matter (no hidden state).
  EXPECT_EQ(std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)), 0);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(std::memcmp(a.data.data(), c.data.data(), a.data.size() * sizeof(float)), 0);
  cfg.seed = 1235;
  const Sample d = make(cfg, 7);
  EXPECT_NE(std::memcmp(a.data.data(), d.data.data(), a.data.size() * sizeof(float)), 0);
  for (float v : a.data) ASSERT_TRUE(std::isfinite(v));
}

TEST(SynthMicroseismic, LabelFraction) {
  SynthConfig cfg;
  cfg.seed = 5;
  double sum = 0;
  int64_t with_events = 0;
  for (int64_t i = 0; i < 40; ++i) {
    const Sample s = make(cfg, i);
    const double f = label_fraction(s);
    if (s.info.events.empty()) {
      EXPECT_EQ(f, 0.0) << "sample " << i << " has no events but a non-empty label";
    } else {
      ++with_events;
      EXPECT_GT(f, 0.02) << "sample " << i << " with " << s.info.events.size() << " events";
      EXPECT_LT(f, 0.7) << "sample " << i << " with " << s.info.events.size() << " events";
      sum += f;
    }
  }
  ASSERT_GT(with_events, 10);
  const double mean = sum / static_cast<double>(with_events);
  EXPECT_GT(mean, 0.05);
  EXPECT_LT(mean, 0.5);

  cfg.events_min = cfg.events_max = 0;
  for (int64_t i = 0; i < 5; ++i) {
    const Sample s = make(cfg, i);
    EXPECT_EQ(label_fraction(s), 0.0);
    double e = 0;
    for (float v : s.data) e += static_cast<double>(v) * v;
    EXPECT_GT(e, 0.0) << "a noise-only gather still carries noise";
  }
}

TEST(SynthMicroseismic, LabelsSitOnTheArrivals) {
  SynthConfig cfg;
  cfg.seed = 77;
  cfg.events_min = 1;
  cfg.snr_db_lo = cfg.snr_db_hi = 40.0;
  cfg.spiky_fraction = 0.0;
  cfg = without_transients(cfg);  // the wavelet mix stays: every wavelet's label holds its energy
  // (but for the Damped family, whose longer codas lie partly outside its label by design: 55-97% of
  // its energy is labelled, WaveletShapesSitOnTheirPicks)
  cfg.wavelet_damped = 0;
  for (int64_t i = 0; i < 6; ++i) {
    const Sample s = make(cfg, i);
    double in = 0, out = 0;
    int64_t n_in = 0, n_out = 0;
    for (size_t k = 0; k < s.data.size(); ++k) {
      const double e = static_cast<double>(s.data[k]) * s.data[k];
      if (s.label[k]) {
        in += e;
        ++n_in;
      } else {
        out += e;
        ++n_out;
      }
    }
    ASSERT_GT(n_in, 0);
    // The Ricker's side-lobe tails (5.5% of its energy) lie just outside the label, and the label
    // covers 10-40% of the gather, so the mean-energy contrast is about 17 x n_out / n_in.
    const double ratio = (in / n_in) / (out / n_out);
    EXPECT_GT(ratio, 30.0) << "sample " << i << ": mean energy inside / outside the label";
    // Most of the energy is labelled: 94.5% of a Ricker's lies within +-0.5/f, 93% of the tapered
    // Ormsby's, 93% of a Berlage's within its first 0.6/f.
    EXPECT_GT(in / (in + out), 0.9) << "sample " << i << ": labelled share of the energy";
  }
}

// The background noise, pink and correlated across receivers included, sets the SNR; the
// transients (off here) are not part of it, as the spikes are not.
TEST(SynthMicroseismic, MeasuredSnrMatchesRequested) {
  SynthConfig cfg;
  cfg.seed = 99;
  cfg.events_min = 1;
  cfg.spiky_fraction = 0.0;
  cfg = without_transients(cfg);
  cfg.pink_fraction = 0.5;
  for (int64_t i = 0; i < 8; ++i) {
    cfg.correlated_noise = i % 2;  // half the gathers correlated
    SynthConfig clean = cfg;
    clean.background_noise = false;
    const Sample noisy = make(cfg, i), sig = make(clean, i);
    EXPECT_EQ(noisy.info.correlation_length > 0, i % 2 == 1) << "sample " << i;
    ASSERT_EQ(noisy.label, sig.label) << "the noise must not change the events";
    double s2 = 0, n2 = 0;
    int64_t ns = 0, nn = 0;
    for (size_t k = 0; k < noisy.data.size(); ++k) {
      const double noise = static_cast<double>(noisy.data[k]) - sig.data[k];
      if (sig.label[k]) {
        s2 += static_cast<double>(sig.data[k]) * sig.data[k];
        ++ns;
      }
      const int64_t trace = static_cast<int64_t>(k) % cfg.width;
      // Dead traces are all zero in both; they are excluded from the noise rms.
      bool dead = true;
      for (int64_t t = 0; t < cfg.height && dead; t += 17) dead = noisy.data[t * cfg.width + trace] == 0.0f;
      if (!dead) {
        n2 += noise * noise;
        ++nn;
      }
    }
    ASSERT_GT(ns, 0);
    const double measured = 20.0 * std::log10(std::sqrt(s2 / ns) / std::sqrt(n2 / nn));
    EXPECT_GE(noisy.info.snr_db, cfg.snr_db_lo);
    EXPECT_LE(noisy.info.snr_db, cfg.snr_db_hi);
    EXPECT_NEAR(measured, noisy.info.snr_db, 1.0) << "sample " << i;
  }
}

TEST(SynthMicroseismic, DeadTracesAreZeroAndUnlabelled) {
  SynthConfig cfg;
  cfg.seed = 3;
  cfg.events_min = 2;
  cfg.dead_fraction = 0.2;
  const Sample s = make(cfg, 0);
  ASSERT_GT(s.info.dead_traces, 0);
  int64_t zero_traces = 0;
  for (int64_t j = 0; j < cfg.width; ++j) {
    bool zero = true;
    for (int64_t t = 0; t < cfg.height; ++t) {
      if (s.data[t * cfg.width + j] != 0.0f) zero = false;
    }
    if (zero) {
      ++zero_traces;
      for (int64_t t = 0; t < cfg.height; ++t) ASSERT_EQ(s.label[t * cfg.width + j], 0) << "trace " << j;
    }
  }
  EXPECT_EQ(zero_traces, s.info.dead_traces);
}

// The first labelled sample per trace follows the P moveout: earliest on the receiver closest to
// the source, later with offset on both sides, matching the traveltime of the velocity model.
TEST(SynthMicroseismic, MoveoutApexAtTheClosestReceiver) {
  for (VelocityModel model : {VelocityModel::kHomogeneous, VelocityModel::kLayered}) {
    SynthConfig cfg;
    cfg.velocity = model;
    cfg.seed = 11;
    cfg.q_fraction = 0.0;  // the label's onset is the kinematic one (attenuated picks: synth_attenuation_test)
    cfg.events_min = cfg.events_max = 1;
    cfg.snr_db_lo = cfg.snr_db_hi = 40.0;
    cfg.dead_fraction = cfg.spiky_fraction = 0.0;
    for (int64_t i = 0; i < 5; ++i) {
      const Sample s = make(cfg, i);
      ASSERT_EQ(s.info.events.size(), 1u);
      const SynthEvent& e = s.info.events[0];
      std::vector<int64_t> first(static_cast<size_t>(cfg.width), cfg.height);
      for (int64_t j = 0; j < cfg.width; ++j) {
        for (int64_t t = 0; t < cfg.height; ++t) {
          if (s.label[t * cfg.width + j]) {
            first[j] = t;
            break;
          }
        }
      }
      const int64_t closest = std::lround(std::clamp(e.x / cfg.dx, 0.0, static_cast<double>(cfg.width - 1)));
      const int64_t t_min = *std::min_element(first.begin(), first.end());
      EXPECT_EQ(first[closest], t_min) << "sample " << i << ": apex not at receiver " << closest;
      // Model traveltimes: minimum at the closest receiver, and the labelled onset agrees.
      double tp_min = 1e30;
      int64_t j_min = -1;
      for (int64_t j = 0; j < cfg.width; ++j) {
        const double tp = synth_traveltime(cfg, e.z, j * cfg.dx - e.x, false);
        if (tp < tp_min) {
          tp_min = tp;
          j_min = j;
        }
        const double onset = (e.origin_time + tp - synth_label_half_width(e.wavelet, e.freq_p)) / cfg.dt;
        if (onset > 0 && onset < cfg.height - 1) {
          ASSERT_NEAR(static_cast<double>(first[j]), onset, 1.0) << "sample " << i << " trace " << j;
        }
      }
      EXPECT_EQ(j_min, closest);
      EXPECT_GT(first[0] + first[cfg.width - 1], 2 * t_min) << "no visible moveout";
      // S after P at every offset, by the factor vp/vs.
      EXPECT_NEAR(synth_traveltime(cfg, e.z, 500.0, true) / synth_traveltime(cfg, e.z, 500.0, false), cfg.vp_vs, 1e-12);
    }
  }
}

TEST(SynthMicroseismic, LayeredTraveltimeIsPhysical) {
  SynthConfig cfg;  // layered by default
  // Vertical time is the sum of the layer times.
  const double z = 1500.0;
  const double t_vert = 300.0 / 3500.0 + 700.0 / 5000.0 + 500.0 / 6000.0;
  EXPECT_NEAR(synth_traveltime(cfg, z, 0.0, false), t_vert, 1e-12);
  // Faster than the slowest layer, slower than the fastest: apparent velocity in between.
  const double t_far = synth_traveltime(cfg, z, 2000.0, false);
  const double r = std::hypot(z, 2000.0);
  EXPECT_GT(t_far, r / 6000.0);
  EXPECT_LT(t_far, r / 3500.0);
  // A homogeneous model is exact straight-ray.
  cfg.velocity = VelocityModel::kHomogeneous;
  EXPECT_NEAR(synth_traveltime(cfg, z, 2000.0, false), r / cfg.vp, 1e-12);
}

TEST(SynthMicroseismic, RejectsBadConfig) {
  SynthConfig cfg;
  cfg.freq_hi = 300.0;  // above Nyquist at dt = 2 ms
  std::vector<float> d(static_cast<size_t>(cfg.height * cfg.width));
  std::vector<uint8_t> l(d.size());
  EXPECT_THROW(synth_sample(cfg, 0, d.data(), l.data()), UsageError);
  cfg = SynthConfig{};
  cfg.events_min = 4;
  EXPECT_THROW(validate_synth_config(cfg), UsageError);
  cfg = SynthConfig{};
  cfg.layer_vp.pop_back();
  EXPECT_THROW(validate_synth_config(cfg), UsageError);
  for (auto bad : {+[](SynthConfig& c) {
                     c.wavelet_ricker = c.wavelet_ormsby = c.wavelet_berlage = c.wavelet_damped = c.wavelet_gabor = 0;
                   },
                   +[](SynthConfig& c) { c.wavelet_gabor = -1; },
                   +[](SynthConfig& c) { c.coherent_noise = 1.5; },
                   +[](SynthConfig& c) { c.polarity_flips = -0.1; },
                   +[](SynthConfig& c) { c.statics_ms = -1; },
                   +[](SynthConfig& c) { c.statics_ms = 101; },
                   +[](SynthConfig& c) { c.velocity_scale_lo = 0.05; },
                   +[](SynthConfig& c) { c.label_half_ms = 0.5; },
                   +[](SynthConfig& c) { c.label_half_ms = 1.9; },
                   +[](SynthConfig& c) { c.label_half_ms = -1; },
                   +[](SynthConfig& c) { c.label_half_ms = std::nan(""); },
                   +[](SynthConfig& c) { c.velocity_scale_hi = 11; },
                   +[](SynthConfig& c) { c.velocity_scale_lo = 2; },
                   +[](SynthConfig& c) { c.velocity_scale_hi = std::nan(""); },
                   +[](SynthConfig& c) { c.reversed_fraction = 2; },
                   +[](SynthConfig& c) { c.wavelet_ormsby = -1; },
                   +[](SynthConfig& c) { c.wavelet_damped = -1; },
                   +[](SynthConfig& c) { c.pink_fraction = 1.5; },
                   +[](SynthConfig& c) { c.correlated_noise = -0.1; },
                   +[](SynthConfig& c) { c.corr_length_lo = 0; },
                   +[](SynthConfig& c) { c.hum = std::nan(""); },
                   +[](SynthConfig& c) { c.bursts = 2; },
                   +[](SynthConfig& c) { c.surface_waves_per_minute = -1; },
                   +[](SynthConfig& c) { c.q_fraction = 1.1; },
                   +[](SynthConfig& c) { c.q_fraction = std::nan(""); },
                   +[](SynthConfig& c) { c.q_lo = 5; },
                   +[](SynthConfig& c) { c.q_hi = c.q_lo - 1; },
                   +[](SynthConfig& c) { c.q_hi = std::nan(""); },
                   +[](SynthConfig& c) { c.qs_ratio_lo = 0; },
                   +[](SynthConfig& c) { c.qs_ratio_hi = 2.5; },
                   +[](SynthConfig& c) { c.qs_ratio_lo = c.qs_ratio_hi + 0.1; }}) {
    cfg = SynthConfig{};
    bad(cfg);
    EXPECT_THROW(validate_synth_config(cfg), UsageError);
  }
}

TEST(SynthMicroseismic, NonSquareGather) {
  SynthConfig cfg;
  cfg.height = 100;
  cfg.width = 37;
  cfg.events_min = 1;
  const Sample s = make(cfg, 2);
  EXPECT_GT(label_fraction(s), 0.0);
  for (float v : s.data) ASSERT_TRUE(std::isfinite(v));
}

// ---- Wavelets -------------------------------------------------------------------------------

TEST(SynthMicroseismic, WaveletMixIsHonoured) {
  SynthConfig cfg;
  cfg.height = 64;
  cfg.width = 16;
  cfg.events_min = 2;
  cfg.events_max = 3;
  cfg.seed = 41;
  cfg = without_transients(cfg);
  const double mixes[][5] = {{1, 0, 0, 0, 0}, {0, 1, 0, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, 0, 1, 0},
                             {0, 0, 0, 0, 1}, {1, 1, 1, 1, 1}, {3, 0, 1, 0, 1}};
  for (const auto& m : mixes) {
    cfg.wavelet_ricker = m[0];
    cfg.wavelet_ormsby = m[1];
    cfg.wavelet_berlage = m[2];
    cfg.wavelet_damped = m[3];
    cfg.wavelet_gabor = m[4];
    std::string mix = std::to_string(m[0]);
    for (int k = 1; k < 5; ++k) mix += ":" + std::to_string(m[k]);
    int64_t n[5] = {};
    int64_t powers[3] = {};
    for (int64_t i = 0; i < 80; ++i) {
      for (const SynthEvent& e : make(cfg, i).info.events) {
        ++n[static_cast<int>(e.wavelet)];
        if (e.wavelet == SynthWavelet::kGabor) {
          EXPECT_TRUE(e.gabor_phase >= 0 && e.gabor_phase < 2 * M_PI) << e.gabor_phase;
          EXPECT_TRUE(e.gabor_width >= 0.2 && e.gabor_width <= 0.35) << e.gabor_width;
        }
        if (e.wavelet != SynthWavelet::kDamped) continue;
        ASSERT_TRUE(e.damped_power >= 0 && e.damped_power <= 2) << e.damped_power;
        ++powers[e.damped_power];
        const double lo[3] = {1.5, 3.0, 5.0}, hi[3] = {6.0, 8.0, 10.0};
        EXPECT_TRUE(e.damped_rate >= lo[e.damped_power] && e.damped_rate <= hi[e.damped_power]) << e.damped_rate;
      }
    }
    const double total = static_cast<double>(n[0] + n[1] + n[2] + n[3] + n[4]);
    const double weights = m[0] + m[1] + m[2] + m[3] + m[4];
    ASSERT_GT(total, 150);
    for (int k = 0; k < 5; ++k) {
      if (m[k] == 0) {
        EXPECT_EQ(n[k], 0) << "wavelet " << k << " has weight 0 in " << mix;
      } else {
        // Binomial: 3 sigma is below 0.11 for ~200 events.
        EXPECT_NEAR(static_cast<double>(n[k]) / total, m[k] / weights, 0.11) << "wavelet " << k << " in " << mix;
      }
    }
    // Each power of the Damped family is drawn.
    if (m[3] == 1 && m[0] == 0) {
      for (int p = 0; p < 3; ++p) EXPECT_GT(powers[p], 20) << "power " << p;
    }
  }
}

// A Damped wavelet of power n and damping a at f Hz: 0 before its onset, which lies onset_lo to
// onset_hi periods before its pick; 10% of its peak at its pick (the first break) and below that
// between the two; peak 1; 0 after its support, which fits the widest stamp.
void expect_damped_first_break(int n, double a, double f, double onset_lo, double onset_hi) {
  const WaveletShape s = make_wavelet(SynthWavelet::kDamped, f, 0.002, n, a);
  const std::string what = "n " + std::to_string(n) + " a " + std::to_string(a) + " f " + std::to_string(f);
  EXPECT_NEAR(std::fabs(s(0.0)), 0.1, 1e-9) << what;
  EXPECT_GT(s.onset, onset_lo / f) << what;
  EXPECT_LT(s.onset, onset_hi / f) << what;
  EXPECT_DOUBLE_EQ(s.before, s.onset) << what;
  EXPECT_LE(s.before, kWaveletMaxBeforePeriods / f) << what;
  EXPECT_LE(s.after, kWaveletMaxAfterPeriods / f) << what;
  EXPECT_EQ(s(-s.onset - 1e-9), 0.0) << what;
  EXPECT_EQ(s(s.after + 1e-9), 0.0) << what;
  double peak = 0;
  for (int i = 0; i <= 20000; ++i) {
    const double tau = -s.before + (s.before + s.after) * i / 20000.0, v = std::fabs(s(tau));
    peak = std::max(peak, v);
    if (tau < -1e-12) {
      EXPECT_LT(v, 0.1) << what << " tau " << tau;
    }
  }
  EXPECT_NEAR(peak, 1.0, 1e-6) << what;
}

// For each power at both ends of its damping.
TEST(SynthWavelets, DampedFamilyIsPickedAtItsFirstBreak) {
  for (int power = 0; power < 3; ++power) {
    for (double u1 : {0.0, 0.999}) {
      int n = -1;
      double a = 0;
      damped_parameters((power + 0.5) / 3.0, u1, 2, &n, &a);
      ASSERT_EQ(n, power);
      for (double f : {12.0, 45.0}) expect_damped_first_break(n, a, f, 0.0, 0.15);
    }
  }
}

// --damped-powers 4: the draw covers n = 0..4 evenly, each n with the default's damping range, and
// the smooth t^3 and t^4 onsets are still picked at their first break, with a later onset than
// the default family's and within the stamped support.
TEST(SynthWavelets, DampedHigherPowersArePickedAtTheirFirstBreak) {
  int counts[kDampedMaxPower + 1] = {};
  for (int i = 0; i < 1000; ++i) {
    const double u0 = (i + 0.5) / 1000.0, u1 = 0.37;
    int n = -1, n2 = -1;
    double a = 0, a2 = 0;
    damped_parameters(u0, u1, kDampedMaxPower, &n, &a);
    ASSERT_GE(n, 0);
    ASSERT_LE(n, kDampedMaxPower);
    ++counts[n];
    damped_parameters(u0, u1, 2, &n2, &a2);
    if (n == n2) {
      EXPECT_EQ(a, a2) << "n " << n;
    }
  }
  for (int c : counts) EXPECT_EQ(c, 200);
  for (int power = 3; power <= kDampedMaxPower; ++power) {
    for (double u1 : {0.0, 0.999}) {
      int n = -1;
      double a = 0;
      damped_parameters((power + 0.5) / (kDampedMaxPower + 1.0), u1, kDampedMaxPower, &n, &a);
      ASSERT_EQ(n, power);
      // (n 0-2: 0-0.15 periods; here 0.09-0.19: a smooth onset, its first break well after it)
      for (double f : {12.0, 45.0}) expect_damped_first_break(n, a, f, 0.08, 0.25);
    }
  }
}

// Zero-phase wavelets peak at their pick; the causal Berlage is 0 before its onset (the pick) and
// its label still begins 0.6/f earlier; a Damped one is 0 before its onset, and its label, centred
// on its first break, holds most of its energy although its coda is longer; every label holds most
// of its wavelet's energy.
TEST(SynthMicroseismic, WaveletShapesSitOnTheirPicks) {
  for (SynthWavelet w : {SynthWavelet::kRicker, SynthWavelet::kOrmsby, SynthWavelet::kBerlage, SynthWavelet::kDamped,
                         SynthWavelet::kGabor}) {
    SynthConfig cfg;
    cfg.seed = 13;
    cfg.events_min = cfg.events_max = 1;
    cfg.background_noise = false;
    cfg.dead_fraction = cfg.spiky_fraction = 0.0;
    cfg.q_fraction = 0.0;  // the source wavelets (attenuated ones: synth_attenuation_test)
    cfg = without_transients(cfg);
    cfg.wavelet_ricker = w == SynthWavelet::kRicker;
    cfg.wavelet_ormsby = w == SynthWavelet::kOrmsby;
    cfg.wavelet_berlage = w == SynthWavelet::kBerlage;
    cfg.wavelet_damped = w == SynthWavelet::kDamped;
    cfg.wavelet_gabor = w == SynthWavelet::kGabor;
    for (int64_t i = 0; i < 4; ++i) {
      const Sample s = make(cfg, i);
      ASSERT_EQ(s.info.events.size(), 1u);
      const SynthEvent& e = s.info.events[0];
      ASSERT_EQ(e.wavelet, w);
      const double half = synth_label_half_width(w, e.freq_p);
      int64_t checked = 0;
      for (const SynthPick& p : s.info.picks) {
        if (p.phase != 0 || p.time < 2 * half || p.time > (cfg.height - 1) * cfg.dt - 2 * half) continue;
        const int64_t at = std::llround(p.time / cfg.dt), j = p.trace;
        const int64_t lo = static_cast<int64_t>(std::ceil((p.time - half) / cfg.dt));
        const int64_t hi = static_cast<int64_t>(std::floor((p.time + half) / cfg.dt));
        ASSERT_EQ(s.label[lo * cfg.width + j], 1);
        ASSERT_EQ(s.label[hi * cfg.width + j], 1);
        if (w == SynthWavelet::kBerlage) {
          for (int64_t k = lo; k * cfg.dt < p.time - 1e-12; ++k) {
            ASSERT_EQ(s.data[k * cfg.width + j], 0.0f) << "sample " << i << " trace " << j << " row " << k;
          }
          ASSERT_NE(s.data[(hi - 1) * cfg.width + j], 0.0f);
        } else if (w == SynthWavelet::kDamped) {
          const double onset = make_wavelet(w, e.freq_p, cfg.dt, e.damped_power, e.damped_rate).onset;
          for (int64_t k = lo; k * cfg.dt < p.time - onset - 1e-12; ++k) {
            ASSERT_EQ(s.data[k * cfg.width + j], 0.0f) << "sample " << i << " trace " << j << " row " << k;
          }
          ASSERT_NE(s.data[(hi - 1) * cfg.width + j], 0.0f);
        } else if (w == SynthWavelet::kGabor) {
          // Constant phase of any angle: the envelope, not the peak, is centred on the pick. The
          // sample at the pick is the envelope's peak times cos(phi) (up to the sample's offset).
          const WaveletShape g = make_wavelet(w, e.freq_p, cfg.dt, 0, 0, e.gabor_phase, e.gabor_width);
          const double off = at * cfg.dt - p.time;
          EXPECT_NEAR(g(off),
                      g.norm * std::exp(-0.5 * off * off / (g.sigma * g.sigma)) *
                          std::cos(2 * M_PI * e.freq_p * off + e.gabor_phase),
                      1e-12);
          EXPECT_NEAR(g(0.0), g.norm * std::cos(e.gabor_phase), 1e-12);
          EXPECT_LE(g.norm * std::fabs(std::cos(e.gabor_phase)), 1.0 + 1e-9);
          EXPECT_EQ(g(g.after * 1.0001), 0.0);
        } else {
          int64_t best = lo;
          for (int64_t k = lo; k <= hi; ++k) {
            if (std::fabs(s.data[k * cfg.width + j]) > std::fabs(s.data[best * cfg.width + j])) best = k;
          }
          ASSERT_LE(std::llabs(best - at), 1) << "sample " << i << " trace " << j << ": peak off the pick";
        }
        ++checked;
      }
      EXPECT_GT(checked, cfg.width / 4) << "sample " << i;
      double in = 0, all = 0;
      for (size_t k = 0; k < s.data.size(); ++k) {
        const double v = static_cast<double>(s.data[k]) * s.data[k];
        all += v;
        if (s.label[k]) in += v;
      }
      EXPECT_GT(in / all, w == SynthWavelet::kDamped ? 0.5 : 0.88)
          << "wavelet " << static_cast<int>(w) << " sample " << i << ": labelled energy";
    }
  }
}

// ---- Coloured noise -------------------------------------------------------------------------

// Periodogram at frequency f (Hz), averaged over the traces that are not all zero.
double mean_power_at(const std::vector<float>& d, const SynthConfig& cfg, double f) {
  double sum = 0;
  int64_t n = 0;
  for (int64_t j = 0; j < cfg.width; ++j) {
    double re = 0, im = 0, e = 0;
    for (int64_t k = 0; k < cfg.height; ++k) {
      const double v = d[k * cfg.width + j], ph = 2.0 * 3.14159265358979 * f * k * cfg.dt;
      re += v * std::cos(ph);
      im -= v * std::sin(ph);
      e += v * v;
    }
    if (e == 0) continue;
    sum += (re * re + im * im) / static_cast<double>(cfg.height);
    ++n;
  }
  return n ? sum / static_cast<double>(n) : 0.0;
}

// synth --freq LO:HI: every event's P frequency lies in the range and its S frequency in [LO, f_P];
// the gathers' power moves with it (60-90 Hz events against the default 15-45 Hz: far more power at
// 75 Hz relative to 25 Hz).
TEST(SynthMicroseismic, FrequencyRangeIsHonoured) {
  auto ratio_75_to_25 = [](double lo, double hi) {
    SynthConfig cfg = without_transients(SynthConfig{});
    cfg.seed = 31;
    cfg.freq_lo = lo;
    cfg.freq_hi = hi;
    cfg.events_min = cfg.events_max = 2;
    cfg.snr_db_lo = cfg.snr_db_hi = 20.0;
    cfg.pink_fraction = 0.0;
    double p75 = 0, p25 = 0;
    for (int64_t i = 0; i < 6; ++i) {
      const Sample s = make(cfg, i);
      EXPECT_EQ(s.info.events.size(), 2u);
      for (const SynthEvent& e : s.info.events) {
        EXPECT_TRUE(e.freq_p >= lo && e.freq_p <= hi) << e.freq_p;
        EXPECT_TRUE(e.freq_s >= lo && e.freq_s <= e.freq_p) << e.freq_s << " for f_P " << e.freq_p;
      }
      p75 += mean_power_at(s.data, cfg, 75.0);
      p25 += mean_power_at(s.data, cfg, 25.0);
    }
    return p75 / p25;
  };
  const double high = ratio_75_to_25(60.0, 90.0), standard = ratio_75_to_25(15.0, 45.0);
  EXPECT_GT(high, 4.0 * standard) << high << " against " << standard;
}

// The S/P amplitude ratio at the apex is drawn in [s_to_p_lo, s_to_p_hi] for every event.
TEST(SynthMicroseismic, SToPRangeIsHonoured) {
  SynthConfig cfg;
  cfg.seed = 5;
  cfg.events_min = 1;
  cfg.s_to_p_lo = 3.0;
  cfg.s_to_p_hi = 4.0;
  int64_t events = 0;
  for (int64_t i = 0; i < 20; ++i) {
    for (const SynthEvent& e : make(cfg, i).info.events) {
      ++events;
      const double r = std::fabs(e.amp_s / e.amp_p);
      EXPECT_TRUE(r >= 3.0 - 1e-12 && r <= 4.0 + 1e-12) << r;
    }
  }
  EXPECT_GT(events, 20);
}

SynthConfig noise_only(uint64_t seed) {
  SynthConfig cfg = without_transients(SynthConfig{});
  cfg.seed = seed;
  cfg.events_min = cfg.events_max = 0;
  cfg.dead_fraction = cfg.spiky_fraction = 0.0;
  cfg.correlated_noise = 0.0;
  return cfg;
}

TEST(SynthMicroseismic, PinkNoiseCarriesMoreLowFrequencyPower) {
  SynthConfig cfg = noise_only(17);
  cfg.white_fraction = 1.0;  // white and pink only
  auto low_over_high = [&](double pink) {
    cfg.pink_fraction = pink;
    double low = 0, high = 0;
    for (int64_t i = 0; i < 4; ++i) {
      const Sample s = make(cfg, i);
      for (double f : {2.0, 3.0, 4.0, 5.0, 6.0}) low += mean_power_at(s.data, cfg, f);
      for (double f : {80.0, 90.0, 100.0, 110.0, 120.0}) high += mean_power_at(s.data, cfg, f);
    }
    return low / high;
  };
  const double white = low_over_high(0.0), pink = low_over_high(0.7);
  EXPECT_GT(white, 0.7) << "white noise: flat";
  EXPECT_LT(white, 1.4) << "white noise: flat";
  EXPECT_GT(pink, 4.0) << "pink noise: power at 2-6 Hz over power at 80-120 Hz";
}

// Mean correlation coefficient of neighbouring traces.
double neighbour_correlation(const Sample& s, const SynthConfig& cfg) {
  double sum = 0;
  for (int64_t j = 0; j + 1 < cfg.width; ++j) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t k = 0; k < cfg.height; ++k) {
      const double a = s.data[k * cfg.width + j], b = s.data[k * cfg.width + j + 1];
      ab += a * b;
      aa += a * a;
      bb += b * b;
    }
    sum += ab / std::sqrt(aa * bb);
  }
  return sum / static_cast<double>(cfg.width - 1);
}

TEST(SynthMicroseismic, CorrelatedNoiseAcrossNeighbouringTraces) {
  SynthConfig cfg = noise_only(19);
  cfg.corr_length_lo = cfg.corr_length_hi = 2.0;  // exp(-1/16) = 0.94 between neighbours
  for (int64_t i = 0; i < 3; ++i) {
    cfg.correlated_noise = 1.0;
    const Sample c = make(cfg, i);
    EXPECT_EQ(c.info.correlation_length, 2.0);
    EXPECT_GT(neighbour_correlation(c, cfg), 0.85) << "sample " << i;
    for (int64_t j = 0; j < cfg.width; ++j) {  // each trace still has exactly the noise rms
      double s2 = 0;
      for (int64_t k = 0; k < cfg.height; ++k)
        s2 += static_cast<double>(c.data[k * cfg.width + j]) * c.data[k * cfg.width + j];
      ASSERT_NEAR(std::sqrt(s2 / static_cast<double>(cfg.height)), c.info.noise_rms, 1e-3 * c.info.noise_rms);
    }
    cfg.correlated_noise = 0.0;
    const Sample u = make(cfg, i);
    EXPECT_EQ(u.info.correlation_length, 0.0);
    EXPECT_LT(std::fabs(neighbour_correlation(u, cfg)), 0.1) << "sample " << i;
  }
}

// ---- Unlabelled transients ------------------------------------------------------------------

// A gather with one transient on (probability 1) and the same gather without: every other draw is
// the same, so their difference is the transient alone.
struct Pair {
  Sample on, off;
  std::vector<float> diff;
};

Pair isolate(SynthConfig cfg, double SynthConfig::*field, int64_t index) {
  cfg = without_transients(cfg);
  Pair p;
  p.off = make(cfg, index);
  cfg.*field = 1.0;
  p.on = make(cfg, index);
  p.diff.resize(p.on.data.size());
  for (size_t k = 0; k < p.diff.size(); ++k) p.diff[k] = p.on.data[k] - p.off.data[k];
  return p;
}

// The label, picks, events, SNR and noise level do not see a transient.
void expect_same_truth(const Pair& p) {
  EXPECT_EQ(p.on.label, p.off.label);
  EXPECT_EQ(p.on.info.snr_db, p.off.info.snr_db);
  EXPECT_EQ(p.on.info.noise_rms, p.off.info.noise_rms);
  ASSERT_EQ(p.on.info.picks.size(), p.off.info.picks.size());
  for (size_t k = 0; k < p.on.info.picks.size(); ++k) {
    const SynthPick &a = p.on.info.picks[k], &b = p.off.info.picks[k];
    ASSERT_TRUE(a.event == b.event && a.trace == b.trace && a.phase == b.phase && a.time == b.time) << "pick " << k;
  }
  ASSERT_EQ(p.on.info.events.size(), p.off.info.events.size());
  for (size_t k = 0; k < p.on.info.events.size(); ++k) {
    const SynthEvent &a = p.on.info.events[k], &b = p.off.info.events[k];
    EXPECT_TRUE(a.origin_time == b.origin_time && a.x == b.x && a.z == b.z && a.amp_p == b.amp_p &&
                a.wavelet == b.wavelet)
        << "event " << k;
  }
}

TEST(SynthMicroseismic, HumIsASpectralPeakAt50Or60Hz) {
  SynthConfig cfg;
  cfg.seed = 23;
  cfg.events_min = 1;
  cfg.correlated_noise = 0.0;
  int64_t seen[2] = {};
  for (int64_t i = 0; i < 8; ++i) {
    const Pair p = isolate(cfg, &SynthConfig::hum, i);
    expect_same_truth(p);
    const double f0 = p.on.info.hum_hz;
    ASSERT_TRUE(std::fabs(f0 - 50) <= 0.05 || std::fabs(f0 - 60) <= 0.05) << "hum at " << f0 << " Hz";
    ++seen[f0 > 55];
    EXPECT_EQ(p.off.info.hum_hz, 0.0);
    // The hum alone: its power at f0 dwarfs that a few Hz away (some traces may carry none).
    const double at = mean_power_at(p.diff, cfg, f0);
    double around = 0;
    for (double d : {-11.0, -7.0, 7.0, 11.0}) around += mean_power_at(p.diff, cfg, f0 + d) / 4;
    EXPECT_GT(at, 50 * around) << "sample " << i;
    EXPECT_GT(at, 0.0);
    // Without hum the data have no peak at 50 or 60 Hz.
    for (double f : {50.0, 60.0}) {
      double near = 0;
      for (double d : {-11.0, -7.0, 7.0, 11.0}) near += mean_power_at(p.off.data, cfg, f + d) / 4;
      EXPECT_LT(mean_power_at(p.off.data, cfg, f), 1.5 * near) << "sample " << i << " at " << f << " Hz";
    }
  }
  EXPECT_GT(seen[0] + seen[1], 0);
}

TEST(SynthMicroseismic, BurstsStayOnAFewTraces) {
  SynthConfig cfg;
  cfg.seed = 29;
  cfg.events_min = 1;
  for (int64_t i = 0; i < 8; ++i) {
    const Pair p = isolate(cfg, &SynthConfig::bursts, i);
    expect_same_truth(p);
    const SynthSampleInfo& in = p.on.info;
    ASSERT_GE(in.bursts, 1);
    ASSERT_LE(in.bursts, 3);
    EXPECT_EQ(p.off.info.bursts, 0);
    std::vector<int64_t> traces = in.burst_traces;
    traces.erase(std::unique(traces.begin(), traces.end()), traces.end());
    EXPECT_LE(static_cast<int64_t>(traces.size()), 3 * in.bursts);
    double peak = 0;
    for (int64_t j = 0; j < cfg.width; ++j) {
      int64_t nonzero = 0;
      for (int64_t k = 0; k < cfg.height; ++k) {
        const float d = p.diff[k * cfg.width + j];
        nonzero += d != 0.0f;
        peak = std::max(peak, static_cast<double>(std::fabs(d)));
      }
      const bool burst = std::binary_search(traces.begin(), traces.end(), j);
      if (!burst) {
        ASSERT_EQ(nonzero, 0) << "sample " << i << ": trace " << j << " has no burst but changed";
      } else {
        EXPECT_GT(nonzero, 0) << "sample " << i << " trace " << j;
        EXPECT_LE(nonzero, 3 * std::llround(0.06 / cfg.dt) + 3) << "sample " << i << " trace " << j;
      }
    }
    EXPECT_GE(peak, 2.9 * in.noise_rms) << "sample " << i << ": bursts are 3-20 x the noise";
  }
}

TEST(SynthMicroseismic, GroundRollMovesOutAtItsVelocity) {
  SynthConfig cfg;
  cfg.seed = 37;
  cfg.height = 2048;  // 4 s: whole wave trains fit on some traces
  cfg.width = 96;
  cfg.events_max = 0;
  cfg.dead_fraction = cfg.spiky_fraction = 0.0;
  int64_t fitted = 0;
  for (int64_t i = 0; i < 10 && fitted < 3; ++i) {
    const Pair p = isolate(cfg, &SynthConfig::surface_waves, i);
    expect_same_truth(p);
    ASSERT_EQ(p.on.info.surface_waves, 1);
    EXPECT_EQ(p.off.info.surface_waves, 0);
    const double v = p.on.info.surface_velocity, xs = p.on.info.surface_source_x;
    ASSERT_GE(v, 300.0);
    ASSERT_LE(v, 900.0);
    ASSERT_TRUE(xs < 0 || xs > (cfg.width - 1) * cfg.dx) << "the source lies off the line";
    // Energy centroid in time of each trace whose wave train lies inside the gather.
    std::vector<double> xs_fit, ts_fit;
    for (int64_t j = 0; j < cfg.width; ++j) {
      double e = 0, te = 0, edge = 0;
      for (int64_t k = 0; k < cfg.height; ++k) {
        const double d2 = static_cast<double>(p.diff[k * cfg.width + j]) * p.diff[k * cfg.width + j];
        e += d2;
        te += d2 * k * cfg.dt;
        if (k < 20 || k >= cfg.height - 20) edge += d2;
      }
      if (e == 0 || edge > 1e-4 * e) continue;
      xs_fit.push_back(j * cfg.dx);
      ts_fit.push_back(te / e);
    }
    if (xs_fit.size() < 10) continue;
    const double n = static_cast<double>(xs_fit.size());
    double mx = 0, mt = 0;
    for (size_t k = 0; k < xs_fit.size(); ++k) mx += xs_fit[k] / n, mt += ts_fit[k] / n;
    double sxt = 0, sxx = 0;
    for (size_t k = 0; k < xs_fit.size(); ++k) {
      sxt += (xs_fit[k] - mx) * (ts_fit[k] - mt);
      sxx += (xs_fit[k] - mx) * (xs_fit[k] - mx);
    }
    const double slope = sxt / sxx, want = (xs < 0 ? 1.0 : -1.0) / v;
    EXPECT_NEAR(slope / want, 1.0, 0.05) << "sample " << i << ": moveout " << 1 / slope << " m/s, drawn " << v;
    // Low frequency: 3-12 Hz, far below the events' band.
    double low = 0, high = 0;
    for (double f : {3.0, 5.0, 7.0, 9.0, 11.0}) low += mean_power_at(p.diff, cfg, f);
    for (double f : {25.0, 30.0, 35.0, 40.0, 45.0}) high += mean_power_at(p.diff, cfg, f);
    EXPECT_GT(low, 20 * high) << "sample " << i;
    ++fitted;
  }
  EXPECT_GE(fitted, 2) << "too few wave trains inside the gathers: the moveout went untested";
}

// Radiation: a double-couple event's P changes sign along the line (at most twice: sin 2(takeoff -
// strike) over takeoff angles spanning less than 180 degrees), the other events' never; reversed traces
// carry the negated signal and keep their label.
TEST(SynthMicroseismic, PolarityFlipsAndReversedTraces) {
  SynthConfig cfg;
  cfg.seed = 47;
  cfg.width = 128;
  cfg.events_min = cfg.events_max = 1;
  cfg.background_noise = false;
  cfg.dead_fraction = cfg.spiky_fraction = 0.0;
  // Ricker only: the sign at the pick is the amplitude's.
  cfg.wavelet_ormsby = cfg.wavelet_berlage = cfg.wavelet_damped = cfg.wavelet_gabor = 0.0;
  cfg = without_transients(cfg);
  cfg.reversed_fraction = 0.0;
  int64_t dc = 0, flipped = 0;
  for (int64_t i = 0; i < 24; ++i) {
    const Sample s = make(cfg, i);
    ASSERT_EQ(s.info.events.size(), 1u);
    std::vector<int> sign;
    for (const SynthPick& p : s.info.picks) {
      if (p.phase != 0) continue;
      const float v = s.data[std::llround(p.time / cfg.dt) * cfg.width + p.trace];
      if (std::fabs(v) > 1e-3 * std::fabs(s.info.events[0].amp_p)) sign.push_back(v > 0 ? 1 : -1);
    }
    int64_t changes = 0;
    for (size_t k = 1; k < sign.size(); ++k) changes += sign[k] != sign[k - 1];
    if (s.info.events[0].double_couple) {
      ++dc;
      EXPECT_LE(changes, 2) << "sample " << i;
      flipped += changes > 0;
    } else {
      EXPECT_EQ(changes, 0) << "sample " << i << ": a single-lobed event changed polarity";
    }
  }
  EXPECT_GT(dc, 4) << "about half the events are double-couple";
  EXPECT_LT(dc, 20);
  EXPECT_GT(flipped, 1) << "no double-couple event changed polarity along the line";
  cfg.polarity_flips = 0.0;
  for (int64_t i = 0; i < 6; ++i) EXPECT_FALSE(make(cfg, i).info.events[0].double_couple);

  // Reversed traces: the same gather with and without them.
  SynthConfig rev = cfg;
  rev.reversed_fraction = 0.2;
  rev.dead_fraction = 0.1;
  cfg.dead_fraction = 0.1;
  for (int64_t i = 0; i < 4; ++i) {
    const Sample a = make(cfg, i), b = make(rev, i);
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.info.reversed_traces, 0);
    EXPECT_GT(b.info.reversed_traces, 0);
    int64_t negated = 0;
    for (int64_t j = 0; j < cfg.width; ++j) {
      bool same = true, opposite = true, zero = true;
      for (int64_t k = 0; k < cfg.height; ++k) {
        const float x = a.data[k * cfg.width + j], y = b.data[k * cfg.width + j];
        same = same && x == y;
        opposite = opposite && x == -y;
        zero = zero && x == 0.0f;
      }
      ASSERT_TRUE(same || opposite) << "sample " << i << " trace " << j;
      if (!zero && opposite) ++negated;
    }
    EXPECT_EQ(negated, b.info.reversed_traces) << "sample " << i;
  }
}

// Coherent noise: plane waves crossing the line. With one wave, every trace is the first trace's
// series delayed by x / v (linearly interpolated), all through the gather: no onset, no end.
TEST(SynthMicroseismic, CoherentNoiseIsPlaneWavesWithoutLabel) {
  SynthConfig cfg;
  cfg.seed = 41;
  cfg.height = 512;
  cfg.width = 64;
  cfg.events_min = 1;
  cfg.dead_fraction = 0.0;
  int64_t single = 0, waves = 0;
  double level = 0;
  for (int64_t i = 0; i < 24; ++i) {
    const Pair p = isolate(cfg, &SynthConfig::coherent_noise, i);
    expect_same_truth(p);
    const std::vector<double>& v = p.on.info.coherent_velocities;
    ASSERT_GE(v.size(), 1u);
    ASSERT_LE(v.size(), 4u);
    EXPECT_TRUE(p.off.info.coherent_velocities.empty());
    for (double u : v) {
      ASSERT_GE(std::fabs(u), 300.0 * (1 - 1e-12));
      ASSERT_LE(std::fabs(u), 8000.0 * (1 + 1e-12));
    }
    waves += static_cast<int64_t>(v.size());
    double s2 = 0, first = 0, last = 0;
    for (int64_t k = 0; k < cfg.height; ++k) {
      for (int64_t j = 0; j < cfg.width; ++j) {
        const double d = p.diff[k * cfg.width + j];
        s2 += d * d;
        (k < cfg.height / 2 ? first : last) += d * d;
      }
    }
    const double rms = std::sqrt(s2 / static_cast<double>(cfg.height * cfg.width)) / p.on.info.noise_rms;
    level += rms / 24;
    EXPECT_GT(rms, 0.05) << "sample " << i;
    EXPECT_LT(rms, 2.0) << "sample " << i;
    EXPECT_GT(first, 0.1 * last) << "sample " << i << ": the noise runs through the whole gather";
    EXPECT_GT(last, 0.1 * first) << "sample " << i;
    if (v.size() != 1) continue;
    ++single;
    // Trace j at row k is trace 0 at row k - j dx / (v dt): check wherever that lies in the gather.
    int64_t checked = 0;
    for (int64_t j = 1; j < cfg.width; ++j) {
      const double delay = static_cast<double>(j) * cfg.dx / v[0] / cfg.dt;
      for (int64_t k = 0; k < cfg.height; ++k) {
        const double at = static_cast<double>(k) - delay;
        const int64_t n = static_cast<int64_t>(std::floor(at));
        if (n < 0 || n + 1 >= cfg.height) continue;
        const double f = at - static_cast<double>(n);
        const double want = (1 - f) * p.diff[n * cfg.width] + f * p.diff[(n + 1) * cfg.width];
        ASSERT_NEAR(p.diff[k * cfg.width + j], want, 1e-4 * p.on.info.noise_rms)
            << "sample " << i << " trace " << j << " row " << k << " at " << v[0] << " m/s";
        ++checked;
      }
    }
    EXPECT_GT(checked, cfg.height) << "sample " << i;
  }
  EXPECT_GE(single, 2) << "too few one-wave gathers: the moveout went untested";
  EXPECT_GT(waves, 24 + 12) << "1-4 waves per gather";
  EXPECT_GT(level, 0.25) << "mean rms over the noise rms, 0.2-1 drawn";
  EXPECT_LT(level, 0.95);
}

// Every piece on: the same (seed, index) gives the same bits, whatever was generated before.
TEST(SynthMicroseismic, EveryPieceOnIsDeterministic) {
  SynthConfig cfg;
  cfg.seed = 43;
  cfg.events_min = 1;
  cfg.hum = cfg.bursts = cfg.surface_waves = cfg.correlated_noise = cfg.coherent_noise = 1.0;
  cfg.pink_fraction = 0.5;
  const Sample a = make(cfg, 3);
  make(cfg, 4);
  const Sample b = make(cfg, 3);
  EXPECT_EQ(std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)), 0);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.info.burst_traces, b.info.burst_traces);
  EXPECT_EQ(a.info.hum_hz, b.info.hum_hz);
  EXPECT_GT(a.info.hum_hz, 0.0);
  EXPECT_GT(a.info.correlation_length, 0.0);
  EXPECT_EQ(a.info.coherent_velocities, b.info.coherent_velocities);
  EXPECT_FALSE(a.info.coherent_velocities.empty());
  for (float v : a.data) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace seis
