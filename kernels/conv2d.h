// conv2d, stride 1, "same" padding (R/2), R = S = 1 or 3, with bias and optional fused ReLU.
// Layout: activations NHWC (x [N,H,W,C], y [N,H,W,K]); weights KRSC ([K,R,R,C]); bias [K].
// forward writes y (=); backward_data writes dx (=); backward_weight writes dw and dbias (=).
// When y_relu is not null, the forward had a fused ReLU and y_relu is its output: the backward
// masks dy by (y_relu > 0) first (the fused ReLU-backward prologue).
// bias may be null (no bias); dbias may be null (not computed).
// The CPU and CUDA twins take the same arguments (the CUDA ones a stream too), so that one dispatch
// (engine/dispatch.h) serves both. `workspace` is scratch of at least
// conv2d_workspace_bytes(s, pass, bf16) bytes (64-byte aligned; null when that is 0): the caller
// allocates it, so a memory plan counts it.
//
// Precision. Activations (x, y, dy, dx, y_relu) are f32 or bf16 storage (kernels/bf16.h); weights,
// bias and their gradients are always f32 (master weights). Products accumulate in fp32. The
// operands of the products are rounded to the ConvMath precision (bf16: nearest even; tf32: nearest,
// ties away, to 10 mantissa bits, as cvt.rna.tf32), the weights included; bf16 activations are
// bf16 already. bf16 outputs are rounded once, after bias and ReLU. The CPU twin rounds at the same
// points as the CUDA kernels, so it is their oracle; only the order of the fp32 sums differs.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"

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

// The decoder's joined inputs, read where they lie instead of materialised (the CPU kernels below;
// on CUDA the halo kernels, where cuda::conv2d_joins_in_place says so; elsewhere the engine
// materialises them, engine/ops.cpp):
// - concat: the conv's input is [a | b] along channels, a [N,H,W,s.c - cb] and b [N,H,W,cb];
//   backward_data writes the gradients of a and b;
// - upsampled: the conv's input is a [N,H/2,W/2,s.c] upsampled 2x by nearest neighbour (s is the
//   full-resolution conv; H and W even); backward_data writes a's gradient: each 2x2 block of the
//   full-resolution gradient, rounded to the activation type, summed in upsample2x_backward's order
//   and rounded once (kernels/upsample.h).
// Every value is the one the materialised form gives, bit for bit.
enum class ConvJoin { none, concat, upsampled };

// A conv input (T const) or input gradient (T) as its joined parts; join none: a alone, [N,H,W,s.c].
template <typename T>
struct ConvJoined {
  ConvJoin join = ConvJoin::none;
  T* a = nullptr;
  T* b = nullptr;  // concat only
  int64_t cb = 0;  // concat: b's channels
};

// An operand rounded to the ConvMath precision (f32: unchanged).
inline float round_operand(ConvMath math, float v) {
  if (math == ConvMath::bf16) return round_bf16(v);
  if (math == ConvMath::tf32) {  // cvt.rna.tf32.f32: nearest, ties away from zero; NaN and Inf kept
    uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
    std::memcpy(&v, &u, 4);
  }
  return v;
}

namespace cpu {
// Depends on the shape, the activation type and the OpenMP thread count.
int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* workspace);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias, bool relu,
                    bf16* y, void* workspace);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          bf16* dx, void* workspace);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const bf16* x, const bf16* dy, const bf16* y_relu,
                            float* dw, float* dbias, void* workspace);
// The joined forms (ConvJoin); their workspace is conv2d_workspace_bytes(s, pass, bf16, join).
int64_t conv2d_workspace_bytes(const Conv2dShape& s, ConvPass pass, bool bf16, ConvJoin join);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const float>& x, const float* w,
                    const float* bias, bool relu, float* y, void* workspace);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          const ConvJoined<float>& dx, void* workspace);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const float>& x, const float* dy,
                            const float* y_relu, float* dw, float* dbias, void* workspace);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const float* w,
                    const float* bias, bool relu, bf16* y, void* workspace);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          const ConvJoined<bf16>& dx, void* workspace);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const bf16* dy,
                            const bf16* y_relu, float* dw, float* dbias, void* workspace);
}  // namespace cpu

namespace cuda {
// conv2d_workspace_bytes(s, pass, bf16) is host code in kernels/cuda/conv2d_workspace.h, so that a
// build without CUDA knows it too (a memory plan for a GPU is made on any machine). The bf16 forms of
// the GEMMs widen their inputs into fp32 workspace, run the fp32-storage kernels with ConvMath::bf16
// operands and round the outputs (bf16-native loaders are the halo kernels' job, GPU-PLAN.md); the
// few-channel direct kernels read and write bf16 in place.
void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, void* workspace, CUstream_st* stream);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, void* workspace, CUstream_st* stream);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, void* workspace, CUstream_st* stream);
void conv2d_forward(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias, bool relu,
                    bf16* y, void* workspace, CUstream_st* stream);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          bf16* dx, void* workspace, CUstream_st* stream);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const bf16* x, const bf16* dy, const bf16* y_relu,
                            float* dw, float* dbias, void* workspace, CUstream_st* stream);
// The joined forms, where conv2d_joins_in_place(s, math, true, join, cb) (kernels/cuda/
// conv2d_workspace.h); their workspace is conv2d_joined_workspace_bytes(s, pass, join).
void conv2d_forward(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const float* w,
                    const float* bias, bool relu, bf16* y, void* workspace, CUstream_st* stream);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const bf16* dy, const bf16* y_relu, const float* w,
                          const ConvJoined<bf16>& dx, void* workspace, CUstream_st* stream);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const ConvJoined<const bf16>& x, const bf16* dy,
                            const bf16* y_relu, float* dw, float* dbias, void* workspace, CUstream_st* stream);
// Forward, and the 2x2 maxpool of y in the same kernel: pooled (=) [N, H/2, W/2, K] and argmax (=),
// the bits of maxpool2d_forward of y (kernels/pool.h). Where conv2d_pools_in_epilogue(s, math, true)
// (kernels/cuda/conv2d_workspace.h); no workspace.
void conv2d_forward_pooled(const Conv2dShape& s, ConvMath math, const bf16* x, const float* w, const float* bias,
                           bool relu, bf16* y, bf16* pooled, uint8_t* argmax, CUstream_st* stream);
}  // namespace cuda

}  // namespace seis
