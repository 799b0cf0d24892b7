// Tables as 1-D compound datasets (see hdf5_table.h). HDF5 matches compound members by name when it
// converts between the file's type and ours, so a reader sees only the fields it asks for.
#include "io/hdf5_table.h"

#include <algorithm>

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
  Hid file, dset, mtype, dxpl;
  int64_t rows = 0;

  [[noreturn]] void fail(const std::string& problem) const {
    throw InputError(path + ": /" + spec.name + " " + problem);
  }

  // Each field's class in the file must be the spec's: HDF5 would otherwise convert silently, a
  // float NaN or -1.0 to integer 0 (a P phase), a string to nothing. (Values that do not fit the
  // spec's integer type are caught while reading: see abort_on_overflow.)
  void check_fields(hid_t ftype) const {
    for (const H5Field& f : spec.fields) {
      const int k = H5Tget_member_index(ftype, f.name.c_str());
      if (k < 0) {
        H5Eclear2(H5E_DEFAULT);
        fail("has no field '" + f.name + "'");
      }
      const H5T_class_t c = H5Tget_member_class(ftype, static_cast<unsigned>(k));
      const bool integer = f.type != H5FieldType::f64;
      if (integer && c != H5T_INTEGER) fail("field '" + f.name + "' is not an integer");
      if (!integer && c != H5T_FLOAT) fail("field '" + f.name + "' is not a floating-point number");
    }
  }

  // Refuses a table that declares more rows than its file stores. Summaries and validation read
  // every row (a count of P picks is no estimate), so the cost of a scan must follow the bytes a
  // file really holds: a 2 KB file may declare 2^40 never-written rows, which HDF5 would hand out
  // as fill values for hours. Chunked: allocated chunks x rows per chunk (any filter); contiguous:
  // the allocated bytes over the row size; compact tables live in the object header.
  void check_stored_rows(hid_t ftype) const {
    Hid dcpl(H5Dget_create_plist(dset.get()));
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    const int64_t row_bytes = static_cast<int64_t>(H5Tget_size(ftype));
    // A row is converted whole: HDF5's conversion buffers hold at least one, whatever fields we
    // ignore. Real tables have rows of tens of bytes.
    constexpr int64_t kMaxRowBytes = int64_t{1} << 20;
    if (row_bytes <= 0 || row_bytes > kMaxRowBytes) {
      fail("has rows of " + std::to_string(row_bytes) + " bytes; at most " + std::to_string(kMaxRowBytes) +
           " are read");
    }
    int64_t stored = rows;
    if (layout == H5D_CHUNKED) {
      hsize_t chunk[1] = {0};
      if (H5Pget_chunk(dcpl.get(), 1, chunk) != 1 || chunk[0] == 0) fail("has no readable chunk shape: " + h5_error());
      // A compressed chunk is decompressed whole into memory to read any of its rows.
      constexpr int64_t kMaxChunkBytes = int64_t{256} << 20;
      const long double chunk_bytes = static_cast<long double>(chunk[0]) * static_cast<long double>(row_bytes);
      if (H5Pget_nfilters(dcpl.get()) > 0 && chunk_bytes > static_cast<long double>(kMaxChunkBytes)) {
        fail("has compressed chunks of " + std::to_string(chunk[0]) + " rows (" +
             std::to_string(static_cast<int64_t>(chunk_bytes / (1 << 20))) + " MiB each); at most " +
             std::to_string(kMaxChunkBytes >> 20) + " MiB are decompressed at once");
      }
      // (H5S_ALL is not handled correctly by HDF5 1.10: the dataset's own space, as documented.)
      Hid space(H5Dget_space(dset.get()));
      hsize_t nchunks = 0;
      if (H5Dget_num_chunks(dset.get(), space.get(), &nchunks) < 0) fail("cannot count its chunks: " + h5_error());
      const long double capacity = static_cast<long double>(nchunks) * static_cast<long double>(chunk[0]);
      stored = capacity >= static_cast<long double>(rows) ? rows : static_cast<int64_t>(capacity);
    } else if (layout == H5D_CONTIGUOUS) {
      stored = std::min<int64_t>(rows, static_cast<int64_t>(H5Dget_storage_size(dset.get()) / row_bytes));
    }
    H5Eclear2(H5E_DEFAULT);
    if (stored < rows) {
      fail("declares " + std::to_string(rows) + " rows but the file stores at most " + std::to_string(stored) +
           " (never written, or truncated)");
    }
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
    if (shape.size() != 1) fail("has shape " + shape_str(shape) + "; expected a 1-D table");
    Hid ftype(H5Dget_type(dset.get()));
    if (H5Tget_class(ftype.get()) != H5T_COMPOUND) fail("is not a compound dataset (a table of named fields)");
    check_fields(ftype.get());
    rows = shape[0];
    check_stored_rows(ftype.get());
    mtype = h5_table_type(spec, false);
    dxpl = Hid(H5Pcreate(H5P_DATASET_XFER));
    SEIS_CHECK(dxpl.ok() && H5Pset_type_conv_cb(dxpl.get(), abort_on_overflow, &overflow) >= 0,
               "H5Pset_type_conv_cb: " << h5_error());
  }

  // Set by abort_on_overflow: the size of the memory type a value did not fit (under h5_mutex()).
  struct Overflow {
    bool hit = false;
    size_t dst_bytes = 0;
  };
  mutable Overflow overflow;

  // HDF5 saturates integers that do not fit (-1 becomes phase 0, 2^64 - 1 becomes INT64_MAX) and
  // calls this first: the read fails instead, and read() names the fields.
  static H5T_conv_ret_t abort_on_overflow(H5T_conv_except_t except, hid_t, hid_t dst, void*, void*, void* data) {
    if (except != H5T_CONV_EXCEPT_RANGE_HI && except != H5T_CONV_EXCEPT_RANGE_LOW) return H5T_CONV_UNHANDLED;
    auto* o = static_cast<Overflow*>(data);
    o->hit = true;
    o->dst_bytes = H5Tget_size(dst);
    return H5T_CONV_ABORT;
  }

  // The spec's integer fields of a memory type of `bytes` bytes: "'phase' (uint8)", "'gather',
  // 'trace' or 'event' (int64)".
  std::string integer_fields(size_t bytes) const {
    std::vector<std::string> names;
    for (const H5Field& f : spec.fields) {
      const size_t b = f.type == H5FieldType::u8 ? 1 : f.type == H5FieldType::i64 ? 8 : 0;
      if (b == bytes) names.push_back("'" + f.name + "'");
    }
    std::string r;
    for (size_t k = 0; k < names.size(); ++k) r += (k == 0 ? "" : k + 1 == names.size() ? " or " : ", ") + names[k];
    return r + (bytes == 1 ? " (uint8)" : " (int64)");
  }

  void close() {
    std::lock_guard<std::mutex> lock(h5_mutex());
    dxpl.reset();
    mtype.reset();
    dset.reset();
    file.reset();
  }
};

H5TableReader::H5TableReader(const std::string& path, const H5TableSpec& spec) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->spec = spec;
  try {
    impl_->open();
  } catch (...) {
    impl_->close();
    throw;
  }
}

H5TableReader::~H5TableReader() { impl_->close(); }

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
  m.overflow = {};
  if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
      H5Dread(m.dset.get(), m.mtype.get(), mspace.get(), fspace.get(), m.dxpl.get(), out) < 0) {
    const std::string rows = "rows " + std::to_string(r0) + ".." + std::to_string(r0 + count);
    const std::string err = h5_error();
    if (m.overflow.hit) {
      m.fail(rows + ": a value of " + m.integer_fields(m.overflow.dst_bytes) + " is outside that type's range");
    }
    m.fail("cannot be read (" + rows + "): " + err);
  }
}

}  // namespace seis
