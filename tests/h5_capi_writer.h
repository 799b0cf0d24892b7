// An HDF5 /data float32 [n, h, w] written with the library's C API in the layouts our chunk-index
// parser (io/hdf5_chunk_index.h) must read: B-tree, fixed array, implicit and single-chunk indexes,
// compressed, sparse, with the layout message in a continuation block. Shared by
// tests/hdf5_chunk_index_test.cpp and the fuzz target tests/fuzz/fuzz_hdf5_chunk_index.cpp.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace seis::test {

struct CapiOptions {
  bool latest = false;      // libver latest: layout message v4, object header v2
  bool early = false;       // H5D_ALLOC_TIME_EARLY
  int gzip = 0;             // deflate level
  bool unlimited = false;   // maxdims[0] unlimited
  hsize_t chunk_h = 0;      // chunk shape [1, chunk_h, chunk_w]; 0: whole sample
  hsize_t chunk_n = 1;      // samples per chunk; 0: contiguous
  size_t offset_bytes = 8;  // superblock sizes of offsets and lengths
  hsize_t userblock = 0;
  int64_t skip_every = 0;  // >0: samples i with i % skip_every == 1 are never written
  int attributes = 0;      // many attributes push the layout message to a continuation block
};

// Writes /data float32 [n, h, w] with the C API and the given options, sample i's element k
// value(i, k). False when the library cannot create the file or the dataset.
inline bool write_capi(const std::string& path, int64_t n, int64_t h, int64_t w, const CapiOptions& o,
                       float (*value)(int64_t i, int64_t k)) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_sizes(fcpl, o.offset_bytes, o.offset_bytes);
  if (o.userblock) H5Pset_userblock(fcpl, o.userblock);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (o.latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl, fapl);
  if (file < 0) {
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return false;
  }
  const hsize_t dims[3] = {hsize_t(n), hsize_t(h), hsize_t(w)};
  const hsize_t maxdims[3] = {o.unlimited ? H5S_UNLIMITED : hsize_t(n), hsize_t(h), hsize_t(w)};
  hid_t space = H5Screate_simple(3, dims, maxdims);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  const hsize_t chunk[3] = {o.chunk_n, o.chunk_h ? o.chunk_h : hsize_t(h), o.chunk_h ? o.chunk_h : hsize_t(w)};
  if (o.chunk_n > 0) H5Pset_chunk(dcpl, 3, chunk);
  if (o.early) H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  if (o.gzip) H5Pset_deflate(dcpl, unsigned(o.gzip));
  hid_t dset = H5Dcreate2(file, "data", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0) {
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    H5Pclose(fapl);
    H5Pclose(fcpl);
    return false;
  }
  bool ok = true;
  std::vector<float> sample(size_t(h * w));
  for (int64_t i = 0; i < n; ++i) {
    if (o.skip_every > 0 && i % o.skip_every == 1) continue;
    for (int64_t k = 0; k < h * w; ++k) sample[size_t(k)] = value(i, k);
    const hsize_t start[3] = {hsize_t(i), 0, 0}, count[3] = {1, hsize_t(h), hsize_t(w)};
    hid_t fs = H5Dget_space(dset);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
    hid_t ms = H5Screate_simple(3, count, nullptr);
    ok = H5Dwrite(dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, sample.data()) >= 0 && ok;
    H5Sclose(ms);
    H5Sclose(fs);
  }
  hid_t aspace = H5Screate(H5S_SCALAR);
  for (int a = 0; a < o.attributes; ++a) {
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
  return ok;
}

}  // namespace seis::test
