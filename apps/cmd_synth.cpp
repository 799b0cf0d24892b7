// seisseg synth: writes a synthetic microseismic set in the HDF5 dataset format. Each of T worker
// threads takes the next sample index, generates the gather (deterministic per (seed, index)) and
// hands it to the writer; at most T gathers are in memory whatever N is. With --continuous, one
// continuous record [T, W] instead, generated in blocks of rows (T blocks in memory whatever its
// length). Either file carries the ground truth /picks and /events (io/synth_file.h). The file
// appears under --out only when complete (H5SampleWriter writes F.h5.tmp, then renames); one that
// cannot fit in the free disk space is refused before anything is created.
#include <sys/statvfs.h>
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
#include "io/hdf5_util.h"
#include "io/synth_file.h"
#include "io/synth_microseismic.h"

namespace seis {

namespace {

// Bytes free to an unprivileged writer in the directory that will hold `out`; -1 when unknown
// (no such directory: the writer then names the problem when it creates the file).
long double free_bytes_for(const std::string& out) {
  const size_t slash = out.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : out.substr(0, slash));
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return -1;
  return static_cast<long double>(st.f_bavail) * static_cast<long double>(st.f_frsize);
}

// Refuses, before the file is created, an output that cannot fit: uncompressed, the file holds
// every value (its chunks are allocated when it is created), values x 5 bytes (float32 data and
// uint8 label); with --gzip, no less than that over 1032, deflate's best ratio. Without the check,
// the writer would start on a file of exabytes and fail deep inside HDF5. (values may pass int64:
// long double.)
void check_disk_space(const std::string& out, long double values, int gzip, const std::string& flags) {
  const long double raw = values * 5;
  const long double need = gzip > 0 ? raw / 1032 : raw;
  const long double have = free_bytes_for(out);
  if (have < 0 || need <= have) return;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.4Lg GB%s, but %.4Lg GB are free where --out %s goes", need / 1e9,
                gzip > 0 ? " at the least (compressed)" : "", have / 1e9, out.c_str());
  throw UsageError(flags + ": the file needs " + buf);
}

}  // namespace

int cmd_synth(int argc, char** argv) {
  CLI::App app{
      "seisseg synth: write a synthetic microseismic set (HDF5: /data float32, /label uint8, [N, H, W]; "
      "ground truth /picks and /events), or with --continuous one continuous record [T, W]",
      "seisseg synth"};
  std::string out, snr = "0:10";
  int64_t samples = 0, height = 0, width = 0, events_max = 3, receivers = 0;
  double duration = 0, events_per_minute = 2.0;
  bool continuous = false;
  uint64_t seed = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int gzip = 0;
  app.add_option("--out", out, "output file (written as F.tmp, renamed when complete)")->required();
  app.add_option("--samples", samples, "number of gathers N (required without --continuous)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--height", height, "time samples per gather H (required without --continuous)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--width", width, "receivers per gather W (required without --continuous)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--seed", seed, "random seed: sample i is a pure function of (seed, i)")->capture_default_str();
  app.add_option("--events-max", events_max, "at most K events per gather (0..K, uniform)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  app.add_option("--snr-db", snr, "SNR range LO:HI in dB (with --continuous: each event's)")->capture_default_str();
  app.add_flag("--continuous", continuous, "write one continuous record [T, W] instead of gathers");
  app.add_option("--duration", duration, "--continuous: length of the record in seconds (T = round(duration / dt))");
  app.add_option("--receivers", receivers, "--continuous: receivers W")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  app.add_option("--events-per-minute", events_per_minute,
                 "--continuous: mean rate of events (origin times of a Poisson process; events may overlap)")
      ->capture_default_str();
  app.add_option("--threads", threads, "generator threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--gzip", gzip, "deflate level 1..9 (0: uncompressed, the fast path for training)")
      ->capture_default_str()
      ->check(CLI::Range(0, 9));
  if (!parse_cli(app, argc, argv)) return 0;

  SynthConfig sc;
  sc.seed = seed;
  sc.events_max = events_max;
  parse_range("--snr-db", snr, &sc.snr_db_lo, &sc.snr_db_hi);
  auto given = [&](const char* flag) { return app.count(flag) > 0; };

  if (continuous) {
    for (const char* flag : {"--samples", "--height", "--width", "--events-max"}) {
      if (given(flag)) {
        throw UsageError(std::string(flag) +
                         " does not apply to --continuous (a record is --duration SECONDS x --receivers W)");
      }
    }
    if (!given("--duration")) throw UsageError("--continuous needs --duration SECONDS");
    if (!given("--receivers")) throw UsageError("--continuous needs --receivers W");
    if (!std::isfinite(duration) || duration <= 0) {
      throw UsageError("--duration: " + num_str(duration) + " is not a positive number of seconds");
    }
    // In double first: round(duration / dt) may not fit in int64.
    constexpr int64_t kMaxSamples = int64_t{1} << 40;
    const double t_samples = std::round(duration / sc.dt);
    if (t_samples < 1) {
      throw UsageError("--duration: " + num_str(duration) + " s is shorter than one sample (dt = " + num_str(sc.dt) +
                       " s)");
    }
    if (t_samples > static_cast<double>(kMaxSamples)) {
      throw UsageError("--duration: " + num_str(duration) + " s is more than 2^40 samples at dt = " + num_str(sc.dt) +
                       " s");
    }
    if (!std::isfinite(events_per_minute) || events_per_minute < 0 || events_per_minute > 6000) {
      throw UsageError("--events-per-minute: " + num_str(events_per_minute) + " is not in [0, 6000]");
    }
    sc.width = receivers;
    validate_synth_config(sc);
    SynthRecordOptions ro;
    ro.samples = static_cast<int64_t>(t_samples);
    ro.events_per_minute = events_per_minute;
    check_disk_space(out, t_samples * static_cast<long double>(receivers), gzip, "--duration x --receivers");
    const double s = write_synth_record(out, sc, ro, threads, gzip, SEIS_VERSION, true);
    const double seconds = static_cast<double>(ro.samples) * sc.dt;
    const double mb = static_cast<double>(ro.samples * receivers) * 5.0 / 1e6;
    std::printf(
        "wrote %s: a continuous record of %lld samples (%.3f s at dt %g s) x %lld receivers (%.1f MB%s) in "
        "%.1f s: x%.1f real time\n",
        out.c_str(), static_cast<long long>(ro.samples), seconds, sc.dt, static_cast<long long>(receivers), mb,
        gzip > 0 ? " before compression" : "", s, seconds / std::max(s, 1e-9));
    return 0;
  }

  for (const char* flag : {"--duration", "--receivers", "--events-per-minute"}) {
    if (given(flag)) throw UsageError(std::string(flag) + " applies to --continuous records only");
  }
  for (const char* flag : {"--samples", "--height", "--width"}) {
    if (!given(flag)) {
      throw UsageError(std::string(flag) +
                       " is required (or --continuous --duration SECONDS --receivers W for one continuous record)");
    }
  }
  sc.height = height;
  sc.width = width;
  validate_synth_config(sc);
  if (height * width * 4 >= (int64_t{1} << 32)) {
    throw UsageError("--height x --width: a gather of " + std::to_string(height) + "x" + std::to_string(width) +
                     " exceeds HDF5's 4 GiB chunk limit");
  }

  check_disk_space(out, static_cast<long double>(samples) * height * width, gzip, "--samples x --height x --width");
  const double s = write_synth_file(out, sc, samples, threads, gzip, SEIS_VERSION, true);
  const double mb_per_sample = static_cast<double>(height * width) * 5.0 / 1e6;
  std::printf("wrote %s: %lld gathers of %lldx%lld (%.1f MB of samples%s) in %.1f s: %.2f samples/s, %.1f MB/s\n",
              out.c_str(), static_cast<long long>(samples), static_cast<long long>(height),
              static_cast<long long>(width), mb_per_sample * static_cast<double>(samples),
              gzip > 0 ? ", before compression" : "", s, static_cast<double>(samples) / s,
              mb_per_sample * static_cast<double>(samples) / s);
  return 0;
}

}  // namespace seis
