// Shared test helpers: GPU skip/require, seeded random inputs, tolerance and NMSE gates that
// report the worst element and the first mismatches.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/device_runtime.h"

namespace seis::test {

inline bool gpu_required() {
  const char* v = std::getenv("SEIS_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

// In a TEST body: skip visibly without a GPU, or fail when SEIS_REQUIRE_GPU=1.
#define SEIS_NEED_GPU()                                                                       \
  do {                                                                                        \
    if (::seis::cuda_device_count() == 0) {                                                   \
      if (::seis::test::gpu_required()) FAIL() << "SEIS_REQUIRE_GPU=1 but no CUDA GPU found"; \
      GTEST_SKIP() << "no CUDA GPU";                                                          \
    }                                                                                         \
  } while (0)

inline std::vector<float> random_vector(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

// |got - ref| <= atol + rtol * |ref| for every element, and NMSE = mse(got, ref) / mse(ref, 0) <= max_nmse.
inline ::testing::AssertionResult all_close(const float* got, const float* ref, int64_t n, double atol, double rtol,
                                            double max_nmse = 1e-6) {
  double err2 = 0, ref2 = 0, worst = -1;
  int64_t worst_i = -1, bad = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < n; ++i) {
    const double g = got[i], r = ref[i], d = std::fabs(g - r);
    err2 += (g - r) * (g - r);
    ref2 += r * r;
    const bool ok = std::isfinite(g) && d <= atol + rtol * std::fabs(r);
    if (!ok) {
      if (bad < 10) first << "\n  [" << i << "] got " << g << " want " << r;
      ++bad;
    }
    if (!std::isfinite(g) || d > worst) {
      worst = std::isfinite(g) ? d : INFINITY;
      worst_i = i;
    }
  }
  const double nmse = ref2 > 0 ? err2 / ref2 : err2;
  if (bad == 0 && nmse <= max_nmse) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements out of tolerance (atol " << atol << ", rtol "
                                       << rtol << "), NMSE " << nmse << " (max " << max_nmse << "), worst at ["
                                       << worst_i << "] |diff| " << worst << first.str();
}

}  // namespace seis::test
