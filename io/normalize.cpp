#include "io/normalize.h"

#include <cmath>
#include <vector>

#include "engine/error.h"

namespace seis {

Normalize parse_normalize(const std::string& s) {
  if (s == "trace") return Normalize::trace;
  if (s == "sample") return Normalize::sample;
  if (s == "none") return Normalize::none;
  throw UsageError("--normalize: '" + s + "' is not trace, sample or none");
}

const char* normalize_name(Normalize n) {
  switch (n) {
    case Normalize::trace:
      return "trace";
    case Normalize::sample:
      return "sample";
    case Normalize::none:
      return "none";
  }
  return "?";
}

void normalize_gather(Normalize mode, int64_t height, int64_t width, float* data) {
  if (mode == Normalize::none || height <= 0 || width <= 0) return;
  constexpr double kTiny = 1e-12;
  if (mode == Normalize::sample) {
    double sum = 0, sum2 = 0;
    const int64_t n = height * width;
    for (int64_t i = 0; i < n; ++i) {
      sum += data[i];
      sum2 += static_cast<double>(data[i]) * data[i];
    }
    const double mean = sum / static_cast<double>(n);
    const double var = std::max(0.0, sum2 / static_cast<double>(n) - mean * mean);
    const double inv = var > kTiny ? 1.0 / std::sqrt(var) : 0.0;
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>((data[i] - mean) * inv);
    return;
  }
  // Per trace: rows are time samples, columns receivers; accumulate all columns in one row sweep.
  std::vector<double> sum(static_cast<size_t>(width), 0.0), sum2(static_cast<size_t>(width), 0.0);
  for (int64_t t = 0; t < height; ++t) {
    const float* row = data + t * width;
    for (int64_t j = 0; j < width; ++j) {
      sum[j] += row[j];
      sum2[j] += static_cast<double>(row[j]) * row[j];
    }
  }
  std::vector<float> mean(static_cast<size_t>(width)), inv(static_cast<size_t>(width));
  for (int64_t j = 0; j < width; ++j) {
    const double m = sum[j] / static_cast<double>(height);
    const double var = std::max(0.0, sum2[j] / static_cast<double>(height) - m * m);
    mean[j] = static_cast<float>(m);
    inv[j] = var > kTiny ? static_cast<float>(1.0 / std::sqrt(var)) : 0.0f;
  }
  for (int64_t t = 0; t < height; ++t) {
    float* row = data + t * width;
    for (int64_t j = 0; j < width; ++j) row[j] = (row[j] - mean[j]) * inv[j];
  }
}

}  // namespace seis
