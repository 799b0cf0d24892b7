#include "engine/simd_dispatch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace seis {

namespace {

SimdLevel detect() {
#if SEIS_SIMD_COMPILED
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    return SimdLevel::avx512;
  }
  if (__builtin_cpu_supports("avx2")) return SimdLevel::avx2;
#endif
  return SimdLevel::baseline;
}

SimdLevel from_environment(SimdLevel cpu) {
  const char* v = std::getenv("SEIS_SIMD");
  if (v == nullptr || *v == '\0') return cpu;
  SimdLevel cap = cpu;
  if (std::strcmp(v, "baseline") == 0) {
    cap = SimdLevel::baseline;
  } else if (std::strcmp(v, "avx2") == 0) {
    cap = SimdLevel::avx2;
  } else if (std::strcmp(v, "avx512") != 0) {
    std::fprintf(stderr, "seisseg: SEIS_SIMD=%.40s is not baseline, avx2 or avx512; ignored\n", v);
  }
  return static_cast<int>(cap) < static_cast<int>(cpu) ? cap : cpu;
}

std::atomic<int>& current() {
  static std::atomic<int> level{static_cast<int>(from_environment(simd_cpu_level()))};
  return level;
}

}  // namespace

SimdLevel simd_cpu_level() {
  static const SimdLevel cpu = detect();
  return cpu;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) {
  const int cpu = static_cast<int>(simd_cpu_level());
  current().store(static_cast<int>(level) < cpu ? static_cast<int>(level) : cpu, std::memory_order_relaxed);
}

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::avx512:
      return "avx512";
    case SimdLevel::avx2:
      return "avx2";
    default:
      return "baseline";
  }
}

}  // namespace seis
