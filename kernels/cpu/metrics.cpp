// Confusion counts on the CPU (any layout; labels u8, nonzero = positive). A pixel is predicted
// positive when logit >= logit_threshold. Writes counts[0..2] = TP, FP, FN (=). Integer sums are
// exact, so the result does not depend on the thread count.
#include "kernels/metrics.h"

namespace seis::cpu {

namespace {

template <typename T>
void count(int64_t n, const T* logits, const uint8_t* labels, float logit_threshold, int64_t* counts) {
  int64_t tp = 0, fp = 0, fn = 0;
#pragma omp parallel for schedule(static) reduction(+ : tp, fp, fn) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
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
  count(n, logits, labels, logit_threshold, counts);
}
void confusion_counts(int64_t n, const bf16* logits, const uint8_t* labels, float logit_threshold, int64_t* counts) {
  count(n, logits, labels, logit_threshold, counts);
}

}  // namespace seis::cpu
