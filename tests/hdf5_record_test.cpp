// Continuous records and tables in the HDF5 format: H5SampleWriter's record mode read back bit for
// bit by H5RecordFile (partial last chunk, gzip, windows across chunks), records written by h5py
// (float16, other chunkings, contiguous, bool labels), gathers readers refusing records with a
// clear error, and compound tables appended in pieces and read back in row ranges.
#include "io/hdf5_record.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "cli_util.h"
#include "engine/error.h"
#include "expect_error.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_table.h"
#include "io/sample_set.h"

namespace seis {
namespace {

std::string tmp_path(const std::string& name) {
  return testing::TempDir() + "h5rec_" + std::to_string(::getpid()) + "_" + name;
}

using seis::test::have_h5py;

int run_python(const std::string& script, const std::string& args) {
  return seis::test::run_h5py_script(tmp_path("script.py"), script, args);
}

using test::expect_input_error;

struct Record {
  int64_t T, W;
  std::vector<float> data;
  std::vector<uint8_t> label;
};

Record make_record(int64_t T, int64_t W, uint32_t seed) {
  Record r{T, W, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  r.data.resize(static_cast<size_t>(T * W));
  r.label.resize(r.data.size());
  for (size_t k = 0; k < r.data.size(); ++k) {
    r.data[k] = nd(rng);
    r.label[k] = rng() % 5 == 0;
  }
  return r;
}

void write_record(const std::string& path, const Record& r, int64_t chunk, int gzip) {
  H5SampleWriter::Options o;
  o.record = true;
  o.height = r.T;
  o.width = r.W;
  o.record_chunk_rows = chunk;
  o.gzip_level = gzip;
  o.dt = 0.004;
  o.dx = 25.0;
  H5SampleWriter w(path, o);
  const int64_t n = (r.T + chunk - 1) / chunk;
  for (int64_t c = n - 1; c >= 0; --c) {  // any order
    const int64_t t0 = c * chunk;
    w.write_rows(t0, std::min(chunk, r.T - t0), r.data.data() + t0 * r.W, r.label.data() + t0 * r.W);
  }
  EXPECT_THROW(w.write(0, r.data.data(), r.label.data()), Error) << "write() on a record";
  EXPECT_THROW(w.write_rows(1, chunk, r.data.data(), r.label.data()), Error) << "unaligned rows";
  w.commit();
}

void expect_rows(const H5RecordFile& f, const Record& r, int64_t t0, int64_t rows) {
  std::vector<float> d(static_cast<size_t>(rows * r.W));
  std::vector<uint8_t> l(d.size());
  f.read_rows(t0, rows, d.data(), l.data());
  EXPECT_EQ(std::memcmp(d.data(), r.data.data() + t0 * r.W, d.size() * 4), 0) << "data rows " << t0 << "+" << rows;
  EXPECT_EQ(std::memcmp(l.data(), r.label.data() + t0 * r.W, l.size()), 0) << "label rows " << t0 << "+" << rows;
}

TEST(Hdf5Record, WriterRoundTripIsBitExact) {
  const Record r = make_record(1000, 7, 3);
  for (int gzip : {0, 4}) {
    SCOPED_TRACE("gzip " + std::to_string(gzip));
    const std::string path = tmp_path("rt" + std::to_string(gzip) + ".h5");
    write_record(path, r, 300, gzip);  // the last chunk holds 100 of 300 rows
    EXPECT_TRUE(h5_is_record(path));
    H5RecordFile f(path);
    const H5RecordInfo& in = f.info();
    EXPECT_EQ(in.samples, 1000);
    EXPECT_EQ(in.receivers, 7);
    EXPECT_EQ(in.data_type, H5ElemType::f32);
    EXPECT_EQ(in.label_type, H5ElemType::u8);
    EXPECT_EQ(in.data_chunk, (std::vector<int64_t>{300, 7}));
    EXPECT_EQ(in.data_filters, gzip ? "deflate(4)" : "");
    EXPECT_DOUBLE_EQ(in.dt, 0.004);
    EXPECT_DOUBLE_EQ(in.dx, 25.0);
    expect_rows(f, r, 0, 1000);
    expect_rows(f, r, 299, 2);  // across a chunk boundary
    expect_rows(f, r, 950, 50);
    expect_rows(f, r, 999, 1);
    std::vector<float> d(7);
    EXPECT_THROW(f.read_rows(999, 2, d.data(), nullptr), Error);
  }
}

TEST(Hdf5Record, GatherReadersRefuseARecordNamingIt) {
  const std::string path = tmp_path("refuse.h5");
  write_record(path, make_record(64, 5, 4), 64, 0);
  expect_input_error([&] { H5SampleFile f(path); }, path + ": /data has rank 2 (shape [64, 5]): a continuous record");
  expect_input_error([&] { SampleSet s({path}); }, path + ": /data has rank 2");
  // And the other way round: a file of gathers is no record.
  const std::string gathers = tmp_path("gathers.h5");
  {
    H5SampleWriter::Options o;
    o.n = 2;
    o.height = 4;
    o.width = 3;
    H5SampleWriter w(gathers, o);
    std::vector<float> d(12, 1.0f);
    std::vector<uint8_t> l(12, 0);
    w.write(0, d.data(), l.data());
    w.write(1, d.data(), l.data());
    w.commit();
  }
  EXPECT_FALSE(h5_is_record(gathers));
  EXPECT_FALSE(h5_is_record(tmp_path("missing.h5")));
  expect_input_error([&] { H5RecordFile f(gathers); }, gathers + ": /data has rank 3");
  expect_input_error([&] { H5RecordFile f(tmp_path("missing.h5")); }, "not found");
}

struct Row {
  int64_t a = 0;
  uint8_t b = 0;
  double c = 0;
};

H5TableSpec row_spec(const std::string& name) {
  return {name,
          sizeof(Row),
          {{"a", H5FieldType::i64, offsetof(Row, a)},
           {"b", H5FieldType::u8, offsetof(Row, b)},
           {"c", H5FieldType::f64, offsetof(Row, c)}}};
}

TEST(Hdf5Record, TablesAppendInPiecesAndReadInRanges) {
  const std::string path = tmp_path("table.h5");
  std::vector<Row> rows(10000);
  for (size_t k = 0; k < rows.size(); ++k) {
    rows[k] = {static_cast<int64_t>(k) * 3 - 7, static_cast<uint8_t>(k % 251), std::sqrt(static_cast<double>(k))};
  }
  {
    const Record r = make_record(10, 2, 5);
    H5SampleWriter::Options o;
    o.record = true;
    o.height = 10;
    o.width = 2;
    o.record_chunk_rows = 10;
    H5SampleWriter w(path, o);
    w.write_rows(0, 10, r.data.data(), r.label.data());
    w.add_table(row_spec("rows"), 1000);
    w.add_table(row_spec("empty"));
    size_t at = 0;
    for (size_t piece : {1, 0, 999, 1000, 3333, 4667}) {  // across chunk boundaries
      w.append_rows("rows", rows.data() + at, static_cast<int64_t>(piece));
      at += piece;
    }
    ASSERT_EQ(at, rows.size());
    EXPECT_THROW(w.append_rows("nope", rows.data(), 1), Error);
    w.commit();
  }
  H5TableReader t(path, row_spec("rows"));
  ASSERT_TRUE(t.exists());
  ASSERT_EQ(t.rows(), 10000);
  for (auto [r0, n] : {std::pair<int64_t, int64_t>{0, 10000}, {999, 2}, {9999, 1}}) {
    std::vector<Row> got(static_cast<size_t>(n));
    t.read(r0, n, got.data());
    for (int64_t k = 0; k < n; ++k) {
      const Row& w = rows[static_cast<size_t>(r0 + k)];
      const Row& g = got[static_cast<size_t>(k)];
      ASSERT_TRUE(g.a == w.a && g.b == w.b && g.c == w.c) << "row " << r0 + k;
    }
  }
  EXPECT_EQ(H5TableReader(path, row_spec("empty")).rows(), 0);
  EXPECT_FALSE(H5TableReader(path, row_spec("absent")).exists());
  H5TableSpec more = row_spec("rows");
  more.fields.push_back({"d", H5FieldType::f64, offsetof(Row, c)});
  expect_input_error([&] { H5TableReader r(path, more); }, path + ": /rows has no field 'd'");
  expect_input_error([&] { H5TableReader r(path, row_spec("data")); }, "/data has shape [10, 2]; expected a 1-D table");
}

TEST(Hdf5Record, ReadsRecordsWrittenByH5py) {
  if (!have_h5py()) GTEST_SKIP() << "/usr/bin/python3 has no h5py: h5py-written records were not tested";
  const std::string d = tmp_path("py");
  ::mkdir(d.c_str(), 0755);
  ASSERT_EQ(run_python(R"(
d = sys.argv[1]
x = (np.arange(301 * 9, dtype=np.float32).reshape(301, 9) / 7.0 - 100.0)
with h5py.File(f'{d}/f16.h5', 'w') as f:
    f.create_dataset('data', data=x.astype(np.float16), chunks=(64, 3), compression='gzip')
    f.create_dataset('label', data=(np.arange(301 * 9).reshape(301, 9) % 3 == 0))
    f.attrs['dt'] = 0.001
    f.attrs['start_time'] = '2024-05-01T12:00:00Z'
with h5py.File(f'{d}/contig.h5', 'w') as f:
    f.create_dataset('data', data=x)
    f.create_dataset('label', data=(x > 0).astype(np.float32))
with h5py.File(f'{d}/bad_label.h5', 'w') as f:
    f.create_dataset('data', data=x)
    f.create_dataset('label', data=np.zeros((301, 8), np.uint8))
with h5py.File(f'{d}/empty.h5', 'w') as f:
    f.create_dataset('data', data=np.zeros((0, 9), np.float32))
with h5py.File(f'{d}/int_data.h5', 'w') as f:
    f.create_dataset('data', data=np.zeros((5, 9), np.int16))
)",
                       d),
            0);
  std::vector<float> want(301 * 9);
  for (size_t k = 0; k < want.size(); ++k) want[k] = static_cast<float>(k) / 7.0f - 100.0f;
  {
    H5RecordFile f(d + "/f16.h5");
    EXPECT_EQ(f.info().data_type, H5ElemType::f16);
    EXPECT_EQ(f.info().data_chunk, (std::vector<int64_t>{64, 3}));
    EXPECT_EQ(f.info().data_filters, "deflate(4)");
    EXPECT_EQ(f.info().start_time, "2024-05-01T12:00:00Z");
    std::vector<float> got(100 * 9);
    std::vector<uint8_t> lab(got.size());
    f.read_rows(60, 100, got.data(), lab.data());
    for (size_t k = 0; k < got.size(); ++k) {
      const size_t g = 60 * 9 + k;
      ASSERT_NEAR(got[k], want[g], 0.07) << "element " << g;  // float16: 11 significant bits
      ASSERT_EQ(lab[k], g % 3 == 0) << "element " << g;
    }
  }
  {
    H5RecordFile f(d + "/contig.h5");
    EXPECT_TRUE(f.info().data_chunk.empty());
    std::vector<float> got(want.size());
    std::vector<uint8_t> lab(got.size());
    f.read_rows(0, 301, got.data(), lab.data());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
    for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(lab[k], want[k] > 0) << k;
  }
  expect_input_error([&] { H5RecordFile f(d + "/bad_label.h5"); }, "/label has shape [301, 8] but /data has [301, 9]");
  expect_input_error([&] { H5RecordFile f(d + "/empty.h5"); }, "empty");
  expect_input_error([&] { H5RecordFile f(d + "/int_data.h5"); }, "expected float32 or float16");
}

}  // namespace
}  // namespace seis
