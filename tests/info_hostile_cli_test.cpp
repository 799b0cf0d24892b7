// seisseg info on hostile and invalid files (written with h5py): every one is exit 1 and one line
// naming the file and what is wrong, or a summary, and small files that declare huge sizes finish
// in moments in bounded memory: records of 2^36 receivers or 2^62 samples, 2^31 never-written
// gathers, tables of 2^40 never-written rows, table fields of the wrong class (a float phase of NaN or -1.0 was counted
// as P) or out of their type's range, and ground truth rows outside the data (read_truth).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_util.h"

namespace {

using seis::test::have_h5py;

// The files, once per test binary run: dir() + "/" + name.
const std::string& dir() {
  static const std::string d = [] {
    const std::string p = testing::TempDir() + "info_hostile_" + std::to_string(::getpid());
    ::mkdir(p.c_str(), 0755);
    const std::string script = p + "/make.py";
    std::ofstream(script) << R"(import sys, os
import h5py
import numpy as np
os.chdir(sys.argv[1])
I8, U1, F8 = '<i8', 'u1', '<f8'
P = [('gather', I8), ('trace', I8), ('phase', U1), ('time_s', F8), ('event', I8)]
E = [('gather', I8), ('event', I8), ('origin_time_s', F8), ('first_arrival_s', F8), ('last_arrival_s', F8),
     ('x_m', F8), ('z_m', F8), ('snr_db', F8)]

def table(rows, dtype):
    a = np.zeros(len(rows), dtype)
    for k, r in enumerate(rows):
        for name, v in zip(a.dtype.names, r):
            a[k][name] = v
    return a

def gathers(name, picks=None, events=None, pick_dtype=P, extra=None):
    # 3 gathers of 8 x 4; picks and events given as tuples in field order
    with h5py.File(name, 'w') as f:
        f.create_dataset('data', data=np.zeros((3, 8, 4), 'f4'), chunks=(1, 8, 4))
        f.attrs['dt'] = 0.002
        if picks is not None:
            f.create_dataset('picks', data=table(picks, pick_dtype))
        if events is not None:
            f.create_dataset('events', data=table(events, E))
        if extra:
            extra(f)

def record(name, shape, chunks, extra=None):  # (rank 3: gathers)
    with h5py.File(name, 'w') as f:
        f.create_dataset('data', shape=shape, dtype='f4', chunks=chunks)
        f.attrs['dt'] = 0.002
        if extra:
            extra(f)

ok = (0, 1, 1, 0.1, 0)
gathers('ok.h5', [(0, 1, 1, 0.1, 0), (2, 3, 0, 0.2, 1)],
        pick_dtype=[('gather', '<i4'), ('trace', '>i2'), ('phase', '<i8'), ('time_s', '<f4'), ('event', '<u4')])
gathers('pick_gather_high.h5', [ok, ok, (3, 0, 0, 0.1, 0)])
gathers('pick_gather_neg.h5', [(-1, 0, 0, 0.1, 0)])
gathers('pick_trace.h5', [ok, (0, 4, 0, 0.1, 0)])
gathers('pick_phase2.h5', [(0, 0, 2, 0.1, 0)])
gathers('pick_time_nan.h5', [(0, 0, 0, float('nan'), 0)])
gathers('pick_time_inf.h5', [(0, 0, 0, float('inf'), 0)])
gathers('events_order.h5', events=[(1, 0, 0, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0, 0, 0, 0)])
gathers('events_gather.h5', events=[(0, 0, 0, 0, 0, 0, 0, 0), (5, 0, 0, 0, 0, 0, 0, 0)])
gathers('phase_nan.h5', [(0, 0, float('nan'), 0.1, 0)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', F8), ('time_s', F8), ('event', I8)])
gathers('phase_minus1f.h5', [(0, 0, -1.0, 0.1, 0)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', '<f4'), ('time_s', F8), ('event', I8)])
gathers('phase_minus1.h5', [ok, (0, 0, -1, 0.1, 0)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', '<i8'), ('time_s', F8), ('event', I8)])
gathers('phase_300.h5', [(0, 0, 300, 0.1, 0)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', '<u2'), ('time_s', F8), ('event', I8)])
gathers('gather_u64.h5', [(2**64 - 1, 0, 0, 0.1, 0)], pick_dtype=[('gather', '<u8'), ('trace', I8), ('phase', U1), ('time_s', F8), ('event', I8)])
gathers('time_int.h5', [(0, 0, 0, 1, 0)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', U1), ('time_s', I8), ('event', I8)])
gathers('trace_str.h5', [(0, b'1', 0, 0.1, 0)], pick_dtype=[('gather', I8), ('trace', 'S4'), ('phase', U1), ('time_s', F8), ('event', I8)])
gathers('no_event.h5', [(0, 0, 0, 0.1)], pick_dtype=[('gather', I8), ('trace', I8), ('phase', U1), ('time_s', F8)])
gathers('picks_2d.h5', extra=lambda f: f.create_dataset('picks', data=np.zeros((2, 2), P)))
gathers('picks_float.h5', extra=lambda f: f.create_dataset('picks', data=np.zeros(4, 'f8')))
gathers('picks_huge.h5', extra=lambda f: f.create_dataset('picks', shape=(2**40,), dtype=P, chunks=(65536,)))
gathers('picks_contiguous.h5', extra=lambda f: f.create_dataset('picks', shape=(2**20,), dtype=P))
def partial(f):
    d = f.create_dataset('picks', shape=(100000,), dtype=P, chunks=(1000,), compression='gzip')
    d[:50000] = np.zeros(50000, P)
gathers('picks_partial.h5', extra=partial)
gathers('picks_bigchunk.h5', extra=lambda f: f.create_dataset('picks', shape=(2**23,), dtype=P, chunks=(2**23,), compression='gzip'))
record('rec_trace.h5', (100, 4), (50, 4), lambda f: f.create_dataset('picks', data=table([(0, 4, 0, 0.1, 0)], P)))
record('rec_gather.h5', (100, 4), (50, 4), lambda f: f.create_dataset('picks', data=table([(1, 0, 0, 0.1, 0)], P)))
record('rec_wide.h5', (4096, 2**36), (1, 2**20))
record('rec_w18.h5', (4096, 2**18), (1, 2**18))
record('rec_long.h5', (2**62, 1), (2**20, 1))
record('rec_longest.h5', (2**63 - 1, 1), (2**20, 1))
record('gathers_unwritten.h5', (2**31, 8, 4), (1, 8, 4))
record('gathers_long.h5', (2**62, 8, 4), (1, 8, 4))
record('gathers_wide.h5', (2, 2**20, 2**14), (1, 1024, 1024))
print('ok')
)";
    const seis::test::CliResult r = seis::test::run_command("/usr/bin/python3 " + script + " " + p);
    EXPECT_EQ(r.out, "ok\n") << r.err;
    return p;
  }();
  return d;
}

struct Case {
  std::string file, fragment;
};

// Limits for every run: the files are a few KB, whatever they declare.
constexpr double kMaxSeconds = 10;
constexpr long kMaxPeakKib = 200 << 10;

void expect_refused(const Case& c) {
  const std::string path = dir() + "/" + c.file;
  const seis::test::MeasuredRun r = seis::test::run_seisseg_measured({"info", path});
  EXPECT_EQ(r.code, 1) << c.file << ": " << r.err;
  EXPECT_EQ(seis::test::count_lines(r.err), 1) << c.file << ": " << r.err;
  EXPECT_EQ(r.err.rfind("seisseg info: " + path + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(c.fragment), std::string::npos) << c.file << ": " << r.err;
  EXPECT_LT(r.seconds, kMaxSeconds) << c.file;
  EXPECT_LT(r.peak_kib, kMaxPeakKib) << c.file;
}

TEST(InfoHostileCli, GroundTruthOutsideTheDataIsRefusedRowByRow) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the hostile files were not written";
  for (const Case& c : std::vector<Case>{
           {"pick_gather_high.h5", "/picks row 2: gather 3 outside [0, 3)"},
           {"pick_gather_neg.h5", "/picks row 0: gather -1 outside [0, 3)"},
           {"pick_trace.h5", "/picks row 1: trace 4 outside [0, 4)"},
           {"pick_phase2.h5", "/picks row 0: phase 2 is neither 0 (P) nor 1 (S)"},
           {"pick_time_nan.h5", "/picks row 0: time_s is not finite"},
           {"pick_time_inf.h5", "/picks row 0: time_s is not finite"},
           {"events_order.h5", "/events row 1: gather 0 after gather 1: rows must be ordered by gather"},
           {"events_gather.h5", "/events row 1: gather 5 outside [0, 3)"},
           {"rec_trace.h5", "/picks row 0: trace 4 outside [0, 4)"},
           {"rec_gather.h5", "/picks row 0: gather 1 outside [0, 1)"},
       }) {
    expect_refused(c);
  }
}

TEST(InfoHostileCli, TableFieldsOfTheWrongClassOrRangeAreRefused) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the hostile files were not written";
  for (const Case& c : std::vector<Case>{
           // HDF5 converted these silently: NaN and -1.0 to phase 0 (P), -1 and 300 saturated.
           {"phase_nan.h5", "/picks field 'phase' is not an integer"},
           {"phase_minus1f.h5", "/picks field 'phase' is not an integer"},
           {"phase_minus1.h5", "/picks rows 0..2: a value of 'phase' (uint8) is outside that type's range"},
           {"phase_300.h5", "a value of 'phase' (uint8) is outside"},
           {"gather_u64.h5", "a value of 'gather', 'trace' or 'event' (int64) is outside"},
           {"time_int.h5", "/picks field 'time_s' is not a floating-point number"},
           {"trace_str.h5", "/picks field 'trace' is not an integer"},
           {"no_event.h5", "/picks has no field 'event'"},
           {"picks_2d.h5", "/picks has shape [2, 2]; expected a 1-D table"},
           {"picks_float.h5", "/picks is not a compound dataset"},
       }) {
    expect_refused(c);
  }
  // Other integer and float widths, and big-endian, are read (and counted) as they are.
  const seis::test::CliResult r = seis::test::run_seisseg("info " + dir() + "/ok.h5");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("/picks: 2 arrivals (P 1, S 1)"), std::string::npos) << r.out;
}

TEST(InfoHostileCli, TablesDeclaringRowsTheirFileDoesNotStoreAreRefusedAtOnce) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the hostile files were not written";
  for (const Case& c : std::vector<Case>{
           // 2^40 rows in a 2 KB file: info scanned fill values for hours.
           {"picks_huge.h5", "/picks declares 1099511627776 rows but the file stores at most 0 (never written"},
           {"picks_contiguous.h5", "/picks declares 1048576 rows but the file stores at most 0"},
           {"picks_partial.h5", "/picks declares 100000 rows but the file stores at most 50000"},
           {"picks_bigchunk.h5", "/picks has compressed chunks of 8388608 rows (264 MiB each)"},
       }) {
    expect_refused(c);
  }
}

TEST(InfoHostileCli, RecordsDeclaringHugeSizesFinishFastInBoundedMemory) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the hostile files were not written";
  // 2^36 receivers: one row is 320 GiB.
  expect_refused(
      {"rec_wide.h5", "/data has 68719476736 receivers: one row of data and label is more than the 256 MiB"});
  struct Summary {
    std::string file;
    int64_t samples, window;
  };
  // 2^18 receivers: windows of 4096 rows were 5.2 GB; 2^62 and 2^63 - 1 samples: the windows'
  // start rows overflowed int64 ("internal error ... rows [-3074...").
  for (const Summary& s : std::vector<Summary>{
           {"rec_w18.h5", 4096, 32}, {"rec_long.h5", int64_t{1} << 62, 4096}, {"rec_longest.h5", INT64_MAX, 4096}}) {
    const std::string path = dir() + "/" + s.file;
    const seis::test::MeasuredRun m = seis::test::run_seisseg_measured({"info", path});
    EXPECT_EQ(m.code, 0) << s.file << ": " << m.err;
    EXPECT_LT(m.seconds, kMaxSeconds) << s.file;
    EXPECT_LT(m.peak_kib, kMaxPeakKib) << s.file;
    const seis::test::CliResult j = seis::test::run_seisseg("info --json " + path);
    ASSERT_EQ(j.code, 0) << j.err;
    const nlohmann::json o = nlohmann::json::parse(j.out);
    EXPECT_EQ(o["samples"].get<int64_t>(), s.samples);
    EXPECT_EQ(o["stats"]["window_samples"].get<int64_t>(), s.window) << s.file;
    EXPECT_EQ(o["stats"]["windows_sampled"].get<int64_t>(), 16) << s.file;
    EXPECT_EQ(o["stats"]["values"].get<int64_t>(), 16 * s.window * o["receivers"].get<int64_t>()) << s.file;
  }
}

TEST(InfoHostileCli, GatherFilesDeclaringHugeSizesFinishFastInBoundedMemory) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the hostile files were not written";
  // 2^34 GiB of float32 per gather: more than one chunk (4 GiB) can hold.
  expect_refused({"gathers_wide.h5", "gathers of 1048576 x 16384 values exceed the 4 GiB"});
  // 2^31 never-written gathers in 1.4 KB: a table of 8 bytes per declared gather was 16 GiB; 2^62:
  // the spread of the sampled gathers overflowed.
  for (const char* file : {"gathers_unwritten.h5", "gathers_long.h5"}) {
    const std::string path = dir() + "/" + file;
    const seis::test::MeasuredRun m = seis::test::run_seisseg_measured({"info", path});
    EXPECT_EQ(m.code, 0) << file << ": " << m.err;
    EXPECT_LT(m.seconds, kMaxSeconds) << file;
    EXPECT_LT(m.peak_kib, kMaxPeakKib) << file;
    const seis::test::CliResult j = seis::test::run_seisseg("info --json " + path);
    ASSERT_EQ(j.code, 0) << j.err;
    const nlohmann::json o = nlohmann::json::parse(j.out);
    EXPECT_EQ(o["stats"]["gathers_sampled"].get<int64_t>(), 16) << file;
    EXPECT_EQ(o["stats"]["values"].get<int64_t>(), 16 * 8 * 4) << file;
    EXPECT_EQ(o["stats"]["max"].get<double>(), 0.0) << file << ": fill values";
  }
}

}  // namespace
