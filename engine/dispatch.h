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
