// Test helper: a BatchSource that reads a SampleSource synchronously, in the order of
// epoch_permutation (io/sample_order.h) of (seed, epoch); the last incomplete batch of an epoch is
// dropped. Training tests use it with SynthSource (synth_source.h) to train without files.
#pragma once
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "engine/error.h"
#include "io/sample_order.h"

namespace seis {

class SyncBatchSource : public BatchSource {
 public:
  SyncBatchSource(const SampleSource& src, int64_t batch, uint64_t seed, Normalize normalize, Device device)
      : src_(src), batch_(batch), seed_(seed), normalize_(normalize), device_(device) {
    if (src.size() < batch) {
      throw UsageError("--batch " + std::to_string(batch) + " is larger than the " + std::to_string(src.size()) +
                       " training samples");
    }
  }
  int64_t batches_per_epoch() const override { return src_.size() / batch_; }
  void seek(int64_t epoch, int64_t batch) override {
    epoch_ = epoch;
    pos_ = batch;
  }
  void next(Tensor* data, Tensor* label, Tensor* trace_valid) override {
    if (pos_ >= batches_per_epoch()) {
      ++epoch_;
      pos_ = 0;
    }
    if (perm_epoch_ != epoch_) {
      perm_ = epoch_permutation(src_.size(), seed_, epoch_);
      perm_epoch_ = epoch_;
    }
    std::vector<int64_t> idx(perm_.begin() + pos_ * batch_, perm_.begin() + (pos_ + 1) * batch_);
    load_batch(src_, idx, normalize_, device_, data, label, trace_valid);
    ++pos_;
  }

 private:
  const SampleSource& src_;
  int64_t batch_;
  uint64_t seed_;
  Normalize normalize_;
  Device device_;
  int64_t epoch_ = 0, pos_ = 0, perm_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace seis
