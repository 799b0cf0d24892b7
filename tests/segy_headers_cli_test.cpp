// SEG-Y in and out with every header kept, through the program: convert keeps the raw headers byte for
// byte, decodes /headers and pads gathers of different trace counts (/trace_valid); predict writes the
// probabilities back as SEG-Y with the input's headers, picks and events carry the trace identity,
// and malformed files are one-line errors that leave nothing behind. Files written by segyio (the
// outside reference, /opt/seis-segyio from scripts/setup.sh --tests) in both byte orders and formats 1
// and 5, and files written here (so the round trip runs without segyio too).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_util.h"
#include "h5_util.h"
#include "io/detection_csv.h"
#include "io/hdf5_dataset.h"
#include "io/segy.h"
#include "io/segy_headers.h"
#include "io/segy_writer.h"
#include "models/unet.h"

namespace seis {
namespace {

namespace fs = std::filesystem;
using test::lines_of;
using test::read_all;
using test::run_seisseg;

constexpr int64_t kSamples = 50;
const std::vector<int64_t> kWidths = {60, 64, 48};

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void put(uint8_t* p, int64_t v, int bytes, bool big) {
  for (int i = 0; i < bytes; ++i)
    p[big ? bytes - 1 - i : i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

// A format 5 SEG-Y file written here: gathers of `widths` traces of kSamples, ffid 1001 + g (or
// ffid(k) of trace k), every trace header word filled with something distinct.
void write_segy(const std::string& path, const std::vector<int64_t>& widths, bool big,
                int64_t (*ffid)(int64_t k, int64_t g) = nullptr) {
  SegyWriter::Options o;
  o.text.assign(3200, 0x40);  // EBCDIC blanks
  for (int i = 0; i < 20; ++i) o.text[static_cast<size_t>(i)] = static_cast<uint8_t>(0xC1 + i % 9);
  o.binary.assign(400, 0);
  put(o.binary.data() + 3217 - 3201, 2000, 2, big);      // dt, us
  put(o.binary.data() + 3221 - 3201, kSamples, 2, big);  // samples
  o.big_endian = big;
  o.samples = kSamples;
  SegyWriter w(path, o);
  std::vector<uint8_t> h(240);
  std::vector<float> s(kSamples);
  int64_t k = 0;
  for (size_t g = 0; g < widths.size(); ++g) {
    for (int64_t j = 0; j < widths[g]; ++j, ++k) {
      for (int b = 0; b < 240; ++b) h[static_cast<size_t>(b)] = static_cast<uint8_t>(k * 7 + b * 13);
      put(h.data() + 8, ffid ? ffid(k, static_cast<int64_t>(g)) : 1001 + static_cast<int64_t>(g), 4, big);
      put(h.data() + 12, j + 1, 4, big);
      put(h.data() + 70, -100, 2, big);               // coordinate scalar: divide by 100
      put(h.data() + 72, 123456 + 1000 * k, 4, big);  // source x
      put(h.data() + 80, -50 * k, 4, big);            // group x
      put(h.data() + 114, kSamples, 2, big);
      put(h.data() + 116, 2000, 2, big);
      for (int64_t t = 0; t < kSamples; ++t) s[static_cast<size_t>(t)] = std::sin(0.3f * t + 0.1f * k);
      w.write_trace(h.data(), s.data(), 1);
    }
  }
  w.commit();
}

// The first python that imports segyio: $SEIS_SEGYIO_PYTHON, /opt/seis-segyio, /usr/bin/python3.
std::string segyio_python() {
  std::vector<std::string> candidates;
  if (const char* e = std::getenv("SEIS_SEGYIO_PYTHON")) candidates.emplace_back(e);
  candidates.emplace_back("/opt/seis-segyio/bin/python3");
  candidates.emplace_back("/usr/bin/python3");
  for (const std::string& py : candidates) {
    if (std::system(("'" + py + "' -c 'import segyio' >/dev/null 2>&1").c_str()) == 0) return py;
  }
  return "";
}

int run_python(const std::string& py, const std::string& file, const std::string& script, const std::string& args) {
  std::ofstream(file) << script;
  const int status = std::system(("'" + py + "' " + file + " " + args).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Writes argv[1] with segyio (format argv[2], endian argv[3]): gathers of 60, 64 and 48 traces with
// filled headers, then reads it back with segyio and writes one line per trace of the header values it
// reads to argv[1].expect.
const char* kSegyioWrite = R"(
import sys, numpy as np, segyio
path, fmt, endian = sys.argv[1], int(sys.argv[2]), sys.argv[3]
widths, ns = [60, 64, 48], 50
spec = segyio.spec()
spec.format, spec.samples, spec.tracecount, spec.endian = fmt, list(range(ns)), sum(widths), endian
rng = np.random.default_rng(5)
su = segyio.su
with segyio.create(path, spec) as f:
    f.text[0] = segyio.tools.create_text_header({1: 'seisseg test: gathers of 60, 64 and 48 traces', 2: 'segyio'})
    f.bin.update(hdt=2000, hns=ns)
    k = 0
    for g, w in enumerate(widths):
        for j in range(w):
            f.header[k] = {su.tracl: k + 1, su.tracr: 7 * k, su.fldr: 1001 + g, su.tracf: j + 1,
                           su.cdp: 5000 + k, su.cdpt: j, su.trid: 1, su.offset: -3000 + 50 * j,
                           su.gelev: 11 * j, su.selev: -4, su.scalel: -10, su.scalco: -100,
                           su.sx: 123456 + 1000 * g, su.sy: -7654321, su.gx: 100000 + 2500 * j,
                           su.gy: 200000 - 7 * j, su.delrt: 12 + g, su.ns: ns, su.dt: 2000,
                           su.year: 2024, su.day: 200 + g, su.hour: 13, su.minute: 7 + g, su.sec: j % 60,
                           su.cdpx: 17 * k, su.cdpy: -k, su.iline: g, su.xline: j}
            f.trace[k] = (rng.standard_normal(ns) * (1 + j)).astype(np.float32)
            k += 1
keys = [su.fldr, su.tracf, su.cdp, su.offset, su.scalco, su.sx, su.sy, su.gx, su.gy, su.delrt,
        su.year, su.day, su.hour, su.minute, su.sec]
with segyio.open(path, ignore_geometry=True, endian=endian) as f, open(path + '.expect', 'w') as out:
    for h in f.header:
        out.write(' '.join(str(h[key]) for key in keys) + '\n')
)";

// Compares predict's SEG-Y argv[2] with its input argv[1] through segyio (endian argv[3]): the textual
// header, every trace header field, the format code 5 and the other binary header fields; exits 1
// with the first difference.
const char* kSegyioCheck = R"(
import sys, segyio
inp, out, endian = sys.argv[1], sys.argv[2], sys.argv[3]
with segyio.open(inp, ignore_geometry=True, endian=endian) as a, segyio.open(out, ignore_geometry=True, endian=endian) as b:
    if a.text[0] != b.text[0]: sys.exit('textual headers differ')
    if b.bin[segyio.BinField.Format] != 5: sys.exit('format %s' % b.bin[segyio.BinField.Format])
    ba, bb = dict(a.bin), dict(b.bin)
    ba.pop(segyio.BinField.Format); bb.pop(segyio.BinField.Format)
    if ba != bb: sys.exit('binary headers differ')
    if a.tracecount != b.tracecount: sys.exit('%d traces, expected %d' % (b.tracecount, a.tracecount))
    for i in range(a.tracecount):
        if dict(a.header[i]) != dict(b.header[i]): sys.exit('trace %d header differs' % i)
    if len(b.trace[0]) != len(a.trace[0]): sys.exit('samples differ')
)";

class SegyHeadersCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::process_dir("segy_headers_cli");
    UNetConfig c;
    c.levels = 3;
    c.base = 2;
    UNet(c, 4, Device::cpu()).save(dir_ + "/w.safetensors", {{"seisseg.normalize", "trace"}});
  }
  static std::string dir_;
};
std::string SegyHeadersCli::dir_;

// Converts segy to h5 and checks everything convert must keep: raw headers byte for byte (read from
// the file itself), /data with zero padding, /trace_valid, /headers against the raw headers' values.
void expect_converted(const std::string& segy, const std::string& h5, const std::vector<int64_t>& widths) {
  SCOPED_TRACE(segy);
  const test::CliResult r = run_seisseg("convert " + segy + " --out " + h5);
  ASSERT_EQ(r.code, 0) << r.err;
  const SegyFile s(segy);
  const SegyInfo& in = s.info();
  const std::vector<uint8_t> raw = file_bytes(segy);
  const int64_t W = *std::max_element(widths.begin(), widths.end()), N = static_cast<int64_t>(widths.size());
  std::vector<hsize_t> dims;
  const std::vector<uint8_t> text = read_all<uint8_t>(h5, "segy_text_header", H5T_NATIVE_UINT8, &dims);
  ASSERT_EQ(text.size(), 3200u);
  EXPECT_TRUE(std::equal(text.begin(), text.end(), raw.begin()));
  const std::vector<uint8_t> bin = read_all<uint8_t>(h5, "segy_binary_header", H5T_NATIVE_UINT8, &dims);
  ASSERT_EQ(bin.size(), 400u);
  EXPECT_TRUE(std::equal(bin.begin(), bin.end(), raw.begin() + 3200));
  const std::vector<uint8_t> th = read_all<uint8_t>(h5, "segy_trace_headers", H5T_NATIVE_UINT8, &dims);
  ASSERT_EQ(dims, (std::vector<hsize_t>{static_cast<hsize_t>(in.traces), 240}));
  for (int64_t i = 0; i < in.traces; ++i) {
    const uint8_t* want = raw.data() + in.first_trace_offset + i * in.trace_bytes;
    ASSERT_EQ(std::memcmp(th.data() + i * 240, want, 240), 0) << "trace header " << i;
  }
  const std::vector<uint8_t> valid = read_all<uint8_t>(h5, "trace_valid", H5T_NATIVE_UINT8, &dims);
  const bool padded = *std::min_element(widths.begin(), widths.end()) != W;
  if (padded) {
    ASSERT_EQ(dims, (std::vector<hsize_t>{static_cast<hsize_t>(N), static_cast<hsize_t>(W)}));
    for (int64_t g = 0; g < N; ++g) {
      for (int64_t j = 0; j < W; ++j) {
        EXPECT_EQ(valid[static_cast<size_t>(g * W + j)], j < widths[static_cast<size_t>(g)] ? 1 : 0) << g << "," << j;
      }
    }
  } else {
    EXPECT_TRUE(valid.empty());
  }
  // /data: each real trace as the reader reads it, padding zero.
  const H5SampleFile f(h5);
  ASSERT_EQ(f.info().n, N);
  ASSERT_EQ(f.info().width, W);
  std::vector<float> got(static_cast<size_t>(in.samples * W)), trace(static_cast<size_t>(in.samples));
  // /headers: every row decoded from its raw header, in file order.
  SegyHeadersFile headers(h5, N, W);
  EXPECT_TRUE(headers.has_raw());
  EXPECT_TRUE(headers.has_table());
  EXPECT_EQ(headers.has_padding(), padded);
  EXPECT_EQ(headers.big_endian(), in.big_endian);
  int64_t k = 0;
  for (int64_t g = 0; g < N; ++g) {
    f.read(g, got.data(), nullptr);
    headers.begin(g);
    for (int64_t j = 0; j < W; ++j) {
      if (j >= widths[static_cast<size_t>(g)]) {
        for (int64_t t = 0; t < in.samples; ++t) ASSERT_EQ(got[static_cast<size_t>(t * W + j)], 0.0f);
        EXPECT_EQ(headers.row(j), nullptr);
        continue;
      }
      s.read_trace(k, trace.data());
      for (int64_t t = 0; t < in.samples; ++t)
        ASSERT_EQ(got[static_cast<size_t>(t * W + j)], trace[t]) << g << "," << j;
      const SegyHeaderRow* row = headers.row(j);
      ASSERT_NE(row, nullptr);
      const SegyHeaderRow want = segy_header_row(th.data() + k * 240, in.big_endian, g, j);
      EXPECT_EQ(std::memcmp(row, &want, sizeof want), 0) << "/headers row " << k;
      EXPECT_EQ(std::memcmp(headers.raw_header(j), th.data() + k * 240, 240), 0);
      ++k;
    }
  }
}

// predict --segy-out from h5 (converted from segy) and the raw checks: textual header equal, binary
// header equal but for the format code (5), every trace header byte equal (but the pick word), the
// samples /prob of the real traces in file order, in the input's byte order.
void expect_segy_out(const std::string& segy, const std::string& h5, const std::string& dir, int pick_byte) {
  SCOPED_TRACE(segy);
  const std::string out = dir + "/p.h5", sgy = dir + "/p.sgy";
  const std::string pick = pick_byte > 0 ? " --segy-pick-byte " + std::to_string(pick_byte) : "";
  const test::CliResult r =
      run_seisseg("predict --weights " + dir + "/../w.safetensors --in " + h5 + " --out " + out + " --segy-out " + sgy +
                  pick + " --picks " + dir + "/picks.csv --events " + dir + "/events.csv --threshold 0.3 --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(test::file_exists(sgy + ".tmp"));
  const std::vector<uint8_t> a = file_bytes(segy), b = file_bytes(sgy);
  const SegyFile in(segy);
  const SegyFile o(sgy);
  EXPECT_EQ(o.info().format, 5);
  EXPECT_EQ(o.info().big_endian, in.info().big_endian);
  EXPECT_EQ(o.info().traces, in.info().traces);
  EXPECT_EQ(o.info().samples, in.info().samples);
  ASSERT_GE(b.size(), 3600u);
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 3200, b.begin())) << "textual header";
  for (int64_t k = 3200; k < 3600; ++k) {
    if (k == 3224 || k == 3225) continue;
    ASSERT_EQ(a[static_cast<size_t>(k)], b[static_cast<size_t>(k)]) << "binary header byte " << k + 1;
  }
  std::vector<hsize_t> dims;
  const std::vector<float> prob = read_all<float>(out, "prob", H5T_NATIVE_FLOAT, &dims);
  ASSERT_EQ(dims.size(), 3u);
  const int64_t N = static_cast<int64_t>(dims[0]), H = static_cast<int64_t>(dims[1]), W = static_cast<int64_t>(dims[2]);
  SegyHeadersFile headers(h5, N, W);
  std::vector<float> trace(static_cast<size_t>(H));
  int64_t k = 0;
  const std::vector<Pick> picks = read_picks_csv(dir + "/picks.csv");
  for (int64_t g = 0; g < N; ++g) {
    headers.begin(g);
    for (int64_t j = 0; j < W; ++j) {
      if (!headers.valid(j)) {
        for (int64_t t = 0; t < H; ++t) ASSERT_EQ(prob[static_cast<size_t>((g * H + t) * W + j)], 0.0f) << "padding";
        continue;
      }
      const uint8_t* ha = a.data() + in.info().first_trace_offset + k * in.info().trace_bytes;
      const uint8_t* hb = b.data() + o.info().first_trace_offset + k * o.info().trace_bytes;
      for (int i = 0; i < 240; ++i) {
        if (pick_byte > 0 && i >= pick_byte - 1 && i < pick_byte + 3) continue;
        ASSERT_EQ(ha[i], hb[i]) << "trace " << k << " header byte " << i + 1;
      }
      if (pick_byte > 0) {
        double first = -1;
        for (const Pick& p : picks) {
          if (p.gather == g && p.trace == j && (first < 0 || p.time_ms < first)) first = p.time_ms;
        }
        int64_t word = 0;
        for (int i = 0; i < 4; ++i) {
          const int at = pick_byte - 1 + (o.info().big_endian ? i : 3 - i);
          word = word << 8 | hb[at];
        }
        EXPECT_EQ(static_cast<int32_t>(word), first < 0 ? -1 : std::lround(first)) << "trace " << k;
      }
      o.read_trace(k, trace.data());
      for (int64_t t = 0; t < H; ++t) {
        ASSERT_EQ(trace[static_cast<size_t>(t)], prob[static_cast<size_t>((g * H + t) * W + j)]) << k << "," << t;
      }
      ++k;
    }
  }
  EXPECT_EQ(k, in.info().traces);
  // The picks carry the trace identity, none from padding; events their gather's ffid.
  const std::vector<std::string> pl = lines_of(dir + "/picks.csv");
  ASSERT_FALSE(pl.empty());
  EXPECT_EQ(pl[0], "gather,trace,sample,time_ms,score,ffid,trace_number,source_x,source_y,group_x,group_y");
  EXPECT_FALSE(picks.empty());
  for (size_t i = 0; i < picks.size(); ++i) {
    headers.begin(picks[i].gather);
    const SegyHeaderRow* row = headers.row(picks[i].trace);
    ASSERT_NE(row, nullptr) << "a pick on padding: " << pl[i + 1];
    std::istringstream fields(pl[i + 1]);
    std::vector<std::string> v;
    for (std::string x; std::getline(fields, x, ',');) v.push_back(x);
    ASSERT_EQ(v.size(), 11u) << pl[i + 1];
    EXPECT_EQ(std::stoll(v[5]), row->ffid);
    EXPECT_EQ(std::stoll(v[6]), row->trace_number);
    EXPECT_DOUBLE_EQ(std::stod(v[7]), row->source_x);
    EXPECT_DOUBLE_EQ(std::stod(v[10]), row->group_y);
  }
  const std::vector<std::string> el = lines_of(dir + "/events.csv");
  ASSERT_FALSE(el.empty());
  EXPECT_EQ(el[0], "gather,event,time_ms,n_traces,score,ffid");
}

TEST_F(SegyHeadersCli, RoundTripKeepsEveryTraceHeaderByteForByte) {
  for (bool big : {true, false}) {
    const std::string dir = dir_ + (big ? "/own_big" : "/own_little");
    fs::create_directories(dir);
    write_segy(dir + "/in.sgy", kWidths, big);
    expect_converted(dir + "/in.sgy", dir + "/in.h5", kWidths);
    const test::CliResult info = run_seisseg("info " + dir + "/in.h5");
    ASSERT_EQ(info.code, 0) << info.err;
    EXPECT_NE(info.out.find("SEG-Y: 172 traces in 3 gathers, 20 padding traces (/trace_valid 0), raw headers kept (" +
                            std::string(big ? "big" : "little") + "-endian)"),
              std::string::npos)
        << info.out;
    EXPECT_NE(info.out.find("/headers: ffid 1001..1003, 3 field records"), std::string::npos) << info.out;
    expect_segy_out(dir + "/in.sgy", dir + "/in.h5", dir, 0);
    expect_segy_out(dir + "/in.sgy", dir + "/in.h5", dir, 233);
  }
}

// Field records of one width convert in one pass on the first record's width; where a later record
// is narrower, or one record runs over two guessed gathers, convert falls back to reading every header
// first. Either way the result is the same complete conversion.
TEST_F(SegyHeadersCli, OnePassGuessFallsBackWhenFieldRecordsDiffer) {
  const std::vector<std::vector<int64_t>> cases = {{5, 5, 5}, {4, 4, 2, 6}, {4, 8, 4}};
  for (size_t c = 0; c < cases.size(); ++c) {
    const std::string dir = dir_ + "/one_pass_" + std::to_string(c);
    fs::create_directories(dir);
    write_segy(dir + "/in.sgy", cases[c], c % 2 == 0);
    expect_converted(dir + "/in.sgy", dir + "/in.h5", cases[c]);
    EXPECT_FALSE(test::file_exists(dir + "/in.h5.tmp"));
  }
}

TEST_F(SegyHeadersCli, SegyioFilesConvertAndComeBackAsSegyioReadsThem) {
  const std::string py = segyio_python();
  if (py.empty()) {
    GTEST_SKIP() << "no python imports segyio ($SEIS_SEGYIO_PYTHON, /opt/seis-segyio/bin/python3, "
                    "/usr/bin/python3; scripts/setup.sh --tests installs it): the segyio comparison did not run";
  }
  for (int format : {1, 5}) {
    for (const char* endian : {"big", "little"}) {
      const std::string dir = dir_ + "/segyio_" + std::to_string(format) + endian;
      SCOPED_TRACE(dir);
      fs::create_directories(dir);
      const std::string sgy = dir + "/in.sgy";
      ASSERT_EQ(run_python(py, dir + "/write.py", kSegyioWrite, sgy + " " + std::to_string(format) + " " + endian), 0);
      expect_converted(sgy, dir + "/in.h5", kWidths);
      EXPECT_EQ(SegyFile(sgy).info().format, format);
      // /headers as segyio reads the file: the scalar (-100) applied to the coordinates.
      const std::vector<std::string> expect = lines_of(sgy + ".expect");
      ASSERT_EQ(expect.size(), 172u);
      const H5SampleFile f(dir + "/in.h5");
      SegyHeadersFile headers(dir + "/in.h5", f.info().n, f.info().width);
      int64_t k = 0;
      for (int64_t g = 0; g < 3; ++g) {
        headers.begin(g);
        for (int64_t j = 0; j < kWidths[static_cast<size_t>(g)]; ++j, ++k) {
          std::istringstream in(expect[static_cast<size_t>(k)]);
          int64_t v[15];
          for (int64_t& x : v) in >> x;
          const SegyHeaderRow* r = headers.row(j);
          ASSERT_NE(r, nullptr);
          EXPECT_EQ(r->ffid, v[0]);
          EXPECT_EQ(r->trace_number, v[1]);
          EXPECT_EQ(r->cdp, v[2]);
          EXPECT_EQ(r->offset, v[3]);
          EXPECT_EQ(r->coordinate_scalar, v[4]);
          EXPECT_DOUBLE_EQ(r->source_x, static_cast<double>(v[5]) / 100);
          EXPECT_DOUBLE_EQ(r->source_y, static_cast<double>(v[6]) / 100);
          EXPECT_DOUBLE_EQ(r->group_x, static_cast<double>(v[7]) / 100);
          EXPECT_DOUBLE_EQ(r->group_y, static_cast<double>(v[8]) / 100);
          EXPECT_EQ(r->delay_ms, v[9]);
          EXPECT_EQ((std::vector<int64_t>{r->year, r->day, r->hour, r->minute, r->second}),
                    (std::vector<int64_t>{v[10], v[11], v[12], v[13], v[14]}));
        }
      }
      expect_segy_out(sgy, dir + "/in.h5", dir, 0);
      EXPECT_EQ(run_python(py, dir + "/check.py", kSegyioCheck, sgy + " " + dir + "/p.sgy " + endian), 0);
    }
  }
}

TEST_F(SegyHeadersCli, SegyOutWithoutHeadersIsAnErrorAndWritesNothing) {
  const std::string dir = dir_ + "/no_headers";
  fs::create_directories(dir);
  ASSERT_EQ(run_seisseg("synth --out " + dir + "/g.h5 --samples 2 --height 32 --width 16 --seed 1").code, 0);
  const test::CliResult r = run_seisseg("predict --weights " + dir_ + "/w.safetensors --in " + dir + "/g.h5 --out " +
                                        dir + "/p.h5 --segy-out " + dir + "/p.sgy --device cpu");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(dir + "/g.h5"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--segy-out"), std::string::npos) << r.err;
  for (const char* f : {"/p.sgy", "/p.sgy.tmp", "/p.h5", "/p.h5.tmp"}) EXPECT_FALSE(test::file_exists(dir + f)) << f;
  const test::CliResult u = run_seisseg("predict --weights " + dir_ + "/w.safetensors --in " + dir + "/g.h5 --out " +
                                        dir + "/p.h5 --segy-pick-byte 233");
  EXPECT_EQ(u.code, 2) << u.err;
  const test::CliResult b = run_seisseg("predict --weights " + dir_ + "/w.safetensors --in " + dir + "/g.h5 --out " +
                                        dir + "/p.h5 --segy-out " + dir + "/p.sgy --segy-pick-byte 238");
  EXPECT_EQ(b.code, 2) << b.err;
}

// The detector of a converted file reads the same identity: detect's picks.csv and events.csv.
TEST_F(SegyHeadersCli, DetectPicksCarryTheTraceIdentity) {
  const std::string dir = dir_ + "/detect";
  fs::create_directories(dir);
  write_segy(dir + "/in.sgy", kWidths, true);
  ASSERT_EQ(run_seisseg("convert " + dir + "/in.sgy --out " + dir + "/in.h5").code, 0);
  const test::CliResult r =
      run_seisseg("detect --weights " + dir_ + "/w.safetensors --in " + dir + "/in.h5 --out " + dir +
                  "/events.csv --picks " + dir + "/picks.csv --window 48 --threshold 0.3 --device cpu");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> pl = lines_of(dir + "/picks.csv");
  ASSERT_GT(pl.size(), 1u);
  EXPECT_EQ(pl[0], "gather,trace,sample,time_ms,score,ffid,trace_number,source_x,source_y,group_x,group_y");
  for (const Pick& p : read_picks_csv(dir + "/picks.csv")) {
    ASSERT_LT(p.trace, kWidths[static_cast<size_t>(p.gather)]) << "a pick on a padding trace";
  }
  EXPECT_EQ(lines_of(dir + "/events.csv").at(0), "gather,event,time_ms,n_traces,score,ffid");
}

// A SEG-Y rev 2 file built byte by byte: the byte-order constant 0x01020304 at 3297-3300 in the file's
// order, revision 0x0200, a stale 16-bit sample count (7) that the extended count at 3269-3272 (50)
// overrides, the sample interval only as rev 2's double at 3273-3280 (1500 us), the trace count at
// 3513-3520, two extended textual headers, and either a first-trace offset at 3521-3528 that leaves
// an 800-byte gap after them (count 2 at 3505-3506), a variable count (-1) ended by a
// ((SEG: EndText)) stanza with offset 0, or a count of 3 that the offset overrides (rev 2: a nonzero
// offset wins; the headers are the 2 that end before it). Gathers of 5 and 7 traces (ffid 7 and 8),
// IEEE float.
struct Rev2File {
  std::vector<uint8_t> bytes;
  int64_t first_trace = 0;
  std::vector<float> samples;  // trace k, sample t at k * 50 + t
};

enum class Rev2Layout { gap, end_text, count_overridden };

Rev2File rev2_file(bool big, Rev2Layout layout) {
  const bool gap = layout == Rev2Layout::gap, end_text = layout == Rev2Layout::end_text;
  constexpr int64_t ns = 50, traces = 12;
  Rev2File f;
  f.first_trace = 3600 + 2 * 3200 + (gap ? 800 : 0);
  f.bytes.assign(static_cast<size_t>(f.first_trace + traces * (240 + 4 * ns)), 0);
  uint8_t* b = f.bytes.data();
  for (int i = 0; i < 3200; ++i) b[i] = static_cast<uint8_t>(0x40 + i % 3);  // EBCDIC-ish text
  put(b + 3216, 0, 2, big);                                                  // dt (3217): only the double
  put(b + 3220, 7, 2, big);                                                  // stale samples (3221)
  put(b + 3224, 5, 2, big);                                                  // IEEE float
  put(b + 3268, ns, 4, big);                                                 // extended samples (3269)
  double dt = 1500.0;
  uint64_t dt_bits = 0;
  std::memcpy(&dt_bits, &dt, 8);
  put(b + 3272, static_cast<int64_t>(dt_bits), 8, big);  // extended interval (3273)
  put(b + 3296, 0x01020304, 4, big);                     // byte-order constant (3297)
  put(b + 3500, 0x0200, 2, big);                         // revision 2.0 (3501)
  put(b + 3504, end_text ? -1 : gap ? 2 : 3, 2, big);    // extended textual headers (3505)
  put(b + 3512, traces, 8, big);                         // traces (3513)
  put(b + 3520, end_text ? 0 : f.first_trace, 8, big);   // first trace offset (3521)
  for (int k = 0; k < 2; ++k) {
    uint8_t* e = b + 3600 + 3200 * k;
    std::memset(e, ' ', 3200);
    const std::string line = "((SEG: extended header " + std::to_string(k) + "))";
    std::memcpy(e, line.data(), line.size());
    if (end_text && k == 1) std::memcpy(e + 80, "((SEG: EndText))", 16);
  }
  for (int64_t i = 0; i < (gap ? 800 : 0); ++i) b[6800 + 3200 + i] = 0xEE;  // the gap: not a header
  const int64_t widths[2] = {5, 7};
  int64_t k = 0;
  for (int g = 0; g < 2; ++g) {
    for (int64_t j = 0; j < widths[g]; ++j, ++k) {
      uint8_t* h = b + f.first_trace + k * (240 + 4 * ns);
      for (int i = 0; i < 240; ++i) h[i] = static_cast<uint8_t>(k * 11 + i * 3 + 1);
      put(h + 8, 7 + g, 4, big);  // ffid
      put(h + 12, j + 1, 4, big);
      put(h + 114, ns, 2, big);
      put(h + 116, 1500, 2, big);
      for (int64_t t = 0; t < ns; ++t) {
        const float v = std::sin(0.2f * static_cast<float>(t)) * static_cast<float>(k + 1);
        f.samples.push_back(v);
        uint32_t bits = 0;
        std::memcpy(&bits, &v, 4);
        put(h + 240 + 4 * t, bits, 4, big);
      }
    }
  }
  return f;
}

TEST_F(SegyHeadersCli, Rev2FilesConvertWithExactHeaders) {
  for (bool big : {true, false}) {
    for (Rev2Layout layout : {Rev2Layout::gap, Rev2Layout::end_text, Rev2Layout::count_overridden}) {
      const std::string name = layout == Rev2Layout::gap        ? "gap"
                               : layout == Rev2Layout::end_text ? "endtext"
                                                                : "overridden";
      SCOPED_TRACE(std::string(big ? "big" : "little") + "-endian, " + name);
      const std::string dir = dir_ + "/rev2_" + (big ? "big_" : "little_") + name;
      fs::create_directories(dir);
      const Rev2File f = rev2_file(big, layout);
      std::ofstream(dir + "/in.sgy", std::ios::binary)
          .write(reinterpret_cast<const char*>(f.bytes.data()), static_cast<std::streamsize>(f.bytes.size()));
      const test::CliResult r = run_seisseg("convert " + dir + "/in.sgy --out " + dir + "/in.h5");
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_NE(r.out.find("12 traces in 2 gathers"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("shape [2, 50, 7]"), std::string::npos) << r.out;
      EXPECT_NE(r.out.find(std::string(big ? "big" : "little") + "-endian (detected)"), std::string::npos) << r.out;
      const std::string h5 = dir + "/in.h5";
      std::vector<hsize_t> dims;
      const std::vector<uint8_t> text = read_all<uint8_t>(h5, "segy_text_header", H5T_NATIVE_UINT8, &dims);
      ASSERT_EQ(text.size(), 3200u);
      EXPECT_TRUE(std::equal(text.begin(), text.end(), f.bytes.begin())) << "textual header";
      const std::vector<uint8_t> bin = read_all<uint8_t>(h5, "segy_binary_header", H5T_NATIVE_UINT8, &dims);
      ASSERT_EQ(bin.size(), 400u);
      EXPECT_TRUE(std::equal(bin.begin(), bin.end(), f.bytes.begin() + 3200)) << "binary header";
      const std::vector<uint8_t> ext = read_all<uint8_t>(h5, "segy_extended_text_headers", H5T_NATIVE_UINT8, &dims);
      ASSERT_EQ(dims, (std::vector<hsize_t>{2, 3200}));
      EXPECT_TRUE(std::equal(ext.begin(), ext.end(), f.bytes.begin() + 3600)) << "extended textual headers";
      const std::vector<uint8_t> th = read_all<uint8_t>(h5, "segy_trace_headers", H5T_NATIVE_UINT8, &dims);
      ASSERT_EQ(dims, (std::vector<hsize_t>{12, 240}));
      for (int64_t k = 0; k < 12; ++k) {
        ASSERT_EQ(std::memcmp(th.data() + k * 240, f.bytes.data() + f.first_trace + k * 440, 240), 0) << "trace " << k;
      }
      const H5SampleFile out(h5);
      ASSERT_EQ(out.info().n, 2);
      ASSERT_EQ(out.info().height, 50);
      ASSERT_EQ(out.info().width, 7);
      EXPECT_DOUBLE_EQ(out.info().dt, 0.0015);
      EXPECT_EQ(out.info().attributes.at("segy_revision"), "2.0");
      std::vector<float> data(50 * 7);
      std::vector<uint8_t> valid(7);
      int64_t k = 0;
      for (int64_t g = 0; g < 2; ++g) {
        out.read(g, data.data(), nullptr);
        out.read_trace_valid(g, valid.data());
        for (int64_t j = 0; j < 7; ++j) {
          const bool real = j < (g == 0 ? 5 : 7);
          EXPECT_EQ(valid[static_cast<size_t>(j)], real ? 1 : 0) << g << "," << j;
          for (int64_t t = 0; t < 50; ++t) {
            const float want = real ? f.samples[static_cast<size_t>(k * 50 + t)] : 0.0f;
            ASSERT_EQ(data[static_cast<size_t>(t * 7 + j)], want) << "gather " << g << " trace " << j << " t " << t;
          }
          k += real ? 1 : 0;
        }
      }
    }
  }
}

// detect --segy-out writes what predict --segy-out writes (the same code, apps/segy_prob_writer.h):
// the same windows give the same probabilities and picks, so the files are equal byte for byte, in
// either byte order. Without SEG-Y headers (or on a record) it is a one-line error and nothing is
// written.
TEST_F(SegyHeadersCli, DetectSegyOutIsPredictsSegyOut) {
  for (bool big : {true, false}) {
    const std::string dir = dir_ + (big ? "/detect_segy_big" : "/detect_segy_little");
    fs::create_directories(dir);
    write_segy(dir + "/in.sgy", kWidths, big);
    ASSERT_EQ(run_seisseg("convert " + dir + "/in.sgy --out " + dir + "/in.h5").code, 0);
    const std::string common = " --weights " + dir_ + "/w.safetensors --in " + dir + "/in.h5 --window 48 " +
                               "--threshold 0.3 --segy-pick-byte 233 --device cpu";
    const test::CliResult p = run_seisseg("predict" + common + " --out " + dir + "/p.h5 --picks " + dir +
                                          "/p.csv --segy-out " + dir + "/p.sgy");
    ASSERT_EQ(p.code, 0) << p.err;
    const test::CliResult d = run_seisseg("detect" + common + " --out " + dir + "/events.csv --picks " + dir +
                                          "/d.csv --segy-out " + dir + "/d.sgy");
    ASSERT_EQ(d.code, 0) << d.err;
    EXPECT_NE(d.out.find("172 traces with their SEG-Y headers -> " + dir + "/d.sgy"), std::string::npos) << d.out;
    EXPECT_FALSE(test::file_exists(dir + "/d.sgy.tmp"));
    const std::vector<uint8_t> ps = file_bytes(dir + "/p.sgy"), ds = file_bytes(dir + "/d.sgy");
    ASSERT_EQ(ps.size(), 3600u + 172u * (240u + 4u * kSamples));
    EXPECT_TRUE(ps == ds) << "detect's SEG-Y differs from predict's";
    // Not a file of -1 pick words and zeros: some trace has a pick, as in picks.csv.
    EXPECT_GT(lines_of(dir + "/d.csv").size(), 1u);
  }
  const std::string dir = dir_ + "/detect_segy_errors";
  fs::create_directories(dir);
  ASSERT_EQ(run_seisseg("synth --out " + dir + "/g.h5 --samples 2 --height 32 --width 16 --seed 1").code, 0);
  ASSERT_EQ(run_seisseg("synth --out " + dir + "/r.h5 --continuous --duration 2 --receivers 16 --seed 1").code, 0);
  for (const char* in : {"/g.h5", "/r.h5"}) {
    SCOPED_TRACE(in);
    const test::CliResult r = run_seisseg("detect --weights " + dir_ + "/w.safetensors --in " + dir + in + " --out " +
                                          dir + "/e.csv --window 32 --segy-out " + dir + "/d.sgy --device cpu");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(dir + in), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--segy-out"), std::string::npos) << r.err;
    for (const char* f : {"/d.sgy", "/d.sgy.tmp", "/e.csv", "/e.csv.tmp"})
      EXPECT_FALSE(test::file_exists(dir + f)) << f;
  }
  EXPECT_EQ(
      run_seisseg("detect --method sta-lta --in " + dir + "/g.h5 --out " + dir + "/e.csv --segy-out " + dir + "/d.sgy")
          .code,
      2);
  EXPECT_EQ(run_seisseg("detect --weights " + dir_ + "/w.safetensors --in " + dir + "/g.h5 --out " + dir +
                        "/e.csv --segy-pick-byte 233")
                .code,
            2);
}

// Malformed files: one line naming the file (and the trace where one is at fault), exit 1, nothing
// under --out.
TEST_F(SegyHeadersCli, MalformedHeadersAreOneLineErrors) {
  const std::string dir = dir_ + "/malformed";
  fs::create_directories(dir);
  const std::string good = dir + "/good.sgy";
  write_segy(good, kWidths, true);
  const std::vector<uint8_t> bytes = file_bytes(good);
  const int64_t tb = 240 + 4 * kSamples;
  auto variant = [&](const std::string& name, auto&& edit) {
    std::vector<uint8_t> b = bytes;
    edit(b);
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return dir + "/" + name;
  };
  struct Case {
    std::string path, fragment;
  };
  const std::vector<Case> cases = {
      // 100 bytes more than whole traces: the trace count disagrees with the file size.
      {variant("extra.sgy", [](std::vector<uint8_t>& b) { b.resize(b.size() + 100, 0); }), "not a whole number"},
      // rev 2 trace count (3513-3520) that disagrees with the size.
      {variant("count.sgy",
               [](std::vector<uint8_t>& b) {
                 put(b.data() + 3500, 0x0200, 2, true);
                 put(b.data() + 3516, 999, 4, true);
               }),
       "declares 999 traces"},
      // Zero samples in the binary header and every trace header.
      {variant("zero.sgy",
               [&](std::vector<uint8_t>& b) {
                 put(b.data() + 3220, 0, 2, true);
                 for (int64_t i = 0; i < 172; ++i) put(b.data() + 3600 + i * tb + 114, 0, 2, true);
               }),
       "samples per trace is 0"},
      // An absurd sample count: 65535 everywhere.
      {variant("absurd.sgy",
               [&](std::vector<uint8_t>& b) {
                 put(b.data() + 3220, 65535, 2, true);
                 for (int64_t i = 0; i < 172; ++i) put(b.data() + 3600 + i * tb + 114, 65535, 2, true);
               }),
       "truncated or malformed"},
      // Trace 70's header declares another sample count: the layout is broken there.
      {variant("trace70.sgy", [&](std::vector<uint8_t>& b) { put(b.data() + 3600 + 70 * tb + 114, 49, 2, true); }),
       "trace 70"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    const std::string out = dir + "/out.h5";
    const test::CliResult r = run_seisseg("convert " + c.path + " --out " + out);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find(c.path), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.fragment), std::string::npos) << r.err;
    EXPECT_FALSE(test::file_exists(out));
    EXPECT_FALSE(test::file_exists(out + ".tmp"));
  }
  // Gathers of one trace: every trace its own field record.
  const std::string ones = dir + "/ones.sgy";
  write_segy(ones, {10}, true, [](int64_t k, int64_t) { return 500 + k; });
  const test::CliResult r = run_seisseg("convert " + ones + " --out " + dir + "/out.h5");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(test::count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(ones + ": trace 0 is a gather of one trace"), std::string::npos) << r.err;
  EXPECT_FALSE(test::file_exists(dir + "/out.h5"));
  // ... which --gather-size groups.
  EXPECT_EQ(run_seisseg("convert " + ones + " --out " + dir + "/out.h5 --gather-size 5").code, 0);
}

}  // namespace
}  // namespace seis
