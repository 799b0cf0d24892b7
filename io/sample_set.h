// One dataset made of several HDF5 sample files (DESIGN.md, "Data"): global sample index g maps to
// (file f, local index g - first[f]) in the order the files were given. Every file must share H, W
// and label presence. Also the deterministic train/validation split of a set's indices.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/hdf5_dataset.h"

namespace seis {

class SampleSet {
 public:
  // Opens and validates every file (H5SampleFile's checks). InputError naming the odd file when
  // its H, W or label presence differs from the first file's; UsageError when `paths` is empty.
  explicit SampleSet(const std::vector<std::string>& paths);
  ~SampleSet();
  SampleSet(const SampleSet&) = delete;
  SampleSet& operator=(const SampleSet&) = delete;

  int64_t size() const { return total_; }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  bool has_label() const { return has_label_; }
  int num_files() const { return static_cast<int>(files_.size()); }
  const H5SampleFile& file(int f) const { return *files_[static_cast<size_t>(f)]; }

  struct Location {
    int file = 0;
    int64_t local = 0;
  };
  // Where global sample g lives. Error (internal) when g is out of range.
  Location locate(int64_t g) const;
  // Reads global sample g (thread-safe; see H5SampleFile::read). label may be null.
  void read(int64_t g, float* data, uint8_t* label) const;
  // Bytes read() moves from the file of sample g.
  int64_t bytes_per_sample(int64_t g) const;
  // "path sample i" (local index), for error messages.
  std::string describe(int64_t g) const;

 private:
  std::vector<std::unique_ptr<H5SampleFile>> files_;
  std::vector<int64_t> first_;  // global index of each file's sample 0, plus the total at the end
  int64_t total_ = 0, height_ = 0, width_ = 0;
  bool has_label_ = false;
};

// A deterministic, disjoint split of 0..n-1: `val` holds round(n * fraction) indices (at least one
// when fraction > 0) drawn by a permutation seeded by `seed`; `train` holds the rest. Both sorted.
// UsageError when fraction is outside [0, 1) or when the split leaves no training sample.
struct IndexSplit {
  std::vector<int64_t> train, val;
};
IndexSplit split_validation(int64_t n, double fraction, uint64_t seed);

}  // namespace seis
