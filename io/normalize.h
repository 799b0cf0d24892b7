// Amplitude normalisation of one gather [H time samples, W receivers], in place, as the reader's
// workers apply it: per trace (each receiver's column to zero mean, unit RMS), per sample (the whole
// gather), or none. Dead (constant) traces become zeros.
#pragma once
#include <cstdint>
#include <string>

namespace seis {

enum class Normalize { trace, sample, none };
Normalize parse_normalize(const std::string& s);  // UsageError on anything else
const char* normalize_name(Normalize n);

void normalize_gather(Normalize mode, int64_t height, int64_t width, float* data);

}  // namespace seis
