// Binary cross-entropy with logits and pos_weight (kernels/bce_loss.h), flat arrays; logits and
// dlogits float or bf16 (fp32 arithmetic on the widened logits, dlogits rounded once).
// forward writes *loss (=, a float in device memory): per-block partial sums in double over a grid of
// fixed size, then one block adds the partials in a fixed order, so the result is deterministic.
// backward writes dlogits (=): grad_scale * ((1 + (pw - 1) t) s(x) - pw t).
// The masked twins take trace_valid [N, W] for [N, H, W] elements: padding traces' elements are left
// out of the sums (forward, over `denom` instead of n) and get gradient 0 (backward).
#include "kernels/bce_loss.h"
#include "kernels/cuda/common.cuh"

namespace seis::cuda {

namespace {

// l = (1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)), PyTorch's stable form.
__device__ __forceinline__ float bce_term(float x, bool t, float pos_weight) {
  const float softplus_neg = log1pf(expf(-fabsf(x))) + fmaxf(-x, 0.0f);  // -log s(x)
  return t ? pos_weight * softplus_neg : x + softplus_neg;
}

// Element i counts: always without a mask, else when its trace (of [N, H, W]) is real.
struct TraceMask {
  const uint8_t* valid;  // [N, W] or null
  int64_t hw, width;
  __device__ __forceinline__ bool counts(int64_t i) const {
    return valid == nullptr || valid[i / hw * width + i % width] != 0;
  }
};

template <class T>
__global__ void bce_partials_kernel(int64_t n, const T* __restrict__ logits, const uint8_t* __restrict__ labels,
                                    TraceMask mask, float pos_weight, double* __restrict__ partials) {
  __shared__ double scratch[kThreads];
  double sum = 0.0;
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    if (mask.counts(i)) sum += static_cast<double>(bce_term(widen(logits[i]), labels[i] != 0, pos_weight));
  }
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void bce_finish_kernel(int64_t denom, int num_partials, const double* __restrict__ partials,
                                  float* __restrict__ loss) {
  __shared__ double scratch[kThreads];
  double sum = 0.0;
  for (int i = threadIdx.x; i < num_partials; i += kThreads) sum += partials[i];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *loss = denom > 0 ? static_cast<float>(sum / static_cast<double>(denom)) : 0.0f;
}

template <class T>
__global__ void bce_backward_kernel(int64_t n, const T* __restrict__ logits, const uint8_t* __restrict__ labels,
                                    TraceMask mask, float pos_weight, const float* __restrict__ grad_scale,
                                    T* __restrict__ dlogits) {
  const float scale = *grad_scale;  // on the device: no host read between the loss and its gradient
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    const float s = 1.0f / (1.0f + expf(-widen(logits[i])));
    const float g = labels[i] != 0 ? pos_weight * s - pos_weight : s;
    store(&dlogits[i], mask.counts(i) ? scale * g : 0.0f);
  }
}

template <class T>
void forward(int64_t n, const T* logits, const uint8_t* labels, TraceMask mask, float pos_weight, int64_t denom,
             float* loss, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  SEIS_KERNEL_CHECK(loss != nullptr && (n == 0 || (logits != nullptr && labels != nullptr)), "null pointer");
  const unsigned blocks = grid_for(n, kReduceBlocks);
  static_assert(kReduceBlocks * sizeof(double) <= kWorkspaceBytes, "workspace too small");
  double* partials = static_cast<double*>(stream_workspace(stream));
  if (n > 0) {
    bce_partials_kernel<<<blocks, kThreads, 0, stream>>>(n, logits, labels, mask, pos_weight, partials);
    SEIS_CUDA_LAUNCH_CHECK();
  }
  bce_finish_kernel<<<1, kThreads, 0, stream>>>(n > 0 ? denom : 0, n > 0 ? static_cast<int>(blocks) : 0, partials,
                                                loss);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void backward(int64_t n, const T* logits, const uint8_t* labels, TraceMask mask, float pos_weight,
              const float* grad_scale, T* dlogits, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(logits != nullptr && labels != nullptr && dlogits != nullptr && grad_scale != nullptr,
                    "null pointer");
  bce_backward_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, logits, labels, mask, pos_weight, grad_scale, dlogits);
  SEIS_CUDA_LAUNCH_CHECK();
}

TraceMask trace_mask(int64_t n, const uint8_t* trace_valid, int64_t height, int64_t width) {
  SEIS_KERNEL_CHECK(height > 0 && width > 0 && n % (height * width) == 0,
                    n << " elements are not whole [H = " << height << ", W = " << width << "] gathers");
  SEIS_KERNEL_CHECK(n == 0 || trace_valid != nullptr, "null trace_valid");
  return TraceMask{trace_valid, height * width, width};
}

}  // namespace

void bce_with_logits_forward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float* loss,
                             CUstream_st* stream) {
  forward(n, logits, labels, TraceMask{nullptr, 1, 1}, pos_weight, n, loss, stream);
}

void bce_with_logits_backward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, float* dlogits, CUstream_st* stream) {
  backward(n, logits, labels, TraceMask{nullptr, 1, 1}, pos_weight, grad_scale, dlogits, stream);
}

void bce_with_logits_forward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float* loss,
                             CUstream_st* stream) {
  forward(n, logits, labels, TraceMask{nullptr, 1, 1}, pos_weight, n, loss, stream);
}

void bce_with_logits_backward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, bf16* dlogits, CUstream_st* stream) {
  backward(n, logits, labels, TraceMask{nullptr, 1, 1}, pos_weight, grad_scale, dlogits, stream);
}

void bce_with_logits_masked_forward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss,
                                    CUstream_st* stream) {
  forward(n, logits, labels, trace_mask(n, trace_valid, height, width), pos_weight, denom, loss, stream);
}

void bce_with_logits_masked_forward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss,
                                    CUstream_st* stream) {
  forward(n, logits, labels, trace_mask(n, trace_valid, height, width), pos_weight, denom, loss, stream);
}

void bce_with_logits_masked_backward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     float* dlogits, CUstream_st* stream) {
  backward(n, logits, labels, trace_mask(n, trace_valid, height, width), pos_weight, grad_scale, dlogits, stream);
}

void bce_with_logits_masked_backward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     bf16* dlogits, CUstream_st* stream) {
  backward(n, logits, labels, trace_mask(n, trace_valid, height, width), pos_weight, grad_scale, dlogits, stream);
}

}  // namespace seis::cuda
