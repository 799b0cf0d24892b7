// The HDF5 dataset format: bit-exact round trips through H5SampleWriter and H5SampleFile, files
// written by h5py (float16 data, float labels, other chunkings) read back right, our files read
// by h5py, every bad input an InputError naming the file, and concurrent reads.
#include "io/hdf5_dataset.h"

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "cli_util.h"
#include "engine/error.h"
#include "io/float16.h"
#include "io/normalize.h"

namespace seis {
namespace {

std::string tmp_path(const std::string& name) {
  return testing::TempDir() + "h5ds_" + std::to_string(::getpid()) + "_" + name;
}

using seis::test::file_exists;

using seis::test::have_h5py;

// Runs a Python script (with h5py and numpy imported) with the given arguments; returns the exit code.
int run_python(const std::string& script, const std::string& args) {
  return seis::test::run_h5py_script(tmp_path("script.py"), script, args);
}

template <typename T>
std::vector<T> read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<T> v(bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

template <typename T>
void write_raw(const std::string& path, const std::vector<T>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// Bit equality, or both NaN (payloads aside).
void expect_same_floats(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const bool same = std::memcmp(&got[k], &want[k], 4) == 0 || (std::isnan(got[k]) && std::isnan(want[k]));
    if (!same && ++bad <= 10)
      ADD_FAILURE() << what << ": element " << k << " is " << got[k] << ", expected " << want[k];
  }
  EXPECT_EQ(bad, 0) << what;
}

struct Set {
  int64_t n, h, w;
  std::vector<float> data;
  std::vector<uint8_t> label;
};

Set make_set(int64_t n, int64_t h, int64_t w, uint32_t seed) {
  Set s{n, h, w, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  s.data.resize(static_cast<size_t>(n * h * w));
  s.label.resize(s.data.size());
  for (size_t k = 0; k < s.data.size(); ++k) {
    s.data[k] = nd(rng);
    s.label[k] = static_cast<uint8_t>(rng() % 3 == 0 ? 1 : 0);
  }
  // Special values survive bit-exactly.
  s.data[0] = -0.0f;
  s.data[1] = std::numeric_limits<float>::infinity();
  s.data[2] = std::numeric_limits<float>::quiet_NaN();
  s.data[3] = std::numeric_limits<float>::denorm_min();
  s.label[0] = 255;
  return s;
}

void write_set(const std::string& path, const Set& s, int gzip, bool norm_stats = false) {
  H5SampleWriter::Options o;
  o.n = s.n;
  o.height = s.h;
  o.width = s.w;
  o.gzip_level = gzip;
  o.norm_stats = norm_stats;
  o.dt = 0.002;
  o.dx = 12.5;
  H5SampleWriter w(path, o);
  const int64_t hw = s.h * s.w;
  for (int64_t i = s.n - 1; i >= 0; --i) w.write(i, s.data.data() + i * hw, s.label.data() + i * hw);  // any order
  w.set_attribute("generator", std::string("unit test"));
  w.set_attribute("snr_db_lo", -3.5);
  w.set_int_attribute("seed", 1234567890123);
  EXPECT_TRUE(file_exists(path + ".tmp"));
  EXPECT_FALSE(file_exists(path));
  w.commit();
  EXPECT_FALSE(file_exists(path + ".tmp"));
}

void expect_reads(const H5SampleFile& f, const Set& s) {
  const int64_t hw = s.h * s.w;
  std::vector<float> d(static_cast<size_t>(hw));
  std::vector<uint8_t> l(static_cast<size_t>(hw));
  for (int64_t i = 0; i < s.n; ++i) {
    f.read(i, d.data(), l.data());
    EXPECT_EQ(std::memcmp(d.data(), s.data.data() + i * hw, static_cast<size_t>(hw) * 4), 0) << "data, sample " << i;
    EXPECT_EQ(std::memcmp(l.data(), s.label.data() + i * hw, static_cast<size_t>(hw)), 0) << "label, sample " << i;
  }
}

TEST(Hdf5Dataset, RoundTripIsBitExactUncompressedAndGzip) {
  const Set s = make_set(5, 7, 9, 1);
  for (int gzip : {0, 4}) {
    SCOPED_TRACE("gzip " + std::to_string(gzip));
    const std::string path = tmp_path("rt" + std::to_string(gzip) + ".h5");
    write_set(path, s, gzip);
    H5SampleFile f(path);
    const H5DatasetInfo& in = f.info();
    EXPECT_EQ(in.path, path);
    EXPECT_EQ(in.n, 5);
    EXPECT_EQ(in.height, 7);
    EXPECT_EQ(in.width, 9);
    EXPECT_EQ(in.data_type, H5ElemType::f32);
    EXPECT_EQ(in.label_type, H5ElemType::u8);
    EXPECT_TRUE(in.data_chunked_per_sample);
    EXPECT_EQ(in.data_chunk, (std::vector<int64_t>{1, 7, 9}));
    EXPECT_EQ(in.data_filters, gzip ? "deflate(4)" : "");
    EXPECT_EQ(in.label_filters, gzip ? "deflate(4)" : "");
    EXPECT_EQ(in.data_direct, gzip == 0);
    EXPECT_EQ(in.label_direct, gzip == 0);
    EXPECT_DOUBLE_EQ(in.dt, 0.002);
    EXPECT_DOUBLE_EQ(in.dx, 12.5);
    EXPECT_EQ(in.attributes.at("generator"), "unit test");
    EXPECT_EQ(in.attributes.at("snr_db_lo"), "-3.5");
    EXPECT_EQ(in.attributes.at("seed"), "1234567890123");
    if (gzip == 0) {
      EXPECT_EQ(f.bytes_per_sample(), 7 * 9 * 5);
    }
    expect_reads(f, s);
    EXPECT_THROW(f.read(5, std::vector<float>(63).data(), nullptr), Error);
    EXPECT_THROW(f.read(-1, std::vector<float>(63).data(), nullptr), Error);
  }
}

TEST(Hdf5Dataset, WriterDestroyedWithoutCommitLeavesNothing) {
  const std::string path = tmp_path("abandoned.h5");
  {
    H5SampleWriter::Options o;
    o.n = 3;
    o.height = 4;
    o.width = 4;
    H5SampleWriter w(path, o);
    std::vector<float> d(16, 1.0f);
    std::vector<uint8_t> l(16, 1);
    w.write(0, d.data(), l.data());
    EXPECT_TRUE(file_exists(path + ".tmp"));
  }
  EXPECT_FALSE(file_exists(path));
  EXPECT_FALSE(file_exists(path + ".tmp"));
}

TEST(Hdf5Dataset, WriterInAMissingDirectoryIsAnInputError) {
  const std::string path = tmp_path("no_such_dir") + "/x.h5";
  H5SampleWriter::Options o;
  o.n = 1;
  o.height = 4;
  o.width = 4;
  try {
    H5SampleWriter w(path, o);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Hdf5Dataset, ConcurrentReadsFromFourThreads) {
  const Set s = make_set(16, 33, 17, 2);
  for (int gzip : {0, 1}) {
    const std::string path = tmp_path("mt" + std::to_string(gzip) + ".h5");
    write_set(path, s, gzip);
    H5SampleFile f(path);
    const int64_t hw = s.h * s.w;
    std::vector<int64_t> errors(4, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::vector<float> d(static_cast<size_t>(hw));
        std::vector<uint8_t> l(static_cast<size_t>(hw));
        for (int rep = 0; rep < 20; ++rep) {
          for (int64_t k = 0; k < s.n; ++k) {
            const int64_t i = (k * (2 * t + 1) + rep) % s.n;
            f.read(i, d.data(), l.data());
            errors[t] += std::memcmp(d.data(), s.data.data() + i * hw, static_cast<size_t>(hw) * 4) != 0;
            errors[t] += std::memcmp(l.data(), s.label.data() + i * hw, static_cast<size_t>(hw)) != 0;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < 4; ++t) EXPECT_EQ(errors[t], 0) << "thread " << t << ", gzip " << gzip;
  }
}

TEST(Hdf5Dataset, OurFilesAreReadableByH5py) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py (scripts/setup.sh installs python3-h5py)";
  const Set s = make_set(3, 5, 6, 3);
  for (int gzip : {0, 6}) {
    const std::string path = tmp_path("forpy" + std::to_string(gzip) + ".h5");
    write_set(path, s, gzip);
    write_raw(path + ".data.bin", s.data);
    write_raw(path + ".label.bin", s.label);
    const int rc = run_python(R"(
p = sys.argv[1]
with h5py.File(p, 'r') as f:
    d = f['data'][...]; l = f['label'][...]
    assert d.dtype == np.float32 and d.shape == (3, 5, 6), (d.dtype, d.shape)
    assert l.dtype == np.uint8 and l.shape == (3, 5, 6), (l.dtype, l.shape)
    assert f['data'].chunks == (1, 5, 6), f['data'].chunks
    want = np.fromfile(p + '.data.bin', dtype=np.float32).reshape(3, 5, 6)
    assert d.tobytes() == want.tobytes()
    assert l.tobytes() == np.fromfile(p + '.label.bin', dtype=np.uint8).tobytes()
    assert f.attrs['generator'] == 'unit test', f.attrs['generator']
    assert f.attrs['dt'] == 0.002 and f.attrs['seed'] == 1234567890123
)",
                              path);
    EXPECT_EQ(rc, 0) << "h5py could not read " << path << " back";
  }
}

// /trace_norm and /sample_norm (Options::norm_stats): each sample's statistics as the reader's
// GatherNormalizer computes them from its data, in either mode, whatever the blocks it sums in; a
// file without them has none; h5py reads them as [N, 2, W] float32 and [N, 2] float64.
TEST(Hdf5Dataset, StoredNormalisationStatisticsAreTheReadersOwn) {
  Set s = make_set(4, 37, 23, 5);
  s.data[1] = s.data[2] = 0.5f;  // finite: the statistics of a sample holding NaN are NaN
  for (int64_t t = 0; t < s.h; ++t) s.data[static_cast<size_t>((2 * s.h + t) * s.w + 7)] = 4.0f;  // a dead trace
  const std::string path = tmp_path("norm.h5"), plain = tmp_path("nonorm.h5");
  write_set(path, s, 0, /*norm_stats=*/true);
  write_set(plain, s, 0);
  H5SampleFile f(path), g(plain);
  EXPECT_TRUE(f.info().has_trace_norm);
  EXPECT_TRUE(f.info().has_sample_norm);
  EXPECT_FALSE(g.info().has_trace_norm);
  EXPECT_FALSE(g.info().has_sample_norm);
  EXPECT_TRUE(f.info().data_direct) << "the statistics must not move /data off the pread path";
  EXPECT_TRUE(f.info().trace_norm_direct) << "the writer's statistics are read with pread";
  EXPECT_TRUE(f.info().sample_norm_direct);
  EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE), 0) << "pread only: HDF5 holds neither file open";
  const int64_t hw = s.h * s.w;
  for (int64_t i = 0; i < s.n; ++i) {
    const float* d = s.data.data() + i * hw;
    for (Normalize mode : {Normalize::trace, Normalize::sample}) {
      SCOPED_TRACE(::testing::Message() << "sample " << i << ", " << normalize_name(mode));
      GatherNormalizer norm(mode, s.w);
      norm.begin();
      for (int64_t r0 = 0; r0 < s.h; r0 += 10) norm.add_rows(d + r0 * s.w, std::min<int64_t>(10, s.h - r0));
      norm.finish();
      GatherNormalizer::Stats stored;
      ASSERT_TRUE(f.stored_norm_stats(i, mode, &stored));
      EXPECT_TRUE(stored.same_bits(norm.stats()));
      GatherNormalizer::Stats none;
      EXPECT_FALSE(g.stored_norm_stats(i, mode, &none));
      // And normalising with them gives normalize_gather's bits.
      std::vector<float> want(d, d + hw), got(d, d + hw);
      normalize_gather(mode, s.h, s.w, want.data());
      GatherNormalizer with(mode, s.w);
      with.set_stats(stored);
      with.apply_rows_in_place(got.data(), s.h);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), static_cast<size_t>(hw) * 4), 0);
    }
    GatherNormalizer::Stats t;
    ASSERT_TRUE(f.stored_norm_stats(i, Normalize::trace, &t));
    EXPECT_EQ(t.col_inv[7] == 0.0f, i == 2) << "a dead trace's inverse deviation is 0";
  }
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the statistics were not read with h5py";
  write_raw(path + ".data.bin", s.data);
  EXPECT_EQ(run_python(R"(
p = sys.argv[1]
with h5py.File(p, 'r') as f:
    t = f['trace_norm'][...]; s = f['sample_norm'][...]
    assert t.dtype == np.float32 and t.shape == (4, 2, 23), (t.dtype, t.shape)
    assert s.dtype == np.float64 and s.shape == (4, 2), (s.dtype, s.shape)
    d = np.fromfile(p + '.data.bin', dtype=np.float32).reshape(4, 37, 23).astype(np.float64)
    m = d.mean(axis=1); sd = d.std(axis=1)
    assert np.allclose(t[:, 0, :], m, rtol=1e-6, atol=1e-6), (t[:, 0, :], m)
    live = sd > 1e-6
    assert np.allclose(t[:, 1, :][live], 1 / sd[live], rtol=1e-5)
    assert (t[:, 1, :][~live] == 0).all()
    assert np.allclose(s[:, 0], d.reshape(4, -1).mean(axis=1), rtol=1e-12, atol=1e-12)
    assert np.allclose(s[:, 1], 1 / d.reshape(4, -1).std(axis=1), rtol=1e-9)
)",
                       path),
            0);
  // The same statistics in layouts other tools may write: big-endian, compressed, contiguous, or
  // /sample_norm in chunks. Read with pread where each sample's lie together as little-endian floats,
  // else through the library; the same values either way.
  EXPECT_EQ(run_python(R"(
p = sys.argv[1]
with h5py.File(p, 'r') as f:
    d = f['data'][...]; t = f['trace_norm'][...]; s = f['sample_norm'][...]
layouts = {
    'be_chunked': (dict(data=t.astype('>f4'), chunks=(1, 2, 23)), dict(data=s.astype('>f8'), chunks=(2, 2))),
    'gzip': (dict(data=t, chunks=(1, 2, 23), compression='gzip'), dict(data=s.astype('>f8'))),
    'contiguous': (dict(data=t), dict(data=s, chunks=(1, 2))),
    'two_per_chunk': (dict(data=t, chunks=(2, 2, 23)), dict(data=s)),
}
for name, (kt, ks) in layouts.items():
    with h5py.File(p + '.' + name + '.h5', 'w') as g:
        g.create_dataset('data', data=d, chunks=(1,) + d.shape[1:])
        g.create_dataset('trace_norm', **kt)
        g.create_dataset('sample_norm', **ks)
)",
                       path),
            0);
  struct Layout {
    const char* name;
    bool trace_direct, sample_direct;
  };
  for (const Layout& l : {Layout{"be_chunked", false, false}, Layout{"gzip", false, false},
                          Layout{"contiguous", true, false}, Layout{"two_per_chunk", false, true}}) {
    SCOPED_TRACE(l.name);
    const std::string other = path + "." + l.name + ".h5";
    H5SampleFile o(other);
    EXPECT_EQ(o.info().trace_norm_direct, l.trace_direct);
    EXPECT_EQ(o.info().sample_norm_direct, l.sample_direct);
    for (int64_t i = 0; i < s.n; ++i) {
      for (Normalize mode : {Normalize::trace, Normalize::sample}) {
        GatherNormalizer::Stats want, got;
        ASSERT_TRUE(f.stored_norm_stats(i, mode, &want));
        ASSERT_TRUE(o.stored_norm_stats(i, mode, &got));
        EXPECT_TRUE(got.same_bits(want)) << "sample " << i << ", " << normalize_name(mode);
      }
    }
    std::remove(other.c_str());
  }
}

// Files as other tools write them: float16 data, float labels, contiguous, odd chunks, big-endian,
// gzip and shuffle. Python writes each file and the expected float32 / uint8 bytes beside it.
TEST(Hdf5Dataset, ReadsH5pyFilesOfOtherTypesAndLayouts) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py (scripts/setup.sh installs python3-h5py)";
  const std::string dir = tmp_path("pyfiles");
  ::mkdir(dir.c_str(), 0755);
  const int rc = run_python(R"(
d = sys.argv[1]
rng = np.random.default_rng(5)
N, H, W = 4, 6, 10
# float16: every class of value, subnormals included.
h = rng.standard_normal((N, H, W)).astype(np.float16)
special = np.array([0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x3c00],
                   dtype=np.uint16).view(np.float16)
h.reshape(-1)[:special.size] = special
lab = (rng.random((N, H, W)) < 0.3).astype(np.float32)
lab.reshape(-1)[:3] = [0.5, -1.0, np.nan]  # nonzero counts as 1
want_label = (lab != 0).astype(np.uint8)
def save(name, **kw):
    data = kw.pop('data'); label = kw.pop('label', None); dkw = kw.pop('dkw', {}); lkw = kw.pop('lkw', {})
    with h5py.File(f'{d}/{name}.h5', 'w') as f:
        f.create_dataset('data', data=data, **dkw)
        if label is not None: f.create_dataset('label', data=label, **lkw)
    data.astype(np.float32).tofile(f'{d}/{name}.data.bin')
    (want_label if label is not None else np.zeros(0, np.uint8)).tofile(f'{d}/{name}.label.bin')
save('f16_chunked', data=h, label=lab, dkw=dict(chunks=(1, H, W)), lkw=dict(chunks=(1, H, W)))
save('f16_contig', data=h, label=lab.astype(np.float64))
save('f16_gzip', data=h, label=lab, dkw=dict(chunks=(1, H, W), compression='gzip', shuffle=True))
f32 = rng.standard_normal((N, H, W)).astype(np.float32)
save('f32_odd_chunks', data=f32, label=lab.astype(np.float16), dkw=dict(chunks=(3, 4, 7)), lkw=dict(chunks=(2, 6, 3)))
save('f32_bigendian', data=f32.astype('>f4'), label=want_label.astype(np.int8), dkw=dict(chunks=(1, H, W)))
save('f32_bool_label', data=f32, label=want_label.astype(bool), dkw=dict(chunks=(1, H, W)), lkw=dict(chunks=(1, H, W)))
save('f32_nolabel', data=f32, dkw=dict(chunks=(1, H, W)))
)",
                            dir);
  ASSERT_EQ(rc, 0);
  struct Case {
    const char* name;
    H5ElemType data, label;
    bool data_direct;
  };
  const Case cases[] = {{"f16_chunked", H5ElemType::f16, H5ElemType::f32, true},
                        {"f16_contig", H5ElemType::f16, H5ElemType::f64, true},
                        {"f16_gzip", H5ElemType::f16, H5ElemType::f32, false},
                        {"f32_odd_chunks", H5ElemType::f32, H5ElemType::f16, false},
                        {"f32_bigendian", H5ElemType::f32, H5ElemType::u8, false},
                        {"f32_bool_label", H5ElemType::f32, H5ElemType::u8, true},
                        {"f32_nolabel", H5ElemType::f32, H5ElemType::none, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string base = dir + "/" + c.name;
    H5SampleFile f(base + ".h5");
    EXPECT_EQ(f.info().n, 4);
    EXPECT_EQ(f.info().height, 6);
    EXPECT_EQ(f.info().width, 10);
    EXPECT_EQ(f.info().data_type, c.data);
    EXPECT_EQ(f.info().label_type, c.label);
    EXPECT_EQ(f.info().data_direct, c.data_direct);
    const std::vector<float> want = read_raw<float>(base + ".data.bin");
    const std::vector<uint8_t> want_label = read_raw<uint8_t>(base + ".label.bin");
    std::vector<float> got(want.size());
    std::vector<uint8_t> got_label(want.size(), 7);
    for (int64_t i = 0; i < 4; ++i) f.read(i, got.data() + i * 60, got_label.data() + i * 60);
    expect_same_floats(got, want, c.name);
    if (c.label != H5ElemType::none) {
      EXPECT_EQ(got_label, want_label);
    }
  }
}

// float16 as the writer encodes it: every binary16 value back to its own bits, and float32 values
// rounded to the nearest binary16 with ties to even, against a search of the sorted table of halves.
TEST(Float16, EveryHalfRoundTripsAndFloatsRoundToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    ASSERT_EQ(float_to_half(half_to_float(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
  std::vector<double> halves;  // the finite non-negative halves, increasing with their bits
  for (uint32_t h = 0; h <= 0x7bff; ++h) halves.push_back(half_to_float(static_cast<uint16_t>(h)));
  auto nearest = [&](float f) -> uint16_t {
    const double a = std::fabs(static_cast<double>(f));
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7c00;  // past the midpoint of 65504 and 2^16
    const size_t hi = static_cast<size_t>(std::lower_bound(halves.begin(), halves.end(), a) - halves.begin());
    if (hi == halves.size()) return sign | 0x7bff;  // (65504, 65520): down to the largest half
    if (halves[hi] == a) return static_cast<uint16_t>(sign | hi);
    const size_t lo = hi - 1;
    const double dlo = a - halves[lo], dhi = halves[hi] - a;
    const size_t pick = dlo < dhi ? lo : dhi < dlo ? hi : (lo % 2 == 0 ? lo : hi);
    return static_cast<uint16_t>(sign | pick);
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_real_distribution<float> unit(-1, 1);
  for (int k = 0; k < 200000; ++k) {
    uint32_t x = bits(rng);
    if (k % 2 == 0) x = (x & 0x807fffffu) | (static_cast<uint32_t>(100 + k % 45) << 23);  // 2^-27 to 2^17
    float f;
    std::memcpy(&f, &x, 4);
    if (k % 5 == 0) f = unit(rng) * 1e-4f;  // subnormal halves
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), nearest(f)) << std::hexfloat << f;
  }
  // Ties, both ways, at normal and subnormal scale; the overflow edge; NaN stays NaN.
  EXPECT_EQ(float_to_half(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(float_to_half(1.0f + 0x3p-11f), 0x3c02);
  EXPECT_EQ(float_to_half(0x1p-25f), 0x0000);
  EXPECT_EQ(float_to_half(0x3p-25f), 0x0002);
  EXPECT_EQ(float_to_half(-0x1p-26f), 0x8000);
  EXPECT_EQ(float_to_half(0x1.ffcp-15f), 0x0400)
      << "the midpoint above the largest subnormal rounds (to even) up to the smallest normal";
  EXPECT_EQ(float_to_half(65519.996f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);
  EXPECT_EQ(float_to_half(-std::numeric_limits<float>::infinity()), 0xfc00);
  const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
  uint32_t low_payload_nan = 0x7f800001u;  // a payload below binary16's 10 bits: still a NaN
  float lp;
  std::memcpy(&lp, &low_payload_nan, 4);
  EXPECT_TRUE((float_to_half(lp) & 0x3ff) != 0);
}

// A float16 /data (seisseg convert of a float16 file): the values rounded as float_to_half rounds
// them, read with pread, and statistics of the rounded values; write() tells a gather holding NaN.
TEST(Hdf5Dataset, WriterStoresFloat16WithTheStatisticsOfTheRoundedValues) {
  Set s = make_set(3, 9, 11, 3);
  s.data[1] = s.data[2] = 0.25f;  // the first gather finite
  s.data[static_cast<size_t>(2 * 99 + 5)] = std::numeric_limits<float>::quiet_NaN();
  const std::string path = tmp_path("half.h5");
  H5SampleWriter::Options o;
  o.n = s.n;
  o.height = s.h;
  o.width = s.w;
  o.norm_stats = true;
  o.data_f16 = true;
  {
    H5SampleWriter w(path, o);
    for (int64_t i = 0; i < s.n; ++i) {
      EXPECT_EQ(w.write(i, s.data.data() + i * 99, s.label.data() + i * 99), i != 2) << "sample " << i;
    }
    w.commit();
  }
  H5SampleFile f(path);
  EXPECT_EQ(f.info().data_type, H5ElemType::f16);
  EXPECT_TRUE(f.info().data_direct);
  EXPECT_TRUE(f.info().trace_norm_direct);
  std::vector<float> got(99), rounded(99);
  std::vector<uint8_t> label(99);
  for (int64_t i = 0; i < s.n; ++i) {
    SCOPED_TRACE("sample " + std::to_string(i));
    for (int64_t k = 0; k < 99; ++k) rounded[static_cast<size_t>(k)] = half_to_float(float_to_half(s.data[i * 99 + k]));
    f.read(i, got.data(), label.data());
    expect_same_floats(got, rounded, "float16 data");
    EXPECT_EQ(std::memcmp(label.data(), s.label.data() + i * 99, 99), 0);
    GatherNormalizer::Stats want, stored;
    gather_norm_stats(s.h, s.w, rounded.data(), &want, nullptr);
    ASSERT_TRUE(f.stored_norm_stats(i, Normalize::trace, &stored));
    if (i != 2) {
      EXPECT_TRUE(stored.same_bits(want));
    }
  }
  EXPECT_NE(std::memcmp(rounded.data(), s.data.data() + 2 * 99, 99 * 4), 0) << "the test's values are not all halves";
}

void expect_input_error(const std::string& path, const std::string& fragment) {
  try {
    H5SampleFile f(path);
    ADD_FAILURE() << path << ": no error, expected one mentioning '" << fragment << "'";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "does not start with the file name: " << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  }
}

TEST(Hdf5Dataset, BadFilesAreInputErrorsNamingTheFile) {
  expect_input_error(tmp_path("does_not_exist.h5"), "not found");
  const std::string dir = tmp_path("a_dir.h5");
  ::mkdir(dir.c_str(), 0755);
  expect_input_error(dir, "directory");
  const std::string text = tmp_path("text.h5");
  std::ofstream(text) << "this is not HDF5\n";
  expect_input_error(text, "not an HDF5 file");
  const std::string empty = tmp_path("zero_bytes.h5");
  std::ofstream{empty};
  expect_input_error(empty, "not an HDF5 file");

  // Truncated: our own file, cut in the middle of the sample bytes.
  const Set s = make_set(4, 32, 32, 4);
  const std::string cut = tmp_path("truncated.h5");
  write_set(cut, s, 0);
  struct stat st {};
  ASSERT_EQ(::stat(cut.c_str(), &st), 0);
  ASSERT_EQ(::truncate(cut.c_str(), st.st_size - 3000), 0);
  expect_input_error(cut, "truncated");

  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: the h5py-written bad files were not tested";
  const std::string pdir = tmp_path("bad");
  ::mkdir(pdir.c_str(), 0755);
  ASSERT_EQ(run_python(R"(
d = sys.argv[1]
def save(name, **arrays):
    with h5py.File(f'{d}/{name}.h5', 'w') as f:
        for k, v in arrays.items(): f.create_dataset(k, data=v)
z = np.zeros((2, 4, 5), np.float32)
save('no_data', foo=z)
save('rank2', data=np.zeros((4, 5), np.float32))
save('rank4', data=np.zeros((1, 2, 4, 5), np.float32))
save('int_data', data=np.zeros((2, 4, 5), np.int16))
save('f64_data', data=np.zeros((2, 4, 5), np.float64))
save('label_shape', data=z, label=np.zeros((2, 4, 6), np.uint8))
save('label_int16', data=z, label=np.zeros((2, 4, 5), np.int16))
save('empty_n', data=np.zeros((0, 4, 5), np.float32))
save('empty_h', data=np.zeros((2, 0, 5), np.float32))
save('empty_w', data=np.zeros((2, 4, 0), np.float32))
save('trace_norm_shape', data=z, trace_norm=np.zeros((2, 5, 2), np.float32))
save('trace_norm_f64', data=z, trace_norm=np.zeros((2, 2, 5), np.float64))
save('sample_norm_shape', data=z, sample_norm=np.zeros((3, 2), np.float64))
save('sample_norm_int', data=z, sample_norm=np.zeros((2, 2), np.int64))
with h5py.File(f'{d}/data_is_group.h5', 'w') as f: f.create_group('data')
)",
                       pdir),
            0);
  expect_input_error(pdir + "/no_data.h5", "no /data");
  expect_input_error(pdir + "/rank2.h5", "rank 2");
  expect_input_error(pdir + "/rank4.h5", "rank 4");
  expect_input_error(pdir + "/int_data.h5", "16-bit integer");
  expect_input_error(pdir + "/f64_data.h5", "64-bit float");
  expect_input_error(pdir + "/label_shape.h5", "/label has shape [2, 4, 6] but /data has [2, 4, 5]");
  expect_input_error(pdir + "/label_int16.h5", "/label has a 16-bit integer type");
  expect_input_error(pdir + "/empty_n.h5", "empty");
  expect_input_error(pdir + "/empty_h.h5", "empty");
  expect_input_error(pdir + "/empty_w.h5", "empty");
  expect_input_error(pdir + "/data_is_group.h5", "/data is not a dataset");
  expect_input_error(pdir + "/trace_norm_shape.h5",
                     "/trace_norm (stored normalisation statistics) has shape [2, 5, 2] of 32-bit floats; expected [N, "
                     "2, W] of float32");
  expect_input_error(pdir + "/trace_norm_f64.h5",
                     "/trace_norm (stored normalisation statistics) has shape [2, 2, 5] "
                     "of 64-bit floats");
  expect_input_error(pdir + "/sample_norm_shape.h5", "/sample_norm (stored normalisation statistics) has shape [3, 2]");
  expect_input_error(pdir + "/sample_norm_int.h5", "of non-floats; expected [N, 2] of float64");
}

}  // namespace
}  // namespace seis
