// Confusion counts on the CPU (any layout; labels u8, nonzero = positive). A pixel is predicted
// positive when logit >= logit_threshold. Writes counts[0..2] = TP, FP, FN (=). Integer sums are
// exact, so the result does not depend on the thread count.
#include "kernels/metrics.h"

namespace seis::cpu {

void confusion_counts(int64_t n, const float* logits, const uint8_t* labels, float logit_threshold, int64_t* counts) {
  int64_t tp = 0, fp = 0, fn = 0;
#pragma omp parallel for schedule(static) reduction(+ : tp, fp, fn) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const bool pred = logits[i] >= logit_threshold, truth = labels[i] != 0;
    tp += pred && truth;
    fp += pred && !truth;
    fn += !pred && truth;
  }
  counts[0] = tp;
  counts[1] = fp;
  counts[2] = fn;
}

}  // namespace seis::cpu
