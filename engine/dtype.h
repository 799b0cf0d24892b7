// Element types: f32, bf16 (stored as the top 16 bits of an f32) and u8.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/bf16.h"

namespace seis {

enum class DType : uint8_t { f32, bf16, u8 };

inline int64_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::bf16:
      return 2;
    case DType::u8:
      return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::u8:
      return "u8";
  }
  return "?";
}

// Round to nearest even, as the CUDA __float2bfloat16_rn does; NaN stays NaN (kernels/bf16.h).
inline uint16_t float_to_bf16(float f) { return to_bf16(f).bits; }
inline float bf16_to_float(uint16_t h) { return to_float(bf16{h}); }

}  // namespace seis
