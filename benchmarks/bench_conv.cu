// bench_conv: every conv of the default 7-level UNet (base 8 channels) at --size (4096 by default)
// and --batch (1), forward, backward-data and backward-weight, own kernels against cuDNN in the same
// math. One JSON line per measurement:
//   {"conv", "pass", "impl", "math", "ms", "tflops", "gbps", "ratio_vs_cudnn"}
// ms: median of the timed repeats (CUDA events, after a warm-up). ratio_vs_cudnn = own ms / cuDNN ms
// (below 1: own is faster). gbps counts the minimal traffic: inputs read once, outputs written once,
// in the impl's element size (cuDNN bf16 runs on bf16 buffers, its bare call; own kernels read and
// write fp32). Own forward includes the fused bias + ReLU; backward passes run without the y_relu mask.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/cuda_check.h"
#include "engine/device_runtime.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_cudnn.h"
#include "kernels/cuda/conv2d_deep.h"
#include "kernels/cuda/conv2d_halo.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/pool.h"

namespace {

using seis::Conv2dShape;
using seis::ConvMath;

__global__ void fill_uniform_kernel(int64_t n, uint64_t seed, float* y) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    uint64_t z = (static_cast<uint64_t>(i) + seed * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 31;
    z *= 0x94D049BB133111EBull;
    z ^= z >> 29;
    y[i] = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
}

__global__ void to_bf16_kernel(int64_t n, const float* x, __nv_bfloat16* y) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    y[i] = __float2bfloat16_rn(x[i]);
  }
}

struct Buf {
  int64_t n;
  float* f = nullptr;
  __nv_bfloat16* b = nullptr;
  Buf(int64_t n_, uint64_t seed) : n(n_) {
    f = static_cast<float*>(seis::cuda_alloc(0, n * 4));
    b = static_cast<__nv_bfloat16*>(seis::cuda_alloc(0, n * 2));
    fill_uniform_kernel<<<4096, 256, 0, seis::cuda_compute_stream(0)>>>(n, seed, f);
    SEIS_CUDA_LAUNCH_CHECK();
    to_bf16_kernel<<<4096, 256, 0, seis::cuda_compute_stream(0)>>>(n, f, b);
    SEIS_CUDA_LAUNCH_CHECK();
  }
  ~Buf() {
    seis::cuda_free(0, f);
    seis::cuda_free(0, b);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

struct ConvSpec {
  std::string name;
  Conv2dShape s;
};

std::vector<ConvSpec> unet_convs(int64_t size, int64_t batch) {
  std::vector<ConvSpec> v;
  auto add = [&](const std::string& name, int l, int64_t c, int64_t k, int64_t r) {
    Conv2dShape s;
    s.n = batch;
    s.h = s.w = size >> l;
    s.c = c;
    s.k = k;
    s.r = r;
    v.push_back({name, s});
  };
  for (int l = 0; l < 7; ++l) {
    const int64_t cl = int64_t{8} << l;
    add("enc." + std::to_string(l) + ".conv1", l, l == 0 ? 1 : cl / 2, cl, 3);
    add("enc." + std::to_string(l) + ".conv2", l, cl, cl, 3);
  }
  for (int l = 5; l >= 0; --l) {
    const int64_t cl = int64_t{8} << l;
    add("up." + std::to_string(l), l, 2 * cl, cl, 3);
    add("dec." + std::to_string(l) + ".conv1", l, 2 * cl, cl, 3);
    add("dec." + std::to_string(l) + ".conv2", l, cl, cl, 3);
  }
  add("head", 0, 8, 1, 1);
  return v;
}

// Median ms of `fn` on the compute stream: one warm-up, then repeats sized to about 150 ms.
double time_ms(const std::function<void()>& fn, bool quick) {
  cudaStream_t stream = seis::cuda_compute_stream(0);
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  fn();  // warm-up (and algorithm choice for cuDNN)
  CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> t;
  auto once = [&] {
    CUDA_CHECK(cudaEventRecord(a, stream));
    fn();
    CUDA_CHECK(cudaEventRecord(b, stream));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  };
  once();
  const int reps = quick ? 3 : std::clamp(static_cast<int>(150.0 / std::max(t[0], 1e-3f)), 3, 20);
  for (int i = 1; i < reps; ++i) once();
  CUDA_CHECK(cudaEventDestroy(a));
  CUDA_CHECK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

const char* math_name(ConvMath m) { return m == ConvMath::f32 ? "f32" : m == ConvMath::tf32 ? "tf32" : "bf16"; }

int run(int argc, char** argv) {
  int64_t size = 4096, batch = 1;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--size" && i + 1 < argc) {
      size = std::atoll(argv[++i]);
    } else if (a == "--batch" && i + 1 < argc) {
      batch = std::atoll(argv[++i]);
    } else if (a == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: bench_conv [--size 4096|1024] [--batch 1] [--quick]\n");
      return 2;
    }
  }
  if (size < 64 || size % 64 != 0) {
    std::fprintf(stderr, "bench_conv: --size must be a multiple of 64 (7 levels), got %lld\n",
                 static_cast<long long>(size));
    return 2;
  }
  if (seis::cuda_device_count() == 0) {
    std::fprintf(stderr, "bench_conv: no CUDA GPU\n");
    return 1;
  }
  std::fprintf(stderr, "bench_conv: %s, size %lld, batch %lld%s\n", seis::cuda_device_description(0).c_str(),
               static_cast<long long>(size), static_cast<long long>(batch), quick ? ", quick" : "");
  cudaStream_t stream = seis::cuda_compute_stream(0);
  seis::CudaScratchPool pool(0);
  const std::vector<ConvMath> maths = quick ? std::vector<ConvMath>{ConvMath::bf16}
                                            : std::vector<ConvMath>{ConvMath::bf16, ConvMath::tf32, ConvMath::f32};

  for (const ConvSpec& spec : unet_convs(size, batch)) {
    const Conv2dShape& s = spec.s;
    const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, nw = s.weight_numel();
    Buf x(nx, 1), w(nw, 2), bias(s.k, 3), dy(ny, 4);
    Buf y(ny, 5), dx(nx, 6), dw(nw, 7), db(s.k, 8);
    // Our kernels' scratch, allocated once per shape (the engine allocates it per call).
    Buf ws_data((seis::cuda::conv2d_workspace_bytes(s, seis::ConvPass::backward_data, false) + 3) / 4, 9);
    Buf ws_weight((seis::cuda::conv2d_workspace_bytes(s, seis::ConvPass::backward_weight, false) + 3) / 4, 10);
    for (const char* pass : {"forward", "backward_data", "backward_weight"}) {
      // Bytes moved at 4 bytes per element; the bf16 cuDNN call moves half.
      double elems = 0;
      if (std::strcmp(pass, "forward") == 0) elems = static_cast<double>(nx + nw + ny);
      if (std::strcmp(pass, "backward_data") == 0) elems = static_cast<double>(ny + nw + nx);
      if (std::strcmp(pass, "backward_weight") == 0) elems = static_cast<double>(nx + ny + nw);
      for (ConvMath math : maths) {
        double ms[2] = {0, 0};
        for (int impl = 0; impl < 2; ++impl) {  // 0: cuDNN first, so that own lines can carry the ratio
          std::function<void()> fn;
          const bool cudnn = impl == 0;
          if (std::strcmp(pass, "forward") == 0) {
            if (cudnn) {
              fn = math == ConvMath::bf16 ? std::function<void()>([&, math] {
                seis::cudnn::conv2d_forward_raw(s, math, x.b, w.b, y.b, pool, stream);
              })
                                          : std::function<void()>([&, math] {
                                              seis::cudnn::conv2d_forward_raw(s, math, x.f, w.f, y.f, pool, stream);
                                            });
            } else {
              fn = [&, math] { seis::cuda::conv2d_forward(s, math, x.f, w.f, bias.f, true, y.f, nullptr, stream); };
            }
          } else if (std::strcmp(pass, "backward_data") == 0) {
            if (cudnn) {
              fn = math == ConvMath::bf16
                       ? std::function<void()>([&, math] {
                           seis::cudnn::conv2d_backward_data_raw(s, math, dy.b, w.b, dx.b, pool, stream);
                         })
                       : std::function<void()>([&, math] {
                           seis::cudnn::conv2d_backward_data_raw(s, math, dy.f, w.f, dx.f, pool, stream);
                         });
            } else {
              fn = [&, math] {
                seis::cuda::conv2d_backward_data(s, math, dy.f, nullptr, w.f, dx.f, ws_data.f, stream);
              };
            }
          } else {
            if (cudnn) {
              fn = math == ConvMath::bf16
                       ? std::function<void()>([&, math] {
                           seis::cudnn::conv2d_backward_weight_raw(s, math, x.b, dy.b, dw.b, pool, stream);
                         })
                       : std::function<void()>([&, math] {
                           seis::cudnn::conv2d_backward_weight_raw(s, math, x.f, dy.f, dw.f, pool, stream);
                         });
            } else {
              fn = [&, math] {
                seis::cuda::conv2d_backward_weight(s, math, x.f, dy.f, nullptr, dw.f, db.f, ws_weight.f, stream);
              };
            }
          }
          double t = -1;
          try {
            t = time_ms(fn, quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s %s %s %s failed: %s\n", spec.name.c_str(), pass,
                         cudnn ? "cudnn" : "own", math_name(math), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          ms[impl] = t;
          const double bytes = elems * (cudnn && math == ConvMath::bf16 ? 2.0 : 4.0);
          const std::string ratio = cudnn ? "1.0" : ms[0] > 0 ? std::to_string(t / ms[0]) : "null";
          if (t > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"r\":%lld,\"pass\":\"%s\","
                "\"impl\":\"%s\",\"math\":\"%s\",\"ms\":%.4f,\"tflops\":%.2f,\"gbps\":%.1f,\"ratio_vs_cudnn\":%s}\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), static_cast<long long>(s.r), pass,
                cudnn ? "cudnn" : "own", math_name(math), t, s.flops() / (t * 1e9), bytes / (t * 1e6), ratio.c_str());
            std::fflush(stdout);
          }
        }
        // The halo kernel (not yet the default; kernels/cuda/conv2d_halo.h) on the same bf16 buffers,
        // with its fused bias and ReLU, against cuDNN's bare bf16 call.
        if (std::strcmp(pass, "forward") == 0 && math == ConvMath::bf16 && seis::cuda::halo::supports(s.c, s.k, s.r)) {
          const auto* xb = reinterpret_cast<const seis::bf16*>(x.b);
          auto* yb = reinterpret_cast<seis::bf16*>(y.b);
          double t = -1;
          try {
            t = time_ms([&] { seis::cuda::conv2d_forward_halo(s, xb, w.f, bias.f, true, yb, stream); }, quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s forward halo failed: %s\n", spec.name.c_str(), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          if (t > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"r\":%lld,\"pass\":\"forward\","
                "\"impl\":\"halo\",\"math\":\"bf16\",\"ms\":%.4f,\"tflops\":%.2f,\"gbps\":%.1f,\"ratio_vs_cudnn\":%s}"
                "\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), static_cast<long long>(s.r), t,
                s.flops() / (t * 1e9), static_cast<double>(nx + ny) * 2.0 / (t * 1e6),
                ms[0] > 0 ? std::to_string(t / ms[0]).c_str() : "null");
            std::fflush(stdout);
          }
        }
        // The encoder's second conv with its 2x2 maxpool in the epilogue (conv2d_forward_halo_pooled)
        // against the halo forward followed by the maxpool kernel, the two calls it replaces ("ratio":
        // pooled / pair; below 1, the fusion pays).
        if (std::strcmp(pass, "forward") == 0 && math == ConvMath::bf16 &&
            seis::cuda::halo::supports_pooled(s.c, s.k, s.r) && spec.name.rfind("enc.", 0) == 0 && s.h >= 2) {
          const auto* xb = reinterpret_cast<const seis::bf16*>(x.b);
          auto* yb = reinterpret_cast<seis::bf16*>(y.b);
          auto* pooled = reinterpret_cast<seis::bf16*>(dx.b);  // ny / 4 elements: dx (nx = ny) has room
          Buf arg((seis::maxpool2d_argmax_bytes(s.n, s.h, s.w, s.k) + 3) / 4, 12);
          auto* argmax = reinterpret_cast<uint8_t*>(arg.f);
          double fused = -1, pair = -1;
          try {
            fused = time_ms(
                [&] { seis::cuda::conv2d_forward_halo_pooled(s, xb, w.f, bias.f, true, yb, pooled, argmax, stream); },
                quick);
            pair = time_ms(
                [&] {
                  seis::cuda::conv2d_forward_halo(s, xb, w.f, bias.f, true, yb, stream);
                  seis::cuda::maxpool2d_forward(s.n, s.h, s.w, s.k, yb, pooled, argmax, stream);
                },
                quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s pooled forward failed: %s\n", spec.name.c_str(), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          if (fused > 0 && pair > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"pass\":\"forward_pooled\","
                "\"impl\":\"halo_pooled\",\"math\":\"bf16\",\"ms\":%.4f,\"pair_ms\":%.4f,\"ratio_vs_pair\":%.3f}\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), fused, pair, fused / pair);
            std::fflush(stdout);
          }
        }
        // The deep-level forward (not yet the default; kernels/cuda/conv2d_deep.h) likewise, levels 3-6,
        // including its per-call fp32 -> bf16 filter conversion into its workspace.
        if (std::strcmp(pass, "forward") == 0 && math == ConvMath::bf16 && seis::cuda::deep::supports(s.c, s.k, s.r)) {
          const auto* xb = reinterpret_cast<const seis::bf16*>(x.b);
          auto* yb = reinterpret_cast<seis::bf16*>(y.b);
          Buf ws_deep((seis::cuda::conv2d_forward_deep_workspace_bytes(s) + 3) / 4, 12);
          double t = -1;
          try {
            t = time_ms([&] { seis::cuda::conv2d_forward_deep(s, xb, w.f, bias.f, true, yb, ws_deep.f, stream); },
                        quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s forward deep failed: %s\n", spec.name.c_str(), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          if (t > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"r\":%lld,\"pass\":\"forward\","
                "\"impl\":\"deep\",\"math\":\"bf16\",\"ms\":%.4f,\"tflops\":%.2f,\"gbps\":%.1f,\"ratio_vs_cudnn\":%s}"
                "\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), static_cast<long long>(s.r), t,
                s.flops() / (t * 1e9), (static_cast<double>(nx + ny) * 2.0 + nw * 6.0) / (t * 1e6),
                ms[0] > 0 ? std::to_string(t / ms[0]).c_str() : "null");
            std::fflush(stdout);
          }
        }
        // The deep backward-data (not yet the default) on the same bf16 dy, without the mask (as the
        // other backward lines), with its flipped-filter conversion.
        if (std::strcmp(pass, "backward_data") == 0 && math == ConvMath::bf16 &&
            seis::cuda::deep::supports(s.k, s.c, s.r)) {
          const auto* dyb = reinterpret_cast<const seis::bf16*>(dy.b);
          auto* dxb = reinterpret_cast<seis::bf16*>(dx.b);
          Buf ws_deep((seis::cuda::conv2d_backward_data_deep_workspace_bytes(s) + 3) / 4, 13);
          double t = -1;
          try {
            t = time_ms([&] { seis::cuda::conv2d_backward_data_deep(s, dyb, nullptr, w.f, dxb, ws_deep.f, stream); },
                        quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s backward_data deep failed: %s\n", spec.name.c_str(), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          if (t > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"r\":%lld,"
                "\"pass\":\"backward_data\",\"impl\":\"deep\",\"math\":\"bf16\",\"ms\":%.4f,\"tflops\":%.2f,"
                "\"gbps\":%.1f,\"ratio_vs_cudnn\":%s}\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), static_cast<long long>(s.r), t,
                s.flops() / (t * 1e9), (static_cast<double>(nx + ny) * 2.0 + nw * 6.0) / (t * 1e6),
                ms[0] > 0 ? std::to_string(t / ms[0]).c_str() : "null");
            std::fflush(stdout);
          }
        }
        // The halo backward-weight (not yet the default) on the same bf16 x and dy, with dbias, its
        // partials in a workspace of their own; bytes: x and dy read once (bf16), dW and dbias written.
        if (std::strcmp(pass, "backward_weight") == 0 && math == ConvMath::bf16 &&
            seis::cuda::halo_wgrad::supports(s.c, s.k, s.r)) {
          const auto* xb = reinterpret_cast<const seis::bf16*>(x.b);
          const auto* dyb = reinterpret_cast<const seis::bf16*>(dy.b);
          Buf ws_halo(std::max<int64_t>(1, (seis::cuda::conv2d_backward_weight_halo_workspace_bytes(s) + 3) / 4), 11);
          double t = -1;
          try {
            t = time_ms(
                [&] { seis::cuda::conv2d_backward_weight_halo(s, xb, dyb, nullptr, dw.f, db.f, ws_halo.f, stream); },
                quick);
          } catch (const std::exception& e) {
            std::fprintf(stderr, "bench_conv: %s backward_weight halo failed: %s\n", spec.name.c_str(), e.what());
            CUDA_CHECK(cudaStreamSynchronize(stream));
          }
          if (t > 0) {
            std::printf(
                "{\"conv\":\"%s\",\"size\":%lld,\"batch\":%lld,\"c\":%lld,\"k\":%lld,\"r\":%lld,"
                "\"pass\":\"backward_weight\",\"impl\":\"halo\",\"math\":\"bf16\",\"ms\":%.4f,\"tflops\":%.2f,"
                "\"gbps\":%.1f,\"ratio_vs_cudnn\":%s}\n",
                spec.name.c_str(), static_cast<long long>(size), static_cast<long long>(batch),
                static_cast<long long>(s.c), static_cast<long long>(s.k), static_cast<long long>(s.r), t,
                s.flops() / (t * 1e9), (static_cast<double>(nx + ny) * 2.0 + (nw + s.k) * 4.0) / (t * 1e6),
                ms[0] > 0 ? std::to_string(t / ms[0]).c_str() : "null");
            std::fflush(stdout);
          }
        }
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv: %s\n", e.what());
    return 1;
  }
}
