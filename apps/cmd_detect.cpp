// seisseg detect: events and picks on continuous records of any length (and on gathers), with the
// trained network in overlapping windows (models/windowed_inference.h) or with the classical
// STA/LTA and coincidence trigger (models/sta_lta.h). Streams: memory is a few windows of rows
// whatever the record's length; picks.csv, events.csv and the probabilities appear only complete.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "apps/detect_input.h"
#include "apps/detection_flags.h"
#include "apps/detection_run.h"
#include "apps/segy_columns.h"
#include "apps/segy_prob_writer.h"
#include "apps/weights.h"
#include "engine/device_runtime.h"
#include "engine/ops.h"
#include "io/dataset_paths.h"
#include "io/detection_csv.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"
#include "io/normalize.h"
#include "models/detection_score.h"
#include "models/picking.h"
#include "models/sta_lta.h"
#include "models/windowed_inference.h"

namespace seis {

namespace {

// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]" (UTC); false when it is not that.
bool parse_utc(const std::string& s, double* epoch) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, used = 0;
  double sec = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[T ]%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6) return false;
  const std::string tail = s.substr(static_cast<size_t>(used));
  if (!(tail.empty() || tail == "Z" || tail == "+00:00" || tail == "+0000")) return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || !(sec >= 0 && sec < 61)) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  *epoch = static_cast<double>(timegm(&tm)) + sec;
  return true;
}

std::string format_utc(double epoch) {
  const double whole = std::floor(epoch);
  long ms = std::lround((epoch - whole) * 1000.0);
  std::time_t t = static_cast<std::time_t>(whole);
  if (ms == 1000) {
    ms = 0;
    ++t;
  }
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

double peak_rss_gb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) * 1024.0 / 1e9;
}

}  // namespace

int cmd_detect(int argc, char** argv) {
  std::string weights, in, out, picks_path, prob_path, segy_out, method = "unet", normalize_s, device_s = "auto",
                                                                 precision = "fp32";
  int64_t segy_pick_byte = 0;
  DetectionSettings ds;
  int64_t batch = 4;
  CLI::App app{"seisseg detect: events and picks on continuous records (or gathers) of any length", "seisseg detect"};
  app.add_option("--weights", weights, "weights (safetensors) from seisseg train or demo (--method unet)");
  app.add_option("--in", in, "HDF5 file: one continuous record /data [T, W] or gathers /data [N, H, W]; dt, dx")
      ->required();
  app.add_option("--out", out, "events.csv: gather,event,time_ms,n_traces,score (then time_utc with start_time)")
      ->required();
  app.add_option("--picks", picks_path, "picks.csv: gather,trace,sample,time_ms,score (then time_utc)");
  app.add_option("--prob", prob_path, "probabilities to an HDF5 file: /prob f32 and /mask u8, shaped as /data");
  app.add_option("--segy-out", segy_out,
                 "gathers converted from SEG-Y: a SEG-Y copy with their headers and the probability as IEEE float "
                 "samples (as predict --segy-out)");
  app.add_option("--segy-pick-byte", segy_pick_byte,
                 "with --segy-out: each trace's first pick (ms, rounded; -1 for none) as a 4-byte integer at this "
                 "trace header byte (1-based)")
      ->check(CLI::Range(1, 237));
  app.add_option("--method", method, "unet (the trained network) or sta-lta (the classical detector)")
      ->capture_default_str()
      ->check(CLI::IsMember({"unet", "sta-lta"}));
  add_window_flags(app, ds, "the gather height the weights were trained on, else 1024");
  add_picking_flags(app, ds);
  double sta_s = 0, lta_s = 0, trigger_on = 0, trigger_off = 0, coincidence = 0;
  std::string tune_on;
  app.add_option("--sta", sta_s, "sta-lta: short window, s (default 0.02)")->check(CLI::PositiveNumber);
  app.add_option("--lta", lta_s, "sta-lta: long window, s (default 0.5)")->check(CLI::PositiveNumber);
  app.add_option("--trigger-on", trigger_on, "sta-lta: trigger when STA/LTA >= this (default 3.5)")
      ->check(CLI::PositiveNumber);
  app.add_option("--trigger-off", trigger_off, "sta-lta: release below this (default 1.5)")->check(CLI::PositiveNumber);
  app.add_option("--coincidence", coincidence, "sta-lta: traces triggered together for an event (default 3)")
      ->check(CLI::PositiveNumber);
  app.add_option("--tune-on", tune_on,
                 "choose thresholds for the best event F1 on the ground truth of these files, scored together "
                 "(comma list, directory, glob or list file, as train's --data; unet: --threshold and --min-traces, "
                 "then --pick-threshold for the best pick F1 within 10 ms and --pick-delay-ms; sta-lta: trigger "
                 "thresholds and coincidence); flags given explicitly win");
  app.add_option("--batch", batch, "windows per forward pass")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--normalize", normalize_s, "trace, sample or none (default: as the weights were trained)")
      ->check(CLI::IsMember(normalize_names()));
  app.add_option("--device", device_s, "auto, cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--precision", precision, kPrecisionHelp)
      ->capture_default_str()
      ->check(CLI::IsMember(precision_names()));
  app.footer(
      "--window defaults to the gather height the weights were trained on (1024 when not recorded); a record "
      "shorter than one window is an error. Windows overlap by --overlap, are normalised on their own, and are "
      "stacked by weight, blinded near shared edges.");
  if (!parse_cli(app, argc, argv)) return 0;
  const bool sta_set = sta_s > 0 || lta_s > 0 || trigger_on > 0 || trigger_off > 0 || coincidence > 0;
  if (method == "unet" && weights.empty()) throw UsageError("--weights is required with --method unet");
  if (segy_pick_byte > 0 && segy_out.empty()) throw UsageError("--segy-pick-byte needs --segy-out");
  // No output may overwrite a file the run reads.
  auto refuse_outputs_over = [&](const std::string& read, const char* what) {
    for (const std::string* o : {&out, &picks_path, &prob_path, &segy_out}) {
      std::error_code ec;
      if (!o->empty() && std::filesystem::equivalent(read, *o, ec)) throw UsageError(*o + " is " + what);
    }
  };
  refuse_outputs_over(in, "the input file");
  const std::vector<std::string> tune_files =
      tune_on.empty() ? std::vector<std::string>{} : expand_dataset_paths(tune_on, "--tune-on");
  for (const std::string& f : tune_files) refuse_outputs_over(f, "a file to tune on");
  const std::string tune_what = tune_files.size() == 1
                                    ? tune_files[0]
                                    : std::to_string(tune_files.size()) + " files (" + tune_on + "), scored together";
  DetectInput input(in);
  // (Checked before any tuning or network pass: the flags' mistakes fail at once.)
  if (!segy_out.empty() && method != "unet") throw UsageError("--segy-out is for --method unet");
  if (!segy_out.empty() && input.record()) {
    throw InputError(in +
                     ": a continuous record [T, W] has no SEG-Y headers for --segy-out; it needs gathers "
                     "converted from SEG-Y with seisseg convert");
  }
  const int64_t T = input.rows(), W = input.width();
  const double dt = input.dt();
  double start_epoch = 0;
  const bool utc = !input.start_time().empty() && input.record();
  if (utc && !parse_utc(input.start_time(), &start_epoch)) {
    throw InputError(in + ": start_time '" + input.start_time() + "' is not ISO-8601 UTC (YYYY-MM-DDTHH:MM:SS[.f]Z)");
  }

  std::unique_ptr<InferenceWeights> iw;
  std::unique_ptr<WindowedInference> inference;
  const Device device = parse_device(device_s);
  StaLtaOptions sta = sta_lta_defaults(dt);
  if (method == "unet") {
    if (sta_set) throw UsageError("the STA/LTA flags are for --method sta-lta");
    iw = std::make_unique<InferenceWeights>(load_inference_weights(weights, device));
    ExecConfig exec;
    exec.math = parse_precision(precision);
    iw->model->set_exec(exec);
    if (device.is_cuda()) cuda_set_device(device.index);
    WindowOptions wo;
    wo.rows = ds.window > 0 ? ds.window : iw->trained_height > 0 ? iw->trained_height : 1024;
    wo.cols = ds.window_receivers;
    wo.overlap = ds.overlap;
    wo.batch = batch;
    wo.normalize = parse_normalize(!normalize_s.empty() ? normalize_s : iw->normalize_or("trace"));
    if (input.record() && T < wo.rows) {
      throw InputError(in + ": the record has " + std::to_string(T) + " samples, shorter than one window of " +
                       std::to_string(wo.rows) + " (--window)");
    }
    inference = std::make_unique<WindowedInference>(*iw->model, wo);
    if (!tune_on.empty()) {
      std::fprintf(stderr,
                   "detect: choosing the network's --threshold, --min-traces, --pick-threshold and --pick-delay-ms on "
                   "%s\n",
                   tune_what.c_str());
      TunedFlags given;  // explicit flags win: the grid holds them fixed
      given.threshold = app.get_option("--threshold")->count() > 0;
      given.min_traces = app.get_option("--min-traces")->count() > 0;
      given.pick_threshold = app.get_option("--pick-threshold")->count() > 0;
      given.pick_delay = app.get_option("--pick-delay-ms")->count() > 0;
      ds = tune_unet_detector(tune_files, *inference, ds, ScoreOptions{}, nullptr, int64_t{2} << 30, given);
      std::fprintf(stderr, "detect: --threshold %g --min-traces %lld --pick-threshold %g --pick-delay-ms %g\n",
                   static_cast<double>(ds.threshold), static_cast<long long>(ds.min_traces),
                   static_cast<double>(ds.pick_threshold > 0 ? ds.pick_threshold : ds.threshold), ds.pick_delay_ms);
    }
  } else {
    if (!prob_path.empty()) throw UsageError("--prob is for --method unet");
    if (ds.fill_moveout) throw UsageError("--fill-moveout is for --method unet");
    if (sta_s > 0) sta.nsta = std::max<int64_t>(1, std::llround(sta_s / dt));
    if (lta_s > 0) sta.nlta = std::max<int64_t>(sta.nsta + 1, std::llround(lta_s / dt));
    if (T < sta.nlta) {
      throw InputError(in + ": " + std::to_string(T) + " samples are shorter than the LTA window of " +
                       std::to_string(sta.nlta) + " (--lta)");
    }
    if (!tune_on.empty()) {
      std::fprintf(stderr, "detect: choosing STA/LTA thresholds on %s\n", tune_what.c_str());
      sta = tune_sta_lta(tune_files, sta, dt, ds.event_gap_ms, ScoreOptions{});
    }
    if (trigger_on > 0) sta.thr_on = trigger_on;
    if (trigger_off > 0) sta.thr_off = trigger_off;
    if (coincidence > 0) sta.coincidence_sum = coincidence;
  }
  const bool scored = has_ground_truth(in);
  // (Read before any output is written: damaged ground truth fails the run with nothing written.)
  std::optional<GroundTruth> truth;
  if (scored) truth = read_ground_truth(in);

  std::vector<std::string> extra;
  if (utc) extra.push_back("time_utc");
  // A gathers file converted from SEG-Y: the trace identity follows (padding traces give no picks:
  // detection_run.h).
  const bool identity = input.segy() != nullptr && input.segy()->has_table();
  std::vector<std::string> pick_extra = extra, event_extra = extra;
  if (identity) {
    for (const std::string& c : segy_pick_columns()) pick_extra.push_back(c);
    for (const std::string& c : segy_event_columns()) event_extra.push_back(c);
  }
  if (ds.fill_moveout) pick_extra.push_back("filled");
  EventsCsvWriter events_csv(out, event_extra);
  std::unique_ptr<PicksCsvWriter> picks_csv;
  if (!picks_path.empty()) picks_csv = std::make_unique<PicksCsvWriter>(picks_path, pick_extra);
  // The probabilities as SEG-Y: a gathers file with the raw headers of its SEG-Y (a record has none).
  std::unique_ptr<SegyProbWriter> segy_writer;
  if (!segy_out.empty()) {
    segy_writer = std::make_unique<SegyProbWriter>(segy_out, in, *input.segy(), T, segy_pick_byte);
  }
  std::vector<float> segy_prob(segy_writer ? static_cast<size_t>(T * W) : 0);
  std::vector<Pick> segy_picks;
  std::unique_ptr<H5SampleWriter> prob_out;
  const int64_t chunk_rows =
      input.record() ? std::max<int64_t>(1, std::min<int64_t>({T, 4096, (int64_t{32} << 20) / (4 * W)})) : T;
  if (!prob_path.empty()) {
    H5SampleWriter::Options po;
    po.record = input.record();
    po.n = input.gathers();
    po.height = T;
    po.width = W;
    po.record_chunk_rows = chunk_rows;
    po.dt = dt;
    po.dx = input.dx();
    po.data_name = "prob";
    po.label_name = "mask";
    prob_out = std::make_unique<H5SampleWriter>(prob_path, po);
    prob_out->set_attribute("source", in);
    prob_out->set_attribute("weights", weights);
    prob_out->set_attribute("threshold", static_cast<double>(ds.threshold));
    if (!input.start_time().empty()) prob_out->set_attribute("start_time", input.start_time());
  }

  DetectionResult kept;  // for the scores, when the input has ground truth
  int64_t n_picks = 0, n_events = 0, n_filled = 0;
  DetectionCallbacks cb;
  cb.found = [&](const std::vector<Pick>& picks, const std::vector<Detection>& events) {
    if (segy_writer) segy_picks.insert(segy_picks.end(), picks.begin(), picks.end());
    for (const Pick& p : picks) {
      if (!picks_csv) break;
      std::vector<std::string> values;
      if (utc) values.push_back(format_utc(start_epoch + p.time_ms / 1000.0));
      if (identity) {
        const SegyHeaderRow* r = input.segy()->row(p.trace);
        if (r == nullptr) continue;  // a padding trace (STA/LTA never triggers on its zeros)
        for (std::string& v : segy_pick_values(*r)) values.push_back(std::move(v));
      }
      if (ds.fill_moveout) values.push_back(p.filled ? "1" : "0");
      picks_csv->write(p, values);
    }
    for (const Detection& d : events) {
      std::vector<std::string> values;
      if (utc) values.push_back(format_utc(start_epoch + d.time_ms / 1000.0));
      if (identity) values.push_back(segy_gather_ffid(*input.segy(), W));
      events_csv.write(d, values);
    }
    n_picks += static_cast<int64_t>(picks.size());
    for (const Pick& p : picks) n_filled += p.filled ? 1 : 0;
    n_events += static_cast<int64_t>(events.size());
    if (scored) {
      kept.picks.insert(kept.picks.end(), picks.begin(), picks.end());
      kept.events.insert(kept.events.end(), events.begin(), events.end());
    }
  };

  if (segy_writer) {
    // A gather's probabilities are kept until its last picks are in, then written trace by trace.
    cb.gather_end = [&](int64_t) {
      segy_writer->write_gather(segy_prob.data(), W, segy_picks);
      segy_picks.clear();
    };
  }

  // Probabilities to --prob in whole chunks of rows (a record) or whole gathers.
  std::vector<float> chunk_p(prob_out ? static_cast<size_t>(chunk_rows * W) : 0);
  std::vector<uint8_t> chunk_m(chunk_p.size());
  int64_t chunk_t0 = 0, chunk_fill = 0;
  if (prob_out || segy_writer) {
    cb.prob = [&](int64_t g, int64_t t0, int64_t rows, const float* p) {
      if (segy_writer) std::memcpy(segy_prob.data() + t0 * W, p, static_cast<size_t>(rows * W) * sizeof(float));
      if (!prob_out) return;
      if (t0 == 0) chunk_t0 = chunk_fill = 0;
      int64_t done = 0;
      while (done < rows) {
        const int64_t take = std::min(rows - done, chunk_rows - chunk_fill);
        std::memcpy(chunk_p.data() + chunk_fill * W, p + done * W, static_cast<size_t>(take * W) * sizeof(float));
        for (int64_t k = 0; k < take * W; ++k) {
          chunk_m[static_cast<size_t>(chunk_fill * W + k)] = p[done * W + k] >= ds.threshold ? 1 : 0;
        }
        chunk_fill += take;
        done += take;
        if (chunk_fill == chunk_rows || t0 + done == T) {
          if (input.record()) {
            prob_out->write_rows(chunk_t0, chunk_fill, chunk_p.data(), chunk_m.data());
          } else {
            prob_out->write(g, chunk_p.data(), chunk_m.data());
          }
          chunk_t0 += chunk_fill;
          chunk_fill = 0;
        }
      }
    };
  }

  const auto t_start = std::chrono::steady_clock::now();
  auto last_report = t_start;
  const int64_t total_rows = T * input.gathers();
  auto report = [&](int64_t rows_done, bool final) {
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_report < std::chrono::seconds(1)) return;
    last_report = now;
    const double sec = std::chrono::duration<double>(now - t_start).count();
    const double rate = static_cast<double>(rows_done) / std::max(1e-9, sec);
    std::fprintf(stderr, "detect: %5.1f%%  %lld/%lld samples  %.0f samples/s  x%.1f real time  ETA %s\n",
                 100.0 * static_cast<double>(rows_done) / static_cast<double>(total_rows),
                 static_cast<long long>(rows_done), static_cast<long long>(total_rows), rate, rate * dt,
                 format_duration(static_cast<double>(total_rows - rows_done) / std::max(rate, 1e-9)).c_str());
  };
  cb.progress = [&](int64_t done) { report(done, false); };

  if (method == "unet") {
    detect_unet(input, *inference, picker_options(ds, dt), association_options(ds, input.dx(), W, in), cb,
                fill_options(ds));
  } else {
    detect_sta_lta(input, sta, ds.event_gap_ms, cb);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  report(total_rows, true);
  if (prob_out) prob_out->commit();
  if (segy_writer) segy_writer->commit();
  if (picks_csv) picks_csv->commit();
  events_csv.commit();

  const double span_s = static_cast<double>(total_rows) * dt;
  std::printf(
      "seisseg detect (%s): %s of %lld receivers (%.1f s of data) in %.1f s, x%.1f real time, peak RSS %.2f GB\n",
      method.c_str(), input.record() ? "a record" : (std::to_string(input.gathers()) + " gathers").c_str(),
      static_cast<long long>(W), span_s, seconds, span_s / std::max(seconds, 1e-9), peak_rss_gb());
  std::printf("%lld events -> %s%s%s\n", static_cast<long long>(n_events), out.c_str(),
              picks_csv ? (", " + std::to_string(n_picks) + " picks -> ").c_str() : "",
              picks_csv ? picks_path.c_str() : "");
  if (ds.fill_moveout) {
    std::printf("%lld of the picks filled along the events' moveouts (score 0, filled 1)\n",
                static_cast<long long>(n_filled));
  }
  if (segy_writer) {
    std::printf("%lld traces with their SEG-Y headers -> %s (IEEE float, %s)\n",
                static_cast<long long>(segy_writer->traces()), segy_out.c_str(),
                input.segy()->big_endian() ? "big-endian" : "little-endian");
  }
  if (method == "sta-lta") {
    std::printf("STA/LTA: STA %lld, LTA %lld samples, trigger on %g off %g, coincidence %g traces\n",
                static_cast<long long>(sta.nsta), static_cast<long long>(sta.nlta), sta.thr_on, sta.thr_off,
                sta.coincidence_sum);
  }
  if (scored) {
    const EventScore es = score_events(*truth, kept.events, ScoreOptions{});
    const PickScore ps = score_picks(*truth, kept.picks, ScoreOptions{});
    std::printf(
        "against %s's ground truth: event F1 %.3f (precision %.3f, recall %.3f, %.1f false per hour); "
        "picks within 10 ms %.3f (P %.3f), MAE %.2f ms\n",
        in.c_str(), es.f1(), es.precision(), es.recall(), es.false_per_hour(), ps.hit10(), ps.p_hit10(), ps.mae_ms);
  }
  return 0;
}

}  // namespace seis
