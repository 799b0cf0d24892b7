// seisseg evaluate, run as the built binary on files from seisseg synth: picks made from the truth
// shifted by +5 ms score hit10 = 1 and an error of exactly what a brute-force nearest pick gives;
// one detection at each event's first arrival scores F1 = 1, a second one at its last arrival halves
// the precision and gives the expected false detections per hour; the same on a continuous record;
// bad inputs are one line and the documented exit code.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/detection_csv.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"

namespace seis {
namespace {

using test::CliResult;
CliResult run(const std::string& args) { return test::run_seisseg(args); }

std::string dir() {
  static const std::string d = test::process_dir("evaluate_cli");
  return d;
}

// picks.csv: every true arrival shifted by shift_ms.
void write_shifted_picks(const GroundTruth& t, const std::string& path, double shift_ms) {
  PicksCsvWriter w(path, {"note"});
  for (const SynthPickRow& a : t.picks) {
    Pick p;
    p.gather = a.gather;
    p.trace = a.trace;
    p.time_ms = a.time_s * 1000 + shift_ms;
    p.sample = p.time_ms / 1000 / t.dt;
    p.score = 0.9f;
    w.write(p, {"x"});
  }
  w.commit();
}

// events.csv: one detection at each event's first arrival and, with `twice`, one at its last.
int64_t write_event_detections(const GroundTruth& t, const std::string& path, bool twice) {
  EventsCsvWriter w(path);
  int64_t n = 0;
  for (const SynthEventRow& e : t.events) {
    if (std::isnan(e.first_arrival_s)) continue;
    Detection d;
    d.gather = e.gather;
    d.event = n;
    d.time_ms = e.first_arrival_s * 1000;
    d.n_traces = 10;
    d.score = 1;
    w.write(d);
    if (twice) {
      d.time_ms = e.last_arrival_s * 1000;
      w.write(d);
    }
    ++n;
  }
  w.commit();
  return n;
}

// The MAE of picks shifted by shift_ms, by brute force: the nearest shifted arrival of the same trace.
double brute_force_mae(const GroundTruth& t, double shift_ms) {
  double sum = 0;
  for (const SynthPickRow& a : t.picks) {
    double best = std::numeric_limits<double>::infinity();
    for (const SynthPickRow& b : t.picks) {
      if (b.gather == a.gather && b.trace == a.trace) {
        best = std::min(best, std::fabs(b.time_s * 1000 + shift_ms - a.time_s * 1000));
      }
    }
    sum += best;
  }
  return sum / static_cast<double>(t.picks.size());
}

nlohmann::json evaluate_json(const std::string& args) {
  const CliResult r = run("evaluate " + args + " --json");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::count_lines(r.out), 1) << r.out;
  return nlohmann::json::parse(r.out);
}

void check_scores(const std::string& truth_path, const std::string& tag) {
  const GroundTruth t = read_ground_truth(truth_path);
  ASSERT_GT(t.picks.size(), 0u);
  const std::string picks = dir() + "/" + tag + "_picks.csv", events = dir() + "/" + tag + "_events.csv",
                    events2 = dir() + "/" + tag + "_events2.csv";
  write_shifted_picks(t, picks, 5);
  const int64_t n = write_event_detections(t, events, false);
  write_event_detections(t, events2, true);
  ASSERT_GT(n, 0);

  nlohmann::json j = evaluate_json("--truth " + truth_path + " --picks " + picks + " --events " + events);
  EXPECT_EQ(j["tolerance_ms"].get<double>(), 50);
  const nlohmann::json& p = j["picks"];
  EXPECT_EQ(p["arrivals"].get<int64_t>(), static_cast<int64_t>(t.picks.size()));
  EXPECT_EQ(p["hit10"].get<double>(), 1.0);
  EXPECT_EQ(p["p_hit10"].get<double>(), 1.0);
  EXPECT_EQ(p["hit20"].get<double>(), 1.0);
  EXPECT_NEAR(p["mae_ms"].get<double>(), brute_force_mae(t, 5), 1e-3);
  EXPECT_LE(p["mae_ms"].get<double>(), 5 + 1e-3);
  EXPECT_GT(p["mae_ms"].get<double>(), 4);
  EXPECT_EQ(p["unmatched_picks"].get<int64_t>(), 0);
  const nlohmann::json& e = j["events"];
  EXPECT_EQ(e["events"].get<int64_t>(), n);
  EXPECT_EQ(e["matched_events"].get<int64_t>(), n);
  EXPECT_EQ(e["f1"].get<double>(), 1.0);
  EXPECT_EQ(e["false_per_hour"].get<double>(), 0.0);
  EXPECT_EQ(e["events_without_arrivals"].get<int64_t>(), t.events_without_arrivals);
  EXPECT_NEAR(e["hours"].get<double>(), t.duration_s / 3600, 1e-12);

  // A second detection per event: precision 1/2, n false detections over the file's duration.
  j = evaluate_json("--truth " + truth_path + " --events " + events2 + " --tolerance-ms 20");
  EXPECT_TRUE(j["picks"].is_null());
  EXPECT_EQ(j["events"]["precision"].get<double>(), 0.5);
  EXPECT_EQ(j["events"]["recall"].get<double>(), 1.0);
  EXPECT_NEAR(j["events"]["false_per_hour"].get<double>(), static_cast<double>(n) / (t.duration_s / 3600), 1e-6);

  // The text form: the figures on a few lines.
  const CliResult r = run("evaluate --truth " + truth_path + " --picks " + picks + " --events " + events);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("F1 1.000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("±10 ms 1.000 (P 1.000)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("recall by SNR"), std::string::npos) << r.out;
}

TEST(EvaluateCli, GathersFileScoresShiftedPicksAndDetections) {
  const std::string truth = dir() + "/gathers.h5";
  const CliResult s = run("synth --out " + truth + " --samples 4 --height 256 --width 64 --seed 3 --threads 1");
  ASSERT_EQ(s.code, 0) << s.err;
  const GroundTruth t = read_ground_truth(truth);
  EXPECT_EQ(t.gathers, 4);
  EXPECT_EQ(t.samples, 256);
  EXPECT_EQ(t.width, 64);
  EXPECT_FALSE(t.record);
  EXPECT_NEAR(t.duration_s, 4 * 256 * t.dt, 1e-12);
  check_scores(truth, "gathers");
}

TEST(EvaluateCli, ContinuousRecordScores) {
  const std::string truth = dir() + "/record.h5";
  const CliResult s =
      run("synth --out " + truth + " --continuous --duration 60 --receivers 32 --events-per-minute 10 --seed 4");
  ASSERT_EQ(s.code, 0) << s.err;
  const GroundTruth t = read_ground_truth(truth);
  EXPECT_TRUE(t.record);
  EXPECT_EQ(t.gathers, 1);
  EXPECT_EQ(t.width, 32);
  EXPECT_NEAR(t.duration_s, 60, 0.01);
  check_scores(truth, "record");
}

TEST(EvaluateCli, BadInputsAreOneLineWithTheirExitCode) {
  const std::string truth = dir() + "/small.h5";
  ASSERT_EQ(run("synth --out " + truth + " --samples 2 --height 64 --width 16 --seed 1").code, 0);

  EXPECT_EQ(run("evaluate --help").code, 0);
  // No --picks or --events: a usage error.
  CliResult r = run("evaluate --truth " + truth);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  r = run("evaluate --truth " + truth + " --events x.csv --tolerance-ms nan");
  EXPECT_EQ(r.code, 2) << r.err;

  // A malformed CSV: exit 1, one line naming the file and line.
  const std::string bad = dir() + "/bad_events.csv";
  std::ofstream(bad) << "gather,event,time_ms,n_traces,score\n0,0,12.5,4,0.5\n0,1,abc,4,0.5\n";
  r = run("evaluate --truth " + truth + " --events " + bad);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("bad_events.csv line 3"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << "nothing printed before the error: " << r.out;

  // A gather beyond the truth's gathers, a trace beyond its width.
  const std::string far = dir() + "/far_picks.csv";
  std::ofstream(far) << "gather,trace,sample,time_ms,score\n0,0,1,2,0.5\n12,0,1,2,0.5\n";
  r = run("evaluate --truth " + truth + " --picks " + far);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("far_picks.csv line 3: gather 12 is beyond " + truth + "'s 2 gathers"), std::string::npos)
      << r.err;
  const std::string wide = dir() + "/wide_picks.csv";
  std::ofstream(wide) << "gather,trace,sample,time_ms,score\n1,16,1,2,0.5\n";
  r = run("evaluate --truth " + truth + " --picks " + wide);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("wide_picks.csv line 2: trace 16 is beyond"), std::string::npos) << r.err;

  // A file without ground truth; one without dt.
  auto plain_file = [](const std::string& path, double dt) {
    H5SampleWriter::Options o;
    o.n = 1;
    o.height = 8;
    o.width = 8;
    o.dt = dt;
    H5SampleWriter w(path, o);
    std::vector<float> data(64, 0.f);
    std::vector<uint8_t> label(64, 0);
    w.write(0, data.data(), label.data());
    w.commit();
  };
  const std::string plain = dir() + "/plain.h5", no_dt = dir() + "/no_dt.h5";
  plain_file(plain, 0.002);
  plain_file(no_dt, 0);
  const std::string ok = dir() + "/ok_picks.csv";
  std::ofstream(ok) << "gather,trace,sample,time_ms,score\n0,0,1,2,0.5\n";
  r = run("evaluate --truth " + plain + " --picks " + ok);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(plain + ": no /picks table"), std::string::npos) << r.err;
  r = run("evaluate --truth " + no_dt + " --picks " + ok);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(no_dt + ": no positive dt"), std::string::npos) << r.err;

  // A missing truth file names it.
  r = run("evaluate --truth " + dir() + "/missing.h5 --picks " + ok);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("missing.h5"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace seis
