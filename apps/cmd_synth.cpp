// seisseg synth: writes a synthetic microseismic set in the HDF5 dataset format. Each of T worker
// threads takes the next sample index, generates the gather (deterministic per (seed, index)) and
// hands it to the writer; at most T gathers are in memory whatever N is. The file appears under
// --out only when complete (H5SampleWriter writes F.h5.tmp, then renames).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "io/hdf5_dataset.h"
#include "io/synth_microseismic.h"

namespace seis {

namespace {

void parse_range(const std::string& flag, const std::string& v, double* lo, double* hi) {
  const size_t c = v.find(':');
  try {
    if (c == std::string::npos) throw std::invalid_argument(v);
    size_t used = 0;
    *lo = std::stod(v.substr(0, c), &used);
    if (used != c) throw std::invalid_argument(v);
    *hi = std::stod(v.substr(c + 1), &used);
    if (used != v.size() - c - 1) throw std::invalid_argument(v);
  } catch (const std::exception&) {
    throw UsageError(flag + ": '" + v + "' is not LO:HI");
  }
  if (!(*lo <= *hi)) throw UsageError(flag + ": LO must not exceed HI in '" + v + "'");
}

std::string list_str(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size(); ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%g", k ? ", " : "", v[k]);
    s += buf;
  }
  return s + "]";
}

std::string format_eta(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

}  // namespace

int cmd_synth(int argc, char** argv) {
  CLI::App app{"seisseg synth: write a synthetic microseismic set (HDF5: /data float32, /label uint8, [N, H, W])",
               "seisseg synth"};
  std::string out, snr = "0:10";
  int64_t samples = 0, height = 0, width = 0, events_max = 3;
  uint64_t seed = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int gzip = 0;
  app.add_option("--out", out, "output file (written as F.tmp, renamed when complete)")->required();
  app.add_option("--samples", samples, "number of gathers N")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--height", height, "time samples per gather H")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--width", width, "receivers per gather W")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--seed", seed, "random seed: sample i is a pure function of (seed, i)")->capture_default_str();
  app.add_option("--events-max", events_max, "at most K events per gather (0..K, uniform)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  app.add_option("--snr-db", snr, "SNR range LO:HI in dB")->capture_default_str();
  app.add_option("--threads", threads, "generator threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--gzip", gzip, "deflate level 1..9 (0: uncompressed, the fast path for training)")
      ->capture_default_str()
      ->check(CLI::Range(0, 9));
  if (!parse_cli(app, argc, argv)) return 0;

  SynthConfig sc;
  sc.height = height;
  sc.width = width;
  sc.seed = seed;
  sc.events_max = events_max;
  parse_range("--snr-db", snr, &sc.snr_db_lo, &sc.snr_db_hi);
  validate_synth_config(sc);
  if (height * width * 4 >= (int64_t{1} << 32)) {
    throw UsageError("--height x --width: a gather of " + std::to_string(height) + "x" + std::to_string(width) +
                     " exceeds HDF5's 4 GiB chunk limit");
  }

  H5SampleWriter::Options wo;
  wo.n = samples;
  wo.height = height;
  wo.width = width;
  wo.with_label = true;
  wo.gzip_level = gzip;
  wo.dt = sc.dt;
  wo.dx = sc.dx;
  H5SampleWriter writer(out, wo);
  writer.set_attribute("generator", std::string("seisseg synth"));
  writer.set_attribute("version", std::string(SEIS_VERSION));
  if (seed <= static_cast<uint64_t>(INT64_MAX)) {
    writer.set_int_attribute("seed", static_cast<int64_t>(seed));
  } else {
    writer.set_attribute("seed", std::to_string(seed));
  }
  writer.set_int_attribute("events_min", sc.events_min);
  writer.set_int_attribute("events_max", sc.events_max);
  writer.set_attribute("snr_db_lo", sc.snr_db_lo);
  writer.set_attribute("snr_db_hi", sc.snr_db_hi);
  writer.set_attribute("freq_lo", sc.freq_lo);
  writer.set_attribute("freq_hi", sc.freq_hi);
  writer.set_attribute("velocity_model",
                       std::string(sc.velocity == VelocityModel::kLayered ? "layered" : "homogeneous"));
  if (sc.velocity == VelocityModel::kLayered) {
    writer.set_attribute("layer_top", list_str(sc.layer_top));
    writer.set_attribute("layer_vp", list_str(sc.layer_vp));
  } else {
    writer.set_attribute("vp", sc.vp);
  }
  writer.set_attribute("vp_vs", sc.vp_vs);
  writer.set_attribute("depth_lo", sc.depth_lo);
  writer.set_attribute("depth_hi", sc.depth_hi);
  writer.set_attribute("lateral_lo", sc.lateral_lo);
  writer.set_attribute("lateral_hi", sc.lateral_hi);
  writer.set_attribute("dead_fraction", sc.dead_fraction);
  writer.set_attribute("spiky_fraction", sc.spiky_fraction);

  const int64_t nthreads = std::min<int64_t>(threads, samples);
  const int64_t hw = height * width;
  const double mb_per_sample = static_cast<double>(hw) * 5.0 / 1e6;
  std::atomic<int64_t> next{0}, done{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::exception_ptr error;
  int64_t finished_workers = 0;
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < nthreads; ++t) {
    workers.emplace_back([&] {
      try {
        std::vector<float> data(static_cast<size_t>(hw));
        std::vector<uint8_t> label(static_cast<size_t>(hw));
        for (int64_t i = next++; i < samples && !stop; i = next++) {
          synth_sample(sc, i, data.data(), label.data());
          writer.write(i, data.data(), label.data());
          ++done;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        stop = true;
      }
      std::lock_guard<std::mutex> lock(mu);
      ++finished_workers;
      cv.notify_all();
    });
  }

  // Progress, at most once a second: in place on a terminal, a line otherwise.
  const bool tty = ::isatty(2) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  {
    std::unique_lock<std::mutex> lock(mu);
    while (finished_workers < nthreads) {
      if (cv.wait_for(lock, std::chrono::seconds(1), [&] { return finished_workers == nthreads; })) break;
      const int64_t d = done;
      const double s = seconds();
      const double rate = static_cast<double>(d) / s;
      std::fprintf(stderr, "%ssynth: %lld/%lld samples  %.2f samples/s  %.1f MB/s  ETA %s%s", tty ? "\r" : "",
                   static_cast<long long>(d), static_cast<long long>(samples), rate, rate * mb_per_sample,
                   d > 0 ? format_eta(static_cast<double>(samples - d) / rate).c_str() : "?", tty ? "  " : "\n");
      std::fflush(stderr);
    }
  }
  for (auto& w : workers) w.join();
  if (tty && seconds() >= 1.0) std::fputc('\n', stderr);
  if (error) std::rethrow_exception(error);  // the writer's destructor removes the temporary file
  writer.commit();
  const double s = seconds();
  std::printf("wrote %s: %lld gathers of %lldx%lld (%.1f MB of samples%s) in %.1f s: %.2f samples/s, %.1f MB/s\n",
              out.c_str(), static_cast<long long>(samples), static_cast<long long>(height),
              static_cast<long long>(width), mb_per_sample * static_cast<double>(samples),
              gzip > 0 ? ", before compression" : "", s, static_cast<double>(samples) / s,
              mb_per_sample * static_cast<double>(samples) / s);
  return 0;
}

}  // namespace seis
