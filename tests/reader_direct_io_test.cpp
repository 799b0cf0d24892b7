// The reader's direct reads (SampleReaderOptions::direct_io: O_DIRECT in 4 MiB blocks aligned to
// 4 KiB, straight into the slots where the file's chunks and the slots are 4 KiB-aligned, through a
// buffer of each thread otherwise): the same batches, bit for bit, as page-cache reads, on files
// whose gathers and rows lie at any offset (contiguous /data as h5py writes it, chunks of one
// gather, odd widths), gathers spanning several I/O blocks, float16 data, labels, stored statistics
// or none, every augmentation; rows handed over only once all their bytes are in; a file system
// that refuses O_DIRECT (tmpfs before Linux 6.6) falls back to page-cache reads; a file cut short is
// an InputError naming the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"
#include "io/hdf5_dataset.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"

namespace seis {
namespace {

std::string temp_path(const std::string& dir, const std::string& name) {
  return dir + "/reader_direct_" + std::to_string(::getpid()) + "_" + name + ".h5";
}

float value_at(int64_t i, int64_t t, int64_t x) {
  const uint64_t r =
      hash_combine(hash_combine(static_cast<uint64_t>(i), static_cast<uint64_t>(t)), static_cast<uint64_t>(x) + 31);
  return static_cast<float>(x % 7) * 10.0f + static_cast<float>(static_cast<double>(r >> 40) / 16777216.0) - 0.5f;
}

uint8_t label_at(int64_t i, int64_t t, int64_t x) { return ((i * 13 + t * 5 + x) % 7) < 2 ? 1 : 0; }

// Through H5SampleWriter: chunks of one gather (float16 when half), statistics stored or not.
void write_chunked(const std::string& path, int64_t n, int64_t h, int64_t w, bool half, bool norm_stats) {
  H5SampleWriter::Options o;
  o.n = n;
  o.height = h;
  o.width = w;
  o.data_f16 = half;
  o.norm_stats = norm_stats;
  H5SampleWriter wr(path, o);
  std::vector<float> d(static_cast<size_t>(h * w));
  std::vector<uint8_t> l(d.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t x = 0; x < w; ++x) {
        d[static_cast<size_t>(t * w + x)] = value_at(i, t, x);
        l[static_cast<size_t>(t * w + x)] = label_at(i, t, x);
      }
    }
    wr.write(i, d.data(), l.data());
  }
  wr.commit();
}

// Contiguous /data and /label, as h5py writes a dataset without chunks: gathers at offsets that
// are multiples of nothing in particular.
void write_contiguous(const std::string& path, int64_t n, int64_t h, int64_t w) {
  std::vector<float> d(static_cast<size_t>(n * h * w));
  std::vector<uint8_t> l(d.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t x = 0; x < w; ++x) {
        d[static_cast<size_t>((i * h + t) * w + x)] = value_at(i, t, x);
        l[static_cast<size_t>((i * h + t) * w + x)] = label_at(i, t, x);
      }
    }
  }
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hsize_t dims[3] = {static_cast<hsize_t>(n), static_cast<hsize_t>(h), static_cast<hsize_t>(w)};
  const hid_t s = H5Screate_simple(3, dims, nullptr);
  // A small attribute first, so that /data does not start on a round offset.
  const hid_t as = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, "dt", H5T_IEEE_F64LE, as, H5P_DEFAULT, H5P_DEFAULT);
  const double dt = 0.002;
  H5Awrite(a, H5T_NATIVE_DOUBLE, &dt);
  H5Aclose(a);
  H5Sclose(as);
  const hid_t dd = H5Dcreate2(f, "data", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(dd, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.data()), 0);
  const hid_t ld = H5Dcreate2(f, "label", H5T_STD_U8LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(ld, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, l.data()), 0);
  H5Dclose(ld);
  H5Dclose(dd);
  H5Sclose(s);
  H5Fclose(f);
}

// Whether files in `dir` can be opened with O_DIRECT.
bool direct_allowed(const std::string& dir) {
  const std::string probe = dir + "/reader_direct_probe_" + std::to_string(::getpid());
  std::FILE* f = std::fopen(probe.c_str(), "wb");
  if (f == nullptr) return false;
  std::fclose(f);
  const int fd = ::open(probe.c_str(), O_RDONLY | O_DIRECT);
  if (fd >= 0) ::close(fd);
  std::remove(probe.c_str());
  return fd >= 0;
}

// Two epochs through readers of the same options but direct_io, batch by batch: the same samples,
// data and labels, bit for bit.
void expect_same_batches(const SampleSet& set, SampleReaderOptions o) {
  SampleReaderOptions d = o;
  d.direct_io = true;
  o.direct_io = false;
  SampleReader page(set, o);
  std::vector<ReaderBatch> want;
  for (int64_t k = 0; k < 2 * page.batches_per_epoch(); ++k) want.push_back(page.next());
  SampleReader direct(set, d);
  for (int64_t k = 0; k < 2 * direct.batches_per_epoch(); ++k) {
    const ReaderBatch x = direct.next();
    const ReaderBatch& y = want[static_cast<size_t>(k)];
    ASSERT_EQ(x.samples, y.samples);
    ASSERT_EQ(x.data.dtype(), y.data.dtype());
    const size_t bytes = static_cast<size_t>(x.data.numel()) * dtype_size(x.data.dtype());
    ASSERT_EQ(std::memcmp(x.data.raw(), y.data.raw(), bytes), 0) << "data, batch " << k;
    ASSERT_EQ(x.label.defined(), y.label.defined());
    if (x.label.defined()) {
      ASSERT_EQ(std::memcmp(x.label.raw(), y.label.raw(), static_cast<size_t>(x.label.numel())), 0)
          << "label, batch " << k;
    }
  }
}

// `count` values of T starting on a 4 KiB boundary (plus `skew` bytes: an unaligned buffer).
template <class T>
struct PageBuffer {
  PageBuffer(int64_t count, int64_t skew = 0)
      : mem(static_cast<uint8_t*>(
            std::aligned_alloc(4096, static_cast<size_t>((count * sizeof(T) + skew + 4095) / 4096 * 4096)))),
        at(reinterpret_cast<T*>(mem.get() + skew)) {}
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> mem;
  T* at;
};

struct Layout {
  const char* name;
  int64_t n, h, w;
  bool contiguous, half, norm_stats;  // (contiguous files store no statistics)
  bool straight;                      // some gathers are read straight into the (page-aligned) slots
};

TEST(ReaderDirectIo, SameBatchesAsPageCacheReads) {
  const std::string dir = ::testing::TempDir();
  const bool allowed = direct_allowed(dir);
  if (!allowed) std::printf("note: %s refuses O_DIRECT: only the fallback is exercised\n", dir.c_str());
  const Layout layouts[] = {
      {"odd_chunked", 7, 37, 29, false, false, false, false},
      {"odd_contiguous", 6, 37, 29, true, false, false, false},
      {"stored_stats", 7, 37, 29, false, false, true, false},
      {"half_stored_stats", 6, 33, 31, false, true, true, false},
      // 1100 rows of 4 KiB: 4.3 MiB per gather, two I/O blocks, the second short; labels 1.1 MiB.
      // Aligned chunks, and gathers of whole pages in the slots: read straight into them.
      {"two_io_blocks", 4, 1100, 1024, false, false, false, true},
      {"two_io_blocks_contiguous", 4, 1100, 1024, true, false, false, false},
      // Rows of 4004 bytes: I/O blocks of whole 256 KiB pieces that are no multiple of 4 KiB, so the
      // second block's buffer must be aligned on its own; three blocks per gather. A slot's first
      // gather is read straight into it, its last block (ending off a page) copied.
      {"odd_width_three_io_blocks", 3, 2600, 1001, false, false, true, true},
  };
  for (const Layout& l : layouts) {
    SCOPED_TRACE(l.name);
    const std::string path = temp_path(dir, l.name);
    if (l.contiguous) {
      write_contiguous(path, l.n, l.h, l.w);
    } else {
      write_chunked(path, l.n, l.h, l.w, l.half, l.norm_stats);
    }
    const SampleSet set({path});
    ASSERT_TRUE(set.file(0).info().data_direct);
    EXPECT_EQ(set.file(0).info().data_aligned, l.straight) << "chunks of 64 KiB and more start on 4 KiB";
    SampleReaderOptions o;
    o.batch = 2;
    o.seed = 5;
    o.threads = 2;
    o.prefetch = 2;
    for (const Normalize mode : {Normalize::trace, Normalize::sample}) {
      SCOPED_TRACE(normalize_name(mode));
      o.normalize = mode;
      o.augment = AugmentOptions{};
      o.dtype = DType::f32;
      expect_same_batches(set, o);
      o.augment.flip_receivers = true;  // (labels then arrive in blocks of rows)
      expect_same_batches(set, o);
      o.augment.max_shift = 5;
      expect_same_batches(set, o);
      o.dtype = DType::bf16;
      o.augment.crop_height = 16;
      o.augment.crop_width = 16;
      expect_same_batches(set, o);
    }
    EXPECT_EQ(set.file(0).direct_reads(), allowed) << "direct reads stay on (the last reader asked for them)";
    EXPECT_EQ(set.file(0).direct_bytes_in_place() > 0, allowed && l.straight);
    set.file(0).use_direct_reads(false, true);
    EXPECT_FALSE(set.file(0).direct_reads());
    std::remove(path.c_str());
  }
}

// Reads straight into the caller's memory (a 4 KiB-aligned chunk into 4 KiB-aligned rows): the
// bytes of a page-cache read, every row handed over once, in order, and only once all its bytes are
// in (checked in the callback), labels too; the same through an unaligned buffer, copied. Gathers of
// whole 4 MiB blocks, of a short last block, of rows that straddle the blocks with a last block that
// ends off a page (copied from the thread's buffer), and of rows larger than a block.
TEST(ReaderDirectIo, AlignedChunksAreReadStraightIntoPlace) {
  const std::string dir = ::testing::TempDir();
  if (!direct_allowed(dir)) GTEST_SKIP() << dir << " refuses O_DIRECT";
  struct Shape {
    int64_t h, w;
  };
  // (Rows of 4.4 MB: pieces larger than a block, each handed over once its second block is in.)
  for (const Shape sh : {Shape{2048, 1024}, Shape{1100, 1024}, Shape{2600, 1001}, Shape{3, 1100000}}) {
    SCOPED_TRACE(std::to_string(sh.h) + "x" + std::to_string(sh.w));
    const std::string path = temp_path(dir, "straight");
    write_chunked(path, 3, sh.h, sh.w, false, false);
    const int64_t pix = sh.h * sh.w;
    const H5SampleFile f(path);
    for (const H5SampleFile::Extent& e : f.direct_extents(1)) EXPECT_EQ(e.offset % 4096, 0) << "chunks aligned";
    EXPECT_TRUE(f.info().data_aligned && f.info().label_aligned);
    std::vector<float> want(static_cast<size_t>(pix));
    std::vector<uint8_t> want_label(want.size());
    f.read(1, want.data(), want_label.data());
    struct Case {
      int64_t skew;
      bool into_place;  // (false: through the thread's buffers even where aligned)
    };
    for (const Case c : {Case{0, true}, Case{4, true}, Case{0, false}}) {
      const int64_t skew = c.skew;
      f.use_direct_reads(true, c.into_place);
      SCOPED_TRACE("skew " + std::to_string(skew) + (c.into_place ? "" : ", not into place"));
      PageBuffer<float> data(pix, skew);
      PageBuffer<uint8_t> label(pix, skew);
      std::fill(data.at, data.at + pix, -1.0f);
      std::fill(label.at, label.at + pix, uint8_t{9});
      const int64_t before = f.direct_bytes_in_place();
      int64_t next = 0, label_next = 0;
      bool rows_whole = true, label_rows_whole = true;
      f.read_rows(
          1, data.at, label.at, SampleSource::RowBlocks::in_place,
          [&](int64_t r0, int64_t r1, float* rows) {
            EXPECT_EQ(r0, next);
            EXPECT_EQ(rows, data.at + r0 * sh.w);
            rows_whole = rows_whole &&
                         std::memcmp(rows, want.data() + r0 * sh.w, static_cast<size_t>((r1 - r0) * sh.w * 4)) == 0;
            next = r1;
          },
          [&](int64_t r0, int64_t r1, uint8_t* rows) {
            EXPECT_EQ(r0, label_next);
            label_rows_whole = label_rows_whole && std::memcmp(rows, want_label.data() + r0 * sh.w,
                                                               static_cast<size_t>((r1 - r0) * sh.w)) == 0;
            label_next = r1;
          });
      EXPECT_EQ(next, sh.h);
      EXPECT_EQ(label_next, sh.h);
      EXPECT_TRUE(rows_whole) << "a row was handed over before all its bytes were in";
      EXPECT_TRUE(label_rows_whole);
      EXPECT_EQ(std::memcmp(data.at, want.data(), want.size() * 4), 0);
      EXPECT_EQ(std::memcmp(label.at, want_label.data(), want_label.size()), 0);
      // Whole 4 MiB blocks land in place, and a last one that ends on a page; one that does not
      // goes through the thread's buffer.
      auto in_place = [](int64_t bytes) {
        const int64_t whole = bytes / (int64_t{4} << 20) * (int64_t{4} << 20), rest = bytes - whole;
        return whole + (rest % 4096 == 0 ? rest : 0);
      };
      EXPECT_EQ(f.direct_bytes_in_place() - before, skew == 0 && c.into_place ? in_place(pix * 4) + in_place(pix) : 0)
          << "data and labels, straight or not";
    }
    std::remove(path.c_str());
  }
}

// tmpfs before Linux 6.6 refuses O_DIRECT: the reads stay page-cache reads and give the same batches
// (skipped where it accepts it; the fault-injection test breaks direct reads on any kernel).
TEST(ReaderDirectIo, FileSystemsThatRefuseItFallBack) {
  const std::string dir = "/dev/shm";
  if (::access(dir.c_str(), W_OK) != 0 || direct_allowed(dir)) {
    GTEST_SKIP() << dir << " is missing or accepts O_DIRECT";
  }
  const std::string path = temp_path(dir, "tmpfs");
  write_chunked(path, 5, 37, 29, false, true);
  const SampleSet set({path});
  SampleReaderOptions o;
  o.batch = 2;
  o.threads = 2;
  o.augment.flip_receivers = true;
  expect_same_batches(set, o);
  EXPECT_FALSE(set.file(0).direct_reads()) << "refused, so off for good";
  std::remove(path.c_str());
}

// A caller's callback that throws while the next block is still in flight: the exception comes
// through, and the next read on the same thread (the same buffers) gets its own bytes, not the
// late landing of the abandoned one.
TEST(ReaderDirectIo, AnExceptionFromTheCallbackLeavesNoReadInFlight) {
  const std::string dir = ::testing::TempDir();
  if (!direct_allowed(dir)) GTEST_SKIP() << dir << " refuses O_DIRECT";
  const std::string path = temp_path(dir, "throw");
  write_chunked(path, 3, 3000, 1024, false, false);  // 12 MB gathers: three I/O blocks each
  const H5SampleFile f(path);
  const int64_t pix = 3000 * 1024;
  std::vector<float> want(pix);
  f.read(2, want.data(), nullptr);
  f.use_direct_reads(true, true);
  // Through the thread's buffers (an unaligned destination), and straight into an aligned one:
  // there, the blocks still in flight when the exception left would land in the caller's memory.
  for (const int64_t skew : {4, 0}) {
    PageBuffer<float> got(pix, skew);
    for (int k = 0; k < 3; ++k) {
      EXPECT_THROW(f.read_rows(
                       1, got.at, nullptr, SampleSource::RowBlocks::in_place,
                       [](int64_t, int64_t, float*) { throw InputError("stop"); }, nullptr),
                   InputError);
      std::fill(got.at, got.at + pix, -1.0f);
      ::usleep(20000);  // (time for a late landing to show)
      ASSERT_TRUE(std::all_of(got.at, got.at + pix, [](float v) { return v == -1.0f; }))
          << "a read landed after the call returned, round " << k << ", skew " << skew;
      f.read_rows(
          2, got.at, nullptr, SampleSource::RowBlocks::in_place, [](int64_t, int64_t, float*) {}, nullptr);
      ASSERT_EQ(std::memcmp(got.at, want.data(), want.size() * 4), 0) << "round " << k << ", skew " << skew;
    }
  }
  EXPECT_EQ(f.direct_bytes_in_place(), 3 * pix * 4) << "the aligned rounds' second reads";
  EXPECT_TRUE(f.direct_reads());
  std::remove(path.c_str());
}

// A file cut short after it was opened: the direct read that reaches past its end names the file,
// the sample and the problem.
TEST(ReaderDirectIo, AFileCutShortIsAnInputError) {
  const std::string dir = ::testing::TempDir();
  if (!direct_allowed(dir)) GTEST_SKIP() << dir << " refuses O_DIRECT";
  const std::string path = temp_path(dir, "cut");
  write_chunked(path, 4, 1100, 1024, false, false);
  const H5SampleFile f(path);
  f.use_direct_reads(true, true);
  ASSERT_EQ(::truncate(path.c_str(), f.direct_extents(3)[0].offset + 100000), 0);
  for (const int64_t skew : {4, 0}) {  // through the thread's buffers, and straight into place
    SCOPED_TRACE("skew " + std::to_string(skew));
    PageBuffer<float> data(1100 * 1024, skew);
    PageBuffer<uint8_t> label(1100 * 1024, skew);
    int64_t rows_seen = 0;
    try {
      f.read_rows(
          3, data.at, label.at, SampleSource::RowBlocks::in_place, [&](int64_t, int64_t r1, float*) { rows_seen = r1; },
          nullptr);
      FAIL() << "no error";
    } catch (const InputError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find("sample 3"), std::string::npos) << m;
      EXPECT_NE(m.find("unexpected end of file"), std::string::npos) << m;
    }
    EXPECT_EQ(rows_seen, 0) << "nothing of the first I/O block, which the file no longer holds, was handed over";
  }
  EXPECT_TRUE(f.direct_reads());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace seis
