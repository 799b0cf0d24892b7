// Tables as 1-D compound datasets (see hdf5_table.h). HDF5 matches compound members by name when it
// converts between the file's type and ours, so a reader sees only the fields it asks for.
#include "io/hdf5_table.h"

#include "engine/error.h"
#include "io/hdf5_util.h"

namespace seis {

namespace {

hid_t field_type(H5FieldType t, bool file_layout) {
  switch (t) {
    case H5FieldType::i64:
      return file_layout ? H5T_STD_I64LE : H5T_NATIVE_INT64;
    case H5FieldType::u8:
      return file_layout ? H5T_STD_U8LE : H5T_NATIVE_UINT8;
    case H5FieldType::f64:
      break;
  }
  return file_layout ? H5T_IEEE_F64LE : H5T_NATIVE_DOUBLE;
}

}  // namespace

Hid h5_table_type(const H5TableSpec& spec, bool file_layout) {
  size_t packed = 0;
  for (const H5Field& f : spec.fields) packed += H5Tget_size(field_type(f.type, file_layout));
  Hid t(H5Tcreate(H5T_COMPOUND, file_layout ? packed : spec.row_bytes));
  SEIS_CHECK(t.ok(), "H5Tcreate(compound) for table " << spec.name << ": " << h5_error());
  size_t at = 0;
  for (const H5Field& f : spec.fields) {
    const hid_t ft = field_type(f.type, file_layout);
    const size_t off = file_layout ? at : f.offset;
    SEIS_CHECK(H5Tinsert(t.get(), f.name.c_str(), off, ft) >= 0,
               "H5Tinsert " << spec.name << "." << f.name << ": " << h5_error());
    at += H5Tget_size(ft);
  }
  return t;
}

struct H5TableReader::Impl {
  std::string path;
  H5TableSpec spec;
  Hid file, dset, mtype;
  int64_t rows = 0;

  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(path + ": /" + spec.name + " " + problem);
  }

  void open() {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    int64_t bytes = 0;
    file = h5_open_readonly(path, &bytes);
    if (H5Lexists(file.get(), spec.name.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    dset = Hid(H5Dopen2(file.get(), spec.name.c_str(), H5P_DEFAULT));
    if (!dset.ok()) fail("is not a dataset: " + h5_error());
    const std::vector<int64_t> shape = h5_shape(dset.get(), path, "/" + spec.name);
    if (shape.size() != 1) fail("has shape " + dims_str(shape) + "; expected a 1-D table");
    Hid ftype(H5Dget_type(dset.get()));
    if (H5Tget_class(ftype.get()) != H5T_COMPOUND) fail("is not a compound dataset (a table of named fields)");
    for (const H5Field& f : spec.fields) {
      const int k = H5Tget_member_index(ftype.get(), f.name.c_str());
      if (k < 0) {
        H5Eclear2(H5E_DEFAULT);
        fail("has no field '" + f.name + "'");
      }
      const H5T_class_t c = H5Tget_member_class(ftype.get(), static_cast<unsigned>(k));
      if (c != H5T_INTEGER && c != H5T_FLOAT) fail("field '" + f.name + "' is not a number");
    }
    rows = shape[0];
    mtype = h5_table_type(spec, false);
  }
};

H5TableReader::H5TableReader(const std::string& path, const H5TableSpec& spec) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->spec = spec;
  try {
    impl_->open();
  } catch (...) {
    std::lock_guard<std::mutex> lock(h5_mutex());
    impl_->mtype.reset();
    impl_->dset.reset();
    impl_->file.reset();
    throw;
  }
}

H5TableReader::~H5TableReader() {
  std::lock_guard<std::mutex> lock(h5_mutex());
  impl_->mtype.reset();
  impl_->dset.reset();
  impl_->file.reset();
}

bool H5TableReader::exists() const { return impl_->dset.ok(); }

int64_t H5TableReader::rows() const { return impl_->rows; }

void H5TableReader::read(int64_t r0, int64_t count, void* out) const {
  const Impl& m = *impl_;
  SEIS_CHECK(m.dset.ok(), m.path << ": /" << m.spec.name << " does not exist");
  SEIS_CHECK(r0 >= 0 && count >= 0 && r0 + count <= m.rows,
             m.path << ": rows [" << r0 << ", " << r0 + count << ") of /" << m.spec.name << " with " << m.rows);
  if (count == 0) return;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  Hid fspace(H5Dget_space(m.dset.get()));
  const hsize_t start[1] = {static_cast<hsize_t>(r0)}, cnt[1] = {static_cast<hsize_t>(count)};
  Hid mspace(H5Screate_simple(1, cnt, nullptr));
  if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
      H5Dread(m.dset.get(), m.mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, out) < 0) {
    m.fail("cannot be read (rows " + std::to_string(r0) + ".." + std::to_string(r0 + count) + "): " + h5_error());
  }
}

}  // namespace seis
