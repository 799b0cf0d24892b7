// The fixed-order sum of split-K partials (kernels/cuda/split_k_sum.h). Layout: part [splits, n]
// fp32; writes dw [wn] and dbias [n - wn] (=).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/split_k_sum.h"

namespace seis::cuda {
namespace {

// out[i] = sum_{z < splits} part[z * n + i], in order of z; dW (i < wn), then dbias (or nothing).
__global__ void split_k_sum_kernel(const float* __restrict__ part, int64_t splits, int64_t n, int64_t wn,
                                   float* __restrict__ dw, float* __restrict__ dbias) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    if (i >= wn && dbias == nullptr) continue;
    float s = 0.0f;
    for (int64_t z = 0; z < splits; ++z) s += part[z * n + i];
    if (i < wn) {
      dw[i] = s;
    } else {
      dbias[i - wn] = s;
    }
  }
}

}  // namespace

void sum_split_partials(const float* part, int64_t splits, int64_t n, int64_t wn, float* dw, float* dbias,
                        CUstream_st* stream) {
  split_k_sum_kernel<<<grid_for(n), kThreads, 0, stream>>>(part, splits, n, wn, dw, dbias);
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace seis::cuda
