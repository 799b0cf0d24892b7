// Fused optimizer updates on fp32 master weights, in place on param and state.
// SGD: b = momentum * b + g (b = g on the first step); p -= lr * b; weight decay adds wd * p to g.
// Adam/AdamW (PyTorch's formulas, bias-corrected at `step`, counting from 1): Adam adds wd * p to g;
// AdamW decays p by lr * wd first. momentum_buf may be null when momentum is 0.
#pragma once
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

namespace cpu {
void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf);
void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v);
}  // namespace cpu
namespace cuda {
void sgd_update(int64_t n, const SgdParams& p, float* param, const float* grad, float* momentum_buf,
                CUstream_st* stream);
void adam_update(int64_t n, const AdamParams& p, float* param, const float* grad, float* m, float* v,
                 CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
