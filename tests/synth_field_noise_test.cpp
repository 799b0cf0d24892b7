// Synthetic gathers on recorded noise (io/synth_field_noise.h, `synth --noise-from`): windows drawn
// per gather from its key alone, clear of the recording's events, normalised to a median trace rms of
// 1; the recording's dead channels are dead traces; gathers that draw their noise keep their bits;
// and every bad recording is a one-line InputError naming the file.
#include "io/synth_field_noise.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli_util.h"
#include "engine/error.h"
#include "expect_error.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"
#include "io/synth_file.h"

namespace seis {
namespace {

std::string tmp_path(const std::string& name) {
  static const std::string d = test::process_dir("synth_field_noise");
  return d + "/" + name;
}

// A continuous record of Gaussian noise [T, W] (columns in `dead` all zero, one NaN where asked).
std::string write_noise(const std::string& name, int64_t T, int64_t W, double dt, const std::vector<int64_t>& dead,
                        int64_t nan_row = -1) {
  const std::string path = tmp_path(name);
  std::vector<float> data(static_cast<size_t>(T * W));
  std::vector<uint8_t> label(data.size(), 0);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.5f, 3.0f);  // a mean to remove, a level to normalise
  for (int64_t k = 0; k < T; ++k) {
    for (int64_t j = 0; j < W; ++j) {
      const bool off = std::find(dead.begin(), dead.end(), j) != dead.end();
      data[static_cast<size_t>(k * W + j)] = off ? 0.0f : nd(rng) * static_cast<float>(1 + j % 3);
    }
  }
  if (nan_row >= 0) data[static_cast<size_t>(nan_row * W + 1)] = std::numeric_limits<float>::quiet_NaN();
  H5SampleWriter::Options o;
  o.record = true;
  o.height = T;
  o.width = W;
  o.record_chunk_rows = T;
  o.dt = dt;
  o.dx = 10.0;
  H5SampleWriter w(path, o);
  w.write_rows(0, T, data.data(), label.data());
  w.commit();
  return path;
}

// A synthetic continuous record with events and their ground truth.
std::string write_eventful(const std::string& name, double seconds, double per_minute) {
  const std::string path = tmp_path(name);
  SynthConfig c;
  c.width = 24;
  c.seed = 5;
  SynthRecordOptions ro;
  ro.samples = static_cast<int64_t>(seconds / c.dt);
  ro.events_per_minute = per_minute;
  write_synth_record(path, c, ro, 1, 0, "test", false);
  return path;
}

using test::expect_input_error;

TEST(FieldNoise, WindowsAreDeterministicNormalisedAndClearOfEvents) {
  const std::string path = write_eventful("events.h5", 60.0, 6.0);
  const GroundTruth truth = read_ground_truth(path);
  int64_t with_arrivals = 0;
  for (const SynthEventRow& e : truth.events) with_arrivals += std::isnan(e.first_arrival_s) ? 0 : 1;
  ASSERT_GE(with_arrivals, 2) << "the record must have events for the test to mean anything";
  const int64_t H = 128, W = 16;
  const FieldNoise noise({path}, truth.dt, H, W);
  EXPECT_GT(noise.admissible_windows(), 0);
  EXPECT_LT(noise.admissible_windows(), truth.samples - H + 1) << "the events must rule some windows out";
  std::vector<float> a(static_cast<size_t>(H * W)), b(a.size());
  std::vector<uint8_t> la, lb;
  bool flipped = false, straight = false;
  for (uint64_t key = 0; key < 200; ++key) {
    SynthNoiseWindow wa, wb;
    noise.window(key, H, W, a.data(), &la, &wa);
    noise.window(key, H, W, b.data(), &lb, &wb);
    ASSERT_EQ(a, b) << "key " << key;
    ASSERT_EQ(wa.t0, wb.t0);
    EXPECT_EQ(wa.file, 0);
    EXPECT_GE(wa.c0, 0);
    EXPECT_LE(wa.c0, 24 - W);
    (wa.flipped ? flipped : straight) = true;
    // Clear of every arrival by the margin.
    const double t0 = static_cast<double>(wa.t0) * truth.dt, t1 = static_cast<double>(wa.t0 + H - 1) * truth.dt;
    for (const SynthEventRow& e : truth.events) {
      if (std::isnan(e.first_arrival_s)) continue;
      EXPECT_TRUE(t1 < e.first_arrival_s - FieldNoise::kEventMarginS ||
                  t0 > e.last_arrival_s + FieldNoise::kEventMarginS)
          << "key " << key << ": window [" << t0 << ", " << t1 << "] s meets event " << e.event;
    }
    // Each live trace of zero mean; their median rms 1.
    std::vector<double> rms;
    for (int64_t j = 0; j < W; ++j) {
      if (la[static_cast<size_t>(j)] == 0) continue;
      double s = 0, ss = 0;
      for (int64_t k = 0; k < H; ++k) {
        s += a[static_cast<size_t>(k * W + j)];
        ss += static_cast<double>(a[static_cast<size_t>(k * W + j)]) * a[static_cast<size_t>(k * W + j)];
      }
      EXPECT_NEAR(s / H, 0.0, 1e-4) << "key " << key << " trace " << j;
      rms.push_back(std::sqrt(ss / H));
    }
    ASSERT_FALSE(rms.empty());
    std::nth_element(rms.begin(), rms.begin() + static_cast<std::ptrdiff_t>(rms.size() / 2), rms.end());
    EXPECT_NEAR(rms[rms.size() / 2], 1.0, 1e-4) << "key " << key;
  }
  EXPECT_TRUE(flipped && straight) << "both receiver orders must be drawn";
}

TEST(FieldNoise, DeadChannelsBecomeDeadTracesWithoutArrivals) {
  const int64_t H = 64, W = 12;
  const std::vector<int64_t> dead = {0, 5, 6};
  const std::string path = write_noise("dead.h5", 2000, W, 0.002, dead);
  SynthConfig c;
  c.height = H;
  c.width = W;
  c.seed = 3;
  c.events_min = 2;
  c.events_max = 2;
  c.dead_fraction = 0;
  c.spiky_fraction = 0;
  c.field_noise = std::make_shared<FieldNoise>(std::vector<std::string>{path}, c.dt, H, W);
  std::vector<float> data(static_cast<size_t>(H * W));
  std::vector<uint8_t> label(data.size());
  for (int64_t index = 0; index < 8; ++index) {
    SynthSampleInfo info;
    synth_sample(c, index, data.data(), label.data(), &info);
    ASSERT_TRUE(info.recorded_noise);
    EXPECT_EQ(info.dead_traces, 3) << "index " << index;
    for (int64_t d : dead) {
      const int64_t j = info.noise_window.flipped ? W - 1 - d : d;
      for (int64_t k = 0; k < H; ++k) {
        ASSERT_EQ(data[static_cast<size_t>(k * W + j)], 0.0f) << "index " << index << " trace " << j;
        ASSERT_EQ(label[static_cast<size_t>(k * W + j)], 0) << "index " << index << " trace " << j;
      }
      for (const SynthPick& p : info.picks) EXPECT_NE(p.trace, j) << "a pick on a dead trace";
    }
    EXPECT_FALSE(info.picks.empty());
  }
}

TEST(FieldNoise, GathersThatDrawTheirNoiseKeepTheirBits) {
  const int64_t H = 64, W = 12;
  const std::string path = write_noise("plain.h5", 500, W, 0.002, {});
  SynthConfig drawn;
  drawn.height = H;
  drawn.width = W;
  drawn.seed = 11;
  SynthConfig mixed = drawn;
  mixed.field_noise = std::make_shared<FieldNoise>(std::vector<std::string>{path}, drawn.dt, H, W);
  mixed.field_noise_share = 0.5;
  std::vector<float> d0(static_cast<size_t>(H * W)), d1(d0.size());
  std::vector<uint8_t> l0(d0.size()), l1(d0.size());
  int recorded = 0, kept = 0;
  for (int64_t index = 0; index < 40; ++index) {
    SynthSampleInfo i0, i1;
    synth_sample(drawn, index, d0.data(), l0.data(), &i0);
    synth_sample(mixed, index, d1.data(), l1.data(), &i1);
    EXPECT_EQ(l0, l1) << "no dead channel here: the same arrivals and labels, index " << index;
    EXPECT_EQ(i0.snr_db, i1.snr_db);
    if (i1.recorded_noise) {
      ++recorded;
      EXPECT_NE(d0, d1) << "index " << index;
    } else {
      ++kept;
      EXPECT_EQ(d0, d1) << "index " << index;
    }
  }
  EXPECT_GT(recorded, 5);
  EXPECT_GT(kept, 5);
}

TEST(FieldNoise, BadRecordingsAreOneLineErrorsNamingTheFile) {
  const std::string ok = write_noise("ok.h5", 300, 8, 0.002, {});
  expect_input_error([&] { FieldNoise({ok}, 0.001, 64, 8); }, ok + ": dt 0.002 s, but the synthetic set's is 0.001 s");
  expect_input_error([&] { FieldNoise({ok}, 0.002, 64, 9); }, ok + ": 8 receivers, fewer than the gathers' 9");
  expect_input_error([&] { FieldNoise({ok}, 0.002, 301, 8); }, ok + ": 300 time samples, fewer than one gather's 301");
  const std::string missing = tmp_path("missing.h5");
  expect_input_error([&] { FieldNoise({ok, missing}, 0.002, 64, 8); }, missing);
  const std::string nan = write_noise("nan.h5", 64, 8, 0.002, {}, 10);
  const FieldNoise n({nan}, 0.002, 64, 8);
  std::vector<float> out(64 * 8);
  std::vector<uint8_t> live;
  expect_input_error([&] { n.window(1, 64, 8, out.data(), &live, nullptr); },
                     nan + ": a non-finite sample at row 10, receiver 1");
  const std::string silent = write_noise("silent.h5", 100, 4, 0.002, {0, 1, 2, 3});
  const FieldNoise s({silent}, 0.002, 64, 4);
  expect_input_error([&] { s.window(1, 64, 4, out.data(), &live, nullptr); }, silent + ": 16 noise windows in a row");
  // A record whose events leave no quiet window.
  const std::string busy = write_eventful("busy.h5", 20.0, 600.0);
  expect_input_error([&] { FieldNoise({busy}, 0.002, 512, 16); }, busy + ": no window of 512 rows");
  // A gathers file is not a recording.
  const std::string gathers = tmp_path("gathers.h5");
  SynthConfig c;
  c.height = 16;
  c.width = 8;
  write_synth_file(gathers, c, 2, 1, 0, "test", false);
  expect_input_error([&] { FieldNoise({gathers}, 0.002, 16, 8); }, gathers);
}

}  // namespace
}  // namespace seis
