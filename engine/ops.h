// The ops API: differentiable ops on Vars, dispatched to the CPU or CUDA kernels by the device
// of their inputs. With a null tape nothing is recorded (inference).
// Activations are NHWC [N, H, W, C]; conv weights KRSC [K, R, R, C]; labels u8 [N, H, W].
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "kernels/conv2d.h"

namespace seis {

enum class ConvBackend { own, cudnn };

// How the ops compute: operand precision and which conv implementation. Passed explicitly to the ops
// that depend on it (the convolutions and activation_dtype), never held in a global: the model
// carries the one it runs with (UNet::set_exec).
struct ExecConfig {
  ConvMath math = ConvMath::f32;
  ConvBackend conv_backend = ConvBackend::own;
};
// "fp32", "tf32" or "bf16" (the --precision flag); UsageError otherwise.
ConvMath parse_precision(const std::string& name);
const char* precision_name(ConvMath math);
std::vector<std::string> precision_names();  // the allowed names, in --help's order
// --precision, as every command explains it.
constexpr const char* kPrecisionHelp =
    "fp32 (exact), tf32 or bf16: conv operands rounded to it, fp32 accumulation; bf16 also stores activations "
    "and their gradients in bf16 (on CUDA only with SEIS_CUDA_BF16_STORAGE=1 until verified on a GPU)";
// "own" or "cudnn" (the --conv-backend flag); UsageError otherwise.
ConvBackend parse_conv_backend(const std::string& name);
const char* conv_backend_name(ConvBackend backend);
std::vector<std::string> conv_backend_names();

// Activations (and their gradients) are stored as activation_dtype(exec, device): bf16 under
// --precision bf16 (DESIGN.md "Precision"), else f32. Weights, biases and their gradients are f32.
// On CUDA, bf16 storage waits for its GPU verification: it is used only with SEIS_CUDA_BF16_STORAGE=1.
DType activation_dtype(const ExecConfig& exec, Device device);
bool cuda_bf16_storage_enabled();

// x converted to `dtype` (f32 or bf16); x itself when it has that type already.
Var cast(Tape* tape, const Var& x, DType dtype);
// y = conv(x, w) + b, then ReLU when `relu`. R = w.dim(1) (1 or 3), stride 1, same padding.
// `exec` chooses the precision of the products and the backend (own kernels or cuDNN).
Var conv2d(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu);
// conv2d of [a | b] (concatenated along channels) and of upsample2x(x), with the same results as
// the separate ops, but the concatenated and the upsampled tensors are never kept for backward. On
// the CPU they never exist at all: the kernels read a and b, or x, in place, and backward writes the
// gradients of a and b, or x, directly (ConvJoin, kernels/conv2d.h); on CUDA they are materialised
// for the length of each pass.
Var conv2d_concat(Tape* tape, const ExecConfig& exec, const Var& a, const Var& b, const Var& w, const Var& bias,
                  bool relu);
Var conv2d_upsampled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu);
// relu(conv2d(relu(conv2d(x, w1, b1)), w2, b2)), with the same results and gradients as the two
// convs, but the middle activation is not kept for backward: it is recomputed there from x. For the
// UNet's first level, whose input has one channel: the recompute costs 1/C2 of the second conv,
// and the level stores one full-resolution tensor fewer through the whole step.
Var conv2d_pair_recomputed(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w1, const Var& b1,
                           const Var& w2, const Var& b2);
// The encoder's second conv and the 2x2 maxpool of its output: {y, maxpool2d(y)}, with the values
// and gradients of the two ops in turn; on CUDA where the halo forward takes the conv, one kernel
// writes y, the pooled tensor and its argmax (cuda::conv2d_pools_in_epilogue).
struct PooledConv {
  Var y, pooled;
};
PooledConv conv2d_pooled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu);
PooledConv conv2d_pair_recomputed_pooled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w1, const Var& b1,
                                         const Var& w2, const Var& b2);
Var relu(Tape* tape, const Var& x);
Var maxpool2d(Tape* tape, const Var& x);   // 2x2, stride 2
Var upsample2x(Tape* tape, const Var& x);  // nearest
Var concat_channels(Tape* tape, const Var& a, const Var& b);
// Mean BCE with logits over all elements: logits [N,H,W,1], labels u8 [N,H,W]. A scalar [1].
// `mean_over` is the element count the mean divides by (0: logits' own count); a rank holding part
// of a batch passes the global count so that gradients sum to the full-batch mean.
// With `trace_valid` (u8 [N,W], 0 = a padding trace of a converted SEG-Y), only the elements of real
// traces count: the loss is their sum over `mean_over` (0: their own count, counted_elements()), and
// padding gets gradient 0. Undefined: the unmasked op, bit for bit.
Var bce_with_logits(Tape* tape, const Var& logits, const Tensor& labels, float pos_weight, int64_t mean_over = 0,
                    const Tensor& trace_valid = Tensor());
// The elements of labels [N,H,W] that the loss and the metrics count: all without trace_valid, else
// H x the real traces (trace_valid copied to the host; labels.numel() on a shape-only device).
int64_t counted_elements(const Tensor& labels, const Tensor& trace_valid);

// Not differentiated.
Tensor sigmoid(const Tensor& x);
// TP, FP, FN of (sigmoid(logits) >= threshold) against labels; with trace_valid [N,W] over real traces only.
std::array<int64_t, 3> confusion_counts(const Tensor& logits, const Tensor& labels, float threshold,
                                        const Tensor& trace_valid = Tensor());
// The value of a one-element f32 tensor on any device.
float scalar_value(const Tensor& t);

}  // namespace seis
