// SEG-Y headers in HDF5 (see segy_headers.h). Every HDF5 call is made under h5_mutex(). A gather's
// headers are read when begin() asks for them, so memory follows the gather width, not the survey;
// the one per-gather array kept is where each gather's rows start (8 bytes a gather).
#include "io/segy_headers.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "engine/error.h"
#include "io/hdf5_util.h"

namespace seis {

namespace {

int64_t get_int(const uint8_t* p, int bytes, bool big) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[big ? i : bytes - 1 - i];
  return bytes == 2 ? static_cast<int64_t>(static_cast<int16_t>(v)) : static_cast<int64_t>(static_cast<int32_t>(v));
}

// Trace header field at standard byte position pos (1-based), 2 or 4 bytes, signed.
int64_t field(const uint8_t* th, int pos, int bytes, bool big) { return get_int(th + pos - 1, bytes, big); }

}  // namespace

const H5TableSpec& segy_header_table() {
  using R = SegyHeaderRow;
  static const H5TableSpec spec{"headers",
                                sizeof(R),
                                {{"gather", H5FieldType::i64, offsetof(R, gather)},
                                 {"trace", H5FieldType::i64, offsetof(R, trace)},
                                 {"ffid", H5FieldType::i64, offsetof(R, ffid)},
                                 {"trace_number", H5FieldType::i64, offsetof(R, trace_number)},
                                 {"cdp", H5FieldType::i64, offsetof(R, cdp)},
                                 {"offset", H5FieldType::i64, offsetof(R, offset)},
                                 {"coordinate_scalar", H5FieldType::i64, offsetof(R, coordinate_scalar)},
                                 {"source_x", H5FieldType::f64, offsetof(R, source_x)},
                                 {"source_y", H5FieldType::f64, offsetof(R, source_y)},
                                 {"group_x", H5FieldType::f64, offsetof(R, group_x)},
                                 {"group_y", H5FieldType::f64, offsetof(R, group_y)},
                                 {"delay_ms", H5FieldType::i64, offsetof(R, delay_ms)},
                                 {"year", H5FieldType::i64, offsetof(R, year)},
                                 {"day", H5FieldType::i64, offsetof(R, day)},
                                 {"hour", H5FieldType::i64, offsetof(R, hour)},
                                 {"minute", H5FieldType::i64, offsetof(R, minute)},
                                 {"second", H5FieldType::i64, offsetof(R, second)}}};
  return spec;
}

SegyHeaderRow segy_header_row(const uint8_t* th, bool big, int64_t gather, int64_t trace) {
  SegyHeaderRow r;
  r.gather = gather;
  r.trace = trace;
  r.ffid = field(th, 9, 4, big);
  r.trace_number = field(th, 13, 4, big);
  r.cdp = field(th, 21, 4, big);
  r.offset = field(th, 37, 4, big);
  r.coordinate_scalar = field(th, 71, 2, big);
  const double s = static_cast<double>(r.coordinate_scalar);
  auto coord = [&](int pos) {
    const double v = static_cast<double>(field(th, pos, 4, big));
    return s > 0 ? v * s : s < 0 ? v / -s : v;
  };
  r.source_x = coord(73);
  r.source_y = coord(77);
  r.group_x = coord(81);
  r.group_y = coord(85);
  r.delay_ms = field(th, 109, 2, big);
  r.year = field(th, 157, 2, big);
  r.day = field(th, 159, 2, big);
  r.hour = field(th, 161, 2, big);
  r.minute = field(th, 163, 2, big);
  r.second = field(th, 165, 2, big);
  return r;
}

struct SegyHeadersFile::Impl {
  std::string path;
  int64_t n = 0, width = 0;
  Hid file, text, binary, extended, trace_headers, valid;
  std::unique_ptr<H5TableReader> table;
  bool big = true;
  int64_t real = 0, extended_count = 0;
  int64_t header_rows = -1;  // rows of /segy_trace_headers or /headers; -1 without either
  // Where the next gather's real traces start (with padding): begin(g) in order costs one row of
  // /trace_valid; out of order it counts again from gather 0.
  int64_t next_gather = 0, next_row = 0;
  // The current gather.
  int64_t current = -1;
  std::vector<uint8_t> mask;        // [W]
  std::vector<int64_t> index;       // [W]: k-th real trace of the gather, -1 for padding
  std::vector<SegyHeaderRow> rows;  // [real traces of the gather]
  std::vector<uint8_t> raw;         // [real traces of the gather * 240]

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(path + ": " + problem); }

  // Real traces in gathers [0, g), from /trace_valid in blocks of about 1 MiB.
  int64_t count_valid(int64_t g_end) {
    const int64_t block = std::max<int64_t>(1, (int64_t{1} << 20) / width);
    std::vector<uint8_t> buf(static_cast<size_t>(std::min(block, std::max<int64_t>(g_end, 1)) * width));
    int64_t count = 0;
    for (int64_t g0 = 0; g0 < g_end; g0 += block) {
      const int64_t rows = std::min(block, g_end - g0);
      {
        std::lock_guard<std::mutex> lock(h5_mutex());
        h5_quiet();
        read_bytes(valid, g0, rows, width, buf.data(), "trace_valid");
      }
      for (int64_t k = 0; k < rows * width; ++k) count += buf[static_cast<size_t>(k)] != 0;
    }
    return count;
  }

  // The dataset `name` when present (a 1-byte integer of the given rank and trailing size).
  Hid open_bytes(const char* name, int rank, int64_t cols, std::vector<int64_t>* shape) {
    if (H5Lexists(file.get(), name, H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return Hid();
    }
    Hid d(H5Dopen2(file.get(), name, H5P_DEFAULT));
    if (!d.ok()) fail(std::string("cannot open /") + name + ": " + h5_error());
    Hid t(H5Dget_type(d.get()));
    if (H5Tget_class(t.get()) != H5T_INTEGER || H5Tget_size(t.get()) != 1) {
      fail(std::string("/") + name + " is not uint8");
    }
    *shape = h5_shape(d.get(), path, std::string("/") + name);
    if (static_cast<int>(shape->size()) != rank || (cols > 0 && shape->back() != cols)) {
      fail(std::string("/") + name + " has shape " + shape_str(*shape) + ", expected " + (rank == 1 ? "[" : "[rows, ") +
           std::to_string(cols) + "]");
    }
    return d;
  }

  // Rows [r0, r0 + count) of a 2-D byte dataset of `cols` columns (or the whole 1-D one: count 0).
  void read_bytes(const Hid& d, int64_t r0, int64_t count, int64_t cols, uint8_t* out, const char* name) const {
    bool ok = true;
    if (count == 0 && cols == 0) {
      ok = H5Dread(d.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0;
    } else if (count > 0) {
      const hsize_t start[2] = {static_cast<hsize_t>(r0), 0},
                    cnt[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(cols)};
      Hid mspace(H5Screate_simple(2, cnt, nullptr));
      Hid fspace(H5Dget_space(d.get()));
      ok = fspace.ok() && H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) >= 0 &&
           H5Dread(d.get(), H5T_NATIVE_UINT8, mspace.get(), fspace.get(), H5P_DEFAULT, out) >= 0;
    }
    if (!ok) {
      fail(std::string("cannot read /") + name + " rows " + std::to_string(r0) + ".." + std::to_string(r0 + count) +
           ": " + h5_error());
    }
  }
};

SegyHeadersFile::SegyHeadersFile(const std::string& path, int64_t n, int64_t width) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.n = n;
  m.width = width;
  SEIS_CHECK(n > 0 && width > 0, path << ": shape [" << n << ", ., " << width << "]");
  try {
    open();
  } catch (...) {
    if (impl_->table) impl_->table.reset();
    std::lock_guard<std::mutex> lock(h5_mutex());
    impl_.reset();
    throw;
  }
}

void SegyHeadersFile::open() {
  Impl& m = *impl_;
  const std::string& path = m.path;
  const int64_t n = m.n, width = m.width;
  int64_t trace_header_rows = -1;
  {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    int64_t bytes = 0;
    m.file = h5_open_readonly(path, &bytes);
    std::vector<int64_t> shape;
    m.text = m.open_bytes("segy_text_header", 1, kSegyTextHeaderBytes, &shape);
    m.binary = m.open_bytes("segy_binary_header", 1, kSegyBinaryHeaderBytes, &shape);
    m.extended = m.open_bytes("segy_extended_text_headers", 2, kSegyTextHeaderBytes, &shape);
    if (m.extended.ok()) m.extended_count = shape[0];
    m.trace_headers = m.open_bytes("segy_trace_headers", 2, kSegyTraceHeaderBytes, &shape);
    if (m.trace_headers.ok()) trace_header_rows = shape[0];
    m.valid = m.open_bytes("trace_valid", 2, 0, &shape);
    if (m.valid.ok() && (shape[0] != n || shape[1] != width)) {
      m.fail("/trace_valid has shape " + shape_str(shape) + " where /data has " + std::to_string(n) + " gathers of " +
             std::to_string(width) + " traces");
    }
    const auto attrs = h5_attributes_text(m.file.get());
    const auto it = attrs.find("segy_byte_order");
    m.big = it == attrs.end() || it->second != "little-endian";
  }
  m.table = std::make_unique<H5TableReader>(path, segy_header_table());

  // The real traces: every column without /trace_valid; otherwise as many as the header rows (checked
  // gather by gather in begin()). Nothing here grows with N: a file may declare any N.
  if (trace_header_rows >= 0 && m.table->exists() && m.table->rows() != trace_header_rows) {
    m.fail("/headers has " + std::to_string(m.table->rows()) + " rows but /segy_trace_headers " +
           std::to_string(trace_header_rows));
  }
  m.header_rows = trace_header_rows >= 0 ? trace_header_rows : m.table->exists() ? m.table->rows() : -1;
  int64_t columns = 0;
  if (__builtin_mul_overflow(n, width, &columns)) columns = INT64_MAX;  // (a declared shape, not yet stored)
  if (!m.valid.ok()) {
    m.real = columns;
    if (m.header_rows >= 0 && m.header_rows != columns) {
      m.fail("has " + std::to_string(m.header_rows) + " trace header rows but /data holds " + std::to_string(columns) +
             " traces (" + std::to_string(n) + " gathers of " + std::to_string(width) + ") and no /trace_valid");
    }
  } else if (m.header_rows >= 0) {
    m.real = m.header_rows;
    if (m.real > columns) {
      m.fail("has " + std::to_string(m.real) + " trace header rows, more than the " + std::to_string(columns) +
             " traces of /data");
    }
  } else {
    m.real = -1;  // counted on demand (traces())
  }
}

SegyHeadersFile::~SegyHeadersFile() {
  impl_->table.reset();  // (takes the lock itself)
  std::lock_guard<std::mutex> lock(h5_mutex());
  impl_.reset();
}

bool SegyHeadersFile::has_raw() const { return impl_->text.ok() && impl_->binary.ok() && impl_->trace_headers.ok(); }
bool SegyHeadersFile::has_table() const { return impl_->table->exists(); }
bool SegyHeadersFile::has_padding() const { return impl_->valid.ok(); }
bool SegyHeadersFile::big_endian() const { return impl_->big; }
int64_t SegyHeadersFile::traces() const {
  Impl& m = *impl_;
  if (m.real < 0) m.real = m.count_valid(m.n);
  return m.real;
}

std::vector<uint8_t> SegyHeadersFile::text_header() const {
  SEIS_CHECK(impl_->text.ok(), impl_->path << ": no /segy_text_header");
  std::vector<uint8_t> v(kSegyTextHeaderBytes);
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  impl_->read_bytes(impl_->text, 0, 0, 0, v.data(), "segy_text_header");
  return v;
}

std::vector<uint8_t> SegyHeadersFile::binary_header() const {
  SEIS_CHECK(impl_->binary.ok(), impl_->path << ": no /segy_binary_header");
  std::vector<uint8_t> v(kSegyBinaryHeaderBytes);
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  impl_->read_bytes(impl_->binary, 0, 0, 0, v.data(), "segy_binary_header");
  return v;
}

std::vector<uint8_t> SegyHeadersFile::extended_text_headers() const {
  std::vector<uint8_t> v(static_cast<size_t>(impl_->extended_count * kSegyTextHeaderBytes));
  if (v.empty()) return v;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  impl_->read_bytes(impl_->extended, 0, impl_->extended_count, kSegyTextHeaderBytes, v.data(),
                    "segy_extended_text_headers");
  return v;
}

void SegyHeadersFile::begin(int64_t g) {
  Impl& m = *impl_;
  SEIS_CHECK(g >= 0 && g < m.n, m.path << ": gather " << g << " outside [0, " << m.n << ")");
  m.current = g;
  m.mask.assign(static_cast<size_t>(m.width), 1);
  int64_t r0 = g * m.width, count = m.width;
  if (m.valid.ok()) {
    r0 = g == m.next_gather ? m.next_row : m.count_valid(g);
    {
      std::lock_guard<std::mutex> lock(h5_mutex());
      h5_quiet();
      m.read_bytes(m.valid, g, 1, m.width, m.mask.data(), "trace_valid");
    }
    count = 0;
    for (int64_t j = 0; j < m.width; ++j) {
      const uint8_t v = m.mask[static_cast<size_t>(j)];
      if (v > 1) {
        m.fail("/trace_valid gather " + std::to_string(g) + " trace " + std::to_string(j) + " is " + std::to_string(v) +
               ", neither 0 (padding) nor 1 (a real trace)");
      }
      count += v;
    }
    if (m.header_rows >= 0 && r0 + count > m.header_rows) {
      m.fail("/trace_valid marks " + std::to_string(r0 + count) + " real traces up to gather " + std::to_string(g) +
             " but the trace headers have " + std::to_string(m.header_rows) + " rows");
    }
    m.next_gather = g + 1;
    m.next_row = r0 + count;
  }
  // (Nothing held for what the file does not have: a file without SEG-Y headers may be wide.)
  m.rows.resize(m.table->exists() ? static_cast<size_t>(count) : 0);
  m.raw.resize(m.trace_headers.ok() ? static_cast<size_t>(count * kSegyTraceHeaderBytes) : 0);
  {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    if (m.trace_headers.ok()) {
      m.read_bytes(m.trace_headers, r0, count, kSegyTraceHeaderBytes, m.raw.data(), "segy_trace_headers");
    }
  }
  m.index.assign(static_cast<size_t>(m.width), -1);
  int64_t k = 0;
  for (int64_t j = 0; j < m.width; ++j) {
    if (m.mask[static_cast<size_t>(j)] != 0) m.index[static_cast<size_t>(j)] = k++;
  }
  if (m.table->exists() && count > 0) {
    m.table->read(r0, count, m.rows.data());
    for (int64_t j = 0; j < m.width; ++j) {
      const int64_t i = m.index[static_cast<size_t>(j)];
      if (i < 0) continue;
      const SegyHeaderRow& r = m.rows[static_cast<size_t>(i)];
      if (r.gather != g || r.trace != j) {
        m.fail("/headers row " + std::to_string(r0 + i) + " is gather " + std::to_string(r.gather) + " trace " +
               std::to_string(r.trace) + " where /trace_valid puts gather " + std::to_string(g) + " trace " +
               std::to_string(j));
      }
    }
  }
}

bool SegyHeadersFile::valid(int64_t j) const { return impl_->index[static_cast<size_t>(j)] >= 0; }

const std::vector<uint8_t>& SegyHeadersFile::valid_mask() const { return impl_->mask; }

const SegyHeaderRow* SegyHeadersFile::row(int64_t j) const {
  const int64_t i = impl_->index[static_cast<size_t>(j)];
  return i < 0 || !impl_->table->exists() ? nullptr : &impl_->rows[static_cast<size_t>(i)];
}

const uint8_t* SegyHeadersFile::raw_header(int64_t j) const {
  const int64_t i = impl_->index[static_cast<size_t>(j)];
  return i < 0 || !impl_->trace_headers.ok() ? nullptr : impl_->raw.data() + i * kSegyTraceHeaderBytes;
}

}  // namespace seis
