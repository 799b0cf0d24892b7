// CPU element-wise helpers (see kernels/elementwise.h).
#include "kernels/elementwise.h"

namespace seis::cpu {

void add_inplace(int64_t n, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void add_inplace(int64_t n, const bf16* x, bf16* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(to_float(y[i]) + to_float(x[i]));
}

void convert(int64_t n, const float* x, bf16* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
}

void convert(int64_t n, const bf16* x, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = to_float(x[i]);
}

void scale_inplace(int64_t n, float a, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

void divide(int64_t n, const float* x, float d, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / d;
}

void fill(int64_t n, float value, float* y) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

}  // namespace seis::cpu
