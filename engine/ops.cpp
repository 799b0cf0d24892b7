#include "engine/ops.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "engine/dispatch.h"
#include "engine/enum_names.h"
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

void check_nhwc(const Tensor& x, const char* what) {
  SEIS_CHECK(x.rank() == 4 && is_activation_type(x.dtype()) && x.is_contiguous(),
             what << ": expected a contiguous f32 or bf16 NHWC tensor, got " << shape_str(x.shape()) << " "
                  << dtype_name(x.dtype()));
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
bool use_cudnn(const ExecConfig& exec, const Tensor& t) {
  if (exec.conv_backend != ConvBackend::cudnn || !t.device().is_cuda() || t.device().shape_only) return false;
  SEIS_CHECK(t.dtype() == DType::f32, "--conv-backend cudnn runs on fp32 activation storage only");
  return true;
}
#endif

// f(stream) for a pass that only the CUDA halo kernels have (a joined conv: conv2d_joins_in_place;
// a pooled forward: conv2d_pools_in_epilogue): bf16 only, on the tensor's device.
template <typename F>
void on_cuda_bf16(const Tensor& t, F&& f) {
  SEIS_CHECK(t.dtype() == DType::bf16, "a halo-only conv on " << t.device().str() << " of " << dtype_name(t.dtype()));
#if SEIS_HAVE_CUDA
  f(cuda_compute_stream(t.device().index));
#else
  (void)f;
  SEIS_CHECK(false, "a halo-only conv on " << t.device().str() << " in a build without CUDA");
#endif
}

// join: the kernels' joined forms (ConvJoin; on CUDA where joins_in_place says so). On CUDA, the
// workspace of the kernel that takes the pass (math: the halo kernels need less).
Tensor conv_workspace(const Conv2dShape& s, ConvPass pass, ConvMath math, const Tensor& act,
                      ConvJoin join = ConvJoin::none) {
  const Device d = act.device();
  const bool bf16 = act.dtype() == DType::bf16;
  int64_t bytes = 0;
  if (d.is_cpu()) {
    bytes = cpu::conv2d_workspace_bytes(s, pass, bf16, join);
  } else if (join != ConvJoin::none) {
    bytes = cuda::conv2d_joined_workspace_bytes(s, pass, join);
  } else {
    bytes = cuda::conv2d_workspace_bytes(s, pass, bf16, math);
  }
  return bytes > 0 ? Tensor::empty({bytes}, DType::u8, d) : Tensor();
}

void conv_forward_call(const ExecConfig& exec, const Conv2dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                       bool relu, Tensor& y) {
  const float* bias = b.defined() ? b.data<float>() : nullptr;
#if SEIS_HAVE_CUDA
  if (use_cudnn(exec, x)) {
    CudaScratchPool pool(x.device().index);
    cudnn::conv2d_forward(s, exec.math, x.data<float>(), w.data<float>(), bias, relu, y.data<float>(), pool,
                          cuda_compute_stream(x.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::forward, exec.math, x);
  with_activation_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(x, conv2d_forward, s, exec.math, x.data<T>(), w.data<float>(), bias, relu, y.data<T>(), ws.raw());
  });
}

void conv_backward_data_call(const ExecConfig& exec, const Conv2dShape& s, const Tensor& dy, const Tensor& y_relu,
                             const Tensor& w, Tensor& dx) {
#if SEIS_HAVE_CUDA
  if (use_cudnn(exec, dy)) {
    CudaScratchPool pool(dy.device().index);
    cudnn::conv2d_backward_data(s, exec.math, dy.data<float>(), y_relu.data<float>(), w.data<float>(), dx.data<float>(),
                                pool, cuda_compute_stream(dy.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::backward_data, exec.math, dy);
  with_activation_type(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(dy, conv2d_backward_data, s, exec.math, dy.data<T>(), y_relu.data<T>(), w.data<float>(), dx.data<T>(),
                  ws.raw());
  });
}

void conv_backward_weight_call(const ExecConfig& exec, const Conv2dShape& s, const Tensor& x, const Tensor& dy,
                               const Tensor& y_relu, Tensor& dw, Tensor& db) {
  float* dbias = db.defined() ? db.data<float>() : nullptr;
#if SEIS_HAVE_CUDA
  if (use_cudnn(exec, dy)) {
    CudaScratchPool pool(dy.device().index);
    cudnn::conv2d_backward_weight(s, exec.math, x.data<float>(), dy.data<float>(), y_relu.data<float>(),
                                  dw.data<float>(), dbias, pool, cuda_compute_stream(dy.device().index));
    return;
  }
#endif
  const Tensor ws = conv_workspace(s, ConvPass::backward_weight, exec.math, dy);
  with_activation_type(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(dy, conv2d_backward_weight, s, exec.math, x.data<T>(), dy.data<T>(), y_relu.data<T>(),
                  dw.data<float>(), dbias, ws.raw());
  });
}

// An activation-shaped tensor like `like`: its dtype and device.
Tensor empty_like(const Shape& shape, const Tensor& like) { return Tensor::empty(shape, like.dtype(), like.device()); }

}  // namespace

namespace {
constexpr EnumName<ConvMath> kPrecisionNames[] = {
    {ConvMath::f32, "fp32"}, {ConvMath::tf32, "tf32"}, {ConvMath::bf16, "bf16"}};
constexpr EnumName<ConvBackend> kConvBackendNames[] = {{ConvBackend::own, "own"}, {ConvBackend::cudnn, "cudnn"}};
}  // namespace

ConvMath parse_precision(const std::string& name) { return parse_enum(kPrecisionNames, name, "--precision"); }
const char* precision_name(ConvMath math) { return enum_name(kPrecisionNames, math); }
std::vector<std::string> precision_names() { return enum_names(kPrecisionNames); }

ConvBackend parse_conv_backend(const std::string& name) {
  return parse_enum(kConvBackendNames, name, "--conv-backend");
}
const char* conv_backend_name(ConvBackend backend) { return enum_name(kConvBackendNames, backend); }
std::vector<std::string> conv_backend_names() { return enum_names(kConvBackendNames); }

bool cuda_bf16_storage_enabled() {
  const char* e = std::getenv("SEIS_CUDA_BF16_STORAGE");
  return e != nullptr && std::string(e) == "1";
}

DType activation_dtype(const ExecConfig& exec, Device d) {
  if (exec.math != ConvMath::bf16) return DType::f32;
  return d.is_cpu() || cuda_bf16_storage_enabled() ? DType::bf16 : DType::f32;
}

Var cast(Tape* tape, const Var& x, DType dtype) {
  const Tensor& xv = x->value;
  SEIS_CHECK(is_activation_type(xv.dtype()) && is_activation_type(dtype) && xv.is_contiguous(),
             "cast of " << dtype_name(xv.dtype()) << " to " << dtype_name(dtype));
  if (xv.dtype() == dtype) return x;
  Tensor y = Tensor::empty(xv.shape(), dtype, xv.device());
  if (dtype == DType::bf16) {
    SEIS_DISPATCH(xv, convert, xv.numel(), xv.data<float>(), y.data<bf16>());
  } else {
    SEIS_DISPATCH(xv, convert, xv.numel(), xv.data<bf16>(), y.data<float>());
  }
  Var out = output_var(tape, y, {&x});
  if (!out->requires_grad) return out;
  const DType from = xv.dtype();
  tape->record([x, out, from]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    Tensor dx = Tensor::empty(dy.shape(), from, dy.device());
    if (from == DType::bf16) {
      SEIS_DISPATCH(dy, convert, dy.numel(), dy.data<float>(), dx.data<bf16>());
    } else {
      SEIS_DISPATCH(dy, convert, dy.numel(), dy.data<bf16>(), dx.data<float>());
    }
    accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

namespace {

// The conv of an input of shape `in` [N, H, W, C] (checked by the caller) with w and b.
Conv2dShape conv_shape(const Shape& in, const Var& w, const Var& b) {
  const Tensor& wt = w->value;
  SEIS_CHECK(wt.rank() == 4 && wt.dtype() == DType::f32 && wt.dim(1) == wt.dim(2) &&
                 (wt.dim(1) == 1 || wt.dim(1) == 3) && wt.dim(3) == in[3],
             "conv2d weight " << shape_str(wt.shape()) << " for input " << shape_str(in));
  SEIS_CHECK(!b || (b->value.rank() == 1 && b->value.dim(0) == wt.dim(0) && b->value.dtype() == DType::f32),
             "conv2d bias shape");
  Conv2dShape s;
  s.n = in[0];
  s.h = in[1];
  s.w = in[2];
  s.c = in[3];
  s.k = wt.dim(0);
  s.r = wt.dim(1);
  return s;
}

Conv2dShape conv_shape(const Tensor& x, const Var& w, const Var& b) {
  check_nhwc(x, "conv2d input");
  return conv_shape(x.shape(), w, b);
}

// A maxpool's output [N, H/2, W/2, C] and 2-bit argmax (kernels/pool.h) for an input like x.
struct PoolTensors {
  Tensor y, argmax;
};
PoolTensors pool_tensors(const Tensor& x) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  return {empty_like({n, h / 2, w / 2, c}, x),
          Tensor::empty({maxpool2d_argmax_bytes(n, h, w, c)}, DType::u8, x.device())};
}

// Whether the conv of shape s pools its output in the forward's epilogue: on CUDA where the halo
// forward takes it (cuda::conv2d_pools_in_epilogue), never on the CPU or cuDNN.
bool pools_in_epilogue(const ExecConfig& exec, const Tensor& x, const Conv2dShape& s) {
  if (x.device().is_cpu()) return false;
#if SEIS_HAVE_CUDA
  if (use_cudnn(exec, x)) return false;
#endif
  return cuda::conv2d_pools_in_epilogue(s, exec.math, x.dtype() == DType::bf16);
}

// y = conv(x) for the shape s. With `pool`, where the forward pools in its epilogue, also the maxpool
// of y into *pool (one kernel); elsewhere *pool is left undefined and the caller pools y.
Tensor conv_forward_value(const ExecConfig& exec, const Conv2dShape& s, const Tensor& x, const Var& w, const Var& b,
                          bool relu, PoolTensors* pool = nullptr) {
  Tensor y = empty_like({s.n, s.h, s.w, s.k}, x);
  if (pool == nullptr || !pools_in_epilogue(exec, x, s)) {
    conv_forward_call(exec, s, x, w->value, b ? b->value : Tensor(), relu, y);
    return y;
  }
  *pool = pool_tensors(y);
  if (x.device().shape_only) return y;
  on_cuda_bf16(x, [&](CUstream_st* stream) {
    cuda::conv2d_forward_pooled(s, exec.math, x.data<bf16>(), w->value.data<float>(),
                                b ? b->value.data<float>() : nullptr, relu, y.data<bf16>(), pool->y.data<bf16>(),
                                pool->argmax.data<uint8_t>(), stream);
  });
  return y;
}

// When w or b wants a gradient: dw and db (db only with b) made by compute(dw, db) into fresh fp32
// tensors on `d`, and accumulated into w and b.
template <typename F>
void weight_grads(const Var& w, const Var& b, Device d, const F& compute) {
  if (!w->requires_grad && !(b && b->requires_grad)) return;
  Tensor dw = Tensor::empty(w->value.shape(), DType::f32, d);
  Tensor db = b ? Tensor::empty(b->value.shape(), DType::f32, d) : Tensor();
  compute(dw, db);
  if (w->requires_grad) accumulate_grad(*w, dw);
  if (b && b->requires_grad) accumulate_grad(*b, db);
}

// The backward of out = conv(x, w) + b (ReLU'd when relu): dw and db go to w and b (x is needed
// only for them, and released once they are computed: a recomputed input dies before dx is made);
// returns dx when want_dx.
Tensor conv_backward(const ExecConfig& exec, const Conv2dShape& s, Tensor x, const Var& w, const Var& b, const Var& out,
                     bool relu, bool want_dx) {
  const Tensor dy = out->grad;
  const Tensor y_relu = relu ? out->value : Tensor();
  weight_grads(w, b, dy.device(),
               [&](Tensor& dw, Tensor& db) { conv_backward_weight_call(exec, s, x, dy, y_relu, dw, db); });
  x = Tensor();
  if (!want_dx) return Tensor();
  Tensor dx = empty_like({s.n, s.h, s.w, s.c}, dy);
  conv_backward_data_call(exec, s, dy, y_relu, w->value, dx);
  return dx;
}

void check_concat(const Tensor& a, const Tensor& b) {
  check_nhwc(a, "concat input");
  check_nhwc(b, "concat input");
  SEIS_CHECK(a.dim(0) == b.dim(0) && a.dim(1) == b.dim(1) && a.dim(2) == b.dim(2) && a.dtype() == b.dtype() &&
                 a.device() == b.device(),
             "concat of " << shape_str(a.shape()) << " " << dtype_name(a.dtype()) << " and " << shape_str(b.shape())
                          << " " << dtype_name(b.dtype()));
}

// [a | b] along channels, and its inverse for gradients.
Tensor concat_value(const Tensor& a, const Tensor& b) {
  check_concat(a, b);
  const int64_t pixels = a.dim(0) * a.dim(1) * a.dim(2), ca = a.dim(3), cb = b.dim(3);
  Tensor y = empty_like({a.dim(0), a.dim(1), a.dim(2), ca + cb}, a);
  with_activation_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(a, concat_channels, pixels, ca, cb, a.data<T>(), b.data<T>(), y.data<T>());
  });
  return y;
}

std::pair<Tensor, Tensor> split_value(const Tensor& dy, int64_t ca) {
  const int64_t pixels = dy.dim(0) * dy.dim(1) * dy.dim(2), cb = dy.dim(3) - ca;
  Tensor da = empty_like({dy.dim(0), dy.dim(1), dy.dim(2), ca}, dy);
  Tensor db = empty_like({dy.dim(0), dy.dim(1), dy.dim(2), cb}, dy);
  with_activation_type(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(dy, split_channels, pixels, ca, cb, dy.data<T>(), da.data<T>(), db.data<T>());
  });
  return {std::move(da), std::move(db)};
}

// Nearest x2 upsampling, and its backward (the sum of each input's four outputs).
Tensor upsample_value(const Tensor& x) {
  check_nhwc(x, "upsample2x input");
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  Tensor y = empty_like({n, 2 * h, 2 * w, c}, x);
  with_activation_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(x, upsample2x_forward, n, h, w, c, x.data<T>(), y.data<T>());
  });
  return y;
}

Tensor upsample_backward_value(const Tensor& dy) {
  const int64_t n = dy.dim(0), h = dy.dim(1) / 2, w = dy.dim(2) / 2, c = dy.dim(3);
  Tensor dx = empty_like({n, h, w, c}, dy);
  with_activation_type(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(dy, upsample2x_backward, n, h, w, c, dy.data<T>(), dx.data<T>());
  });
  return dx;
}

// The decoder's joined convs (ConvJoin, kernels/conv2d.h): the kernels read [a | b] and the
// upsampled input in place and write their gradients directly on the CPU, and on CUDA where the halo
// kernels take the conv (cuda::conv2d_joins_in_place: SEIS_CONV_IMPL=halo, bf16); elsewhere (and
// on cuDNN) the inputs are materialised for the length of each pass. s: the joined conv's shape;
// cb: a concat's second part's channels.
bool joins_in_place(const ExecConfig& exec, const Tensor& t, const Conv2dShape& s, ConvJoin join, int64_t cb) {
  if (t.device().is_cpu()) return true;
#if SEIS_HAVE_CUDA
  if (use_cudnn(exec, t)) return false;
#endif
  return cuda::conv2d_joins_in_place(s, exec.math, t.dtype() == DType::bf16, join, cb);
}

// x's joined parts, as the CPU kernels take them; T const for inputs, T for gradients.
template <typename T, typename Ten>
ConvJoined<T> joined(ConvJoin join, Ten& a, Ten* b) {
  ConvJoined<T> j;
  j.join = join;
  j.a = a.template data<std::remove_const_t<T>>();
  if (b != nullptr) {
    j.b = b->template data<std::remove_const_t<T>>();
    j.cb = b->dim(3);
  }
  return j;
}

// Forward of the conv of (a joined with b): y [N, H, W, K] as s says.
Tensor joined_forward(const ExecConfig& exec, const Conv2dShape& s, ConvJoin join, const Tensor& a, const Tensor* b,
                      const Var& w, const Var& bias, bool relu) {
  Tensor y = empty_like({s.n, s.h, s.w, s.k}, a);
  const Tensor ws = conv_workspace(s, ConvPass::forward, exec.math, a, join);
  if (a.device().shape_only) return y;
  const float* bp = bias ? bias->value.data<float>() : nullptr;
  if (!a.device().is_cpu()) {
    on_cuda_bf16(a, [&](CUstream_st* stream) {
      cuda::conv2d_forward(s, exec.math, joined<const bf16>(join, a, b), w->value.data<float>(), bp, relu,
                           y.data<bf16>(), ws.raw(), stream);
    });
    return y;
  }
  with_activation_type(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::conv2d_forward(s, exec.math, joined<const T>(join, a, b), w->value.data<float>(), bp, relu, y.data<T>(),
                        ws.raw());
  });
  return y;
}

// Backward of out = conv(a joined with b): dw and db to w and bias; the gradients of a and b (b:
// concat only) accumulated into them.
void joined_backward(const ExecConfig& exec, const Conv2dShape& s, ConvJoin join, const Var& a, const Var* b,
                     const Var& w, const Var& bias, const Var& out, bool relu) {
  const Tensor dy = out->grad;
  const Tensor y_relu = relu ? out->value : Tensor();
  const bool shape_only = dy.device().shape_only;
  weight_grads(w, bias, dy.device(), [&](Tensor& dw, Tensor& db) {
    const Tensor ws = conv_workspace(s, ConvPass::backward_weight, exec.math, dy, join);
    if (shape_only) return;
    if (!dy.device().is_cpu()) {
      on_cuda_bf16(dy, [&](CUstream_st* stream) {
        cuda::conv2d_backward_weight(s, exec.math, joined<const bf16>(join, a->value, b ? &(*b)->value : nullptr),
                                     dy.data<bf16>(), relu ? y_relu.data<bf16>() : nullptr, dw.data<float>(),
                                     db.defined() ? db.data<float>() : nullptr, ws.raw(), stream);
      });
      return;
    }
    with_activation_type(dy.dtype(), [&](auto tag) {
      using T = decltype(tag);
      cpu::conv2d_backward_weight(s, exec.math, joined<const T>(join, a->value, b ? &(*b)->value : nullptr),
                                  dy.data<T>(), relu ? y_relu.data<T>() : nullptr, dw.data<float>(),
                                  db.defined() ? db.data<float>() : nullptr, ws.raw());
    });
  });
  if (!a->requires_grad && !(b && (*b)->requires_grad)) return;
  Tensor da = empty_like(a->value.shape(), dy);
  Tensor db = b ? empty_like((*b)->value.shape(), dy) : Tensor();
  const Tensor ws = conv_workspace(s, ConvPass::backward_data, exec.math, dy, join);
  if (!shape_only && !dy.device().is_cpu()) {
    on_cuda_bf16(dy, [&](CUstream_st* stream) {
      cuda::conv2d_backward_data(s, exec.math, dy.data<bf16>(), relu ? y_relu.data<bf16>() : nullptr,
                                 w->value.data<float>(), joined<bf16>(join, da, b ? &db : nullptr), ws.raw(), stream);
    });
  } else if (!shape_only) {
    with_activation_type(dy.dtype(), [&](auto tag) {
      using T = decltype(tag);
      cpu::conv2d_backward_data(s, exec.math, dy.data<T>(), relu ? y_relu.data<T>() : nullptr, w->value.data<float>(),
                                joined<T>(join, da, b ? &db : nullptr), ws.raw());
    });
  }
  if (a->requires_grad) accumulate_grad(*a, da);
  if (b && (*b)->requires_grad) accumulate_grad(**b, db);
}

}  // namespace

namespace {

// The Var of y = conv(x) of shape s, whose value is `value`, and its backward rule.
Var conv_var(Tape* tape, const ExecConfig& exec, const Conv2dShape& s, const Var& x, const Var& w, const Var& b,
             bool relu, Tensor value) {
  Var out = output_var(tape, std::move(value), {&x, &w, &b});
  if (!out->requires_grad) return out;
  // The rule holds x (for dw), w (for dx) and out (its gradient, and its value as the ReLU mask).
  tape->record([exec, s, x, w, b, relu, out]() {
    if (!out->grad.defined()) return;
    Tensor dx = conv_backward(exec, s, x->value, w, b, out, relu, x->requires_grad);
    if (dx.defined()) accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

// The Var of maxpool2d(x), whose output and argmax p holds, and its backward rule.
Var pooled_var(Tape* tape, const Var& x, PoolTensors p) {
  const int64_t n = x->value.dim(0), h = x->value.dim(1), w = x->value.dim(2), c = x->value.dim(3);
  Var out = output_var(tape, std::move(p.y), {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out, argmax = std::move(p.argmax), n, h, w, c]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    // The pooled tensor is the skip connection of a UNet level: the decoder's gradient of it is
    // already there, and the pool's is added into it in place (the bits of accumulate_grad, without
    // a second full-size tensor and its add).
    const bool into = x->grad.defined() && !x->on_grad_ready;
    Tensor dx = into ? x->grad : empty_like(x->value.shape(), dy);
    with_activation_type(dy.dtype(), [&](auto tag) {
      using T = decltype(tag);
      SEIS_DISPATCH(dy, maxpool2d_backward, n, h, w, c, dy.data<T>(), argmax.data<uint8_t>(), dx.data<T>(), into);
    });
    if (!into) accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

// {y, maxpool2d(y)} from a conv that may have pooled in its epilogue (p defined) or not.
PooledConv with_pool(Tape* tape, Var y, PoolTensors p) {
  Var pooled = p.y.defined() ? pooled_var(tape, y, std::move(p)) : maxpool2d(tape, y);
  return {std::move(y), std::move(pooled)};
}

}  // namespace

Var conv2d(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu) {
  const Conv2dShape s = conv_shape(x->value, w, b);
  return conv_var(tape, exec, s, x, w, b, relu, conv_forward_value(exec, s, x->value, w, b, relu));
}

PooledConv conv2d_pooled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu) {
  const Conv2dShape s = conv_shape(x->value, w, b);
  PoolTensors p;
  Var y = conv_var(tape, exec, s, x, w, b, relu, conv_forward_value(exec, s, x->value, w, b, relu, &p));
  return with_pool(tape, std::move(y), std::move(p));
}

Var conv2d_concat(Tape* tape, const ExecConfig& exec, const Var& a, const Var& b, const Var& w, const Var& bias,
                  bool relu) {
  check_concat(a->value, b->value);
  const Conv2dShape s =
      conv_shape(Shape{a->value.dim(0), a->value.dim(1), a->value.dim(2), a->value.dim(3) + b->value.dim(3)}, w, bias);
  if (joins_in_place(exec, a->value, s, ConvJoin::concat, b->value.dim(3))) {
    Var out = output_var(tape, joined_forward(exec, s, ConvJoin::concat, a->value, &b->value, w, bias, relu),
                         {&a, &b, &w, &bias});
    if (!out->requires_grad) return out;
    tape->record([exec, s, a, b, w, bias, relu, out]() {
      if (!out->grad.defined()) return;
      joined_backward(exec, s, ConvJoin::concat, a, &b, w, bias, out, relu);
      out->grad = Tensor();
    });
    return out;
  }
  Tensor cat = concat_value(a->value, b->value);
  Var out = output_var(tape, conv_forward_value(exec, s, cat, w, bias, relu), {&a, &b, &w, &bias});
  cat = Tensor();
  if (!out->requires_grad) return out;
  const int64_t ca = a->value.dim(3);
  tape->record([exec, s, a, b, w, bias, relu, out, ca]() {
    if (!out->grad.defined()) return;
    const bool want_dx = a->requires_grad || b->requires_grad,
               want_dw = w->requires_grad || (bias && bias->requires_grad);
    Tensor dcat =
        conv_backward(exec, s, want_dw ? concat_value(a->value, b->value) : Tensor(), w, bias, out, relu, want_dx);
    if (want_dx) {
      auto [da, db] = split_value(dcat, ca);
      dcat = Tensor();
      if (a->requires_grad) accumulate_grad(*a, da);
      if (b->requires_grad) accumulate_grad(*b, db);
    }
    out->grad = Tensor();
  });
  return out;
}

Var conv2d_upsampled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w, const Var& b, bool relu) {
  check_nhwc(x->value, "upsample2x input");
  const Tensor& xv = x->value;
  const Conv2dShape s = conv_shape(Shape{xv.dim(0), 2 * xv.dim(1), 2 * xv.dim(2), xv.dim(3)}, w, b);
  if (joins_in_place(exec, xv, s, ConvJoin::upsampled, 0)) {
    Var out = output_var(tape, joined_forward(exec, s, ConvJoin::upsampled, xv, nullptr, w, b, relu), {&x, &w, &b});
    if (!out->requires_grad) return out;
    tape->record([exec, s, x, w, b, relu, out]() {
      if (!out->grad.defined()) return;
      joined_backward(exec, s, ConvJoin::upsampled, x, nullptr, w, b, out, relu);
      out->grad = Tensor();
    });
    return out;
  }
  Tensor up = upsample_value(x->value);
  Var out = output_var(tape, conv_forward_value(exec, s, up, w, b, relu), {&x, &w, &b});
  up = Tensor();
  if (!out->requires_grad) return out;
  tape->record([exec, s, x, w, b, relu, out]() {
    if (!out->grad.defined()) return;
    const bool want_dw = w->requires_grad || (b && b->requires_grad);
    Tensor dup =
        conv_backward(exec, s, want_dw ? upsample_value(x->value) : Tensor(), w, b, out, relu, x->requires_grad);
    if (dup.defined()) {
      Tensor dx = upsample_backward_value(dup);
      dup = Tensor();
      accumulate_grad(*x, dx);
    }
    out->grad = Tensor();
  });
  return out;
}

namespace {

// conv2d_pair_recomputed; with pool, the second conv may pool in its epilogue (conv_forward_value).
Var pair_recomputed(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w1, const Var& b1, const Var& w2,
                    const Var& b2, PoolTensors* pool) {
  const Conv2dShape s1 = conv_shape(x->value, w1, b1);
  Tensor mid = conv_forward_value(exec, s1, x->value, w1, b1, true);
  const Conv2dShape s2 = conv_shape(mid, w2, b2);
  Var out = output_var(tape, conv_forward_value(exec, s2, mid, w2, b2, true, pool), {&x, &w1, &b1, &w2, &b2});
  mid = Tensor();
  if (!out->requires_grad) return out;
  tape->record([exec, s1, s2, x, w1, b1, w2, b2, out]() {
    if (!out->grad.defined()) return;
    // The middle activation again, the same bits (the kernels are deterministic), then the two
    // convs' backward rules in the order the tape would have run them.
    const Var mid = make_var(conv_forward_value(exec, s1, x->value, w1, b1, true), true);
    mid->grad = conv_backward(exec, s2, mid->value, w2, b2, out, true, true);
    out->grad = Tensor();
    Tensor dx = conv_backward(exec, s1, x->value, w1, b1, mid, true, x->requires_grad);
    if (dx.defined()) accumulate_grad(*x, dx);
  });
  return out;
}

}  // namespace

Var conv2d_pair_recomputed(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w1, const Var& b1,
                           const Var& w2, const Var& b2) {
  return pair_recomputed(tape, exec, x, w1, b1, w2, b2, nullptr);
}

PooledConv conv2d_pair_recomputed_pooled(Tape* tape, const ExecConfig& exec, const Var& x, const Var& w1, const Var& b1,
                                         const Var& w2, const Var& b2) {
  PoolTensors p;
  Var y = pair_recomputed(tape, exec, x, w1, b1, w2, b2, &p);
  return with_pool(tape, std::move(y), std::move(p));
}

Var relu(Tape* tape, const Var& x) {
  const Tensor& xv = x->value;
  SEIS_CHECK(is_activation_type(xv.dtype()), "relu of " << dtype_name(xv.dtype()));
  Tensor y = empty_like(xv.shape(), xv);
  with_activation_type(xv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(xv, relu_forward, xv.numel(), xv.data<T>(), y.data<T>());
  });
  Var out = output_var(tape, y, {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out]() {
    if (!out->grad.defined()) return;
    const Tensor& dy = out->grad;
    Tensor dx = empty_like(dy.shape(), dy);
    with_activation_type(dy.dtype(), [&](auto tag) {
      using T = decltype(tag);
      SEIS_DISPATCH(dy, relu_backward, dy.numel(), out->value.data<T>(), dy.data<T>(), dx.data<T>());
    });
    accumulate_grad(*x, dx);
    out->grad = Tensor();
  });
  return out;
}

Var maxpool2d(Tape* tape, const Var& x) {
  const Tensor& xv = x->value;
  check_nhwc(xv, "maxpool2d input");
  const int64_t n = xv.dim(0), h = xv.dim(1), w = xv.dim(2), c = xv.dim(3);
  PoolTensors p = pool_tensors(xv);
  with_activation_type(xv.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(xv, maxpool2d_forward, n, h, w, c, xv.data<T>(), p.y.data<T>(), p.argmax.data<uint8_t>());
  });
  return pooled_var(tape, x, std::move(p));
}

Var upsample2x(Tape* tape, const Var& x) {
  Var out = output_var(tape, upsample_value(x->value), {&x});
  if (!out->requires_grad) return out;
  tape->record([x, out]() {
    if (!out->grad.defined()) return;
    accumulate_grad(*x, upsample_backward_value(out->grad));
    out->grad = Tensor();
  });
  return out;
}

Var concat_channels(Tape* tape, const Var& a, const Var& b) {
  Var out = output_var(tape, concat_value(a->value, b->value), {&a, &b});
  if (!out->requires_grad) return out;
  // Only the shapes are needed backward: the values of a and b are not kept alive for this rule.
  std::weak_ptr<VarImpl> aw = a, bw = b;
  const int64_t ca = a->value.dim(3);
  tape->record([aw, bw, out, ca]() {
    if (!out->grad.defined()) return;
    Var a = aw.lock(), b = bw.lock();
    auto [da, db] = split_value(out->grad, ca);
    if (a && a->requires_grad) accumulate_grad(*a, da);
    if (b && b->requires_grad) accumulate_grad(*b, db);
    out->grad = Tensor();
  });
  return out;
}

namespace {

// trace_valid u8 [N, W] on the device of labels [N, H, W], contiguous.
void check_trace_valid(const char* op, const Tensor& labels, const Tensor& trace_valid) {
  SEIS_CHECK(labels.rank() == 3 && trace_valid.dtype() == DType::u8 && trace_valid.rank() == 2 &&
                 trace_valid.dim(0) == labels.dim(0) && trace_valid.dim(1) == labels.dim(2) &&
                 trace_valid.device() == labels.device() && trace_valid.is_contiguous(),
             op << ": trace_valid " << shape_str(trace_valid.shape()) << " of " << dtype_name(trace_valid.dtype())
                << " for labels " << shape_str(labels.shape()) << "; expected u8 [N, W] on the same device");
}

}  // namespace

int64_t counted_elements(const Tensor& labels, const Tensor& trace_valid) {
  if (!trace_valid.defined() || trace_valid.device().shape_only) return labels.numel();
  check_trace_valid("counted_elements", labels, trace_valid);
  const Tensor host = trace_valid.to(Device::cpu());
  const uint8_t* v = host.data<uint8_t>();
  int64_t real = 0;
  for (int64_t i = 0; i < host.numel(); ++i) real += v[i] != 0;
  return real * labels.dim(1);
}

Var bce_with_logits(Tape* tape, const Var& logits, const Tensor& labels, float pos_weight, int64_t mean_over,
                    const Tensor& trace_valid) {
  const Tensor& x = logits->value;
  SEIS_CHECK(is_activation_type(x.dtype()) && labels.dtype() == DType::u8 && x.numel() == labels.numel() &&
                 x.device() == labels.device() && x.is_contiguous() && labels.is_contiguous(),
             "bce_with_logits: logits " << shape_str(x.shape()) << " and u8 labels " << shape_str(labels.shape())
                                        << " on the same device");
  const int64_t n = x.numel();
  const bool masked = trace_valid.defined();
  int64_t height = 0, width = 0, denom = 0;
  Tensor loss = Tensor::empty({1}, DType::f32, x.device());
  if (masked) {
    check_trace_valid("bce_with_logits", labels, trace_valid);
    height = labels.dim(1);
    width = labels.dim(2);
    denom = mean_over > 0 ? mean_over : counted_elements(labels, trace_valid);
    with_activation_type(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      SEIS_DISPATCH(x, bce_with_logits_masked_forward, n, x.data<T>(), labels.data<uint8_t>(),
                    trace_valid.data<uint8_t>(), height, width, pos_weight, denom, loss.data<float>());
    });
  } else {
    denom = mean_over > 0 ? mean_over : n;
    with_activation_type(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      SEIS_DISPATCH(x, bce_with_logits_forward, n, x.data<T>(), labels.data<uint8_t>(), pos_weight, loss.data<float>());
    });
    if (denom != n) {
      // The kernel's mean is over n; rescale to the mean over `denom` elements.
      const float f = static_cast<float>(static_cast<double>(n) / static_cast<double>(denom));
      SEIS_DISPATCH(loss, scale_inplace, 1, f, loss.data<float>());
    }
  }
  Var out = output_var(tape, loss, {&logits});
  if (!out->requires_grad) return out;
  tape->record([logits, labels, trace_valid, out, pos_weight, n, denom, height, width]() {
    if (!out->grad.defined()) return;
    // grad_scale = dloss / denom, divided on the loss's device (no host read inside the step). No
    // counted element (a batch of padding only): no gradient, rather than a division by 0.
    const Tensor& xv = logits->value;
    Tensor scale = Tensor::empty({1}, DType::f32, xv.device());
    if (denom > 0) {
      SEIS_DISPATCH(scale, divide, 1, out->grad.data<float>(), static_cast<float>(denom), scale.data<float>());
    } else {
      SEIS_DISPATCH(scale, fill, 1, 0.0f, scale.data<float>());
    }
    Tensor dx = empty_like(xv.shape(), xv);
    with_activation_type(xv.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if (trace_valid.defined()) {
        SEIS_DISPATCH(xv, bce_with_logits_masked_backward, n, xv.data<T>(), labels.data<uint8_t>(),
                      trace_valid.data<uint8_t>(), height, width, pos_weight, scale.data<float>(), dx.data<T>());
      } else {
        SEIS_DISPATCH(xv, bce_with_logits_backward, n, xv.data<T>(), labels.data<uint8_t>(), pos_weight,
                      scale.data<float>(), dx.data<T>());
      }
    });
    accumulate_grad(*logits, dx);
    out->grad = Tensor();
  });
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), DType::f32, x.device());
  with_activation_type(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(x, sigmoid_forward, x.numel(), x.data<T>(), y.data<float>());
  });
  return y;
}

std::array<int64_t, 3> confusion_counts(const Tensor& logits, const Tensor& labels, float threshold,
                                        const Tensor& trace_valid) {
  SEIS_CHECK(logits.numel() == labels.numel() && labels.dtype() == DType::u8 && logits.device() == labels.device(),
             "confusion_counts: logits " << shape_str(logits.shape()) << ", labels " << shape_str(labels.shape()));
  SEIS_CHECK(threshold > 0.0f && threshold < 1.0f, "threshold " << threshold << " outside (0, 1)");
  const float logit_t = static_cast<float>(std::log(static_cast<double>(threshold) / (1.0 - threshold)));
  Tensor buf = Tensor::empty({6}, DType::f32, logits.device());  // 24 bytes: room for 3 int64
  if (trace_valid.defined()) check_trace_valid("confusion_counts", labels, trace_valid);
  with_activation_type(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if (trace_valid.defined()) {
      SEIS_DISPATCH(logits, confusion_counts_masked, logits.numel(), logits.data<T>(), labels.data<uint8_t>(),
                    trace_valid.data<uint8_t>(), labels.dim(1), labels.dim(2), logit_t,
                    static_cast<int64_t*>(buf.raw()));
    } else {
      SEIS_DISPATCH(logits, confusion_counts, logits.numel(), logits.data<T>(), labels.data<uint8_t>(), logit_t,
                    static_cast<int64_t*>(buf.raw()));
    }
  });
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
