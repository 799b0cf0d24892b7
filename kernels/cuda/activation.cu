// Element-wise activations (kernels/activation.h), flat arrays of float or bf16: relu_forward and
// sigmoid_forward write y (=); relu_backward writes dx = dy * (y > 0) (=). fp32 arithmetic on the
// widened values, rounded once into a bf16 output (sigmoid writes float probabilities from either).
#include "kernels/activation.h"
#include "kernels/cuda/common.cuh"

namespace seis::cuda {

namespace {

struct Relu {
  // As the CPU reference: NaN and -0 give 0.
  __device__ float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};
struct Sigmoid {
  __device__ float operator()(float x) const { return 1.0f / (1.0f + expf(-x)); }
};

}  // namespace

void relu_forward(int64_t n, const float* x, float* y, CUstream_st* stream) { launch_map(n, x, y, Relu{}, stream); }

void relu_backward(int64_t n, const float* y, const float* dy, float* dx, CUstream_st* stream) {
  launch_map2(n, y, dy, dx, ReluMaskOp{}, stream);
}

void sigmoid_forward(int64_t n, const float* x, float* y, CUstream_st* stream) {
  launch_map(n, x, y, Sigmoid{}, stream);
}

void relu_forward(int64_t n, const bf16* x, bf16* y, CUstream_st* stream) { launch_map(n, x, y, Relu{}, stream); }

void relu_backward(int64_t n, const bf16* y, const bf16* dy, bf16* dx, CUstream_st* stream) {
  launch_map2(n, y, dy, dx, ReluMaskOp{}, stream);
}

void sigmoid_forward(int64_t n, const bf16* x, float* y, CUstream_st* stream) {
  launch_map(n, x, y, Sigmoid{}, stream);
}

}  // namespace seis::cuda
