// Training and validation data from HDF5 sample sets: a BatchSource backed by the asynchronous
// SampleReader, and a SampleSource over a list of a set's samples (validation, prediction).
#pragma once
#include <memory>
#include <vector>

#include "apps/trainer.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"

namespace seis {

class ReaderBatchSource : public BatchSource {
 public:
  // `options` without start position: seek() sets it (the reader is started at the first next()).
  ReaderBatchSource(const SampleSet& set, const SampleReaderOptions& options);
  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  void seek(int64_t epoch, int64_t batch) override;
  void next(Tensor* data, Tensor* label, Tensor* trace_valid) override;
  double take_wait_seconds() override;
  // File bytes behind the batches returned so far, and bad samples skipped.
  int64_t bytes_read() const { return bytes_; }
  int64_t skipped() const { return skipped_; }

 private:
  const SampleSet& set_;
  SampleReaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  std::unique_ptr<SampleReader> reader_;
  int64_t bytes_ = 0, skipped_ = 0;
};

class SetSampleSource : public SampleSource {
 public:
  SetSampleSource(const SampleSet& set, std::vector<int64_t> indices) : set_(set), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t height() const override { return set_.height(); }
  int64_t width() const override { return set_.width(); }
  void read(int64_t i, float* data, uint8_t* label) override {
    set_.read(indices_[static_cast<size_t>(i)], data, label);
  }
  bool has_trace_valid() const override { return set_.has_trace_valid(); }
  void read_trace_valid(int64_t i, uint8_t* valid) override {
    set_.read_trace_valid(indices_[static_cast<size_t>(i)], valid);
  }

 private:
  const SampleSet& set_;
  std::vector<int64_t> indices_;
};

}  // namespace seis
