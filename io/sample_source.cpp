#include "io/sample_source.h"

#include <algorithm>
#include <cstring>

#include "engine/error.h"

namespace seis {

void SampleSource::read_trace_valid(int64_t, uint8_t* valid) const { std::fill(valid, valid + width(), uint8_t{1}); }

void SampleSource::read_rows(int64_t i, float* data, uint8_t* label, RowBlocks, const RowsReady& ready,
                             const LabelRowsReady& label_ready) const {
  read(i, data, label);
  ready(0, height(), data);
  if (label_ready && label != nullptr && has_label()) label_ready(0, height(), label);
}

void SampleSource::read_window(int64_t i, int64_t t0, int64_t rows, float* data, uint8_t* label) const {
  const int64_t h = height(), w = width();
  SEIS_CHECK(t0 >= 0 && rows >= 0 && t0 + rows <= h,
             describe(i) << ": rows [" << t0 << ", " << t0 + rows << ") outside [0, " << h << ")");
  std::vector<float> d(static_cast<size_t>(h * w));
  std::vector<uint8_t> l(label != nullptr && has_label() ? static_cast<size_t>(h * w) : 0);
  read(i, d.data(), l.empty() ? nullptr : l.data());
  std::memcpy(data, d.data() + t0 * w, static_cast<size_t>(rows * w) * sizeof(float));
  if (!l.empty()) std::memcpy(label, l.data() + t0 * w, static_cast<size_t>(rows * w));
}

int64_t SampleSource::bytes_per_sample(int64_t) const {
  return height() * width() * (static_cast<int64_t>(sizeof(float)) + (has_label() ? 1 : 0));
}

std::string SampleSource::describe(int64_t i) const { return "sample " + std::to_string(i); }

}  // namespace seis
