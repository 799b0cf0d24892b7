// The deep-level conv on tensor cores (kernels/cuda/conv2d_deep.cu; layout: deep_conv_layout.h):
// bf16 activations in and out, fp32 weights rounded to bf16 operands, fp32 accumulation, 3x3,
// C and K multiples of 64 (deep::supports(C, K, R)); the contract of conv2d_forward_halo, plus a
// workspace for the bf16 filter.
// - forward: y (=) = conv(x) + bias, ReLU'd when relu. The fp32 KRSC filter is rounded once per call
//   into workspace (at least conv2d_forward_deep_workspace_bytes(s), which conv2d_workspace_bytes
//   includes for the bf16 forward) as bf16 [K][3][3][C].
// - backward_data: dx (=) = the conv of dy masked by (y_relu > 0) (no mask when y_relu is null) with
//   the flipped, channel-transposed filter, as kernels/conv2d.h defines it; deep::supports(K, C, R).
//   Workspace: at least conv2d_backward_data_deep_workspace_bytes(s) (the bf16 filter and the
//   masked dy), which conv2d_workspace_bytes includes for the bf16 backward-data.
// - backward_weight (conv2d_deep_wgrad.cu; layout: deep_wgrad_layout.h): dw (=) [K, 3, 3, C] and
//   dbias (=) [K] (not computed when null) of dy masked by (y_relu > 0), fp32; the pixel reduction
//   split across CTAs by a partition of the shape alone, the fp32 partials added in a fixed order.
//   Workspace: at least conv2d_backward_weight_deep_workspace_bytes(s) (the partials and the masked
//   dy), which conv2d_workspace_bytes includes for the bf16 backward-weight.
//
// Not the default yet: forward and backward-data run only where SEIS_CONV_IMPL lists "deep",
// backward-weight only where it lists "deep_wgrad" (conv_impl.h), until a GPU run has verified them
// (GPU-PLAN.md 5.1). Their algorithms are proven on the CPU emulator (tests/deep_conv_test.cpp).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/conv2d.h"

struct CUstream_st;

namespace seis::cuda {

// SEIS_CONV_IMPL lists "deep" (read once).
bool deep_conv_enabled();
int64_t conv2d_forward_deep_workspace_bytes(const Conv2dShape& s);
void conv2d_forward_deep(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu, bf16* y,
                         void* workspace, CUstream_st* stream);
int64_t conv2d_backward_data_deep_workspace_bytes(const Conv2dShape& s);
void conv2d_backward_data_deep(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w, bf16* dx,
                               void* workspace, CUstream_st* stream);

// SEIS_CONV_IMPL lists "deep_wgrad" (read once).
bool deep_wgrad_enabled();
int64_t conv2d_backward_weight_deep_workspace_bytes(const Conv2dShape& s);
void conv2d_backward_weight_deep(const Conv2dShape& s, const bf16* x, const bf16* dy, const bf16* y_relu, float* dw,
                                 float* dbias, void* workspace, CUstream_st* stream);

}  // namespace seis::cuda
