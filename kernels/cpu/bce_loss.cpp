// BCE with logits on the CPU (any layout; labels u8 in {0,1}), PyTorch's BCEWithLogitsLoss with pos_weight.
// forward writes *loss (=), the mean; per-element terms are summed in double in fixed blocks whose
// partial sums are combined in block order, so the result does not depend on thread timing.
// backward writes dlogits (=). The masked twins skip the elements of padding traces (trace_valid [N, W]
// broadcast over time): forward leaves their terms out of the sums, backward writes 0 for them.
#include "kernels/bce_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace seis::cpu {
namespace {
constexpr int64_t kBlock = 16384;

// Stable form: l = (1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)).
inline float bce_term(float x, bool label, float pos_weight) {
  const float t = label ? 1.0f : 0.0f;
  const float softplus_neg = std::log1p(std::exp(-std::fabs(x))) + std::max(-x, 0.0f);  // -log s(x)
  return (1.0f - t) * x + (1.0f + (pos_weight - 1.0f) * t) * softplus_neg;
}

inline float bce_grad(float x, bool label, float pos_weight, float grad_scale) {
  const float t = label ? 1.0f : 0.0f;
  const float s = 1.0f / (1.0f + std::exp(-x));
  return grad_scale * ((1.0f + (pos_weight - 1.0f) * t) * s - pos_weight * t);
}

// Counts element i: every element (valid null), or those of real traces of [N, H, W] (valid [N, W]).
struct TraceMask {
  const uint8_t* valid = nullptr;
  int64_t height = 1, width = 1;
  bool counts(int64_t i) const { return valid == nullptr || valid[i / (height * width) * width + i % width] != 0; }
};

// The sum of the counted terms over n elements, in fixed blocks added in block order, over denom.
template <typename T>
float bce_forward(int64_t n, const T* logits, const uint8_t* labels, TraceMask mask, float pos_weight, double denom) {
  if (n <= 0 || denom <= 0) return 0.0f;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i1 = std::min(n, (b + 1) * kBlock);
    double sum = 0.0;
    for (int64_t i = b * kBlock; i < i1; ++i) {
      if (mask.counts(i)) sum += static_cast<double>(bce_term(to_float(logits[i]), labels[i] != 0, pos_weight));
    }
    part[b] = sum;
  }
  double total = 0.0;
  for (double p : part) total += p;
  return static_cast<float>(total / denom);
}

template <typename T>
void bce_backward(int64_t n, const T* logits, const uint8_t* labels, TraceMask mask, float pos_weight,
                  const float* grad_scale, T* dlogits) {
  const float scale = *grad_scale;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float g = mask.counts(i) ? bce_grad(to_float(logits[i]), labels[i] != 0, pos_weight, scale) : 0.0f;
    store(dlogits + i, g);
  }
}

// The op (engine/ops.cpp) checks the shapes; the kernels trust them.
TraceMask trace_mask(const uint8_t* trace_valid, int64_t height, int64_t width) {
  return TraceMask{trace_valid, height, width};
}

}  // namespace

void bce_with_logits_forward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float* loss) {
  *loss = bce_forward(n, logits, labels, TraceMask{}, pos_weight, static_cast<double>(n));
}
void bce_with_logits_forward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float* loss) {
  *loss = bce_forward(n, logits, labels, TraceMask{}, pos_weight, static_cast<double>(n));
}
void bce_with_logits_backward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, float* dlogits) {
  bce_backward(n, logits, labels, TraceMask{}, pos_weight, grad_scale, dlogits);
}
void bce_with_logits_backward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight,
                              const float* grad_scale, bf16* dlogits) {
  bce_backward(n, logits, labels, TraceMask{}, pos_weight, grad_scale, dlogits);
}

void bce_with_logits_masked_forward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss) {
  *loss =
      bce_forward(n, logits, labels, trace_mask(trace_valid, height, width), pos_weight, static_cast<double>(denom));
}
void bce_with_logits_masked_forward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                    int64_t height, int64_t width, float pos_weight, int64_t denom, float* loss) {
  *loss =
      bce_forward(n, logits, labels, trace_mask(trace_valid, height, width), pos_weight, static_cast<double>(denom));
}
void bce_with_logits_masked_backward(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     float* dlogits) {
  bce_backward(n, logits, labels, trace_mask(trace_valid, height, width), pos_weight, grad_scale, dlogits);
}
void bce_with_logits_masked_backward(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                                     int64_t height, int64_t width, float pos_weight, const float* grad_scale,
                                     bf16* dlogits) {
  bce_backward(n, logits, labels, trace_mask(trace_valid, height, width), pos_weight, grad_scale, dlogits);
}

}  // namespace seis::cpu
