// Fused optimizer updates (kernels/optimizer_update.h), flat fp32 arrays updated in place.
// PyTorch's formulas: SGD with momentum (dampening 0, not Nesterov), Adam with L2 weight decay,
// AdamW with decoupled decay. Bias corrections are computed once on the host, in double.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/optimizer_update.h"

namespace seis::cuda {

namespace {

__global__ void sgd_kernel(int64_t n, float lr, float momentum, float weight_decay, bool first_step,
                           float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ buf) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    const float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) g += weight_decay * p;
    if (buf != nullptr) {
      const float b = first_step ? g : momentum * buf[i] + g;
      buf[i] = b;
      g = b;
    }
    param[i] = p - lr * g;
  }
}

__global__ void adam_kernel(int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                            bool decoupled, float step_size, float bias_correction2_sqrt, float* __restrict__ param,
                            const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    float p = param[i];
    float g = grad[i];
    if (weight_decay != 0.0f) {
      if (decoupled) {
        p *= 1.0f - lr * weight_decay;
      } else {
        g += weight_decay * p;
      }
    }
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
    param[i] = p - step_size * mi / denom;
  }
}

}  // namespace

void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf,
                CUstream_st* stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(param != nullptr && grad != nullptr, "null pointer");
  SEIS_KERNEL_CHECK(p.momentum == 0.0f || momentum_buf != nullptr,
                    "SGD with momentum " << p.momentum << " needs a momentum buffer");
  // Without momentum the buffer is not needed: b = g.
  float* buf = p.momentum != 0.0f ? momentum_buf : nullptr;
  sgd_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, p.lr, p.momentum, p.weight_decay, p.first_step, param, grad, buf);
  SEIS_CUDA_LAUNCH_CHECK();
}

void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v,
                 CUstream_st* stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  SEIS_KERNEL_CHECK(p.step >= 1, "Adam step counts from 1, got " << p.step);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(param != nullptr && grad != nullptr && m != nullptr && v != nullptr, "null pointer");
  const double step = static_cast<double>(p.step);
  const double bias_correction1 = 1.0 - std::pow(static_cast<double>(p.beta1), step);
  const double bias_correction2 = 1.0 - std::pow(static_cast<double>(p.beta2), step);
  const float step_size = static_cast<float>(static_cast<double>(p.lr) / bias_correction1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  adam_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, p.lr, p.beta1, p.beta2, p.eps, p.weight_decay, p.decoupled,
                                                    step_size, bc2_sqrt, param, grad, m, v);
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace seis::cuda
