// Feeds: io/hdf5_chunk_index.cpp (read_chunk_index), our own parser of HDF5 object headers, layout
// messages, v1 B-trees and fixed arrays, in process. The library's view of the dataset (shape,
// chunking, filters, where the object header is) comes from one of 12 small template files written
// here with the HDF5 C API and opened once, as after vetting; the parser reads the input's bytes:
// input[0] picks the template, input[1:] is the file the parser sees (fd of a memfd). Seeds are the
// templates themselves. Asserts: no crash or sanitizer report; a true return lists chunks in
// strictly increasing grid index with positive sizes; a false return lists none.
#include <hdf5.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/hdf5_chunk_index.h"

namespace {

struct Template {
  const char* name;
  bool latest = false, early = false, unlimited = false;
  int gzip = 0;
  hsize_t chunk_n = 1, chunk_h = 0;  // chunk [chunk_n, chunk_h or h, chunk_h or w]
  size_t offset_bytes = 8;
  int64_t n = 8, skip_every = 0;
  int attributes = 0;
};

// The layouts tests/hdf5_chunk_index_test.cpp checks against the library, small.
const Template kTemplates[] = {
    {"btree", false, false, false, 0, 1, 0, 8, 20, 0, 0},
    {"btree_multi", false, false, false, 0, 1, 1, 8, 6, 0, 0},
    {"btree_gzip_sparse", false, false, false, 6, 1, 0, 8, 12, 3, 0},
    {"btree_unlimited", false, false, true, 0, 1, 0, 8, 10, 0, 0},
    {"btree_sizes4", false, true, false, 0, 1, 0, 4, 10, 0, 0},
    {"btree_continuation", false, false, false, 0, 1, 0, 8, 6, 0, 30},
    {"latest_fixed_array", true, false, false, 0, 1, 0, 8, 20, 0, 0},
    {"latest_fixed_array_gzip", true, false, false, 1, 1, 0, 8, 12, 5, 0},
    {"latest_fixed_array_paged", true, false, false, 0, 1, 0, 8, 1100, 500, 0},
    {"latest_implicit", true, true, false, 0, 1, 0, 8, 10, 0, 0},
    {"latest_single", true, false, false, 0, 8, 0, 8, 8, 0, 0},
    {"latest_single_gzip_continuation", true, false, false, 3, 8, 0, 8, 8, 0, 30},
};
constexpr size_t kNumTemplates = sizeof kTemplates / sizeof kTemplates[0];
constexpr hsize_t kH = 2, kW = 2;

void write_template(const std::string& path, const Template& t) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_sizes(fcpl, t.offset_bytes, t.offset_bytes);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (t.latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl);
  const hsize_t dims[3] = {hsize_t(t.n), kH, kW};
  const hsize_t maxdims[3] = {t.unlimited ? H5S_UNLIMITED : hsize_t(t.n), kH, kW};
  hid_t space = H5Screate_simple(3, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  const hsize_t chunk[3] = {t.chunk_n, t.chunk_h ? t.chunk_h : kH, t.chunk_h ? t.chunk_h : kW};
  H5Pset_chunk(dcpl, 3, chunk);
  if (t.early) H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  if (t.gzip) H5Pset_deflate(dcpl, unsigned(t.gzip));
  hid_t dset = H5Dcreate2(file, "data", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  std::vector<float> sample(kH * kW);
  for (int64_t i = 0; i < t.n; ++i) {
    if (t.skip_every > 0 && i % t.skip_every == 1) continue;
    for (size_t k = 0; k < sample.size(); ++k) sample[k] = static_cast<float>(i) + 0.25f * static_cast<float>(k);
    const hsize_t start[3] = {hsize_t(i), 0, 0}, count[3] = {1, kH, kW};
    hid_t fs = H5Dget_space(dset);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t ms = H5Screate_simple(3, count, nullptr);
    H5Dwrite(dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, sample.data());
    H5Sclose(ms);
    H5Sclose(fs);
  }
  hid_t aspace = H5Screate(H5S_SCALAR);
  for (int a = 0; a < t.attributes; ++a) {
    const double v = a;
    hid_t attr = H5Acreate2(dset, ("attribute_number_" + std::to_string(a)).c_str(), H5T_IEEE_F64LE, aspace,
                            H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(attr);
  }
  H5Sclose(aspace);
  H5Dclose(dset);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(file);
  H5Pclose(fapl);
  H5Pclose(fcpl);
}

std::vector<hid_t> g_dsets;  // one open dataset per template: the library's view
int g_memfd = -1;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  for (const Template& t : kTemplates) {
    const std::string path = seis::fuzz::work_dir() + "/" + t.name + ".h5";
    write_template(path, t);
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = file >= 0 ? H5Dopen2(file, "data", H5P_DEFAULT) : -1;
    if (dset < 0) {
      std::fprintf(stderr, "fuzz_hdf5_chunk_index: cannot write or open the template %s\n", path.c_str());
      std::abort();
    }
    g_dsets.push_back(dset);  // (the file stays open through the dataset)
    H5Fclose(file);
    if (seis::fuzz::seed_dir() != nullptr) {
      const std::string bytes = seis::fuzz::read_file(path);
      seis::fuzz::write_seed(t.name, std::string(1, static_cast<char>(&t - kTemplates)) + bytes);
    }
  }
  g_memfd = ::memfd_create("fuzz_hdf5_chunk_index", MFD_CLOEXEC);
  if (g_memfd < 0) std::abort();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const hid_t dset = g_dsets[data[0] % kNumTemplates];
  if (::ftruncate(g_memfd, 0) != 0 || ::pwrite(g_memfd, data + 1, size - 1, 0) != static_cast<ssize_t>(size - 1)) {
    std::abort();
  }
  seis::fuzz::expect_clean([&] {
    std::vector<seis::H5ChunkLocation> chunks;
    std::string why;
    const bool ok = seis::read_chunk_index(g_memfd, dset, &chunks, &why);
    if (!ok && !chunks.empty()) {
      std::fprintf(stderr, "fuzz finding: read_chunk_index refused (%s) but listed chunks\n", why.c_str());
      std::abort();
    }
    for (size_t k = 0; k < chunks.size(); ++k) {
      if (chunks[k].size <= 0 || chunks[k].addr < 0 || (k > 0 && chunks[k].index <= chunks[k - 1].index)) {
        std::fprintf(stderr, "fuzz finding: chunk %zu of the index is inconsistent\n", k);
        std::abort();
      }
    }
  });
  return 0;
}
