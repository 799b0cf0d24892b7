// One dataset made of several HDF5 sample files (DESIGN.md, "Data"), a SampleSource
// (io/sample_source.h): global sample index g maps to (file f, local index g - first[f]) in the
// order the files were given. Every file must share H, W and label presence. Also the
// deterministic train/validation split of a set's indices.
//
// Open files. A set may hold thousands of files: at most max_open_files of them keep their
// descriptor (and HDF5 ids) open between reads, the least recently read closed first, plus those
// being read at the moment (at most one per reading thread); with direct reads (use_direct_reads)
// an open file holds a second descriptor, opened with O_DIRECT. Each file's metadata and chunk offsets
// stay in memory (8 bytes per sample), so a reopen is one open(2), checked to be the same file.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/hdf5_dataset.h"
#include "io/sample_source.h"

namespace seis {

class SampleSet : public SampleSource {
 public:
  static constexpr int kDefaultMaxOpenFiles = 64;
  // Opens and validates every file (H5SampleFile's checks). InputError naming the odd file when
  // its H, W or label presence differs from the first file's; UsageError when `paths` is empty or
  // max_open_files < 1.
  explicit SampleSet(const std::vector<std::string>& paths, int max_open_files = kDefaultMaxOpenFiles);
  ~SampleSet() override;
  SampleSet(const SampleSet&) = delete;
  SampleSet& operator=(const SampleSet&) = delete;

  int64_t size() const override { return total_; }
  int64_t height() const override { return height_; }
  int64_t width() const override { return width_; }
  bool has_label() const override { return has_label_; }
  // Some file has /trace_valid (padding traces of a converted SEG-Y); files without it are all real.
  bool has_trace_valid() const override { return has_trace_valid_; }
  int num_files() const { return static_cast<int>(files_.size()); }
  const H5SampleFile& file(int f) const { return *files_[static_cast<size_t>(f)]; }

  struct Location {
    int file = 0;
    int64_t local = 0;
  };
  // Where global sample g lives. Error (internal) when g is out of range.
  Location locate(int64_t g) const;
  // Reads global sample g (thread-safe; see H5SampleFile::read). label may be null.
  void read(int64_t g, float* data, uint8_t* label) const override;
  // The same in blocks of rows (H5SampleFile::read_rows).
  void read_rows(int64_t g, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                 const LabelRowsReady& label_ready) const override;
  // Starts reading sample g into the page cache in the background (H5SampleFile::will_need).
  void will_need(int64_t g) const override;
  // Every file's (H5SampleFile::use_direct_reads).
  void use_direct_reads(bool on, bool into_place) const override;
  int max_open_files() const { return max_open_; }
  int open_files() const;  // files whose descriptors are open now
  // Which of sample g's W traces are real (u8 [W], 1 real, 0 padding; H5SampleFile::read_trace_valid).
  void read_trace_valid(int64_t g, uint8_t* valid) const override;
  // Sample g's stored normalisation statistics (H5SampleFile::stored_norm_stats).
  bool stored_norm_stats(int64_t g, Normalize mode, GatherNormalizer::Stats* stats) const override;
  // Bytes read() moves from the file of sample g.
  int64_t bytes_per_sample(int64_t g) const override;
  // "path sample i" (local index), for error messages.
  std::string describe(int64_t g) const override;

 private:
  // The file of sample g, marked most recently used; files over the limit are closed.
  const H5SampleFile& use(int f) const;
  // After a read of file f: closes it again when it left the open list during the read.
  void done(int f) const;

  std::vector<std::unique_ptr<H5SampleFile>> files_;
  int max_open_ = kDefaultMaxOpenFiles;
  mutable std::mutex lru_mu_;
  mutable std::list<int> lru_;                           // open files, most recently used first
  mutable std::vector<std::list<int>::iterator> where_;  // each file's place in lru_, or lru_.end()
  std::vector<int64_t> first_;  // global index of each file's sample 0, plus the total at the end
  int64_t total_ = 0, height_ = 0, width_ = 0;
  bool has_label_ = false;
  bool has_trace_valid_ = false;
};

// A deterministic, disjoint split of 0..n-1: `val` holds round(n * fraction) indices (at least one
// when fraction > 0) drawn by a permutation seeded by `seed`; `train` holds the rest. Both sorted.
// UsageError when fraction is outside [0, 1) or when the split leaves no training sample.
struct IndexSplit {
  std::vector<int64_t> train, val;
};
IndexSplit split_validation(int64_t n, double fraction, uint64_t seed);

}  // namespace seis
