// Concatenation along channels on the CPU. Layout NHWC: a [P, Ca] and b [P, Cb] -> y [P, Ca+Cb].
// concat writes y (=); split writes da and db (=).
#include "kernels/concat.h"

#include <cstring>

namespace seis::cpu {

void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y) {
  const int64_t cy = ca + cb;
#pragma omp parallel for schedule(static) if (pixels * cy > 65536)
  for (int64_t p = 0; p < pixels; ++p) {
    std::memcpy(y + p * cy, a + p * ca, ca * sizeof(float));
    std::memcpy(y + p * cy + ca, b + p * cb, cb * sizeof(float));
  }
}

void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db) {
  const int64_t cy = ca + cb;
#pragma omp parallel for schedule(static) if (pixels * cy > 65536)
  for (int64_t p = 0; p < pixels; ++p) {
    std::memcpy(da + p * ca, dy + p * cy, ca * sizeof(float));
    std::memcpy(db + p * cb, dy + p * cy + ca, cb * sizeof(float));
  }
}

}  // namespace seis::cpu
