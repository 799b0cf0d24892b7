#include "apps/detect_input.h"

#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace seis {

DetectInput::DetectInput(const std::string& path) : path_(path) {
  if (h5_is_record(path)) {
    auto record = std::make_unique<H5RecordFile>(path);
    const H5RecordInfo& i = record->info();
    dt_ = i.dt;
    dx_ = i.dx;
    start_time_ = i.start_time;
    source_ = std::move(record);
    record_ = true;
  } else {
    auto file = std::make_unique<H5SampleFile>(path);
    const H5DatasetInfo& i = file->info();
    dt_ = i.dt;
    dx_ = i.dx;
    source_ = std::move(file);
  }
  gathers_ = source_->size();
  rows_ = source_->height();
  width_ = source_->width();
  if (!record_) segy_ = std::make_unique<SegyHeadersFile>(path, gathers_, width_);
  if (!(dt_ > 0) || !std::isfinite(dt_)) {
    throw InputError(path + ": no positive dt attribute: detection needs the sampling interval (seconds)");
  }
}

void DetectInput::begin(int64_t g) {
  current_ = g;
  if (!record_) {
    // A gather is read whole, once; a record's windows are read from the source as they are asked for.
    gather_.resize(static_cast<size_t>(rows_ * width_));
    source_->read(g, gather_.data(), nullptr);
    segy_->begin(g);
  }
}

void DetectInput::read(int64_t t0, int64_t rows, float* dst) const {
  if (record_) {
    source_->read_window(current_, t0, rows, dst, nullptr);
  } else {
    std::memcpy(dst, gather_.data() + t0 * width_, static_cast<size_t>(rows * width_) * sizeof(float));
  }
  for (int64_t k = 0; k < rows * width_; ++k) {
    if (!std::isfinite(dst[k])) {
      const int64_t t = t0 + k / width_, j = k % width_;
      throw InputError(path_ + ": non-finite value (NaN or Inf) at " +
                       (record_ ? std::string() : "gather " + std::to_string(current_) + ", ") + "sample " +
                       std::to_string(t) + ", receiver " + std::to_string(j));
    }
  }
}

}  // namespace seis
