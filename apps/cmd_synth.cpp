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
#include "io/synth_file.h"
#include "io/synth_microseismic.h"

namespace seis {

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
