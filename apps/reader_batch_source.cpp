#include "apps/reader_batch_source.h"

#include "engine/error.h"

namespace seis {

ReaderBatchSource::ReaderBatchSource(const SampleSource& source, const SampleReaderOptions& options)
    : source_(source), options_(options) {
  const int64_t n = options.indices.empty() ? source.size() : static_cast<int64_t>(options.indices.size());
  batches_per_epoch_ = options.batch > 0 ? n / options.batch : 0;
}

void ReaderBatchSource::seek(int64_t epoch, int64_t batch) {
  if (reader_) {
    const SampleReader::Position p = reader_->position();
    if (p.epoch != epoch || p.batch != batch) reader_->seek(epoch, batch);
    return;
  }
  options_.start_epoch = epoch;
  options_.start_batch = batch;
  reader_ = std::make_unique<SampleReader>(source_, options_);
}

void ReaderBatchSource::next(Tensor* data, Tensor* label, Tensor* trace_valid) {
  if (!reader_) seek(0, 0);
  ReaderBatch b = reader_->next();
  if (!b.label.defined())
    throw InputError(source_.describe(b.samples.empty() ? 0 : b.samples[0]) + ": no /label to train on");
  *data = std::move(b.data);
  *label = std::move(b.label);
  *trace_valid = std::move(b.trace_valid);
}

double ReaderBatchSource::take_wait_seconds() {
  if (!reader_) return 0.0;
  const ReaderStats s = reader_->take_stats();
  bytes_ += s.bytes_read;
  skipped_ += s.skipped;
  return s.wait_seconds;
}

}  // namespace seis
