// SEG-Y reader: the real files of tests/data/segy against the values segyio 1.8.3 reads
// (SOURCE.md), byte-order pairs that must decode identically, gather grouping, and malformed files
// (real and crafted here) that must be refused with an InputError naming the file.
#include "io/segy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/error.h"
#include "io/segy_gather_stream.h"

namespace seis {
namespace {

std::string segy_path(const std::string& name) { return std::string(SEIS_SOURCE_DIR) + "/tests/data/segy/" + name; }

std::vector<float> read_all(const SegyFile& f) {
  const SegyInfo& in = f.info();
  std::vector<float> v(static_cast<size_t>(in.traces * in.samples));
  for (int64_t i = 0; i < in.traces; ++i) f.read_trace(i, v.data() + i * in.samples);
  return v;
}

double trace_sum(const SegyFile& f, int64_t i) {
  std::vector<float> t(static_cast<size_t>(f.info().samples));
  f.read_trace(i, t.data());
  double s = 0;
  for (float x : t) s += x;
  return s;
}

// The file must be refused with an InputError naming it and containing fragment.
void expect_refused(const std::string& path, const std::string& fragment,
                    SegyByteOrder order = SegyByteOrder::auto_detect) {
  try {
    SegyFile f(path, order);
    FAIL() << path << " was accepted: " << f.info().traces << " traces of " << f.info().samples << " samples";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
}

struct Expected {
  const char* file;
  bool big_endian;
  int64_t traces, samples;
  int format;
  double sum0;
  double dt_us;
};

const Expected kFiles[] = {
    {"f3.sgy", true, 414, 75, 3, 5818, 4000},           {"f3-lsb.sgy", false, 414, 75, 3, 5818, 4000},
    {"Format1msb.sgy", true, 414, 75, 1, 5818, 4000},   {"Format1lsb.sgy", false, 414, 75, 1, 5818, 4000},
    {"Format2msb.sgy", true, 414, 75, 2, 5818, 4000},   {"Format3msb.sgy", true, 414, 75, 3, 5818, 4000},
    {"Format5msb.sgy", true, 414, 75, 5, 5818, 4000},   {"Format8msb.sgy", true, 414, 75, 8, -70, 4000},
    {"small.sgy", true, 25, 50, 1, 60.0122, 4000},      {"small-lsb.sgy", false, 25, 50, 1, 60.0122, 4000},
    {"tiny.sgy", true, 6, 4, 1, 4.80006, 1000},         {"shot-gather.sgy", true, 61, 25, 1, 62.5, 1000},
    {"delay-scalar.sgy", true, 1, 251, 1, 31375, 4000},
};

TEST(Segy, RealFilesMatchSegyio) {
  for (const Expected& e : kFiles) {
    SCOPED_TRACE(e.file);
    const SegyFile f(segy_path(e.file));
    const SegyInfo& in = f.info();
    EXPECT_EQ(in.big_endian, e.big_endian);
    EXPECT_TRUE(in.byte_order_detected);
    EXPECT_EQ(in.traces, e.traces);
    EXPECT_EQ(in.samples, e.samples);
    EXPECT_EQ(in.format, e.format);
    EXPECT_EQ(in.sample_interval_us, e.dt_us);
    EXPECT_EQ(in.extended_text_headers, 0);
    EXPECT_EQ(in.first_trace_offset, 3600);
    const double sum = trace_sum(f, 0);
    EXPECT_NEAR(sum, e.sum0, 1e-4 * std::fabs(e.sum0)) << "sum of trace 0";
  }
}

TEST(Segy, ForcedByteOrderReadsTheSameOrIsRefused) {
  const SegyFile f(segy_path("f3-lsb.sgy"), SegyByteOrder::little);
  EXPECT_FALSE(f.info().byte_order_detected);
  EXPECT_FALSE(f.info().big_endian);
  EXPECT_EQ(f.info().traces, 414);
  // Read big-endian, the format code is 768.
  expect_refused(segy_path("f3-lsb.sgy"), "sample format code 768", SegyByteOrder::big);
  expect_refused(segy_path("small.sgy"), "sample format code 256", SegyByteOrder::little);
}

TEST(Segy, ByteOrderPairsAndFormatsDecodeIdentically) {
  const std::pair<const char*, const char*> pairs[] = {{"Format1msb.sgy", "Format1lsb.sgy"},
                                                       {"f3.sgy", "f3-lsb.sgy"},
                                                       {"small.sgy", "small-lsb.sgy"},
                                                       // the same integer-valued data in each format
                                                       {"f3.sgy", "Format1msb.sgy"},
                                                       {"f3.sgy", "Format2msb.sgy"},
                                                       {"f3.sgy", "Format3msb.sgy"},
                                                       {"f3.sgy", "Format5msb.sgy"}};
  for (const auto& [a, b] : pairs) {
    SCOPED_TRACE(std::string(a) + " vs " + b);
    const std::vector<float> va = read_all(SegyFile(segy_path(a))), vb = read_all(SegyFile(segy_path(b)));
    ASSERT_EQ(va.size(), vb.size());
    int64_t diff = 0, first = -1;
    for (size_t i = 0; i < va.size(); ++i) {
      if (std::memcmp(&va[i], &vb[i], sizeof(float)) != 0 && diff++ == 0) first = static_cast<int64_t>(i);
    }
    EXPECT_EQ(diff, 0) << "first difference at " << first << ": " << va[static_cast<size_t>(first)] << " vs "
                       << vb[static_cast<size_t>(first)];
  }
}

TEST(Segy, ShotGatherGroupsByFieldRecord) {
  // UPSTREAM-README: field records [2 3 5 8]; the first sample of each trace is its field record.
  const SegyFile f(segy_path("shot-gather.sgy"));
  const std::vector<SegyGather> g = f.gathers_by_field_record();
  ASSERT_EQ(g.size(), 4u);
  const int32_t records[] = {2, 3, 5, 8};
  const int64_t counts[] = {10, 12, 13, 26};
  int64_t next = 0;
  for (size_t k = 0; k < g.size(); ++k) {
    EXPECT_EQ(g[k].field_record, records[k]) << "gather " << k;
    EXPECT_EQ(g[k].traces, counts[k]) << "gather " << k;
    EXPECT_EQ(g[k].first_trace, next) << "gather " << k;
    next += g[k].traces;
    std::vector<float> d(static_cast<size_t>(f.info().samples * g[k].traces));
    f.read_gather(g[k], d.data());
    for (int64_t j = 0; j < g[k].traces; ++j) {
      EXPECT_FLOAT_EQ(std::floor(d[static_cast<size_t>(j)]), static_cast<float>(records[k])) << "gather " << k;
    }
  }
  EXPECT_EQ(next, 61);
}

TEST(Segy, F3GathersAndFixedCounts) {
  const SegyFile f(segy_path("f3.sgy"));
  const std::vector<SegyGather> g = f.gathers_by_field_record();
  ASSERT_EQ(g.size(), 23u);  // inlines 111..133, 18 crosslines each
  for (size_t k = 0; k < g.size(); ++k) {
    EXPECT_EQ(g[k].field_record, 111 + static_cast<int32_t>(k));
    EXPECT_EQ(g[k].traces, 18);
  }
  EXPECT_EQ(f.gathers_by_count(46).size(), 9u);
  try {
    f.gathers_by_count(100);
    FAIL() << "100 does not divide 414";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("must divide 414 (1, 2, 3, 6, 9, 18, 23, 46, ..., 414)"), std::string::npos)
        << e.what();
  }
  // small.sgy has field record 0 everywhere: one gather of all 25 traces.
  const SegyFile s(segy_path("small.sgy"));
  const std::vector<SegyGather> gs = s.gathers_by_field_record();
  ASSERT_EQ(gs.size(), 1u);
  EXPECT_EQ(gs[0].traces, 25);
}

TEST(Segy, GatherIsTimeMajor) {
  const SegyFile f(segy_path("small.sgy"));
  const int64_t h = f.info().samples;
  const SegyGather g{5, 7, 0};
  std::vector<float> d(static_cast<size_t>(h * g.traces)), t(static_cast<size_t>(h));
  f.read_gather(g, d.data());
  for (int64_t j = 0; j < g.traces; ++j) {
    f.read_trace(g.first_trace + j, t.data());
    for (int64_t s = 0; s < h; ++s) ASSERT_EQ(d[static_cast<size_t>(s * g.traces + j)], t[static_cast<size_t>(s)]);
  }
}

TEST(Segy, BrokenRealFilesAreRefused) {
  expect_refused(segy_path("broken.sgy"), "truncated or malformed");
  expect_refused(segy_path("text.sgy"), "no traces");
  // long.sgy: 60000 samples tile its size as 3 traces, but traces 1 and 2 have no real headers.
  expect_refused(segy_path("long.sgy"), "declares");
  expect_refused(segy_path("no-such-file.sgy"), "cannot open");
  expect_refused(std::string(SEIS_SOURCE_DIR) + "/tests/data/segy", "directory");
}

// ---- Files crafted here ------------------------------------------------------------------

struct Synth {
  bool big = true;
  int format = 1;
  int ns = 4;
  int traces = 6;
  uint16_t revision = 0x0100;
  int16_t ext_headers = 0;
  int dt_us = 2000;
  int per_record = 3;  // traces per field record
  bool byte_order_constant = false;
  std::vector<std::string> ext_text;  // contents of the extended textual headers
};

void put(std::vector<uint8_t>& b, size_t at, uint64_t v, int bytes, bool big) {
  for (int i = 0; i < bytes; ++i)
    b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * (big ? bytes - 1 - i : i)));
}

// An exact IBM encoding of f (the test values have few significant bits).
uint32_t to_ibm(float f) {
  if (f == 0) return 0;
  int e2 = 0;
  const double m = std::frexp(std::fabs(static_cast<double>(f)), &e2);  // |f| = m * 2^e2, m in [0.5, 1)
  const int e16 = e2 >= 0 ? (e2 + 3) / 4 : -((-e2) / 4);                // ceil(e2 / 4)
  const double frac = std::ldexp(m, e2 - 4 * e16 + 24);
  return (f < 0 ? 0x80000000u : 0u) | static_cast<uint32_t>(e16 + 64) << 24 | static_cast<uint32_t>(frac);
}

float synth_value(int trace, int t) { return static_cast<float>(trace * 10 + t - 7); }

std::vector<uint8_t> make_segy(const Synth& s) {
  const int bps = s.format == 3 ? 2 : s.format == 8 ? 1 : 4;
  const size_t ext = s.ext_text.size();
  const size_t offset = 3600 + 3200 * ext;
  std::vector<uint8_t> b(offset + static_cast<size_t>(s.traces) * (240 + static_cast<size_t>(s.ns) * bps), 0);
  std::memset(b.data(), 0x40, 3200);  // EBCDIC spaces
  put(b, 3216, static_cast<uint64_t>(s.dt_us), 2, s.big);
  put(b, 3220, static_cast<uint64_t>(s.ns), 2, s.big);
  put(b, 3224, static_cast<uint64_t>(s.format), 2, s.big);
  put(b, 3500, s.revision, 2, s.big);
  put(b, 3502, 1, 2, s.big);
  put(b, 3504, static_cast<uint16_t>(s.ext_headers), 2, s.big);
  if (s.byte_order_constant) put(b, 3296, 0x01020304, 4, s.big);
  for (size_t k = 0; k < ext; ++k) {
    std::memset(b.data() + 3600 + 3200 * k, ' ', 3200);
    std::memcpy(b.data() + 3600 + 3200 * k, s.ext_text[k].data(), s.ext_text[k].size());
  }
  for (int i = 0; i < s.traces; ++i) {
    const size_t at = offset + static_cast<size_t>(i) * (240 + static_cast<size_t>(s.ns) * bps);
    put(b, at + 8, static_cast<uint64_t>(100 + i / s.per_record), 4, s.big);
    put(b, at + 114, static_cast<uint64_t>(s.ns), 2, s.big);
    put(b, at + 116, static_cast<uint64_t>(s.dt_us), 2, s.big);
    for (int t = 0; t < s.ns; ++t) {
      const float v = synth_value(i, t);
      const size_t p = at + 240 + static_cast<size_t>(t) * bps;
      uint32_t bits = 0;
      std::memcpy(&bits, &v, 4);
      switch (s.format) {
        case 1:
          put(b, p, to_ibm(v), 4, s.big);
          break;
        case 2:
          put(b, p, static_cast<uint32_t>(static_cast<int32_t>(v)), 4, s.big);
          break;
        case 3:
          put(b, p, static_cast<uint16_t>(static_cast<int16_t>(v)), 2, s.big);
          break;
        case 5:
          put(b, p, bits, 4, s.big);
          break;
        case 8:
          b[p] = static_cast<uint8_t>(static_cast<int8_t>(v));
          break;
        default:
          put(b, p, bits, 4, s.big);
          break;
      }
    }
  }
  return b;
}

std::string write_file(const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = testing::TempDir() + "/seis_segy_" + name;
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

void expect_synth_values(const SegyFile& f, const Synth& s) {
  ASSERT_EQ(f.info().traces, s.traces);
  ASSERT_EQ(f.info().samples, s.ns);
  std::vector<float> t(static_cast<size_t>(s.ns));
  for (int i = 0; i < s.traces; ++i) {
    f.read_trace(i, t.data());
    for (int k = 0; k < s.ns; ++k)
      ASSERT_EQ(t[static_cast<size_t>(k)], synth_value(i, k)) << "trace " << i << " sample " << k;
  }
}

TEST(Segy, CraftedFilesInEveryFormatAndOrder) {
  for (bool big : {true, false}) {
    for (int format : {1, 2, 3, 5, 8}) {
      Synth s;
      s.big = big;
      s.format = format;
      SCOPED_TRACE("format " + std::to_string(format) + (big ? " big" : " little"));
      const SegyFile f(write_file("fmt.sgy", make_segy(s)));
      EXPECT_EQ(f.info().big_endian, big);
      EXPECT_EQ(f.info().format, format);
      EXPECT_EQ(f.info().sample_interval_us, 2000);
      EXPECT_EQ(f.info().revision(), "1.0");
      expect_synth_values(f, s);
      const std::vector<SegyGather> g = f.gathers_by_field_record();
      ASSERT_EQ(g.size(), 2u);
      EXPECT_EQ(g[1].field_record, 101);
    }
  }
}

TEST(Segy, Rev2ByteOrderConstantDecides) {
  Synth s;
  s.big = false;
  s.revision = 0x0200;
  s.byte_order_constant = true;
  const SegyFile f(write_file("rev2.sgy", make_segy(s)));
  EXPECT_FALSE(f.info().big_endian);
  EXPECT_EQ(f.info().revision_major, 2);
  expect_synth_values(f, s);
}

TEST(Segy, ExtendedTextHeaders) {
  Synth s;
  s.ext_text = {"((SEG: Test ver 1.0))", "more text"};
  s.ext_headers = 2;
  const SegyFile f(write_file("ext2.sgy", make_segy(s)));
  EXPECT_EQ(f.info().extended_text_headers, 2);
  EXPECT_EQ(f.info().first_trace_offset, 3600 + 6400);
  expect_synth_values(f, s);

  s.ext_text = {"((SEG: Test ver 1.0))", "((SEG: EndText))"};
  s.ext_headers = -1;  // variable: ended by the EndText stanza
  const SegyFile v(write_file("extvar.sgy", make_segy(s)));
  EXPECT_EQ(v.info().extended_text_headers, 2);
  expect_synth_values(v, s);

  s.ext_text = {"((SEG: Test ver 1.0))", "no end"};
  expect_refused(write_file("extnoend.sgy", make_segy(s)), "EndText");
}

TEST(Segy, CraftedMalformedFilesAreRefused) {
  {
    Synth s;
    s.format = 4;
    expect_refused(write_file("fmt4.sgy", make_segy(s)), "sample format code 4 (fixed point");
  }
  {
    Synth s;
    s.format = 77;
    expect_refused(write_file("fmt77.sgy", make_segy(s)), "neither a SEG-Y format code");
  }
  {
    Synth s;
    s.ns = 0;
    expect_refused(write_file("ns0.sgy", make_segy(s)), "samples per trace is 0");
  }
  {
    Synth s;
    std::vector<uint8_t> b = make_segy(s);
    b.resize(b.size() + 7);  // samples * traces no longer tile the file
    expect_refused(write_file("tail.sgy", b), "7 bytes left over");
    b.resize(b.size() - 20);  // cut short
    expect_refused(write_file("cut.sgy", b), "truncated or malformed");
  }
  {
    Synth s;
    s.ext_headers = -5;
    expect_refused(write_file("extneg.sgy", make_segy(s)), "invalid number of extended textual headers -5");
    s.ext_headers = 30000;
    expect_refused(write_file("extbig.sgy", make_segy(s)), "30000 extended textual headers");
  }
  {
    Synth s;  // binary header says 4 samples, but the trace headers say otherwise half-way
    std::vector<uint8_t> b = make_segy(s);
    put(b, 3600 + 5 * (240 + 16) + 114, 9, 2, true);
    const std::string path = write_file("badhdr.sgy", b);
    expect_refused(path, "trace 5 header");
    // A middle trace is only seen when read: by the header pass or by read_gather.
    b = make_segy(s);
    put(b, 3600 + 3 * (240 + 16) + 114, 9, 2, true);
    const SegyFile f(write_file("badmid.sgy", b));
    EXPECT_THROW(f.gathers_by_field_record(), InputError);
    std::vector<float> d(static_cast<size_t>(4 * 6));
    EXPECT_THROW(f.read_gather({0, 6, 0}, d.data()), InputError);
  }
  {
    Synth s;
    std::vector<uint8_t> b = make_segy(s);
    b.resize(3599);
    expect_refused(write_file("3599.sgy", b), "3599 bytes");
    b.resize(3600 + 100);
    expect_refused(write_file("3700.sgy", b), "100 bytes into the first");
  }
  {
    Synth s;
    s.ns = 60000;
    s.traces = 1;
    std::vector<uint8_t> b = make_segy(s);
    b.resize(3600 + 240 + 1000);  // declares far more samples than the file holds
    expect_refused(write_file("huge.sgy", b), "truncated or malformed");
  }
}

// The stream gives each gather exactly as read_gather reads it, in order, padded to the width asked
// for, at every depth; a bad trace header fails the gather that holds it and no earlier one; and a
// consumer may stop early (the destructor joins a thread that is waiting for a free slot).
TEST(SegyGatherStream, GathersInOrderAsReadGatherReadsThem) {
  Synth s;
  s.traces = 23;
  s.ns = 7;
  s.per_record = 5;  // field records of 5, 5, 5, 5 and 3 traces
  const SegyFile f(write_file("stream.sgy", make_segy(s)));
  const std::vector<SegyGather> gathers = f.gathers_by_field_record();
  ASSERT_EQ(gathers.size(), 5u);
  const int64_t w = 6;  // one column of padding for most gathers, three for the last
  for (int depth : {1, 2, 3, 8}) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    SegyGatherStream stream(f, gathers, w, depth);
    EXPECT_EQ(stream.depth(), std::min(depth, 5));
    for (size_t i = 0; i < gathers.size(); ++i) {
      const SegyGatherStream::Gather g = stream.next();
      EXPECT_EQ(g.index, static_cast<int64_t>(i));
      // Time for the thread to read on: it must not touch the slot held here.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::vector<float> want(static_cast<size_t>(s.ns * w), -1.0f);
      std::vector<uint8_t> want_headers(static_cast<size_t>(gathers[i].traces * 240));
      f.read_gather(gathers[i], want.data(), w, want_headers.data());
      EXPECT_EQ(std::memcmp(g.data, want.data(), want.size() * sizeof(float)), 0) << "gather " << i;
      EXPECT_EQ(std::memcmp(g.headers, want_headers.data(), want_headers.size()), 0) << "gather " << i;
    }
    EXPECT_THROW(stream.next(), Error);
  }
  {
    SegyGatherStream stream(f, gathers, w, 2);  // stopped after one gather, the thread blocked on a slot
    EXPECT_EQ(stream.next().index, 0);
  }
  {
    SegyGatherStream stream(f, gathers, w, 3);  // stopped before any
  }

  // The depth for a budget: the buffer being written and 1 to 7 read ahead; none ahead past 1 GiB.
  EXPECT_EQ(SegyGatherStream::depth_for(int64_t{2} << 20, int64_t{64} << 20), 8);
  EXPECT_EQ(SegyGatherStream::depth_for(int64_t{16} << 20, int64_t{64} << 20), 5);
  EXPECT_EQ(SegyGatherStream::depth_for(int64_t{40} << 20, int64_t{64} << 20), 2);
  EXPECT_EQ(SegyGatherStream::depth_for(int64_t{1} << 30, int64_t{64} << 20), 2);
  EXPECT_EQ(SegyGatherStream::depth_for((int64_t{1} << 30) + 1, int64_t{64} << 20), 1);
  EXPECT_EQ(SegyGatherStream::depth_for(0, int64_t{64} << 20), 8);

  std::vector<uint8_t> b = make_segy(s);
  put(b, 3600 + 12 * (240 + 7 * 4) + 114, 9, 2, true);  // trace 12, in the third gather
  const std::string path = write_file("stream-bad.sgy", b);
  const SegyFile bad(path);
  // (By counts: gathers_by_field_record's pass over the headers would fail before any read.)
  const std::vector<SegyGather> whole = bad.gathers_by_count(s.traces);
  SegyGatherStream stream(bad, whole, s.traces, 2);
  try {
    stream.next();
    FAIL() << "the gather holding trace 12 was read";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("trace 12 header"), std::string::npos) << e.what();
  }
  const std::vector<SegyGather> by_count = bad.gathers_by_count(1);
  SegyGatherStream by_trace(bad, by_count, 1, 4);  // the 12 gathers before it arrive
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(by_trace.next().index, i);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the thread reaches trace 12 meanwhile
  }
  EXPECT_THROW(by_trace.next(), InputError);
}

TEST(Segy, IbmConversionIsExact) {
  EXPECT_EQ(ibm_to_float(0x41100000u), 1.0f);
  EXPECT_EQ(ibm_to_float(0xC276A000u), -118.625f);
  EXPECT_EQ(ibm_to_float(0x00000000u), 0.0f);
  EXPECT_TRUE(std::signbit(ibm_to_float(0x80000000u)));
  EXPECT_EQ(ibm_to_float(0x80000000u), 0.0f);
  EXPECT_EQ(ibm_to_float(0x7F000000u), 0.0f);  // zero fraction, any exponent
  EXPECT_EQ(ibm_to_float(0x40800000u), 0.5f);  // 0.5 * 16^0
  EXPECT_EQ(ibm_to_float(0x41080000u), 0.5f);  // unnormalised: 0.03125 * 16
  EXPECT_EQ(ibm_to_float(0x60800000u), std::ldexp(1.0f, 127));
  EXPECT_EQ(ibm_to_float(0x1E100000u), std::ldexp(1.0f, -140));  // a float denormal, exact
  EXPECT_EQ(ibm_to_float(0x00100000u), 0.0f);                    // 16^-65 underflows
  EXPECT_EQ(ibm_to_float(0x7FFFFFFFu), std::numeric_limits<float>::infinity());
  EXPECT_EQ(ibm_to_float(0xFFFFFFFFu), -std::numeric_limits<float>::infinity());
  // Round trip: floats with 21 significant bits are exactly representable in IBM.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(0.5f, 1.0f);
  std::uniform_int_distribution<int> ex(-100, 100);
  for (int k = 0; k < 100000; ++k) {
    uint32_t bits = 0;
    float f = std::ldexp(mant(rng), ex(rng)) * (k % 2 ? -1.0f : 1.0f);
    std::memcpy(&bits, &f, 4);
    bits &= ~7u;
    std::memcpy(&f, &bits, 4);
    ASSERT_EQ(ibm_to_float(to_ibm(f)), f) << "k " << k << " f " << f;
  }
}

}  // namespace
}  // namespace seis
