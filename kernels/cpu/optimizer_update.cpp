// Fused optimizer updates on the CPU, in place on fp32 param and state (any layout), with
// PyTorch's formulas (torch.optim.SGD, Adam, AdamW; dampening 0, no Nesterov, no amsgrad).
#include "kernels/optimizer_update.h"

#include <cmath>

namespace seis::cpu {

void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf) {
  const bool use_momentum = p.momentum != 0.0f;  // PyTorch keeps no buffer without momentum
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float g = grad[i] + p.weight_decay * param[i];
    if (use_momentum) {
      const float b = p.first_step ? g : p.momentum * momentum_buf[i] + g;
      momentum_buf[i] = b;
      g = b;
    }
    param[i] -= p.lr * g;
  }
}

void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v) {
  const UpdateScalars s = adam_scalars(p);  // bias corrections in double, as PyTorch computes them
  const float step_size = s.step_size;
  const float bc2_sqrt_f = s.bias_correction2_sqrt;
  const float decay = p.decoupled ? 1.0f - p.lr * p.weight_decay : 1.0f;
  const float l2 = p.decoupled ? 0.0f : p.weight_decay;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] + l2 * param[i];
    const float w = param[i] * decay;
    m[i] = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    // p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
    param[i] = w - step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt_f + p.eps);
  }
}

}  // namespace seis::cpu
