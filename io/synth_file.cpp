#include "io/synth_file.h"

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

#include "io/hdf5_dataset.h"

namespace seis {

namespace {

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

double write_synth_file(const std::string& out, const SynthConfig& sc, int64_t samples, int threads, int gzip,
                        const std::string& version, bool progress) {
  const int64_t height = sc.height, width = sc.width;
  const uint64_t seed = sc.seed;
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
  writer.set_attribute("version", version);
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
      if (!progress) {
        cv.wait(lock, [&] { return finished_workers == nthreads; });
        break;
      }
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
  if (progress && tty && seconds() >= 1.0) std::fputc('\n', stderr);
  if (error) std::rethrow_exception(error);  // the writer's destructor removes the temporary file
  writer.commit();
  return seconds();
}

}  // namespace seis
