// seisseg synth and seisseg info, run as the built binary: a small set written and summarised
// (text and JSON), bad flags (exit 2) and bad files (exit 1) as one line, and determinism per seed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/hdf5_dataset.h"

namespace {

using Result = seis::test::CliResult;
Result run(const std::string& args) { return seis::test::run_seisseg(args); }
int lines(const std::string& s) { return seis::test::count_lines(s); }

std::string dir() {
  static const std::string d = seis::test::process_dir("synth_info_cli");
  return d;
}

using seis::test::file_exists;

std::vector<float> all_data(const std::string& path) {
  seis::H5SampleFile f(path);
  const int64_t hw = f.info().height * f.info().width;
  std::vector<float> v(static_cast<size_t>(f.info().n * hw));
  for (int64_t i = 0; i < f.info().n; ++i) f.read(i, v.data() + i * hw, nullptr);
  return v;
}

TEST(SynthInfoCli, SynthThenInfoTextAndJson) {
  const std::string f = dir() + "/small.h5";
  const Result s = run("synth --out " + f + " --samples 8 --height 64 --width 64 --seed 7 --threads 2");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_TRUE(file_exists(f));
  EXPECT_FALSE(file_exists(f + ".tmp"));

  const Result t = run("info " + f);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("8 gathers of 64 time samples x 64 receivers"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("float32"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("uint8"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("generator = seisseg synth"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("values over 8 of 8 gathers"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("normalisation statistics: /trace_norm, /sample_norm"), std::string::npos) << t.out;

  const Result j = run("info --json " + f + " " + f);
  ASSERT_EQ(j.code, 0) << j.err;
  ASSERT_EQ(lines(j.out), 2) << j.out;
  const nlohmann::json o = nlohmann::json::parse(j.out.substr(0, j.out.find('\n')));
  EXPECT_EQ(o["file"], f);
  EXPECT_EQ(o["n"], 8);
  EXPECT_EQ(o["h"], 64);
  EXPECT_EQ(o["w"], 64);
  EXPECT_EQ(o["data"]["dtype"], "float32");
  EXPECT_EQ(o["label"]["dtype"], "uint8");
  EXPECT_EQ(o["data"]["chunks"], nlohmann::json({1, 64, 64}));
  EXPECT_EQ(o["data"]["filters"], "");
  EXPECT_EQ(
      o["norm_stats"],
      nlohmann::json({{"trace", true}, {"sample", true}, {"trace_direct_read", true}, {"sample_direct_read", true}}));
  EXPECT_EQ(o["attributes"]["seed"], "7");
  EXPECT_EQ(o["attributes"]["generator"], "seisseg synth");
  EXPECT_EQ(o["attributes"]["freq_lo"], "15");
  EXPECT_EQ(o["attributes"]["freq_hi"], "45");
  EXPECT_DOUBLE_EQ(o["dt"].get<double>(), 0.002);
  EXPECT_EQ(o["stats"]["gathers_sampled"], 8);
  EXPECT_EQ(o["stats"]["nan"], 0);
  const double pos = o["stats"]["label_positive_fraction"];
  EXPECT_GT(pos, 0.0);
  EXPECT_LT(pos, 1.0);
  EXPECT_GT(o["stats"]["std"].get<double>(), 0.0);
}

TEST(SynthInfoCli, SameSeedGivesIdenticalDataWhateverTheThreads) {
  const std::string a = dir() + "/seed_a.h5", b = dir() + "/seed_b.h5", c = dir() + "/seed_c.h5",
                    z = dir() + "/seed_z.h5";
  ASSERT_EQ(run("synth --out " + a + " --samples 6 --height 32 --width 48 --seed 11 --threads 1").code, 0);
  ASSERT_EQ(run("synth --out " + b + " --samples 6 --height 32 --width 48 --seed 11 --threads 3").code, 0);
  ASSERT_EQ(run("synth --out " + z + " --samples 6 --height 32 --width 48 --seed 11 --threads 2 --gzip 5").code, 0);
  ASSERT_EQ(run("synth --out " + c + " --samples 6 --height 32 --width 48 --seed 12 --threads 1").code, 0);
  const std::vector<float> da = all_data(a), db = all_data(b), dz = all_data(z), dc = all_data(c);
  ASSERT_EQ(da.size(), db.size());
  EXPECT_EQ(std::memcmp(da.data(), db.data(), da.size() * 4), 0) << "same seed, different data";
  EXPECT_EQ(std::memcmp(da.data(), dz.data(), da.size() * 4), 0) << "gzip changed the data";
  EXPECT_NE(std::memcmp(da.data(), dc.data(), da.size() * 4), 0) << "different seeds, same data";
}

TEST(SynthInfoCli, FreqSToPStaticsAndSiteReachTheAttributes) {
  const std::string f = dir() + "/freq.h5";
  ASSERT_EQ(run("synth --out " + f +
                " --samples 2 --height 32 --width 32 --freq 60:80 --s-to-p 0.5:4 --statics-ms 3.5 "
                "--velocity-scale 0.5:1.2 --depth 300:3000 --lateral=-0.3:1.3 --label-half-ms 5")
                .code,
            0);
  const Result j = run("info --json " + f);
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json o = nlohmann::json::parse(j.out);
  EXPECT_EQ(o["attributes"]["freq_lo"], "60");
  EXPECT_EQ(o["attributes"]["freq_hi"], "80");
  EXPECT_EQ(o["attributes"]["s_to_p_lo"], "0.5");
  EXPECT_EQ(o["attributes"]["s_to_p_hi"], "4");
  EXPECT_EQ(o["attributes"]["statics_ms"], "3.5");
  EXPECT_EQ(o["attributes"]["velocity_scale_lo"], "0.5");
  EXPECT_EQ(o["attributes"]["velocity_scale_hi"], "1.2");
  EXPECT_EQ(o["attributes"]["depth_lo"], "300");
  EXPECT_EQ(o["attributes"]["depth_hi"], "3000");
  EXPECT_EQ(o["attributes"]["lateral_lo"], "-0.3");
  EXPECT_EQ(o["attributes"]["label_half_ms"], "5");
}

void expect_exit(const std::string& args, int code, const std::string& fragment) {
  const Result r = run(args);
  EXPECT_EQ(r.code, code) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1) << args << ": expected one line, got\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << args << ": " << r.err;
}

TEST(SynthInfoCli, BadFlagsExitWithCode2AndOneLine) {
  const std::string f = dir() + "/never.h5";
  const std::string ok = " --samples 2 --height 16 --width 16";
  expect_exit("synth" + ok, 2, "--out");
  expect_exit("synth --out " + f + " --height 16 --width 16", 2, "--samples");
  expect_exit("synth --out " + f + ok + " --samples 0", 2, "--samples");
  expect_exit("synth --out " + f + ok + " --height abc", 2, "--height");
  expect_exit("synth --out " + f + ok + " --snr-db 5", 2, "--snr-db");
  expect_exit("synth --out " + f + ok + " --snr-db 9:3", 2, "--snr-db");
  expect_exit("synth --out " + f + ok + " --gzip 10", 2, "--gzip");
  expect_exit("synth --out " + f + ok + " --freq 40", 2, "--freq");
  expect_exit("synth --out " + f + ok + " --freq 45:15", 2, "--freq");
  expect_exit("synth --out " + f + ok + " --freq 0.5:40", 2, "--freq");
  expect_exit("synth --out " + f + ok + " --freq 20:120", 2, "--freq");
  expect_exit("synth --out " + f + ok + " --s-to-p 3:1", 2, "--s-to-p");
  expect_exit("synth --out " + f + ok + " --s-to-p 0:4", 2, "--s-to-p");
  expect_exit("synth --out " + f + ok + " --s-to-p 1:50", 2, "--s-to-p");
  expect_exit("synth --out " + f + ok + " --statics-ms -1", 2, "--statics-ms");
  expect_exit("synth --out " + f + ok + " --statics-ms 200", 2, "--statics-ms");
  expect_exit("synth --out " + f + ok + " --velocity-scale 0.05:1", 2, "--velocity-scale");
  expect_exit("synth --out " + f + ok + " --label-half-ms 0.4", 2, "--label-half-ms");
  expect_exit("synth --out " + f + ok + " --label-half-ms 1.5", 2, "--label-half-ms");
  expect_exit("synth --out " + f + ok + " --label-half-ms -2", 2, "--label-half-ms");
  expect_exit("synth --out " + f + ok + " --velocity-scale 2:1", 2, "--velocity-scale");
  expect_exit("synth --out " + f + ok + " --velocity-scale 1", 2, "--velocity-scale");
  expect_exit("synth --out " + f + ok + " --depth 0:100", 2, "--depth");
  expect_exit("synth --out " + f + ok + " --depth 100:nan", 2, "--depth");
  expect_exit("synth --out " + f + ok + " --lateral=-9:1", 2, "--lateral");
  expect_exit("synth --out " + f + ok + " --threads 0", 2, "--threads");
  expect_exit("synth --out " + f + ok + " --no-such-flag", 2, "--no-such-flag");
  expect_exit("info", 2, "files");
  expect_exit("info --bogus x.h5", 2, "--bogus");
  EXPECT_FALSE(file_exists(f));
  EXPECT_FALSE(file_exists(f + ".tmp"));
  EXPECT_EQ(run("synth --help").code, 0);
  EXPECT_EQ(run("info --help").code, 0);
}

// --noise-from: gathers on recorded noise (a continuous record written by synth itself); its files
// in the attributes, the same seed giving the same gathers; bad uses as one line.
TEST(SynthInfoCli, NoiseFromARecordingWritesItsSourceAndBadUsesExitAsOneLine) {
  const std::string rec = dir() + "/noise_rec.h5", a = dir() + "/on_noise_a.h5", b = dir() + "/on_noise_b.h5";
  ASSERT_EQ(run("synth --out " + rec + " --continuous --duration 30 --receivers 40 --events-per-minute 2").code, 0);
  const std::string flags = " --samples 4 --height 64 --width 32 --seed 9 --noise-from " + rec;
  ASSERT_EQ(run("synth --out " + a + flags + " --threads 1").code, 0);
  ASSERT_EQ(run("synth --out " + b + flags + " --threads 2").code, 0);
  EXPECT_EQ(all_data(a), all_data(b)) << "same seed, same recording: the same gathers";
  const Result j = run("info --json " + a);
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json o = nlohmann::json::parse(j.out);
  EXPECT_EQ(o["attributes"]["noise_from"], rec);
  EXPECT_EQ(o["attributes"]["noise_from_share"], "1");

  const std::string never = dir() + "/never_noise.h5";
  expect_exit("synth --out " + never + " --continuous --duration 5 --receivers 8 --noise-from " + rec, 2,
              "--noise-from is for gathers");
  expect_exit("synth --out " + never + " --samples 2 --height 16 --width 16 --noise-from-share 0.5", 2, "--noise-from");
  expect_exit("synth --out " + never + flags + " --noise-from-share 1.5", 2, "--noise-from-share");
  expect_exit("synth --out " + never + " --samples 2 --height 16 --width 41 --noise-from " + rec, 1,
              rec + ": 40 receivers, fewer than the gathers' 41");
  const std::string missing = dir() + "/no_noise.h5";
  expect_exit("synth --out " + never + " --samples 2 --height 16 --width 16 --noise-from " + missing, 1, missing);
  expect_exit("synth --out " + never + " --samples 2 --height 16 --width 16 --noise-from " + a, 1, a);
  EXPECT_FALSE(file_exists(never));
  EXPECT_FALSE(file_exists(never + ".tmp"));
}

TEST(SynthInfoCli, BadFilesExitWithCode1AndOneLineNamingTheFile) {
  const std::string missing = dir() + "/missing.h5";
  expect_exit("info " + missing, 1, missing + ": not found");
  const std::string text = dir() + "/text.h5";
  std::ofstream(text) << "hello\n";
  expect_exit("info " + text, 1, text + ": not an HDF5 file");
  expect_exit("info --json " + text, 1, text);
  // An output directory that does not exist: a bad file, not a bad flag.
  const std::string nodir = dir() + "/no/such/dir/x.h5";
  expect_exit("synth --out " + nodir + " --samples 2 --height 16 --width 16", 1, nodir);
}

TEST(SynthInfoCli, InfoReportsEveryFileAndFailsIfAnyIsBad) {
  const std::string good = dir() + "/multi_good.h5", missing = dir() + "/multi_missing.h5";
  ASSERT_EQ(run("synth --out " + good + " --samples 2 --height 16 --width 16").code, 0);
  const Result r = run("info --json " + missing + " " + good);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["n"], 2);
}

}  // namespace
