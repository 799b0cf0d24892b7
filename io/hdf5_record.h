// A continuous record (DESIGN.md, "Data"): /data float32 (float16 accepted) [T, W] (rank 2, T time
// samples, W receivers), any chunking; optional /label [T, W] (uint8, or float 0/1); root
// attributes dt (s), dx (m), optionally start_time (ISO-8601 UTC). A record may be far larger than
// memory: it is read by hyperslab windows of rows, never whole.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/hdf5_dataset.h"
#include "io/sample_source.h"

namespace seis {

struct H5RecordInfo {
  std::string path;
  int64_t samples = 0, receivers = 0;  // T, W
  H5ElemType data_type = H5ElemType::none;
  H5ElemType label_type = H5ElemType::none;      // none: no /label
  std::vector<int64_t> data_chunk, label_chunk;  // chunk shapes; empty when contiguous
  std::string data_filters, label_filters;       // "" when uncompressed
  int64_t file_bytes = 0;
  double dt = 0, dx = 0;                          // 0 when absent
  std::string start_time;                         // "" when absent
  std::map<std::string, std::string> attributes;  // every root attribute, as text
};

// True when `path` opens as HDF5 and its /data has rank 2: a continuous record. False otherwise,
// also when it cannot be opened (H5SampleFile then says why).
bool h5_is_record(const std::string& path);

// One continuous record, opened and validated. InputError naming the file and the problem: not
// found, not HDF5, no /data, /data not rank 2 or not float32/float16, /label of another shape or
// type, an empty record.
//
// As a SampleSource (io/sample_source.h) it is one sample of T rows x W receivers, read by windows
// of rows (read_window(0, ...), the hyperslab read_rows below); read(0, ...) would read it whole.
class H5RecordFile : public SampleSource {
 public:
  explicit H5RecordFile(const std::string& path);
  ~H5RecordFile() override;
  H5RecordFile(const H5RecordFile&) = delete;
  H5RecordFile& operator=(const H5RecordFile&) = delete;

  const H5RecordInfo& info() const;

  // Rows [t0, t0 + rows) into data [rows][W] (float16 converted) and, when label is not null and
  // the record has one, label [rows][W] (float labels: nonzero = 1). Thread-safe (serialised).
  void read_rows(int64_t t0, int64_t rows, float* data, uint8_t* label) const;
  using SampleSource::read_rows;  // (the row-block read of a whole sample, from the interface)

  int64_t size() const override { return 1; }
  int64_t height() const override { return info().samples; }
  int64_t width() const override { return info().receivers; }
  bool has_label() const override { return info().label_type != H5ElemType::none; }
  void read(int64_t i, float* data, uint8_t* label) const override;
  void read_window(int64_t i, int64_t t0, int64_t rows, float* data, uint8_t* label) const override;
  std::string describe(int64_t) const override { return info().path; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seis
