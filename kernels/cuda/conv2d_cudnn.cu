// conv2d through cuDNN's convolution API (kernels/conv2d_cudnn.h): NHWC tensors, KRSC filters
// (CUDNN_TENSOR_NHWC filter format), stride 1, pad R/2; bias, ReLU, the y_relu mask and the bf16
// conversions are small kernels around the cuDNN call. forward writes y (=); backward_data writes dx
// (=); backward_weight writes dw and dbias (=). One cuDNN handle per (device, stream), created on
// first use and kept for the life of the process; algorithms cached per shape, pass and math.
#include <cuda_bf16.h>
#include <cudnn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/conv2d_cudnn.h"
#include "kernels/cuda/common.cuh"

namespace seis::cudnn {
namespace {

using cuda::grid_for;
using cuda::grid_stride;
using cuda::kThreads;
using cuda::thread_index;

// ---- Small kernels around the cuDNN call --------------------------------------------------------------

// dst = src, masked by (mask > 0) when mask is not null; T is float or bf16.
template <class T>
__global__ void mask_convert_kernel(int64_t n, const float* __restrict__ src, const float* __restrict__ mask,
                                    T* __restrict__ dst) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    float v = src[i];
    if (mask != nullptr && !(mask[i] > 0.0f)) v = 0.0f;
    if constexpr (std::is_same_v<T, float>) {
      dst[i] = v;
    } else {
      dst[i] = __float2bfloat16_rn(v);
    }
  }
}

// y[p, k] = act(src[p, k] + bias[k]); src is float (may be y itself) or bf16.
template <class T>
__global__ void bias_act_kernel(int64_t n, int64_t k, const T* src, const float* __restrict__ bias, bool relu,
                                float* y) {
  for (int64_t i = thread_index(); i < n; i += grid_stride()) {
    float v;
    if constexpr (std::is_same_v<T, float>) {
      v = src[i];
    } else {
      v = __bfloat162float(src[i]);
    }
    if (bias != nullptr) v += bias[i % k];
    if (relu) v = fmaxf(v, 0.0f);
    y[i] = v;
  }
}

template <class T>
void mask_convert(int64_t n, const float* src, const float* mask, T* dst, cudaStream_t stream) {
  mask_convert_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(n, src, mask, dst);
  SEIS_CUDA_LAUNCH_CHECK();
}

template <class T>
void bias_act(int64_t n, int64_t k, const T* src, const float* bias, bool relu, float* y, cudaStream_t stream) {
  bias_act_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(n, k, src, bias, relu, y);
  SEIS_CUDA_LAUNCH_CHECK();
}

// ---- Handles, descriptors, algorithms -------------------------------------------------------------------

int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

cudnnHandle_t handle_for(cudaStream_t stream) {
  static std::mutex* mu = new std::mutex;
  static auto* handles = new std::map<std::pair<int, cudaStream_t>, cudnnHandle_t>;  // kept for the process
  const int device = current_device();
  std::lock_guard<std::mutex> lock(*mu);
  cudnnHandle_t& h = (*handles)[{device, stream}];
  if (h == nullptr) {
    CUDNN_CHECK(cudnnCreate(&h));
    CUDNN_CHECK(cudnnSetStream(h, stream));
  }
  return h;
}

// Scratch from the caller's pool, held for one call.
class Scratch {
 public:
  Scratch(ScratchPool& pool, int64_t bytes) : pool_(pool), p_(bytes > 0 ? pool.allocate(bytes) : nullptr) {}
  ~Scratch() {
    if (p_ != nullptr) pool_.release(p_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  ScratchPool& pool_;
  void* p_;
};

int to_int(int64_t v, const char* what) {
  SEIS_KERNEL_CHECK(v < (int64_t{1} << 31), "cuDNN conv backend: " << what << " has " << v
                                                                   << " elements, beyond cuDNN's int sizes; "
                                                                      "use the own conv backend (--conv-backend own)");
  return static_cast<int>(v);
}

// The descriptors of one conv: x [N,C,H,W] in NHWC, y [N,K,H,W] in NHWC, w [K,C,R,R] in KRSC.
struct Descs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  Descs(const Conv2dShape& s, ConvMath math) {
    to_int(s.pixels() * s.c, "the input");
    to_int(s.pixels() * s.k, "the output");
    const cudnnDataType_t dt = math == ConvMath::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    const int n = static_cast<int>(s.n), h = static_cast<int>(s.h), wd = static_cast<int>(s.w);
    const int c = static_cast<int>(s.c), k = static_cast<int>(s.k), r = static_cast<int>(s.r);
    const int pad = static_cast<int>(s.pad());
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, dt, n, c, h, wd));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, dt, n, k, h, wd));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NHWC, k, c, r, r));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, pad, pad, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math == ConvMath::f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
  }
  ~Descs() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(x);
  }
  Descs(const Descs&) = delete;
  Descs& operator=(const Descs&) = delete;
};

enum class Pass { fwd, bwd_data, bwd_filter };

struct Algo {
  int algo = 0;
  size_t workspace = 0;
};

using AlgoKey = std::tuple<int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

bool use_find() {
  const char* v = std::getenv("SEIS_CUDNN_FIND");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

constexpr size_t kMaxWorkspace = size_t{1} << 30;

// The first (fastest) successful, deterministic result whose workspace fits kMaxWorkspace; a
// non-deterministic one (atomics) only when cuDNN offers nothing else.
template <class Perf>
Algo pick(const Perf* perf, int count, const char* what) {
  for (bool need_deterministic : {true, false}) {
    for (int i = 0; i < count; ++i) {
      if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace &&
          (!need_deterministic || perf[i].determinism == CUDNN_DETERMINISTIC)) {
        return Algo{static_cast<int>(perf[i].algo), perf[i].memory};
      }
    }
  }
  SEIS_KERNEL_CHECK(false, "cuDNN offers no " << what << " algorithm for this conv within 1 GiB of workspace");
  return Algo{};
}

// Find (timed) runs the conv on the call's own buffers: their contents are overwritten anyway.
Algo algo_for(Pass pass, const Conv2dShape& s, ConvMath math, cudnnHandle_t h, const Descs& d, const void* a,
              const void* b, void* out, ScratchPool& pool) {
  static std::mutex* mu = new std::mutex;
  static auto* cache = new std::map<AlgoKey, Algo>;
  const AlgoKey key{current_device(), static_cast<int>(pass), static_cast<int>(math), s.n, s.h, s.w, s.c, s.k, s.r};
  {
    std::lock_guard<std::mutex> lock(*mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  constexpr int kMaxAlgos = 16;
  int count = 0;
  Algo algo;
  const bool find = use_find();
  Scratch ws(pool, find ? static_cast<int64_t>(kMaxWorkspace) : 0);
  if (pass == Pass::fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[kMaxAlgos];
    if (find) {
      CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x, a, d.w, b, d.conv, d.y, out, kMaxAlgos, &count, perf,
                                                         ws.get(), kMaxWorkspace));
    } else {
      CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, kMaxAlgos, &count, perf));
    }
    algo = pick(perf, count, "forward");
  } else if (pass == Pass::bwd_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[kMaxAlgos];
    if (find) {
      // a = dy, b = w, out = dx
      CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, b, d.y, a, d.conv, d.x, out, kMaxAlgos, &count,
                                                              perf, ws.get(), kMaxWorkspace));
    } else {
      CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, kMaxAlgos, &count, perf));
    }
    algo = pick(perf, count, "backward-data");
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kMaxAlgos];
    if (find) {
      // a = x, b = dy, out = dw
      CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, a, d.y, b, d.conv, d.w, out, kMaxAlgos, &count,
                                                                perf, ws.get(), kMaxWorkspace));
    } else {
      CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, kMaxAlgos, &count, perf));
    }
    algo = pick(perf, count, "backward-filter");
  }
  std::lock_guard<std::mutex> lock(*mu);
  (*cache)[key] = algo;
  return algo;
}

void check_shape(const Conv2dShape& s) {
  SEIS_KERNEL_CHECK(s.r == 1 || s.r == 3, "conv2d: filter size " << s.r << " (1 or 3 supported)");
  SEIS_KERNEL_CHECK(s.n >= 1 && s.h >= 1 && s.w >= 1 && s.c >= 1 && s.k >= 1, "cuDNN conv backend: empty shape "
                                                                                  << s.n << "x" << s.h << "x" << s.w
                                                                                  << " C=" << s.c << " K=" << s.k);
}

}  // namespace

// ---- Raw convolutions --------------------------------------------------------------------------------------

void conv2d_forward_raw(const Conv2dShape& s, ConvMath math, const void* x, const void* w, void* y, ScratchPool& pool,
                        CUstream_st* stream) {
  check_shape(s);
  const cudnnHandle_t h = handle_for(stream);
  const Descs d(s, math);
  const Algo algo = algo_for(Pass::fwd, s, math, h, d, x, w, y, pool);
  Scratch ws(pool, static_cast<int64_t>(algo.workspace));
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x, x, d.w, w, d.conv,
                                      static_cast<cudnnConvolutionFwdAlgo_t>(algo.algo), ws.get(), algo.workspace,
                                      &zero, d.y, y));
}

void conv2d_backward_data_raw(const Conv2dShape& s, ConvMath math, const void* dy, const void* w, void* dx,
                              ScratchPool& pool, CUstream_st* stream) {
  check_shape(s);
  const cudnnHandle_t h = handle_for(stream);
  const Descs d(s, math);
  const Algo algo = algo_for(Pass::bwd_data, s, math, h, d, dy, w, dx, pool);
  Scratch ws(pool, static_cast<int64_t>(algo.workspace));
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y, dy, d.conv,
                                           static_cast<cudnnConvolutionBwdDataAlgo_t>(algo.algo), ws.get(),
                                           algo.workspace, &zero, d.x, dx));
}

void conv2d_backward_weight_raw(const Conv2dShape& s, ConvMath math, const void* x, const void* dy, void* dw,
                                ScratchPool& pool, CUstream_st* stream) {
  check_shape(s);
  const cudnnHandle_t h = handle_for(stream);
  const Descs d(s, math);
  const Algo algo = algo_for(Pass::bwd_filter, s, math, h, d, x, dy, dw, pool);
  Scratch ws(pool, static_cast<int64_t>(algo.workspace));
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x, x, d.y, dy, d.conv,
                                             static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo.algo), ws.get(),
                                             algo.workspace, &zero, d.w, dw));
}

// ---- The backend ----------------------------------------------------------------------------------------------

void conv2d_forward(const Conv2dShape& s, ConvMath math, const float* x, const float* w, const float* bias, bool relu,
                    float* y, ScratchPool& pool, CUstream_st* stream) {
  check_shape(s);
  const int64_t ny = s.pixels() * s.k;
  if (math != ConvMath::bf16) {
    conv2d_forward_raw(s, math, x, w, y, pool, stream);
    if (bias != nullptr || relu) bias_act<float>(ny, s.k, y, bias, relu, y, stream);
    return;
  }
  Scratch xb(pool, s.pixels() * s.c * 2), wb(pool, s.weight_numel() * 2), yb(pool, ny * 2);
  mask_convert(s.pixels() * s.c, x, nullptr, xb.as<__nv_bfloat16>(), stream);
  mask_convert(s.weight_numel(), w, nullptr, wb.as<__nv_bfloat16>(), stream);
  conv2d_forward_raw(s, math, xb.get(), wb.get(), yb.get(), pool, stream);
  bias_act<__nv_bfloat16>(ny, s.k, yb.as<__nv_bfloat16>(), bias, relu, y, stream);
}

void conv2d_backward_data(const Conv2dShape& s, ConvMath math, const float* dy, const float* y_relu, const float* w,
                          float* dx, ScratchPool& pool, CUstream_st* stream) {
  check_shape(s);
  const int64_t ny = s.pixels() * s.k, nx = s.pixels() * s.c;
  if (math != ConvMath::bf16) {
    Scratch dym(pool, y_relu != nullptr ? ny * 4 : 0);
    const float* g = dy;
    if (y_relu != nullptr) {
      mask_convert(ny, dy, y_relu, dym.as<float>(), stream);
      g = dym.as<float>();
    }
    conv2d_backward_data_raw(s, math, g, w, dx, pool, stream);
    return;
  }
  Scratch gb(pool, ny * 2), wb(pool, s.weight_numel() * 2), dxb(pool, nx * 2);
  mask_convert(ny, dy, y_relu, gb.as<__nv_bfloat16>(), stream);
  mask_convert(s.weight_numel(), w, nullptr, wb.as<__nv_bfloat16>(), stream);
  conv2d_backward_data_raw(s, math, gb.get(), wb.get(), dxb.get(), pool, stream);
  bias_act<__nv_bfloat16>(nx, s.c, dxb.as<__nv_bfloat16>(), nullptr, false, dx, stream);
}

void conv2d_backward_weight(const Conv2dShape& s, ConvMath math, const float* x, const float* dy, const float* y_relu,
                            float* dw, float* dbias, ScratchPool& pool, CUstream_st* stream) {
  check_shape(s);
  const int64_t ny = s.pixels() * s.k, nx = s.pixels() * s.c;
  // The masked fp32 dy serves dbias (and the fp32 maths).
  Scratch dym(pool, y_relu != nullptr ? ny * 4 : 0);
  const float* g = dy;
  if (y_relu != nullptr) {
    mask_convert(ny, dy, y_relu, dym.as<float>(), stream);
    g = dym.as<float>();
  }
  const cudnnHandle_t h = handle_for(stream);
  if (dbias != nullptr) {
    cudnnTensorDescriptor_t gd = nullptr, bd = nullptr;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&gd));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&bd));
    const float one = 1.0f, zero = 0.0f;
    const cudnnStatus_t st = [&] {
      cudnnStatus_t e = cudnnSetTensor4dDescriptor(gd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, static_cast<int>(s.n),
                                                   static_cast<int>(s.k), static_cast<int>(s.h), static_cast<int>(s.w));
      if (e == CUDNN_STATUS_SUCCESS) {
        e = cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, static_cast<int>(s.k), 1, 1);
      }
      if (e == CUDNN_STATUS_SUCCESS) e = cudnnConvolutionBackwardBias(h, &one, gd, g, &zero, bd, dbias);
      return e;
    }();
    cudnnDestroyTensorDescriptor(bd);
    cudnnDestroyTensorDescriptor(gd);
    CUDNN_CHECK(st);
  }
  if (math != ConvMath::bf16) {
    conv2d_backward_weight_raw(s, math, x, g, dw, pool, stream);
    return;
  }
  Scratch xb(pool, nx * 2), gb(pool, ny * 2), dwb(pool, s.weight_numel() * 2);
  mask_convert(nx, x, nullptr, xb.as<__nv_bfloat16>(), stream);
  mask_convert(ny, g, nullptr, gb.as<__nv_bfloat16>(), stream);
  conv2d_backward_weight_raw(s, math, xb.get(), gb.get(), dwb.get(), pool, stream);
  bias_act<__nv_bfloat16>(s.weight_numel(), 1, dwb.as<__nv_bfloat16>(), nullptr, false, dw, stream);
}

}  // namespace seis::cudnn
