// Continuous records (see hdf5_record.h). Reads go through the library by hyperslab (any chunking,
// any filter); HDF5 converts float16 and float labels to the memory types we ask for.
#include "io/hdf5_record.h"

#include <mutex>

#include "engine/error.h"
#include "io/hdf5_util.h"

namespace seis {

bool h5_is_record(const std::string& path) {
  try {
    std::lock_guard<std::mutex> lock(h5_mutex());
    int64_t bytes = 0;
    Hid file = h5_open_readonly(path, &bytes);
    if (H5Lexists(file.get(), "data", H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    Hid dset(H5Dopen2(file.get(), "data", H5P_DEFAULT));
    if (!dset.ok()) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    return h5_shape(dset.get(), path, "/data").size() == 2;
  } catch (const InputError&) {
    return false;
  }
}

struct H5RecordFile::Impl {
  H5RecordInfo info;
  Hid file, data, label;

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(info.path + ": " + problem); }

  void layout(hid_t dset, std::vector<int64_t>* chunk, std::string* filters) {
    Hid dcpl(H5Dget_create_plist(dset));
    *filters = filters_str(dcpl.get());
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
      hsize_t c[2] = {};
      if (H5Pget_chunk(dcpl.get(), 2, c) == 2) *chunk = {static_cast<int64_t>(c[0]), static_cast<int64_t>(c[1])};
    }
    H5Eclear2(H5E_DEFAULT);
  }

  void open(const std::string& path) {
    info.path = path;
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    file = h5_open_readonly(path, &info.file_bytes);
    const htri_t has_data = H5Lexists(file.get(), "data", H5P_DEFAULT);
    if (has_data < 0) fail("cannot read /data: " + h5_error());  // (a read error: say so, not "no /data")
    if (has_data == 0) fail("no /data dataset");
    data = Hid(H5Dopen2(file.get(), "data", H5P_DEFAULT));
    if (!data.ok()) fail("/data is not a dataset: " + h5_error());
    const std::vector<int64_t> shape = h5_shape(data.get(), path, "/data");
    if (shape.size() != 2) {
      fail("/data has rank " + std::to_string(shape.size()) + " (shape " + shape_str(shape) +
           "); a continuous record is rank 2: [T, W]");
    }
    if (shape[0] == 0 || shape[1] == 0) fail("is empty: /data has shape " + shape_str(shape));
    info.samples = shape[0];
    info.receivers = shape[1];
    info.data_type = h5_elem_info(data.get(), path, "/data", false).type;
    layout(data.get(), &info.data_chunk, &info.data_filters);
    if (H5Lexists(file.get(), "label", H5P_DEFAULT) > 0) {
      label = Hid(H5Dopen2(file.get(), "label", H5P_DEFAULT));
      if (!label.ok()) fail("/label is not a dataset: " + h5_error());
      const std::vector<int64_t> ls = h5_shape(label.get(), path, "/label");
      if (ls != shape) fail("/label has shape " + shape_str(ls) + " but /data has " + shape_str(shape));
      info.label_type = h5_elem_info(label.get(), path, "/label", true).type;
      layout(label.get(), &info.label_chunk, &info.label_filters);
    }
    H5Eclear2(H5E_DEFAULT);
    Hid root(H5Gopen2(file.get(), "/", H5P_DEFAULT));
    info.attributes = h5_attributes_text(root.get());
    h5_dt_dx(info.attributes, &info.dt, &info.dx);
    auto st = info.attributes.find("start_time");
    if (st != info.attributes.end()) info.start_time = st->second;
  }

  void read(hid_t dset, const std::string& name, int64_t t0, int64_t rows, hid_t mtype, void* out) const {
    Hid fspace(H5Dget_space(dset));
    const hsize_t start[2] = {static_cast<hsize_t>(t0), 0};
    const hsize_t cnt[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(info.receivers)};
    Hid mspace(H5Screate_simple(2, cnt, nullptr));
    if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
        H5Dread(dset, mtype, mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0) {
      fail("rows " + std::to_string(t0) + ".." + std::to_string(t0 + rows) + ": HDF5 cannot read " + name + ": " +
           h5_error());
    }
  }

  void close() {
    std::lock_guard<std::mutex> lock(h5_mutex());
    label.reset();
    data.reset();
    file.reset();
  }
};

H5RecordFile::H5RecordFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  try {
    impl_->open(path);
  } catch (...) {
    impl_->close();
    throw;
  }
}

H5RecordFile::~H5RecordFile() { impl_->close(); }

const H5RecordInfo& H5RecordFile::info() const { return impl_->info; }

void H5RecordFile::read_rows(int64_t t0, int64_t rows, float* data, uint8_t* label) const {
  const Impl& m = *impl_;
  const H5RecordInfo& in = m.info;
  SEIS_CHECK(t0 >= 0 && rows >= 0 && t0 + rows <= in.samples,
             in.path << ": rows [" << t0 << ", " << t0 + rows << ") outside [0, " << in.samples << ")");
  SEIS_CHECK(data != nullptr, "read_rows: data must not be null");
  if (rows == 0) return;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  m.read(m.data.get(), "/data", t0, rows, H5T_NATIVE_FLOAT, data);
  if (label == nullptr || !m.label.ok()) return;
  if (in.label_type == H5ElemType::u8) {
    // The file's own 1-byte type (h5py's bool is an enum, which HDF5 does not convert to integers).
    Hid ftype(H5Dget_type(m.label.get()));
    Hid mtype(H5Tget_native_type(ftype.get(), H5T_DIR_ASCEND));
    m.read(m.label.get(), "/label", t0, rows, mtype.get(), label);
    for (int64_t k = 0; k < rows * in.receivers; ++k) label[k] = label[k] != 0;
    return;
  }
  // Float labels: nonzero = 1.
  std::vector<float> f(static_cast<size_t>(rows * in.receivers));
  m.read(m.label.get(), "/label", t0, rows, H5T_NATIVE_FLOAT, f.data());
  for (size_t k = 0; k < f.size(); ++k) label[k] = f[k] != 0.0f;
}

void H5RecordFile::read(int64_t i, float* data, uint8_t* label) const {
  read_window(i, 0, info().samples, data, label);
}

void H5RecordFile::read_window(int64_t i, int64_t t0, int64_t rows, float* data, uint8_t* label) const {
  SEIS_CHECK(i == 0, info().path << ": sample " << i << " asked of a continuous record, which is one sample (0)");
  read_rows(t0, rows, data, label);
}

}  // namespace seis
