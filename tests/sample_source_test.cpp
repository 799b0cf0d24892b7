// The one sample-source interface (io/sample_source.h): a subset maps its indices, the default
// window and row-block reads give the bytes of read(), and the HDF5 sources (a gathers file, a set
// of them, a continuous record) read the same bytes through it as through their own calls.
#include "io/sample_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/error.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/sample_set.h"
#include "synth_source.h"

namespace seis {
namespace {

std::string tmp_path(const std::string& name) {
  return testing::TempDir() + "srcif_" + std::to_string(::getpid()) + "_" + name;
}

struct Sample {
  std::vector<float> data;
  std::vector<uint8_t> label;
};
Sample read_whole(const SampleSource& s, int64_t i) {
  Sample out{std::vector<float>(static_cast<size_t>(s.height() * s.width())),
             std::vector<uint8_t>(static_cast<size_t>(s.height() * s.width()))};
  s.read(i, out.data.data(), out.label.data());
  return out;
}

// Rows [t0, t0 + rows) of sample i through read_window, against the same rows of read().
void expect_window(const SampleSource& s, int64_t i, int64_t t0, int64_t rows) {
  const Sample whole = read_whole(s, i);
  const int64_t w = s.width();
  std::vector<float> d(static_cast<size_t>(rows * w));
  std::vector<uint8_t> l(d.size());
  s.read_window(i, t0, rows, d.data(), l.data());
  EXPECT_EQ(std::memcmp(d.data(), whole.data.data() + t0 * w, d.size() * 4), 0) << s.describe(i) << " rows " << t0;
  EXPECT_EQ(std::memcmp(l.data(), whole.label.data() + t0 * w, l.size()), 0) << s.describe(i) << " rows " << t0;
}

TEST(SampleSource, SubsetMapsIndicesAndDefaultsMatchRead) {
  SynthConfig sc;
  sc.height = 32;
  sc.width = 16;
  sc.seed = 4;
  const SynthSource all(sc, 0, 10);
  const SampleSubset sub(all, {7, 2});
  EXPECT_EQ(sub.size(), 2);
  EXPECT_EQ(sub.height(), 32);
  EXPECT_EQ(sub.width(), 16);
  EXPECT_EQ(sub.describe(0), "sample 7");
  EXPECT_EQ(sub.bytes_per_sample(1), 32 * 16 * 5);
  const Sample a = read_whole(sub, 0), b = read_whole(all, 7), c = read_whole(all, 2);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.label, b.label);
  EXPECT_NE(a.data, c.data);
  expect_window(sub, 1, 5, 9);
  std::vector<float> d(32 * 16);
  std::vector<uint8_t> l(d.size());
  int calls = 0;
  int label_calls = 0;
  sub.read_rows(
      1, d.data(), l.data(), SampleSource::RowBlocks::at_start,
      [&](int64_t r0, int64_t r1, float* rows) {
        ++calls;
        EXPECT_EQ(r0, 0);
        EXPECT_EQ(r1, 32);
        EXPECT_EQ(rows, d.data());
      },
      [&](int64_t r0, int64_t r1, uint8_t* rows) {
        ++label_calls;
        EXPECT_EQ(calls, 1) << "labels after the data";
        EXPECT_EQ(r0, 0);
        EXPECT_EQ(r1, 32);
        EXPECT_EQ(rows, l.data());
      });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(label_calls, sub.has_label() ? 1 : 0);
  EXPECT_EQ(d, c.data);
  std::vector<uint8_t> valid(16, 0);
  sub.read_trace_valid(0, valid.data());
  EXPECT_EQ(valid, std::vector<uint8_t>(16, 1)) << "no padding traces: every trace is real";
  EXPECT_THROW(sub.read_window(0, 30, 3, d.data(), nullptr), Error);
}

TEST(SampleSource, HdfFilesReadTheSameThroughTheInterface) {
  const int64_t n = 3, h = 24, w = 5;
  SynthConfig sc;
  sc.height = h;
  sc.width = w;
  const SynthSource synth(sc, 0, n);
  const std::string gathers = tmp_path("gathers.h5");
  {
    H5SampleWriter::Options o;
    o.n = n;
    o.height = h;
    o.width = w;
    H5SampleWriter writer(gathers, o);
    for (int64_t i = 0; i < n; ++i) {
      const Sample s = read_whole(synth, i);
      writer.write(i, s.data.data(), s.label.data());
    }
    writer.commit();
  }
  const H5SampleFile file(gathers);
  const SampleSet set({gathers});
  const SampleSubset sub(set, {2});
  for (const SampleSource* s : {static_cast<const SampleSource*>(&file), static_cast<const SampleSource*>(&set)}) {
    EXPECT_EQ(s->size(), n);
    EXPECT_TRUE(s->has_label());
    EXPECT_EQ(read_whole(*s, 1).data, read_whole(synth, 1).data);
    EXPECT_EQ(read_whole(*s, 1).label, read_whole(synth, 1).label);
  }
  EXPECT_EQ(sub.describe(0), gathers + " sample 2");
  EXPECT_EQ(read_whole(sub, 0).data, read_whole(synth, 2).data);
  expect_window(file, 2, 3, 10);

  // A continuous record: one sample of T rows, read by windows.
  const std::string record = tmp_path("record.h5");
  const Sample whole = read_whole(synth, 0);
  {
    H5SampleWriter::Options o;
    o.record = true;
    o.height = h;
    o.width = w;
    o.record_chunk_rows = 10;
    H5SampleWriter writer(record, o);
    for (int64_t t0 = 0; t0 < h; t0 += 10) {
      writer.write_rows(t0, std::min<int64_t>(10, h - t0), whole.data.data() + t0 * w, whole.label.data() + t0 * w);
    }
    writer.commit();
  }
  const H5RecordFile rec(record);
  const SampleSource& src = rec;
  EXPECT_EQ(src.size(), 1);
  EXPECT_EQ(src.height(), h);
  EXPECT_EQ(src.width(), w);
  EXPECT_TRUE(src.has_label());
  EXPECT_EQ(read_whole(src, 0).data, whole.data);
  EXPECT_EQ(read_whole(src, 0).label, whole.label);
  expect_window(src, 0, 9, 4);  // across a chunk boundary
  std::vector<float> d(static_cast<size_t>(w));
  EXPECT_THROW(src.read_window(1, 0, 1, d.data(), nullptr), Error);
  std::remove(gathers.c_str());
  std::remove(record.c_str());
}

}  // namespace
}  // namespace seis
