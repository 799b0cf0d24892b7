// IEEE 754 binary16 (h5py's float16), as datasets may store /data: decoding to float32 for the
// reader, and encoding from float32 for the writer of such files (seisseg convert keeps a float16
// file's type).
#pragma once
#include <cstdint>
#include <cstring>

namespace seis {

// binary16 -> binary32, exact for every input (subnormals, infinities, NaN payloads).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // mant * 2^-24, exact
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// binary32 -> binary16, rounded to nearest, ties to even; overflow gives infinity. A NaN keeps its
// sign and the top 10 bits of its payload (quiet bit set when they are all zero, so it stays a
// NaN): half_to_float's output is encoded back to the same 16 bits, NaNs included.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // infinity or NaN
    if (abs == 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u);
    const auto payload = static_cast<uint16_t>((abs >> 13) & 0x3ffu);
    return static_cast<uint16_t>(sign | 0x7c00u | (payload != 0 ? payload : 0x200u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: rounds past 65504
  if (abs < 0x38800000u) {
    // Below 2^-14: a subnormal half, mant * 2^-24. Adding 0.5 (2^-1) puts the value's 2^-24 units
    // in the low mantissa bits of a float of exponent 2^-1, rounded to nearest even by the FPU.
    float v;
    std::memcpy(&v, &abs, 4);
    const float shifted = v + 0.5f;
    uint32_t s;
    std::memcpy(&s, &shifted, 4);
    return static_cast<uint16_t>(sign | (s - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + odd;
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

}  // namespace seis
