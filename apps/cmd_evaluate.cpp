// seisseg evaluate: picks.csv and events.csv scored against a file's ground truth, in the analyst's
// units (models/detection_score.h): event precision, recall, F1, false detections per hour and
// recall by SNR; pick hit rates within ±10 and ±20 ms, mean error, MAE and RMS in ms.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/cli.h"
#include "apps/commands.h"
#include "io/detection_csv.h"
#include "io/ground_truth.h"
#include "models/detection_score.h"

namespace seis {

namespace {

// Rows of a CSV must lie inside the truth's shape. Row k is line k + 2 (the readers allow no empty
// line before the last row).
void check_gather(const std::string& csv, size_t row, int64_t gather, const std::string& truth_path,
                  const GroundTruth& truth) {
  if (gather < truth.gathers) return;
  throw InputError(csv + " line " + std::to_string(row + 2) + ": gather " + std::to_string(gather) + " is beyond " +
                   truth_path + "'s " + std::to_string(truth.gathers) +
                   (truth.record ? " gather (a continuous record is gather 0)" : " gathers"));
}

std::string snr_edge(double v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

void print_events(const EventScore& s) {
  std::printf("events: %lld true", static_cast<long long>(s.events));
  if (s.events_without_arrivals > 0) {
    std::printf(" (and %lld without arrivals in the window, not scored)",
                static_cast<long long>(s.events_without_arrivals));
  }
  std::printf(", %lld detections: %lld matched, %lld false\n", static_cast<long long>(s.detections),
              static_cast<long long>(s.matched_detections), static_cast<long long>(s.false_detections()));
  std::printf("  precision %.3f  recall %.3f  F1 %.3f  false detections per hour %.1f\n", s.precision(), s.recall(),
              s.f1(), s.false_per_hour());
  if (s.by_snr.empty()) return;
  std::printf("  recall by SNR (dB)   events  matched  recall\n");
  for (const SnrBin& b : s.by_snr) {
    const std::string bin = "[" + snr_edge(b.lo_db) + ", " + snr_edge(b.hi_db) + ")";
    std::printf("    %-16s %8lld %8lld   %.3f\n", bin.c_str(), static_cast<long long>(b.events),
                static_cast<long long>(b.matched), b.recall());
  }
}

void print_picks(const PickScore& s, double tolerance_ms) {
  std::printf("picks: %lld true arrivals (%lld P), %lld picks (%lld with no arrival within ±%g ms)\n",
              static_cast<long long>(s.arrivals), static_cast<long long>(s.p_arrivals), static_cast<long long>(s.picks),
              static_cast<long long>(s.unmatched_picks), tolerance_ms);
  std::printf("  hit rate  ±10 ms %.3f (P %.3f)  ±20 ms %.3f (P %.3f)\n", s.hit10(), s.p_hit10(), s.hit20(),
              s.p_hit20());
  std::printf(
      "  error over the %lld arrivals picked within ±%g ms: mean %+.3f ms, median %+.3f ms, MAE %.3f ms, RMS %.3f ms\n",
      static_cast<long long>(s.hits), tolerance_ms, s.mean_ms, s.median_ms, s.mae_ms, s.rms_ms);
}

}  // namespace

int cmd_evaluate(int argc, char** argv) {
  std::string truth_path, picks_path, events_path;
  double tolerance_ms = 50;
  bool as_json = false;
  CLI::App app{
      "seisseg evaluate: score picks.csv / events.csv against a file's ground truth (/picks, /events): event "
      "precision, recall, F1, false detections per hour, recall by SNR; pick hit rate within ±10/±20 ms, mean "
      "error, MAE and RMS in ms",
      "seisseg evaluate"};
  app.add_option("--truth", truth_path, "HDF5 file with ground truth (seisseg synth writes one)")->required();
  app.add_option("--picks", picks_path, "picks.csv (gather,trace,sample,time_ms,score)");
  app.add_option("--events", events_path, "events.csv (gather,event,time_ms,n_traces,score)");
  app.add_option("--tolerance-ms", tolerance_ms,
                 "an event is found by a detection within [first arrival - tol, last arrival + tol]; picks within "
                 "±tol count in the error statistics")
      ->capture_default_str();
  app.add_flag("--json", as_json, "one JSON object instead of text");
  if (!parse_cli(app, argc, argv)) return 0;
  if (picks_path.empty() && events_path.empty()) {
    throw UsageError("give --picks picks.csv, --events events.csv or both");
  }
  if (!std::isfinite(tolerance_ms) || tolerance_ms < 0 || tolerance_ms > 1e9) {
    throw UsageError("--tolerance-ms: " + std::to_string(tolerance_ms) + " is not a number of ms in [0, 1e9]");
  }

  // Everything is read and checked before anything is printed.
  const GroundTruth truth = read_ground_truth(truth_path);
  std::vector<Detection> detections;
  std::vector<Pick> picks;
  if (!events_path.empty()) {
    detections = read_events_csv(events_path);
    for (size_t k = 0; k < detections.size(); ++k) {
      check_gather(events_path, k, detections[k].gather, truth_path, truth);
    }
  }
  if (!picks_path.empty()) {
    picks = read_picks_csv(picks_path);
    for (size_t k = 0; k < picks.size(); ++k) {
      check_gather(picks_path, k, picks[k].gather, truth_path, truth);
      if (picks[k].trace >= truth.width) {
        throw InputError(picks_path + " line " + std::to_string(k + 2) + ": trace " + std::to_string(picks[k].trace) +
                         " is beyond " + truth_path + "'s " + std::to_string(truth.width) + " traces");
      }
    }
  }

  ScoreOptions options;
  options.tolerance_ms = tolerance_ms;
  nlohmann::json j;
  j["truth"] = truth_path;
  j["tolerance_ms"] = tolerance_ms;
  j["events"] = nullptr;
  j["picks"] = nullptr;
  if (!as_json) {
    const std::string shape = truth.record
                                  ? "a continuous record of " + std::to_string(truth.samples) + " samples x " +
                                        std::to_string(truth.width) + " receivers"
                                  : std::to_string(truth.gathers) + " gathers of " + std::to_string(truth.samples) +
                                        " samples x " + std::to_string(truth.width) + " traces";
    std::printf("truth: %s: %s at dt %g ms (%.3f s); tolerance ±%g ms\n", truth_path.c_str(), shape.c_str(),
                truth.dt * 1000.0, truth.duration_s, tolerance_ms);
  }
  if (!events_path.empty()) {
    const EventScore s = score_events(truth, detections, options);
    if (as_json) {
      j["events"] = to_json(s);
    } else {
      print_events(s);
    }
  }
  if (!picks_path.empty()) {
    const PickScore s = score_picks(truth, picks, options);
    if (as_json) {
      j["picks"] = to_json(s);
    } else {
      print_picks(s, tolerance_ms);
    }
  }
  if (as_json) std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace seis
