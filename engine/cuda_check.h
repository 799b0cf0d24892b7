// Check macros for CUDA, cuBLAS, cuDNN and NCCL calls. A failure throws seis::Error carrying
// file:line, the failing call and the library's error string. Header-only, so that kernels/cuda
// can use it without linking the engine. Include cublas_v2.h, cudnn.h or nccl.h before using
// CUBLAS_CHECK, CUDNN_CHECK or NCCL_CHECK: the macros name their error-string functions.
#pragma once
#include <cuda_runtime.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "engine/error.h"

namespace seis::detail {

[[noreturn]] inline void throw_library_error(const char* lib, const char* file, int line, const char* call, long code,
                                             const char* what) {
  std::ostringstream os;
  os << file << ":" << line << ": " << lib << " error " << code << " (" << (what ? what : "unknown") << ") in " << call;
  throw ::seis::Error(os.str());
}

[[noreturn]] inline void throw_cuda_error(const char* file, int line, const char* call, cudaError_t err) {
  std::ostringstream os;
  os << file << ":" << line << ": CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") in "
     << call;
  if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice) {
    os << "; is an NVIDIA driver installed and a GPU visible (nvidia-smi)?";
  }
  throw ::seis::Error(os.str());
}

}  // namespace seis::detail

#define CUDA_CHECK(call)                                                           \
  do {                                                                             \
    const cudaError_t seis_cuda_err_ = (call);                                     \
    if (seis_cuda_err_ != cudaSuccess) {                                           \
      ::seis::detail::throw_cuda_error(__FILE__, __LINE__, #call, seis_cuda_err_); \
    }                                                                              \
  } while (0)

// After every kernel launch: catches bad launch configurations (and earlier asynchronous errors).
#define SEIS_CUDA_LAUNCH_CHECK()                                                             \
  do {                                                                                       \
    const cudaError_t seis_cuda_err_ = cudaGetLastError();                                   \
    if (seis_cuda_err_ != cudaSuccess) {                                                     \
      ::seis::detail::throw_cuda_error(__FILE__, __LINE__, "kernel launch", seis_cuda_err_); \
    }                                                                                        \
  } while (0)

// For destructors, which log instead of throwing.
#define CUDA_WARN(call)                                                                          \
  do {                                                                                           \
    const cudaError_t seis_cuda_err_ = (call);                                                   \
    if (seis_cuda_err_ != cudaSuccess && seis_cuda_err_ != cudaErrorCudartUnloading) {           \
      std::fprintf(stderr, "%s:%d: warning: CUDA error %s (%s) in %s\n", __FILE__, __LINE__,     \
                   cudaGetErrorName(seis_cuda_err_), cudaGetErrorString(seis_cuda_err_), #call); \
    }                                                                                            \
  } while (0)

#define CUBLAS_CHECK(call)                                                                                         \
  do {                                                                                                             \
    const cublasStatus_t seis_cublas_st_ = (call);                                                                 \
    if (seis_cublas_st_ != CUBLAS_STATUS_SUCCESS) {                                                                \
      ::seis::detail::throw_library_error("cuBLAS", __FILE__, __LINE__, #call, static_cast<long>(seis_cublas_st_), \
                                          cublasGetStatusString(seis_cublas_st_));                                 \
    }                                                                                                              \
  } while (0)

#define CUDNN_CHECK(call)                                                                                        \
  do {                                                                                                           \
    const cudnnStatus_t seis_cudnn_st_ = (call);                                                                 \
    if (seis_cudnn_st_ != CUDNN_STATUS_SUCCESS) {                                                                \
      ::seis::detail::throw_library_error("cuDNN", __FILE__, __LINE__, #call, static_cast<long>(seis_cudnn_st_), \
                                          cudnnGetErrorString(seis_cudnn_st_));                                  \
    }                                                                                                            \
  } while (0)

#define NCCL_CHECK(call)                                                                                        \
  do {                                                                                                          \
    const ncclResult_t seis_nccl_res_ = (call);                                                                 \
    if (seis_nccl_res_ != ncclSuccess) {                                                                        \
      ::seis::detail::throw_library_error("NCCL", __FILE__, __LINE__, #call, static_cast<long>(seis_nccl_res_), \
                                          ncclGetErrorString(seis_nccl_res_));                                  \
    }                                                                                                           \
  } while (0)
