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
#include "io/dataset_paths.h"
#include "io/hdf5_util.h"
#include "io/synth_field_noise.h"
#include "io/synth_file.h"
#include "io/synth_microseismic.h"
#include "io/synth_wavelet.h"

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

// --flag LO:HI, both within [min, max]: a UsageError naming the flag and the bounds otherwise.
void parse_range_within(const std::string& flag, const std::string& v, double min, double max, const std::string& why,
                        double* lo, double* hi) {
  parse_range(flag, v, lo, hi);
  if (!(*lo >= min && *hi <= max)) {
    char bounds[64];
    std::snprintf(bounds, sizeof bounds, "%g:%g", min, max);
    throw UsageError(flag + ": '" + v + "' must lie within " + bounds + why);
  }
}

// "R:O:B:D:G" (or "R:O:B:D", G = 0, or "R:O:B", D = G = 0) into the wavelet weights: finite numbers
// >= 0, not all 0.
void parse_wavelet_weights(const std::string& v, SynthConfig* sc) {
  double w[5] = {};
  const int parts = static_cast<int>(std::count(v.begin(), v.end(), ':')) + 1;
  size_t at = 0;
  bool ok = parts >= 3 && parts <= 5;
  for (int i = 0; i < parts && ok; ++i) {
    const size_t c = i + 1 < parts ? v.find(':', at) : v.size();
    if (c == std::string::npos || c == at) {
      ok = false;
      break;
    }
    const std::string part = v.substr(at, c - at);
    try {
      size_t used = 0;
      w[i] = std::stod(part, &used);
      ok = used == part.size() && std::isfinite(w[i]) && w[i] >= 0;
    } catch (const std::exception&) {
      ok = false;
    }
    at = c + 1;
  }
  if (!ok || at != v.size() + 1 || w[0] + w[1] + w[2] + w[3] + w[4] <= 0) {
    throw UsageError("--wavelets: '" + v +
                     "' is not R:O:B:D:G (weights of Ricker, Ormsby, Berlage, Damped and Gabor wavelets, >= 0 and not "
                     "all 0, e.g. 1:1:1:1:1; R:O:B:D means G = 0, R:O:B D = G = 0)");
  }
  sc->wavelet_ricker = w[0];
  sc->wavelet_ormsby = w[1];
  sc->wavelet_berlage = w[2];
  sc->wavelet_damped = w[3];
  sc->wavelet_gabor = w[4];
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
  const SynthConfig defaults;
  std::string wavelets = "1:1:1:1:1";
  int damped_powers = defaults.damped_power_max;
  double pink = defaults.pink_fraction, correlated = defaults.correlated_noise, hum = defaults.hum;
  double coherent = defaults.coherent_noise, flips = defaults.polarity_flips, reversed = defaults.reversed_fraction;
  double statics = defaults.statics_ms;
  double label_half_ms = defaults.label_half_ms;
  double bursts = 0, surface_waves = 0;  // defaults depend on --continuous
  double attenuation = defaults.q_fraction;
  std::string freq_range = num_str(defaults.freq_lo) + ":" + num_str(defaults.freq_hi);
  std::string s_to_p = num_str(defaults.s_to_p_lo) + ":" + num_str(defaults.s_to_p_hi);
  std::string q_range = num_str(defaults.q_lo) + ":" + num_str(defaults.q_hi);
  std::string qs_ratio = num_str(defaults.qs_ratio_lo) + ":" + num_str(defaults.qs_ratio_hi);
  std::string velocity_scale = num_str(defaults.velocity_scale_lo) + ":" + num_str(defaults.velocity_scale_hi);
  std::string depth = num_str(defaults.depth_lo) + ":" + num_str(defaults.depth_hi);
  std::string lateral = num_str(defaults.lateral_lo) + ":" + num_str(defaults.lateral_hi);
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
  app.add_option("--wavelets", wavelets,
                 "weights R:O:B:D:G of Ricker, Ormsby, Berlage, Damped (those two causal) and Gabor (constant phase of "
                 "any angle) wavelets, drawn per event (1:0:0:0:0: Ricker only; R:O:B:D: no Gabor; R:O:B: neither)")
      ->capture_default_str();
  app.add_option("--freq", freq_range,
                 "range LO:HI of the P wavelets' peak frequency in Hz, drawn per event (uniform); the S wavelet's is "
                 "0.7-1.0 of it, not below LO; 1 <= LO, HI <= 0.2 / dt (" +
                     num_str(0.2 / defaults.dt) + " Hz)")
      ->capture_default_str();
  app.add_option("--s-to-p", s_to_p,
                 "range LO:HI of the S/P amplitude ratio at the apex, drawn per event (uniform), within 0.1:20")
      ->capture_default_str();
  app.add_option("--damped-powers", damped_powers,
                 "the Damped wavelets' onset powers n are drawn from 0..N (u^n e^(-au) sin 2 pi u); 3 and 4 add "
                 "smooth t^3 and t^4 onsets under bell-shaped envelopes, picked at their first break")
      ->capture_default_str()
      ->check(CLI::Range(1, kDampedMaxPower));
  app.add_option("--pink", pink, "share of the background noise power that is pink (1/f), 0..1")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--correlated-noise", correlated,
                 "probability per gather (with --continuous: of the record) that the noise is correlated across "
                 "neighbouring receivers, over a drawn length of 0.5-4 traces")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--hum", hum,
                 "probability per gather (with --continuous: per 10 s) of unlabelled 50/60 Hz power-line hum (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--polarity-flips", flips,
                 "probability per event of a shear-like (double-couple) source whose P and S change polarity along "
                 "the line (the others radiate in one lobe)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--statics-ms", statics,
                 "rms (ms) of receiver statics: per-trace shifts of the P arrivals, half uncorrelated and half smooth "
                 "along the line, S shifted 1.5-2.5x as much (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--label-half-ms", label_half_ms,
                 "half-width of every label around its pick in ms, whatever the wavelet (0: the wavelet's own, 0.5-0.6 "
                 "periods), at least one sample; the SNR is measured over the wavelet's either way")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  app.add_option("--velocity-scale", velocity_scale,
                 "range LO:HI of a factor on every velocity of the site (layers of 3.5, 5 and 6 km/s), drawn per "
                 "event (uniform), within 0.1:10; below 1 a slower site: later arrivals and steeper moveouts")
      ->capture_default_str();
  app.add_option("--depth", depth, "range LO:HI of the source depth in m, drawn per event (uniform), within 10:20000")
      ->capture_default_str();
  app.add_option("--lateral", lateral,
                 "range LO:HI of the source's position along the line, drawn per event (uniform): 0 at the first "
                 "receiver, 1 at the last, outside 0:1 beyond the ends; within -5:6")
      ->capture_default_str();
  app.add_option("--reversed-traces", reversed, "share of live traces recorded with reversed polarity (labelled)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--coherent-noise", coherent,
                 "probability per gather (with --continuous: of the record) of unlabelled coherent noise: 1-4 plane "
                 "waves of band-limited noise (3-60 Hz) crossing the line at 300-8000 m/s, no onset or end")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--bursts", bursts,
                 "unlabelled 10-60 ms bursts on 1-3 traces: probability per gather (default " +
                     num_str(defaults.bursts) + "), with --continuous a rate per minute (default " +
                     num_str(defaults.bursts_per_minute) + "); 0: none");
  app.add_option("--surface-waves", surface_waves,
                 "unlabelled ground roll (300-900 m/s, 3-12 Hz) from a source off the line: probability per gather "
                 "(default " +
                     num_str(defaults.surface_waves) + "), with --continuous a rate per minute (default " +
                     num_str(defaults.surface_waves_per_minute) + "); 0: none");
  app.add_option("--attenuation", attenuation,
                 "probability per event that its arrivals are attenuated by a causal constant-Q filter "
                 "(exp(-pi f t*), t* = traveltime / Q, minimum phase): broader, later pulses, picked at their first "
                 "break (causal wavelets) or envelope peak (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--q", q_range, "range LO:HI of Qp, drawn per attenuated event (log-uniform), 10 <= LO")
      ->capture_default_str();
  app.add_option("--qs-ratio", qs_ratio, "range LO:HI of Qs / Qp, drawn per attenuated event, in (0, 2]")
      ->capture_default_str();
  std::string noise_from;
  app.add_option("--noise-from", noise_from,
                 "background noise cut from recordings instead of drawn: continuous records (/data [T, W], dt equal to "
                 "the set's) as a comma list of files, directories, globs or @LIST; per gather a window of "
                 "--height rows and --width neighbouring receivers, clear of the events in a file's /events by 1 s, "
                 "scaled to the drawn SNR (the noise colour and correlation settings then do nothing; defects and "
                 "transients are added as set)");
  double noise_share = 1.0;
  app.add_option("--noise-from-share", noise_share,
                 "--noise-from: the probability per gather of recorded noise; the other gathers draw theirs")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0))
      ->needs("--noise-from");
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
  parse_wavelet_weights(wavelets, &sc);
  sc.damped_power_max = damped_powers;
  sc.pink_fraction = pink;
  sc.correlated_noise = correlated;
  sc.hum = hum;
  sc.coherent_noise = coherent;
  sc.polarity_flips = flips;
  sc.statics_ms = statics;
  sc.label_half_ms = label_half_ms;
  if (label_half_ms > 0 && label_half_ms < 1000 * sc.dt) {
    throw UsageError("--label-half-ms " + num_str(label_half_ms) + ": below one sample (" + num_str(1000 * sc.dt) +
                     " ms)");
  }
  sc.reversed_fraction = reversed;
  sc.q_fraction = attenuation;
  parse_range_within("--freq", freq_range, 1, 0.2 / sc.dt, " Hz (at least 5 samples per period)", &sc.freq_lo,
                     &sc.freq_hi);
  parse_range_within("--s-to-p", s_to_p, 0.1, 20, "", &sc.s_to_p_lo, &sc.s_to_p_hi);
  parse_range_within("--velocity-scale", velocity_scale, 0.1, 10, "", &sc.velocity_scale_lo, &sc.velocity_scale_hi);
  parse_range_within("--depth", depth, 10, 20000, " m", &sc.depth_lo, &sc.depth_hi);
  parse_range_within("--lateral", lateral, -5, 6, "", &sc.lateral_lo, &sc.lateral_hi);
  parse_range_within("--q", q_range, 10, 1e5, "", &sc.q_lo, &sc.q_hi);
  parse_range("--qs-ratio", qs_ratio, &sc.qs_ratio_lo, &sc.qs_ratio_hi);
  if (!(sc.qs_ratio_lo > 0 && sc.qs_ratio_hi <= 2)) {
    throw UsageError("--qs-ratio: '" + qs_ratio + "' must lie within (0, 2]");
  }
  // --bursts and --surface-waves: a rate per minute in a record, a probability per gather.
  for (const auto& [flag, value] :
       {std::make_pair("--bursts", bursts), std::make_pair("--surface-waves", surface_waves)}) {
    if (!given(flag)) continue;
    const double most = continuous ? 6000.0 : 1.0;
    if (!(value >= 0 && value <= most)) {
      throw UsageError(std::string(flag) + ": " + num_str(value) + " is not " +
                       (continuous ? "a rate per minute in [0, 6000]" : "a probability per gather in [0, 1]"));
    }
  }
  if (continuous) {
    if (given("--bursts")) sc.bursts_per_minute = bursts;
    if (given("--surface-waves")) sc.surface_waves_per_minute = surface_waves;
  } else {
    if (given("--bursts")) sc.bursts = bursts;
    if (given("--surface-waves")) sc.surface_waves = surface_waves;
  }

  if (continuous) {
    if (given("--noise-from")) throw UsageError("--noise-from is for gathers, not for --continuous records");
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
  if (given("--noise-from")) {
    sc.field_noise =
        std::make_shared<FieldNoise>(expand_dataset_paths(noise_from, "--noise-from"), sc.dt, height, width);
    sc.field_noise_share = noise_share;
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
