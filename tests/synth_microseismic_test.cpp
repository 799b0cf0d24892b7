// The synthetic microseismic generator: determinism, label sparsity, labels on the arrivals, the
// SNR definition and the moveout.
#include "io/synth_microseismic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/error.h"

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
    // Most of the energy is labelled: 94.5% of a Ricker's lies within +-0.5/f.
    EXPECT_GT(in / (in + out), 0.9) << "sample " << i << ": labelled share of the energy";
  }
}

TEST(SynthMicroseismic, MeasuredSnrMatchesRequested) {
  SynthConfig cfg;
  cfg.seed = 99;
  cfg.events_min = 1;
  cfg.spiky_fraction = 0.0;
  SynthConfig clean = cfg;
  clean.background_noise = false;
  for (int64_t i = 0; i < 6; ++i) {
    const Sample noisy = make(cfg, i), sig = make(clean, i);
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
        const double onset = (e.origin_time + tp - 0.5 / e.freq_p) / cfg.dt;
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

}  // namespace
}  // namespace seis
