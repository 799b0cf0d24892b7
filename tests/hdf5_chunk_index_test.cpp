// Chunk offsets read from the file's own index (io/hdf5_chunk_index.h) against the library's
// H5Dget_chunk_info, chunk by chunk, for every supported layout written by our writer, the C API
// and h5py; unsupported layouts refused; damaged headers refused without a crash; and a file of
// more chunks than the library scan allows read on the pread path, every sample exact.
#include "io/hdf5_chunk_index.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "cli_util.h"
#include "h5_capi_writer.h"
#include "io/hdf5_dataset.h"

namespace seis {
namespace {

std::string tmp_path(const std::string& name) {
  return testing::TempDir() + "h5idx_" + std::to_string(::getpid()) + "_" + name;
}

using seis::test::CapiOptions;
using seis::test::have_h5py;

int run_python(const std::string& script) { return seis::test::run_h5py_script(tmp_path("script.py"), script); }

// The value of element k of sample i in every test file.
float value(int64_t i, int64_t k) { return static_cast<float>(i) * 0.5f + static_cast<float>(k) * 0.001f; }

struct Opened {
  hid_t file = -1, dset = -1;
  int fd = -1;
  explicit Opened(const std::string& path, const char* name = "data") {
    file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file >= 0) dset = H5Dopen2(file, name, H5P_DEFAULT);
    fd = ::open(path.c_str(), O_RDONLY);
  }
  ~Opened() {
    if (dset >= 0) H5Dclose(dset);
    if (file >= 0) H5Fclose(file);
    if (fd >= 0) ::close(fd);
  }
};

// Reads the index and compares every chunk with the library; returns the table.
std::vector<H5ChunkLocation> expect_index_matches_library(const std::string& path, int64_t expect_chunks) {
  Opened o(path);
  EXPECT_GE(o.dset, 0) << path;
  std::vector<H5ChunkLocation> chunks;
  std::string why;
  EXPECT_TRUE(read_chunk_index(o.fd, o.dset, &chunks, &why)) << path << ": " << why;
  EXPECT_EQ(static_cast<int64_t>(chunks.size()), expect_chunks) << path;
  EXPECT_TRUE(verify_chunk_index(o.dset, chunks, &why, INT64_MAX)) << path << ": " << why;
  return chunks;
}

void expect_index_refused(const std::string& path, const std::string& reason_part) {
  Opened o(path);
  ASSERT_GE(o.dset, 0) << path;
  std::vector<H5ChunkLocation> chunks;
  std::string why;
  EXPECT_FALSE(read_chunk_index(o.fd, o.dset, &chunks, &why)) << path;
  EXPECT_NE(why.find(reason_part), std::string::npos) << path << ": " << why;
  EXPECT_TRUE(chunks.empty());
}

void write_ours(const std::string& path, int64_t n, int64_t h, int64_t w, int gzip) {
  H5SampleWriter::Options opt;
  opt.n = n;
  opt.height = h;
  opt.width = w;
  opt.gzip_level = gzip;
  H5SampleWriter wr(path, opt);
  std::vector<float> d(size_t(h * w));
  std::vector<uint8_t> l(size_t(h * w));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < h * w; ++k) {
      d[size_t(k)] = value(i, k);
      l[size_t(k)] = uint8_t((i + k) % 2);
    }
    wr.write(i, d.data(), l.data());
  }
  wr.commit();
}

// Every sample of the file reads back as value(i, k).
void expect_samples_exact(const H5SampleFile& f) {
  const H5DatasetInfo& in = f.info();
  std::vector<float> d(size_t(in.height * in.width));
  int64_t bad = 0;
  for (int64_t i = 0; i < in.n; ++i) {
    f.read(i, d.data(), nullptr);
    for (int64_t k = 0; k < in.height * in.width; ++k) {
      if (d[size_t(k)] != value(i, k) && ++bad <= 5) ADD_FAILURE() << "sample " << i << " element " << k;
    }
  }
  EXPECT_EQ(bad, 0) << in.path;
}

TEST(Hdf5ChunkIndex, Lookup3MatchesTheReferenceVectors) {
  // Bob Jenkins' lookup3.c driver: hashlittle("", 0, 0) = 0xdeadbeef and
  // hashlittle("Four score and seven years ago", 30, 0) = 0x17770551.
  EXPECT_EQ(h5_checksum_lookup3(reinterpret_cast<const uint8_t*>(""), 0), 0xdeadbeefu);
  const char* s = "Four score and seven years ago";
  EXPECT_EQ(h5_checksum_lookup3(reinterpret_cast<const uint8_t*>(s), 30), 0x17770551u);
}

TEST(Hdf5ChunkIndex, OurWriterV1BTree) {
  const std::string p = tmp_path("ours.h5"), pz = tmp_path("ours_gz.h5");
  write_ours(p, 300, 8, 8, 0);  // 300 chunks: a two-level v1 B-tree
  write_ours(pz, 300, 8, 8, 4);
  const auto chunks = expect_index_matches_library(p, 300);
  ASSERT_EQ(chunks.size(), 300u);
  for (size_t i = 1; i < chunks.size(); ++i) EXPECT_GT(chunks[i].addr, chunks[i - 1].addr);  // early, in order
  expect_index_matches_library(pz, 300);
  for (const std::string& f : {p, pz}) {
    H5SampleFile file(f);
    EXPECT_EQ(file.info().data_direct, f == p);
    expect_samples_exact(file);
    std::remove(f.c_str());
  }
}

TEST(Hdf5ChunkIndex, CapiLayouts) {
  struct Case {
    const char* name;
    CapiOptions o;
    int64_t n, expect_chunks;
  };
  CapiOptions partial_early, btree_multi, btree_gzip, unlim_earliest, sizes4, latest_fa, latest_fa_gz, latest_paged,
      latest_paged_sparse, latest_implicit, latest_multi, latest_single, latest_single_gz, latest_cont, v1_cont;
  btree_multi.chunk_h = 4;  // 4 chunks per 8x8 sample
  btree_gzip.gzip = 6;
  btree_gzip.skip_every = 3;
  unlim_earliest.unlimited = true;
  sizes4.offset_bytes = 4;
  sizes4.early = true;
  latest_fa.latest = true;
  latest_fa_gz.latest = true;
  latest_fa_gz.gzip = 1;
  latest_fa_gz.skip_every = 5;
  latest_paged.latest = true;
  latest_paged_sparse.latest = true;
  latest_paged_sparse.skip_every = 1500;  // i % 1500 == 1: chunks 1 and 1501 unwritten
  latest_implicit.latest = latest_implicit.early = true;
  latest_multi.latest = true;
  latest_multi.chunk_h = 4;
  latest_single.latest = true;
  latest_single.chunk_n = 40;
  latest_single_gz = latest_single;
  latest_single_gz.gzip = 3;
  latest_cont.latest = true;
  latest_cont.attributes = 40;
  v1_cont.attributes = 40;
  partial_early.early = true;
  partial_early.chunk_n = 3;  // 40 / 3: a partial last chunk
  const Case cases[] = {
      {"btree_default", CapiOptions{}, 200, 200},
      {"btree_early_partial", partial_early, 40, 14},
      {"btree_multi", btree_multi, 100, 400},
      {"btree_gzip_sparse", btree_gzip, 150, 100},
      {"btree_unlimited", unlim_earliest, 150, 150},
      {"btree_sizes4", sizes4, 150, 150},
      {"btree_attr_continuation", v1_cont, 50, 50},
      {"latest_fixed_array", latest_fa, 500, 500},
      {"latest_fixed_array_gzip", latest_fa_gz, 500, 400},
      {"latest_fixed_array_paged", latest_paged, 2500, 2500},
      {"latest_fixed_array_paged_sparse", latest_paged_sparse, 2500, 2498},
      {"latest_implicit", latest_implicit, 300, 300},
      {"latest_multi", latest_multi, 100, 400},
      {"latest_single", latest_single, 40, 1},
      {"latest_single_gzip", latest_single_gz, 40, 1},
      {"latest_attr_continuation", latest_cont, 50, 50},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string p = tmp_path(std::string(c.name) + ".h5");
    ASSERT_TRUE(test::write_capi(p, c.n, 8, 8, c.o, value));
    expect_index_matches_library(p, c.expect_chunks);
    H5SampleFile f(p);
    const bool per_sample = c.o.chunk_h == 0 && c.o.chunk_n == 1;
    EXPECT_EQ(f.info().data_direct, per_sample && c.o.gzip == 0 && c.o.skip_every == 0);
    if (c.o.skip_every == 0) expect_samples_exact(f);
    std::remove(p.c_str());
  }
}

TEST(Hdf5ChunkIndex, UnsupportedLayoutsAreRefused) {
  CapiOptions ea, ub, ub_contiguous;
  ea.latest = ea.unlimited = true;  // extensible array
  ub.userblock = ub_contiguous.userblock = 512;
  ub_contiguous.chunk_n = 0;
  const std::string pea = tmp_path("ea.h5"), pub = tmp_path("ub.h5"), pubc = tmp_path("ubc.h5");
  ASSERT_TRUE(test::write_capi(pea, 50, 8, 8, ea, value));
  ASSERT_TRUE(test::write_capi(pub, 50, 8, 8, ub, value));
  ASSERT_TRUE(test::write_capi(pubc, 50, 8, 8, ub_contiguous, value));
  expect_index_refused(pea, "extensible array");
  expect_index_refused(pub, "user block");
  for (const std::string& p : {pea, pub, pubc}) {
    // The library scan finds the chunks of these small files (a user block shifts every chunk
    // address by its size, not H5Dget_offset's).
    H5SampleFile f(p);
    EXPECT_TRUE(f.info().data_direct) << p;
    expect_samples_exact(f);
    std::remove(p.c_str());
  }
}

TEST(Hdf5ChunkIndex, H5pyFiles) {
  if (!have_h5py()) GTEST_SKIP() << "no h5py";
  const std::string base = tmp_path("py_");
  ASSERT_EQ(run_python("n, h, w = 1500, 8, 8\n"
                       "d = (np.arange(n, dtype='f4')[:, None, None] * np.float32(0.5) + "
                       "np.arange(h * w, dtype='f4').reshape(1, h, w) * np.float32(0.001)).astype('f4')\n"
                       "for name, lib, comp, maxshape in [('default', 'earliest', None, None), "
                       "('gzip', 'earliest', 'gzip', None), ('latest', 'latest', None, None), "
                       "('latest_gzip', 'latest', 'gzip', None), ('unlim', 'earliest', None, (None, h, w))]:\n"
                       "  with h5py.File('" +
                       base +
                       "' + name + '.h5', 'w', libver=lib) as f:\n"
                       "    f.create_dataset('data', data=d, chunks=(1, h, w), compression=comp, "
                       "maxshape=maxshape)\n"),
            0);
  for (const char* name : {"default", "gzip", "latest", "latest_gzip", "unlim"}) {
    SCOPED_TRACE(name);
    const std::string p = base + name + ".h5";
    expect_index_matches_library(p, 1500);
    H5SampleFile f(p);
    EXPECT_EQ(f.info().data_direct, std::strstr(name, "gzip") == nullptr);
    expect_samples_exact(f);
    std::remove(p.c_str());
  }
}

// More chunks than the library scan serves (4096): the pread path is on, every sample exact.
TEST(Hdf5ChunkIndex, TenThousandChunksReadDirect) {
  const std::string p = tmp_path("big.h5"), pl = tmp_path("big_latest.h5");
  write_ours(p, 10000, 8, 8, 0);
  CapiOptions latest;
  latest.latest = true;
  ASSERT_TRUE(test::write_capi(pl, 10000, 8, 8, latest, value));
  for (const std::string& path : {p, pl}) {
    const auto t0 = std::chrono::steady_clock::now();
    H5SampleFile f(path);
    const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("open of %s (10000 chunks): %.3f s\n", path.c_str(), open_s);
    EXPECT_TRUE(f.info().data_direct) << path;
    if (path == p) {
      EXPECT_TRUE(f.info().label_direct);
    }
    expect_samples_exact(f);
    std::remove(path.c_str());
  }
}

// Damaged index metadata: the library reads the intact file, the walk a copy with one byte
// changed. The walk must refuse or agree with the library, never crash or read out of bounds.
TEST(Hdf5ChunkIndex, DamagedHeadersNeverCrash) {
  CapiOptions latest, latest_paged;
  latest.latest = true;
  struct Src {
    std::string path;
    int64_t n;
    CapiOptions o;
  };
  std::vector<Src> srcs = {{tmp_path("fz_v1.h5"), 200, CapiOptions{}}, {tmp_path("fz_fa.h5"), 1500, latest}};
  for (const Src& s : srcs) ASSERT_TRUE(test::write_capi(s.path, s.n, 4, 4, s.o, value));
  const std::string ours = tmp_path("fz_ours.h5");
  write_ours(ours, 100, 4, 4, 0);
  srcs.push_back({ours, 100, {}});
  std::mt19937 rng(7);
  int refused = 0, agreed = 0;
  for (const Src& s : srcs) {
    Opened good(s.path);
    ASSERT_GE(good.dset, 0);
    std::vector<H5ChunkLocation> want;
    std::string why;
    ASSERT_TRUE(read_chunk_index(good.fd, good.dset, &want, &why)) << why;
    std::ifstream in(s.path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The metadata: everything before the first chunk, and everything after the last one.
    int64_t first = INT64_MAX, last_end = 0;
    for (const auto& c : want) first = std::min(first, c.addr), last_end = std::max(last_end, c.addr + c.size);
    std::vector<int64_t> spots, header;
    for (int64_t a = 0; a < first; ++a) spots.push_back(a);
    for (int64_t a = last_end; a < int64_t(bytes.size()); ++a) spots.push_back(a);
    H5O_info_t oi;
    ASSERT_GE(H5Oget_info2(good.dset, &oi, H5O_INFO_BASIC), 0);
    for (int64_t a = int64_t(oi.addr); a < std::min<int64_t>(int64_t(oi.addr) + 400, first); ++a) header.push_back(a);
    const std::string bad = s.path + ".bad";
    const char* env = std::getenv("SEIS_FUZZ_TRIES");  // more for a sanitizer run
    const int tries = env != nullptr ? std::atoi(env) : 400;
    for (int t = 0; t < tries; ++t) {
      std::vector<char> b = bytes;
      // Half the changes in the dataset's object header (the layout message), half anywhere in
      // the metadata; a flipped bit, or a random byte.
      const std::vector<int64_t>& from = t % 2 == 0 && !header.empty() ? header : spots;
      const int64_t at = from[size_t(rng() % from.size())];
      b[size_t(at)] = t % 3 == 0 ? static_cast<char>(rng())
                                 : static_cast<char>(b[size_t(at)] ^ static_cast<char>(1 << (rng() % 8)));
      std::ofstream(bad, std::ios::binary | std::ios::trunc).write(b.data(), std::streamsize(b.size()));
      const int fd = ::open(bad.c_str(), O_RDONLY);
      ASSERT_GE(fd, 0);
      std::vector<H5ChunkLocation> got;
      if (!read_chunk_index(fd, good.dset, &got, &why)) {
        ++refused;
      } else {
        ++agreed;
        // Accepted: the byte did not matter (padding, a name), or it changed the table, which
        // the spot check against the library must then catch.
        bool same = got.size() == want.size();
        for (size_t k = 0; same && k < got.size(); ++k)
          same = got[k].addr == want[k].addr && got[k].size == want[k].size && got[k].index == want[k].index;
        if (!same) {
          EXPECT_FALSE(verify_chunk_index(good.dset, got, &why)) << s.path << " byte " << at;
        }
      }
      ::close(fd);
    }
    std::remove(bad.c_str());
    std::remove(s.path.c_str());
  }
  std::printf("damaged headers: %d refused, %d accepted\n", refused, agreed);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace seis
