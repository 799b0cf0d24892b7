// The reader's single pass (checks and sums on blocks of rows as they arrive, then one move that
// normalises, flips, shifts and crops) against the separate passes it replaced: read the whole
// gather, normalize_gather, then flip, shift and crop each over the whole gather. Bit for bit, on
// odd shapes, float32 and float16 files, several read blocks per gather, both normalisations; and
// so is a later epoch that normalises each block as it arrives with the statistics kept from the
// first (all of them kept, a few, or none).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"
#include "io/hdf5_dataset.h"
#include "io/normalize.h"
#include "io/sample_order.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"

namespace seis {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "reader_fused_" + std::to_string(::getpid()) + "_" + name + ".h5";
}

// Gathers with structure that normalisation must get right: a per-trace offset and scale (so the
// sums of some traces are large against their spread), a dead (constant) trace and a zero trace.
float value_at(int64_t i, int64_t t, int64_t x, int64_t w) {
  const uint64_t r =
      hash_combine(hash_combine(static_cast<uint64_t>(i), static_cast<uint64_t>(t)), static_cast<uint64_t>(x) + 977);
  const float noise = static_cast<float>(static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
  if (x == w / 3) return 2.5f;                // dead trace: constant
  if (x == w - 1 && i % 2 == 0) return 0.0f;  // all zero
  return 1000.0f * static_cast<float>(x % 5) + noise * static_cast<float>(1 + x % 7);
}

uint8_t label_at(int64_t i, int64_t t, int64_t x) { return ((i * 31 + t * 7 + x * 3) % 11) < 3 ? 1 : 0; }

uint16_t to_half(float f) {
  // Round to nearest of the values the test uses (|f| < 65504); exactness is not needed, only that
  // the file holds float16 and the reader and the reference see the same halves.
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint32_t sign = (b >> 16) & 0x8000u;
  const int32_t exp = static_cast<int32_t>((b >> 23) & 0xff) - 127 + 15;
  uint32_t mant = b & 0x7fffffu;
  if (exp <= 0) return static_cast<uint16_t>(sign);  // tiny: signed zero
  mant >>= 13;
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | mant);
}

// A file of float16 /data and uint8 /label, one chunk per sample, as h5py writes np.float16.
void write_f16_file(const std::string& path, int64_t n, int64_t h, int64_t w) {
  std::vector<uint16_t> data(static_cast<size_t>(n * h * w));
  std::vector<uint8_t> label(data.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t x = 0; x < w; ++x) {
        const size_t k = static_cast<size_t>((i * h + t) * w + x);
        data[k] = to_half(value_at(i, t, x, w) / 64.0f);
        label[k] = label_at(i, t, x);
      }
    }
  }
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t half = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(half, 15, 10, 5, 0, 10);
  H5Tset_size(half, 2);
  H5Tset_ebias(half, 15);
  const hsize_t dims[3] = {static_cast<hsize_t>(n), static_cast<hsize_t>(h), static_cast<hsize_t>(w)};
  const hsize_t chunk[3] = {1, static_cast<hsize_t>(h), static_cast<hsize_t>(w)};
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 3, chunk);
  const hid_t d = H5Dcreate2(f, "data", half, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const hid_t l = H5Dcreate2(f, "label", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  EXPECT_GE(H5Dwrite(d, half, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
  EXPECT_GE(H5Dwrite(l, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, label.data()), 0);
  H5Dclose(l);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(half);
  H5Fclose(f);
}

void write_f32_file(const std::string& path, int64_t n, int64_t h, int64_t w, int gzip, bool norm_stats = false) {
  H5SampleWriter::Options o;
  o.n = n;
  o.height = h;
  o.width = w;
  o.gzip_level = gzip;
  o.norm_stats = norm_stats;
  H5SampleWriter wr(path, o);
  std::vector<float> d(static_cast<size_t>(h * w));
  std::vector<uint8_t> l(d.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t x = 0; x < w; ++x) {
        d[static_cast<size_t>(t * w + x)] = value_at(i, t, x, w);
        l[static_cast<size_t>(t * w + x)] = label_at(i, t, x);
      }
    }
    wr.write(i, d.data(), l.data());
  }
  wr.commit();
}

// The separate passes, as the reader made them before the single pass (whole-gather operations).
template <typename T>
void flip_rows(T* x, int64_t h, int64_t w) {
  for (int64_t t = 0; t < h; ++t) std::reverse(x + t * w, x + (t + 1) * w);
}

template <typename T>
void shift_rows(T* x, int64_t h, int64_t w, int64_t s, bool circular) {
  if (s == 0) return;
  const int64_t a = s > 0 ? s : -s;
  if (circular) {
    const int64_t k = s > 0 ? h - a : a;
    std::rotate(x, x + k * w, x + h * w);
  } else if (s > 0) {
    std::memmove(x + a * w, x, static_cast<size_t>((h - a) * w) * sizeof(T));
    std::memset(x, 0, static_cast<size_t>(a * w) * sizeof(T));
  } else {
    std::memmove(x, x + a * w, static_cast<size_t>((h - a) * w) * sizeof(T));
    std::memset(x + (h - a) * w, 0, static_cast<size_t>(a * w) * sizeof(T));
  }
}

template <typename T>
std::vector<T> crop_rows(const T* src, int64_t w, int64_t t0, int64_t x0, int64_t ch, int64_t cw) {
  std::vector<T> out(static_cast<size_t>(ch * cw));
  for (int64_t i = 0; i < ch; ++i) std::memcpy(out.data() + i * cw, src + (t0 + i) * w + x0, cw * sizeof(T));
  return out;
}

// Sample g at permutation position `pos` of `epoch`, through the separate passes, with the draws
// the reader documents: one Rng per (seed, epoch, position): flip bit, shift, crop corner.
void reference_sample(const SampleSet& set, const SampleReaderOptions& o, int64_t epoch, int64_t pos, int64_t g,
                      int64_t out_h, int64_t out_w, std::vector<float>* data, std::vector<uint8_t>* label) {
  const int64_t h = set.height(), w = set.width();
  std::vector<float> d(static_cast<size_t>(h * w));
  std::vector<uint8_t> l(d.size());
  set.read(g, d.data(), l.data());
  normalize_gather(o.normalize, h, w, d.data());
  const AugmentOptions& a = o.augment;
  int64_t t0 = 0, x0 = 0;
  if (a.any()) {
    Rng rng(hash_combine(o.seed, 0xa6a6000000000000ull + static_cast<uint64_t>(epoch)), static_cast<uint64_t>(pos));
    if (a.flip_receivers && (rng.next_u64() & 1u)) {
      flip_rows(d.data(), h, w);
      flip_rows(l.data(), h, w);
    }
    if (a.max_shift > 0) {
      const int64_t s = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * a.max_shift + 1))) - a.max_shift;
      shift_rows(d.data(), h, w, s, a.shift_circular);
      shift_rows(l.data(), h, w, s, a.shift_circular);
    }
    if (a.crop_height > 0 || a.crop_width > 0) {
      t0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(h - out_h + 1)));
      x0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(w - out_w + 1)));
    }
  }
  *data = crop_rows(d.data(), w, t0, x0, out_h, out_w);
  *label = crop_rows(l.data(), w, t0, x0, out_h, out_w);
}

struct AugCase {
  const char* name;
  bool flip;
  int64_t shift;
  bool circular;
  int64_t crop_h, crop_w;
};

// Every batch of two epochs, every configuration: the reader's bytes equal the reference's; a bf16
// reader's equal the reference rounded to bf16 (to nearest even, as the model's input cast does).
void expect_equal_to_separate_passes(const std::string& path, const char* what) {
  SampleSet set({path});
  const int64_t h = set.height(), w = set.width();
  const bool stored = set.file(0).info().has_trace_norm;
  const AugCase cases[] = {
      {"none", false, 0, false, 0, 0},
      {"flip", true, 0, false, 0, 0},
      {"flip+shift", true, h / 3, false, 0, 0},
      {"flip+circular shift", true, h - 1, true, 0, 0},
      {"crop", false, 0, false, h - 5, w - 6},
      {"flip+shift+crop", true, h / 2, false, h - 3, w - 4},
      {"flip+circular shift+crop", true, h / 2, true, h - 7, w - 2},
  };
  // Kept statistics: the second epoch normalises each block as it arrives (all of them kept, or
  // with per-trace normalisation those of the first two samples only: a budget of two samples'
  // bytes), or never (0).
  const int64_t two = SampleReader::kept_stats_bytes(set.size(), 2, w);
  for (const int64_t keep : {int64_t{1} << 30, two, int64_t{0}}) {
    for (const DType dtype : {DType::f32, DType::bf16}) {
      for (Normalize mode : {Normalize::trace, Normalize::sample, Normalize::none}) {
        for (const AugCase& c : cases) {
          SampleReaderOptions o;
          o.norm_stats_cache_bytes = keep;
          o.dtype = dtype;
          o.batch = 3;
          o.seed = 11;
          o.threads = 2;
          o.prefetch = 2;
          o.normalize = mode;
          o.augment.flip_receivers = c.flip;
          o.augment.max_shift = c.shift;
          o.augment.shift_circular = c.circular;
          o.augment.crop_height = c.crop_h;
          o.augment.crop_width = c.crop_w;
          SampleReader r(set, o);
          const int64_t oh = r.out_height(), ow = r.out_width(), pix = oh * ow;
          int64_t compared = 0;
          for (int64_t k = 0; k < 2 * r.batches_per_epoch(); ++k) {
            const ReaderBatch b = r.next();
            for (int64_t j = 0; j < b.data.dim(0); ++j) {
              std::vector<float> want;
              std::vector<uint8_t> want_label;
              reference_sample(set, o, b.epoch, b.batch * o.batch + j, b.samples[static_cast<size_t>(j)], oh, ow, &want,
                               &want_label);
              const uint8_t* got_label = b.label.data<uint8_t>() + j * pix;
              ASSERT_EQ(b.data.dtype(), dtype);
              if (dtype == DType::bf16) {
                const bf16* got = b.data.data<bf16>() + j * pix;
                for (int64_t p = 0; p < pix; ++p) {
                  ASSERT_EQ(got[p].bits, to_bf16(want[static_cast<size_t>(p)]).bits)
                      << what << ", bf16, normalize " << normalize_name(mode) << ", " << c.name << ": sample "
                      << b.samples[static_cast<size_t>(j)] << " pixel (" << p / ow << ", " << p % ow << ")";
                }
              }
              const float* got = dtype == DType::f32 ? b.data.data<float>() + j * pix : want.data();
              if (std::memcmp(got, want.data(), static_cast<size_t>(pix) * 4) != 0) {
                int64_t p = 0;
                while (std::memcmp(got + p, &want[static_cast<size_t>(p)], 4) == 0) ++p;
                FAIL() << what << ", normalize " << normalize_name(mode) << ", " << c.name << ": sample "
                       << b.samples[static_cast<size_t>(j)] << " pixel (" << p / ow << ", " << p % ow << "): " << got[p]
                       << " against " << want[static_cast<size_t>(p)];
              }
              ASSERT_EQ(std::memcmp(got_label, want_label.data(), static_cast<size_t>(pix)), 0)
                  << what << ", " << c.name << ": labels of sample " << b.samples[static_cast<size_t>(j)];
              ++compared;
            }
          }
          EXPECT_EQ(compared, 2 * r.batches_per_epoch() * 3) << what << ", " << c.name;
          // The second epoch used the kept statistics where there were any to keep. How many of its
          // samples were read after the first epoch's had been kept depends on timing (the workers
          // run up to two batches ahead), but its last batch is read after the first epoch's last
          // batch was taken, so all of that batch's samples that the first epoch read (all but at
          // most `dropped`) use them. The first two samples kept are kept before the second epoch.
          const int64_t reused = r.norm_stats_reused(), per_epoch = r.batches_per_epoch() * 3;
          const int64_t dropped = set.size() - per_epoch;
          // Stored statistics normalise every sample: checked on its first read (all of the first
          // epoch's), and from then on used unchecked like kept ones, never kept themselves, whatever
          // the budget. (The workers may have read on into a third epoch.)
          const bool from_file = stored && mode != Normalize::none;
          if (!from_file) {
            EXPECT_EQ(r.norm_stats_stored(), 0) << what << ", " << c.name;
          } else {
            EXPECT_GE(r.norm_stats_stored(), per_epoch) << what << ", " << c.name;
            EXPECT_LE(r.norm_stats_stored(), 2 * set.size()) << what << ", " << c.name;
            EXPECT_GE(r.norm_stats_stored() + reused, 2 * per_epoch) << what << ", " << c.name;
            EXPECT_EQ(r.norm_stats_kept_bytes(), 0) << what << ", " << c.name;
          }
          EXPECT_FALSE(r.stored_stats_refused()) << what << ", " << c.name;
          if (mode == Normalize::none || (keep == 0 && !from_file)) {
            EXPECT_EQ(reused, 0) << what << ", " << c.name;
          } else if (keep == two && mode == Normalize::trace && !from_file) {
            // (Per sample they are smaller, so more are kept.)
            EXPECT_GE(reused, 2 - dropped) << what << ", " << c.name;
            EXPECT_LE(reused, 4) << what << ", " << c.name;
            EXPECT_GT(r.norm_stats_kept_bytes(), 0) << what << ", " << c.name;
            EXPECT_LE(r.norm_stats_kept_bytes(), two) << what << ", " << c.name;
          } else {
            EXPECT_GE(reused, 3 - dropped) << what << ", " << c.name;
          }
        }
      }
    }
  }
}

TEST(ReaderFusedPass, Float32SeveralReadBlocksPerGather) {
  // Rows of 1031 floats: 63 rows per 256 KiB read block, so ten blocks per gather.
  const std::string path = temp_path("f32_blocks");
  write_f32_file(path, 7, 600, 1031, 0);
  expect_equal_to_separate_passes(path, "float32 600x1031");
  std::remove(path.c_str());
}

TEST(ReaderFusedPass, Float32OddSmallGathersAndCompressedChunks) {
  for (int gzip : {0, 3}) {
    const std::string path = temp_path("f32_small" + std::to_string(gzip));
    write_f32_file(path, 9, 37, 29, gzip);
    expect_equal_to_separate_passes(path, gzip ? "float32 37x29 gzip" : "float32 37x29");
    std::remove(path.c_str());
  }
}

// A file that stores its normalisation statistics (/trace_norm, /sample_norm): every first read
// normalises each block as it arrives with them, checked against the sums taken on the way. The
// same bits as the separate passes, in blocks (pread: ten per gather) and whole (gzip, through the
// library; small, as each read inflates the whole sample). Two tests, so that scripts/tsan.sh can
// leave out the large one and still run the small.
TEST(ReaderFusedPass, StoredStatisticsNormaliseTheFirstEpochAsItReads) {
  const std::string path = temp_path("stored");
  write_f32_file(path, 7, 600, 1031, 0, /*norm_stats=*/true);
  ASSERT_TRUE(SampleSet({path}).file(0).info().has_trace_norm);
  ASSERT_TRUE(SampleSet({path}).file(0).info().has_sample_norm);
  expect_equal_to_separate_passes(path, "stored statistics");
  std::remove(path.c_str());
}

TEST(ReaderFusedPass, StoredStatisticsOfCompressedSamples) {
  const std::string path = temp_path("stored_gzip");
  write_f32_file(path, 7, 37, 29, 3, /*norm_stats=*/true);
  ASSERT_TRUE(SampleSet({path}).file(0).info().has_trace_norm);
  ASSERT_TRUE(SampleSet({path}).file(0).info().has_sample_norm);
  expect_equal_to_separate_passes(path, "stored statistics, gzip");
  std::remove(path.c_str());
}

// Two epochs of `a` (stored statistics used) and `b` (ignored): the same samples and the same bits,
// batch by batch; `never` (when >= 0) must not reach a batch.
void expect_same_batches(SampleReader& a, SampleReader& b, int64_t never = -1) {
  for (int64_t k = 0; k < 2 * a.batches_per_epoch(); ++k) {
    const ReaderBatch x = a.next(), y = b.next();
    ASSERT_EQ(x.samples, y.samples);
    for (const int64_t g : x.samples) ASSERT_NE(g, never) << "the bad sample reached batch " << k;
    ASSERT_EQ(x.data.dtype(), y.data.dtype());
    const size_t bytes = static_cast<size_t>(x.data.numel()) * dtype_size(x.data.dtype());
    ASSERT_EQ(std::memcmp(x.data.raw(), y.data.raw(), bytes), 0) << "batch " << k;
  }
}

// Rewrites rows [0, rows) of sample i's /data in place with other values (the file's statistics
// are then stale).
void rewrite_rows(const std::string& path, int64_t i, int64_t rows, int64_t w) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t d = H5Dopen2(f, "data", H5P_DEFAULT);
  const hid_t fs = H5Dget_space(d);
  const hsize_t start[3] = {static_cast<hsize_t>(i), 0, 0},
                cnt[3] = {1, static_cast<hsize_t>(rows), static_cast<hsize_t>(w)};
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, cnt, nullptr);
  const hid_t ms = H5Screate_simple(3, cnt, nullptr);
  std::vector<float> v(static_cast<size_t>(rows * w));
  for (size_t k = 0; k < v.size(); ++k) v[k] = 3.0f * static_cast<float>(k % 13);
  EXPECT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v.data()), 0);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  H5Fclose(f);
}

// Stale statistics (the data rewritten after them, here one sample's first rows) are caught by the
// check: that sample is read again with its own, the reader stops using stored ones, and every batch
// has the bits of a reader that never used them.
TEST(ReaderFusedPass, StaleStoredStatisticsAreCaughtAndNotUsed) {
  const std::string path = temp_path("stale");
  write_f32_file(path, 9, 37, 29, 0, /*norm_stats=*/true);
  rewrite_rows(path, 4, 5, 29);
  const SampleSet set({path});
  // One worker reads the first epoch in permutation order: stored statistics serve every sample
  // before the stale one, and none after it.
  const std::vector<int64_t> perm = epoch_permutation(9, 2, 0);
  const int64_t stale_at = std::find(perm.begin(), perm.end(), int64_t{4}) - perm.begin();
  for (Normalize mode : {Normalize::trace, Normalize::sample}) {
    for (const DType dtype : {DType::f32, DType::bf16}) {
      SCOPED_TRACE(::testing::Message() << normalize_name(mode) << ", " << dtype_name(dtype));
      SampleReaderOptions o;
      o.batch = 3;
      o.seed = 2;
      o.threads = 1;
      o.prefetch = 2;
      o.normalize = mode;
      o.dtype = dtype;
      o.augment.flip_receivers = true;
      o.augment.max_shift = 4;
      SampleReaderOptions off = o;
      off.use_stored_stats = false;
      SampleReader a(set, o), b(set, off);
      expect_same_batches(a, b);
      EXPECT_TRUE(a.stored_stats_refused());
      EXPECT_FALSE(b.stored_stats_refused());
      EXPECT_EQ(b.norm_stats_stored(), 0);
      EXPECT_EQ(a.norm_stats_stored(), stale_at);
      // The second epoch's samples use the statistics known from the first: the stored ones that
      // passed before the stale sample (used although the reader refuses stored ones since), and
      // the kept ones of the stale sample and those after it.
      EXPECT_GE(a.norm_stats_reused(), 9);
      EXPECT_EQ(a.norm_stats_kept_bytes(),
                SampleReader::kept_stats_bytes(9, 9 - stale_at, mode == Normalize::trace ? 29 : 0));
    }
  }
  std::remove(path.c_str());
}

// Every sample of `base`, in order: a SampleSubset that forwards all of it, for test sources that
// change one thing.
std::vector<int64_t> every_sample(const SampleSource& base) {
  std::vector<int64_t> all(static_cast<size_t>(base.size()));
  std::iota(all.begin(), all.end(), int64_t{0});
  return all;
}

// A source whose stored statistics cannot be read for one sample (a damaged /trace_norm).
class UnreadableStatsSource : public SampleSubset {
 public:
  explicit UnreadableStatsSource(const SampleSource& base) : SampleSubset(base, every_sample(base)) {}
  bool stored_norm_stats(int64_t i, Normalize mode, GatherNormalizer::Stats* stats) const override {
    if (i == 6) throw InputError("unreadable.h5: sample 6: HDF5 cannot read /trace_norm");
    return SampleSubset::stored_norm_stats(i, mode, stats);
  }
};

// Statistics that cannot be read do not make a bad sample of good data: the sample is read with its
// own statistics, nothing is skipped, and the batches are those of a reader that ignores stored ones.
TEST(ReaderFusedPass, UnreadableStoredStatisticsAreNotABadSample) {
  const std::string path = temp_path("unreadable");
  write_f32_file(path, 9, 37, 29, 0, /*norm_stats=*/true);
  const SampleSet set({path});
  const UnreadableStatsSource src(set);
  SampleReaderOptions o;
  o.batch = 3;
  o.seed = 4;
  o.threads = 2;
  o.prefetch = 2;
  o.skip_bad_samples = true;
  o.augment.flip_receivers = true;
  SampleReaderOptions off = o;
  off.use_stored_stats = false;
  SampleReader a(src, o), b(src, off);
  expect_same_batches(a, b);
  EXPECT_EQ(a.skipped_total(), 0);
  EXPECT_TRUE(a.stored_stats_refused());
  std::remove(path.c_str());
}

// A source whose sample 3 holds an Inf in its last row, as its blocks arrive (its stored
// statistics are those of the clean data).
class InfSource : public SampleSubset {
 public:
  explicit InfSource(const SampleSource& base) : SampleSubset(base, every_sample(base)) {}
  void read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                 const LabelRowsReady& label_ready) const override {
    const int64_t h = height(), w = width();
    SampleSubset::read_rows(
        i, data, label, where,
        [&](int64_t r0, int64_t r1, float* rows) {
          if (i == 3 && r1 == h) rows[(h - 1 - r0) * w + w - 2] = std::numeric_limits<float>::infinity();
          ready(r0, r1, rows);
        },
        label_ready);
  }
};

// A bad sample met while stored statistics are checked (the finite check rides on their sums) is
// skipped as any other, and is not taken for stale statistics: in place and placed (bf16, a shift),
// the batches of a reader that ignores stored statistics, which finds it in its own sums.
TEST(ReaderFusedPass, BadSampleFoundWhileCheckingStoredStatistics) {
  const std::string path = temp_path("stored_inf");
  write_f32_file(path, 9, 200, 1031, 0, /*norm_stats=*/true);  // four read blocks per gather
  const SampleSet set({path});
  const InfSource src(set);
  for (Normalize mode : {Normalize::trace, Normalize::sample}) {
    for (const DType dtype : {DType::f32, DType::bf16}) {
      for (const int64_t max_shift : {int64_t{0}, int64_t{5}}) {
        SCOPED_TRACE(::testing::Message()
                     << normalize_name(mode) << ", " << dtype_name(dtype) << ", max shift " << max_shift);
        SampleReaderOptions o;
        o.batch = 2;
        o.seed = 8;
        o.threads = 2;
        o.prefetch = 2;
        o.normalize = mode;
        o.dtype = dtype;
        o.skip_bad_samples = true;
        o.augment.flip_receivers = true;
        o.augment.max_shift = max_shift;
        SampleReaderOptions off = o;
        off.use_stored_stats = false;
        SampleReader a(src, o), b(src, off);
        expect_same_batches(a, b, /*never=*/3);
        EXPECT_GT(a.skipped_total(), 0);
        EXPECT_GT(b.skipped_total(), 0);
        EXPECT_GT(a.norm_stats_stored(), 0);
        EXPECT_FALSE(a.stored_stats_refused());
      }
    }
  }
  std::remove(path.c_str());
}

TEST(ReaderFusedPass, Float16ConvertedBlockByBlock) {
  for (const auto& shape : {std::pair<int64_t, int64_t>{600, 1031}, std::pair<int64_t, int64_t>{23, 41}}) {
    const std::string path = temp_path("f16_" + std::to_string(shape.first));
    write_f16_file(path, 7, shape.first, shape.second);
    SampleSet set({path});
    ASSERT_EQ(set.file(0).info().data_type, H5ElemType::f16);
    ASSERT_TRUE(set.file(0).info().data_direct) << "the float16 file should be read with pread";
    expect_equal_to_separate_passes(path, "float16");
    std::remove(path.c_str());
  }
}

// A source with padding traces (every fourth, holding large values that must never reach a batch)
// and one sample holding a NaN near its end, over a file's gathers, handed over in blocks of 7 rows
// (so that the NaN is found after earlier blocks were normalised, and flipped, in place).
class PaddedSource : public SampleSubset {
 public:
  explicit PaddedSource(const SampleSource& base) : SampleSubset(base, every_sample(base)) {}
  void read(int64_t i, float* data, uint8_t* label) const override {
    SampleSubset::read(i, data, label);
    const int64_t h = height(), w = width();
    for (int64_t t = 0; t < h; ++t) {
      for (int64_t x = 1; x < w; x += 4) data[t * w + x] = 1e6f * static_cast<float>(i + 1) + static_cast<float>(t);
    }
    if (i == 3) data[(h - 2) * w + 2] = std::nanf("");  // on a real trace, in the last block
  }
  // Blocks of 7 rows, each to the start of data when asked (as H5SampleFile reads them).
  void read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                 const LabelRowsReady& label_ready) const override {
    const int64_t h = height(), w = width();
    std::vector<float> whole(static_cast<size_t>(h * w));
    read(i, where == RowBlocks::in_place ? data : whole.data(), label);
    for (int64_t r0 = 0; r0 < h; r0 += 7) {
      const int64_t r1 = std::min(r0 + 7, h);
      float* rows = data + r0 * w;
      if (where == RowBlocks::at_start) {
        std::fill(data, data + h * w, std::nanf(""));  // the rows of earlier blocks are gone
        rows = std::copy(whole.begin() + r0 * w, whole.begin() + r1 * w, data) - (r1 - r0) * w;
      }
      ready(r0, r1, rows);
    }
    if (label_ready && label != nullptr) label_ready(0, h, label);
  }
  bool has_trace_valid() const override { return true; }
  void read_trace_valid(int64_t, uint8_t* valid) const override {
    for (int64_t x = 0; x < width(); ++x) valid[x] = x % 4 == 1 ? 0 : 1;
  }
};

// Kept statistics with padding traces, a bad sample replaced (--skip-bad-samples) and two ranks:
// three epochs give the bits of a reader that keeps none, and no padding value reaches a batch
// (with per-trace normalisation the padding traces are zero). Later epochs (and every epoch without
// normalisation) finish the rows in the read callback: flipped in place, or, with a time shift, a
// crop or bf16, placed into the slot from blocks the source reads to the scratch gather's start.
TEST(ReaderFusedPass, KeptStatisticsWithPaddingBadSamplesAndRanks) {
  const std::string path = temp_path("padded");
  write_f32_file(path, 9, 37, 29, 0);
  const SampleSet set({path});
  const PaddedSource src(set);
  struct Layout {
    DType dtype;
    bool crop;
  };
  // In place (f32), and through the scratch gather (a crop, bf16 batches, both).
  const Layout layouts[] = {{DType::f32, false}, {DType::f32, true}, {DType::bf16, false}, {DType::bf16, true}};
  for (const int world : {1, 2}) {
    for (int rank = 0; rank < world; ++rank) {
      for (Normalize mode : {Normalize::trace, Normalize::sample, Normalize::none}) {
        for (const int64_t max_shift : {int64_t{0}, int64_t{3}}) {
          for (const Layout& lay : layouts) {
            SCOPED_TRACE(::testing::Message()
                         << "rank " << rank << " of " << world << ", " << normalize_name(mode) << ", max shift "
                         << max_shift << ", " << dtype_name(lay.dtype) << (lay.crop ? ", crop" : ""));
            SampleReaderOptions o;
            o.batch = 4;
            o.world = world;
            o.rank = rank;
            o.seed = 5;
            o.threads = 2;
            o.prefetch = 2;
            o.normalize = mode;
            o.dtype = lay.dtype;
            o.skip_bad_samples = true;
            o.augment.flip_receivers = true;
            o.augment.max_shift = max_shift;
            if (lay.crop) {
              o.augment.crop_height = 37 - 5;
              o.augment.crop_width = 29 - 6;
            }
            SampleReaderOptions none = o;
            none.norm_stats_cache_bytes = 0;
            SampleReader kept(src, o), plain(src, none);
            const int64_t ow = kept.out_width(), pix = kept.out_height() * ow;
            const size_t bytes = static_cast<size_t>(pix * dtype_size(lay.dtype));
            for (int64_t k = 0; k < 3 * kept.batches_per_epoch(); ++k) {
              const ReaderBatch a = kept.next(), b = plain.next();
              ASSERT_EQ(a.samples, b.samples);
              const int64_t n = a.data.dim(0);
              ASSERT_EQ(std::memcmp(a.data.raw(), b.data.raw(), static_cast<size_t>(n) * bytes), 0) << "batch " << k;
              ASSERT_EQ(std::memcmp(a.label.data<uint8_t>(), b.label.data<uint8_t>(), static_cast<size_t>(n * pix)), 0);
              ASSERT_EQ(std::memcmp(a.trace_valid.data<uint8_t>(), b.trace_valid.data<uint8_t>(),
                                    static_cast<size_t>(n * ow)),
                        0);
              for (int64_t j = 0; j < n; ++j) {
                const uint8_t* valid = a.trace_valid.data<uint8_t>() + j * ow;
                for (int64_t p = 0; p < pix; ++p) {
                  // (Per-trace normalisation keeps a zero trace at zero; per-sample moves it to -mean/std.)
                  if (mode != Normalize::trace || valid[p % ow] != 0) continue;
                  const bool zero = lay.dtype == DType::bf16 ? a.data.data<bf16>()[j * pix + p].bits == 0
                                                             : a.data.data<float>()[j * pix + p] == 0.0f;
                  ASSERT_TRUE(zero) << "padding reached batch " << k << " at pixel " << p;
                }
              }
            }
            if (mode != Normalize::none) {
              EXPECT_GT(kept.norm_stats_reused(), 0);
            }
            EXPECT_EQ(plain.norm_stats_reused(), 0);
            EXPECT_GT(kept.skipped_total(), 0) << "the NaN sample was read and replaced";
          }
        }
      }
    }
  }
  std::remove(path.c_str());
}

// read_rows delivers every row once, in order, in blocks that tile the gather: in place, the
// gather of read(); at the start, each block at data's start and nothing beyond the largest block
// written. A compressed sample comes whole, in place, either way.
TEST(ReaderFusedPass, ReadRowsVisitsEveryRowInOrder) {
  const int64_t h = 600, w = 1031;
  const std::string f32 = temp_path("rows"), f16 = temp_path("rows16"), gz = temp_path("rowsgz");
  write_f32_file(f32, 2, h, w, 0);
  write_f16_file(f16, 2, h, w);
  write_f32_file(gz, 2, h, w, 3);
  for (const std::string& path : {f32, f16, gz}) {
    SCOPED_TRACE(path);
    H5SampleFile f(path);
    std::vector<float> want(static_cast<size_t>(h * w));
    f.read(1, want.data(), nullptr);
    for (const auto where : {SampleSource::RowBlocks::in_place, SampleSource::RowBlocks::at_start}) {
      const bool at_start = where == SampleSource::RowBlocks::at_start;
      SCOPED_TRACE(at_start ? "at_start" : "in_place");
      const float sentinel = -12345.5f;
      std::vector<float> a(want.size(), sentinel), got(want.size(), sentinel);
      int64_t next = 0, blocks = 0, most = 0;
      f.read_rows(1, a.data(), nullptr, where,
                  [&](int64_t r0, int64_t r1, float* rows) {
                    EXPECT_EQ(r0, next);
                    EXPECT_GT(r1, r0);
                    EXPECT_EQ(rows, at_start && path != gz ? a.data() : a.data() + r0 * w);
                    std::copy(rows, rows + (r1 - r0) * w, got.begin() + r0 * w);
                    most = std::max(most, r1 - r0);
                    next = r1;
                    ++blocks;
                  },
                  {});
      EXPECT_EQ(next, h);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
      if (path == gz) {
        EXPECT_EQ(blocks, 1);
        EXPECT_EQ(std::memcmp(a.data(), want.data(), want.size() * 4), 0);
        continue;
      }
      EXPECT_GE(blocks, 2);
      if (at_start) {
        EXPECT_TRUE(std::all_of(a.begin() + most * w, a.end(), [&](float v) { return v == sentinel; }))
            << "a block was read past data's first " << most << " rows";
      } else {
        EXPECT_EQ(std::memcmp(a.data(), want.data(), want.size() * 4), 0);
      }
    }
  }
  for (const std::string& path : {f32, f16, gz}) std::remove(path.c_str());
}

// Labels handed over by read_rows (label_ready): every row once, in order, each block at its own
// rows, after the data, with read()'s bytes; u8 labels read with pread in blocks of about 256 KiB
// (here nine), compressed ones whole.
TEST(ReaderFusedPass, LabelRowsArriveInOrderAfterTheData) {
  const int64_t h = 2100, w = 1000;  // 2.1 MB of labels per sample
  const std::string plain = temp_path("labels"), gz = temp_path("labelsgz");
  write_f32_file(plain, 2, h, w, 0);
  write_f32_file(gz, 2, h, w, 3);
  for (const std::string& path : {plain, gz}) {
    SCOPED_TRACE(path);
    H5SampleFile f(path);
    std::vector<float> d(static_cast<size_t>(h * w));
    std::vector<uint8_t> want(d.size()), label(d.size(), 7);
    f.read(1, d.data(), want.data());
    int64_t data_rows = 0, next = 0, blocks = 0;
    f.read_rows(
        1, d.data(), label.data(), SampleSource::RowBlocks::in_place,
        [&](int64_t, int64_t r1, float*) { data_rows = r1; },
        [&](int64_t r0, int64_t r1, uint8_t* rows) {
          EXPECT_EQ(data_rows, h) << "a label block before the last data rows";
          EXPECT_EQ(r0, next);
          EXPECT_GT(r1, r0);
          EXPECT_EQ(rows, label.data() + r0 * w);
          EXPECT_EQ(std::memcmp(rows, want.data() + r0 * w, static_cast<size_t>((r1 - r0) * w)), 0);
          next = r1;
          ++blocks;
        });
    EXPECT_EQ(next, h);
    EXPECT_EQ(blocks, path == gz ? 1 : 9);
    EXPECT_EQ(std::memcmp(label.data(), want.data(), want.size()), 0);
  }
  for (const std::string& path : {plain, gz}) std::remove(path.c_str());
}

}  // namespace
}  // namespace seis
