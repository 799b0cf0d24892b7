// Internal helpers shared by the io/ files that call HDF5 (not part of the public API): the one
// mutex every HDF5 call is made under, error text, an owning id type, and the opening checks that
// turn a bad file into a one-line InputError naming it. num_str is also used by apps/ for values
// in messages. (Shapes as text: shape_str, engine/tensor.h.)
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "io/hdf5_dataset.h"
#include "io/hdf5_table.h"

namespace seis {

// Every HDF5 call in io/ is made under this mutex: the library has a global lock of its own in
// thread-safe builds, and ours keeps a non-thread-safe build correct too.
std::mutex& h5_mutex();

// Silences HDF5's automatic error printing in the calling thread (once per thread).
void h5_quiet();

// The innermost (most specific) message of the current thread's HDF5 error stack, printable (it may
// quote the file); clears it.
std::string h5_error();

// An HDF5 id, released when it goes out of scope (always under h5_mutex()).
class Hid {
 public:
  Hid() = default;
  explicit Hid(hid_t id) : id_(id) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  hid_t release() {
    const hid_t r = id_;
    id_ = -1;
    return r;
  }
  void reset() {
    if (id_ >= 0) H5Idec_ref(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
};

// A new id of h5py's float16 type: little-endian IEEE binary16.
hid_t h5_ieee_half_le_type();

// Sets a file access list so that every object of the file of at least 64 KiB (the chunks of a
// gather) starts at a multiple of 4 KiB: then a reader with O_DIRECT reads them straight into
// page-aligned memory (H5SampleFile::use_direct_reads). Returns H5Pset_alignment's status.
herr_t h5_align_chunks(hid_t fapl);

// A number in its shortest round-trip form ("0.002", "-3", "2e+09").
std::string num_str(double v);

// Every attribute of `loc` as text (numbers in shortest round-trip form, arrays as [a, b, ...]);
// names and values made printable (engine/printable.h), values cut at 1024 bytes.
std::map<std::string, std::string> h5_attributes_text(hid_t loc);

// The attributes dt and dx (as h5_attributes_text gives them) into *dt and *dx where they are
// finite numbers; left as they are otherwise.
void h5_dt_dx(const std::map<std::string, std::string>& attributes, double* dt, double* dx);

// The element type of /data (labels false: float32 or float16) or /label (labels true: also
// float64 and 1-byte integers, h5py's bool enum included). InputError "path: name has a 64-bit
// integer type; expected ..." for anything else.
struct H5ElemInfo {
  H5ElemType type = H5ElemType::none;
  int64_t bytes = 0;           // per element, in the file
  bool raw_decodable = false;  // little-endian IEEE or 1-byte integer: raw bytes can be decoded directly
  bool signed_int = false;     // 1-byte integer labels: signed
};
H5ElemInfo h5_elem_info(hid_t dset, const std::string& path, const std::string& name, bool labels);

// The filter pipeline of a dataset creation property list, e.g. "shuffle, deflate(4)"; "" for none.
std::string filters_str(hid_t dcpl);

// Opens `path` read-only after checking that it exists, is no directory, survives the library's
// reading of its metadata in a child process (h5_vet, io/hdf5_vet.h) and is HDF5; sets
// *file_bytes. InputError "path: problem" otherwise (a truncated file is named as such). Call with
// h5_mutex() held.
Hid h5_open_readonly(const std::string& path, int64_t* file_bytes);

// The shape of an open dataset (InputError "path: /name: ..." when it cannot be read, or when a
// dimension does not fit int64: every size in io/ is int64).
std::vector<int64_t> h5_shape(hid_t dset, const std::string& path, const std::string& name);
// InputError naming `path` when one sample of `height` x `width` values, at up to 16 bytes each
// (data and label together), could pass an int64 byte count: a sample's sizes and offsets are such
// products, and only a file declaring sizes it cannot hold comes near (chunks never written read
// as fill values, so the file itself may be small).
void h5_check_sample_addressable(int64_t height, int64_t width, const std::string& path);

// A table's compound type: the caller's struct layout (memory) or packed little-endian (file).
Hid h5_table_type(const H5TableSpec& spec, bool file_layout);

}  // namespace seis
