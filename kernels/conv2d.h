// conv2d, stride 1, "same" padding (R/2), R = S = 1 or 3, with bias and optional fused ReLU.
// Layout: activations NHWC (x [N,H,W,C], y [N,H,W,K]); weights KRSC ([K,R,R,C]); bias [K].
// forward writes y (=); backward_data writes dx (=); backward_weight writes dw and dbias (=).
// When y_relu is not null, the forward had a fused ReLU and y_relu is its output: the backward
// masks dy by (y_relu > 0) first (the fused ReLU-backward prologue).
// bias may be null (no bias); dbias may be null (not computed).
// The CPU and CUDA twins take the same arguments (the CUDA ones a stream too), so that one dispatch
// (engine/dispatch.h) serves both. `workspace` is scratch of at least conv2d_workspace_bytes(s, pass)
// bytes (64-byte aligned; null when that is 0): the caller allocates it, so a memory plan counts it.
// The CPU twin computes in fp32 whatever the ConvMath.
#pragma once
#include <cstdint>

struct CUstream_st;

namespace seis {

struct Conv2dShape {
  int64_t n = 1, h = 1, w = 1;
  int64_t c = 1;  // input channels
  int64_t k = 1;  // output channels
  int64_t r = 3;  // filter height = width: 1 or 3
  int64_t pad() const { return r / 2; }
  int64_t pixels() const { return n * h * w; }
  int64_t weight_numel() const { return k * r * r * c; }
  double flops() const { return 2.0 * static_cast<double>(pixels()) * static_cast<double>(k * r * r * c); }
};

// Operand precision of the tensor-core path; accumulation is fp32 in every case.
enum class ConvMath { f32, tf32, bf16 };

enum class ConvPass { forward, backward_data, backward_weight };

namespace cpu {
// Depends on the shape and on the OpenMP thread count.
int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* workspace);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace);
}  // namespace cpu

namespace cuda {
// conv2d_workspace_bytes(s, pass) is host code in kernels/cuda/conv2d_workspace.h, so that a build
// without CUDA knows it too (a memory plan for a GPU is made on any machine).
void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* workspace, CUstream_st* stream);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace, CUstream_st* stream);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace, CUstream_st* stream);
}  // namespace cuda

}  // namespace seis
