// Confusion counts (kernels/metrics.h), flat arrays of float or bf16 logits: predicted positive when
// the (widened) logit >= threshold.
// Writes counts[0..2] = TP, FP, FN (=, device memory), by per-block partial counts over a grid of
// fixed size and one block that adds them in a fixed order. The masked twin skips the elements of
// padding traces (trace_valid [N, W] over [N, H, W]).
#include "kernels/cuda/common.cuh"
#include "kernels/metrics.h"

namespace seis::cuda {

namespace {

using Count = unsigned long long;

template <class T>
__global__ void confusion_partials_kernel(int64_t n, const T* __restrict__ logits, const uint8_t* __restrict__ labels,
                                          const uint8_t* __restrict__ trace_valid, int64_t hw, int64_t width,
                                          float logit_threshold, Count* __restrict__ partials) {
  __shared__ Count scratch[kThreads];
  Count tp = 0, fp = 0, fn = 0;
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    if (trace_valid != nullptr && trace_valid[i / hw * width + i % width] == 0) continue;
    const bool pred = widen(logits[i]) >= logit_threshold;
    const bool truth = labels[i] != 0;
    tp += pred && truth;
    fp += pred && !truth;
    fn += !pred && truth;
  }
  tp = block_sum(tp, scratch);
  fp = block_sum(fp, scratch);
  fn = block_sum(fn, scratch);
  if (threadIdx.x == 0) {
    partials[3 * blockIdx.x + 0] = tp;
    partials[3 * blockIdx.x + 1] = fp;
    partials[3 * blockIdx.x + 2] = fn;
  }
}

__global__ void confusion_finish_kernel(int num_partials, const Count* __restrict__ partials,
                                        int64_t* __restrict__ counts) {
  __shared__ Count scratch[kThreads];
  for (int k = 0; k < 3; ++k) {
    Count sum = 0;
    for (int i = threadIdx.x; i < num_partials; i += kThreads) sum += partials[3 * i + k];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) counts[k] = static_cast<int64_t>(sum);
  }
}

// trace_valid null: every element counts.
template <class T>
void counts_of(int64_t n, const T* logits, const uint8_t* labels, const uint8_t* trace_valid, int64_t height,
               int64_t width, float logit_threshold, int64_t* counts, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  SEIS_KERNEL_CHECK(height > 0 && width > 0 && n % (height * width) == 0,
                    n << " elements are not whole [H = " << height << ", W = " << width << "] gathers");
  SEIS_KERNEL_CHECK(counts != nullptr && (n == 0 || (logits != nullptr && labels != nullptr)), "null pointer");
  const unsigned blocks = grid_for(n, kReduceBlocks);
  static_assert(3 * kReduceBlocks * sizeof(Count) <= kWorkspaceBytes, "workspace too small");
  Count* partials = static_cast<Count*>(stream_workspace(stream));
  if (n > 0) {
    confusion_partials_kernel<<<blocks, kThreads, 0, stream>>>(n, logits, labels, trace_valid, height * width, width,
                                                               logit_threshold, partials);
    SEIS_CUDA_LAUNCH_CHECK();
  }
  confusion_finish_kernel<<<1, kThreads, 0, stream>>>(n > 0 ? static_cast<int>(blocks) : 0, partials, counts);
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void confusion_counts(int64_t n, const float* logits, const uint8_t* labels, float logit_threshold, int64_t* counts,
                      CUstream_st* stream) {
  counts_of(n, logits, labels, nullptr, 1, 1, logit_threshold, counts, stream);
}

void confusion_counts(int64_t n, const bf16* logits, const uint8_t* labels, float logit_threshold, int64_t* counts,
                      CUstream_st* stream) {
  counts_of(n, logits, labels, nullptr, 1, 1, logit_threshold, counts, stream);
}

void confusion_counts_masked(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts,
                             CUstream_st* stream) {
  SEIS_KERNEL_CHECK(n == 0 || trace_valid != nullptr, "null trace_valid");
  counts_of(n, logits, labels, trace_valid, height, width, logit_threshold, counts, stream);
}

void confusion_counts_masked(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts,
                             CUstream_st* stream) {
  SEIS_KERNEL_CHECK(n == 0 || trace_valid != nullptr, "null trace_valid");
  counts_of(n, logits, labels, trace_valid, height, width, logit_threshold, counts, stream);
}

}  // namespace seis::cuda
