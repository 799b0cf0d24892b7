// Reading a whole HDF5 dataset from tests, with its shape: what a user's h5py would see.
#pragma once
#include <hdf5.h>

#include <string>
#include <vector>

namespace seis::test {

// Dataset `name` of `path` read whole as `type`, its dims in *dims; empty (and no dims) when the file
// or the dataset is missing or the read fails.
template <typename T>
std::vector<T> read_all(const std::string& path, const char* name, hid_t type, std::vector<hsize_t>* dims) {
  std::vector<T> v;
  dims->clear();
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return v;
  if (H5Lexists(f, name, H5P_DEFAULT) > 0) {
    const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    const hid_t sp = H5Dget_space(d);
    dims->resize(static_cast<size_t>(H5Sget_simple_extent_ndims(sp)));
    H5Sget_simple_extent_dims(sp, dims->data(), nullptr);
    v.resize(static_cast<size_t>(H5Sget_simple_extent_npoints(sp)));
    if (H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0) v.clear();
    H5Sclose(sp);
    H5Dclose(d);
  }
  H5Fclose(f);
  return v;
}

}  // namespace seis::test
