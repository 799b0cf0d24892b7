// Training batches from the asynchronous SampleReader (io/sample_reader.h): a BatchSource over any
// SampleSource (io/sample_source.h), in practice a SampleSet of HDF5 files.
#pragma once
#include <memory>

#include "apps/trainer.h"
#include "io/sample_reader.h"
#include "io/sample_source.h"

namespace seis {

class ReaderBatchSource : public BatchSource {
 public:
  // `options` without start position: seek() sets it (the reader is started at the first next()).
  ReaderBatchSource(const SampleSource& source, const SampleReaderOptions& options);
  int64_t batches_per_epoch() const override { return batches_per_epoch_; }
  void seek(int64_t epoch, int64_t batch) override;
  void next(Tensor* data, Tensor* label, Tensor* trace_valid) override;
  double take_wait_seconds() override;
  // File bytes behind the batches returned so far, and bad samples skipped.
  int64_t bytes_read() const { return bytes_; }
  int64_t skipped() const { return skipped_; }

 private:
  const SampleSource& source_;
  SampleReaderOptions options_;
  int64_t batches_per_epoch_ = 0;
  std::unique_ptr<SampleReader> reader_;
  int64_t bytes_ = 0, skipped_ = 0;
};

}  // namespace seis
