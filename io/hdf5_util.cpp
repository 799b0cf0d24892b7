// Helpers shared by the io/ files that call HDF5 (see hdf5_util.h).
#include "io/hdf5_util.h"

#include <sys/stat.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "engine/printable.h"
#include "io/hdf5_vet.h"

namespace seis {

std::mutex& h5_mutex() {
  static std::mutex m;
  // The vetting child (io/hdf5_vet.h) is forked while its parent holds m, so m stays locked there
  // for good: the child has a mutex of its own, never locked in the parent.
  static std::mutex in_vet_child;
  if (h5_in_vet_child()) return in_vet_child;
  // Before the first HDF5 call of io/ (each is made under this mutex): no H5_term_library at
  // exit. After a failed H5Fclose, HDF5 1.10 keeps the id of a file it has already freed, and its
  // shutdown closes that id again and crashes (see H5SampleWriter's remove_tmp, which avoids the
  // failure where it can). Every id of io/ is an Hid, closed before exit, so the shutdown has
  // nothing of ours left to close. (A no-op if something initialised HDF5 earlier.)
  static const bool no_shutdown_at_exit = H5dont_atexit() >= 0;
  (void)no_shutdown_at_exit;
  return m;
}

// The error stack and its automatic printing are per thread in thread-safe builds: silence it in
// every thread that calls HDF5, so that a bad file gives our one-line error only.
void h5_quiet() {
  thread_local bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

// The innermost (most specific) message of the current thread's HDF5 error stack; clears it.
std::string h5_error() {
  std::string msg;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* d) -> herr_t {
        if (e->desc != nullptr && e->desc[0] != '\0') *static_cast<std::string*>(d) = e->desc;
        return 0;
      },
      &msg);
  H5Eclear2(H5E_DEFAULT);
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  // The sec2 driver's I/O errors carry a time stamp, buffer addresses and sizes around the one
  // thing a user needs: "file write failed: ..., error message = 'No space left on device', ...".
  const std::string key = "error message = '";
  const size_t at = msg.find(key), colon = msg.find(':');
  if (at != std::string::npos && colon < at) {
    const size_t end = msg.find('\'', at + key.size());
    if (end != std::string::npos) {
      msg = msg.substr(0, colon) + ": " + msg.substr(at + key.size(), end - at - key.size());
    }
  }
  // (The library's messages may quote names and values from the file.)
  return msg.empty() ? "unknown HDF5 error" : printable(msg, 400);
}

std::string num_str(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

namespace {

// Attribute names and values as shown (printable(), engine/printable.h): enough for any parameter.
constexpr size_t kMaxAttributeName = 128, kMaxAttributeText = 1024;

// The root attributes as text (numbers in shortest round-trip form, arrays as [a, b, ...]).
herr_t attribute_text(hid_t loc, const char* name, const H5A_info_t*, void* op_data) {
  auto* out = static_cast<std::map<std::string, std::string>*>(op_data);
  Hid a(H5Aopen(loc, name, H5P_DEFAULT));
  if (!a.ok()) return 0;
  Hid t(H5Aget_type(a.get()));
  Hid s(H5Aget_space(a.get()));
  const hssize_t npts = H5Sget_simple_extent_npoints(s.get());
  const H5T_class_t cls = H5Tget_class(t.get());
  std::string text;
  if (cls == H5T_STRING && npts == 1) {
    if (H5Tis_variable_str(t.get()) > 0) {
      Hid mt(H5Tcopy(t.get()));
      char* p = nullptr;
      if (H5Aread(a.get(), mt.get(), &p) >= 0 && p != nullptr) {
        text = p;
        H5free_memory(p);
      }
    } else {
      std::string buf(H5Tget_size(t.get()), '\0');
      if (H5Aread(a.get(), t.get(), buf.data()) >= 0) text = buf.substr(0, buf.find('\0'));
    }
  } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && npts >= 1) {
    const size_t shown = std::min<size_t>(static_cast<size_t>(npts), 64);
    std::vector<std::string> items;
    if (cls == H5T_INTEGER) {
      std::vector<long long> v(static_cast<size_t>(npts));
      if (H5Aread(a.get(), H5T_NATIVE_LLONG, v.data()) >= 0) {
        for (size_t k = 0; k < shown; ++k) items.push_back(std::to_string(v[k]));
      }
    } else {
      std::vector<double> v(static_cast<size_t>(npts));
      if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, v.data()) >= 0) {
        for (size_t k = 0; k < shown; ++k) items.push_back(num_str(v[k]));
      }
    }
    if (H5Sget_simple_extent_ndims(s.get()) == 0 && items.size() == 1) {
      text = items[0];
    } else {
      text = "[";
      for (size_t k = 0; k < items.size(); ++k) text += (k ? ", " : "") + items[k];
      if (static_cast<size_t>(npts) > shown) text += ", ...";
      text += "]";
    }
  } else {
    text = "(attribute of an unsupported type)";
  }
  H5Eclear2(H5E_DEFAULT);
  (*out)[printable(name, kMaxAttributeName)] = printable(text, kMaxAttributeText);
  return 0;
}

}  // namespace

std::map<std::string, std::string> h5_attributes_text(hid_t loc) {
  std::map<std::string, std::string> out;
  hsize_t idx = 0;
  H5Aiterate2(loc, H5_INDEX_NAME, H5_ITER_INC, &idx, attribute_text, &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string filters_str(hid_t dcpl) {
  std::string r;
  const int nf = H5Pget_nfilters(dcpl);
  for (int k = 0; k < nf; ++k) {
    unsigned flags = 0, cd[8] = {};
    size_t ncd = 8;
    char name[128] = {};
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl, static_cast<unsigned>(k), &flags, &ncd, cd, sizeof name, name, nullptr);
    std::string f;
    if (id == H5Z_FILTER_DEFLATE) {
      f = "deflate(" + std::to_string(ncd > 0 ? cd[0] : 0) + ")";
    } else if (id == H5Z_FILTER_SHUFFLE) {
      f = "shuffle";
    } else if (id == H5Z_FILTER_FLETCHER32) {
      f = "fletcher32";
    } else if (id == H5Z_FILTER_SZIP) {
      f = "szip";
    } else if (id == H5Z_FILTER_NBIT) {
      f = "nbit";
    } else if (id == H5Z_FILTER_SCALEOFFSET) {
      f = "scaleoffset";
    } else {
      f = "filter " + std::to_string(id) + (name[0] ? std::string(" (") + name + ")" : "");
    }
    r += (k ? ", " : "") + f;
  }
  return r;
}

Hid h5_open_readonly(const std::string& path, int64_t* file_bytes) {
  auto fail = [&](const std::string& problem) { throw InputError(path + ": " + problem); };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail("not found");
    fail(std::string("cannot open: ") + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) fail("is a directory, not an HDF5 file");
  *file_bytes = static_cast<int64_t>(st.st_size);
  h5_quiet();
  h5_vet(path);
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 < 0) fail("cannot read: " + h5_error());  // (an I/O error, not a verdict on the file)
  if (is_hdf5 == 0) {
    H5Eclear2(H5E_DEFAULT);
    fail("not an HDF5 file (no HDF5 signature)");
  }
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_file_locking(fapl.get(), true, true);  // a file system without locks is no error
  Hid file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!file.ok()) {
    const std::string err = h5_error();
    long long eof = 0, base = 0, stored = 0;
    if (std::sscanf(err.c_str(), "truncated file: eof = %lld, sblock->base_addr = %lld, stored_eof = %lld", &eof, &base,
                    &stored) == 3) {
      fail("truncated: the file has " + std::to_string(eof) + " bytes, its HDF5 superblock says " +
           std::to_string(stored));
    }
    fail("HDF5 cannot open it (damaged or truncated?): " + err);
  }
  return file;
}

std::vector<int64_t> h5_shape(hid_t dset, const std::string& path, const std::string& name) {
  Hid s(H5Dget_space(dset));
  const int rank = H5Sget_simple_extent_ndims(s.get());
  if (rank < 0) throw InputError(path + ": " + name + ": cannot read its shape: " + h5_error());
  std::vector<hsize_t> d(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(s.get(), d.data(), nullptr);
  for (hsize_t v : d) {
    // hsize_t is unsigned: a dimension past int64's range would turn negative in every size below.
    if (v > static_cast<hsize_t>(INT64_MAX)) {
      throw InputError(path + ": " + name + " declares a dimension of " + std::to_string(v) +
                       ", more than a signed 64-bit size can hold");
    }
  }
  return std::vector<int64_t>(d.begin(), d.end());
}

void h5_check_sample_addressable(int64_t height, int64_t width, const std::string& path) {
  // (In long double: the product may pass int64.)
  if (static_cast<long double>(height) * static_cast<long double>(width) * 16.0L >=
      static_cast<long double>(int64_t{1} << 62)) {
    throw InputError(path + ": /data declares gathers of " + std::to_string(height) + " x " + std::to_string(width) +
                     " values, more than 64-bit byte counts can address");
  }
}

void h5_dt_dx(const std::map<std::string, std::string>& attributes, double* dt, double* dx) {
  for (const char* key : {"dt", "dx"}) {
    auto it = attributes.find(key);
    if (it == attributes.end()) continue;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end != it->second.c_str() && *end == '\0' && std::isfinite(v)) *(key[1] == 't' ? dt : dx) = v;
  }
}

namespace {

// Little-endian IEEE binary16 as HDF5 describes it (h5py's float16).
bool is_ieee_half_le(hid_t t) {
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  return H5Tget_size(t) == 2 && H5Tget_order(t) == H5T_ORDER_LE &&
         H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) >= 0 && spos == 15 && epos == 10 && esize == 5 &&
         mpos == 0 && msize == 10 && H5Tget_ebias(t) == 15;
}

}  // namespace

hid_t h5_ieee_half_le_type() {
  // (As h5py makes it: float32's layout with binary16's fields, then the size; the exponent bias last.)
  const hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

herr_t h5_align_chunks(hid_t fapl) { return H5Pset_alignment(fapl, hsize_t{1} << 16, 4096); }

H5ElemInfo h5_elem_info(hid_t dset, const std::string& path, const std::string& name, bool labels) {
  Hid t(H5Dget_type(dset));
  const H5T_class_t cls = H5Tget_class(t.get());
  const size_t size = H5Tget_size(t.get());
  H5ElemInfo r;
  r.bytes = static_cast<int64_t>(size);
  if (cls == H5T_FLOAT && size == 4) {
    r.type = H5ElemType::f32;
    r.raw_decodable = H5Tequal(t.get(), H5T_IEEE_F32LE) > 0;
  } else if (cls == H5T_FLOAT && size == 2) {
    r.type = H5ElemType::f16;
    r.raw_decodable = is_ieee_half_le(t.get());
  } else if (labels && cls == H5T_FLOAT && size == 8) {
    r.type = H5ElemType::f64;
    r.raw_decodable = H5Tequal(t.get(), H5T_IEEE_F64LE) > 0;
  } else if (labels && (cls == H5T_INTEGER || cls == H5T_ENUM) && size == 1) {  // h5py's bool is an int8 enum
    r.type = H5ElemType::u8;
    r.raw_decodable = true;
    Hid base(cls == H5T_ENUM ? H5Tget_super(t.get()) : H5Tcopy(t.get()));
    r.signed_int = H5Tget_sign(base.get()) == H5T_SGN_2;
  } else {
    const char* what = cls == H5T_FLOAT      ? "float"
                       : cls == H5T_INTEGER  ? "integer"
                       : cls == H5T_STRING   ? "string"
                       : cls == H5T_COMPOUND ? "compound"
                                             : "non-numeric";
    H5Eclear2(H5E_DEFAULT);
    const size_t bits = size * 8;
    const bool an = bits == 8 || bits == 11 || bits == 18 || (bits >= 80 && bits < 90);  // "an 8-bit"
    throw InputError(path + ": " + name + " has " + (an ? "an " : "a ") + std::to_string(bits) + "-bit " + what +
                     " type; " + (labels ? "expected uint8 or float 0/1" : "expected float32 or float16"));
  }
  return r;
}

}  // namespace seis
