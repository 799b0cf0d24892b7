// Concatenation along channels on the CPU. Layout NHWC: a [P, Ca] and b [P, Cb] -> y [P, Ca+Cb].
// concat writes y (=); split writes da and db (=). f32 or bf16.
#include "kernels/concat.h"

#include <cstring>

namespace seis::cpu {

namespace {

template <typename T>
void concat(int64_t pixels, int64_t ca, int64_t cb, const T* a, const T* b, T* y) {
  const int64_t cy = ca + cb;
#pragma omp parallel for schedule(static) if (pixels * cy > 65536)
  for (int64_t p = 0; p < pixels; ++p) {
    std::memcpy(y + p * cy, a + p * ca, ca * sizeof(T));
    std::memcpy(y + p * cy + ca, b + p * cb, cb * sizeof(T));
  }
}

template <typename T>
void split(int64_t pixels, int64_t ca, int64_t cb, const T* dy, T* da, T* db) {
  const int64_t cy = ca + cb;
#pragma omp parallel for schedule(static) if (pixels * cy > 65536)
  for (int64_t p = 0; p < pixels; ++p) {
    std::memcpy(da + p * ca, dy + p * cy, ca * sizeof(T));
    std::memcpy(db + p * cb, dy + p * cy + ca, cb * sizeof(T));
  }
}

}  // namespace

void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const float* a, const float* b, float* y) {
  concat(pixels, ca, cb, a, b, y);
}
void concat_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* a, const bf16* b, bf16* y) {
  concat(pixels, ca, cb, a, b, y);
}
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const float* dy, float* da, float* db) {
  split(pixels, ca, cb, dy, da, db);
}
void split_channels(int64_t pixels, int64_t ca, int64_t cb, const bf16* dy, bf16* da, bf16* db) {
  split(pixels, ca, cb, dy, da, db);
}

}  // namespace seis::cpu
