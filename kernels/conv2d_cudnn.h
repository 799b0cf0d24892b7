// conv2d through cuDNN: the yardstick of the benchmarks and a user fallback (--conv-backend cudnn).
// Same arguments and semantics as seis::cuda::conv2d_* (kernels/conv2d.h): NHWC activations, KRSC
// weights, stride 1, pad R/2, bias and fused ReLU in forward, y_relu mask in backward; all (=).
//
// ConvMath maps to cuDNN as follows (accumulation is fp32 in every case):
// - f32:  fp32 tensors, CUDNN_FMA_MATH (no tensor cores, no TF32).
// - tf32: fp32 tensors, CUDNN_TENSOR_OP_MATH (cuDNN may use TF32 tensor cores).
// - bf16: the operands are converted to bf16 scratch buffers and cuDNN runs with bf16 tensors and
//   fp32 compute type (what PyTorch AMP does); the bf16 result is converted back to fp32 (with the
//   bias and ReLU). Outputs are therefore rounded to bf16 once.
// The algorithm comes from cudnnGet*_v7 (heuristics), once per shape, pass and math, cached; with
// SEIS_CUDNN_FIND=1 in the environment, from cudnnFind*Ex (timed) instead.
// Scratch (the algorithm's workspace, the bf16 copies, the masked gradient) comes from `pool`, on the
// current device, released once the work is enqueued on `stream`.
// cuDNN's 4-d descriptors take int sizes: tensors of 2^31 elements or more are refused with an error.
#pragma once
#include "kernels/conv2d.h"
#include "kernels/scratch_pool.h"

namespace seis::cudnn {

void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, ScratchPool& pool, CUstream_st* stream);
void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, ScratchPool& pool, CUstream_st* stream);
void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, ScratchPool& pool, CUstream_st* stream);

// The bare cuDNN convolutions, for benchmarks: no bias, ReLU, mask or conversion. The buffers hold
// the math's storage type: float for f32 and tf32, bf16 (2 bytes) for bf16.
void conv2d_forward_raw(const Conv2dShape& s, ConvMath math, const void* x, const void* w, void* y, ScratchPool& pool,
                        CUstream_st* stream);
void conv2d_backward_data_raw(const Conv2dShape& s, ConvMath math, const void* dy, const void* w, void* dx,
                              ScratchPool& pool, CUstream_st* stream);
void conv2d_backward_weight_raw(const Conv2dShape& s, ConvMath math, const void* x, const void* dy, void* dw,
                                ScratchPool& pool, CUstream_st* stream);

}  // namespace seis::cudnn
