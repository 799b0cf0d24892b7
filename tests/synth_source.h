// Test helper: a SampleSource (io/sample_source.h) that synthesises gathers on demand: sample i of
// the source is synth_sample(cfg, first + i), so a training and a validation source with disjoint
// ranges never share a gather.
#pragma once
#include "io/sample_source.h"
#include "io/synth_microseismic.h"

namespace seis {

class SynthSource : public SampleSource {
 public:
  SynthSource(const SynthConfig& cfg, int64_t first, int64_t count) : cfg_(cfg), first_(first), count_(count) {}
  int64_t size() const override { return count_; }
  int64_t height() const override { return cfg_.height; }
  int64_t width() const override { return cfg_.width; }
  bool has_label() const override { return true; }
  void read(int64_t index, float* data, uint8_t* label) const override {
    synth_sample(cfg_, first_ + index, data, label);
  }

 private:
  SynthConfig cfg_;
  int64_t first_, count_;
};

}  // namespace seis
