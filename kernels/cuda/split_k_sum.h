// The second pass of the split-K backward-weight kernels (conv2d_halo.cu, conv2d_deep_wgrad.cu):
// the fp32 partials of the splits added in split order, so that the result depends on the shape's
// partition alone (no atomics: deterministic). Writes dw and dbias (=).
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis::cuda {

// part is [splits, n] with n = wn + (number of dbias entries): dw[i] = sum_z part[z * n + i] for
// i < wn, dbias[i - wn] for the rest (skipped when dbias is null), z = 0, 1, .. in order.
void sum_split_partials(const float* part, int64_t splits, int64_t n, int64_t wn, float* dw, float* dbias,
                        CUstream_st* stream);

}  // namespace seis::cuda
