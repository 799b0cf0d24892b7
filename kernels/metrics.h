// Confusion counts for segmentation metrics: a pixel is predicted positive when its logit is
// >= logit_threshold (= log(t / (1 - t)) for a probability threshold t, computed by the caller so
// that every backend compares the same number). Writes counts[0..2] = TP, FP, FN (=).
// On CUDA `counts` points to device memory.
// confusion_counts_masked counts only the elements of real traces: the n elements are [N, H, W] and
// element (b, t, x) counts when trace_valid[b W + x] != 0 (u8 [N, W], kernels/bce_loss.h).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"

struct CUstream_st;

namespace seis {
namespace cpu {
void confusion_counts(int64_t n, const float* logits, const uint8_t* labels, float logit_threshold, int64_t* counts);
void confusion_counts(int64_t n, const bf16* logits, const uint8_t* labels, float logit_threshold, int64_t* counts);
void confusion_counts_masked(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts);
void confusion_counts_masked(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts);
}  // namespace cpu
namespace cuda {
void confusion_counts(int64_t n, const float* logits, const uint8_t* labels, float logit_threshold, int64_t* counts,
                      CUstream_st* stream);
void confusion_counts(int64_t n, const bf16* logits, const uint8_t* labels, float logit_threshold, int64_t* counts,
                      CUstream_st* stream);
void confusion_counts_masked(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts,
                             CUstream_st* stream);
void confusion_counts_masked(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts,
                             CUstream_st* stream);
}  // namespace cuda
}  // namespace seis
