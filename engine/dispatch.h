// SEIS_DISPATCH(t, fn, args...): runs a kernel's CPU twin, seis::cpu::fn(args...), or its CUDA twin,
// seis::cuda::fn(args..., stream), by the device of tensor `t`, with the compute stream of that
// device; nothing on a shape-only device (its tensors hold no values: a memory plan only allocates).
// The one place where an op chooses between the kernel libraries.
#pragma once
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "engine/tensor.h"

#if SEIS_HAVE_CUDA
#define SEIS_DISPATCH_CUDA_(dev, fn, ...) ::seis::cuda::fn(__VA_ARGS__, ::seis::cuda_compute_stream((dev).index))
#else
#define SEIS_DISPATCH_CUDA_(dev, fn, ...) SEIS_CHECK(false, #fn " on " << (dev).str() << " in a build without CUDA")
#endif

#define SEIS_DISPATCH(t, fn, ...)                      \
  do {                                                 \
    const ::seis::Device seis_dev_ = (t).device();     \
    if (seis_dev_.shape_only) break;                   \
    if (seis_dev_.is_cpu()) {                          \
      ::seis::cpu::fn(__VA_ARGS__);                    \
    } else {                                           \
      SEIS_DISPATCH_CUDA_(seis_dev_, fn, __VA_ARGS__); \
    }                                                  \
  } while (0)

namespace seis {

inline bool is_activation_type(DType t) { return t == DType::f32 || t == DType::bf16; }

// f(T{}) with T the C++ element type of an activation dtype: float or bf16. With SEIS_DISPATCH inside
// a generic lambda this dispatches on the device and the dtype at once.
template <typename F>
void with_activation_type(DType t, F&& f) {
  SEIS_CHECK(is_activation_type(t), "an activation of type " << dtype_name(t));
  if (t == DType::bf16) {
    f(bf16{});
  } else {
    f(float{});
  }
}

}  // namespace seis
