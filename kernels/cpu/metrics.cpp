// Confusion counts on the CPU (any layout; labels u8, nonzero = positive). A pixel is predicted
// positive when logit >= logit_threshold. Writes counts[0..2] = TP, FP, FN (=). Integer sums are
// exact, so the result does not depend on the thread count. The masked twin counts only the
// elements of real traces (trace_valid [N, W] broadcast over the H time samples of [N, H, W]).
#include "kernels/metrics.h"

namespace seis::cpu {

namespace {

// trace_valid null: every element counts.
template <typename T>
void count(int64_t n, const T* logits, const uint8_t* labels, const uint8_t* trace_valid, int64_t height, int64_t width,
           float logit_threshold, int64_t* counts) {
  int64_t tp = 0, fp = 0, fn = 0;
#pragma omp parallel for schedule(static) reduction(+ : tp, fp, fn) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    if (trace_valid != nullptr && trace_valid[i / (height * width) * width + i % width] == 0) continue;
    const bool pred = to_float(logits[i]) >= logit_threshold, truth = labels[i] != 0;
    tp += pred && truth;
    fp += pred && !truth;
    fn += !pred && truth;
  }
  counts[0] = tp;
  counts[1] = fp;
  counts[2] = fn;
}

}  // namespace

void confusion_counts(int64_t n, const float* logits, const uint8_t* labels, float logit_threshold, int64_t* counts) {
  count(n, logits, labels, nullptr, 1, 1, logit_threshold, counts);
}
void confusion_counts(int64_t n, const bf16* logits, const uint8_t* labels, float logit_threshold, int64_t* counts) {
  count(n, logits, labels, nullptr, 1, 1, logit_threshold, counts);
}
void confusion_counts_masked(int64_t n, const float* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts) {
  count(n, logits, labels, trace_valid, height, width, logit_threshold, counts);
}
void confusion_counts_masked(int64_t n, const bf16* logits, const uint8_t* labels, const uint8_t* trace_valid,
                             int64_t height, int64_t width, float logit_threshold, int64_t* counts) {
  count(n, logits, labels, trace_valid, height, width, logit_threshold, counts);
}

}  // namespace seis::cpu
