#include "engine/simd_dispatch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "engine/enum_names.h"

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

constexpr EnumName<SimdLevel> kSimdNames[] = {
    {SimdLevel::baseline, "baseline"}, {SimdLevel::avx2, "avx2"}, {SimdLevel::avx512, "avx512"}};

// `level`, or the CPU's if that is lower.
SimdLevel capped(SimdLevel level) {
  const SimdLevel cpu = simd_cpu_level();
  return static_cast<int>(level) < static_cast<int>(cpu) ? level : cpu;
}

SimdLevel from_environment() {
  const char* v = std::getenv("SEIS_SIMD");
  if (v == nullptr || *v == '\0') return simd_cpu_level();
  try {
    return capped(parse_enum(kSimdNames, v, "SEIS_SIMD"));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "seisseg: %s; ignored\n", e.what());
    return simd_cpu_level();
  }
}

std::atomic<int>& current() {
  static std::atomic<int> level{static_cast<int>(from_environment())};
  return level;
}

}  // namespace

SimdLevel simd_cpu_level() {
  static const SimdLevel cpu = detect();
  return cpu;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) { current().store(static_cast<int>(capped(level)), std::memory_order_relaxed); }

const char* simd_level_name(SimdLevel level) { return enum_name(kSimdNames, level); }

}  // namespace seis
