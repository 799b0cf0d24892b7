// seisseg synth's ground truth and continuous records, run as the built binary: /picks and /events
// of a gather file equal what the generator drew (in gather order whatever the threads), h5py
// reads them with the documented names and dtypes, a continuous record has the right shape, its
// picks lie on label 1, it is the same for the same seed, memory stays bounded by a block whatever
// the length, info summarises both kinds of file (text and JSON), the variety flags (wavelets,
// coloured noise, transients) reach the generator and the attributes, and bad flags are one line.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/hdf5_table.h"
#include "io/synth_file.h"
#include "io/synth_microseismic.h"

namespace {

using seis::test::CliResult;
CliResult run(const std::string& args) { return seis::test::run_seisseg(args); }

std::string dir() {
  static const std::string d = seis::test::process_dir("synth_record_cli");
  return d;
}

using seis::test::file_exists;

template <typename Row>
std::vector<Row> read_table(const std::string& path, const seis::H5TableSpec& spec) {
  seis::H5TableReader t(path, spec);
  EXPECT_TRUE(t.exists()) << path << " has no /" << spec.name;
  std::vector<Row> rows(static_cast<size_t>(t.rows()));
  t.read(0, t.rows(), rows.data());
  return rows;
}

std::vector<seis::SynthPickRow> picks_of(const std::string& p) {
  return read_table<seis::SynthPickRow>(p, seis::synth_pick_table());
}
std::vector<seis::SynthEventRow> events_of(const std::string& p) {
  return read_table<seis::SynthEventRow>(p, seis::synth_event_table());
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, 8) == 0; }

void expect_same_picks(const std::vector<seis::SynthPickRow>& a, const std::vector<seis::SynthPickRow>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_TRUE(a[k].gather == b[k].gather && a[k].trace == b[k].trace && a[k].phase == b[k].phase &&
                same_bits(a[k].time_s, b[k].time_s) && a[k].event == b[k].event)
        << "pick row " << k;
  }
}

void expect_same_events(const std::vector<seis::SynthEventRow>& a, const std::vector<seis::SynthEventRow>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    ASSERT_TRUE(
        a[k].gather == b[k].gather && a[k].event == b[k].event && same_bits(a[k].origin_time_s, b[k].origin_time_s) &&
        same_bits(a[k].first_arrival_s, b[k].first_arrival_s) && same_bits(a[k].last_arrival_s, b[k].last_arrival_s) &&
        same_bits(a[k].x_m, b[k].x_m) && same_bits(a[k].z_m, b[k].z_m) && same_bits(a[k].snr_db, b[k].snr_db))
        << "event row " << k;
  }
}

TEST(SynthRecordCli, GatherFileCarriesTheGeneratorsTruthInGatherOrder) {
  const std::string a = dir() + "/g1.h5", b = dir() + "/g3.h5";
  const std::string flags = " --samples 9 --height 96 --width 40 --seed 5 --events-max 4";
  ASSERT_EQ(run("synth --out " + a + flags + " --threads 1").code, 0);
  ASSERT_EQ(run("synth --out " + b + flags + " --threads 3").code, 0);
  const auto picks = picks_of(a);
  const auto events = events_of(a);
  expect_same_picks(picks, picks_of(b));  // same rows in the same order whatever the threads
  expect_same_events(events, events_of(b));

  // Row by row, what synth_sample drew for each gather, and its data and label bit for bit.
  seis::SynthConfig cfg;
  cfg.height = 96;
  cfg.width = 40;
  cfg.seed = 5;
  cfg.events_max = 4;
  seis::H5SampleFile f(a);
  std::vector<float> want_d(96 * 40), got_d(want_d.size());
  std::vector<uint8_t> want_l(want_d.size()), got_l(want_d.size());
  size_t p = 0, e = 0;
  for (int64_t i = 0; i < 9; ++i) {
    seis::SynthSampleInfo info;
    seis::synth_sample(cfg, i, want_d.data(), want_l.data(), &info);
    f.read(i, got_d.data(), got_l.data());
    EXPECT_EQ(std::memcmp(want_d.data(), got_d.data(), want_d.size() * 4), 0) << "data of gather " << i;
    EXPECT_EQ(want_l, got_l) << "label of gather " << i;
    for (const seis::SynthPick& q : info.picks) {
      ASSERT_LT(p, picks.size());
      const seis::SynthPickRow& r = picks[p++];
      ASSERT_TRUE(r.gather == i && r.trace == q.trace && r.phase == q.phase && same_bits(r.time_s, q.time) &&
                  r.event == q.event)
          << "gather " << i << " pick row " << p - 1;
      ASSERT_EQ(got_l[std::llround(r.time_s / cfg.dt) * cfg.width + r.trace], 1) << "pick row " << p - 1;
    }
    for (size_t k = 0; k < info.events.size(); ++k) {
      ASSERT_LT(e, events.size());
      const seis::SynthEventRow& r = events[e++];
      const seis::SynthEvent& q = info.events[k];
      EXPECT_TRUE(r.gather == i && r.event == static_cast<int64_t>(k) && same_bits(r.origin_time_s, q.origin_time) &&
                  same_bits(r.x_m, q.x) && same_bits(r.z_m, q.z) && same_bits(r.snr_db, info.snr_db))
          << "gather " << i << " event row " << e - 1;
      EXPECT_TRUE(same_bits(r.first_arrival_s, q.first_arrival) && same_bits(r.last_arrival_s, q.last_arrival));
    }
  }
  EXPECT_EQ(p, picks.size()) << "rows beyond what the generator drew";
  EXPECT_EQ(e, events.size());
  EXPECT_GT(picks.size(), 100u);
}

TEST(SynthRecordCli, H5pyReadsTheTablesWithTheDocumentedNamesAndDtypes) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no h5py: the tables were not read by h5py";
  }
  const std::string g = dir() + "/py_g.h5", r = dir() + "/py_r.h5";
  ASSERT_EQ(run("synth --out " + g + " --samples 3 --height 64 --width 24 --seed 2 --events-max 2").code, 0);
  ASSERT_EQ(run("synth --out " + r + " --continuous --duration 6 --receivers 12 --seed 2 --events-per-minute 40").code,
            0);
  const std::string script = dir() + "/check_tables.py";
  std::ofstream(script) << R"(import sys
import h5py
import numpy as np
picks = np.dtype([('gather', '<i8'), ('trace', '<i8'), ('phase', 'u1'), ('time_s', '<f8'), ('event', '<i8')])
events = np.dtype([('gather', '<i8'), ('event', '<i8'), ('origin_time_s', '<f8'), ('first_arrival_s', '<f8'),
                   ('last_arrival_s', '<f8'), ('x_m', '<f8'), ('z_m', '<f8'), ('snr_db', '<f8')])
for path, rank in ((sys.argv[1], 3), (sys.argv[2], 2)):
    with h5py.File(path, 'r') as f:
        p, e = f['picks'][:], f['events'][:]
        assert p.dtype == picks, (path, p.dtype)
        assert e.dtype == events, (path, e.dtype)
        assert f['data'].ndim == rank, (path, f['data'].shape)
        assert len(p) > 0 and len(e) > 0, path
        lab, dt = f['label'], f.attrs['dt']
        rows = np.rint(p['time_s'] / dt).astype(np.int64)
        on = lab[:][tuple([p['gather'], rows, p['trace']] if rank == 3 else [rows, p['trace']])]
        assert (on == 1).all(), (path, 'pick off the label')
        assert set(np.unique(p['phase'])) <= {0, 1}, path
        if rank == 2:
            assert (p['gather'] == 0).all() and (e['gather'] == 0).all(), path
print('ok')
)";
  const seis::test::CliResult res = seis::test::run_command("/usr/bin/python3 " + script + " " + g + " " + r);
  EXPECT_EQ(res.code, 0) << res.out << res.err;
  EXPECT_EQ(res.out, "ok\n") << res.err;
}

TEST(SynthRecordCli, ContinuousRecordShapePicksAndDeterminism) {
  const std::string a = dir() + "/rec_a.h5", b = dir() + "/rec_b.h5", c = dir() + "/rec_c.h5";
  // 7.3 s at 2 ms is 3649.9999... samples: rounded, not truncated, to 3650.
  const std::string flags = " --continuous --duration 7.3 --receivers 16 --events-per-minute 40";
  const CliResult s = run("synth --out " + a + flags + " --seed 9 --threads 1");
  ASSERT_EQ(s.code, 0) << s.err;
  EXPECT_NE(s.out.find("continuous record of 3650 samples"), std::string::npos) << s.out;
  EXPECT_FALSE(file_exists(a + ".tmp"));
  ASSERT_EQ(run("synth --out " + b + flags + " --seed 9 --threads 2").code, 0);
  ASSERT_EQ(run("synth --out " + c + flags + " --seed 10").code, 0);

  seis::H5RecordFile f(a);
  const seis::H5RecordInfo& in = f.info();
  ASSERT_EQ(in.samples, 3650);
  ASSERT_EQ(in.receivers, 16);
  EXPECT_EQ(in.data_type, seis::H5ElemType::f32);
  EXPECT_EQ(in.label_type, seis::H5ElemType::u8);
  EXPECT_EQ(in.data_chunk, (std::vector<int64_t>{3650, 16}));
  EXPECT_DOUBLE_EQ(in.dt, 0.002);
  EXPECT_DOUBLE_EQ(in.dx, 10.0);
  EXPECT_EQ(in.attributes.at("generator"), "seisseg synth");
  EXPECT_EQ(in.attributes.at("events_per_minute"), "40");
  std::vector<float> data(3650 * 16), data_b(data.size()), data_c(data.size());
  std::vector<uint8_t> label(data.size()), label_b(data.size());
  f.read_rows(0, 3650, data.data(), label.data());
  seis::H5RecordFile(b).read_rows(0, 3650, data_b.data(), label_b.data());
  seis::H5RecordFile(c).read_rows(0, 3650, data_c.data(), nullptr);
  EXPECT_EQ(std::memcmp(data.data(), data_b.data(), data.size() * 4), 0) << "same seed, another record";
  EXPECT_EQ(label, label_b);
  EXPECT_NE(std::memcmp(data.data(), data_c.data(), data.size() * 4), 0) << "another seed, the same record";

  const auto picks = picks_of(a);
  const auto events = events_of(a);
  expect_same_picks(picks, picks_of(b));
  expect_same_events(events, events_of(b));
  ASSERT_GT(events.size(), 1u);
  ASSERT_GT(picks.size(), 16u);
  for (size_t k = 0; k < events.size(); ++k) {
    EXPECT_EQ(events[k].gather, 0);
    EXPECT_EQ(events[k].event, static_cast<int64_t>(k));
    EXPECT_GE(events[k].origin_time_s, 0.0);
    EXPECT_LT(events[k].origin_time_s, 7.3);
  }
  for (size_t k = 0; k < picks.size(); ++k) {
    const seis::SynthPickRow& p = picks[k];
    ASSERT_EQ(p.gather, 0);
    ASSERT_GE(p.time_s, 0.0);
    ASSERT_LE(p.time_s, 3649 * 0.002);
    ASSERT_EQ(label[std::llround(p.time_s / 0.002) * 16 + p.trace], 1) << "pick row " << k;
    const seis::SynthEventRow& e = events[static_cast<size_t>(p.event)];
    ASSERT_GE(p.time_s, e.first_arrival_s);
    ASSERT_LE(p.time_s, e.last_arrival_s);
  }
}

// Peak resident memory (KiB) of one run of the program, which must succeed.
long peak_rss_kib(const std::vector<std::string>& args) {
  const seis::test::MeasuredRun r = seis::test::run_seisseg_measured(args);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.peak_kib;
}

TEST(SynthRecordCli, MemoryIsBoundedByTheBlocksNotTheRecord) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer keeps freed memory in quarantine: peak RSS tracks all that was ever allocated";
#endif
  const std::string big = dir() + "/big.h5", small = dir() + "/small.h5";
  // 200 s x 128 receivers: 64 MB of data and labels; blocks of 4096 x 128 (2.5 MB), two threads.
  const long big_kib = peak_rss_kib(
      {"synth", "--out", big, "--continuous", "--duration", "200", "--receivers", "128", "--threads", "2"});
  const long small_kib = peak_rss_kib(
      {"synth", "--out", small, "--continuous", "--duration", "1", "--receivers", "128", "--threads", "2"});
  const double record_mib = 100000.0 * 128 * 5 / (1 << 20);
  const double extra_mib = static_cast<double>(big_kib - small_kib) / 1024.0;
  EXPECT_LT(extra_mib, record_mib / 4) << "peak RSS " << big_kib << " KiB for a " << record_mib << " MiB record, "
                                       << small_kib << " KiB for a 1 s record";
  seis::H5RecordFile f(big);
  EXPECT_EQ(f.info().samples, 100000);
  EXPECT_EQ(f.info().data_chunk, (std::vector<int64_t>{seis::synth_record_block_rows(100000, 128), 128}));
  EXPECT_EQ(seis::synth_record_block_rows(100000, 128), 4096);
  EXPECT_EQ(seis::synth_record_block_rows(100000, 1 << 20), 8);  // 32 MiB of floats per block at most
  std::remove(big.c_str());
}

TEST(SynthRecordCli, InfoSummarisesGathersAndRecords) {
  const std::string g = dir() + "/info_g.h5", r = dir() + "/info_r.h5";
  ASSERT_EQ(run("synth --out " + g + " --samples 5 --height 64 --width 32 --seed 4 --events-max 3").code, 0);
  ASSERT_EQ(run("synth --out " + r + " --continuous --duration 9 --receivers 20 --seed 4 --events-per-minute 30").code,
            0);
  const auto gp = picks_of(g), rp = picks_of(r);
  const auto ge = events_of(g), re = events_of(r);
  int64_t gp_p = 0, rp_p = 0;
  for (const auto& p : gp) gp_p += p.phase == 0;
  for (const auto& p : rp) rp_p += p.phase == 0;

  const CliResult gt = run("info " + g);
  ASSERT_EQ(gt.code, 0) << gt.err;
  const std::string picks_line = "/picks: " + std::to_string(gp.size()) + " arrivals (P " + std::to_string(gp_p) +
                                 ", S " + std::to_string(static_cast<int64_t>(gp.size()) - gp_p) + ")";
  EXPECT_NE(gt.out.find(picks_line), std::string::npos) << gt.out;
  EXPECT_NE(gt.out.find("/events: " + std::to_string(ge.size()) + " events, per gather min"), std::string::npos)
      << gt.out;

  const CliResult gj = run("info --json " + g);
  ASSERT_EQ(gj.code, 0) << gj.err;
  const nlohmann::json o = nlohmann::json::parse(gj.out);
  EXPECT_EQ(o["kind"], "gathers");
  EXPECT_EQ(o["n"], 5);
  EXPECT_EQ(o["picks"]["count"], gp.size());
  EXPECT_EQ(o["picks"]["p"], gp_p);
  EXPECT_EQ(o["events"]["count"], ge.size());
  EXPECT_DOUBLE_EQ(o["events"]["per_gather"]["mean"].get<double>(), static_cast<double>(ge.size()) / 5.0);
  int64_t max_per_gather = 0;
  for (int64_t i = 0; i < 5; ++i) {
    int64_t n = 0;
    for (const auto& e : ge) n += e.gather == i;
    max_per_gather = std::max(max_per_gather, n);
  }
  EXPECT_EQ(o["events"]["per_gather"]["max"], max_per_gather);
  EXPECT_LE(o["events"]["snr_db"]["min"].get<double>(), o["events"]["snr_db"]["max"].get<double>());

  const CliResult rt = run("info " + r);
  ASSERT_EQ(rt.code, 0) << rt.err;
  EXPECT_NE(rt.out.find("continuous record of 4500 time samples (9 s at dt 0.002 s) x 20 receivers (dx 10 m)"),
            std::string::npos)
      << rt.out;
  EXPECT_NE(rt.out.find("/data   float32  [4500, 20], chunks [4096, 20]"), std::string::npos) << rt.out;
  EXPECT_NE(rt.out.find("/picks: " + std::to_string(rp.size()) + " arrivals (P " + std::to_string(rp_p)),
            std::string::npos)
      << rt.out;

  const CliResult rj = run("info --json " + r + " " + g);
  ASSERT_EQ(rj.code, 0) << rj.err;
  ASSERT_EQ(seis::test::count_lines(rj.out), 2) << rj.out;
  const nlohmann::json q = nlohmann::json::parse(rj.out.substr(0, rj.out.find('\n')));
  EXPECT_EQ(q["kind"], "record");
  EXPECT_EQ(q["samples"], 4500);
  EXPECT_EQ(q["receivers"], 20);
  EXPECT_DOUBLE_EQ(q["duration_s"].get<double>(), 9.0);
  EXPECT_DOUBLE_EQ(q["dt"].get<double>(), 0.002);
  EXPECT_DOUBLE_EQ(q["dx"].get<double>(), 10.0);
  EXPECT_EQ(q["data"]["shape"], nlohmann::json({4500, 20}));
  EXPECT_EQ(q["data"]["chunks"], nlohmann::json({4096, 20}));
  EXPECT_EQ(q["label"]["dtype"], "uint8");
  EXPECT_EQ(q["stats"]["windows_sampled"], 2);
  EXPECT_EQ(q["stats"]["nan"], 0);
  EXPECT_NEAR(q["stats"]["std"].get<double>(), 1.0, 0.5);  // unit noise plus events and spikes
  EXPECT_EQ(q["picks"]["count"], rp.size());
  EXPECT_EQ(q["events"]["count"], re.size());
  EXPECT_EQ(q["events"]["per_gather"]["max"], re.size());
}

void expect_usage_error(const std::string& args, const std::string& fragment) {
  const CliResult r = run(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(seis::test::count_lines(r.err), 1) << args << ": expected one line, got\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << args << ": " << r.err;
}

TEST(SynthRecordCli, BadContinuousFlagsAreOneLineUsageErrors) {
  const std::string f = dir() + "/never.h5";
  const std::string out = "synth --out " + f;
  expect_usage_error(out + " --continuous --receivers 8", "--continuous needs --duration");
  expect_usage_error(out + " --continuous --duration 5", "--continuous needs --receivers");
  expect_usage_error(out + " --continuous --duration -3 --receivers 8", "--duration: -3 is not a positive");
  expect_usage_error(out + " --continuous --duration 0 --receivers 8", "--duration");
  expect_usage_error(out + " --continuous --duration nan --receivers 8", "--duration");
  expect_usage_error(out + " --continuous --duration 0.0009 --receivers 8", "shorter than one sample");
  expect_usage_error(out + " --continuous --duration 1e13 --receivers 8", "more than 2^40 samples");
  expect_usage_error(out + " --continuous --duration 5 --receivers 0", "--receivers");
  expect_usage_error(out + " --continuous --duration 5 --receivers 99999999999", "--receivers");
  expect_usage_error(out + " --continuous --duration 5 --receivers 8 --events-per-minute -1", "--events-per-minute");
  expect_usage_error(out + " --continuous --duration 5 --receivers 8 --events-per-minute inf", "--events-per-minute");
  expect_usage_error(out + " --continuous --duration 5 --receivers 8 --height 64", "--height does not apply");
  expect_usage_error(out + " --samples 2 --height 16 --width 16 --duration 5", "--duration applies to --continuous");
  expect_usage_error(out + " --height 16 --width 16", "--samples is required");
  EXPECT_FALSE(file_exists(f));
  EXPECT_FALSE(file_exists(f + ".tmp"));
}

// The variety flags reach the generator (the file equals synth_sample with the same config) and the
// attributes, which info shows; in a record --bursts and --surface-waves are rates per minute.
TEST(SynthRecordCli, VarietyFlagsReachTheGeneratorAndTheAttributes) {
  const std::string g = dir() + "/variety_g.h5", r = dir() + "/variety_r.h5";
  const std::string flags =
      " --wavelets 2:0:1.5:0.5:1 --pink 0.6 --correlated-noise 1 --hum 1 --bursts 0.5 --surface-waves 0"
      " --coherent-noise 1 --polarity-flips 0.3 --reversed-traces 0.1 --attenuation 0.9 --q 40:90 --qs-ratio 0.5:0.6";
  ASSERT_EQ(run("synth --out " + g + " --samples 3 --height 64 --width 24 --seed 3" + flags).code, 0);
  seis::SynthConfig cfg;
  cfg.height = 64;
  cfg.width = 24;
  cfg.seed = 3;
  cfg.wavelet_ricker = 2;
  cfg.wavelet_ormsby = 0;
  cfg.wavelet_berlage = 1.5;
  cfg.wavelet_damped = 0.5;
  cfg.wavelet_gabor = 1;
  cfg.coherent_noise = 1;
  cfg.polarity_flips = 0.3;
  cfg.reversed_fraction = 0.1;
  cfg.pink_fraction = 0.6;
  cfg.correlated_noise = 1;
  cfg.hum = 1;
  cfg.bursts = 0.5;
  cfg.surface_waves = 0;
  cfg.q_fraction = 0.9;
  cfg.q_lo = 40;
  cfg.q_hi = 90;
  cfg.qs_ratio_lo = 0.5;
  cfg.qs_ratio_hi = 0.6;
  seis::H5SampleFile f(g);
  std::vector<float> want(64 * 24), got(want.size());
  std::vector<uint8_t> wl(want.size()), gl(want.size());
  for (int64_t i = 0; i < 3; ++i) {
    seis::synth_sample(cfg, i, want.data(), wl.data());
    f.read(i, got.data(), gl.data());
    EXPECT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << "gather " << i;
  }
  const CliResult info = run("info " + g);
  ASSERT_EQ(info.code, 0) << info.err;
  for (const char* line :
       {"wavelets = 2:0:1.5:0.5:1", "pink_fraction = 0.6", "correlated_noise = 1", "hum = 1", "bursts = 0.5",
        "surface_waves = 0", "coherent_noise = 1", "polarity_flips = 0.3", "reversed_fraction = 0.1",
        "q_fraction = 0.9", "q_lo = 40", "q_hi = 90", "qs_ratio_lo = 0.5", "qs_ratio_hi = 0.6"}) {
    EXPECT_NE(info.out.find(line), std::string::npos) << line << "\n" << info.out;
  }
  ASSERT_EQ(
      run("synth --out " + r + " --continuous --duration 3 --receivers 8 --bursts 30 --surface-waves 0 --hum 0").code,
      0);
  const seis::H5RecordFile rf(r);
  const seis::H5RecordInfo& ri = rf.info();
  EXPECT_EQ(ri.attributes.at("bursts_per_minute"), "30");
  EXPECT_EQ(ri.attributes.at("surface_waves_per_minute"), "0");
  EXPECT_EQ(ri.attributes.at("hum"), "0");
  EXPECT_EQ(ri.attributes.count("hum_hz"), 0u);
  EXPECT_EQ(ri.attributes.at("wavelets"), "1:1:1:1:1");
  EXPECT_EQ(ri.attributes.at("q_fraction"), "0");
}

TEST(SynthRecordCli, BadVarietyFlagsAreOneLineUsageErrors) {
  const std::string f = dir() + "/never_variety.h5";
  const std::string out = "synth --out " + f + " --samples 2 --height 16 --width 16";
  for (const char* bad :
       {"1:1", "1:1:1:1:1:1", "a:1:1", "0:0:0", "0:0:0:0", "1:1:1:-1", "-1:1:1", "1::1", "1:1:inf", ":1:1", "1:1:"}) {
    expect_usage_error(out + " --wavelets " + bad, "--wavelets");
  }
  expect_usage_error(out + " --pink -0.1", "--pink");
  expect_usage_error(out + " --pink 1.5", "--pink");
  expect_usage_error(out + " --correlated-noise 2", "--correlated-noise");
  expect_usage_error(out + " --hum -1", "--hum");
  expect_usage_error(out + " --bursts 2", "--bursts: 2 is not a probability per gather");
  expect_usage_error(out + " --surface-waves -0.5", "--surface-waves");
  expect_usage_error(out + " --attenuation 1.5", "--attenuation");
  expect_usage_error(out + " --q 5:100", "--q");
  expect_usage_error(out + " --q 100:50", "--q");
  expect_usage_error(out + " --q abc", "--q");
  expect_usage_error(out + " --qs-ratio 0:0.5", "--qs-ratio");
  expect_usage_error(out + " --qs-ratio 0.5:3", "--qs-ratio");
  const std::string rec = "synth --out " + f + " --continuous --duration 2 --receivers 4";
  expect_usage_error(rec + " --bursts -1", "--bursts: -1 is not a rate per minute");
  expect_usage_error(rec + " --surface-waves 7000", "--surface-waves");
  EXPECT_FALSE(file_exists(f));
  EXPECT_FALSE(file_exists(f + ".tmp"));
}

}  // namespace
