// Which direct row kernel this CPU runs (kernels/cpu/conv2d_direct.h).
#include "kernels/cpu/conv2d_direct.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace seis::cpu::direct {
namespace {

// The kernels are compiled where CMakeLists.txt defines SEIS_CPU_DIRECT_CONV (x86-64).
Isa cpu_isa() {
#if defined(SEIS_CPU_DIRECT_CONV) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::none;
}

// SEIS_CPU_CONV=im2col: none. SEIS_SIMD (the cap of engine/simd_dispatch.h, read here too since
// kernels do not call the engine): baseline gives none, avx2 at most avx2.
Isa initial_isa() {
  const char* conv = std::getenv("SEIS_CPU_CONV");
  if (conv != nullptr && std::strcmp(conv, "im2col") == 0) return Isa::none;
  const Isa have = cpu_isa();
  const char* simd = std::getenv("SEIS_SIMD");
  if (simd != nullptr && std::strcmp(simd, "baseline") == 0) return Isa::none;
  if (simd != nullptr && std::strcmp(simd, "avx2") == 0 && have == Isa::avx512) return Isa::avx2;
  return have;
}

std::atomic<int>& chosen() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

Isa isa() { return static_cast<Isa>(chosen().load(std::memory_order_relaxed)); }

void set_isa(Isa want) {
  const Isa have = cpu_isa();
  chosen().store(static_cast<int>(static_cast<int>(want) < static_cast<int>(have) ? want : have));
}

int64_t k_block(Isa isa) { return isa == Isa::avx512 ? 8 : 4; }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    default:
      return "im2col";
  }
}

}  // namespace seis::cpu::direct
