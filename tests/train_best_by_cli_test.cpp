// seisseg train's validation scores in the analyst's units and --best-by, through the program: the
// scores in metrics.jsonl and config.json, the refusal without ground truth or without validation,
// and --best-by as a setting a resume keeps (a different one is refused, the same one resumes
// bit for bit, best figures included).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"

namespace {

using seis::test::slurp;
using seis::test::validations;

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

Result run(const std::string& args) {
  const seis::test::CliResult r = seis::test::run_seisseg(args);
  return {r.code, r.out, r.err};
}

class TrainBestBy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "/seisseg_train_best_by";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // 64 x 32 gathers with loud events. The tiny network (levels 2, base 2) at --lr 0.1 and
    // --pos-weight 5 marks arrivals after a few steps, coarsely: enough for picks within 50 ms.
    const std::string shape = " --height 64 --width 32 --events-max 3 --snr-db 10:20";
    ASSERT_EQ(run("synth --out " + dir_ + "/train.h5 --samples 12" + shape + " --seed 5").code, 0);
    ASSERT_EQ(run("synth --out " + dir_ + "/val.h5 --samples 4" + shape + " --seed 6").code, 0);
  }
  static std::string train_args(const std::string& out) {
    return "train --data " + dir_ + "/train.h5 --val " + dir_ + "/val.h5 --levels 2 --base 2 --batch 4 " +
           "--device cpu --val-every 2 --log-every 2 --pos-weight 5 --lr 0.1 --seed 7 --out " + dir_ + "/" + out;
  }
  static std::string dir_;
};
std::string TrainBestBy::dir_;

TEST_F(TrainBestBy, ValidationsCarryEventAndPickScoresAndConfigRecordsBestBy) {
  const Result r = run(train_args("f1") + " --steps 6 --best-by event_f1");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("event F1 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pick MAE "), std::string::npos) << r.out;
  const auto v = validations(dir_ + "/f1/metrics.jsonl");
  ASSERT_EQ(v.size(), 3u);
  bool some_mae = false;
  for (const auto& j : v) {
    for (const char* k : {"event_f1", "event_precision", "event_recall", "false_per_hour", "pick_hit10", "p_hit10"}) {
      ASSERT_TRUE(j.contains(k) && j[k].is_number()) << k << " in " << j.dump();
      const double x = j[k].get<double>();
      EXPECT_TRUE(x >= 0 && (x <= 1 || std::string(k) == "false_per_hour")) << k << " = " << x;
    }
    ASSERT_TRUE(j.contains("pick_mae_ms")) << j.dump();
    // A number when an arrival was picked within the tolerance (50 ms), else null.
    if (j["pick_mae_ms"].is_number()) {
      some_mae = true;
      EXPECT_GE(j["pick_mae_ms"].get<double>(), 0.0);
      EXPECT_LE(j["pick_mae_ms"].get<double>(), 50.0);
    } else {
      EXPECT_TRUE(j["pick_mae_ms"].is_null()) << j.dump();
    }
  }
  EXPECT_TRUE(some_mae) << "no validation picked an arrival: the test data or training is too weak";
  const auto cfg = nlohmann::json::parse(slurp(dir_ + "/f1/config.json"));
  EXPECT_EQ(cfg["settings"]["best-by"], "event_f1");
  EXPECT_TRUE(fs::exists(dir_ + "/f1/best.safetensors"));
  // The default is recorded too.
  ASSERT_EQ(run(train_args("iou") + " --steps 2").code, 0);
  EXPECT_EQ(nlohmann::json::parse(slurp(dir_ + "/iou/config.json"))["settings"]["best-by"], "iou");
}

TEST_F(TrainBestBy, WithoutGroundTruthOrValidationItIsAUsageError) {
  if (!seis::test::have_h5py()) GTEST_SKIP() << "needs python3 with h5py to strip the truth tables";
  const std::string bare = dir_ + "/bare.h5";
  fs::copy_file(dir_ + "/train.h5", bare, fs::copy_options::overwrite_existing);
  ASSERT_EQ(seis::test::run_h5py_script(dir_ + "/strip.py",
                                        "with h5py.File(sys.argv[1], 'a') as f:\n"
                                        "    del f['picks']\n"
                                        "    del f['events']\n",
                                        bare),
            0);
  const std::string args =
      "train --data " + bare + " --val-fraction 0.25 --levels 1 --base 2 --batch 4 --steps 2 --device cpu --out ";
  for (const char* by : {"event_f1", "pick_mae"}) {
    const Result r = run(args + dir_ + "/bare_" + by + " --best-by " + by);
    EXPECT_EQ(r.code, 2) << by << ": " << r.out << r.err;
    EXPECT_EQ(seis::test::count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--best-by"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bare.h5"), std::string::npos) << "names the file without truth: " << r.err;
    EXPECT_FALSE(fs::exists(dir_ + "/bare_" + std::string(by) + "/metrics.jsonl"));
  }
  // Truth but no validation.
  const Result r = run("train --data " + dir_ + "/train.h5 --val-fraction 0 --levels 1 --base 2 --batch 4 " +
                       "--steps 2 --device cpu --best-by pick_mae --out " + dir_ + "/noval");
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_EQ(seis::test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no validation"), std::string::npos) << r.err;
  // The default, IoU, trains on the same data, without the arrival scores.
  const Result ok = run(args + dir_ + "/bare_iou");
  ASSERT_EQ(ok.code, 0) << ok.out << ok.err;
  const auto v = validations(dir_ + "/bare_iou/metrics.jsonl");
  ASSERT_FALSE(v.empty());
  EXPECT_FALSE(v[0].contains("event_f1")) << v[0].dump();
}

TEST_F(TrainBestBy, AResumeKeepsBestByAndItsBestFigureExactly) {
  ASSERT_EQ(run(train_args("mae_full") + " --steps 8 --best-by pick_mae").code, 0);
  ASSERT_EQ(run(train_args("mae_part") + " --steps 4 --best-by pick_mae").code, 0);
  // Another --best-by is another run: refused like any identity setting.
  const Result refused = run("train --resume " + dir_ + "/mae_part --steps 8 --best-by event_f1");
  EXPECT_EQ(refused.code, 2) << refused.out << refused.err;
  EXPECT_EQ(seis::test::count_lines(refused.err), 1) << refused.err;
  EXPECT_NE(refused.err.find("--best-by"), std::string::npos) << refused.err;
  // The same one (given again or not) continues as if never interrupted: the saved state holds the
  // best figures, so best.safetensors and state.safetensors match the uninterrupted run's.
  const Result r = run("train --resume " + dir_ + "/mae_part --steps 8 --best-by pick_mae");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  for (const char* f : {"weights.safetensors", "best.safetensors", "state.safetensors"}) {
    EXPECT_EQ(slurp(dir_ + "/mae_full/" + f), slurp(dir_ + "/mae_part/" + f)) << f;
  }
  const auto va = validations(dir_ + "/mae_full/metrics.jsonl"), vb = validations(dir_ + "/mae_part/metrics.jsonl");
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); ++i) {
    EXPECT_EQ(va[i]["event_f1"], vb[i]["event_f1"]) << "step " << va[i]["step"];
    EXPECT_EQ(va[i]["pick_mae_ms"], vb[i]["pick_mae_ms"]) << "step " << va[i]["step"];
  }
}

}  // namespace
