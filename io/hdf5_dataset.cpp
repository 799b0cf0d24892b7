// HDF5 dataset files (see hdf5_dataset.h). Every HDF5 call in this file is made under h5_mutex()
// (hdf5_util.h). The fast read path touches no HDF5 at all: chunk offsets are found once at
// open, and read() is a pread of the raw chunk bytes.
#include "io/hdf5_dataset.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "engine/error.h"
#include "engine/file_io.h"
#include "io/direct_read.h"
#include "io/float16.h"
#include "io/hdf5_chunk_index.h"
#include "io/hdf5_copy.h"
#include "io/hdf5_util.h"
#include "io/normalize.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the pread path decodes little-endian bytes in place");

namespace seis {

const char* h5_elem_name(H5ElemType t) {
  switch (t) {
    case H5ElemType::f32:
      return "float32";
    case H5ElemType::f16:
      return "float16";
    case H5ElemType::f64:
      return "float64";
    case H5ElemType::u8:
      return "uint8";
    case H5ElemType::none:
      break;
  }
  return "none";
}

bool has_hdf5_signature(const std::string& path) {
  static const char kSignature[8] = {'\211', 'H', 'D', 'F', '\r', '\n', '\032', '\n'};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool found = false;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    for (int64_t at = 0; !found && at + 8 <= static_cast<int64_t>(st.st_size); at = at == 0 ? 512 : at * 2) {
      char b[8];
      found = ::pread(fd, b, 8, at) == 8 && std::memcmp(b, kSignature, 8) == 0;
    }
  }
  ::close(fd);
  return found;
}

// ---- Reading ---------------------------------------------------------------------------------

namespace {

// One of /data or /label, ready to read a sample.
struct DsetReader {
  std::string name;  // "/data" or "/label"
  bool is_label = false;
  Hid dset;  // while opening; then in H5SampleFile::Impl::Handles
  H5ElemType type = H5ElemType::none;
  int64_t elem_bytes = 0;      // in the file
  bool raw_decodable = false;  // little-endian IEEE or 1-byte integer: pread bytes can be decoded here
  bool signed_int = false;     // 1-byte integer labels: signed char in memory on the library path
  // Per sample: the file offset of its contiguous bytes, or -1: read through the library.
  std::vector<int64_t> offsets;
  bool all_direct = false;
};

}  // namespace

// /data is read in blocks of whole rows of about this size: each block is checked and summed by
// the caller while it is still in cache (read_rows), and the WILLNEED hints keep the disk busy with
// whole chunks. Warm first epochs measured 2-9% and later epochs 10-14% faster than with 1 MiB
// blocks, and no better with 128 or 64 KiB (bench_reader, 8.7 GB, Xeon with 2 MiB of L2 per core);
// cold, no difference.
constexpr int64_t kReadBlockBytes = int64_t{1} << 18;

// Direct reads (use_direct_reads, io/direct_read.h): a standalone cold read of 52 gathers on the
// 2-core build machine's virtio disk, 2 threads each with one read in flight, gave 1.70-1.76 GB/s
// with 4 MiB O_DIRECT blocks against 1.18-1.42 GB/s for page-cache reads of 256 KiB blocks with
// WILLNEED hints (the reader's), 1.42-1.86 with 16 MiB blocks.

struct H5SampleFile::Impl {
  H5DatasetInfo info;
  Hid file;  // while opening; then in handles
  DsetReader data, label;
  DsetReader trace_norm_at, sample_norm_at;  // where the stored statistics lie (locate_norm)
  Hid trace_valid;              // while opening; then in handles (read through the library: W bytes per sample)
  Hid trace_norm, sample_norm;  // the same (8 W and 16 bytes per sample)
  int fd = -1;                  // while opening; then in handles
  // What reads need open: the descriptor for pread, and the HDF5 ids where the library reads.
  // Shared, so that close_handles() never pulls them from under a read in progress: the last user
  // closes them. Reopened on demand (a set of many files keeps only a few open).
  struct Handles {
    int fd = -1;
    Hid file, data, label, trace_valid;  // trace_valid: /trace_valid when the file has it
    Hid trace_norm, sample_norm;         // when the file has them
    Handles() = default;
    Handles(const Handles&) = delete;
    Handles& operator=(const Handles&) = delete;
    ~Handles() {
      if (fd >= 0) ::close(fd);
      if (dfd >= 0) ::close(dfd);
      if (file.ok() || data.ok() || label.ok() || trace_valid.ok() || trace_norm.ok() || sample_norm.ok()) {
        std::lock_guard<std::mutex> lock(h5_mutex());
        sample_norm.reset();
        trace_norm.reset();
        trace_valid.reset();
        label.reset();
        data.reset();
        file.reset();
      }
    }
    hid_t dset(const DsetReader& r) const { return r.is_label ? label.get() : data.get(); }
    // A descriptor of the same file opened with O_DIRECT, on first use; -1 when there is none:
    // *refused when the file system refuses O_DIRECT (EINVAL, EOPNOTSUPP) or the path no longer
    // names fd's file, for good; other failures (out of descriptors) are tried again next time.
    int direct_fd(const std::string& path, bool* refused) const {
      std::lock_guard<std::mutex> lock(dfd_mu);
      if (dfd < 0 && !dfd_refused) {
        dfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
        if (dfd < 0) {
          dfd_refused = errno == EINVAL || errno == EOPNOTSUPP;
        } else {
          struct stat a {
          }, b{};
          if (::fstat(fd, &a) != 0 || ::fstat(dfd, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
            ::close(dfd);
            dfd = -1;
            dfd_refused = true;
          }
        }
      }
      *refused = dfd_refused;
      return dfd;
    }
    mutable std::mutex dfd_mu;
    mutable int dfd = -1;
    mutable bool dfd_refused = false;
  };
  mutable std::mutex handles_mu;
  mutable std::shared_ptr<Handles> handles;
  mutable std::atomic<bool> direct{false};                // use_direct_reads
  mutable std::atomic<bool> direct_refused{false};        // by the file system, for good
  mutable std::atomic<bool> direct_into_place{true};      // use_direct_reads
  mutable std::atomic<int64_t> direct_in_place_bytes{0};  // read with O_DIRECT straight to their places
  bool direct_on() const { return direct.load() && !direct_refused.load(); }
  // Whether read_rows reads r's samples with O_DIRECT (where they are read with pread): /data, and
  // u8 /label (labels of other types are decoded by read_one).
  bool reads_directly(const DsetReader& r) const { return direct_on() && (!r.is_label || r.type == H5ElemType::u8); }
  struct stat opened {};       // the file as first opened: a reopened path must still be that file
  bool needs_library = false;  // some sample reads through HDF5, so reopening opens it too
  // Chunk addresses from the library are relative to the superblock, which follows the user block
  // (if any): the absolute offset of chunk address a is base + a.
  int64_t base = 0;
  int64_t bytes_per_sample = 0;

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(info.path + ": " + problem); }

  // Validates the element type of /data (labels false) or /label and fills r's type fields.
  void check_type(DsetReader& r, bool labels) {
    const H5ElemInfo e = h5_elem_info(r.dset.get(), info.path, r.name, labels);
    r.type = e.type;
    r.elem_bytes = e.bytes;
    r.raw_decodable = e.raw_decodable;
    r.signed_int = e.signed_int;
  }

  // Finds where each sample's bytes lie; checks every allocated chunk against the file size. A
  // sample is [h, w] (/data's H and W unless given: the statistics' [2, W]).
  void locate(DsetReader& r, std::vector<int64_t>* chunk_shape, std::string* filters, int64_t h = 0, int64_t w = 0) {
    Hid dcpl(H5Dget_create_plist(r.dset.get()));
    const H5D_layout_t layout = H5Pget_layout(dcpl.get());
    *filters = filters_str(dcpl.get());
    const bool filtered = H5Pget_nfilters(dcpl.get()) > 0;
    const int64_t n = info.n;
    if (h == 0) {
      h = info.height;
      w = info.width;
    }
    const int64_t sample_bytes = h * w * r.elem_bytes;
    const int64_t file_size = info.file_bytes;
    auto truncated = [&](const std::string& what, int64_t end) {
      fail("truncated: " + what + " of " + r.name + " ends at byte " + std::to_string(end) + " but the file has " +
           std::to_string(file_size) + " bytes");
    };
    if (layout == H5D_CONTIGUOUS) {
      const haddr_t addr = H5Dget_offset(r.dset.get());
      H5Eclear2(H5E_DEFAULT);
      if (addr == HADDR_UNDEF) return;                   // not allocated (fill values) or external: library path
      const int64_t start = static_cast<int64_t>(addr);  // (H5Dget_offset includes the user block)
      // (In long double: N x H x W x bytes may pass int64 in a file that declares absurd sizes.)
      const long double end =
          static_cast<long double>(start) + static_cast<long double>(n) * static_cast<long double>(h) *
                                                static_cast<long double>(w) * static_cast<long double>(r.elem_bytes);
      if (end > static_cast<long double>(file_size)) {
        truncated("the contiguous data", end < 9e18L ? static_cast<int64_t>(end) : INT64_MAX);
      }
      if (r.raw_decodable) {
        r.offsets.resize(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) r.offsets[static_cast<size_t>(i)] = start + i * sample_bytes;
        r.all_direct = true;
      }
      return;
    }
    if (layout != H5D_CHUNKED) return;  // compact: tiny, in the object header; library path
    hsize_t cdims[3] = {};
    if (H5Pget_chunk(dcpl.get(), 3, cdims) != 3) fail(r.name + ": cannot read its chunk shape: " + h5_error());
    *chunk_shape = {static_cast<int64_t>(cdims[0]), static_cast<int64_t>(cdims[1]), static_cast<int64_t>(cdims[2])};
    const bool per_sample = cdims[0] == 1 && static_cast<int64_t>(cdims[1]) == h && static_cast<int64_t>(cdims[2]) == w;
    const bool direct = per_sample && !filtered && r.raw_decodable;
    const int64_t g0 = (n + static_cast<int64_t>(cdims[0]) - 1) / static_cast<int64_t>(cdims[0]);
    const int64_t g1 = (h + static_cast<int64_t>(cdims[1]) - 1) / static_cast<int64_t>(cdims[1]);
    const int64_t g2 = (w + static_cast<int64_t>(cdims[2]) - 1) / static_cast<int64_t>(cdims[2]);
    const int64_t grid = g0 * g1 * g2;
    // Where every chunk lies: from the file's own chunk index, one pass (hdf5_chunk_index.h),
    // checked against the library for a spread of chunks. HDF5 1.10's H5Dget_chunk_info and
    // H5Dget_chunk_info_by_coord scan the index per call, so asking them about every chunk is
    // quadratic: they are the fallback for small grids only (4096 chunks: ~0.4 s). Above that, a
    // layout the walk does not support reads through the library, and the truncation check is
    // the one HDF5 makes at open (end of file against the superblock's end of allocated space).
    std::vector<H5ChunkLocation> chunks;
    std::string why_not;
    const bool walked =
        read_chunk_index(fd, r.dset.get(), &chunks, &why_not) && verify_chunk_index(r.dset.get(), chunks, &why_not);
    constexpr int64_t kMaxChunkScan = 4096;
    if (!walked) {
      chunks.clear();
      if (grid > kMaxChunkScan) return;
      for (int64_t k = 0; k < grid; ++k) {
        const hsize_t off[3] = {static_cast<hsize_t>(k / (g1 * g2)) * cdims[0],
                                static_cast<hsize_t>(k / g2 % g1) * cdims[1], static_cast<hsize_t>(k % g2) * cdims[2]};
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (H5Dget_chunk_info_by_coord(r.dset.get(), off, &mask, &addr, &size) < 0) {
          fail(r.name + ": cannot read its chunk index: " + h5_error());
        }
        if (addr == HADDR_UNDEF) continue;  // never written: the library returns fill values
        chunks.push_back({k, base + static_cast<int64_t>(addr), static_cast<int64_t>(size), mask});
      }
    }
    // The table of offsets costs 8 bytes per sample of the declared N, whatever the file holds: a
    // 1.4 KB file declaring 2^31 never-written samples made it 16 GiB. Built where at least half
    // of the samples are stored (then it is a fraction of the file's own size); the rest read
    // through the library, which hands out fill values for unwritten chunks without memory per
    // sample.
    const bool table = direct && static_cast<int64_t>(chunks.size()) >= n - n / 2;
    if (table) r.offsets.assign(static_cast<size_t>(n), -1);
    int64_t allocated = 0;
    for (const H5ChunkLocation& c : chunks) {
      ++allocated;
      const int64_t end = c.addr + c.size;
      if (end > file_size) {
        truncated(
            "the chunk at " + shape_str({c.index / (g1 * g2) * int64_t(cdims[0]), c.index / g2 % g1 * int64_t(cdims[1]),
                                         c.index % g2 * int64_t(cdims[2])}),
            end);
      }
      // per_sample: the grid is [n, 1, 1] and the index is the sample.
      if (table && c.size == sample_bytes && c.filter_mask == 0) r.offsets[static_cast<size_t>(c.index)] = c.addr;
    }
    r.all_direct = table && allocated == n;
  }

  // Where /trace_norm (`d`: [N, 2, W] float32) or /sample_norm ([N, 2] float64) can be read with
  // pread: r.offsets per sample, when the floats are little-endian IEEE and each sample's lie
  // together (contiguous, or a chunk of one sample's, uncompressed). Else r stays without offsets
  // and the library reads them. d stays open. Statistics whose chunks cannot be located (a damaged
  // index, a truncated chunk) do not stop the file from opening: the library's reads of them fail
  // later, and the reader then computes its own, as for any statistics it cannot read.
  void locate_norm(DsetReader& r, Hid& d, const char* name, int64_t h, int64_t w, int64_t elem_bytes, hid_t le) {
    if (!d.ok()) return;
    r.name = std::string("/") + name;
    r.elem_bytes = elem_bytes;
    {
      Hid type(H5Dget_type(d.get()));
      r.raw_decodable = H5Tequal(type.get(), le) > 0;
    }
    if (!r.raw_decodable) return;
    Hid dcpl(H5Dget_create_plist(d.get()));
    // ([N, 2] in chunks: rank 2, which locate does not walk.)
    if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED && h == 1) return;
    r.dset = std::move(d);
    std::vector<int64_t> chunk;
    std::string filters;
    try {
      locate(r, &chunk, &filters, h, w);
    } catch (const InputError&) {
      r.offsets.clear();
      r.all_direct = false;
    }
    d = std::move(r.dset);
    H5Eclear2(H5E_DEFAULT);
  }

  void open_dset(DsetReader& r, const char* name) {
    r.name = std::string("/") + name;
    r.is_label = r.name == "/label";
    r.dset = Hid(H5Dopen2(file.get(), name, H5P_DEFAULT));
    if (!r.dset.ok()) fail(r.name + " is not a dataset: " + h5_error());
  }

  std::vector<int64_t> shape_of(const DsetReader& r) { return h5_shape(r.dset.get(), info.path, r.name); }

  // /trace_norm or /sample_norm into d when the file has it, checked: `shape` of IEEE floats of
  // `bytes` bytes.
  void open_norm(Hid& d, const char* name, const std::vector<int64_t>& shape, size_t bytes, const char* expected) {
    const std::string dname = std::string("/") + name;
    if (H5Lexists(file.get(), name, H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    d = Hid(H5Dopen2(file.get(), name, H5P_DEFAULT));
    if (!d.ok()) fail(dname + " is not a dataset: " + h5_error());
    const std::vector<int64_t> got = h5_shape(d.get(), info.path, dname);
    Hid type(H5Dget_type(d.get()));
    if (got != shape || H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != bytes) {
      fail(dname + " (stored normalisation statistics) has shape " + shape_str(got) + " of " +
           (H5Tget_class(type.get()) == H5T_FLOAT ? std::to_string(H5Tget_size(type.get()) * 8) + "-bit floats"
                                                  : std::string("non-floats")) +
           "; expected " + expected + " for /data's " + std::to_string(info.n) + " gathers of " +
           std::to_string(info.width) + " traces");
    }
    H5Eclear2(H5E_DEFAULT);
  }

  void open(const std::string& path) {
    info.path = path;
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    file = h5_open_readonly(path, &info.file_bytes);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(std::string("cannot open: ") + std::strerror(errno));
    {
      Hid fcpl(H5Fget_create_plist(file.get()));
      hsize_t userblock = 0;
      if (H5Pget_userblock(fcpl.get(), &userblock) >= 0) base = static_cast<int64_t>(userblock);
      H5Eclear2(H5E_DEFAULT);
    }
    const htri_t has_data = H5Lexists(file.get(), "data", H5P_DEFAULT);
    if (has_data < 0) fail("cannot read /data: " + h5_error());  // (a read error: say so, not "no /data")
    if (has_data == 0) fail("no /data dataset");
    open_dset(data, "data");
    const std::vector<int64_t> shape = shape_of(data);
    if (shape.size() == 2) {
      // Named as what it is: a continuous record (H5RecordFile reads it), not a set of gathers.
      fail("/data has rank 2 (shape " + shape_str(shape) +
           "): a continuous record [T, W], not gathers; this needs rank 3: [N, H, W]");
    }
    if (shape.size() != 3) {
      fail("/data has rank " + std::to_string(shape.size()) + " (shape " + shape_str(shape) +
           "); expected rank 3: [N, H, W]");
    }
    info.n = shape[0];
    info.height = shape[1];
    info.width = shape[2];
    if (info.n == 0 || info.height == 0 || info.width == 0) fail("is empty: /data has shape " + shape_str(shape));
    h5_check_sample_addressable(info.height, info.width, info.path);  // (a sample's sizes below are int64)
    check_type(data, false);
    info.data_type = data.type;
    if (H5Lexists(file.get(), "label", H5P_DEFAULT) > 0) {
      open_dset(label, "label");
      const std::vector<int64_t> ls = shape_of(label);
      if (ls != shape) fail("/label has shape " + shape_str(ls) + " but /data has " + shape_str(shape));
      check_type(label, true);
      info.label_type = label.type;
    }
    H5Eclear2(H5E_DEFAULT);
    if (H5Lexists(file.get(), "trace_valid", H5P_DEFAULT) > 0) {
      trace_valid = Hid(H5Dopen2(file.get(), "trace_valid", H5P_DEFAULT));
      if (!trace_valid.ok()) fail("/trace_valid is not a dataset: " + h5_error());
      const std::vector<int64_t> vs = h5_shape(trace_valid.get(), info.path, "/trace_valid");
      if (vs != std::vector<int64_t>{info.n, info.width}) {
        fail("/trace_valid has shape " + shape_str(vs) + " but /data has " + std::to_string(info.n) + " gathers of " +
             std::to_string(info.width) + " traces; expected [N, W]");
      }
      Hid vtype(H5Dget_type(trace_valid.get()));
      if (H5Tget_class(vtype.get()) != H5T_INTEGER || H5Tget_size(vtype.get()) != 1) {
        fail("/trace_valid is not of 1-byte integers (u8: 1 = a real trace, 0 = padding)");
      }
      info.has_trace_valid = true;
    }
    H5Eclear2(H5E_DEFAULT);
    open_norm(trace_norm, "trace_norm", {info.n, 2, info.width}, 4, "[N, 2, W] of float32");
    info.has_trace_norm = trace_norm.ok();
    open_norm(sample_norm, "sample_norm", {info.n, 2}, 8, "[N, 2] of float64");
    info.has_sample_norm = sample_norm.ok();
    locate_norm(trace_norm_at, trace_norm, "trace_norm", 2, info.width, 4, H5T_IEEE_F32LE);
    info.trace_norm_direct = trace_norm_at.all_direct;
    locate_norm(sample_norm_at, sample_norm, "sample_norm", 1, 2, 8, H5T_IEEE_F64LE);
    info.sample_norm_direct = sample_norm_at.all_direct;
    locate(data, &info.data_chunk, &info.data_filters);
    info.data_chunked_per_sample = info.data_chunk == std::vector<int64_t>{1, info.height, info.width};
    info.data_direct = data.all_direct;
    auto aligned = [](const DsetReader& r) {
      return r.all_direct &&
             std::all_of(r.offsets.begin(), r.offsets.end(), [](int64_t o) { return o >= 0 && o % kDirectAlign == 0; });
    };
    info.data_aligned = aligned(data);
    bytes_per_sample = info.height * info.width * data.elem_bytes;
    if (label.dset.ok()) {
      locate(label, &info.label_chunk, &info.label_filters);
      info.label_direct = label.all_direct;
      info.label_aligned = aligned(label);
      bytes_per_sample += info.height * info.width * label.elem_bytes;
    }
    // Compressed: what a sample costs on disk, on average.
    if (!info.data_filters.empty() || !info.label_filters.empty()) {
      int64_t stored = static_cast<int64_t>(H5Dget_storage_size(data.dset.get()));
      if (label.dset.ok()) stored += static_cast<int64_t>(H5Dget_storage_size(label.dset.get()));
      bytes_per_sample = (stored + info.n - 1) / info.n;
    }
    Hid root(H5Gopen2(file.get(), "/", H5P_DEFAULT));
    info.attributes = h5_attributes_text(root.get());
    h5_dt_dx(info.attributes, &info.dt, &info.dx);
    if (::fstat(fd, &opened) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
    needs_library = !data.all_direct || (label.dset.ok() && !label.all_direct) || info.has_trace_valid ||
                    (info.has_trace_norm && !info.trace_norm_direct) ||
                    (info.has_sample_norm && !info.sample_norm_direct);
    auto h = std::make_shared<Handles>();
    h->fd = fd;
    fd = -1;
    if (needs_library) {
      h->file = std::move(file);
      h->data = std::move(data.dset);
      h->label = std::move(label.dset);
      h->trace_valid = std::move(trace_valid);
      h->trace_norm = std::move(trace_norm);
      h->sample_norm = std::move(sample_norm);
    } else {  // pread only: HDF5 holds no descriptor of its own (direct reads add one, O_DIRECT)
      sample_norm.reset();
      trace_norm.reset();
      label.dset.reset();
      data.dset.reset();
      file.reset();
    }
    handles = std::move(h);
  }

  std::shared_ptr<Handles> acquire() const {
    std::lock_guard<std::mutex> lock(handles_mu);
    if (!handles) handles = reopen();
    return handles;
  }

  std::shared_ptr<Handles> reopen() const {
    auto h = std::make_shared<Handles>();
    h->fd = ::open(info.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (h->fd < 0) fail(std::string("cannot reopen: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(h->fd, &st) != 0 || st.st_dev != opened.st_dev || st.st_ino != opened.st_ino ||
        st.st_size != opened.st_size || st.st_mtim.tv_sec != opened.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != opened.st_mtim.tv_nsec) {
      fail("was replaced or changed since it was opened; restart to read it as it is now");
    }
    if (needs_library) {
      std::lock_guard<std::mutex> lock(h5_mutex());
      h5_quiet();
      int64_t bytes = 0;
      h->file = h5_open_readonly(info.path, &bytes);
      // Each dataset the file was opened with, again.
      auto reopen_dset = [&](Hid& d, bool present, const char* name) {
        if (!present) return;
        d = Hid(H5Dopen2(h->file.get(), name, H5P_DEFAULT));
        if (!d.ok()) fail("/" + std::string(name) + " cannot be reopened: " + h5_error());
      };
      reopen_dset(h->data, true, "data");
      reopen_dset(h->label, info.label_type != H5ElemType::none, "label");
      reopen_dset(h->trace_valid, info.has_trace_valid, "trace_valid");
      reopen_dset(h->trace_norm, info.has_trace_norm, "trace_norm");
      reopen_dset(h->sample_norm, info.has_sample_norm, "sample_norm");
    }
    return h;
  }

  // Bytes [off, off + bytes) of sample i's `name` read with O_DIRECT (direct_read, io/direct_read.h):
  // take(first, n, src) for every piece of `piece` bytes in order (the last may be shorter); straight
  // into dst, their final place, where it and off are 4 KiB-aligned (src is then dst + first). False,
  // with nothing taken, when the file system refuses O_DIRECT (refused for good); InputError naming
  // the file, the sample and the byte when a read fails.
  bool read_direct(const Handles& hd, int64_t i, const std::string& name, int64_t off, int64_t bytes, int64_t piece,
                   uint8_t* dst, const std::function<void(int64_t first, int64_t n, const uint8_t* src)>& take) const {
    bool refused = false;
    const int dfd = hd.direct_fd(info.path, &refused);
    if (dfd < 0) {
      if (refused) direct_refused = true;
      return false;  // (this read through the page cache)
    }
    std::string why;
    int64_t at = 0;
    int64_t in_place = 0;
    const DirectReadResult r =
        direct_read(dfd, off, bytes, piece, direct_into_place.load() ? dst : nullptr, take, &why, &at, &in_place);
    if (r == DirectReadResult::done) direct_in_place_bytes += in_place;
    if (r == DirectReadResult::failed) {
      fail("sample " + std::to_string(i) + ": reading " + name + " at byte " + std::to_string(at) + ": " + why);
    }
    if (r == DirectReadResult::refused) direct_refused = true;
    return r == DirectReadResult::done;
  }

  // Reads /data of sample i into out as float32 in blocks of whole rows, calling ready(r0, r1, rows)
  // as soon as rows [r0, r1) are read: to their places, or each to the start of out (at_start).
  // Library reads come whole, in place: one call, (0, H, out).
  void read_data_rows(const Handles& hd, int64_t i, float* out, H5SampleFile::RowBlocks where,
                      const H5SampleFile::RowsReady& ready) const {
    const int64_t h = info.height, w = info.width;
    const int64_t off = data.offsets.empty() ? -1 : data.offsets[static_cast<size_t>(i)];
    if (off < 0) {
      read_one(hd, data, i, out, nullptr);
      ready(0, h, out);
      return;
    }
    const int64_t row_bytes = w * data.elem_bytes;
    const int64_t block_rows = std::max<int64_t>(1, kReadBlockBytes / row_bytes);
    if (reads_directly(data)) {
      const bool half = data.type == H5ElemType::f16;
      // float32 rows that stay in their places are read straight there where the alignment allows.
      const bool to_places = !half && where == H5SampleFile::RowBlocks::in_place;
      const bool read = read_direct(hd, i, data.name, off, h * row_bytes, block_rows * row_bytes,
                                    to_places ? reinterpret_cast<uint8_t*>(out) : nullptr,
                                    [&](int64_t first, int64_t n, const uint8_t* src) {
                                      const int64_t r0 = first / row_bytes, r1 = r0 + n / row_bytes;
                                      float* dst = where == H5SampleFile::RowBlocks::at_start ? out : out + r0 * w;
                                      if (half) {
                                        for (int64_t k = 0; k < (r1 - r0) * w; ++k) {
                                          uint16_t v;
                                          std::memcpy(&v, src + 2 * k, 2);  // (src need not be 2-byte aligned)
                                          dst[k] = half_to_float(v);
                                        }
                                      } else if (src != reinterpret_cast<const uint8_t*>(dst)) {
                                        std::memcpy(dst, src, static_cast<size_t>(n));
                                      }
                                      ready(r0, r1, dst);
                                    });
      if (read) return;
    }
    thread_local std::vector<uint8_t> stage;  // float16 bytes, converted into out block by block
    for (int64_t r0 = 0; r0 < h; r0 += block_rows) {
      const int64_t r1 = std::min(h, r0 + block_rows);
      const int64_t bytes = (r1 - r0) * row_bytes;
      float* dst = where == H5SampleFile::RowBlocks::at_start ? out : out + r0 * w;
      void* buf = dst;
      if (data.type == H5ElemType::f16) {
        stage.resize(static_cast<size_t>(bytes));
        buf = stage.data();
      }
      std::string err;
      if (!pread_full(hd.fd, buf, bytes, off + r0 * row_bytes, &err)) {
        fail("sample " + std::to_string(i) + ": reading /data at byte " + std::to_string(off + r0 * row_bytes) + ": " +
             err);
      }
      if (data.type == H5ElemType::f16) {
        const auto* half = static_cast<const uint16_t*>(buf);
        for (int64_t k = 0; k < (r1 - r0) * w; ++k) dst[k] = half_to_float(half[k]);
      }
      ready(r0, r1, dst);
    }
  }

  // Reads sample i of r into out (float for data, u8 for labels).
  void read_one(const Handles& hd, const DsetReader& r, int64_t i, float* fout, uint8_t* uout) const {
    const int64_t count = info.height * info.width;
    const int64_t off = r.offsets.empty() ? -1 : r.offsets[static_cast<size_t>(i)];
    if (off >= 0) {
      const int64_t bytes = count * r.elem_bytes;
      thread_local std::vector<uint8_t> buf;
      void* dst = nullptr;
      if (fout != nullptr && r.type == H5ElemType::f32) {
        dst = fout;
      } else if (uout != nullptr && r.type == H5ElemType::u8) {
        dst = uout;
      } else {
        buf.resize(static_cast<size_t>(bytes));
        dst = buf.data();
      }
      std::string err;
      if (!pread_full(hd.fd, dst, bytes, off, &err)) {
        fail("sample " + std::to_string(i) + ": reading " + r.name + " at byte " + std::to_string(off) + ": " + err);
      }
      convert(r, dst, count, fout, uout);
      return;
    }
    // Library path: compressed or odd chunks, big-endian types, unwritten chunks.
    thread_local std::vector<uint8_t> buf;
    const bool as_float = r.type != H5ElemType::u8;
    buf.resize(static_cast<size_t>(count) * (as_float ? 4 : 1));
    {
      std::lock_guard<std::mutex> lock(h5_mutex());
      h5_quiet();
      const hid_t dset = hd.dset(r);
      Hid fspace(H5Dget_space(dset));
      const hsize_t start[3] = {static_cast<hsize_t>(i), 0, 0};
      const hsize_t cnt[3] = {1, static_cast<hsize_t>(info.height), static_cast<hsize_t>(info.width)};
      const hsize_t mdim[1] = {static_cast<hsize_t>(count)};
      Hid mspace(H5Screate_simple(1, mdim, nullptr));
      Hid ftype(H5Dget_type(dset));
      Hid mtype(as_float ? H5Tcopy(H5T_NATIVE_FLOAT) : H5Tget_native_type(ftype.get(), H5T_DIR_ASCEND));
      if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
          H5Dread(dset, mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, buf.data()) < 0) {
        fail("sample " + std::to_string(i) + ": HDF5 cannot read " + r.name + ": " + h5_error());
      }
    }
    DsetReader as_read;
    as_read.type = as_float ? H5ElemType::f32 : H5ElemType::u8;
    convert(as_read, buf.data(), count, fout, uout);
  }

  // Decodes count elements of r's type at src into fout (data) or uout (labels: nonzero = 1 for
  // float labels); a no-op where src already is the output.
  static void convert(const DsetReader& r, const void* src, int64_t count, float* fout, uint8_t* uout) {
    if (fout != nullptr) {
      if (r.type == H5ElemType::f16) {
        const auto* s = static_cast<const uint16_t*>(src);
        for (int64_t k = 0; k < count; ++k) fout[k] = half_to_float(s[k]);
      } else if (src != fout) {
        std::memcpy(fout, src, static_cast<size_t>(count) * 4);
      }
      return;
    }
    switch (r.type) {
      case H5ElemType::u8:
        if (src != uout) std::memcpy(uout, src, static_cast<size_t>(count));
        break;
      case H5ElemType::f16: {
        const auto* s = static_cast<const uint16_t*>(src);
        for (int64_t k = 0; k < count; ++k) uout[k] = (s[k] & 0x7fffu) != 0;
        break;
      }
      case H5ElemType::f32: {
        const auto* s = static_cast<const float*>(src);
        for (int64_t k = 0; k < count; ++k) uout[k] = s[k] != 0.0f;
        break;
      }
      case H5ElemType::f64: {
        const auto* s = static_cast<const double*>(src);
        for (int64_t k = 0; k < count; ++k) uout[k] = s[k] != 0.0;
        break;
      }
      case H5ElemType::none:
        break;
    }
  }

  void close() {
    handles.reset();
    {
      std::lock_guard<std::mutex> lock(h5_mutex());
      data.dset.reset();
      label.dset.reset();
      trace_valid.reset();
      trace_norm.reset();
      sample_norm.reset();
      file.reset();
    }
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

H5SampleFile::H5SampleFile(const std::string& path) : impl_(std::make_unique<Impl>()) {
  try {
    impl_->open(path);
  } catch (...) {
    impl_->close();
    throw;
  }
}

H5SampleFile::~H5SampleFile() { impl_->close(); }

const H5DatasetInfo& H5SampleFile::info() const { return impl_->info; }

int64_t H5SampleFile::bytes_per_sample() const { return impl_->bytes_per_sample; }

std::string H5SampleFile::describe(int64_t i) const { return impl_->info.path + " sample " + std::to_string(i); }

void H5SampleFile::read(int64_t i, float* data, uint8_t* label) const {
  const H5DatasetInfo& in = impl_->info;
  SEIS_CHECK(i >= 0 && i < in.n, in.path << ": sample " << i << " is out of range [0, " << in.n << ")");
  SEIS_CHECK(data != nullptr, "read: data must not be null");
  const std::shared_ptr<Impl::Handles> hd = impl_->acquire();
  impl_->read_one(*hd, impl_->data, i, data, nullptr);
  if (label != nullptr && in.label_type != H5ElemType::none) impl_->read_one(*hd, impl_->label, i, nullptr, label);
}

void H5SampleFile::read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                             const LabelRowsReady& label_ready) const {
  const H5DatasetInfo& in = impl_->info;
  SEIS_CHECK(i >= 0 && i < in.n, in.path << ": sample " << i << " is out of range [0, " << in.n << ")");
  SEIS_CHECK(data != nullptr, "read_rows: data must not be null");
  const std::shared_ptr<Impl::Handles> hd = impl_->acquire();
  impl_->read_data_rows(*hd, i, data, where, ready);
  if (label == nullptr || in.label_type == H5ElemType::none) return;
  const DsetReader& lr = impl_->label;
  const int64_t off = lr.offsets.empty() ? -1 : lr.offsets[static_cast<size_t>(i)];
  const int64_t h = in.height, w = in.width;
  const int64_t block_rows = std::max<int64_t>(1, kReadBlockBytes / w);
  // u8 labels read with pread: with O_DIRECT when asked (whether or not they are wanted in blocks).
  if (off >= 0 && impl_->reads_directly(lr) &&
      impl_->read_direct(*hd, i, lr.name, off, h * w, block_rows * w, label,
                         [&](int64_t first, int64_t n, const uint8_t* src) {
                           if (src != label + first) std::memcpy(label + first, src, static_cast<size_t>(n));
                           if (label_ready) label_ready(first / w, (first + n) / w, label + first);
                         })) {
    return;
  }
  if (!label_ready || off < 0 || lr.type != H5ElemType::u8) {
    impl_->read_one(*hd, lr, i, nullptr, label);
    if (label_ready) label_ready(0, in.height, label);
    return;
  }
  // u8 labels read with pread: in blocks of rows, each handed over while it is in cache.
  for (int64_t r0 = 0; r0 < h; r0 += block_rows) {
    const int64_t r1 = std::min(h, r0 + block_rows);
    std::string err;
    if (!pread_full(hd->fd, label + r0 * w, (r1 - r0) * w, off + r0 * w, &err)) {
      impl_->fail("sample " + std::to_string(i) + ": reading /label at byte " + std::to_string(off + r0 * w) + ": " +
                  err);
    }
    label_ready(r0, r1, label + r0 * w);  // (u8 bytes as stored, as read_one leaves them)
  }
}

std::vector<H5SampleFile::Extent> H5SampleFile::direct_extents(int64_t i) const {
  const H5DatasetInfo& in = impl_->info;
  SEIS_CHECK(i >= 0 && i < in.n, in.path << ": sample " << i << " is out of range [0, " << in.n << ")");
  std::vector<Extent> out;
  const int64_t count = in.height * in.width;
  for (const DsetReader* r : {&impl_->data, &impl_->label}) {
    if (r->offsets.empty() || r->offsets[static_cast<size_t>(i)] < 0) continue;
    out.push_back({r->offsets[static_cast<size_t>(i)], count * r->elem_bytes});
  }
  return out;
}

void H5SampleFile::will_need(int64_t i) const {
  // The stored statistics first: a reader reads them before the data (it normalises the data with
  // them as they arrive), so they should not wait in the disk's queue behind the gather's own bytes.
  std::vector<Extent> ext;
  const int64_t stats_bytes[2] = {8 * impl_->info.width, 16};
  int k = 0;
  for (const DsetReader* r : {&impl_->trace_norm_at, &impl_->sample_norm_at}) {
    if (!r->offsets.empty() && r->offsets[static_cast<size_t>(i)] >= 0) {
      ext.push_back({r->offsets[static_cast<size_t>(i)], stats_bytes[k]});
    }
    ++k;
  }
  // With direct reads, what read_rows reads with O_DIRECT is left out: /data, and u8 /label.
  for (const DsetReader* r : {&impl_->data, &impl_->label}) {
    if (r->offsets.empty() || r->offsets[static_cast<size_t>(i)] < 0 || impl_->reads_directly(*r)) continue;
    ext.push_back({r->offsets[static_cast<size_t>(i)], impl_->info.height * impl_->info.width * r->elem_bytes});
  }
  if (ext.empty()) return;
  const std::shared_ptr<Impl::Handles> hd = impl_->acquire();
  // A hint: the kernel starts reading these bytes into the page cache now, without waiting.
  for (const Extent& e : ext) ::posix_fadvise(hd->fd, e.offset, e.bytes, POSIX_FADV_WILLNEED);
}

void H5SampleFile::use_direct_reads(bool on, bool into_place) const {
  impl_->direct = on;
  impl_->direct_into_place = into_place;
}

bool H5SampleFile::direct_reads() const { return impl_->direct_on(); }

int64_t H5SampleFile::direct_bytes_in_place() const { return impl_->direct_in_place_bytes.load(); }

int64_t H5SampleFile::direct_read_thread_bytes(int64_t width) {
  // Pieces of whole rows of about kReadBlockBytes, or of one row where a row is larger (float32;
  // labels and float16 rows are smaller).
  return direct_read_buffer_bytes(std::max(kReadBlockBytes, width * 4));
}

void H5SampleFile::close_handles() const {
  std::shared_ptr<Impl::Handles> dropped;
  {
    std::lock_guard<std::mutex> lock(impl_->handles_mu);
    dropped = std::move(impl_->handles);
  }
  // (Closed here, outside handles_mu, unless a read still holds them: then by that read.)
}

bool H5SampleFile::handles_open() const {
  std::lock_guard<std::mutex> lock(impl_->handles_mu);
  return impl_->handles != nullptr;
}

void H5SampleFile::read_trace_valid(int64_t i, uint8_t* valid) const {
  const H5DatasetInfo& in = impl_->info;
  SEIS_CHECK(i >= 0 && i < in.n, in.path << ": sample " << i << " is out of range [0, " << in.n << ")");
  if (!in.has_trace_valid) {
    std::memset(valid, 1, static_cast<size_t>(in.width));
    return;
  }
  const std::shared_ptr<Impl::Handles> hd = impl_->acquire();
  {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    Hid fspace(H5Dget_space(hd->trace_valid.get()));
    const hsize_t start[2] = {static_cast<hsize_t>(i), 0};
    const hsize_t cnt[2] = {1, static_cast<hsize_t>(in.width)};
    const hsize_t mdim[1] = {static_cast<hsize_t>(in.width)};
    Hid mspace(H5Screate_simple(1, mdim, nullptr));
    if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
        H5Dread(hd->trace_valid.get(), H5T_NATIVE_UCHAR, mspace.get(), fspace.get(), H5P_DEFAULT, valid) < 0) {
      impl_->fail("sample " + std::to_string(i) + ": HDF5 cannot read /trace_valid: " + h5_error());
    }
  }
  for (int64_t j = 0; j < in.width; ++j) valid[j] = valid[j] != 0;
}

bool H5SampleFile::stored_norm_stats(int64_t i, Normalize mode, GatherNormalizer::Stats* stats) const {
  const H5DatasetInfo& in = impl_->info;
  SEIS_CHECK(i >= 0 && i < in.n, in.path << ": sample " << i << " is out of range [0, " << in.n << ")");
  const bool trace = mode == Normalize::trace;
  if (mode == Normalize::none || (trace ? !in.has_trace_norm : !in.has_sample_norm)) return false;
  const std::shared_ptr<Impl::Handles> hd = impl_->acquire();
  GatherNormalizer::Stats s;
  std::vector<float> cols(trace ? static_cast<size_t>(2 * in.width) : 0);
  double pair[2] = {0, 0};
  const DsetReader& at = trace ? impl_->trace_norm_at : impl_->sample_norm_at;
  const int64_t off = at.offsets.empty() ? -1 : at.offsets[static_cast<size_t>(i)];
  if (off >= 0) {  // the little-endian floats, as they are in memory here
    std::string err;
    void* dst = trace ? static_cast<void*>(cols.data()) : static_cast<void*>(pair);
    if (!pread_full(hd->fd, dst, trace ? 8 * in.width : 16, off, &err)) {
      impl_->fail("sample " + std::to_string(i) + ": reading " + at.name + " at byte " + std::to_string(off) + ": " +
                  err);
    }
  } else {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    const hid_t d = trace ? hd->trace_norm.get() : hd->sample_norm.get();
    Hid fspace(H5Dget_space(d));
    const hsize_t start[3] = {static_cast<hsize_t>(i), 0, 0};
    const hsize_t cnt[3] = {1, 2, static_cast<hsize_t>(in.width)};
    const hsize_t mdim[1] = {trace ? static_cast<hsize_t>(2 * in.width) : 2};
    Hid mspace(H5Screate_simple(1, mdim, nullptr));
    if (H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
        H5Dread(d, trace ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, mspace.get(), fspace.get(), H5P_DEFAULT,
                trace ? static_cast<void*>(cols.data()) : static_cast<void*>(pair)) < 0) {
      impl_->fail("sample " + std::to_string(i) + ": HDF5 cannot read " + at.name + ": " + h5_error());
    }
  }
  if (trace) {
    s.col_mean.assign(cols.begin(), cols.begin() + in.width);
    s.col_inv.assign(cols.begin() + in.width, cols.end());
  } else {
    s.mean = pair[0];
    s.inv = pair[1];
  }
  *stats = std::move(s);
  return true;
}

// ---- Writing ---------------------------------------------------------------------------------

namespace {

// Which pieces (samples, or chunks of a record) were written, in memory that follows how far out
// of order they come rather than how many there are (one flag per piece was 128 GiB for 2^40
// samples): the count of pieces [0, next) all written, and the written ones above it. The writers
// in this project hand indices out in order to T threads (io/synth_file.cpp run_items, predict's
// and convert's loops), and each thread writes its piece when done: at most T - 1 wait above next.
class WrittenPieces {
 public:
  void mark(int64_t i) {
    if (i < next_ || !ahead_.insert(i).second) return;  // written again: counted once
    while (!ahead_.empty() && *ahead_.begin() == next_) {
      ahead_.erase(ahead_.begin());
      ++next_;
    }
  }
  // Every piece below this one is written; it is not.
  int64_t first_missing() const { return next_; }

 private:
  int64_t next_ = 0;
  std::set<int64_t> ahead_;
};

}  // namespace

struct H5SampleWriter::Impl {
  std::string path, tmp;
  Options opt;
  Hid file, data, label;
  Hid trace_norm, sample_norm;  // Options::norm_stats
  int64_t pieces = 0;           // samples, or chunks of a record
  WrittenPieces written;        // under h5_mutex()
  bool done = false;            // committed, or the temporary file is gone
  struct Table {
    H5TableSpec spec;
    Hid dset, mtype;
    int64_t rows = 0;
  };
  std::map<std::string, Table> tables;  // under h5_mutex()
  struct ByteRows {
    Hid dset;
    int64_t cols = 0, rows = 0;
  };
  std::map<std::string, ByteRows> byte_rows;  // under h5_mutex()

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(path + ": " + problem); }

  Hid create_dset(const char* name, hid_t type) {
    // Gathers: [N, H, W] in chunks of one sample; a record: [T, W] in chunks of rows.
    const hsize_t dims3[3] = {static_cast<hsize_t>(opt.n), static_cast<hsize_t>(opt.height),
                              static_cast<hsize_t>(opt.width)};
    const hsize_t chunk3[3] = {1, dims3[1], dims3[2]};
    const hsize_t dims2[2] = {static_cast<hsize_t>(opt.height), static_cast<hsize_t>(opt.width)};
    const hsize_t chunk2[2] = {static_cast<hsize_t>(opt.record_chunk_rows), dims2[1]};
    const int rank = opt.record ? 2 : 3;
    Hid space(H5Screate_simple(rank, opt.record ? dims2 : dims3, nullptr));
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), rank, opt.record ? chunk2 : chunk3);
    H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    if (opt.gzip_level > 0) {
      H5Pset_deflate(dcpl.get(), static_cast<unsigned>(opt.gzip_level));
    } else {
      // All chunks allocated at creation, in sample order: sample i's bytes lie at a fixed offset
      // and a sequential read of the file is a sequential read of the samples (nothing is written
      // until write(), the file is sparse until then).
      H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    }
    Hid d(H5Dcreate2(file.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    if (!d.ok()) fail("cannot create /" + std::string(name) + " in " + tmp + ": " + h5_error());
    return d;
  }

  // /trace_norm [N, 2, W] float32 in chunks of one sample, /sample_norm [N, 2] float64 contiguous;
  // both allocated at creation (uncompressed), after /data and /label (where those are too: not
  // with gzip), so that the samples stay in order on disk.
  void create_norm_dsets() {
    const hsize_t tdims[3] = {static_cast<hsize_t>(opt.n), 2, static_cast<hsize_t>(opt.width)};
    const hsize_t tchunk[3] = {1, 2, tdims[2]};
    Hid tspace(H5Screate_simple(3, tdims, nullptr));
    Hid tdcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(tdcpl.get(), 3, tchunk);
    H5Pset_fill_time(tdcpl.get(), H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(tdcpl.get(), H5D_ALLOC_TIME_EARLY);
    trace_norm =
        Hid(H5Dcreate2(file.get(), "trace_norm", H5T_IEEE_F32LE, tspace.get(), H5P_DEFAULT, tdcpl.get(), H5P_DEFAULT));
    if (!trace_norm.ok()) fail("cannot create /trace_norm in " + tmp + ": " + h5_error());
    const hsize_t sdims[2] = {static_cast<hsize_t>(opt.n), 2};
    Hid sspace(H5Screate_simple(2, sdims, nullptr));
    Hid sdcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_fill_time(sdcpl.get(), H5D_FILL_TIME_NEVER);
    H5Pset_alloc_time(sdcpl.get(), H5D_ALLOC_TIME_EARLY);
    sample_norm =
        Hid(H5Dcreate2(file.get(), "sample_norm", H5T_IEEE_F64LE, sspace.get(), H5P_DEFAULT, sdcpl.get(), H5P_DEFAULT));
    if (!sample_norm.ok()) fail("cannot create /sample_norm in " + tmp + ": " + h5_error());
  }

  // Sample i's statistics, under h5_mutex(): `cols` its [2][W] per-trace ones.
  void write_norm(int64_t i, const std::vector<float>& cols, const double pair[2]) {
    const hsize_t off[3] = {static_cast<hsize_t>(i), 0, 0};
    const hsize_t start[2] = {static_cast<hsize_t>(i), 0}, cnt[2] = {1, 2};
    Hid fspace(H5Dget_space(sample_norm.get()));
    Hid mspace(H5Screate_simple(1, &cnt[1], nullptr));
    if (H5Dwrite_chunk(trace_norm.get(), H5P_DEFAULT, 0, off, cols.size() * sizeof(float), cols.data()) < 0 ||
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
        H5Dwrite(sample_norm.get(), H5T_NATIVE_DOUBLE, mspace.get(), fspace.get(), H5P_DEFAULT, pair) < 0) {
      fail("writing the normalisation statistics of sample " + std::to_string(i) + " to " + tmp + ": " + h5_error());
    }
  }

  void write_attribute(const std::string& name, hid_t ftype, hid_t mtype, const void* value) {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    SEIS_CHECK(!done, path << ": set_attribute after commit");
    if (H5Aexists(file.get(), name.c_str()) > 0) H5Adelete(file.get(), name.c_str());
    Hid space(H5Screate(H5S_SCALAR));
    Hid a(H5Acreate2(file.get(), name.c_str(), ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    if (!a.ok() || H5Awrite(a.get(), mtype, value) < 0) fail("cannot write attribute '" + name + "': " + h5_error());
  }

  // Closes every id and removes the temporary file. HDF5 1.10 frees a file's structures even when
  // closing it fails (its last flush cannot write: disk full, a file size limit) yet keeps the id
  // registered, and its shutdown at exit closes that id again: a segfault after a clean one-line
  // error (HDF5 PR #2291, fixed in 1.14.1). The file is discarded anyway, so its descriptor is
  // first pointed at an anonymous memory file where the closing writes cannot fail for want of
  // space. (Under a file size limit they still can: h5_mutex() disables HDF5's shutdown at exit
  // for that case.)
  void remove_tmp() {
    {
      std::lock_guard<std::mutex> lock(h5_mutex());
      h5_quiet();
      discard_writes();
      tables.clear();
      byte_rows.clear();
      data.reset();
      label.reset();
      trace_norm.reset();
      sample_norm.reset();
      file.reset();
      H5Eclear2(H5E_DEFAULT);
    }
    ::unlink(tmp.c_str());
    done = true;
  }

  // Points the sec2 driver's descriptor of `file` at a memfd (see remove_tmp); a no-op where that
  // is impossible.
  void discard_writes() {
    if (!file.ok()) return;
    Hid fapl(H5Fget_access_plist(file.get()));
    void* handle = nullptr;
    if (!fapl.ok() || H5Pget_driver(fapl.get()) != H5FD_SEC2 ||
        H5Fget_vfd_handle(file.get(), fapl.get(), &handle) < 0 || handle == nullptr) {
      H5Eclear2(H5E_DEFAULT);
      return;
    }
    const int sink = ::memfd_create("seisseg-discarded", MFD_CLOEXEC);
    if (sink < 0) return;
    // (dup3 closes the temporary file's descriptor, and with it HDF5's lock on the file.)
    ::dup3(sink, *static_cast<int*>(handle), O_CLOEXEC);
    ::close(sink);
  }
};

H5SampleWriter::H5SampleWriter(const std::string& path, const Options& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.tmp = path + ".tmp";
  m.opt = options;
  SEIS_CHECK((options.record || options.n > 0) && options.height > 0 && options.width > 0,
             path << ": bad shape [" << options.n << ", " << options.height << ", " << options.width << "]");
  SEIS_CHECK(!options.record || (options.record_chunk_rows > 0 && options.record_chunk_rows <= options.height),
             path << ": record chunk of " << options.record_chunk_rows << " rows for " << options.height);
  SEIS_CHECK(options.gzip_level >= 0 && options.gzip_level <= 9, "gzip level " << options.gzip_level);
  SEIS_CHECK(!options.data_f16 || !options.record, path << ": float16 records are not written");
  const int64_t chunk_rows = options.record ? options.record_chunk_rows : options.height;
  if (chunk_rows * options.width * (options.data_f16 ? 2 : 4) >= (int64_t{1} << 32)) {
    m.fail("a " + std::to_string(chunk_rows) + "x" + std::to_string(options.width) +
           (options.record ? " chunk" : " gather") + " exceeds HDF5's 4 GiB chunk limit");
  }
  // Probe with open() for a clear reason (no directory, no permission).
  const int fd = ::open(m.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) m.fail("cannot create " + m.tmp + ": " + std::strerror(errno));
  ::close(fd);
  try {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS));
    H5Pset_fapl_sec2(fapl.get());  // (the default, named: discard_writes relies on its descriptor)
    H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
    if (h5_align_chunks(fapl.get()) < 0) m.fail("cannot set the chunk alignment of " + m.tmp + ": " + h5_error());
    m.file = Hid(H5Fcreate(m.tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
    if (!m.file.ok()) m.fail("cannot create " + m.tmp + ": " + h5_error());
    if (options.data_f16) {
      Hid half(h5_ieee_half_le_type());
      m.data = m.create_dset(options.data_name.c_str(), half.get());
    } else {
      m.data = m.create_dset(options.data_name.c_str(), H5T_IEEE_F32LE);
    }
    if (options.with_label) m.label = m.create_dset(options.label_name.c_str(), H5T_STD_U8LE);
    if (options.norm_stats && !options.record) m.create_norm_dsets();
    m.pieces = options.record
                   ? options.height / options.record_chunk_rows + (options.height % options.record_chunk_rows != 0)
                   : options.n;
  } catch (...) {
    m.remove_tmp();
    throw;
  }
  try {
    if (options.dt > 0) set_attribute("dt", options.dt);
    if (options.dx > 0) set_attribute("dx", options.dx);
  } catch (...) {
    m.remove_tmp();  // (a constructor that throws runs no destructor)
    throw;
  }
}

H5SampleWriter::~H5SampleWriter() {
  if (!impl_->done) impl_->remove_tmp();
}

namespace {

// The bytes of one chunk as stored: `size` bytes at `src`, or their deflate stream in *z. It runs
// on the caller's thread, outside the HDF5 lock: the deflate filter's output is a plain zlib
// stream, so H5Dwrite_chunk can store what compress2 made.
struct Piece {
  const void* bytes;
  int64_t size;
};
Piece chunk_bytes(const std::string& path, int gzip_level, const void* src, int64_t size, std::vector<uint8_t>* z) {
  if (gzip_level == 0) return {src, size};
  uLongf len = compressBound(static_cast<uLong>(size));
  z->resize(len);
  const int rc = compress2(z->data(), &len, static_cast<const Bytef*>(src), static_cast<uLong>(size), gzip_level);
  SEIS_CHECK(rc == Z_OK, path << ": zlib compress2 failed with code " << rc);
  return {z->data(), static_cast<int64_t>(len)};
}

}  // namespace

bool H5SampleWriter::write(int64_t i, const float* data, const uint8_t* label) {
  Impl& m = *impl_;
  SEIS_CHECK(!m.opt.record, m.path << ": write() on a record; use write_rows()");
  SEIS_CHECK(i >= 0 && i < m.opt.n, m.path << ": write of sample " << i << ", out of range [0, " << m.opt.n << ")");
  SEIS_CHECK(data != nullptr && (label != nullptr || !m.opt.with_label), m.path << ": write: null data or label");
  const int64_t count = m.opt.height * m.opt.width;
  // float16: the values rounded, and the statistics taken of what a reader will decode (the rounded
  // values).
  thread_local std::vector<uint16_t> half;
  thread_local std::vector<float> decoded;
  const void* stored = data;
  const float* summed = data;
  if (m.opt.data_f16) {
    half.resize(static_cast<size_t>(count));
    decoded.resize(static_cast<size_t>(count));
    for (size_t k = 0; k < half.size(); ++k) {
      half[k] = float_to_half(data[k]);
      decoded[k] = half_to_float(half[k]);
    }
    stored = half.data();
    summed = decoded.data();
  }
  thread_local std::vector<uint8_t> zdata, zlabel;
  const Piece pd = chunk_bytes(m.path, m.opt.gzip_level, stored, count * (m.opt.data_f16 ? 2 : 4), &zdata);
  const Piece pl = m.opt.with_label ? chunk_bytes(m.path, m.opt.gzip_level, label, count, &zlabel) : Piece{nullptr, 0};
  // The statistics as a reader computes them from these values (the bytes of /trace_norm's chunk:
  // little-endian float32, as /data's).
  thread_local std::vector<float> cols;
  double pair[2] = {0, 0};
  bool finite = true;
  if (m.trace_norm.ok()) {
    GatherNormalizer::Stats ts, ss;
    finite = gather_norm_stats(m.opt.height, m.opt.width, summed, &ts, &ss);
    cols.assign(ts.col_mean.begin(), ts.col_mean.end());
    cols.insert(cols.end(), ts.col_inv.begin(), ts.col_inv.end());
    pair[0] = ss.mean;
    pair[1] = ss.inv;
  }

  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": write after commit");
  if (m.trace_norm.ok()) m.write_norm(i, cols, pair);
  const hsize_t off[3] = {static_cast<hsize_t>(i), 0, 0};
  if (H5Dwrite_chunk(m.data.get(), H5P_DEFAULT, 0, off, static_cast<size_t>(pd.size), pd.bytes) < 0 ||
      (m.opt.with_label &&
       H5Dwrite_chunk(m.label.get(), H5P_DEFAULT, 0, off, static_cast<size_t>(pl.size), pl.bytes) < 0)) {
    m.fail("writing sample " + std::to_string(i) + " to " + m.tmp + ": " + h5_error());
  }
  m.written.mark(i);
  return finite;
}

void H5SampleWriter::write_rows(int64_t t0, int64_t rows, const float* data, const uint8_t* label) {
  Impl& m = *impl_;
  const int64_t T = m.opt.height, W = m.opt.width, C = m.opt.record_chunk_rows;
  SEIS_CHECK(m.opt.record, m.path << ": write_rows() on a file of gathers; use write()");
  SEIS_CHECK(t0 >= 0 && t0 < T && t0 % C == 0 && rows == std::min(C, T - t0),
             m.path << ": write_rows(" << t0 << ", " << rows << ") with chunks of " << C << " rows of " << T);
  SEIS_CHECK(data != nullptr && (label != nullptr || !m.opt.with_label), m.path << ": write_rows: null data or label");
  // HDF5 stores the last, partial chunk at full size: pad it (the padding lies outside [T, W]).
  thread_local std::vector<float> pad_data;
  thread_local std::vector<uint8_t> pad_label;
  if (rows < C) {
    pad_data.assign(static_cast<size_t>(C * W), 0.0f);
    std::copy(data, data + rows * W, pad_data.begin());
    data = pad_data.data();
    if (m.opt.with_label) {
      pad_label.assign(static_cast<size_t>(C * W), 0);
      std::copy(label, label + rows * W, pad_label.begin());
      label = pad_label.data();
    }
  }
  const int64_t count = C * W;
  thread_local std::vector<uint8_t> zdata, zlabel;
  const Piece pd = chunk_bytes(m.path, m.opt.gzip_level, data, count * 4, &zdata);
  const Piece pl = m.opt.with_label ? chunk_bytes(m.path, m.opt.gzip_level, label, count, &zlabel) : Piece{nullptr, 0};

  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": write after commit");
  const hsize_t off[2] = {static_cast<hsize_t>(t0), 0};
  if (H5Dwrite_chunk(m.data.get(), H5P_DEFAULT, 0, off, static_cast<size_t>(pd.size), pd.bytes) < 0 ||
      (m.opt.with_label &&
       H5Dwrite_chunk(m.label.get(), H5P_DEFAULT, 0, off, static_cast<size_t>(pl.size), pl.bytes) < 0)) {
    m.fail("writing rows " + std::to_string(t0) + ".." + std::to_string(t0 + rows) + " to " + m.tmp + ": " +
           h5_error());
  }
  m.written.mark(t0 / C);
}

void H5SampleWriter::add_table(const H5TableSpec& spec, int64_t chunk_rows) {
  Impl& m = *impl_;
  SEIS_CHECK(chunk_rows > 0 && !spec.fields.empty(), m.path << ": table " << spec.name);
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done && m.tables.count(spec.name) == 0, m.path << ": add_table " << spec.name);
  const hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {static_cast<hsize_t>(chunk_rows)};
  Hid space(H5Screate_simple(1, dims, maxdims));
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.get(), 1, chunk);
  Hid ftype = h5_table_type(spec, true);
  Impl::Table t;
  t.spec = spec;
  t.mtype = h5_table_type(spec, false);
  t.dset =
      Hid(H5Dcreate2(m.file.get(), spec.name.c_str(), ftype.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!t.dset.ok()) m.fail("cannot create /" + spec.name + " in " + m.tmp + ": " + h5_error());
  m.tables.emplace(spec.name, std::move(t));
}

void H5SampleWriter::append_rows(const std::string& table, const void* rows, int64_t count) {
  Impl& m = *impl_;
  SEIS_CHECK(count >= 0 && (rows != nullptr || count == 0), m.path << ": append_rows " << table);
  if (count == 0) return;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": append_rows after commit");
  auto it = m.tables.find(table);
  SEIS_CHECK(it != m.tables.end(), m.path << ": append_rows to /" << table << ", never added");
  Impl::Table& t = it->second;
  const hsize_t size[1] = {static_cast<hsize_t>(t.rows + count)};
  const hsize_t start[1] = {static_cast<hsize_t>(t.rows)}, cnt[1] = {static_cast<hsize_t>(count)};
  Hid mspace(H5Screate_simple(1, cnt, nullptr));
  bool ok = H5Dset_extent(t.dset.get(), size) >= 0;
  Hid fspace(ok ? H5Dget_space(t.dset.get()) : -1);
  ok = ok && fspace.ok() && H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) >= 0 &&
       H5Dwrite(t.dset.get(), t.mtype.get(), mspace.get(), fspace.get(), H5P_DEFAULT, rows) >= 0;
  if (!ok) m.fail("appending " + std::to_string(count) + " rows to /" + table + " in " + m.tmp + ": " + h5_error());
  t.rows += count;
}

void H5SampleWriter::write_bytes(const std::string& name, const uint8_t* bytes, int64_t length) {
  Impl& m = *impl_;
  SEIS_CHECK(length > 0 && bytes != nullptr, m.path << ": write_bytes " << name);
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": write_bytes after commit");
  const hsize_t dims[1] = {static_cast<hsize_t>(length)};
  Hid space(H5Screate_simple(1, dims, nullptr));
  Hid d(H5Dcreate2(m.file.get(), name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!d.ok() || H5Dwrite(d.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0) {
    m.fail("cannot write /" + name + " to " + m.tmp + ": " + h5_error());
  }
}

void H5SampleWriter::add_byte_rows(const std::string& name, int64_t cols, int64_t chunk_rows) {
  Impl& m = *impl_;
  SEIS_CHECK(cols > 0 && chunk_rows > 0, m.path << ": add_byte_rows " << name);
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done && m.byte_rows.count(name) == 0, m.path << ": add_byte_rows " << name);
  const hsize_t dims[2] = {0, static_cast<hsize_t>(cols)}, maxdims[2] = {H5S_UNLIMITED, static_cast<hsize_t>(cols)};
  const hsize_t chunk[2] = {static_cast<hsize_t>(chunk_rows), static_cast<hsize_t>(cols)};
  Hid space(H5Screate_simple(2, dims, maxdims));
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_chunk(dcpl.get(), 2, chunk);
  Impl::ByteRows b;
  b.cols = cols;
  b.dset = Hid(H5Dcreate2(m.file.get(), name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
  if (!b.dset.ok()) m.fail("cannot create /" + name + " in " + m.tmp + ": " + h5_error());
  m.byte_rows.emplace(name, std::move(b));
}

void H5SampleWriter::append_byte_rows(const std::string& name, const uint8_t* rows, int64_t count) {
  Impl& m = *impl_;
  SEIS_CHECK(count >= 0 && (rows != nullptr || count == 0), m.path << ": append_byte_rows " << name);
  if (count == 0) return;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": append_byte_rows after commit");
  auto it = m.byte_rows.find(name);
  SEIS_CHECK(it != m.byte_rows.end(), m.path << ": append_byte_rows to /" << name << ", never added");
  Impl::ByteRows& b = it->second;
  const hsize_t size[2] = {static_cast<hsize_t>(b.rows + count), static_cast<hsize_t>(b.cols)};
  const hsize_t start[2] = {static_cast<hsize_t>(b.rows), 0};
  const hsize_t cnt[2] = {static_cast<hsize_t>(count), static_cast<hsize_t>(b.cols)};
  Hid mspace(H5Screate_simple(2, cnt, nullptr));
  bool ok = H5Dset_extent(b.dset.get(), size) >= 0;
  Hid fspace(ok ? H5Dget_space(b.dset.get()) : -1);
  ok = ok && fspace.ok() && H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, cnt, nullptr) >= 0 &&
       H5Dwrite(b.dset.get(), H5T_NATIVE_UINT8, mspace.get(), fspace.get(), H5P_DEFAULT, rows) >= 0;
  if (!ok) m.fail("appending " + std::to_string(count) + " rows to /" + name + " in " + m.tmp + ": " + h5_error());
  b.rows += count;
}

H5CopyResult H5SampleWriter::copy_root_from(const std::string& src, const std::set<std::string>& except,
                                            const std::set<std::string>& attributes_of) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(h5_mutex());
  h5_quiet();
  SEIS_CHECK(!m.done, m.path << ": copy_root_from after commit");
  int64_t bytes = 0;
  const Hid file = h5_open_readonly(src, &bytes);
  return h5_copy_root(file.get(), src, m.file.get(), m.tmp, except, attributes_of);
}

void H5SampleWriter::set_attribute(const std::string& name, const std::string& value) {
  Hid t;
  {
    std::lock_guard<std::mutex> lock(h5_mutex());
    t = Hid(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
  }
  const char* p = value.c_str();
  impl_->write_attribute(name, t.get(), t.get(), &p);
  std::lock_guard<std::mutex> lock(h5_mutex());
  t.reset();
}

void H5SampleWriter::set_attribute(const std::string& name, double value) {
  impl_->write_attribute(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void H5SampleWriter::set_int_attribute(const std::string& name, int64_t value) {
  impl_->write_attribute(name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void H5SampleWriter::commit() {
  Impl& m = *impl_;
  std::string flush_error;
  {
    std::lock_guard<std::mutex> lock(h5_mutex());
    h5_quiet();
    SEIS_CHECK(!m.done, m.path << ": commit twice");
    const int64_t missing = m.written.first_missing();
    SEIS_CHECK(missing >= m.pieces,
               m.path << ": commit with " << (m.opt.record ? "chunk " : "sample ") << missing << " never written");
    // Everything that can fail to write is written here, where a failure still leaves the file
    // open for remove_tmp to discard: a failed H5Fclose cannot be undone (see remove_tmp).
    if (H5Fflush(m.file.get(), H5F_SCOPE_LOCAL) < 0) flush_error = h5_error();
    if (flush_error.empty()) {
      m.tables.clear();
      m.byte_rows.clear();
      m.data.reset();
      m.label.reset();
      m.trace_norm.reset();
      m.sample_norm.reset();
      if (H5Fclose(m.file.release()) < 0) {
        const std::string err = h5_error();
        ::unlink(m.tmp.c_str());
        m.done = true;
        m.fail("finishing " + m.tmp + " failed: " + err);
      }
    }
  }
  if (!flush_error.empty()) {
    m.remove_tmp();
    m.fail("finishing " + m.tmp + " failed: " + flush_error);
  }
  m.done = true;  // (closed: commit_atomic removes the temporary file itself when it fails)
  commit_atomic(m.tmp, m.path);
}

}  // namespace seis
