// Samples by index: the one interface through which training, validation, prediction and detection
// get their data. Sample i is data [H][W] float32 (H time samples x W receivers) and, when the
// source has labels, label [H][W] u8 (1 = event arrival). Every read is const and thread-safe
// (SampleReader reads from several threads).
//
// The sources: an HDF5 file of gathers (H5SampleFile, io/hdf5_dataset.h), a dataset of many such
// files (SampleSet, io/sample_set.h), a continuous record (H5RecordFile, io/hdf5_record.h: one
// sample of T rows, read by windows of rows, never whole), and a list of another source's samples
// (SampleSubset, below: a validation split).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/normalize.h"

namespace seis {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual int64_t size() const = 0;
  virtual int64_t height() const = 0;
  virtual int64_t width() const = 0;
  virtual bool has_label() const = 0;
  // Reads sample i: data [H*W]; label [H*W] when label is not null and the source has labels (else
  // label is left as it is).
  virtual void read(int64_t i, float* data, uint8_t* label) const = 0;

  // Gathers with padding traces (a converted SEG-Y's /trace_valid): read_trace_valid gives u8 [W],
  // 1 = a real trace, 0 = padding, which the loss and the metrics leave out. Default: none, all 1.
  virtual bool has_trace_valid() const { return false; }
  virtual void read_trace_valid(int64_t i, uint8_t* valid) const;

  // Normalisation statistics of sample i for `mode` stored with the data (a file's /trace_norm or
  // /sample_norm), into *stats: false when there are none. Not checked against the data here: the
  // reader checks them against its own sums of the rows it normalised with them, and reads the
  // sample again when they differ. Default: none.
  virtual bool stored_norm_stats(int64_t, Normalize, GatherNormalizer::Stats*) const { return false; }

  // read(), with data handed over in blocks of whole rows: ready(r0, r1, rows) runs on the calling
  // thread as soon as rows [r0, r1) are read, in order, with `rows` pointing at row r0; then the
  // label is read. Where the rows go in data [H][W]:
  //   RowBlocks::in_place: each at its own row (rows = data + r0 * W), so that data ends up as read();
  //   RowBlocks::at_start: each block may instead be read to the start of data, over the block
  //     before it, for a caller that moves every block elsewhere before ready() returns: the blocks
  //     then stay in cache. data must still hold H rows (a source that reads whole puts them in place).
  // label_ready (may be empty): when the label is read, label_ready(r0, r1, label + r0 * W) as its
  // rows [r0, r1) arrive, in order, each at its own row (after every data row).
  // Default: read(), then ready(0, H, data) and label_ready(0, H, label).
  enum class RowBlocks { in_place, at_start };
  using RowsReady = std::function<void(int64_t row0, int64_t row1, float* rows)>;
  using LabelRowsReady = std::function<void(int64_t row0, int64_t row1, uint8_t* rows)>;
  virtual void read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                         const LabelRowsReady& label_ready) const;

  // Rows [t0, t0 + rows) of sample i into data [rows][W] (and label [rows][W], as read() does): for
  // samples too large to hold whole (a continuous record). Default: read() whole, then the rows.
  virtual void read_window(int64_t i, int64_t t0, int64_t rows, float* data, uint8_t* label) const;

  // A hint that sample i will be read soon (the read may start in the background). Default: none.
  virtual void will_need(int64_t) const {}
  // From now on, read_rows reads around the page cache (O_DIRECT) where the storage allows it, and
  // will_need no longer asks for what it reads so (SampleReaderOptions::direct_io). For a stream
  // larger than memory, whose bytes the page cache could not keep for the next epoch anyway.
  // Thread-safe. Default: a no-op.
  // into_place: straight into the caller's memory where the alignment allows (no copy).
  virtual void use_direct_reads(bool, bool) const {}
  // Bytes read() moves from storage for sample i (for throughput figures). Default: H*W floats,
  // plus H*W bytes with labels.
  virtual int64_t bytes_per_sample(int64_t i) const;
  // Where sample i comes from, for error messages. Default: "sample i".
  virtual std::string describe(int64_t i) const;
};

// Samples indices[0], indices[1], ... of `source` as samples 0, 1, ... (e.g. a validation split).
// `source` must outlive it.
class SampleSubset : public SampleSource {
 public:
  SampleSubset(const SampleSource& source, std::vector<int64_t> indices)
      : source_(source), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t height() const override { return source_.height(); }
  int64_t width() const override { return source_.width(); }
  bool has_label() const override { return source_.has_label(); }
  void read(int64_t i, float* data, uint8_t* label) const override { source_.read(at(i), data, label); }
  bool has_trace_valid() const override { return source_.has_trace_valid(); }
  void read_trace_valid(int64_t i, uint8_t* valid) const override { source_.read_trace_valid(at(i), valid); }
  bool stored_norm_stats(int64_t i, Normalize mode, GatherNormalizer::Stats* stats) const override {
    return source_.stored_norm_stats(at(i), mode, stats);
  }
  void read_rows(int64_t i, float* data, uint8_t* label, RowBlocks where, const RowsReady& ready,
                 const LabelRowsReady& label_ready) const override {
    source_.read_rows(at(i), data, label, where, ready, label_ready);
  }
  void read_window(int64_t i, int64_t t0, int64_t rows, float* data, uint8_t* label) const override {
    source_.read_window(at(i), t0, rows, data, label);
  }
  void will_need(int64_t i) const override { source_.will_need(at(i)); }
  void use_direct_reads(bool on, bool into_place) const override { source_.use_direct_reads(on, into_place); }
  int64_t bytes_per_sample(int64_t i) const override { return source_.bytes_per_sample(at(i)); }
  std::string describe(int64_t i) const override { return source_.describe(at(i)); }

 private:
  int64_t at(int64_t i) const { return indices_[static_cast<size_t>(i)]; }
  const SampleSource& source_;
  std::vector<int64_t> indices_;
};

}  // namespace seis
