// What detect runs over: one continuous record /data [T, W] (read by hyperslab windows, never whole)
// or a file of gathers /data [N, H, W] (one gather in memory at a time), both a SampleSource
// (io/sample_source.h): gathers g = 0..N-1 of rows() x width() samples each (a record is one gather
// of T rows, H5RecordFile). Values are checked as they are read: a NaN or Inf is an InputError
// naming the file, gather, sample and receiver. A gathers file converted from SEG-Y also brings its
// trace headers and padding (io/segy_headers.h), loaded for the current gather by begin().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/hdf5_dataset.h"
#include "io/hdf5_record.h"
#include "io/sample_source.h"
#include "io/segy_headers.h"

namespace seis {

class DetectInput {
 public:
  // InputError naming the file when it is neither, or when dt is missing or not positive.
  explicit DetectInput(const std::string& path);

  bool record() const { return record_; }
  int64_t gathers() const { return gathers_; }
  int64_t rows() const { return rows_; }
  int64_t width() const { return width_; }
  double dt() const { return dt_; }
  double dx() const { return dx_; }                              // 0 when unknown
  const std::string& start_time() const { return start_time_; }  // "" when absent
  // The SEG-Y headers of a gathers file (nullptr for a record); those of the current gather after
  // begin(). segy()->has_table(): trace identity; has_padding(): padding traces to ignore.
  const SegyHeadersFile* segy() const { return segy_.get(); }

  // Selects gather g (reads it whole for a gathers file).
  void begin(int64_t g);
  // Rows [t0, t0 + rows) of the current gather into dst [rows][W]. Thread-safe against itself
  // for disjoint calls that begin() does not interleave.
  void read(int64_t t0, int64_t rows, float* dst) const;

 private:
  std::string path_;
  std::unique_ptr<SampleSource> source_;  // an H5RecordFile or an H5SampleFile
  bool record_ = false;
  std::unique_ptr<SegyHeadersFile> segy_;
  std::vector<float> gather_;
  int64_t gathers_ = 0, rows_ = 0, width_ = 0, current_ = 0;
  double dt_ = 0, dx_ = 0;
  std::string start_time_;
};

}  // namespace seis
