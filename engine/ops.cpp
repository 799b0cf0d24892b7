#include "engine/ops.h"

#include <cmath>
#include <cstring>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/activation.h"
#include "kernels/bce_loss.h"
#include "kernels/concat.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/elementwise.h"
#include "kernels/metrics.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#if SEIS_HAVE_CUDA
#include "kernels/conv2d_cudnn.h"
#endif

namespace seis {

namespace {

ExecConfig g_exec;

void check_nhwc(const Tensor& x, const char* what) {
  SEIS_CHECK(
      x.rank() == 4 && x.dtype() == DType::f32 && x.is_contiguous(),
      what << ": expected a contiguous f32 NHWC tensor, got " << shape_str(x.shape()) << " " << dtype_name(x.dtype()));
}

bool needs_grad(Tape* tape, const Var& v) { return tape != nullptr && v && v->requires_grad; }

Var output_var(Tape* tape, Tensor value, std::initializer_list<const Var*> inputs) {
  bool rg = false;
  for (const Var* v : inputs) rg = rg || needs_grad(tape, *v);
  return make_var(std::move(value), rg);
}

// cuDNN (--conv-backend cudnn) on a real GPU; otherwise our kernels, CPU or CUDA. cuDNN keeps its own
// scratch; ours is the workspace tensor, allocated here so that a memory plan counts it.
#if SEIS_HAVE_CUDA
bool use_cudnn(const Tensor& t) {
  return g_exec.conv_backend == ConvBackend::cudnn && t.device().is_cuda() && !t.device().shape_only;
}
#endif

Tensor conv_workspace(const Conv2dShape& s, ConvPass pass, Device d) {
  const int64_t bytes = d.is_cpu() ? cpu::conv2d_workspace_bytes(s, pass) : cuda::conv2d_workspace_bytes(s, pass);
  return bytes > 0 ? Tensor::empty({bytes}, DType::u8, d) : Tensor();
}

void conv_forward_call(const Conv2dShape& s, const Tensor& x, const Tensor& w, const Tensor& b, bool relu, Tensor& y) {
  const float* bias = b.defined() ? b.data<float>() : nullptr;
#if SEIS_HAVE_CUDA
  if (use_cudnn(x)) {
    cudnn::conv2d_forward(s, g_exec.math, x.data<float>(), w.data<float>(), bias, relu, y.data<float>(),
                          cuda_compute_stream(x.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::forward, x.device());
  SEIS_DISPATCH(x, conv2d_forward, s, g_exec.math, x.data<float>(), w.data<float>(), bias, relu, y.data<float>(),
                ws.raw());
}

void conv_backward_data_call(const Conv2dShape& s, const Tensor& dy, const float* y_relu, const Tensor& w, Tensor& dx) {
#if SEIS_HAVE_CUDA
  if (use_cudnn(dy)) {
    cudnn::conv2d_backward_data(s, g_exec.math, dy.data<float>(), y_relu, w.data<float>(), dx.data<float>(),
                                cuda_compute_stream(dy.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::backward_data, dy.device());
  SEIS_DISPATCH(dy, conv2d_backward_data, s, g_exec.math, dy.data<float>(), y_relu, w.data<float>(), dx.data<float>(),
                ws.raw());
}

void conv_backward_weight_call(const Conv2dShape& s, const Tensor& x, const Tensor& dy, const float* y_relu, Tensor& dw,
                               Tensor& db) {
  float* dbias = db.defined() ? db.data<float>() : nullptr;
#if SEIS_HAVE_CUDA
  if (use_cudnn(dy)) {
    cudnn::conv2d_backward_weight(s, g_exec.math, x.data<float>(), dy.data<float>(), y_relu, dw.data<float>(), dbias,
                                  cuda_compute_stream(dy.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::backward_weight, dy.device());
  SEIS_DISPATCH(dy, conv2d_backward_weight, s, g_exec.math, x.data<float>(), dy.data<float>(), y_relu, dw.data<float>(),
                dbias, ws.raw());
}

}  // namespace

void set_exec_config(const ExecConfig& c) { g_exec = c; }

ConvMath parse_precision(const std::string& name) {
  for (ConvMath m : {ConvMath::f32, ConvMath::tf32, ConvMath::bf16}) {
    if (name == precision_name(m)) return m;
  }
  throw UsageError("--precision: '" + name + "' is not fp32, tf32 or bf16");
}

const char* precision_name(ConvMath math) {
  switch (math) {
    case ConvMath::f32:
      return "fp32";
    case ConvMath::tf32:
      return "tf32";
    case ConvMath::bf16:
      return "bf16";
  }
  return "?";
}
const ExecConfig& exec_config() { return g_exec; }

Var conv2d(Tape* tape, const Var& x, const Var& w, const Var& b, bool relu) {
  check_nhwc(x->value, "conv2d input");
  const Tensor& wt = w->value;
  SEIS_CHECK(
      wt.rank() == 4 && wt.dim(1) == wt.dim(2) && (wt.dim(1) == 1 || wt.dim(1) == 3) && wt.dim(3) == x->value.dim(3),
      "conv2d weight " << shape_str(wt.shape()) << " for input " << shape_str(x->value.shape()));
  SEIS_CHECK(!b || (b->value.rank() == 1 && b->value.dim(0) == wt.dim(0)), "conv2d bias shape");
  Conv2dShape s;
  s.n = x->value.dim(0);
  s.h = x->value.dim(1);
  s.w = x->value.dim(2);
  s.c = x->value.dim(3);
  s.k = wt.dim(0);
  s.r = wt.dim(1);
  Tensor y = Tensor::empty({s.n, s.h, s.w, s.k}, DType::f32, x->value.device());
  conv_forward_call(s, x->value, wt, b ? b->value : Tensor(), relu, y);
  Var out = output_var(tape, y, {&x, &w, &b});
  if (!out->requires_grad) return out;

  // The rule holds x (for dw), w (for dx) and out (its gradient, and its value as the ReLU mask).
  tape->record([s, x, w, b, relu, out]() {
    if (!out->grad.defined()) return;
    const Tensor dy = out->grad;
    const float* y_relu = relu ? out->value.data<float>() : nullptr;
    if (x->requires_grad) {
      Tensor dx = Tensor::empty(x->value.shape(), DType::f32, dy.device());
      conv_backward_data_call(s, dy, y_relu, w->value, dx);
      accumulate_grad(*x, dx);
    }
    if (w->requires_grad || (b && b->requires_grad)) {
      Tensor dw = Tensor::empty(w->value.shape(), DType::f32, dy.device());
      Tensor db = b ? Tensor::empty(b->value.shape(), DType::f32, dy.device()) : Tensor();
      conv_backward_weight_call(s, x->value, dy, y_relu, dw, db);
      if (w->requires_grad) accumulate_grad(*w, dw);
      if (b && b->requires_grad) accumulate_grad(*b, db);
    }
    out->grad = Tensor();
  });
  return out;
}

Var relu(Tape* tape, const Var& x) {
  const Tensor& xv = x->value;
  Tensor y = Tensor::empty(xv.shape(), DType::f32, xv.device());
  SEIS_DISPATCH(xv, relu_forward, xv.numel(), xv.data<float>(), y.data<float>());
  Var out = output_var(tape, y, {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    Tensor dx = Tensor::empty(dy.shape(), DType::f32, dy.device());
    SEIS_DISPATCH(dy, relu_backward, dy.numel(), out->value.data<float>(), dy.data<float>(), dx.data<float>());
    accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

Var maxpool2d(Tape* tape, const Var& x) {
  const Tensor& xv = x->value;
  check_nhwc(xv, "maxpool2d input");
  const int64_t n = xv.dim(0), h = xv.dim(1), w = xv.dim(2), c = xv.dim(3);
  Tensor y = Tensor::empty({n, h / 2, w / 2, c}, DType::f32, xv.device());
  Tensor argmax = Tensor::empty({n, h / 2, w / 2, c}, DType::u8, xv.device());
  SEIS_DISPATCH(xv, maxpool2d_forward, n, h, w, c, xv.data<float>(), y.data<float>(), argmax.data<uint8_t>());
  Var out = output_var(tape, y, {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out, argmax, n, h, w, c]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    Tensor dx = Tensor::empty(x->value.shape(), DType::f32, dy.device());
    SEIS_DISPATCH(dy, maxpool2d_backward, n, h, w, c, dy.data<float>(), argmax.data<uint8_t>(), dx.data<float>());
    accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

Var upsample2x(Tape* tape, const Var& x) {
  const Tensor& xv = x->value;
  check_nhwc(xv, "upsample2x input");
  const int64_t n = xv.dim(0), h = xv.dim(1), w = xv.dim(2), c = xv.dim(3);
  Tensor y = Tensor::empty({n, 2 * h, 2 * w, c}, DType::f32, xv.device());
  SEIS_DISPATCH(xv, upsample2x_forward, n, h, w, c, xv.data<float>(), y.data<float>());
  Var out = output_var(tape, y, {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out, n, h, w, c]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    Tensor dx = Tensor::empty(x->value.shape(), DType::f32, dy.device());
    SEIS_DISPATCH(dy, upsample2x_backward, n, h, w, c, dy.data<float>(), dx.data<float>());
    accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

Var concat_channels(Tape* tape, const Var& a, const Var& b) {
  const Tensor &av = a->value, &bv = b->value;
  check_nhwc(av, "concat input");
  check_nhwc(bv, "concat input");
  SEIS_CHECK(av.dim(0) == bv.dim(0) && av.dim(1) == bv.dim(1) && av.dim(2) == bv.dim(2),
             "concat of " << shape_str(av.shape()) << " and " << shape_str(bv.shape()));
  const int64_t pixels = av.dim(0) * av.dim(1) * av.dim(2), ca = av.dim(3), cb = bv.dim(3);
  Tensor y = Tensor::empty({av.dim(0), av.dim(1), av.dim(2), ca + cb}, DType::f32, av.device());
  SEIS_DISPATCH(av, concat_channels, pixels, ca, cb, av.data<float>(), bv.data<float>(), y.data<float>());
  Var out = output_var(tape, y, {&a, &b});
  if (!out->requires_grad) return out;
  // Only the shapes are needed backward: the values of a and b are not kept alive for this rule.
  std::weak_ptr<VarImpl> aw = a, bw = b;
  tape->record([aw, bw, out, pixels, ca, cb]() {
    if (!out->grad.defined()) return;
    Var a = aw.lock(), b = bw.lock();
    const Tensor& dy = out->grad;
    Tensor da = Tensor::empty({dy.dim(0), dy.dim(1), dy.dim(2), ca}, DType::f32, dy.device());
    Tensor db = Tensor::empty({dy.dim(0), dy.dim(1), dy.dim(2), cb}, DType::f32, dy.device());
    SEIS_DISPATCH(dy, split_channels, pixels, ca, cb, dy.data<float>(), da.data<float>(), db.data<float>());
    if (a && a->requires_grad) accumulate_grad(*a, da);
    if (b && b->requires_grad) accumulate_grad(*b, db);
    out->grad = Tensor();
  });
  return out;
}

Var bce_with_logits(Tape* tape, const Var& logits, const Tensor& labels, float pos_weight, int64_t mean_over) {
  const Tensor& x = logits->value;
  SEIS_CHECK(x.dtype() == DType::f32 && labels.dtype() == DType::u8 && x.numel() == labels.numel() &&
                 x.device() == labels.device() && x.is_contiguous() && labels.is_contiguous(),
             "bce_with_logits: logits " << shape_str(x.shape()) << " and u8 labels " << shape_str(labels.shape())
                                        << " on the same device");
  const int64_t n = x.numel();
  const int64_t denom = mean_over > 0 ? mean_over : n;
  Tensor loss = Tensor::empty({1}, DType::f32, x.device());
  SEIS_DISPATCH(x, bce_with_logits_forward, n, x.data<float>(), labels.data<uint8_t>(), pos_weight, loss.data<float>());
  if (denom != n) {
    // The kernel's mean is over n; rescale to the mean over `denom` elements.
    const float f = static_cast<float>(static_cast<double>(n) / static_cast<double>(denom));
    SEIS_DISPATCH(loss, scale_inplace, 1, f, loss.data<float>());
  }
  Var out = output_var(tape, loss, {&logits});
  if (!out->requires_grad) return out;
  tape->record([logits, labels, out, pos_weight, n, denom]() {
    if (!out->grad.defined()) return;
    const float scale = scalar_value(out->grad) / static_cast<float>(denom);
    const Tensor& xv = logits->value;
    Tensor dx = Tensor::empty(xv.shape(), DType::f32, xv.device());
    SEIS_DISPATCH(xv, bce_with_logits_backward, n, xv.data<float>(), labels.data<uint8_t>(), pos_weight, scale,
                  dx.data<float>());
    accumulate_grad(*logits, dx);
    out->grad = Tensor();
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  SEIS_DISPATCH(x, sigmoid_forward, x.numel(), x.data<float>(), y.data<float>());
  return y;
}

std::array<int64_t, 3> confusion_counts(const Tensor& logits, const Tensor& labels, float threshold) {
  SEIS_CHECK(logits.numel() == labels.numel() && labels.dtype() == DType::u8 && logits.device() == labels.device(),
             "confusion_counts: logits " << shape_str(logits.shape()) << ", labels " << shape_str(labels.shape()));
  SEIS_CHECK(threshold > 0.0f && threshold < 1.0f, "threshold " << threshold << " outside (0, 1)");
  const float logit_t = static_cast<float>(std::log(static_cast<double>(threshold) / (1.0 - threshold)));
  Tensor buf = Tensor::empty({6}, DType::f32, logits.device());  // 24 bytes: room for 3 int64
  SEIS_DISPATCH(logits, confusion_counts, logits.numel(), logits.data<float>(), labels.data<uint8_t>(), logit_t,
                static_cast<int64_t*>(buf.raw()));
  std::array<int64_t, 3> r{};
  if (buf.device().shape_only) return r;  // nothing was counted
  Tensor host = buf.to(Device::cpu());
  std::memcpy(r.data(), host.raw(), sizeof(r));
  return r;
}

float scalar_value(const Tensor& t) {
  SEIS_CHECK(t.numel() == 1 && t.dtype() == DType::f32, "scalar_value of " << shape_str(t.shape()));
  if (t.device().shape_only) return 0.0f;  // a plan computes nothing
  return t.to(Device::cpu()).data<float>()[0];
}

}  // namespace seis
