// seisseg detect and predict's picks through the program: a continuous record in windows (the
// probabilities cover every row, the CSV contracts hold, the UTC column), STA/LTA with thresholds
// tuned on another record scored by evaluate, gathers of a size the network does not divide, and
// the bad inputs: each one line, a non-zero exit and nothing left behind.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "apps/detection_run.h"
#include "apps/weights.h"
#include "cli_util.h"
#include "engine/error.h"
#include "h5_util.h"
#include "io/detection_csv.h"
#include "io/ground_truth.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "models/unet.h"

namespace seis {
namespace {

namespace fs = std::filesystem;
using test::lines_of;
using test::read_all;
using test::run_seisseg;

class DetectCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::process_dir("detect_cli");
    // An untrained 3-level network that says it was trained on 64x32 gathers: detect's default window.
    UNetConfig c;
    c.levels = 3;
    c.base = 2;
    UNet(c, 4, Device::cpu())
        .save(dir_ + "/w.safetensors", {{"seisseg.normalize", "trace"}, {"seisseg.gather", "64x32"}});
    // Quiet records: no unlabelled transients (hum, bursts, ground roll) or coherent noise, which
    // STA/LTA would trigger on.
    const std::string rec =
        "synth --continuous --duration 60 --receivers 24 --events-per-minute 8 --hum 0 --bursts 0 --surface-waves 0 "
        "--coherent-noise 0 --out ";
    ASSERT_EQ(run_seisseg(rec + dir_ + "/rec.h5 --seed 3").code, 0);
    ASSERT_EQ(run_seisseg(rec + dir_ + "/val.h5 --seed 9").code, 0);
  }
  static std::string dir_;
};
std::string DetectCli::dir_;

TEST_F(DetectCli, NetworkOverARecordWritesEveryRowAndTheCsvContracts) {
  const std::string out = dir_ + "/unet";
  fs::create_directories(out);
  const test::CliResult r =
      run_seisseg("detect --weights " + dir_ + "/w.safetensors --in " + dir_ + "/rec.h5 --out " + out +
                  "/events.csv --picks " + out + "/picks.csv --prob " + out + "/prob.h5 --threshold 0.3 --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("x"), std::string::npos);
  EXPECT_NE(r.out.find("against"), std::string::npos) << "a synthetic record has ground truth: scores are printed";
  EXPECT_NE(r.err.find("real time"), std::string::npos) << "progress names the speed in real time";
  EXPECT_EQ(lines_of(out + "/events.csv").at(0), "gather,event,time_ms,n_traces,score");
  EXPECT_EQ(lines_of(out + "/picks.csv").at(0), "gather,trace,sample,time_ms,score");
  const std::vector<Pick> picks = read_picks_csv(out + "/picks.csv");
  for (const Pick& p : picks) {
    EXPECT_EQ(p.gather, 0);
    EXPECT_NEAR(p.time_ms, p.sample * 2.0, 1e-3 + 1e-9 * p.time_ms);  // dt = 2 ms
    EXPECT_GE(p.score, 0.3f);
  }
  (void)read_events_csv(out + "/events.csv");
  // /prob [T, W] holds a probability in every row: nothing was left out between windows.
  const int64_t T = H5RecordFile(dir_ + "/rec.h5").info().samples;
  std::vector<hsize_t> dims;
  const std::vector<float> p = read_all<float>(out + "/prob.h5", "prob", H5T_NATIVE_FLOAT, &dims);
  ASSERT_EQ(dims, (std::vector<hsize_t>{static_cast<hsize_t>(T), 24}));
  const std::vector<uint8_t> m = read_all<uint8_t>(out + "/prob.h5", "mask", H5T_NATIVE_UCHAR, &dims);
  ASSERT_EQ(m.size(), p.size());
  for (size_t k = 0; k < p.size(); ++k) {
    ASSERT_TRUE(p[k] > 0.0f && p[k] < 1.0f) << "row " << k / 24;
    ASSERT_EQ(m[k], p[k] >= 0.3f ? 1 : 0);
  }
  EXPECT_FALSE(fs::exists(out + "/prob.h5.tmp"));
  EXPECT_FALSE(fs::exists(out + "/events.csv.tmp"));
}

TEST_F(DetectCli, StaLtaTunedOnOneRecordFindsTheEventsOfAnother) {
  const std::string out = dir_ + "/stalta";
  fs::create_directories(out);
  const test::CliResult r = run_seisseg("detect --method sta-lta --tune-on " + dir_ + "/val.h5 --in " + dir_ +
                                        "/rec.h5 --out " + out + "/events.csv --picks " + out + "/picks.csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const test::CliResult e = run_seisseg("evaluate --truth " + dir_ + "/rec.h5 --events " + out +
                                        "/events.csv --picks " + out + "/picks.csv --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const nlohmann::json j = nlohmann::json::parse(e.out);
  EXPECT_GE(j["events"]["events"].get<int64_t>(), 4);
  // Synthetic events at 0 to 10 dB on a quiet record: the classical detector finds them.
  EXPECT_GE(j["events"]["f1"].get<double>(), 0.8) << e.out;
}

TEST_F(DetectCli, NetworkThresholdsTunedOnOneRecordAreTheBestOfTheGrid) {
  UNetConfig c;
  c.levels = 3;
  c.base = 2;
  const UNet model(c, 4, Device::cpu());
  WindowOptions wo;
  wo.rows = 256;  // few windows: the test is about the choice, not the windows
  const WindowedInference inference(model, wo);
  nlohmann::json table = nlohmann::json::array();
  const DetectionSettings chosen =
      tune_unet_detector({dir_ + "/val.h5"}, inference, DetectionSettings{}, ScoreOptions{}, &table);
  // 7 thresholds x the trace counts up to the 24 receivers (2 3 4 6 8 12 16 24, and W/8 = 3, W/4 = 6,
  // W/2 = 12 already among them), then the pick thresholds from the chosen one down to 0.1, each
  // with its picker's delay.
  nlohmann::json events_table = nlohmann::json::array(), picks_table = nlohmann::json::array();
  for (const auto& row : table) (row.contains("pick_threshold") ? picks_table : events_table).push_back(row);
  ASSERT_EQ(events_table.size(), 7u * 8u);
  size_t below = 0;
  for (float p : {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.25f, 0.2f, 0.15f, 0.1f}) below += p < chosen.threshold;
  ASSERT_EQ(picks_table.size(), 1 + below);
  EXPECT_EQ(picks_table[0]["pick_threshold"].get<float>(), chosen.threshold);
  double best = -1, best_pick_f1 = -1, best_delay = 0;
  float best_pick = 0;  // the first of the best (ties: the higher threshold)
  for (const auto& row : events_table) best = std::max(best, row["f1"].get<double>());
  const double events_at_threshold = picks_table[0]["event_f1"].get<double>();
  for (const auto& row : picks_table) {
    if (row["pick_f1_10ms"].get<double>() > best_pick_f1 && row["event_f1"].get<double>() >= events_at_threshold) {
      best_pick_f1 = row["pick_f1_10ms"].get<double>();
      best_pick = row["pick_threshold"].get<float>();
      best_delay = row["pick_delay_ms"].get<double>();
    }
  }
  EXPECT_EQ(chosen.pick_threshold, best_pick < chosen.threshold ? best_pick : 0.0f);
  EXPECT_EQ(chosen.pick_delay_ms, best_delay);
  // The chosen event settings, run through the streaming detector with picks at the events'
  // threshold, score what the grid said: the replay of held probabilities and the windowed run give
  // the same events. And with the chosen pick threshold, the picks score what its row said.
  DetectInput input(dir_ + "/val.h5");
  DetectionSettings events_only = chosen;
  events_only.pick_threshold = 0;
  DetectionResult r, rp;
  detect_unet(input, inference, picker_options(events_only, input.dt()),
              association_options(events_only, input.dx(), input.width(), "val.h5"), collect_into(&r));
  const GroundTruth truth = read_ground_truth(dir_ + "/val.h5");
  const EventScore s = score_events(truth, r.events, ScoreOptions{});
  EXPECT_EQ(s.f1(), best);
  detect_unet(input, inference, picker_options(chosen, input.dt()),
              association_options(chosen, input.dx(), input.width(), "val.h5"), collect_into(&rp));
  ScoreOptions within10;
  within10.tolerance_ms = 10;
  double best_pick_hit10 = -1;
  for (const auto& row : picks_table) {
    if (row["pick_threshold"].get<float>() == best_pick) best_pick_hit10 = row["hit10"].get<double>();
  }
  EXPECT_DOUBLE_EQ(score_picks(truth, rp.picks, within10).hit10(), best_pick_hit10);
  // The delay: the median error of the picks at delay 0 within the 50 ms tolerance, to 0.1 ms (0 with
  // fewer than 20 of them).
  DetectionSettings undelayed = chosen;
  undelayed.pick_delay_ms = 0;
  DetectionResult r0;
  detect_unet(input, inference, picker_options(undelayed, input.dt()),
              association_options(undelayed, input.dx(), input.width(), "val.h5"), collect_into(&r0));
  const PickScore ps = score_picks(truth, r0.picks, ScoreOptions{});
  EXPECT_DOUBLE_EQ(chosen.pick_delay_ms, ps.hits >= 20 ? std::round(ps.median_ms * 10.0) / 10.0 : 0.0);
  bool found = false;
  for (const auto& row : events_table) {
    if (row["threshold"].get<float>() == chosen.threshold && row["min_traces"].get<int64_t>() == chosen.min_traces) {
      found = true;
      EXPECT_EQ(row["f1"].get<double>(), best);
      EXPECT_EQ(row["false_detections"].get<int64_t>(), s.false_detections());
    }
  }
  EXPECT_TRUE(found) << chosen.threshold << " " << chosen.min_traces;
  // Too many probabilities to hold: a one-line InputError naming the file.
  EXPECT_THROW(tune_unet_detector({dir_ + "/val.h5"}, inference, DetectionSettings{}, ScoreOptions{}, nullptr, 1 << 20),
               InputError);
}

// The event rows of a tuner's table (the network's also holds pick rows).
std::vector<nlohmann::json> event_rows(const nlohmann::json& table) {
  std::vector<nlohmann::json> rows;
  for (const auto& row : table) {
    if (!row.contains("pick_threshold")) rows.push_back(row);
  }
  return rows;
}

// Every grid point of a table over files {A, B} scored the counts of A's table plus B's (the grids
// are the same when the files have the same width).
void expect_rows_add_up(const nlohmann::json& a, const nlohmann::json& b, const nlohmann::json& both) {
  const std::vector<nlohmann::json> ra = event_rows(a), rb = event_rows(b), r = event_rows(both);
  ASSERT_EQ(ra.size(), r.size());
  ASSERT_EQ(rb.size(), r.size());
  for (size_t k = 0; k < r.size(); ++k) {
    for (const char* n : {"events", "matched_events", "detections", "false_detections"}) {
      EXPECT_EQ(r[k][n].get<int64_t>(), ra[k][n].get<int64_t>() + rb[k][n].get<int64_t>()) << n << " row " << k;
    }
  }
}

int64_t total_matched(const nlohmann::json& table) {
  int64_t m = 0;
  for (const auto& row : event_rows(table)) m += row["matched_events"].get<int64_t>();
  return m;
}

TEST_F(DetectCli, TuningOnSeveralRecordsScoresThemTogether) {
  // A network that finds events (an untrained one finds none, and every pooled score would be 0
  // whatever the pooling did): 60 steps of a tiny network on loud gathers (half a second) find most
  // events of these records.
  const std::string net = dir_ + "/tune_net";
  ASSERT_EQ(run_seisseg("synth --out " + net +
                        ".h5 --samples 12 --height 64 --width 32 --events-max 3 --snr-db 10:20 "
                        "--seed 5")
                .code,
            0);
  const test::CliResult t = run_seisseg("train --data " + net + ".h5 --val-fraction 0 --levels 2 --base 4 --batch 4 " +
                                        "--device cpu --pos-weight 5 --lr 0.02 --seed 7 --steps 60 --out " + net);
  ASSERT_EQ(t.code, 0) << t.err;
  const InferenceWeights iw = load_inference_weights(net + "/weights.safetensors", Device::cpu());
  WindowOptions wo;
  wo.rows = 256;
  const WindowedInference inference(*iw.model, wo);
  const std::string val = dir_ + "/val.h5", rec = dir_ + "/rec.h5";
  // The same record twice: every count doubles, so every F1 and the choice are those of the record
  // alone (had the second copy's detections kept gather 0, each would be a second, false detection
  // of an event already matched).
  nlohmann::json one = nlohmann::json::array(), twice = nlohmann::json::array();
  const DetectionSettings a = tune_unet_detector({val}, inference, DetectionSettings{}, ScoreOptions{}, &one);
  const DetectionSettings b = tune_unet_detector({val, val}, inference, DetectionSettings{}, ScoreOptions{}, &twice);
  ASSERT_EQ(one.size(), twice.size());
  for (size_t k = 0; k < one.size(); ++k) {
    if (one[k].contains("pick_threshold")) {
      EXPECT_EQ(one[k]["pick_f1_10ms"].get<double>(), twice[k]["pick_f1_10ms"].get<double>()) << k;
      EXPECT_EQ(one[k]["pick_delay_ms"].get<double>(), twice[k]["pick_delay_ms"].get<double>()) << k;
      continue;
    }
    EXPECT_EQ(one[k]["f1"].get<double>(), twice[k]["f1"].get<double>()) << k;
    EXPECT_EQ(2 * one[k]["false_detections"].get<int64_t>(), twice[k]["false_detections"].get<int64_t>()) << k;
  }
  double best_one = 0;
  for (const auto& row : one) best_one = std::max(best_one, row.value("f1", 0.0));
  ASSERT_GT(best_one, 0.0) << "the network finds no event: the comparisons above prove nothing";
  EXPECT_EQ(a.threshold, b.threshold);
  EXPECT_EQ(a.min_traces, b.min_traces);
  EXPECT_EQ(a.pick_threshold, b.pick_threshold);
  EXPECT_EQ(a.pick_delay_ms, b.pick_delay_ms);

  // A file of 3 gathers, then a record: the record's gather 0 is gather 3 of the pool (numbering
  // by file would make it 1), and every grid point scores the two files' counts added, for the
  // network and for STA/LTA.
  const std::string gathers = dir_ + "/tune_gathers.h5";
  ASSERT_EQ(
      run_seisseg("synth --out " + gathers + " --samples 3 --height 1024 --width 24 --snr-db 10:20 --seed 4").code, 0);
  std::vector<int64_t> first;
  const GroundTruth tg = read_ground_truth(gathers), tr = read_ground_truth(rec);
  const GroundTruth pooled = pool_ground_truths({tg, tr}, &first);
  EXPECT_EQ(first, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(pooled.gathers, 4);
  EXPECT_DOUBLE_EQ(pooled.duration_s, tg.duration_s + tr.duration_s);
  ASSERT_EQ(pooled.events.size(), tg.events.size() + tr.events.size());
  ASSERT_EQ(pooled.picks.size(), tg.picks.size() + tr.picks.size());
  for (size_t k = 0; k < tr.events.size(); ++k) EXPECT_EQ(pooled.events[tg.events.size() + k].gather, 3);
  for (size_t k = 0; k < tr.picks.size(); ++k) EXPECT_EQ(pooled.picks[tg.picks.size() + k].gather, 3);
  for (size_t k = 0; k < tg.events.size(); ++k) EXPECT_EQ(pooled.events[k].gather, tg.events[k].gather);

  nlohmann::json ng = nlohmann::json::array(), nr = nlohmann::json::array(), nboth = nlohmann::json::array();
  (void)tune_unet_detector({gathers}, inference, DetectionSettings{}, ScoreOptions{}, &ng);
  (void)tune_unet_detector({rec}, inference, DetectionSettings{}, ScoreOptions{}, &nr);
  (void)tune_unet_detector({gathers, rec}, inference, DetectionSettings{}, ScoreOptions{}, &nboth);
  ASSERT_GT(total_matched(ng), 0) << "the network finds no event in the gathers";
  ASSERT_GT(total_matched(nr), 0) << "the network finds no event in the record";
  expect_rows_add_up(ng, nr, nboth);

  // STA/LTA the same way; and twice the record chooses as the record.
  const StaLtaOptions base = sta_lta_defaults(0.002);
  const double gap = DetectionSettings{}.event_gap_ms;
  nlohmann::json sg = nlohmann::json::array(), sr = nlohmann::json::array(), sboth = nlohmann::json::array(),
                 sta_one = nlohmann::json::array(), sta_twice = nlohmann::json::array();
  (void)tune_sta_lta({gathers}, base, 0.002, gap, ScoreOptions{}, &sg);
  (void)tune_sta_lta({rec}, base, 0.002, gap, ScoreOptions{}, &sr);
  (void)tune_sta_lta({gathers, rec}, base, 0.002, gap, ScoreOptions{}, &sboth);
  ASSERT_GT(total_matched(sg), 0);
  ASSERT_GT(total_matched(sr), 0);
  expect_rows_add_up(sg, sr, sboth);
  const StaLtaOptions s1 = tune_sta_lta({val}, base, 0.002, gap, ScoreOptions{}, &sta_one);
  const StaLtaOptions s2 = tune_sta_lta({val, val}, base, 0.002, gap, ScoreOptions{}, &sta_twice);
  ASSERT_EQ(sta_one.size(), sta_twice.size());
  for (size_t k = 0; k < sta_one.size(); ++k) {
    EXPECT_EQ(sta_one[k]["f1"].get<double>(), sta_twice[k]["f1"].get<double>()) << k;
  }
  EXPECT_EQ(s1.thr_on, s2.thr_on);
  EXPECT_EQ(s1.coincidence_sum, s2.coincidence_sum);
  // STA/LTA windows count samples of the input's dt: a tuning file sampled otherwise is refused.
  try {
    (void)tune_sta_lta({rec}, base, 0.001, gap, ScoreOptions{});
    ADD_FAILURE() << "a tuning file at another dt was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(rec + ": sampled at dt"), std::string::npos) << e.what();
  }

  // Through the program: a comma list is scored together and said so; a glob matching nothing is
  // one line naming it.
  const std::string out = dir_ + "/tune_two";
  fs::create_directories(out);
  const std::string cmd = "detect --method sta-lta --in " + rec + " --out " + out + "/events.csv --tune-on ";
  const test::CliResult r = run_seisseg(cmd + val + "," + rec);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("on 2 files (" + val + "," + rec + "), scored together"), std::string::npos) << r.err;
  const test::CliResult g = run_seisseg(cmd + "'" + dir_ + "/nothing*.h5'");
  EXPECT_NE(g.code, 0);
  EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << g.err;
  EXPECT_NE(g.err.find("nothing*.h5"), std::string::npos) << g.err;
  EXPECT_FALSE(fs::exists(out + "/events.csv.tmp"));
}

TEST_F(DetectCli, NetworkTuneOnPrintsItsChoiceAndExplicitFlagsWin) {
  const std::string out = dir_ + "/unet_tuned";
  fs::create_directories(out);
  const std::string base = "detect --weights " + dir_ + "/w.safetensors --tune-on " + dir_ + "/val.h5 --in " + dir_ +
                           "/rec.h5 --out " + out + "/events.csv --prob " + out + "/prob.h5 --window 256 --device cpu";
  const test::CliResult r = run_seisseg(base);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("detect: --threshold 0."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" --min-traces "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" --pick-threshold 0."), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" --pick-delay-ms "), std::string::npos) << r.err;
  const test::CliResult e =
      run_seisseg(base + " --threshold 0.35 --min-traces 5 --pick-threshold 0.2 --pick-delay-ms 2.5");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.err.find("detect: --threshold 0.35 --min-traces 5 --pick-threshold 0.2 --pick-delay-ms 2.5\n"),
            std::string::npos)
      << e.err;
  std::vector<hsize_t> dims;
  const std::vector<float> p = read_all<float>(out + "/prob.h5", "prob", H5T_NATIVE_FLOAT, &dims);
  const std::vector<uint8_t> m = read_all<uint8_t>(out + "/prob.h5", "mask", H5T_NATIVE_UCHAR, &dims);
  ASSERT_EQ(m.size(), p.size());
  for (size_t k = 0; k < p.size(); ++k) ASSERT_EQ(m[k], p[k] >= 0.35f ? 1 : 0) << k;
  // A pick threshold alone, above the default --threshold: the grid keeps to event thresholds at or
  // above it.
  const test::CliResult q = run_seisseg(base + " --pick-threshold 0.65");
  ASSERT_EQ(q.code, 0) << q.err;
  const size_t at = q.err.find("detect: --threshold ");
  ASSERT_NE(at, std::string::npos) << q.err;
  const double chosen = std::atof(q.err.c_str() + at + std::strlen("detect: --threshold "));
  EXPECT_GE(chosen, 0.65) << q.err;
  EXPECT_NE(q.err.find(" --pick-threshold 0.65 --pick-delay-ms ", at), std::string::npos) << q.err;
}

// --fill-moveout: picks.csv gains a last column 'filled'; the filled picks have score 0, the
// network's are those of a run without the flag, and the events are the same.
TEST_F(DetectCli, FillMoveoutMarksTheFilledPicks) {
  const std::string out = dir_ + "/fill";
  fs::create_directories(out);
  const std::string base = "detect --weights " + dir_ + "/w.safetensors --in " + dir_ +
                           "/rec.h5 --threshold 0.3 --min-traces 4 --device cpu --out " + out;
  const test::CliResult plain = run_seisseg(base + "/e0.csv --picks " + out + "/p0.csv");
  ASSERT_EQ(plain.code, 0) << plain.err;
  const test::CliResult r = run_seisseg(base + "/e1.csv --picks " + out + "/p1.csv --fill-moveout");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(" of the picks filled along the events' moveouts"), std::string::npos) << r.out;
  const std::vector<std::string> l = lines_of(out + "/p1.csv");
  ASSERT_GE(l.size(), 1u);
  EXPECT_EQ(l[0], "gather,trace,sample,time_ms,score,filled");
  std::vector<std::string> mine;
  for (size_t k = 1; k < l.size(); ++k) {
    const std::string& row = l[k];
    ASSERT_TRUE(row.size() > 2 && (row.substr(row.size() - 2) == ",0" || row.substr(row.size() - 2) == ",1")) << row;
    if (row.back() == '1') {
      EXPECT_NE(row.find(",0.0000,1"), std::string::npos) << "a filled pick has score 0: " << row;
    } else {
      mine.push_back(row.substr(0, row.size() - 2));
    }
  }
  std::vector<std::string> want = lines_of(out + "/p0.csv");
  want.erase(want.begin());
  EXPECT_EQ(mine, want) << "the network's own picks do not change";
  EXPECT_EQ(lines_of(out + "/e1.csv"), lines_of(out + "/e0.csv"));
  const std::vector<Pick> picks = read_picks_csv(out + "/p1.csv");  // the reader takes the extra column
  EXPECT_EQ(picks.size(), l.size() - 1);
}

TEST_F(DetectCli, StartTimeAddsUtcColumns) {
  const std::string out = dir_ + "/utc";
  fs::create_directories(out);
  const std::string rec = out + "/rec.h5";
  fs::copy_file(dir_ + "/rec.h5", rec);
  {
    const hid_t f = H5Fopen(rec.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    const std::string v = "2026-03-01T12:00:00Z";
    const hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, v.size());
    const hid_t sp = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate2(f, "start_time", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Awrite(a, t, v.c_str()), 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(f);
  }
  const test::CliResult r =
      run_seisseg("detect --method sta-lta --coincidence 4 --in " + rec + " --out " + out + "/events.csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> l = lines_of(out + "/events.csv");
  ASSERT_GE(l.size(), 2u) << "the record holds events";
  EXPECT_EQ(l[0], "gather,event,time_ms,n_traces,score,time_utc");
  const std::vector<Detection> d = read_events_csv(out + "/events.csv");
  const double ms = d[0].time_ms;
  char want[64];
  std::snprintf(want, sizeof want, "2026-03-01T12:%02d:%06.3fZ", static_cast<int>(ms / 60000.0),
                std::fmod(ms / 1000.0, 60.0));
  EXPECT_NE(l[1].find(want), std::string::npos) << l[1] << " vs " << want;
}

TEST_F(DetectCli, PredictPicksGathersOfAnySize) {
  const std::string out = dir_ + "/predict";
  fs::create_directories(out);
  // 3 gathers of 70 x 30: neither a multiple of 4, the 3-level network's.
  ASSERT_EQ(run_seisseg("synth --out " + out + "/g.h5 --samples 3 --height 70 --width 30 --seed 2").code, 0);
  const test::CliResult r =
      run_seisseg("predict --weights " + dir_ + "/w.safetensors --in " + out + "/g.h5 --out " + out + "/p.h5 --picks " +
                  out + "/picks.csv --events " + out + "/events.csv --threshold 0.3 --window 40 --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<hsize_t> dims;
  const std::vector<float> p = read_all<float>(out + "/p.h5", "prob", H5T_NATIVE_FLOAT, &dims);
  EXPECT_EQ(dims, (std::vector<hsize_t>{3, 70, 30}));
  for (float v : p) ASSERT_TRUE(v > 0.0f && v < 1.0f);
  for (const Pick& k : read_picks_csv(out + "/picks.csv")) {
    EXPECT_LT(k.gather, 3);
    EXPECT_LT(k.trace, 30);
    EXPECT_LT(k.sample, 70.0);
  }
  EXPECT_EQ(lines_of(out + "/events.csv").at(0), "gather,event,time_ms,n_traces,score");
  EXPECT_NE(r.out.find("against /picks and /events: event F1"), std::string::npos) << r.out;
}

TEST_F(DetectCli, GathersFileRunsGatherByGather) {
  const std::string out = dir_ + "/gathers";
  fs::create_directories(out);
  ASSERT_EQ(run_seisseg("synth --out " + out + "/g.h5 --samples 3 --height 70 --width 30 --seed 5").code, 0);
  const test::CliResult r = run_seisseg("detect --weights " + dir_ + "/w.safetensors --in " + out + "/g.h5 --out " +
                                        out + "/events.csv --picks " + out + "/picks.csv --prob " + out +
                                        "/p.h5 --threshold 0.3 --window 48 --window-receivers 16 --overlap 0.25 "
                                        "--device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<hsize_t> dims;
  const std::vector<float> p = read_all<float>(out + "/p.h5", "prob", H5T_NATIVE_FLOAT, &dims);
  EXPECT_EQ(dims, (std::vector<hsize_t>{3, 70, 30}));
  for (float v : p) ASSERT_TRUE(v > 0.0f && v < 1.0f);
  for (const Pick& k : read_picks_csv(out + "/picks.csv")) {
    EXPECT_LT(k.gather, 3);
    EXPECT_LT(k.trace, 30);
  }
  int64_t last = -1;
  for (const Detection& d : read_events_csv(out + "/events.csv")) {
    EXPECT_GT(d.event, last) << "events are numbered in order over the file";
    last = d.event;
  }
}

// Writes a record [T, W] with the given dt (0: none) and one value replaced by `bad` at (5, 3).
void write_record(const std::string& path, int64_t T, int64_t W, double dt, float bad) {
  H5SampleWriter::Options o;
  o.record = true;
  o.height = T;
  o.width = W;
  o.record_chunk_rows = T;
  o.with_label = false;
  o.dt = dt;
  o.dx = 10;
  std::vector<float> v(static_cast<size_t>(T * W), 0.5f);
  for (size_t k = 0; k < v.size(); ++k) v[k] = std::sin(0.1f * static_cast<float>(k));
  v[static_cast<size_t>(5 * W + 3)] = bad;
  H5SampleWriter w(path, o);
  w.write_rows(0, T, v.data(), nullptr);
  w.commit();
}

TEST_F(DetectCli, BadInputsAreOneLineAndLeaveNothing) {
  const std::string out = dir_ + "/bad";
  fs::create_directories(out);
  write_record(out + "/nan.h5", 300, 8, 0.002, std::numeric_limits<float>::quiet_NaN());
  write_record(out + "/nodt.h5", 300, 8, 0, 1.0f);
  write_record(out + "/short.h5", 40, 8, 0.002, 1.0f);
  const std::string w = " --weights " + dir_ + "/w.safetensors";
  struct Case {
    std::string args, expect;
    int code;
  };
  const std::vector<Case> cases = {
      {w + " --in " + out + "/nan.h5", "non-finite value", 1},
      {w + " --in " + out + "/nodt.h5", "dt", 1},
      {w + " --in " + out + "/short.h5", "shorter than one window", 1},
      {" --method sta-lta --in " + out + "/short.h5", "LTA", 1},
      {" --weights " + dir_ + "/rec.h5 --in " + dir_ + "/rec.h5", "rec.h5", 1},
      {" --in " + dir_ + "/rec.h5", "--weights", 2},
      {" --method sta-lta --prob " + out + "/p.h5 --in " + dir_ + "/rec.h5", "--prob", 2},
      {" --method sta-lta --fill-moveout --in " + dir_ + "/rec.h5", "--fill-moveout", 2},
      {w + " --trigger-on 3 --in " + dir_ + "/rec.h5", "sta-lta", 2},
      {w + " --threshold 0.5 --pick-threshold 0.6 --in " + dir_ + "/rec.h5", "--pick-threshold 0.6 must lie in", 2},
      {" --method sta-lta --segy-out " + out + "/p.sgy --in " + dir_ + "/rec.h5", "--segy-out", 2},
      // Refused before the tuning pass (which would print its own line first).
      {w + " --segy-out " + out + "/p.sgy --tune-on " + dir_ + "/val.h5 --in " + dir_ + "/rec.h5", "no SEG-Y headers",
       1},
  };
  for (const Case& c : cases) {
    const test::CliResult r =
        run_seisseg("detect" + c.args + " --out " + out + "/events.csv --picks " + out + "/picks.csv --device cpu");
    EXPECT_EQ(r.code, c.code) << c.args << ": " << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << c.args << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out + "/events.csv")) << c.args;
    EXPECT_FALSE(fs::exists(out + "/events.csv.tmp")) << c.args;
    EXPECT_FALSE(fs::exists(out + "/picks.csv")) << c.args;
    EXPECT_FALSE(fs::exists(out + "/p.sgy")) << c.args;
  }
}

}  // namespace
}  // namespace seis
