// BCE with logits on the CPU (any layout; labels u8 in {0,1}), PyTorch's BCEWithLogitsLoss with pos_weight.
// forward writes *loss (=), the mean; per-element terms are summed in double in fixed blocks whose
// partial sums are combined in block order, so the result does not depend on thread timing.
// backward writes dlogits (=).
#include "kernels/bce_loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace seis::cpu {
namespace {
constexpr int64_t kBlock = 16384;

template <typename T>
void bce_forward(int64_t n, const T* logits, const uint8_t* labels, float pos_weight, float* loss) {
  if (n <= 0) {
    *loss = 0.0f;
    return;
  }
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(static_cast<size_t>(blocks));
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i1 = std::min(n, (b + 1) * kBlock);
    double sum = 0.0;
    for (int64_t i = b * kBlock; i < i1; ++i) {
      // Stable form: l = (1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)).
      const float x = to_float(logits[i]), t = labels[i] ? 1.0f : 0.0f;
      const float softplus_neg = std::log1p(std::exp(-std::fabs(x))) + std::max(-x, 0.0f);  // -log s(x)
      sum += static_cast<double>((1.0f - t) * x + (1.0f + (pos_weight - 1.0f) * t) * softplus_neg);
    }
    part[b] = sum;
  }
  double total = 0.0;
  for (double p : part) total += p;
  *loss = static_cast<float>(total / static_cast<double>(n));
}

template <typename T>
void bce_backward(int64_t n, const T* logits, const uint8_t* labels, float pos_weight, float grad_scale, T* dlogits) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const float x = to_float(logits[i]), t = labels[i] ? 1.0f : 0.0f;
    const float s = 1.0f / (1.0f + std::exp(-x));
    store(dlogits + i, grad_scale * ((1.0f + (pos_weight - 1.0f) * t) * s - pos_weight * t));
  }
}

}  // namespace

void bce_with_logits_forward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float* loss) {
  bce_forward(n, logits, labels, pos_weight, loss);
}
void bce_with_logits_forward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float* loss) {
  bce_forward(n, logits, labels, pos_weight, loss);
}
void bce_with_logits_backward(int64_t n, const float* logits, const uint8_t* labels, float pos_weight, float grad_scale,
                              float* dlogits) {
  bce_backward(n, logits, labels, pos_weight, grad_scale, dlogits);
}
void bce_with_logits_backward(int64_t n, const bf16* logits, const uint8_t* labels, float pos_weight, float grad_scale,
                              bf16* dlogits) {
  bce_backward(n, logits, labels, pos_weight, grad_scale, dlogits);
}

}  // namespace seis::cpu
