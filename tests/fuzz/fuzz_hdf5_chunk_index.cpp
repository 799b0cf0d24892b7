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
#include "tests/h5_capi_writer.h"

namespace {

using seis::test::CapiOptions;

struct Template {
  const char* name;
  int64_t n;
  CapiOptions o;
};

CapiOptions options(bool latest, bool early, bool unlimited, int gzip, hsize_t chunk_n, hsize_t chunk_h,
                    size_t offset_bytes, int64_t skip_every, int attributes) {
  CapiOptions o;
  o.latest = latest;
  o.early = early;
  o.unlimited = unlimited;
  o.gzip = gzip;
  o.chunk_n = chunk_n;
  o.chunk_h = chunk_h;
  o.offset_bytes = offset_bytes;
  o.skip_every = skip_every;
  o.attributes = attributes;
  return o;
}

// The layouts tests/hdf5_chunk_index_test.cpp checks against the library, small (2x2 samples).
const Template kTemplates[] = {
    {"btree", 20, options(false, false, false, 0, 1, 0, 8, 0, 0)},
    {"btree_multi", 6, options(false, false, false, 0, 1, 1, 8, 0, 0)},
    {"btree_gzip_sparse", 12, options(false, false, false, 6, 1, 0, 8, 3, 0)},
    {"btree_unlimited", 10, options(false, false, true, 0, 1, 0, 8, 0, 0)},
    {"btree_sizes4", 10, options(false, true, false, 0, 1, 0, 4, 0, 0)},
    {"btree_continuation", 6, options(false, false, false, 0, 1, 0, 8, 0, 30)},
    {"latest_fixed_array", 20, options(true, false, false, 0, 1, 0, 8, 0, 0)},
    {"latest_fixed_array_gzip", 12, options(true, false, false, 1, 1, 0, 8, 5, 0)},
    {"latest_fixed_array_paged", 1100, options(true, false, false, 0, 1, 0, 8, 500, 0)},
    {"latest_implicit", 10, options(true, true, false, 0, 1, 0, 8, 0, 0)},
    {"latest_single", 8, options(true, false, false, 0, 8, 0, 8, 0, 0)},
    {"latest_single_gzip_continuation", 8, options(true, false, false, 3, 8, 0, 8, 0, 30)},
};
constexpr size_t kNumTemplates = sizeof kTemplates / sizeof kTemplates[0];

float value(int64_t i, int64_t k) { return static_cast<float>(i) + 0.25f * static_cast<float>(k); }

std::vector<hid_t> g_dsets;  // one open dataset per template: the library's view
int g_memfd = -1;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  for (const Template& t : kTemplates) {
    const std::string path = seis::fuzz::work_dir() + "/" + t.name + ".h5";
    const bool written = seis::test::write_capi(path, t.n, 2, 2, t.o, value);
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t dset = file >= 0 ? H5Dopen2(file, "data", H5P_DEFAULT) : -1;
    if (!written || dset < 0) {
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
