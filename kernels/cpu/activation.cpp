// Element-wise activations on the CPU (any layout). All functions write their output (=).
// relu_backward takes the forward's output y: dx = dy where y > 0, else 0. f32 or bf16 (ReLU only
// selects values: no rounding); sigmoid widens bf16 logits and writes f32.
#include "kernels/activation.h"

#include <cmath>

namespace seis::cpu {

namespace {

template <typename T>
void relu(int64_t n, const T* x, T* y) {
  const T zero{};
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = to_float(x[i]) > 0.0f ? x[i] : zero;
}

template <typename T>
void relu_grad(int64_t n, const T* y, const T* dy, T* dx) {
  const T zero{};
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) dx[i] = to_float(y[i]) > 0.0f ? dy[i] : zero;
}

template <typename T>
void sigmoid(int64_t n, const T* x, float* y) {
  // exp(-x) overflows to inf for x << 0, which gives the right limit 0.
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-to_float(x[i])));
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y) { relu(n, x, y); }
void relu_forward(int64_t n, const bf16* x, bf16* y) { relu(n, x, y); }
void relu_backward(int64_t n, const float* y, const float* dy, float* dx) { relu_grad(n, y, dy, dx); }
void relu_backward(int64_t n, const bf16* y, const bf16* dy, bf16* dx) { relu_grad(n, y, dy, dx); }
void sigmoid_forward(int64_t n, const float* x, float* y) { sigmoid(n, x, y); }
void sigmoid_forward(int64_t n, const bf16* x, float* y) { sigmoid(n, x, y); }

}  // namespace seis::cpu
