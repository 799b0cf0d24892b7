// Binary cross-entropy with logits, mean over n elements, with pos_weight (PyTorch's
// BCEWithLogitsLoss): l_i = -(pw * t_i * log s(x_i) + (1 - t_i) * log(1 - s(x_i))), labels t in {0,1} (u8; any nonzero
// value counts as 1). forward writes *loss (=), the mean, summed in a fixed order (deterministic). backward writes dx
// (=): dx_i = grad_scale * ((1 + (pw - 1) t_i) s(x_i) - pw t_i), where *grad_scale is dloss / n_total (n_total may
// exceed n when a batch is split). On CUDA `loss` and `grad_scale` point to device memory: the scale
// is computed on the device from the loss's gradient, so that no host read splits the step (which
// CUDA-graph capture needs). Logits and dlogits are f32
// or bf16 (the loss itself is computed in fp32 from the widened logits; dlogits rounded once).
//
// Masked twins, for gathers padded with dead traces (a converted SEG-Y's /trace_valid): the n elements
// are [N, H, W] (n = N H W) and trace_valid is u8 [N, W]; element (b, t, x) counts when
// trace_valid[b W + x] != 0 (broadcast over time). forward writes *loss (=) = (sum of the counted
// terms) / denom (0 when denom <= 0), in the unmasked forward's order, so that an all-ones mask with
// denom = n gives its bits. backward writes dx (=): the unmasked dx on counted elements, 0 elsewhere.
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void bce_with_logits_forward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float* loss);
void bce_with_logits_backward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, float* dlogits);
void bce_with_logits_forward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float* loss);
void bce_with_logits_backward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, bf16* dlogits);
void bce_with_logits_masked_forward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss);
void bce_with_logits_masked_forward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss);
void bce_with_logits_masked_backward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     float* dlogits);
void bce_with_logits_masked_backward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     bf16* dlogits);
}  // namespace cpu
namespace cuda {
void bce_with_logits_forward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float* loss,
                             CUstream_st* stream);
void bce_with_logits_backward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, float* dlogits, CUstream_st* stream);
void bce_with_logits_forward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float* loss,
                             CUstream_st* stream);
void bce_with_logits_backward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, bf16* dlogits, CUstream_st* stream);
void bce_with_logits_masked_forward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss,
                                    CUstream_st* stream);
void bce_with_logits_masked_forward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss,
                                    CUstream_st* stream);
void bce_with_logits_masked_backward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     float* dlogits, CUstream_st* stream);
void bce_with_logits_masked_backward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     bf16* dlogits, CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
