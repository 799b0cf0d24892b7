#include "io/synth_field_noise.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/error.h"
#include "engine/rng.h"
#include "io/ground_truth.h"
#include "io/hdf5_record.h"

namespace seis {

FieldNoise::FieldNoise(const std::vector<std::string>& paths, double dt_s, int64_t height, int64_t width)
    : paths_(paths), height_(height), width_(width) {
  if (paths.empty()) throw UsageError("noise from recordings: no file given");
  if (height < 1 || width < 1) throw UsageError("noise from recordings: the gathers' shape must be positive");
  for (size_t f = 0; f < paths.size(); ++f) {
    const std::string& path = paths[f];
    auto file = std::make_unique<H5RecordFile>(path);
    const H5RecordInfo& in = file->info();
    auto fail = [&](const std::string& problem) { throw InputError(path + ": " + problem); };
    std::ostringstream msg;
    if (!(in.dt > 0)) fail("no dt attribute: the noise's sample interval must be known");
    if (std::fabs(in.dt - dt_s) > 1e-9 * dt_s) {
      msg << "dt " << in.dt << " s, but the synthetic set's is " << dt_s << " s";
      fail(msg.str());
    }
    if (in.receivers < width) {
      msg << in.receivers << " receivers, fewer than the gathers' " << width << " (--width)";
      fail(msg.str());
    }
    if (in.samples < height) {
      msg << in.samples << " time samples, fewer than one gather's " << height << " (--height)";
      fail(msg.str());
    }
    if (height > kMaxWindowFloats / in.receivers) {
      msg << "a window of " << height << " rows over its " << in.receivers << " receivers exceeds "
          << (kMaxWindowFloats >> 28) << " GiB";
      fail(msg.str());
    }
    // The rows that carry an arrival, widened by the margin: no window may overlap them.
    std::vector<std::pair<int64_t, int64_t>> busy;
    if (has_ground_truth(path)) {
      const GroundTruth truth = read_ground_truth(path);
      for (const SynthEventRow& e : truth.events) {
        if (std::isnan(e.first_arrival_s)) continue;
        const double a = (e.first_arrival_s - kEventMarginS) / in.dt, b = (e.last_arrival_s + kEventMarginS) / in.dt;
        busy.emplace_back(static_cast<int64_t>(std::floor(std::max(a, -1.0))),
                          static_cast<int64_t>(std::ceil(std::min(b, static_cast<double>(in.samples)))));
      }
      std::sort(busy.begin(), busy.end());
    }
    // First rows t0 in [0, T - H] whose window [t0, t0 + H) meets no busy range [a, b].
    int64_t next = 0;
    const int64_t last = in.samples - height;
    for (const auto& [a, b] : busy) {
      const int64_t end = std::min(last, a - height);  // windows ending before row a
      if (end >= next) spans_.push_back({static_cast<int64_t>(f), next, end});
      next = std::max(next, b + 1);
    }
    if (next <= last) spans_.push_back({static_cast<int64_t>(f), next, last});
    files_.push_back(std::move(file));
  }
  for (const Span& s : spans_) {
    before_.push_back(total_);
    total_ += s.t1 - s.t0 + 1;
  }
  if (total_ == 0) {
    std::ostringstream msg;
    msg << paths.front() << (paths.size() > 1 ? " and the other noise files" : "") << ": no window of " << height
        << " rows lies clear of the events' arrivals (by " << kEventMarginS << " s)";
    throw InputError(msg.str());
  }
}

FieldNoise::~FieldNoise() = default;

std::string FieldNoise::describe() const {
  std::string s;
  for (const std::string& p : paths_) s += (s.empty() ? "" : ",") + p;
  return s;
}

void FieldNoise::window(uint64_t key, int64_t height, int64_t width, float* out, std::vector<uint8_t>* live,
                        SynthNoiseWindow* where) const {
  if (height != height_ || width != width_) throw UsageError("noise from recordings: another gather shape");
  Rng rng(key);
  std::vector<float> rows;
  std::vector<double> rms(static_cast<size_t>(width)), mean(static_cast<size_t>(width));
  constexpr int kTries = 16;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    // The window: uniform over every admissible first row of every file.
    const int64_t u = static_cast<int64_t>(rng.below(static_cast<uint64_t>(total_)));
    const size_t s = static_cast<size_t>(std::upper_bound(before_.begin(), before_.end(), u) - before_.begin() - 1);
    SynthNoiseWindow w;
    w.file = spans_[s].file;
    w.t0 = spans_[s].t0 + (u - before_[s]);
    const H5RecordFile& file = *files_[static_cast<size_t>(w.file)];
    const int64_t wf = file.info().receivers;
    w.c0 = static_cast<int64_t>(rng.below(static_cast<uint64_t>(wf - width + 1)));
    w.flipped = rng.uniform() < 0.5;
    w.negated = rng.uniform() < 0.5;
    rows.resize(static_cast<size_t>(height * wf));
    file.read_rows(w.t0, height, rows.data(), nullptr);
    std::fill(mean.begin(), mean.end(), 0.0);
    std::fill(rms.begin(), rms.end(), 0.0);
    live->assign(static_cast<size_t>(width), 0);
    for (int64_t k = 0; k < height; ++k) {
      const float* src = rows.data() + k * wf + w.c0;
      for (int64_t j = 0; j < width; ++j) {
        const float v = src[j];
        if (!std::isfinite(v)) {
          std::ostringstream msg;
          msg << file.info().path << ": a non-finite sample at row " << w.t0 + k << ", receiver " << w.c0 + j
              << " (noise from recordings must be finite)";
          throw InputError(msg.str());
        }
        if (v != 0.0f) (*live)[static_cast<size_t>(j)] = 1;
        mean[static_cast<size_t>(j)] += v;
      }
    }
    for (double& m : mean) m /= static_cast<double>(height);
    for (int64_t k = 0; k < height; ++k) {
      const float* src = rows.data() + k * wf + w.c0;
      for (int64_t j = 0; j < width; ++j) {
        const double d = src[j] - mean[static_cast<size_t>(j)];
        rms[static_cast<size_t>(j)] += d * d;
      }
    }
    std::vector<double> levels;
    for (int64_t j = 0; j < width; ++j) {
      rms[static_cast<size_t>(j)] = std::sqrt(rms[static_cast<size_t>(j)] / static_cast<double>(height));
      if ((*live)[static_cast<size_t>(j)] != 0 && rms[static_cast<size_t>(j)] > 0) {
        levels.push_back(rms[static_cast<size_t>(j)]);
      } else {
        (*live)[static_cast<size_t>(j)] = 0;  // a constant trace carries no noise: dead
      }
    }
    if (levels.empty()) continue;
    const size_t mid = levels.size() / 2;
    std::nth_element(levels.begin(), levels.begin() + static_cast<std::ptrdiff_t>(mid), levels.end());
    const double median = levels[mid];
    const double g = (w.negated ? -1.0 : 1.0) / median;
    for (int64_t k = 0; k < height; ++k) {
      const float* src = rows.data() + k * wf + w.c0;
      float* dst = out + k * width;
      for (int64_t j = 0; j < width; ++j) {
        const int64_t from = w.flipped ? width - 1 - j : j;
        dst[j] = (*live)[static_cast<size_t>(from)] != 0
                     ? static_cast<float>((src[from] - mean[static_cast<size_t>(from)]) * g)
                     : 0.0f;
      }
    }
    if (w.flipped) std::reverse(live->begin(), live->end());
    if (where != nullptr) *where = w;
    return;
  }
  std::ostringstream msg;
  msg << paths_.front() << (paths_.size() > 1 ? " and the other noise files" : "") << ": " << kTries
      << " noise windows in a row held no live trace";
  throw InputError(msg.str());
}

}  // namespace seis
