// Which direct row kernel this CPU runs (kernels/cpu/conv2d_direct.h).
#include "kernels/cpu/conv2d_direct.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace seis::cpu::direct {
namespace {

Isa cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
#endif
  return Isa::none;
}

Isa initial_isa() {
  const char* env = std::getenv("SEIS_CPU_CONV");
  if (env != nullptr && std::strcmp(env, "im2col") == 0) return Isa::none;
  return cpu_isa();
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
