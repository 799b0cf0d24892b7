#include "io/synth_file.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
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

// "R:O:B:D:G", the wavelet weights as --wavelets takes them.
std::string synth_wavelet_weights_str(const SynthConfig& sc) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%g:%g:%g:%g:%g", sc.wavelet_ricker, sc.wavelet_ormsby, sc.wavelet_berlage,
                sc.wavelet_damped, sc.wavelet_gabor);
  return buf;
}

std::string format_eta(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

}  // namespace

const H5TableSpec& synth_pick_table() {
  static const H5TableSpec spec{"picks",
                                sizeof(SynthPickRow),
                                {{"gather", H5FieldType::i64, offsetof(SynthPickRow, gather)},
                                 {"trace", H5FieldType::i64, offsetof(SynthPickRow, trace)},
                                 {"phase", H5FieldType::u8, offsetof(SynthPickRow, phase)},
                                 {"time_s", H5FieldType::f64, offsetof(SynthPickRow, time_s)},
                                 {"event", H5FieldType::i64, offsetof(SynthPickRow, event)}}};
  return spec;
}

const H5TableSpec& synth_event_table() {
  static const H5TableSpec spec{"events",
                                sizeof(SynthEventRow),
                                {{"gather", H5FieldType::i64, offsetof(SynthEventRow, gather)},
                                 {"event", H5FieldType::i64, offsetof(SynthEventRow, event)},
                                 {"origin_time_s", H5FieldType::f64, offsetof(SynthEventRow, origin_time_s)},
                                 {"first_arrival_s", H5FieldType::f64, offsetof(SynthEventRow, first_arrival_s)},
                                 {"last_arrival_s", H5FieldType::f64, offsetof(SynthEventRow, last_arrival_s)},
                                 {"x_m", H5FieldType::f64, offsetof(SynthEventRow, x_m)},
                                 {"z_m", H5FieldType::f64, offsetof(SynthEventRow, z_m)},
                                 {"snr_db", H5FieldType::f64, offsetof(SynthEventRow, snr_db)}}};
  return spec;
}

namespace {

void write_generator_attributes(H5SampleWriter& writer, const SynthConfig& sc, const std::string& version) {
  writer.set_attribute("generator", std::string("seisseg synth"));
  writer.set_attribute("version", version);
  if (sc.seed <= static_cast<uint64_t>(INT64_MAX)) {
    writer.set_int_attribute("seed", static_cast<int64_t>(sc.seed));
  } else {
    writer.set_attribute("seed", std::to_string(sc.seed));
  }
  writer.set_attribute("snr_db_lo", sc.snr_db_lo);
  writer.set_attribute("snr_db_hi", sc.snr_db_hi);
  writer.set_attribute("freq_lo", sc.freq_lo);
  writer.set_attribute("freq_hi", sc.freq_hi);
  writer.set_attribute("s_to_p_lo", sc.s_to_p_lo);
  writer.set_attribute("s_to_p_hi", sc.s_to_p_hi);
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
  writer.set_attribute("velocity_scale_lo", sc.velocity_scale_lo);
  writer.set_attribute("velocity_scale_hi", sc.velocity_scale_hi);
  writer.set_attribute("label_half_ms", sc.label_half_ms);
  writer.set_attribute("dead_fraction", sc.dead_fraction);
  writer.set_attribute("spiky_fraction", sc.spiky_fraction);
  writer.set_attribute("wavelets", synth_wavelet_weights_str(sc));
  writer.set_int_attribute("damped_power_max", sc.damped_power_max);
  writer.set_attribute("pink_fraction", sc.pink_fraction);
  writer.set_attribute("correlated_noise", sc.correlated_noise);
  writer.set_attribute("coherent_noise", sc.coherent_noise);
  writer.set_attribute("polarity_flips", sc.polarity_flips);
  writer.set_attribute("statics_ms", sc.statics_ms);
  writer.set_attribute("reversed_fraction", sc.reversed_fraction);
  writer.set_attribute("corr_length_lo", sc.corr_length_lo);
  writer.set_attribute("corr_length_hi", sc.corr_length_hi);
  writer.set_attribute("hum", sc.hum);
  writer.set_attribute("q_fraction", sc.q_fraction);
  writer.set_attribute("q_lo", sc.q_lo);
  writer.set_attribute("q_hi", sc.q_hi);
  if (sc.field_noise) {
    writer.set_attribute("noise_from", sc.field_noise->describe());
    writer.set_attribute("noise_from_share", sc.field_noise_share);
  }
  writer.set_attribute("qs_ratio_lo", sc.qs_ratio_lo);
  writer.set_attribute("qs_ratio_hi", sc.qs_ratio_hi);
}

SynthEventRow event_row(int64_t gather, int64_t event, const SynthEvent& e) {
  return {gather, event, e.origin_time, e.first_arrival, e.last_arrival, e.x, e.z, e.snr_db};
}

SynthPickRow pick_row(int64_t gather, const SynthPick& p) { return {gather, p.trace, p.phase, p.time, p.event}; }

// Runs item i for every i in [0, n) on min(threads, n) threads, handing out indices in order. Each
// thread calls make_worker() once for its own item function (and buffers). The first exception
// stops the rest (after on_error, which must release anything a worker may wait on) and is
// rethrown. With progress, prints status(done, seconds) to stderr at most once a second.
double run_items(int64_t n, int threads, bool progress,
                 const std::function<std::function<void(int64_t)>()>& make_worker,
                 const std::function<void()>& on_error, const std::function<std::string(int64_t, double)>& status) {
  const int64_t nthreads = std::max<int64_t>(1, std::min<int64_t>(threads, n));
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
        const std::function<void(int64_t)> item = make_worker();
        for (int64_t i = next++; i < n && !stop; i = next++) {
          item(i);
          ++done;
        }
      } catch (...) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
          stop = true;
        }
        on_error();
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
      std::fprintf(stderr, "%s%s%s", tty ? "\r" : "", status(done, seconds()).c_str(), tty ? "  " : "\n");
      std::fflush(stderr);
    }
  }
  for (auto& w : workers) w.join();
  if (progress && tty && seconds() >= 1.0) std::fputc('\n', stderr);
  if (error) std::rethrow_exception(error);
  return seconds();
}

// Appends each gather's ground truth in gather order, whatever order the gathers finish in. The
// worker that delivers gather i waits while i is `window` or more past the next gather to append,
// so at most `window` gathers' rows (a few per receiver and event) wait in memory. The worker
// holding the next gather never waits, so the wait cannot deadlock; abort() releases waiters after
// an error.
class OrderedTruth {
 public:
  OrderedTruth(H5SampleWriter& writer, int64_t window) : writer_(writer), window_(window) {}

  void deliver(int64_t i, std::vector<SynthPickRow> picks, std::vector<SynthEventRow> events) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || i < next_ + window_; });
    if (aborted_) return;
    pending_.emplace(i, Rows{std::move(picks), std::move(events)});
    for (auto it = pending_.find(next_); it != pending_.end(); it = pending_.find(next_)) {
      writer_.append_rows("picks", it->second.picks.data(), static_cast<int64_t>(it->second.picks.size()));
      writer_.append_rows("events", it->second.events.data(), static_cast<int64_t>(it->second.events.size()));
      pending_.erase(it);
      ++next_;
    }
    cv_.notify_all();
  }

  void abort() {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    cv_.notify_all();
  }

 private:
  struct Rows {
    std::vector<SynthPickRow> picks;
    std::vector<SynthEventRow> events;
  };
  H5SampleWriter& writer_;
  const int64_t window_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Rows> pending_;
  int64_t next_ = 0;
  bool aborted_ = false;
};

}  // namespace

double write_synth_file(const std::string& out, const SynthConfig& sc, int64_t samples, int threads, int gzip,
                        const std::string& version, bool progress) {
  const int64_t height = sc.height, width = sc.width;
  H5SampleWriter::Options wo;
  wo.n = samples;
  wo.height = height;
  wo.width = width;
  wo.with_label = true;
  wo.norm_stats = true;
  wo.gzip_level = gzip;
  wo.dt = sc.dt;
  wo.dx = sc.dx;
  H5SampleWriter writer(out, wo);
  write_generator_attributes(writer, sc, version);
  writer.set_int_attribute("events_min", sc.events_min);
  writer.set_int_attribute("events_max", sc.events_max);
  writer.set_attribute("bursts", sc.bursts);
  writer.set_attribute("surface_waves", sc.surface_waves);
  writer.add_table(synth_pick_table());
  writer.add_table(synth_event_table());
  OrderedTruth truth(writer, 4 * static_cast<int64_t>(std::max(1, threads)));

  const int64_t hw = height * width;
  const double mb_per_sample = static_cast<double>(hw) * 5.0 / 1e6;
  const double s = run_items(
      samples, threads, progress,
      [&]() -> std::function<void(int64_t)> {
        auto data = std::make_shared<std::vector<float>>(static_cast<size_t>(hw));
        auto label = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(hw));
        auto info = std::make_shared<SynthSampleInfo>();
        return [&, data, label, info](int64_t i) {
          synth_sample(sc, i, data->data(), label->data(), info.get());
          writer.write(i, data->data(), label->data());
          std::vector<SynthPickRow> picks;
          picks.reserve(info->picks.size());
          for (const SynthPick& p : info->picks) picks.push_back(pick_row(i, p));
          std::vector<SynthEventRow> events;
          for (size_t e = 0; e < info->events.size(); ++e) {
            events.push_back(event_row(i, static_cast<int64_t>(e), info->events[e]));
          }
          truth.deliver(i, std::move(picks), std::move(events));
        };
      },
      [&] { truth.abort(); },
      [&](int64_t d, double sec) {
        const double rate = static_cast<double>(d) / sec;
        char buf[160];
        std::snprintf(buf, sizeof buf, "synth: %lld/%lld samples  %.2f samples/s  %.1f MB/s  ETA %s",
                      static_cast<long long>(d), static_cast<long long>(samples), rate, rate * mb_per_sample,
                      d > 0 ? format_eta(static_cast<double>(samples - d) / rate).c_str() : "?");
        return std::string(buf);
      });
  writer.commit();  // (on an exception above, the writer's destructor removes the temporary file)
  return s;
}

int64_t synth_record_block_rows(int64_t samples, int64_t receivers) {
  constexpr int64_t kMaxBlockBytes = int64_t{32} << 20;
  const int64_t by_bytes = std::max<int64_t>(1, kMaxBlockBytes / (4 * std::max<int64_t>(1, receivers)));
  return std::max<int64_t>(1, std::min({int64_t{4096}, by_bytes, samples}));
}

double write_synth_record(const std::string& out, const SynthConfig& sc, const SynthRecordOptions& options, int threads,
                          int gzip, const std::string& version, bool progress) {
  const SynthRecord record(sc, options.samples, options.events_per_minute);
  const int64_t T = options.samples, W = sc.width;
  const int64_t block = options.block_rows > 0 ? std::min(options.block_rows, T) : synth_record_block_rows(T, W);
  H5SampleWriter::Options wo;
  wo.record = true;
  wo.height = T;
  wo.width = W;
  wo.record_chunk_rows = block;
  wo.with_label = true;
  wo.gzip_level = gzip;
  wo.dt = sc.dt;
  wo.dx = sc.dx;
  H5SampleWriter writer(out, wo);
  write_generator_attributes(writer, sc, version);
  writer.set_attribute("events_per_minute", options.events_per_minute);
  writer.set_attribute("noise_band_hz", record.noise_band_hz());
  writer.set_attribute("bursts_per_minute", sc.bursts_per_minute);
  writer.set_attribute("surface_waves_per_minute", sc.surface_waves_per_minute);
  writer.set_attribute("correlation_length", record.correlation_length());  // traces; 0: independent
  if (sc.hum > 0) writer.set_attribute("hum_hz", record.hum_hz());
  // Apparent velocities of the record's coherent-noise waves, m/s (signed); absent: none.
  if (!record.coherent_velocities().empty()) {
    writer.set_attribute("coherent_velocities", list_str(record.coherent_velocities()));
  }
  writer.set_attribute("duration_s", static_cast<double>(T) * sc.dt);
  writer.add_table(synth_pick_table());
  writer.add_table(synth_event_table());

  // Ground truth: event segments in time order, so events are numbered by origin time.
  const auto t_start = std::chrono::steady_clock::now();
  {
    std::vector<SynthEvent> events;
    std::vector<SynthPick> picks;
    std::vector<SynthEventRow> erows;
    std::vector<SynthPickRow> prows;
    int64_t number = 0;
    for (int64_t s = 0; s < record.segments(); ++s) {
      record.segment_truth(s, number, &events, &picks);
      erows.clear();
      prows.clear();
      for (size_t e = 0; e < events.size(); ++e)
        erows.push_back(event_row(0, number + static_cast<int64_t>(e), events[e]));
      for (const SynthPick& p : picks) prows.push_back(pick_row(0, p));
      writer.append_rows("events", erows.data(), static_cast<int64_t>(erows.size()));
      writer.append_rows("picks", prows.data(), static_cast<int64_t>(prows.size()));
      number += static_cast<int64_t>(events.size());
    }
  }

  const int64_t n_blocks = (T + block - 1) / block;
  const double mb_per_block = static_cast<double>(block * W) * 5.0 / 1e6;
  const double seconds_per_block = static_cast<double>(block) * sc.dt;
  run_items(
      n_blocks, threads, progress,
      [&]() -> std::function<void(int64_t)> {
        auto data = std::make_shared<std::vector<float>>(static_cast<size_t>(block * W));
        auto label = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(block * W));
        return [&, data, label](int64_t b) {
          const int64_t t0 = b * block, rows = std::min(block, T - t0);
          record.window(t0, rows, data->data(), label->data());
          writer.write_rows(t0, rows, data->data(), label->data());
        };
      },
      [] {},
      [&](int64_t d, double sec) {
        const double rate = static_cast<double>(d) / sec;
        char buf[200];
        std::snprintf(buf, sizeof buf, "synth: %lld/%lld blocks  x%.1f real time  %.1f MB/s  ETA %s",
                      static_cast<long long>(d), static_cast<long long>(n_blocks), rate * seconds_per_block,
                      rate * mb_per_block, d > 0 ? format_eta(static_cast<double>(n_blocks - d) / rate).c_str() : "?");
        return std::string(buf);
      });
  writer.commit();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
}

}  // namespace seis
