// The HDF5 dataset format (DESIGN.md, "Data"): /data float32 (float16 accepted) [N, H, W], one
// gather per sample (H time samples, W receivers); /label uint8 [N, H, W] (float 0/1 accepted;
// absent = data for prediction only); chunked one sample per chunk; attributes dt (s), dx (m) and,
// for synthetic sets, the generator's parameters. Every file is readable by h5py.
// A continuous record has a rank-2 /data [T, W] instead (io/hdf5_record.h reads it); tables such
// as the generator's /picks and /events are 1-D compound datasets (io/hdf5_table.h).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "io/hdf5_table.h"
#include "io/sample_source.h"

namespace seis {

enum class H5ElemType { none, f32, f16, f64, u8 };  // f64: labels only
const char* h5_elem_name(H5ElemType t);

struct H5DatasetInfo {
  std::string path;
  int64_t n = 0, height = 0, width = 0;
  H5ElemType data_type = H5ElemType::none;
  H5ElemType label_type = H5ElemType::none;  // none: no /label
  bool has_trace_valid = false;              // /trace_valid u8 [N, W] (a converted SEG-Y with padding)
  // Stored normalisation statistics (GatherNormalizer's, io/normalize.h): /trace_norm float32
  // [N, 2, W] (each trace's mean, then its inverse RMS deviation, 0 for a dead trace) and
  // /sample_norm float64 [N, 2] (the gather's mean and inverse deviation).
  bool has_trace_norm = false, has_sample_norm = false;
  // The stored statistics are read with pread (little-endian, every sample's contiguous or in a chunk
  // of its own, uncompressed), outside HDF5's lock; else through the library.
  bool trace_norm_direct = false, sample_norm_direct = false;
  bool data_chunked_per_sample = false;  // chunk shape [1, H, W]
  std::string data_filters;              // "" when uncompressed, else e.g. "deflate(4)"
  std::string label_filters;
  std::vector<int64_t> data_chunk, label_chunk;    // chunk shapes; empty when contiguous
  bool data_direct = false, label_direct = false;  // read() uses pread (no HDF5 call) for them
  // Read with pread, and every sample's bytes start on 4 KiB (as synth and convert lay chunks out):
  // direct reads can land them straight in the reader's slots (H5SampleFile::use_direct_reads).
  bool data_aligned = false, label_aligned = false;
  int64_t file_bytes = 0;
  double dt = 0, dx = 0;                          // 0 when absent
  std::map<std::string, std::string> attributes;  // every root attribute, as text
};

// Whether the file at `path` carries HDF5's signature (at byte 0, 512, 1024, 2048, ...: where the
// format allows a superblock after a user block); false for a file that cannot be read.
bool has_hdf5_signature(const std::string& path);

// One dataset file, opened and validated: a SampleSource of its N gathers. Throws InputError naming
// the file and the problem: not found, a directory, not HDF5, no /data, wrong rank or dtype, /label
// of another shape, an empty dataset, a truncated file, /trace_valid that is not [N, W] of 1-byte
// integers, /trace_norm that is not [N, 2, W] of float32, /sample_norm that is not [N, 2] of float64.
class H5SampleFile : public SampleSource {
 public:
  explicit H5SampleFile(const std::string& path);
  ~H5SampleFile() override;
  H5SampleFile(const H5SampleFile&) = delete;
  H5SampleFile& operator=(const H5SampleFile&) = delete;

  const H5DatasetInfo& info() const;
  int64_t size() const override { return info().n; }
  int64_t height() const override { return info().height; }
  int64_t width() const override { return info().width; }
  bool has_label() const override { return info().label_type != H5ElemType::none; }
  bool has_trace_valid() const override { return info().has_trace_valid; }
  std::string describe(int64_t i) const override;  // "path sample i"

  // Reads sample i: data as float32 [H*W] (float16 converted), label as u8 [H*W] (float labels
  // converted, nonzero = 1) when label is not null and the file has labels. Thread-safe.
  // Uncompressed chunks are read with pread at offsets found once at open (outside HDF5's global
  // lock); compressed ones through the library. InputError naming the file and the sample when
  // the read fails (e.g. a chunk past the end of a truncated file). Does not check values.
  void read(int64_t i, float* data, uint8_t* label) const override;
  // Reads which traces of sample i are real: u8 [W], 1 = a real trace, 0 = padding (/trace_valid,
  // nonzero = 1); all 1 when the file has no /trace_valid. Thread-safe (through the library).
  void read_trace_valid(int64_t i, uint8_t* valid) const override;
  // The stored statistics of sample i for `mode` (/trace_norm or /sample_norm): false when the file
  // has none. Thread-safe (through the library: 8 W bytes per sample per trace, 16 per sample).
  bool stored_norm_stats(int64_t i, Normalize mode, GatherNormalizer::Stats* stats) const override;

  // The byte count read() moves from the file per sample (for throughput figures).
  int64_t bytes_per_sample() const;
  int64_t bytes_per_sample(int64_t) const override { return bytes_per_sample(); }

  // read(), with /data in blocks of whole rows (about 256 KiB each): ready(r0, r1, rows) runs on the
  // calling thread as soon as rows [r0, r1) of data are read, in order, so the caller can check and
  // sum them while they are still in cache; then the label is read. RowBlocks::at_start reads every
  // block to the start of data (SampleSource::read_rows). Compressed and other library-read samples
  // come whole, in place: one call, (0, H, data). Labels read with pread come in blocks of about
  // 256 KiB too (label_ready); others whole. Thread-safe.
  void read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                 const LabelRowsReady& label_ready) const override;

  // The file byte ranges read() preads for sample i (data, then label); empty where the library
  // reads (compressed chunks and the like).
  struct Extent {
    int64_t offset = 0, bytes = 0;
  };
  std::vector<Extent> direct_extents(int64_t i) const;
  // Tells the kernel that sample i will be read soon (posix_fadvise WILLNEED on its extents): the
  // read starts in the background. A no-op for library-read samples.
  void will_need(int64_t i) const override;
  // read_rows then reads /data and u8 /label where they are read with pread (data_direct,
  // label_direct) with O_DIRECT instead (io/direct_read.h: I/O blocks of about 4 MiB aligned to
  // 4 KiB in the file, two in flight), each block of rows handed over as before: read straight to
  // its place where the rows stay in place (RowBlocks::in_place, float32 data or u8 labels) and both
  // the sample's chunk in the file and its place in memory are 4 KiB-aligned (the writer aligns
  // chunks of 64 KiB and more: h5_align_chunks, io/hdf5_util.h; the reader's slots start on a page,
  // and so does each sample's place in them where H x W x 4 is a multiple of 4 KiB), else into
  // 4 KiB-aligned buffers of each thread and copied (float16 decoded) from
  // there; and will_need leaves those bytes out (the stored statistics, and labels of other types,
  // are still hinted and read through the page cache). On a file system that refuses O_DIRECT the
  // reads stay as they were (for good); when a descriptor cannot be had for another reason (none
  // left), for that read. read() is unchanged.
  // into_place false: always through the threads' buffers (a benchmark's peer).
  void use_direct_reads(bool on, bool into_place) const override;
  bool direct_reads() const;  // on, and not refused by the file system
  // Bytes read with O_DIRECT straight to their places (no copy) since the file was opened.
  int64_t direct_bytes_in_place() const;
  // The memory each thread that reads with O_DIRECT holds for good, for gathers `width` traces wide.
  static int64_t direct_read_thread_bytes(int64_t width);

  // Closes the descriptor and HDF5 ids reads use (after a read in progress has finished); the
  // next read reopens them, and fails with an InputError if the path no longer is the file that
  // was opened. For sets of more files than may be open at once. Thread-safe.
  void close_handles() const;
  bool handles_open() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What H5SampleWriter::copy_root_from carried over from another file.
struct H5CopyResult {
  std::vector<std::string> objects;     // root links copied, in name order
  std::vector<std::string> attributes;  // root attributes copied, in name order
  // What could not be carried over, one "what: why" each (an attribute holding object references,
  // which would point into the other file; a link of a user-defined class).
  std::vector<std::string> skipped;
};

// Writes a dataset file of N samples, one chunk per sample, to path + ".tmp"; commit() makes it
// durable and renames it into place (commit_atomic, engine/file_io.h). Destroyed without commit()
// (or when commit() fails), it discards the temporary file and closes every HDF5 id it opened, also
// when the file cannot be written any more (disk full), so nothing half-written is ever left under
// `path`. write() is thread-safe and may come
// in any order; what was written is tracked in memory that grows with how far out of order the
// pieces come, not with N.
//
// With Options::record, the file is one continuous record instead: /data and /label are
// [height, width] = [T, W], chunked [record_chunk_rows, W]; write_rows() fills one chunk of rows at
// a time (thread-safe, any order) and n is unused.
class H5SampleWriter {
 public:
  struct Options {
    int64_t n = 0, height = 0, width = 0;
    bool record = false;
    int64_t record_chunk_rows = 0;  // record only: rows per chunk, 1..height
    bool with_label = true;
    // Gathers only: also /trace_norm and /sample_norm, computed from each sample's data by write()
    // (gather_norm_stats), so that a reader normalises its first epoch as it reads.
    bool norm_stats = false;
    // Gathers only: /data as float16 (h5py's little-endian IEEE binary16) instead of float32; write()
    // rounds each value to the nearest float16 (ties to even: exact for values read from float16),
    // and the statistics are those of the rounded values, as a reader computes them.
    bool data_f16 = false;
    int gzip_level = 0;     // 0: uncompressed (the fast path for readers)
    double dt = 0, dx = 0;  // written as attributes when > 0
    // Dataset names: predictions are written as /prob (f32) and /mask (u8) with the same layout.
    std::string data_name = "data", label_name = "label";
  };
  H5SampleWriter(const std::string& path, const Options& options);
  ~H5SampleWriter();
  H5SampleWriter(const H5SampleWriter&) = delete;
  H5SampleWriter& operator=(const H5SampleWriter&) = delete;

  // Sample i (any order, each once). Returns whether every data value is finite, where the writer
  // computes statistics (norm_stats), which tell it at no extra pass; true otherwise.
  bool write(int64_t i, const float* data, const uint8_t* label);
  // Record only: rows [t0, t0 + rows) as [rows][W], t0 a multiple of the chunk rows and rows the
  // chunk rows (fewer only for the last chunk).
  void write_rows(int64_t t0, int64_t rows, const float* data, const uint8_t* label);
  // A table (1-D compound dataset, chunked and extendible, chunk_rows rows per chunk), empty until
  // append_rows(spec.name, ...) adds rows at its end. append_rows is thread-safe; callers that
  // need an order (the generator's gather order) append in that order.
  void add_table(const H5TableSpec& spec, int64_t chunk_rows = 4096);
  void append_rows(const std::string& table, const void* rows, int64_t count);
  // Raw bytes (uint8), e.g. SEG-Y headers: write_bytes stores a 1-D [length] dataset at once;
  // add_byte_rows makes a 2-D [rows, cols] one, chunked and extendible, empty until
  // append_byte_rows(name, ...) adds rows at its end (thread-safe, in call order).
  void write_bytes(const std::string& name, const uint8_t* bytes, int64_t length);
  void add_byte_rows(const std::string& name, int64_t cols, int64_t chunk_rows);
  void append_byte_rows(const std::string& name, const uint8_t* rows, int64_t count);
  // Copies into this file everything under the root of the HDF5 file `src` but the links named in
  // `except` (h5_copy_root, io/hdf5_copy.h: datasets and groups as they are, links, root
  // attributes), after the gathers' datasets, which were created first; and the attributes of the
  // objects named in `attributes_of` onto this file's objects of the same names (e.g. /data's
  // units). InputError naming the file and the object when one cannot be read or written.
  H5CopyResult copy_root_from(const std::string& src, const std::set<std::string>& except,
                              const std::set<std::string>& attributes_of = {});
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, double value);
  void set_int_attribute(const std::string& name, int64_t value);  // (a separate name: no int/double ambiguity)
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seis
