// The halo convs on tensor cores (kernels/cuda/conv2d_halo.cu): bf16 activations in and out, fp32
// weights rounded to bf16 operands, fp32 accumulation, 3x3, C and K in {8, 16, 32, 64}
// (halo::supports(C, K) for forward, halo::supports(K, C) for backward-data).
// - forward: y (=) = conv(x) + bias, ReLU'd when relu;
// - backward_data: dx (=) = the conv of dy masked by (y_relu > 0) (no mask when y_relu is null)
//   with the flipped, channel-transposed filter, as kernels/conv2d.h defines it;
// - backward_weight: dw (=) [K, 3, 3, C] and dbias (=) [K] (not computed when null) of dy masked by
//   (y_relu > 0), fp32; the pixel reduction split across CTAs by a partition of the shape alone
//   (halo_wgrad_layout.h), the fp32 partials (in workspace: at least
//   conv2d_backward_weight_halo_workspace_bytes(s), which conv2d_workspace_bytes includes) added in
//   a fixed order. halo_wgrad::supports(C, K).
//
// Not the default yet: it runs only where SEIS_CONV_IMPL lists "halo" (halo, or halo,deep), until a
// GPU run has verified it (GPU-PLAN.md 5.1). Its algorithm is proven on the CPU emulator (tests/halo_conv_test.cpp).
#pragma once
#include <cstdint>

#include "kernels/bf16.h"
#include "kernels/conv2d.h"

struct CUstream_st;

namespace seis::cuda {

// The joined forms read the decoder's joined inputs in place (ConvJoin, kernels/conv2d.h;
// halo::joined_supported: whole 8-channel chunks in each concat part, even images upsampled):
// forward and backward-weight stage x from its parts; backward-data writes the two gradients of a
// concat, or the gradient of an upsampled input's low-resolution tensor (each 2x2 quad of the
// rounded full-resolution gradient summed in the epilogue, the bits of upsample2x_backward).
// Whether they run is conv2d.cu's dispatch: halo_takes (kernels/cuda/conv2d_workspace.h).
void conv2d_forward_halo(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu, bf16* y,
                         CUstream_st* stream);
void conv2d_backward_data_halo(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w, bf16* dx,
                               CUstream_st* stream);
// forward, and the 2x2 maxpool of y in the epilogue (the encoder's second conv): pooled (=)
// [N, H/2, W/2, K] and argmax (=), the bits of maxpool2d_forward of y (kernels/pool.h).
void conv2d_forward_halo_pooled(const Conv2dShape& s, const bf16* x, const float* w, const float* bias, bool relu,
                                bf16* y, bf16* pooled, uint8_t* argmax, CUstream_st* stream);
void conv2d_forward_halo(const Conv2dShape& s, const ConvJoined<const bf16>& x, const float* w, const float* bias,
                         bool relu, bf16* y, CUstream_st* stream);
void conv2d_backward_data_halo(const Conv2dShape& s, const bf16* dy, const bf16* y_relu, const float* w,
                               const ConvJoined<bf16>& dx, CUstream_st* stream);
int64_t conv2d_backward_weight_halo_workspace_bytes(const Conv2dShape& s);
void conv2d_backward_weight_halo(const Conv2dShape& s, const bf16* x, const bf16* dy, const bf16* y_relu, float* dw,
                                 float* dbias, void* workspace, CUstream_st* stream);
void conv2d_backward_weight_halo(const Conv2dShape& s, const ConvJoined<const bf16>& x, const bf16* dy,
                                 const bf16* y_relu, float* dw, float* dbias, void* workspace, CUstream_st* stream);

}  // namespace seis::cuda
