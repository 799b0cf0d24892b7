// SampleSet and SampleReader on the CPU: order and batch splitting across ranks, exact bytes,
// multi-file sets, deterministic augmentation, bad samples, bounded memory, resume, errors.
#include "io/sample_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/rng.h"
#include "io/hdf5_dataset.h"
#include "io/sample_order.h"
#include "io/sample_set.h"

namespace seis {
namespace {

// Deterministic contents of sample i of file `tag`: random bit patterns of finite floats, and
// labels that are a function of the data value (so a moved label can be matched to moved data).
float value_of(int tag, int64_t i, int64_t p) {
  const uint64_t r =
      hash_combine(hash_combine(static_cast<uint64_t>(tag), static_cast<uint64_t>(i)), static_cast<uint64_t>(p));
  return static_cast<float>(static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0) *
         static_cast<float>(1 + (r & 7));
}
uint8_t label_of(float v) { return v > 0.25f ? 1 : 0; }

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "sample_reader_" + std::to_string(::getpid()) + "_" + name + ".h5";
}

struct FileSpec {
  int tag = 0;
  int64_t n = 8, h = 8, w = 8;
  int gzip = 0;
  bool label = true;
  std::vector<int64_t> nan_samples;
};

std::string write_file(const std::string& name, const FileSpec& spec) {
  const std::string path = temp_path(name);
  H5SampleWriter::Options o;
  o.n = spec.n;
  o.height = spec.h;
  o.width = spec.w;
  o.with_label = spec.label;
  o.gzip_level = spec.gzip;
  H5SampleWriter wr(path, o);
  std::vector<float> d(static_cast<size_t>(spec.h * spec.w));
  std::vector<uint8_t> l(d.size());
  for (int64_t i = 0; i < spec.n; ++i) {
    for (int64_t p = 0; p < spec.h * spec.w; ++p) {
      d[p] = value_of(spec.tag, i, p);
      l[p] = label_of(d[p]);
    }
    if (std::count(spec.nan_samples.begin(), spec.nan_samples.end(), i)) d[3] = std::nanf("");
    wr.write(i, d.data(), spec.label ? l.data() : nullptr);
  }
  wr.commit();
  return path;
}

struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const auto& p : paths) std::remove(p.c_str());
  }
  std::string add(const std::string& name, const FileSpec& spec) {
    paths.push_back(write_file(name, spec));
    return paths.back();
  }
};

SampleReaderOptions plain(int64_t batch, int world = 1, int rank = 0) {
  SampleReaderOptions o;
  o.batch = batch;
  o.world = world;
  o.rank = rank;
  o.seed = 7;
  o.normalize = Normalize::none;
  o.prefetch = 3;
  o.threads = 2;
  return o;
}

// The rows of a batch must hold exactly the bytes written for the samples it names.
void expect_rows_match(const ReaderBatch& b, int tag, int64_t h, int64_t w) {
  ASSERT_EQ(b.data.dim(0), static_cast<int64_t>(b.samples.size()));
  for (size_t j = 0; j < b.samples.size(); ++j) {
    const float* d = b.data.data<float>() + static_cast<int64_t>(j) * h * w;
    const uint8_t* l = b.label.data<uint8_t>() + static_cast<int64_t>(j) * h * w;
    for (int64_t p = 0; p < h * w; ++p) {
      const float want = value_of(tag, b.samples[j], p);
      ASSERT_EQ(std::memcmp(&d[p], &want, 4), 0) << "sample " << b.samples[j] << " pixel " << p;
      ASSERT_EQ(l[p], label_of(want)) << "sample " << b.samples[j] << " pixel " << p;
    }
  }
}

TEST(SampleReader, EverySampleOncePerEpochAcrossRanks) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 36;
  const std::string path = tf.add("cover", spec);
  SampleSet set({path});
  const int64_t B = 12;
  for (int world : {1, 2, 3, 4}) {
    std::vector<std::unique_ptr<SampleReader>> readers;
    for (int r = 0; r < world; ++r) readers.push_back(std::make_unique<SampleReader>(set, plain(B, world, r)));
    ASSERT_EQ(readers[0]->batches_per_epoch(), 3);
    ASSERT_EQ(readers[0]->rank_batch(), B / world);
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      const std::vector<int64_t> perm = epoch_permutation(36, 7, epoch);
      std::set<int64_t> seen;
      for (int64_t b = 0; b < 3; ++b) {
        std::vector<int64_t> global;
        for (int r = 0; r < world; ++r) {
          ReaderBatch rb = readers[static_cast<size_t>(r)]->next();
          EXPECT_EQ(rb.epoch, epoch);
          EXPECT_EQ(rb.batch, b);
          expect_rows_match(rb, 0, 8, 8);
          global.insert(global.end(), rb.samples.begin(), rb.samples.end());
        }
        const std::vector<int64_t> want(perm.begin() + b * B, perm.begin() + (b + 1) * B);
        EXPECT_EQ(global, want) << "world " << world << " epoch " << epoch << " batch " << b;
        seen.insert(global.begin(), global.end());
      }
      EXPECT_EQ(seen.size(), 36u) << "world " << world << " epoch " << epoch;
    }
  }
}

TEST(SampleReader, DropsTheLastIncompleteBatch) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 37;
  SampleSet set({tf.add("drop", spec)});
  SampleReader r(set, plain(12, 2, 1));
  EXPECT_EQ(r.batches_per_epoch(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.next().epoch, 0);
  const ReaderBatch b = r.next();
  EXPECT_EQ(b.epoch, 1);
  EXPECT_EQ(b.batch, 0);
}

std::vector<int64_t> order(const SampleSet& set, uint64_t seed, int64_t batches, int64_t start_epoch = 0) {
  SampleReaderOptions o = plain(4);
  o.seed = seed;
  o.start_epoch = start_epoch;
  SampleReader r(set, o);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batches; ++i) {
    const ReaderBatch b = r.next();
    out.insert(out.end(), b.samples.begin(), b.samples.end());
  }
  return out;
}

TEST(SampleReader, SeedAndEpochSetTheOrder) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 32;
  SampleSet set({tf.add("seed", spec)});
  EXPECT_EQ(order(set, 1, 8), order(set, 1, 8));
  EXPECT_NE(order(set, 1, 8), order(set, 2, 8));
  const std::vector<int64_t> two = order(set, 1, 16);
  EXPECT_NE(std::vector<int64_t>(two.begin(), two.begin() + 32), std::vector<int64_t>(two.begin() + 32, two.end()));
  EXPECT_EQ(std::vector<int64_t>(two.begin() + 32, two.end()), order(set, 1, 8, 1));
}

TEST(SampleReader, BytesArriveAsWrittenUncompressedAndGzip) {
  for (int gzip : {0, 4}) {
    TempFiles tf;
    FileSpec spec;
    spec.tag = 3 + gzip;
    spec.n = 20;
    spec.h = 24;
    spec.w = 40;
    spec.gzip = gzip;
    SampleSet set({tf.add("bytes" + std::to_string(gzip), spec)});
    SampleReaderOptions o = plain(5);
    o.threads = 3;
    SampleReader r(set, o);
    for (int i = 0; i < 8; ++i) {
      const ReaderBatch b = r.next();
      ASSERT_EQ(b.data.shape(), (Shape{5, 24, 40, 1}));
      ASSERT_EQ(b.label.shape(), (Shape{5, 24, 40}));
      expect_rows_match(b, spec.tag, 24, 40);
    }
    const ReaderStats s = r.stats();
    EXPECT_EQ(s.batches, 8);
    EXPECT_EQ(s.samples, 40);
    EXPECT_EQ(s.bytes_read, 40 * set.bytes_per_sample(0));
    EXPECT_GE(s.wait_fraction(), 0.0);
    EXPECT_LE(s.wait_fraction(), 1.0);
  }
}

TEST(SampleReader, MultiFileSet) {
  TempFiles tf;
  std::vector<std::string> paths;
  const int64_t sizes[3] = {5, 7, 4};
  for (int f = 0; f < 3; ++f) {
    FileSpec spec;
    spec.tag = 10 + f;
    spec.n = sizes[f];
    spec.gzip = f == 1 ? 2 : 0;
    paths.push_back(tf.add("multi" + std::to_string(f), spec));
  }
  SampleSet set(paths);
  ASSERT_EQ(set.size(), 16);
  ASSERT_EQ(set.num_files(), 3);
  EXPECT_EQ(set.locate(0).file, 0);
  EXPECT_EQ(set.locate(5).file, 1);
  EXPECT_EQ(set.locate(5).local, 0);
  EXPECT_EQ(set.locate(15).file, 2);
  EXPECT_EQ(set.locate(15).local, 3);
  EXPECT_NE(set.describe(13).find(paths[2] + " sample 1"), std::string::npos) << set.describe(13);

  SampleReader r(set, plain(4));
  std::set<int64_t> seen;
  for (int i = 0; i < 4; ++i) {
    const ReaderBatch b = r.next();
    for (size_t j = 0; j < b.samples.size(); ++j) {
      const SampleSet::Location loc = set.locate(b.samples[j]);
      seen.insert(b.samples[j]);
      for (int64_t p = 0; p < 64; ++p) {
        const float want = value_of(10 + loc.file, loc.local, p);
        ASSERT_EQ(std::memcmp(b.data.data<float>() + static_cast<int64_t>(j) * 64 + p, &want, 4), 0);
      }
    }
  }
  EXPECT_EQ(seen.size(), 16u);

  FileSpec odd;
  odd.w = 16;
  const std::string odd_path = tf.add("odd_w", odd);
  try {
    SampleSet bad({paths[0], odd_path});
    FAIL() << "no error for a file of another width";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(odd_path), std::string::npos) << e.what();
  }
  FileSpec nolabel;
  nolabel.label = false;
  const std::string nl_path = tf.add("nolabel", nolabel);
  try {
    SampleSet bad({paths[0], nl_path});
    FAIL() << "no error for a file without labels";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(nl_path), std::string::npos) << e.what();
  }
}

TEST(SampleReader, SetWithoutLabels) {
  TempFiles tf;
  FileSpec spec;
  spec.label = false;
  SampleSet set({tf.add("nolabel_set", spec)});
  SampleReader r(set, plain(2));
  const ReaderBatch b = r.next();
  EXPECT_TRUE(b.data.defined());
  EXPECT_FALSE(b.label.defined());
}

// Applies flip, shift and crop as the reader documents them, to an [h, w] image.
std::vector<float> reference_augment(const float* src, int64_t h, int64_t w, bool flip, int64_t s, bool circular,
                                     int64_t t0, int64_t x0, int64_t ch, int64_t cw) {
  std::vector<float> out(static_cast<size_t>(ch * cw));
  for (int64_t i = 0; i < ch; ++i) {
    for (int64_t j = 0; j < cw; ++j) {
      int64_t t = t0 + i - s;  // out[t] = in[t - s]
      const int64_t x = flip ? w - 1 - (x0 + j) : x0 + j;
      if (circular) t = ((t % h) + h) % h;
      out[static_cast<size_t>(i * cw + j)] = (t < 0 || t >= h) ? 0.0f : src[t * w + x];
    }
  }
  return out;
}

TEST(SampleReader, AugmentationIsDeterministicAndMovesLabelsWithData) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 24;
  spec.h = 16;
  spec.w = 12;
  SampleSet set({tf.add("augment", spec)});
  for (bool circular : {false, true}) {
    SampleReaderOptions o = plain(6);
    o.augment.flip_receivers = true;
    o.augment.max_shift = 3;
    o.augment.shift_circular = circular;
    o.augment.crop_height = 8;
    o.augment.crop_width = 8;
    o.augment.crop_multiple = 4;
    SampleReaderOptions o2 = o;
    o2.threads = 3;
    o2.prefetch = 1;
    o2.world = 2;  // the same (seed, epoch, position) gives the same draws on any rank layout
    SampleReader r(set, o);
    SampleReader a(set, o2), b(set, [&] {
      SampleReaderOptions x = o2;
      x.rank = 1;
      return x;
    }());
    int flips = 0, shifts = 0, crops = 0;
    for (int step = 0; step < 8; ++step) {
      const ReaderBatch g = r.next();
      ASSERT_EQ(g.data.shape(), (Shape{6, 8, 8, 1}));
      const ReaderBatch g0 = a.next(), g1 = b.next();
      std::vector<float> split(g0.data.to_vector());
      const std::vector<float> s1 = g1.data.to_vector();
      split.insert(split.end(), s1.begin(), s1.end());
      EXPECT_EQ(split, g.data.to_vector()) << "step " << step;
      for (int64_t j = 0; j < 6; ++j) {
        std::vector<float> src(16 * 12);
        for (int64_t p = 0; p < 16 * 12; ++p) src[p] = value_of(0, g.samples[j], p);
        const float* got = g.data.data<float>() + j * 64;
        const uint8_t* got_l = g.label.data<uint8_t>() + j * 64;
        // Find the transform that explains the data; the label must follow it exactly.
        bool found = false;
        for (int f = 0; f < 2 && !found; ++f) {
          for (int64_t s = -3; s <= 3 && !found; ++s) {
            for (int64_t t0 = 0; t0 <= 8 && !found; ++t0) {
              for (int64_t x0 = 0; x0 <= 4 && !found; ++x0) {
                const std::vector<float> want = reference_augment(src.data(), 16, 12, f, s, circular, t0, x0, 8, 8);
                if (std::memcmp(want.data(), got, 64 * 4) != 0) continue;
                found = true;
                flips += f;
                shifts += s != 0;
                crops += t0 != 0 || x0 != 0;
                for (int64_t p = 0; p < 64; ++p) {
                  // Zero-filled rows have data 0 and label 0, as label_of(0) is.
                  ASSERT_EQ(got_l[p], label_of(want[p])) << "label not moved with data, sample " << g.samples[j];
                }
              }
            }
          }
        }
        ASSERT_TRUE(found) << "no flip/shift/crop explains sample " << g.samples[j] << " at step " << step;
      }
    }
    EXPECT_GT(flips, 0);
    EXPECT_GT(shifts, 0);
    EXPECT_GT(crops, 0);
  }
}

TEST(SampleReader, AugmentationOptionsAreValidated) {
  TempFiles tf;
  FileSpec spec;
  spec.h = 16;
  spec.w = 12;
  SampleSet set({tf.add("augopt", spec)});
  SampleReaderOptions o = plain(2);
  o.augment.crop_height = 12;
  o.augment.crop_width = 12;
  o.augment.crop_multiple = 8;
  EXPECT_THROW(SampleReader(set, o), UsageError);
  o.augment.crop_height = 32;
  o.augment.crop_multiple = 1;
  EXPECT_THROW(SampleReader(set, o), UsageError);
  o = plain(2);
  o.augment.max_shift = 16;
  EXPECT_THROW(SampleReader(set, o), UsageError);
}

TEST(SampleReader, NaNSampleIsAnInputErrorNamingFileAndSample) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 12;
  spec.nan_samples = {5};
  const std::string path = tf.add("nan", spec);
  SampleSet set({path});
  SampleReader r(set, plain(4));
  try {
    for (int i = 0; i < 3; ++i) r.next();
    FAIL() << "no error for a NaN sample";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path + " sample 5"), std::string::npos) << m;
    EXPECT_NE(m.find("NaN"), std::string::npos) << m;
  }
  // The reader stays failed.
  EXPECT_THROW(r.next(), InputError);
}

TEST(SampleReader, SkipBadSamplesReplacesWithTheNextGoodOne) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 16;
  spec.nan_samples = {5, 9};
  SampleSet set({tf.add("skip", spec)});
  const std::vector<int64_t> perm = epoch_permutation(16, 7, 0);
  std::vector<int64_t> want;
  int64_t want_skipped = 0;
  for (int64_t p = 0; p < 16; ++p) {
    int64_t q = p;
    while (perm[q % 16] == 5 || perm[q % 16] == 9) {
      ++q;
      ++want_skipped;
    }
    want.push_back(perm[q % 16]);
  }
  for (int world : {1, 2}) {
    std::vector<int64_t> got;
    std::vector<std::unique_ptr<SampleReader>> rs;
    for (int r = 0; r < world; ++r) {
      SampleReaderOptions o = plain(8, world, r);
      o.skip_bad_samples = true;
      rs.push_back(std::make_unique<SampleReader>(set, o));
    }
    int64_t skipped = 0;
    for (int b = 0; b < 2; ++b) {
      for (auto& r : rs) {
        const ReaderBatch rb = r->next();
        expect_rows_match(rb, 0, 8, 8);
        got.insert(got.end(), rb.samples.begin(), rb.samples.end());
        skipped += rb.skipped;
      }
    }
    EXPECT_EQ(got, want) << "world " << world;
    EXPECT_EQ(skipped, want_skipped);
    int64_t total = 0;
    for (auto& r : rs) total += r->skipped_total();
    EXPECT_EQ(total, want_skipped);
  }
}

TEST(SampleReader, UnreadableChunkMidEpochIsAnInputError) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 16;
  spec.h = 64;
  spec.w = 64;
  const std::string path = tf.add("trunc", spec);
  SampleSet set({path});
  // Cut the file after opening it: the chunks of the later samples are gone.
  ASSERT_EQ(::truncate(path.c_str(), 16 * 1024), 0);
  try {
    SampleReader r(set, plain(4));
    for (int i = 0; i < 4; ++i) r.next();
    FAIL() << "no error for a truncated file";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sample"), std::string::npos) << e.what();
  }
}

int64_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    std::fclose(f);
  }
  return static_cast<int64_t>(rss) * sysconf(_SC_PAGESIZE);
}

TEST(SampleReader, ResidentMemoryDoesNotGrowWithN) {
  TempFiles tf;
  int64_t slot_bytes[2] = {0, 0}, rss_growth[2] = {0, 0};
  const int64_t ns[2] = {64, 1024};
  for (int k = 0; k < 2; ++k) {
    FileSpec spec;
    spec.n = ns[k];
    spec.h = 64;
    spec.w = 64;
    SampleSet set({tf.add("mem" + std::to_string(ns[k]), spec)});
    const int64_t before = rss_bytes();
    SampleReader r(set, plain(8));
    int64_t peak = 0;
    for (int64_t b = 0; b < r.batches_per_epoch(); ++b) {
      r.next();
      peak = std::max(peak, rss_bytes());
    }
    slot_bytes[k] = r.slot_bytes();
    rss_growth[k] = peak - before;
  }
  EXPECT_EQ(slot_bytes[0], slot_bytes[1]);
  EXPECT_EQ(slot_bytes[0], 3 * 8 * 64 * 64 * 5);
  EXPECT_EQ(slot_bytes[1], 3 * 8 * 64 * 64 * 5);
  // The 1024-sample set holds 20 MiB; reading all of it must not make the process grow by more
  // than a few MiB over the 64-sample run (loose: the allocator and HDF5 caches move a little).
  const int64_t dataset = 1024 * 64 * 64 * 5;
#ifdef __SANITIZE_ADDRESS__
  // AddressSanitizer keeps freed memory in quarantine, so RSS tracks what was ever allocated: only
  // the reader's own accounting above is meaningful in that build.
  (void)dataset;
  (void)rss_growth;
#else
  EXPECT_LT(rss_growth[1], rss_growth[0] + 4 * (int64_t{1} << 20))
      << "RSS growth " << rss_growth[1] << " bytes at N=1024 vs " << rss_growth[0] << " at N=64";
  EXPECT_LT(rss_growth[1], dataset / 4);
#endif
}

TEST(SampleReader, ResumeContinuesTheSameSequence) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 20;
  spec.h = 16;
  spec.w = 16;
  SampleSet set({tf.add("resume", spec)});
  SampleReaderOptions o = plain(6);  // 3 batches per epoch
  o.normalize = Normalize::trace;
  o.augment.flip_receivers = true;
  o.augment.max_shift = 2;
  std::vector<ReaderBatch> full;
  SampleReader::Position at;
  {
    SampleReader r(set, o);
    for (int i = 0; i < 8; ++i) {
      if (i == 4) at = r.position();
      full.push_back(r.next());
    }
  }
  EXPECT_EQ(at.epoch, 1);
  EXPECT_EQ(at.batch, 1);
  o.start_epoch = at.epoch;
  o.start_batch = at.batch;
  o.threads = 1;
  SampleReader r(set, o);
  for (int i = 4; i < 8; ++i) {
    const ReaderBatch b = r.next();
    EXPECT_EQ(b.epoch, full[static_cast<size_t>(i)].epoch);
    EXPECT_EQ(b.batch, full[static_cast<size_t>(i)].batch);
    EXPECT_EQ(b.samples, full[static_cast<size_t>(i)].samples);
    EXPECT_EQ(b.data.to_vector(), full[static_cast<size_t>(i)].data.to_vector()) << "batch " << i;
  }
}

TEST(SampleReader, SeekEqualsAFreshReaderAtThatPosition) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 20;
  SampleSet set({tf.add("seek", spec)});
  SampleReaderOptions o = plain(4);  // 5 batches per epoch
  o.augment.flip_receivers = true;
  SampleReader r(set, o);
  r.next();
  r.next_host();  // a held slot and batches in flight are dropped
  r.seek(2, 3);
  o.start_epoch = 2;
  o.start_batch = 3;
  SampleReader fresh(set, o);
  for (int i = 0; i < 6; ++i) {
    const ReaderBatch a = r.next(), b = fresh.next();
    EXPECT_EQ(a.epoch, b.epoch);
    EXPECT_EQ(a.batch, b.batch);
    EXPECT_EQ(a.samples, b.samples);
    EXPECT_EQ(a.data.to_vector(), b.data.to_vector());
  }
  EXPECT_EQ(r.position().epoch, 3);
  EXPECT_EQ(r.position().batch, 4);
}

TEST(SampleReader, HostBatchViewsAndPosition) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 16;
  SampleSet set({tf.add("host", spec)});
  SampleReaderOptions o = plain(4);
  o.prefetch = 1;  // the held slot is the only one: next_host must give it back on the next call
  SampleReader r(set, o);
  for (int i = 0; i < 6; ++i) {
    const HostBatch h = r.next_host();
    EXPECT_EQ(h.epoch, i / 4);
    EXPECT_EQ(h.batch, i % 4);
    EXPECT_EQ(r.position().batch, (i + 1) % 4);
    for (int64_t j = 0; j < 4; ++j) {
      const float want = value_of(0, h.samples[static_cast<size_t>(j)], 0);
      EXPECT_EQ(h.data[j * 64], want);
    }
  }
  const ReaderBatch b = r.next();
  EXPECT_EQ(b.batch, 2);
  // A bf16 reader's view is of bf16 values, its slots half the size.
  o.dtype = DType::bf16;
  SampleReader half(set, o);
  EXPECT_EQ(half.slot_bytes() * 2 - 4 * 64, r.slot_bytes()) << "the labels (1 byte a pixel) are the same";
  const HostBatch hb = half.next_host();
  EXPECT_EQ(hb.data, nullptr);
  ASSERT_NE(hb.data_bf16, nullptr);
  for (int64_t j = 0; j < 4; ++j) {
    EXPECT_EQ(hb.data_bf16[j * 64].bits, to_bf16(value_of(0, hb.samples[static_cast<size_t>(j)], 0)).bits);
  }
  o.dtype = DType::u8;
  EXPECT_THROW(SampleReader(set, o), UsageError);
}

TEST(SampleReader, IndexListAndUsageErrors) {
  TempFiles tf;
  FileSpec spec;
  spec.n = 16;
  SampleSet set({tf.add("usage", spec)});
  SampleReaderOptions o = plain(6, 4, 0);
  try {
    SampleReader r(set, o);
    FAIL() << "no error for batch 6 on 4 ranks";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).find("--batch 6 is not divisible by the 4 ranks"), 0u) << e.what();
  }
  EXPECT_THROW(SampleReader(set, plain(17)), UsageError);
  EXPECT_THROW(SampleReader(set, plain(2, 2, 2)), UsageError);

  o = plain(2);
  o.indices = {1, 3, 5, 7};
  SampleReader r(set, o);
  std::set<int64_t> seen;
  for (int i = 0; i < 2; ++i) {
    const ReaderBatch b = r.next();
    seen.insert(b.samples.begin(), b.samples.end());
  }
  EXPECT_EQ(seen, (std::set<int64_t>{1, 3, 5, 7}));
  o.indices = {1, 16};
  EXPECT_THROW(SampleReader(set, o), UsageError);
}

TEST(SampleSet, ValidationSplitIsDisjointAndDeterministic) {
  const IndexSplit a = split_validation(100, 0.2, 5), b = split_validation(100, 0.2, 5);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.val.size(), 20u);
  EXPECT_EQ(a.train.size(), 80u);
  std::vector<int64_t> all(a.train);
  all.insert(all.end(), a.val.begin(), a.val.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  EXPECT_NE(split_validation(100, 0.2, 6).val, a.val);
  EXPECT_EQ(split_validation(10, 0.01, 1).val.size(), 1u);
  EXPECT_TRUE(split_validation(10, 0.0, 1).val.empty());
  EXPECT_THROW(split_validation(10, 1.0, 1), UsageError);
  EXPECT_THROW(split_validation(1, 0.5, 1), UsageError);
}

}  // namespace
}  // namespace seis
