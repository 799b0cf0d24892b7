#include "apps/detect_input.h"

#include <cmath>
#include <cstring>

#include "engine/error.h"

namespace seis {

DetectInput::DetectInput(const std::string& path) : path_(path) {
  if (h5_is_record(path)) {
    record_ = std::make_unique<H5RecordFile>(path);
    const H5RecordInfo& i = record_->info();
    gathers_ = 1;
    rows_ = i.samples;
    width_ = i.receivers;
    dt_ = i.dt;
    dx_ = i.dx;
    start_time_ = i.start_time;
  } else {
    gathers_file_ = std::make_unique<H5SampleFile>(path);
    const H5DatasetInfo& i = gathers_file_->info();
    gathers_ = i.n;
    rows_ = i.height;
    width_ = i.width;
    dt_ = i.dt;
    dx_ = i.dx;
    segy_ = std::make_unique<SegyHeadersFile>(path, gathers_, width_);
  }
  if (!(dt_ > 0) || !std::isfinite(dt_)) {
    throw InputError(path + ": no positive dt attribute: detection needs the sampling interval (seconds)");
  }
}

void DetectInput::begin(int64_t g) {
  current_ = g;
  if (gathers_file_) {
    gather_.resize(static_cast<size_t>(rows_ * width_));
    gathers_file_->read(g, gather_.data(), nullptr);
    segy_->begin(g);
  }
}

void DetectInput::read(int64_t t0, int64_t rows, float* dst) const {
  if (record_) {
    record_->read_rows(t0, rows, dst, nullptr);
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
