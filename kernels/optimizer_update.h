// Fused optimizer updates on fp32 master weights, in place on param and state.
// SGD: b = momentum * b + g (b = g on the first step); p -= lr * b; weight decay adds wd * p to g.
// Adam/AdamW (PyTorch's formulas, bias-corrected at `step`, counting from 1): Adam adds wd * p to g;
// AdamW decays p by lr * wd first. momentum_buf may be null when momentum is 0.
#pragma once
#include <cmath>
#include <cstdint>

struct CUstream_st;

namespace seis {

struct SgdParams {
  float lr = 0.01f, momentum = 0.0f, weight_decay = 0.0f;
  bool first_step = true;
};

struct AdamParams {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  bool decoupled = false;  // AdamW
  int64_t step = 1;
};

// The scalars of one step that change from step to step, computed on the host (Adam's bias
// corrections in double, as PyTorch computes them in Python). The CUDA updates take them by value,
// or read them from device memory (the `_from` launchers) so that a captured CUDA graph of the step
// can be replayed at the next step's learning rate and bias correction.
struct UpdateScalars {
  float lr = 0.0f;
  float step_size = 0.0f;              // Adam: lr / (1 - beta1^step)
  float bias_correction2_sqrt = 1.0f;  // Adam: sqrt(1 - beta2^step)
  int32_t first_step = 0;              // SGD: the momentum buffer starts at g
};

inline UpdateScalars sgd_scalars(const SgdParams& p) {
  UpdateScalars s;
  s.lr = p.lr;
  s.first_step = p.first_step ? 1 : 0;
  return s;
}

inline UpdateScalars adam_scalars(const AdamParams& p) {
  const double t = static_cast<double>(p.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(p.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(p.beta2), t);
  UpdateScalars s;
  s.lr = p.lr;
  s.step_size = static_cast<float>(static_cast<double>(p.lr) / bc1);
  s.bias_correction2_sqrt = static_cast<float>(std::sqrt(bc2));
  return s;
}

namespace cpu {
void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf);
void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v);
}  // namespace cpu
namespace cuda {
void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf,
                CUstream_st* stream);
void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v,
                 CUstream_st* stream);
// The same updates with lr, step_size, bias_correction2_sqrt and first_step read from `scalars`
// (device memory) when the kernel runs; p's own values of those are not used.
void sgd_update_from(int64_t n, const SgdParams& p, const UpdateScalars* scalars, float* param, const float* grad,
                     float* momentum_buf, CUstream_st* stream);
void adam_update_from(int64_t n, const AdamParams& p, const UpdateScalars* scalars, float* param, const float* grad,
                      float* m, float* v, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
