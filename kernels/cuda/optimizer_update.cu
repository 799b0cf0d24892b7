// Fused optimizer updates (kernels/optimizer_update.h), flat fp32 arrays updated in place.
// PyTorch's formulas: SGD with momentum (dampening 0, not Nesterov), Adam with L2 weight decay,
// AdamW with decoupled decay. Bias corrections are computed once on the host, in double
// (adam_scalars), and passed by value or, for a replayed CUDA graph, read from device memory.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/optimizer_update.h"

namespace seis::cuda {

namespace {

// kFrom: the step's scalars are read from device memory when the kernel runs (a graph replayed at
// later steps), else taken from `host`. The arithmetic is the same either way.
template <bool kFrom>
__global__ void sgd_kernel(int64_t n, UpdateScalars host, const UpdateScalars* __restrict__ from, float momentum,
                           float weight_decay, float* __restrict__ param, const float* __restrict__ grad,
                           float* __restrict__ buf) {
  const UpdateScalars s = kFrom ? *from : host;
  const float lr = s.lr;
  const bool first_step = s.first_step != 0;
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

template <bool kFrom>
__global__ void adam_kernel(int64_t n, UpdateScalars host, const UpdateScalars* __restrict__ from, float beta1,
                            float beta2, float eps, float weight_decay, bool decoupled, float* __restrict__ param,
                            const float* __restrict__ grad, float* __restrict__ m, float* __restrict__ v) {
  const UpdateScalars s = kFrom ? *from : host;
  const float lr = s.lr, step_size = s.step_size, bias_correction2_sqrt = s.bias_correction2_sqrt;
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

void launch_sgd(int64_t n, const SgdParams& p, const UpdateScalars* from, float* param, const float* grad,
                float* momentum_buf, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(param != nullptr && grad != nullptr, "null pointer");
  SEIS_KERNEL_CHECK(p.momentum == 0.0f || momentum_buf != nullptr,
                    "SGD with momentum " << p.momentum << " needs a momentum buffer");
  // Without momentum the buffer is not needed: b = g.
  float* buf = p.momentum != 0.0f ? momentum_buf : nullptr;
  const UpdateScalars host = sgd_scalars(p);
  if (from != nullptr) {
    sgd_kernel<true><<<grid_for(n), kThreads, 0, stream>>>(n, host, from, p.momentum, p.weight_decay, param, grad, buf);
  } else {
    sgd_kernel<false>
        <<<grid_for(n), kThreads, 0, stream>>>(n, host, from, p.momentum, p.weight_decay, param, grad, buf);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

void launch_adam(int64_t n, const AdamParams& p, const UpdateScalars* from, float* param, const float* grad, float* m,
                 float* v, cudaStream_t stream) {
  SEIS_KERNEL_CHECK(n >= 0, "negative element count " << n);
  SEIS_KERNEL_CHECK(from != nullptr || p.step >= 1, "Adam step counts from 1, got " << p.step);
  if (n == 0) return;
  SEIS_KERNEL_CHECK(param != nullptr && grad != nullptr && m != nullptr && v != nullptr, "null pointer");
  const UpdateScalars host = from != nullptr ? UpdateScalars{} : adam_scalars(p);
  if (from != nullptr) {
    adam_kernel<true><<<grid_for(n), kThreads, 0, stream>>>(n, host, from, p.beta1, p.beta2, p.eps, p.weight_decay,
                                                            p.decoupled, param, grad, m, v);
  } else {
    adam_kernel<false><<<grid_for(n), kThreads, 0, stream>>>(n, host, from, p.beta1, p.beta2, p.eps, p.weight_decay,
                                                             p.decoupled, param, grad, m, v);
  }
  SEIS_CUDA_LAUNCH_CHECK();
}

}  // namespace

void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf,
                CUstream_st* stream) {
  launch_sgd(n, p, nullptr, param, grad, momentum_buf, stream);
}

void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v,
                 CUstream_st* stream) {
  launch_adam(n, p, nullptr, param, grad, m, v, stream);
}

void sgd_update_from(int64_t n, const SgdParams& p, const UpdateScalars* scalars, float* param, const float* grad,
                     float* momentum_buf, CUstream_st* stream) {
  SEIS_KERNEL_CHECK(scalars != nullptr, "null step scalars");
  launch_sgd(n, p, scalars, param, grad, momentum_buf, stream);
}

void adam_update_from(int64_t n, const AdamParams& p, const UpdateScalars* scalars, float* param, const float* grad,
                      float* m, float* v, CUstream_st* stream) {
  SEIS_KERNEL_CHECK(scalars != nullptr, "null step scalars");
  launch_adam(n, p, scalars, param, grad, m, v, stream);
}

}  // namespace seis::cuda
