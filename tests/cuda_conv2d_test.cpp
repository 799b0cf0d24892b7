// seis::cuda and seis::cudnn conv2d against the CPU reference (kernels/cpu/conv2d.cpp): forward,
// backward_data and backward_weight, every ConvMath, tiny, odd and tile-misaligned shapes, with and
// without the fused ReLU and the y_relu mask; outputs poisoned with NaN first. One case past 2^31
// elements per indexing path, checked on sampled outputs against a direct double-precision loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "conv_util.h"
#include "engine/device_runtime.h"
#include "engine/tensor.h"
#include "kernels/bf16.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_cudnn.h"
#include "kernels/cuda/conv2d_deep.h"
#include "kernels/cuda/conv2d_halo.h"
#include "kernels/cuda/conv2d_workspace.h"
#include "kernels/cuda/deep_conv_layout.h"
#include "kernels/cuda/deep_wgrad_layout.h"
#include "kernels/cuda/halo_conv_layout.h"
#include "kernels/cuda/halo_wgrad_layout.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#include "test_util.h"

namespace seis {
namespace {

using test::all_close;
using test::random_vector;

constexpr int kDev = 0;

// A device buffer of float or bf16 from the caching allocator.
template <class T>
class DevArray {
 public:
  explicit DevArray(int64_t n) : n_(n), p_(static_cast<T*>(cuda_alloc(kDev, std::max<int64_t>(n, 1) * sizeof(T)))) {}
  explicit DevArray(const std::vector<T>& h) : DevArray(static_cast<int64_t>(h.size())) { upload(h); }
  ~DevArray() { cuda_free(kDev, p_); }
  DevArray(const DevArray&) = delete;
  DevArray& operator=(const DevArray&) = delete;
  void upload(const std::vector<T>& h) { cuda_copy_to_device(kDev, p_, h.data(), n_ * sizeof(T)); }
  void poison() { upload(std::vector<T>(static_cast<size_t>(n_), nan_value())); }
  std::vector<T> download() const {
    std::vector<T> h(static_cast<size_t>(n_));
    cuda_copy_to_host(kDev, h.data(), p_, n_ * sizeof(T));
    return h;
  }
  T* get() const { return p_; }

 private:
  static T nan_value() {
    if constexpr (std::is_same_v<T, bf16>) {
      return bf16{0x7fc0};
    } else {
      return std::numeric_limits<T>::quiet_NaN();
    }
  }
  int64_t n_;
  T* p_;
};
using DevBuf = DevArray<float>;

// The scratch an own-kernel call needs (kernels/cuda/conv2d_workspace.h).
DevBuf workspace(const Conv2dShape& s, ConvPass pass) {
  return DevBuf((cuda::conv2d_workspace_bytes(s, pass, false) + 3) / 4);
}

enum class Impl { own, cudnn };

const char* math_name(ConvMath m) { return m == ConvMath::f32 ? "f32" : m == ConvMath::tf32 ? "tf32" : "bf16"; }

struct Tol {
  double atol, rtol, nmse;
};

// Inputs are uniform in [-1, 1], so atol scales with sqrt(reduction length).
Tol tolerance(Impl impl, ConvMath math, int64_t reduction) {
  const double sq = std::sqrt(static_cast<double>(std::max<int64_t>(reduction, 1)));
  switch (math) {
    case ConvMath::f32:
      // cuDNN's fp32 algorithms include Winograd and FFT, less exact than a plain dot product.
      return impl == Impl::own ? Tol{1e-5 * sq, 1e-4, 1e-10} : Tol{1e-4 * sq, 1e-3, 1e-8};
    case ConvMath::tf32:
      return Tol{2e-3 * sq, 5e-3, 1e-5};
    case ConvMath::bf16:
      return Tol{1e-2 * sq, 2e-2, 1e-4};
  }
  return Tol{0, 0, 0};
}

struct Case {
  int64_t n, h, w, c, k, r;
};

std::string describe(const Case& cs) {
  return std::to_string(cs.n) + "x" + std::to_string(cs.h) + "x" + std::to_string(cs.w) + " C=" + std::to_string(cs.c) +
         " K=" + std::to_string(cs.k) + " R=" + std::to_string(cs.r);
}

// Every pass of one shape, for one implementation and math, against the CPU.
void check_case(const Case& cs, Impl impl, ConvMath math) {
  Conv2dShape s;
  s.n = cs.n;
  s.h = cs.h;
  s.w = cs.w;
  s.c = cs.c;
  s.k = cs.k;
  s.r = cs.r;
  const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, nw = s.weight_numel();
  const uint64_t seed = static_cast<uint64_t>(cs.n * 1000003 + cs.h * 1009 + cs.w * 101 + cs.c * 13 + cs.k * 7 + cs.r);
  const auto x = random_vector(nx, seed);
  const auto wt = random_vector(nw, seed + 1);
  const auto bias = random_vector(s.k, seed + 2);
  const auto dy = random_vector(ny, seed + 3);
  std::vector<float> y_relu(static_cast<size_t>(ny));
  test::cpu_conv_forward(s, x.data(), wt.data(), bias.data(), true, y_relu.data());

  DevBuf dx_in(x), dw_in(wt), dbias_in(bias), ddy(dy), dmask(y_relu);
  DevBuf dy_out(ny), dx_out(nx), ddw_out(nw), ddb_out(s.k);
  CUstream_st* stream = cuda_compute_stream(kDev);
  CudaScratchPool pool(kDev);
  const std::string where = describe(cs) + " " + (impl == Impl::own ? "own" : "cudnn") + " " + math_name(math);
  const int64_t rrc = s.r * s.r * s.c, rrk = s.r * s.r * s.k;

  for (bool relu : {false, true}) {
    std::vector<float> ref(static_cast<size_t>(ny));
    test::cpu_conv_forward(s, x.data(), wt.data(), bias.data(), relu, ref.data());
    dy_out.poison();
    if (impl == Impl::own) {
      cuda::conv2d_forward(s, math, dx_in.get(), dw_in.get(), dbias_in.get(), relu, dy_out.get(), nullptr, stream);
    } else {
      cudnn::conv2d_forward(s, math, dx_in.get(), dw_in.get(), dbias_in.get(), relu, dy_out.get(), pool, stream);
    }
    const auto got = dy_out.download();
    const Tol t = tolerance(impl, math, rrc);
    EXPECT_TRUE(all_close(got.data(), ref.data(), ny, t.atol, t.rtol, t.nmse)) << where << " forward relu=" << relu;
  }

  for (bool masked : {false, true}) {
    const float* mask_h = masked ? y_relu.data() : nullptr;
    const float* mask_d = masked ? dmask.get() : nullptr;
    {
      std::vector<float> ref(static_cast<size_t>(nx));
      test::cpu_conv_backward_data(s, dy.data(), mask_h, wt.data(), ref.data());
      dx_out.poison();
      if (impl == Impl::own) {
        cuda::conv2d_backward_data(s, math, ddy.get(), mask_d, dw_in.get(), dx_out.get(),
                                   workspace(s, ConvPass::backward_data).get(), stream);
      } else {
        cudnn::conv2d_backward_data(s, math, ddy.get(), mask_d, dw_in.get(), dx_out.get(), pool, stream);
      }
      const auto got = dx_out.download();
      const Tol t = tolerance(impl, math, rrk);
      EXPECT_TRUE(all_close(got.data(), ref.data(), nx, t.atol, t.rtol, t.nmse))
          << where << " backward_data masked=" << masked;
    }
    {
      std::vector<float> ref_w(static_cast<size_t>(nw)), ref_b(static_cast<size_t>(s.k));
      test::cpu_conv_backward_weight(s, x.data(), dy.data(), mask_h, ref_w.data(), ref_b.data());
      ddw_out.poison();
      ddb_out.poison();
      if (impl == Impl::own) {
        cuda::conv2d_backward_weight(s, math, dx_in.get(), ddy.get(), mask_d, ddw_out.get(), ddb_out.get(),
                                     workspace(s, ConvPass::backward_weight).get(), stream);
      } else {
        cudnn::conv2d_backward_weight(s, math, dx_in.get(), ddy.get(), mask_d, ddw_out.get(), ddb_out.get(), pool,
                                      stream);
      }
      const auto got_w = ddw_out.download();
      const auto got_b = ddb_out.download();
      const Tol t = tolerance(impl, math, s.pixels());
      EXPECT_TRUE(all_close(got_w.data(), ref_w.data(), nw, t.atol, t.rtol, t.nmse))
          << where << " backward_weight dw masked=" << masked;
      // dbias is an fp32 sum in every math.
      const Tol tb = tolerance(impl, ConvMath::f32, s.pixels());
      EXPECT_TRUE(all_close(got_b.data(), ref_b.data(), s.k, tb.atol, tb.rtol, tb.nmse))
          << where << " backward_weight dbias masked=" << masked;
    }
  }
}

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {1, 1, 1, 1, 1, 3},      // tiny
      {1, 1, 1, 1, 1, 1},      // tiny 1x1
      {1, 5, 7, 3, 5, 3},      // odd H/W, C=3 K=5
      {2, 33, 17, 3, 5, 3},    // C not a multiple of 4: scalar gather; split-K backward_weight
      {2, 33, 17, 24, 40, 3},  // tile-misaligned C and K, vector gather
      {1, 9, 11, 1, 8, 3},     // the 1-channel input conv: direct kernels
      {2, 7, 9, 8, 1, 1},      // the 1x1 head: direct kernels
      {1, 8, 8, 512, 512, 3},  // deep level: full tiles
      {1, 6, 70, 16, 16, 3},   // narrow column tiles; W spans three 32-pixel tiles
      {1, 5, 7, 40, 24, 1},    // 1x1 GEMM
      {1, 13, 10, 64, 2, 3},   // few outputs, many inputs: direct forward, GEMM backward
      {2, 64, 64, 8, 8, 3},    // a top-level conv: 8 channels
  };
  return c;
}

class CudaConv2d : public ::testing::TestWithParam<ConvMath> {};

TEST_P(CudaConv2d, OwnKernelsMatchCpu) {
  SEIS_NEED_GPU();
  for (const Case& cs : cases()) check_case(cs, Impl::own, GetParam());
}

TEST_P(CudaConv2d, CudnnMatchesCpu) {
  SEIS_NEED_GPU();
  for (const Case& cs : cases()) check_case(cs, Impl::cudnn, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Math, CudaConv2d, ::testing::Values(ConvMath::f32, ConvMath::tf32, ConvMath::bf16),
                         [](const ::testing::TestParamInfo<ConvMath>& i) { return std::string(math_name(i.param)); });

TEST(CudaConv2dDeterminism, BackwardWeightIsBitIdentical) {
  SEIS_NEED_GPU();
  Conv2dShape s;
  s.n = 2;
  s.h = 40;
  s.w = 50;
  s.c = 16;
  s.k = 24;
  s.r = 3;
  DevBuf x(random_vector(s.pixels() * s.c, 11)), dy(random_vector(s.pixels() * s.k, 12));
  DevBuf dw(s.weight_numel()), db(s.k);
  CUstream_st* stream = cuda_compute_stream(kDev);
  std::vector<float> first_w, first_b;
  for (int run = 0; run < 3; ++run) {
    dw.poison();
    cuda::conv2d_backward_weight(s, ConvMath::f32, x.get(), dy.get(), nullptr, dw.get(), db.get(),
                                 workspace(s, ConvPass::backward_weight).get(), stream);
    const auto w = dw.download();
    const auto b = db.download();
    if (run == 0) {
      first_w = w;
      first_b = b;
    } else {
      EXPECT_EQ(0, std::memcmp(w.data(), first_w.data(), w.size() * 4)) << "dw differs in run " << run;
      EXPECT_EQ(0, std::memcmp(b.data(), first_b.data(), b.size() * 4)) << "dbias differs in run " << run;
    }
  }
}

// ---- bf16 activations -----------------------------------------------------------------------------------
// The bf16 forms (widen into the workspace, the fp32 launchers, round once) against the CPU bf16
// twins, and bit for bit against the fp32 launchers run on the widened values.

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = seis::to_bf16(v[i]);
  return out;
}

std::vector<float> widen(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

// Bit equality of float or bf16 arrays, reporting the first mismatches.
template <class T>
::testing::AssertionResult bits_equal(const std::vector<T>& got, const std::vector<T>& ref) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << "sizes " << got.size() << ", " << ref.size();
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::memcmp(&got[i], &ref[i], sizeof(T)) != 0) {
      if (bad < 10) {
        first += "\n  [" + std::to_string(i) + "] got " + std::to_string(to_float(got[i])) + " want " +
                 std::to_string(to_float(ref[i]));
      }
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << ref.size() << " elements differ" << first;
}

// The scratch of the bf16 forms: the wide copies, then the fp32 pieces.
DevArray<uint8_t> workspace_bf16(const Conv2dShape& s, ConvPass pass) {
  return DevArray<uint8_t>(cuda::conv2d_workspace_bytes(s, pass, true));
}

// The CPU bf16 twin's scratch (cf. conv_util.h for the fp32 twins).
Tensor cpu_workspace_bf16(const Conv2dShape& s, ConvPass pass) {
  const int64_t bytes = cpu::conv2d_workspace_bytes(s, pass, true);
  return bytes > 0 ? Tensor::empty({bytes}, DType::u8) : Tensor();
}

// A bf16 output against the CPU: the tolerance of the math, plus one bf16 ulp (relative 2^-7 at
// most) for fp32 results a few ulp apart that round to neighbouring bf16 values.
Tol plus_bf16_ulp(Tol t) { return Tol{t.atol, t.rtol + 1.0 / 128, t.nmse + 1.0 / 65536}; }

Conv2dShape shape_of(const Case& cs) {
  Conv2dShape s;
  s.n = cs.n;
  s.h = cs.h;
  s.w = cs.w;
  s.c = cs.c;
  s.k = cs.k;
  s.r = cs.r;
  return s;
}

struct Bf16Inputs {
  std::vector<bf16> x, dy, y_relu;
  std::vector<float> wt, bias;
};

// Random inputs; y_relu from the CPU bf16 forward with ReLU (zeros where the mask is off).
Bf16Inputs bf16_inputs(const Case& cs, const Conv2dShape& s, ConvMath math) {
  const uint64_t seed = static_cast<uint64_t>(cs.n * 1000003 + cs.h * 1009 + cs.w * 101 + cs.c * 13 + cs.k * 7 + cs.r);
  Bf16Inputs in;
  in.x = to_bf16(random_vector(s.pixels() * s.c, seed + 10));
  in.wt = random_vector(s.weight_numel(), seed + 11);
  in.bias = random_vector(s.k, seed + 12);
  in.dy = to_bf16(random_vector(s.pixels() * s.k, seed + 13));
  in.y_relu.resize(static_cast<size_t>(s.pixels() * s.k));
  const Tensor ws = cpu_workspace_bf16(s, ConvPass::forward);
  cpu::conv2d_forward(s, math, in.x.data(), in.wt.data(), in.bias.data(), true, in.y_relu.data(), ws.raw());
  return in;
}

void check_case_bf16(const Case& cs, ConvMath math) {
  const Conv2dShape s = shape_of(cs);
  const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, nw = s.weight_numel();
  const Bf16Inputs in = bf16_inputs(cs, s, math);
  DevArray<bf16> dx_in(in.x), ddy(in.dy), dmask(in.y_relu), dy_out(ny), dx_out(nx);
  DevBuf dw_in(in.wt), dbias_in(in.bias), ddw_out(nw), ddb_out(s.k);
  CUstream_st* stream = cuda_compute_stream(kDev);
  const std::string where = describe(cs) + " bf16 activations, " + math_name(math);
  const int64_t rrc = s.r * s.r * s.c, rrk = s.r * s.r * s.k;

  for (bool relu : {false, true}) {
    std::vector<bf16> ref(static_cast<size_t>(ny));
    const Tensor ws = cpu_workspace_bf16(s, ConvPass::forward);
    cpu::conv2d_forward(s, math, in.x.data(), in.wt.data(), in.bias.data(), relu, ref.data(), ws.raw());
    dy_out.poison();
    cuda::conv2d_forward(s, math, dx_in.get(), dw_in.get(), dbias_in.get(), relu, dy_out.get(),
                         workspace_bf16(s, ConvPass::forward).get(), stream);
    const Tol t = plus_bf16_ulp(tolerance(Impl::own, math, rrc));
    EXPECT_TRUE(all_close(widen(dy_out.download()).data(), widen(ref).data(), ny, t.atol, t.rtol, t.nmse))
        << where << " forward relu=" << relu;
  }

  for (bool masked : {false, true}) {
    const bf16* mask_h = masked ? in.y_relu.data() : nullptr;
    const bf16* mask_d = masked ? dmask.get() : nullptr;
    {
      std::vector<bf16> ref(static_cast<size_t>(nx));
      const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_data);
      cpu::conv2d_backward_data(s, math, in.dy.data(), mask_h, in.wt.data(), ref.data(), ws.raw());
      dx_out.poison();
      cuda::conv2d_backward_data(s, math, ddy.get(), mask_d, dw_in.get(), dx_out.get(),
                                 workspace_bf16(s, ConvPass::backward_data).get(), stream);
      const Tol t = plus_bf16_ulp(tolerance(Impl::own, math, rrk));
      EXPECT_TRUE(all_close(widen(dx_out.download()).data(), widen(ref).data(), nx, t.atol, t.rtol, t.nmse))
          << where << " backward_data masked=" << masked;
    }
    {
      std::vector<float> ref_w(static_cast<size_t>(nw)), ref_b(static_cast<size_t>(s.k));
      const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_weight);
      cpu::conv2d_backward_weight(s, math, in.x.data(), in.dy.data(), mask_h, ref_w.data(), ref_b.data(), ws.raw());
      ddw_out.poison();
      ddb_out.poison();
      cuda::conv2d_backward_weight(s, math, dx_in.get(), ddy.get(), mask_d, ddw_out.get(), ddb_out.get(),
                                   workspace_bf16(s, ConvPass::backward_weight).get(), stream);
      // dw and dbias are fp32 outputs: the tolerances of the fp32-storage test.
      const Tol t = tolerance(Impl::own, math, s.pixels());
      EXPECT_TRUE(all_close(ddw_out.download().data(), ref_w.data(), nw, t.atol, t.rtol, t.nmse))
          << where << " backward_weight dw masked=" << masked;
      const Tol tb = tolerance(Impl::own, ConvMath::f32, s.pixels());
      EXPECT_TRUE(all_close(ddb_out.download().data(), ref_b.data(), s.k, tb.atol, tb.rtol, tb.nmse))
          << where << " backward_weight dbias masked=" << masked;
    }
  }
}

// The bf16 forms are the fp32 launchers on widened values (y_relu's mask applied while widening dy),
// with the outputs rounded once: bit for bit what the fp32 launchers give on those values, also
// where the direct kernels (few channels) read and write bf16 in place.
void check_case_bf16_exact(const Case& cs, ConvMath math) {
  const Conv2dShape s = shape_of(cs);
  const int64_t nx = s.pixels() * s.c, ny = s.pixels() * s.k, nw = s.weight_numel();
  const Bf16Inputs in = bf16_inputs(cs, s, math);
  DevArray<bf16> dx_in(in.x), ddy(in.dy), dmask(in.y_relu), dy_out(ny), dx_out(nx);
  DevBuf fx_in(widen(in.x)), fdy(widen(in.dy)), fmask(widen(in.y_relu)), fy_out(ny), fx_out(nx);
  DevBuf dw_in(in.wt), dbias_in(in.bias), ddw_out(nw), ddb_out(s.k), fdw_out(nw), fdb_out(s.k);
  CUstream_st* stream = cuda_compute_stream(kDev);
  const std::string where = describe(cs) + " bf16 activations, " + math_name(math);

  for (bool relu : {false, true}) {
    dy_out.poison();
    cuda::conv2d_forward(s, math, dx_in.get(), dw_in.get(), dbias_in.get(), relu, dy_out.get(),
                         workspace_bf16(s, ConvPass::forward).get(), stream);
    cuda::conv2d_forward(s, math, fx_in.get(), dw_in.get(), dbias_in.get(), relu, fy_out.get(),
                         workspace(s, ConvPass::forward).get(), stream);
    EXPECT_TRUE(bits_equal(dy_out.download(), to_bf16(fy_out.download()))) << where << " forward relu=" << relu;
  }
  for (bool masked : {false, true}) {
    dx_out.poison();
    cuda::conv2d_backward_data(s, math, ddy.get(), masked ? dmask.get() : nullptr, dw_in.get(), dx_out.get(),
                               workspace_bf16(s, ConvPass::backward_data).get(), stream);
    cuda::conv2d_backward_data(s, math, fdy.get(), masked ? fmask.get() : nullptr, dw_in.get(), fx_out.get(),
                               workspace(s, ConvPass::backward_data).get(), stream);
    EXPECT_TRUE(bits_equal(dx_out.download(), to_bf16(fx_out.download())))
        << where << " backward_data masked=" << masked;

    ddw_out.poison();
    ddb_out.poison();
    cuda::conv2d_backward_weight(s, math, dx_in.get(), ddy.get(), masked ? dmask.get() : nullptr, ddw_out.get(),
                                 ddb_out.get(), workspace_bf16(s, ConvPass::backward_weight).get(), stream);
    cuda::conv2d_backward_weight(s, math, fx_in.get(), fdy.get(), masked ? fmask.get() : nullptr, fdw_out.get(),
                                 fdb_out.get(), workspace(s, ConvPass::backward_weight).get(), stream);
    EXPECT_TRUE(bits_equal(ddw_out.download(), fdw_out.download())) << where << " backward_weight dw masked=" << masked;
    EXPECT_TRUE(bits_equal(ddb_out.download(), fdb_out.download()))
        << where << " backward_weight dbias masked=" << masked;
  }
}

class CudaConv2dBf16 : public ::testing::TestWithParam<ConvMath> {};

TEST_P(CudaConv2dBf16, OwnKernelsMatchCpuBf16) {
  SEIS_NEED_GPU();
  for (const Case& cs : cases()) check_case_bf16(cs, GetParam());
}

TEST_P(CudaConv2dBf16, AreTheFp32KernelsOnWidenedValues) {
  SEIS_NEED_GPU();
  for (const Case& cs : cases()) check_case_bf16_exact(cs, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Math, CudaConv2dBf16, ::testing::Values(ConvMath::f32, ConvMath::tf32, ConvMath::bf16),
                         [](const ::testing::TestParamInfo<ConvMath>& i) { return std::string(math_name(i.param)); });

// No pixels: forward and backward_data write nothing; backward_weight writes zeros, as the fp32 forms.
TEST(CudaConv2dBf16Empty, NoPixels) {
  SEIS_NEED_GPU();
  Conv2dShape s;
  s.n = 0;
  s.h = 5;
  s.w = 7;
  s.c = 3;
  s.k = 4;
  s.r = 3;
  for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_weight}) {
    EXPECT_EQ(cuda::conv2d_workspace_bytes(s, pass, true), 0);
  }
  CUstream_st* stream = cuda_compute_stream(kDev);
  DevArray<bf16> out(1);
  DevBuf wt(random_vector(s.weight_numel(), 5)), dw(s.weight_numel()), db(s.k);
  out.poison();
  cuda::conv2d_forward(s, ConvMath::bf16, static_cast<const bf16*>(nullptr), wt.get(), nullptr, true, out.get(),
                       nullptr, stream);
  cuda::conv2d_backward_data(s, ConvMath::bf16, static_cast<const bf16*>(nullptr), nullptr, wt.get(), out.get(),
                             nullptr, stream);
  EXPECT_EQ(out.download()[0].bits, 0x7fc0) << "wrote with no pixels";
  dw.poison();
  db.poison();
  cuda::conv2d_backward_weight(s, ConvMath::bf16, static_cast<const bf16*>(nullptr), nullptr, nullptr, dw.get(),
                               db.get(), nullptr, stream);
  EXPECT_TRUE(bits_equal(dw.download(), std::vector<float>(static_cast<size_t>(s.weight_numel()), 0.0f)));
  EXPECT_TRUE(bits_equal(db.download(), std::vector<float>(static_cast<size_t>(s.k), 0.0f)));
}

// ---- Past 2^31 elements ----------------------------------------------------------------------------------
// x [17, 4096, 4096, 8] holds 2.28e9 floats (9.1 GB). Image i is a window of one random buffer
// shifted by i * 997 elements, so images differ and any value can be recomputed on the host.

struct BigInput {
  int64_t n, h, w, c;
  std::vector<float> pool;
  int64_t image_numel() const { return h * w * c; }
  float at(int64_t img, int64_t hh, int64_t ww, int64_t cc) const {
    return pool[static_cast<size_t>(img * 997 + (hh * w + ww) * c + cc)];
  }
  void upload(float* dst) const {
    for (int64_t i = 0; i < n; ++i) {
      cuda_copy_to_device(kDev, dst + i * image_numel(), pool.data() + i * 997, image_numel() * 4);
    }
  }
};

// out[img, h, w, k] of the forward-form conv, in double, from host values.
double direct_conv(const BigInput& in, const std::vector<float>& wt, int64_t r, int64_t img, int64_t h, int64_t w,
                   int64_t k) {
  const int64_t pad = r / 2;
  double acc = 0;
  for (int64_t dr = 0; dr < r; ++dr) {
    for (int64_t ds = 0; ds < r; ++ds) {
      const int64_t hh = h + dr - pad, ww = w + ds - pad;
      if (hh < 0 || hh >= in.h || ww < 0 || ww >= in.w) continue;
      for (int64_t c = 0; c < in.c; ++c) {
        acc += static_cast<double>(in.at(img, hh, ww, c)) * wt[static_cast<size_t>(((k * r + dr) * r + ds) * in.c + c)];
      }
    }
  }
  return acc;
}

// The halo kernel (kernels/cuda/conv2d_halo.h) against the CPU bf16 conv, which rounds at the same
// points: equal but for outputs whose fp32 sums, added in another order, round to the neighbouring
// bf16 (at most one ulp, and rare); twice bit for bit; outputs poisoned first. Every (C, K) it
// instantiates, odd sizes, partial tiles, batch 3, with and without bias and ReLU.
TEST(CudaConv2dHalo, MatchesTheCpuBf16ConvAndIsDeterministic) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  for (int64_t c : {8, 16, 32, 64}) {
    for (int64_t k : {8, 16, 32, 64}) {
      for (const auto& [n, h, w] :
           std::vector<std::array<int64_t, 3>>{{1, 8, 16}, {3, 13, 37}, {1, 1, 1}, {2, 33, 5}}) {
        const Conv2dShape s{n, h, w, c, k, 3};
        ASSERT_TRUE(cuda::halo::supports(s.c, s.k, s.r));
        const bool relu = (c + k + h) % 2 == 0;
        SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " relu " << relu);
        const std::vector<bf16> x = to_bf16(random_vector(s.pixels() * c, 200 + c + k + h));
        const std::vector<float> wt = random_vector(s.weight_numel(), 300 + c + k, -0.25f, 0.25f);
        const std::vector<float> bias = random_vector(k, 400 + k);
        std::vector<bf16> ref(static_cast<size_t>(s.pixels() * k));
        const Tensor ws = cpu_workspace_bf16(s, ConvPass::forward);
        cpu::conv2d_forward(s, ConvMath::bf16, x.data(), wt.data(), bias.data(), relu, ref.data(), ws.raw());
        DevArray<bf16> dx(x), dy(s.pixels() * k);
        DevBuf dw(wt), db(bias);
        std::vector<bf16> first;
        for (int run = 0; run < 2; ++run) {
          dy.poison();
          cuda::conv2d_forward_halo(s, dx.get(), dw.get(), db.get(), relu, dy.get(), stream);
          const std::vector<bf16> got = dy.download();
          int64_t differ = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            if (got[i].bits == ref[i].bits) continue;
            ++differ;
            ASSERT_LE(std::abs(int(got[i].bits) - int(ref[i].bits)), 1)
                << "element " << i << ": " << to_float(got[i]) << " against " << to_float(ref[i]);
          }
          EXPECT_LE(differ, static_cast<int64_t>(got.size()) / 50 + 1);
          if (run == 0) {
            first = got;
          } else {
            EXPECT_TRUE(
                std::equal(first.begin(), first.end(), got.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
          }
        }
      }
    }
  }
}

// The halo forward with the pool epilogue (the encoder's second conv, C = K): y, bit for bit, the
// plain halo forward's; the pooled tensor and the argmax, bit for bit, both the CUDA maxpool kernel's
// and the CPU's maxpool of that y; twice the same bits; outputs poisoned first. Odd sizes (the last
// row and column pool into nothing), partial tiles, batch 3, a 1x1 and a one-row image (nothing to
// pool: no pooled buffers needed), with and without ReLU, and a case of many ties (outputs of five
// values).
TEST(CudaConv2dHalo, PooledForwardIsTheConvThenTheMaxpool) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  for (int64_t c : {8, 16, 32, 64}) {
    for (const auto& [n, h, w] :
         std::vector<std::array<int64_t, 3>>{{1, 8, 16}, {3, 13, 37}, {1, 1, 1}, {2, 33, 5}, {1, 2, 2}, {2, 1, 9}}) {
      for (bool ties : {false, true}) {
        const Conv2dShape s{n, h, w, c, c, 3};
        ASSERT_TRUE(cuda::halo::supports_pooled(s.c, s.k, s.r));
        const bool relu = ties || (c + h) % 2 == 0;
        SCOPED_TRACE(::testing::Message()
                     << n << "x" << h << "x" << w << " C=K=" << c << " relu " << relu << " ties " << ties);
        std::vector<float> xf = random_vector(s.pixels() * c, 500 + c + h);
        std::vector<float> wt = random_vector(s.weight_numel(), 600 + c, -0.25f, 0.25f),
                           bias = random_vector(c, 700 + c);
        if (ties) {  // a quarter of the ones among the centre pixel's first 4 channels
          for (float& v : xf) v = v > 0.0f ? 1.0f : 0.0f;
          for (int64_t i = 0; i < s.weight_numel(); ++i) wt[i] = i / c % 9 == 4 && i % c < 4 ? 0.25f : 0.0f;
          for (float& v : bias) v = 0.0f;
        }
        const std::vector<bf16> x = to_bf16(xf);
        const int64_t np = n * (h / 2) * (w / 2) * c, nb = maxpool2d_argmax_bytes(n, h, w, c);
        DevArray<bf16> dx(x), dy(s.pixels() * c), dy_plain(s.pixels() * c), pooled(np), pooled_ref(np);
        DevArray<uint8_t> argmax(nb), argmax_ref(nb);
        DevBuf dw(wt), db(bias);
        if (np == 0) {  // one row or column: nothing to pool, and no pooled buffers to give
          dy.poison();
          cuda::conv2d_forward_halo_pooled(s, dx.get(), dw.get(), db.get(), relu, dy.get(), nullptr, nullptr, stream);
          cuda::conv2d_forward_halo(s, dx.get(), dw.get(), db.get(), relu, dy_plain.get(), stream);
          const std::vector<bf16> y = dy.download(), y_plain = dy_plain.download();
          EXPECT_TRUE(std::equal(y.begin(), y.end(), y_plain.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
          continue;
        }
        dy_plain.poison();
        cuda::conv2d_forward_halo(s, dx.get(), dw.get(), db.get(), relu, dy_plain.get(), stream);
        const std::vector<bf16> y_plain = dy_plain.download();
        std::vector<bf16> first_pooled;
        std::vector<uint8_t> first_argmax;
        for (int run = 0; run < 2; ++run) {
          dy.poison();
          pooled.poison();
          argmax.upload(std::vector<uint8_t>(static_cast<size_t>(nb), 0xaa));
          cuda::conv2d_forward_halo_pooled(s, dx.get(), dw.get(), db.get(), relu, dy.get(), pooled.get(), argmax.get(),
                                           stream);
          const std::vector<bf16> y = dy.download(), got = pooled.download();
          const std::vector<uint8_t> got_arg = argmax.download();
          ASSERT_TRUE(std::equal(y.begin(), y.end(), y_plain.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
          // The CUDA maxpool of the same y, and the CPU's.
          pooled_ref.poison();
          cuda::maxpool2d_forward(n, h, w, c, dy.get(), pooled_ref.get(), argmax_ref.get(), stream);
          std::vector<bf16> cpu_pooled(static_cast<size_t>(np));
          std::vector<uint8_t> cpu_arg(static_cast<size_t>(nb));
          cpu::maxpool2d_forward(n, h, w, c, y.data(), cpu_pooled.data(), cpu_arg.data());
          const std::vector<bf16> ref = pooled_ref.download();
          const std::vector<uint8_t> ref_arg = argmax_ref.download();
          for (int64_t i = 0; i < np; ++i) {
            ASSERT_EQ(got[i].bits, ref[i].bits) << "pooled element " << i;
            ASSERT_EQ(got[i].bits, cpu_pooled[i].bits) << "pooled element " << i;
          }
          EXPECT_EQ(got_arg, ref_arg);
          EXPECT_EQ(got_arg, cpu_arg);
          if (run == 0) {
            first_pooled = got;
            first_argmax = got_arg;
          } else {
            EXPECT_TRUE(std::equal(first_pooled.begin(), first_pooled.end(), got.begin(),
                                   [](bf16 a, bf16 b) { return a.bits == b.bits; }));
            EXPECT_EQ(first_argmax, got_arg);
          }
        }
      }
    }
  }
}

// The halo backward-data (dy masked by y > 0, the mirrored filter) against the CPU bf16 backward_data.
TEST(CudaConv2dHalo, BackwardDataMatchesTheCpuBf16) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  for (int64_t c : {8, 16, 32, 64}) {
    for (int64_t k : {8, 16, 32, 64}) {
      for (const auto& [n, h, w] : std::vector<std::array<int64_t, 3>>{{1, 8, 16}, {3, 13, 37}, {2, 33, 5}}) {
        const Conv2dShape s{n, h, w, c, k, 3};
        ASSERT_TRUE(cuda::halo::supports(s.k, s.c, s.r));
        const bool with_mask = (c + k + h) % 2 == 0;
        SCOPED_TRACE(::testing::Message()
                     << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " mask " << with_mask);
        const std::vector<bf16> dy = to_bf16(random_vector(s.pixels() * k, 500 + c + k + h));
        std::vector<float> yv = random_vector(s.pixels() * k, 600 + c + k);
        for (float& v : yv) v = v > 0 ? v : 0.0f;  // a ReLU output
        const std::vector<bf16> y = to_bf16(yv);
        const std::vector<float> wt = random_vector(s.weight_numel(), 700 + c + k, -0.25f, 0.25f);
        std::vector<bf16> ref(static_cast<size_t>(s.pixels() * c));
        const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_data);
        cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), with_mask ? y.data() : nullptr, wt.data(), ref.data(),
                                  ws.raw());
        DevArray<bf16> ddy(dy), dmask(y), ddx(s.pixels() * c);
        DevBuf dw(wt);
        ddx.poison();
        cuda::conv2d_backward_data_halo(s, ddy.get(), with_mask ? dmask.get() : nullptr, dw.get(), ddx.get(), stream);
        const std::vector<bf16> got = ddx.download();
        int64_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          if (got[i].bits == ref[i].bits) continue;
          ++differ;
          ASSERT_LE(std::abs(int(got[i].bits) - int(ref[i].bits)), 1)
              << "element " << i << ": " << to_float(got[i]) << " against " << to_float(ref[i]);
        }
        EXPECT_LE(differ, static_cast<int64_t>(got.size()) / 50 + 1);
      }
    }
  }
}

// Runs a bf16 backward-weight kernel (run_kernel writes dw and, with_bias, db) twice, its outputs
// poisoned first: dW and dbias close to the CPU's ref_w and ref_b (each entry sums at most P products
// of magnitude <= 1 in fp32), dbias left alone when the kernel is given none, and the second run
// bit for bit the first.
template <typename Run>
void check_wgrad_twice(const Conv2dShape& s, bool with_bias, const std::vector<float>& ref_w,
                       const std::vector<float>& ref_b, DevBuf& dw, DevBuf& db, Run&& run_kernel) {
  const double atol = 4e-6 * static_cast<double>(s.pixels()) + 1e-6;
  std::vector<float> first_w, first_b;
  for (int run = 0; run < 2; ++run) {
    dw.poison();
    db.poison();
    run_kernel();
    const std::vector<float> got_w = dw.download(), got_b = db.download();
    EXPECT_TRUE(all_close(got_w.data(), ref_w.data(), s.weight_numel(), atol, 1e-4));
    if (with_bias) {
      EXPECT_TRUE(all_close(got_b.data(), ref_b.data(), s.k, atol, 1e-4));
    } else {
      EXPECT_TRUE(std::all_of(got_b.begin(), got_b.end(), [](float v) { return std::isnan(v); }))
          << "dbias written though null";
    }
    if (run == 0) {
      first_w = got_w;
      first_b = got_b;
    } else {
      EXPECT_TRUE(bits_equal(got_w, first_w));
      if (with_bias) {
        EXPECT_TRUE(bits_equal(got_b, first_b));
      }
    }
  }
}

// The halo backward-weight against the CPU bf16 backward_weight (the same bf16 operands; only the
// order of the fp32 sums differs), outputs poisoned first, and twice bit for bit: every (C, K), odd
// sizes, partial tiles, batch 3, one and several splits, with and without the mask and dbias.
TEST(CudaConv2dHalo, BackwardWeightMatchesTheCpuBf16AndIsDeterministic) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  for (int64_t c : {8, 16, 32, 64}) {
    for (int64_t k : {8, 16, 32, 64}) {
      for (const auto& [n, h, w] :
           std::vector<std::array<int64_t, 3>>{{1, 8, 16}, {3, 13, 37}, {1, 1, 1}, {2, 33, 5}, {2, 70, 45}}) {
        const Conv2dShape s{n, h, w, c, k, 3};
        ASSERT_TRUE(cuda::halo_wgrad::supports(s.c, s.k, s.r));
        const bool with_mask = (c + k + h) % 2 == 0, with_bias = (c + h) % 3 != 0;
        SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " mask "
                                          << with_mask << " dbias " << with_bias);
        const std::vector<bf16> x = to_bf16(random_vector(s.pixels() * c, 800 + c + k + h));
        const std::vector<bf16> dy = to_bf16(random_vector(s.pixels() * k, 900 + c + k + h));
        std::vector<float> yv = random_vector(s.pixels() * k, 1000 + c + k);
        for (float& v : yv) v = v > 0 ? v : 0.0f;
        const std::vector<bf16> y = to_bf16(yv);
        std::vector<float> ref_w(static_cast<size_t>(s.weight_numel())), ref_b(static_cast<size_t>(k));
        const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_weight);
        cpu::conv2d_backward_weight(s, ConvMath::bf16, x.data(), dy.data(), with_mask ? y.data() : nullptr,
                                    ref_w.data(), ref_b.data(), ws.raw());
        DevArray<bf16> dx(x), ddy(dy), dmask(y);
        DevBuf dw(s.weight_numel()), db(k);
        DevArray<uint8_t> dws(cuda::conv2d_backward_weight_halo_workspace_bytes(s));
        EXPECT_LE(cuda::conv2d_backward_weight_halo_workspace_bytes(s),
                  cuda::conv2d_workspace_bytes(s, ConvPass::backward_weight, true));
        check_wgrad_twice(s, with_bias, ref_w, ref_b, dw, db, [&] {
          cuda::conv2d_backward_weight_halo(s, dx.get(), ddy.get(), with_mask ? dmask.get() : nullptr, dw.get(),
                                            with_bias ? db.get() : nullptr, dws.get(), stream);
        });
      }
    }
  }
}

// The halo kernels on the decoder's joined inputs, read in place (ConvJoin): forward and
// backward-weight on [a | b] or on the low-resolution input of an upsample give the bits they give
// on the materialised input, backward-data into a concat's two gradients the two channel ranges
// of the unsplit gradient, and into an upsampled input's gradient upsample2x_backward of the
// full-resolution one. Concats of the UNet's decoder (equal halves) and an uneven one, partial
// tiles, batch 2, odd half-resolution sizes.
TEST(CudaConv2dHalo, JoinedInputsAreReadInPlace) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  struct Case {
    Conv2dShape s;
    ConvJoin join;
    int64_t cb;
  };
  for (const Case& jc :
       {Case{{2, 10, 22, 16, 8, 3}, ConvJoin::concat, 8}, Case{{1, 16, 32, 64, 32, 3}, ConvJoin::concat, 32},
        Case{{1, 9, 17, 64, 64, 3}, ConvJoin::concat, 56}, Case{{1, 10, 34, 16, 8, 3}, ConvJoin::upsampled, 0},
        Case{{2, 8, 16, 64, 32, 3}, ConvJoin::upsampled, 0}}) {
    const Conv2dShape& s = jc.s;
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.h << "x" << s.w << " C=" << s.c << " K=" << s.k << " join "
                                      << static_cast<int>(jc.join));
    const int64_t px = s.pixels(), ca = s.c - jc.cb, uc = s.c;
    const int64_t na = jc.join == ConvJoin::concat ? px * ca : s.n * (s.h / 2) * (s.w / 2) * uc;
    const std::vector<bf16> a = to_bf16(random_vector(na, 1100 + s.c)), b = to_bf16(random_vector(px * jc.cb, 1200));
    std::vector<bf16> whole(static_cast<size_t>(px * s.c));
    for (int64_t p = 0; p < px; ++p) {
      const int64_t img = p / (s.h * s.w), y = p / s.w % s.h, x = p % s.w;
      for (int64_t ch = 0; ch < s.c; ++ch) {
        whole[p * s.c + ch] = jc.join == ConvJoin::upsampled
                                  ? a[((img * (s.h / 2) + y / 2) * (s.w / 2) + x / 2) * s.c + ch]
                                  : (ch < ca ? a[p * ca + ch] : b[p * jc.cb + ch - ca]);
      }
    }
    const std::vector<float> wt = random_vector(s.weight_numel(), 1300, -0.25f, 0.25f), bias = random_vector(s.k, 1400);
    const std::vector<bf16> dy = to_bf16(random_vector(px * s.k, 1500));
    std::vector<float> yv = random_vector(px * s.k, 1600);
    for (float& v : yv) v = v > 0 ? v : 0.0f;
    DevArray<bf16> da(a), db(b.empty() ? std::vector<bf16>(1) : b), dwhole(whole), ddy(dy), dmask(to_bf16(yv));
    DevBuf dw(wt), dbias(bias);
    ConvJoined<const bf16> xj;
    xj.join = jc.join;
    xj.a = da.get();
    xj.b = jc.join == ConvJoin::concat ? db.get() : nullptr;
    xj.cb = jc.cb;

    DevArray<bf16> yj(px * s.k), ym(px * s.k);
    yj.poison();
    ym.poison();
    cuda::conv2d_forward_halo(s, xj, dw.get(), dbias.get(), true, yj.get(), stream);
    cuda::conv2d_forward_halo(s, dwhole.get(), dw.get(), dbias.get(), true, ym.get(), stream);
    EXPECT_TRUE(bits_equal(yj.download(), ym.download())) << "forward";

    DevArray<uint8_t> wsj(cuda::conv2d_backward_weight_halo_workspace_bytes(s)),
        wsm(cuda::conv2d_backward_weight_halo_workspace_bytes(s));
    DevBuf gwj(s.weight_numel()), gbj(s.k), gwm(s.weight_numel()), gbm(s.k);
    gwj.poison();
    gwm.poison();
    cuda::conv2d_backward_weight_halo(s, xj, ddy.get(), dmask.get(), gwj.get(), gbj.get(), wsj.get(), stream);
    cuda::conv2d_backward_weight_halo(s, dwhole.get(), ddy.get(), dmask.get(), gwm.get(), gbm.get(), wsm.get(), stream);
    EXPECT_TRUE(bits_equal(gwj.download(), gwm.download())) << "backward-weight dW";
    EXPECT_TRUE(bits_equal(gbj.download(), gbm.download())) << "backward-weight dbias";

    if (jc.join == ConvJoin::concat) {
      DevArray<bf16> dxa(px * ca), dxb(px * jc.cb), dx(px * s.c);
      dxa.poison();
      dxb.poison();
      dx.poison();
      ConvJoined<bf16> g;
      g.join = ConvJoin::concat;
      g.a = dxa.get();
      g.b = dxb.get();
      g.cb = jc.cb;
      cuda::conv2d_backward_data_halo(s, ddy.get(), dmask.get(), dw.get(), g, stream);
      cuda::conv2d_backward_data_halo(s, ddy.get(), dmask.get(), dw.get(), dx.get(), stream);
      const std::vector<bf16> ga = dxa.download(), gb = dxb.download(), full = dx.download();
      std::vector<bf16> joined(full.size());
      for (int64_t p = 0; p < px; ++p) {
        std::copy(ga.begin() + p * ca, ga.begin() + (p + 1) * ca, joined.begin() + p * s.c);
        std::copy(gb.begin() + p * jc.cb, gb.begin() + (p + 1) * jc.cb, joined.begin() + p * s.c + ca);
      }
      EXPECT_TRUE(bits_equal(joined, full)) << "backward-data into the concat's two gradients";
    } else {
      // The epilogue's 2x2 sums are upsample2x_backward of the full-resolution gradient.
      DevArray<bf16> dxa(na), dx(px * s.c), summed(na);
      dxa.poison();
      dx.poison();
      summed.poison();
      ConvJoined<bf16> g;
      g.join = ConvJoin::upsampled;
      g.a = dxa.get();
      cuda::conv2d_backward_data_halo(s, ddy.get(), dmask.get(), dw.get(), g, stream);
      cuda::conv2d_backward_data_halo(s, ddy.get(), dmask.get(), dw.get(), dx.get(), stream);
      cuda::upsample2x_backward(s.n, s.h / 2, s.w / 2, s.c, dx.get(), summed.get(), stream);
      EXPECT_TRUE(bits_equal(dxa.download(), summed.download())) << "backward-data into the upsampled input's gradient";
    }
  }
}

// The deep-level forward (kernels/cuda/conv2d_deep.h) against the CPU bf16 conv, as the halo
// forward is checked: at most one ulp apart and rarely, twice bit for bit, outputs poisoned first.
// The UNet's deep channel pairs (levels 3-6: 64-512, both tile widths, several k-steps per tap) at
// small, odd, tile-misaligned sizes; the workspace exactly as conv2d_workspace_bytes sizes it.
TEST(CudaConv2dDeep, MatchesTheCpuBf16ConvAndIsDeterministic) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  const std::vector<std::array<int64_t, 2>> channels = {{64, 128},  {128, 64},  {128, 128}, {128, 256}, {256, 256},
                                                        {256, 512}, {512, 512}, {512, 256}, {192, 320}, {64, 64}};
  for (const auto& [c, k] : channels) {
    for (const auto& [n, h, w] :
         std::vector<std::array<int64_t, 3>>{{1, 13, 21}, {2, 8, 16}, {1, 1, 1}, {3, 9, 7}, {1, 32, 32}}) {
      const Conv2dShape s{n, h, w, c, k, 3};
      ASSERT_TRUE(cuda::deep::supports(s.c, s.k, s.r));
      const bool relu = (c / 64 + k / 64 + h) % 2 == 0;
      SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " relu " << relu);
      const std::vector<bf16> x = to_bf16(random_vector(s.pixels() * c, 500 + c + k + h));
      const std::vector<float> wt = random_vector(s.weight_numel(), 600 + c + k, -0.1f, 0.1f);
      const std::vector<float> bias = random_vector(k, 700 + k);
      std::vector<bf16> ref(static_cast<size_t>(s.pixels() * k));
      const Tensor ws = cpu_workspace_bf16(s, ConvPass::forward);
      cpu::conv2d_forward(s, ConvMath::bf16, x.data(), wt.data(), bias.data(), relu, ref.data(), ws.raw());
      DevArray<bf16> dx(x), dy(s.pixels() * k);
      DevBuf dw(wt), db(bias);
      DevArray<uint8_t> dws(cuda::conv2d_workspace_bytes(s, ConvPass::forward, true));
      ASSERT_GE(cuda::conv2d_workspace_bytes(s, ConvPass::forward, true), cuda::conv2d_forward_deep_workspace_bytes(s));
      std::vector<bf16> first;
      for (int run = 0; run < 2; ++run) {
        dy.poison();
        cuda::conv2d_forward_deep(s, dx.get(), dw.get(), db.get(), relu, dy.get(), dws.get(), stream);
        const std::vector<bf16> got = dy.download();
        int64_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          if (got[i].bits == ref[i].bits) continue;
          ++differ;
          ASSERT_LE(std::abs(int(got[i].bits) - int(ref[i].bits)), 1)
              << "element " << i << ": " << to_float(got[i]) << " against " << to_float(ref[i]);
        }
        EXPECT_LE(differ, static_cast<int64_t>(got.size()) / 50 + 1);
        if (run == 0) {
          first = got;
        } else {
          EXPECT_TRUE(
              std::equal(first.begin(), first.end(), got.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
        }
      }
    }
  }
}

// The deep backward-data (dy masked by y > 0 in the workspace, the flipped filter, the forward's
// kernel) against the CPU bf16 backward_data, with and without the mask, twice bit for bit.
TEST(CudaConv2dDeep, BackwardDataMatchesTheCpuBf16AndIsDeterministic) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  const std::vector<std::array<int64_t, 2>> channels = {{128, 64},  {64, 128},  {128, 128}, {256, 128},
                                                        {256, 256}, {512, 256}, {256, 512}, {320, 192}};
  for (const auto& [c, k] : channels) {
    for (const auto& [n, h, w] : std::vector<std::array<int64_t, 3>>{{1, 13, 21}, {2, 8, 16}, {3, 9, 7}, {1, 1, 1}}) {
      const Conv2dShape s{n, h, w, c, k, 3};
      ASSERT_TRUE(cuda::deep::supports(s.k, s.c, s.r));
      const bool with_mask = (c / 64 + k / 64 + h) % 2 == 0;
      SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " mask "
                                        << with_mask);
      const std::vector<bf16> dy = to_bf16(random_vector(s.pixels() * k, 900 + c + k + h));
      std::vector<float> yv = random_vector(s.pixels() * k, 1000 + c + k);
      for (float& v : yv) v = v > 0 ? v : 0.0f;  // a ReLU output
      const std::vector<bf16> y = to_bf16(yv);
      const std::vector<float> wt = random_vector(s.weight_numel(), 1100 + c + k, -0.1f, 0.1f);
      std::vector<bf16> ref(static_cast<size_t>(s.pixels() * c));
      const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_data);
      cpu::conv2d_backward_data(s, ConvMath::bf16, dy.data(), with_mask ? y.data() : nullptr, wt.data(), ref.data(),
                                ws.raw());
      DevArray<bf16> ddy(dy), dmask(y), ddx(s.pixels() * c);
      DevBuf dw(wt);
      DevArray<uint8_t> dws(cuda::conv2d_workspace_bytes(s, ConvPass::backward_data, true));
      ASSERT_GE(cuda::conv2d_workspace_bytes(s, ConvPass::backward_data, true),
                cuda::conv2d_backward_data_deep_workspace_bytes(s));
      std::vector<bf16> first;
      for (int run = 0; run < 2; ++run) {
        ddx.poison();
        cuda::conv2d_backward_data_deep(s, ddy.get(), with_mask ? dmask.get() : nullptr, dw.get(), ddx.get(), dws.get(),
                                        stream);
        const std::vector<bf16> got = ddx.download();
        int64_t differ = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          if (got[i].bits == ref[i].bits) continue;
          ++differ;
          ASSERT_LE(std::abs(int(got[i].bits) - int(ref[i].bits)), 1)
              << "element " << i << ": " << to_float(got[i]) << " against " << to_float(ref[i]);
        }
        EXPECT_LE(differ, static_cast<int64_t>(got.size()) / 50 + 1);
        if (run == 0) {
          first = got;
        } else {
          EXPECT_TRUE(
              std::equal(first.begin(), first.end(), got.begin(), [](bf16 a, bf16 b) { return a.bits == b.bits; }));
        }
      }
    }
  }
}

// The deep backward-weight (kernels/cuda/conv2d_deep.h: dy masked by y > 0 in the workspace, dbias by
// a column of ones, split-K partials summed in split order) against the CPU bf16 backward_weight,
// outputs poisoned first, and twice bit for bit: the UNet's deep channel pairs and both tile heights,
// odd sizes, partial k-steps, batch 1-3, one and several splits, with and without the mask and
// dbias; the workspace exactly as conv2d_workspace_bytes sizes it.
TEST(CudaConv2dDeep, BackwardWeightMatchesTheCpuBf16AndIsDeterministic) {
  SEIS_NEED_GPU();
  CUstream_st* stream = cuda_compute_stream(kDev);
  const std::vector<std::array<int64_t, 2>> channels = {{64, 64},   {64, 128},  {128, 64},  {128, 128}, {256, 128},
                                                        {128, 256}, {256, 256}, {512, 512}, {192, 320}, {320, 192}};
  for (const auto& [c, k] : channels) {
    std::vector<std::array<int64_t, 3>> sizes = {{1, 13, 21}, {2, 8, 16}, {3, 9, 7}, {1, 1, 1}, {2, 33, 17}, {1, 7, 9}};
    if (c * k <= 128 * 128) sizes.push_back({1, 128, 128});  // several splits (the CPU reference stays cheap)
    for (const auto& [n, h, w] : sizes) {
      const Conv2dShape s{n, h, w, c, k, 3};
      ASSERT_TRUE(cuda::deep_wgrad::supports(s.c, s.k, s.r));
      const bool with_mask = (c / 64 + k / 64 + h) % 2 == 0, with_bias = (c / 64 + h) % 3 != 0;
      SCOPED_TRACE(::testing::Message() << n << "x" << h << "x" << w << " C=" << c << " K=" << k << " mask "
                                        << with_mask << " dbias " << with_bias << " splits "
                                        << cuda::deep_wgrad::split_of(s.pixels(), c, k).splits);
      const std::vector<bf16> x = to_bf16(random_vector(s.pixels() * c, 1200 + c + k + h));
      const std::vector<bf16> dy = to_bf16(random_vector(s.pixels() * k, 1300 + c + k + h));
      std::vector<float> yv = random_vector(s.pixels() * k, 1400 + c + k);
      for (float& v : yv) v = v > 0 ? v : 0.0f;  // a ReLU output
      const std::vector<bf16> y = to_bf16(yv);
      std::vector<float> ref_w(static_cast<size_t>(s.weight_numel())), ref_b(static_cast<size_t>(k));
      const Tensor ws = cpu_workspace_bf16(s, ConvPass::backward_weight);
      cpu::conv2d_backward_weight(s, ConvMath::bf16, x.data(), dy.data(), with_mask ? y.data() : nullptr, ref_w.data(),
                                  ref_b.data(), ws.raw());
      DevArray<bf16> dx(x), ddy(dy), dmask(y);
      DevBuf dw(s.weight_numel()), db(k);
      DevArray<uint8_t> dws(cuda::conv2d_workspace_bytes(s, ConvPass::backward_weight, true));
      ASSERT_GE(cuda::conv2d_workspace_bytes(s, ConvPass::backward_weight, true),
                cuda::conv2d_backward_weight_deep_workspace_bytes(s));
      check_wgrad_twice(s, with_bias, ref_w, ref_b, dw, db, [&] {
        cuda::conv2d_backward_weight_deep(s, dx.get(), ddy.get(), with_mask ? dmask.get() : nullptr, dw.get(),
                                          with_bias ? db.get() : nullptr, dws.get(), stream);
      });
    }
  }
}

// The deep forward past 2^31 input elements: x [257, 256, 256, 128] bf16 (2.2e9 elements, 4.3 GB),
// image i a window of one random pool shifted by 997 i elements; sampled outputs (corners of the
// last image, pixels past 2^31 / C) against a double conv of the same bf16 values.
TEST(CudaConv2dLarge, DeepForwardPast2To31Elements) {
  SEIS_NEED_GPU();
  const Conv2dShape s{257, 256, 256, 128, 64, 3};
  const int64_t img = s.h * s.w * s.c, numel = s.n * img;
  ASSERT_GT(numel, int64_t{1} << 31);
  std::vector<bf16> pool(static_cast<size_t>(img + s.n * 997));
  uint32_t state = 4242;
  for (bf16& v : pool) {
    state = state * 1664525u + 1013904223u;
    v = seis::to_bf16(static_cast<float>(state >> 8) / 16777216.0f - 0.5f);
  }
  const std::vector<float> wt = random_vector(s.weight_numel(), 801, -0.1f, 0.1f), bias = random_vector(s.k, 802);
  DevArray<bf16> x(numel), y(s.pixels() * s.k);
  for (int64_t i = 0; i < s.n; ++i) cuda_copy_to_device(kDev, x.get() + i * img, pool.data() + i * 997, img * 2);
  DevBuf dw(wt), db(bias);
  DevArray<uint8_t> ws(cuda::conv2d_forward_deep_workspace_bytes(s));
  y.poison();
  cuda::conv2d_forward_deep(s, x.get(), dw.get(), db.get(), false, y.get(), ws.get(), cuda_compute_stream(kDev));
  const int64_t past = (int64_t{1} << 31) / s.c;  // the first pixel whose input offset passes 2^31
  const std::vector<std::array<int64_t, 3>> px = {
      {0, 0, 0},    {256, 255, 255}, {256, 0, 255}, {256, 255, 0}, {past / (s.h * s.w), past / s.w % s.h, past % s.w},
      {255, 17, 0}, {200, 128, 129}};
  for (const auto& p : px) {
    const int64_t pixel = (p[0] * s.h + p[1]) * s.w + p[2];
    std::vector<bf16> got(static_cast<size_t>(s.k));
    cuda_copy_to_host(kDev, got.data(), y.get() + pixel * s.k, s.k * 2);
    for (int64_t k = 0; k < s.k; ++k) {
      double ref = bias[static_cast<size_t>(k)];
      for (int64_t tap = 0; tap < 9; ++tap) {
        const int64_t hh = p[1] + tap / 3 - 1, ww = p[2] + tap % 3 - 1;
        if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
        for (int64_t c = 0; c < s.c; ++c) {
          ref += static_cast<double>(to_float(pool[static_cast<size_t>(p[0] * 997 + (hh * s.w + ww) * s.c + c)])) *
                 to_float(seis::to_bf16(wt[static_cast<size_t>((k * 9 + tap) * s.c + c)]));
        }
      }
      EXPECT_NEAR(to_float(got[static_cast<size_t>(k)]), ref, std::fabs(ref) / 128 + 1e-3)
          << "pixel " << pixel << " channel " << k;
    }
  }
}

// The halo backward-weight past 2^31 elements (17 x 4096 x 4096 x 8 bf16; in the CudaConv2dLarge
// suite, which gpu_check.sh runs in its big stage, outside the sanitizers): dy is zero but at
// sampled pixels (image corners, the last pixel, pixels past 2^31 / C), so that each dW entry and
// dbias is a short sum, recomputed on the host from the same bf16 values.
TEST(CudaConv2dLarge, HaloBackwardWeightPast2To31Elements) {
  SEIS_NEED_GPU();
  const Conv2dShape s{17, 4096, 4096, 8, 8, 3};
  const int64_t img = s.h * s.w * 8, numel = s.n * img;
  ASSERT_GT(numel, int64_t{1} << 31);
  // x of image i is the pool from offset 997 i: every image differs.
  std::vector<bf16> pool(static_cast<size_t>(img + s.n * 997));
  uint32_t state = 12345;
  for (bf16& v : pool) {
    state = state * 1664525u + 1013904223u;
    v = seis::to_bf16(static_cast<float>(state >> 8) / 16777216.0f - 0.5f);
  }
  auto xat = [&](int64_t i, int64_t hh, int64_t ww, int64_t c) {
    return static_cast<double>(to_float(pool[static_cast<size_t>(i * 997 + (hh * s.w + ww) * 8 + c)]));
  };
  DevArray<bf16> x(numel), dy(numel);
  for (int64_t i = 0; i < s.n; ++i) cuda_copy_to_device(kDev, x.get() + i * img, pool.data() + i * 997, img * 2);
  cuda_memset_zero(kDev, dy.get(), numel * 2);
  const std::vector<std::array<int64_t, 3>> px = {{0, 0, 0},       {16, 4095, 4095}, {16, 0, 4095},
                                                  {16, 4095, 0},   {15, 2048, 17},   {9, 0, 0},
                                                  {8, 4095, 4095}, {12, 100, 4000},  {16, 2047, 4094}};
  std::vector<std::array<float, 8>> g(px.size());
  for (size_t i = 0; i < px.size(); ++i) {
    for (int64_t k = 0; k < 8; ++k)
      g[i][static_cast<size_t>(k)] = to_float(seis::to_bf16(0.25f * (k + 1) * (i % 2 ? -1 : 1)));
    std::array<bf16, 8> v{};
    for (int64_t k = 0; k < 8; ++k) v[static_cast<size_t>(k)] = seis::to_bf16(g[i][static_cast<size_t>(k)]);
    cuda_copy_to_device(kDev, dy.get() + ((px[i][0] * s.h + px[i][1]) * s.w + px[i][2]) * 8, v.data(), 16);
  }
  DevBuf dw(s.weight_numel()), db(8);
  DevArray<uint8_t> ws(cuda::conv2d_backward_weight_halo_workspace_bytes(s));
  dw.poison();
  cuda::conv2d_backward_weight_halo(s, x.get(), dy.get(), nullptr, dw.get(), db.get(), ws.get(),
                                    cuda_compute_stream(kDev));
  const std::vector<float> got_w = dw.download(), got_b = db.download();
  std::vector<double> ref_w(static_cast<size_t>(s.weight_numel()), 0.0), ref_b(8, 0.0);
  for (size_t i = 0; i < px.size(); ++i) {
    for (int64_t k = 0; k < 8; ++k) {
      ref_b[static_cast<size_t>(k)] += g[i][static_cast<size_t>(k)];
      for (int64_t tap = 0; tap < 9; ++tap) {
        const int64_t hh = px[i][1] + tap / 3 - 1, ww = px[i][2] + tap % 3 - 1;
        if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
        for (int64_t c = 0; c < 8; ++c)
          ref_w[static_cast<size_t>((k * 9 + tap) * 8 + c)] += g[i][static_cast<size_t>(k)] * xat(px[i][0], hh, ww, c);
      }
    }
  }
  for (size_t i = 0; i < ref_w.size(); ++i) EXPECT_NEAR(got_w[i], ref_w[i], 1e-5) << "dW element " << i;
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(got_b[i], ref_b[i], 1e-5) << "dbias " << i;
}

TEST(CudaConv2dLarge, Past2To31Elements) {
  SEIS_NEED_GPU();
  BigInput in{17, 4096, 4096, 8, {}};
  in.pool = random_vector(in.image_numel() + in.n * 997, 77);
  const int64_t numel = in.n * in.image_numel();
  ASSERT_GT(numel, int64_t{1} << 31);
  Conv2dShape s;
  s.n = in.n;
  s.h = in.h;
  s.w = in.w;
  s.c = 8;
  s.k = 8;
  s.r = 3;
  const auto wt = random_vector(s.weight_numel(), 78);
  const auto bias = random_vector(s.k, 79);
  DevBuf x(numel), y(numel), out(numel), dwt(wt), db(bias), dw(s.weight_numel()), dbias(s.k);
  in.upload(x.get());
  CUstream_st* stream = cuda_compute_stream(kDev);

  // Sampled pixels: image corners and edges, the last pixel, and pixels past 2^31 / C.
  std::vector<std::array<int64_t, 3>> px = {{0, 0, 0},        {16, 4095, 4095}, {16, 0, 4095},   {16, 4095, 0},
                                            {15, 2048, 17},   {16, 1, 1},       {8, 4095, 4095}, {9, 0, 0},
                                            {16, 2047, 4094}, {12, 100, 4000}};
  auto read = [&](const DevBuf& b, int64_t kk, int64_t img, int64_t h, int64_t w, int64_t k) {
    float v = 0;
    cuda_copy_to_host(kDev, &v, b.get() + ((img * s.h + h) * s.w + w) * kk + k, 4);
    return static_cast<double>(v);
  };
  const double tol_f32 = 1e-4 * std::sqrt(72.0);

  // Forward, GEMM path (C = K = 8), fp32 and bf16.
  for (ConvMath math : {ConvMath::bf16, ConvMath::f32}) {
    cuda::conv2d_forward(s, math, x.get(), dwt.get(), db.get(), false, y.get(), nullptr, stream);
    const double tol = math == ConvMath::f32 ? tol_f32 : 0.05 * std::sqrt(72.0);
    for (const auto& p : px) {
      for (int64_t k : {int64_t{0}, int64_t{7}}) {
        const double ref = direct_conv(in, wt, 3, p[0], p[1], p[2], k) + bias[static_cast<size_t>(k)];
        EXPECT_NEAR(read(y, 8, p[0], p[1], p[2], k), ref, tol)
            << "forward " << math_name(math) << " at " << p[0] << "," << p[1] << "," << p[2] << "," << k;
      }
    }
  }
  // Backward data, GEMM path: dy = x (K = C = 8), no mask; dx = conv with the flipped filter.
  cuda::conv2d_backward_data(s, ConvMath::f32, x.get(), nullptr, dwt.get(), out.get(),
                             workspace(s, ConvPass::backward_data).get(), stream);
  {
    std::vector<float> flipped(wt.size());  // W'[c, r, s, k] = W[k, R-1-r, R-1-s, c]
    for (int64_t k = 0; k < 8; ++k)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t t = 0; t < 3; ++t)
          for (int64_t c = 0; c < 8; ++c)
            flipped[static_cast<size_t>(((c * 3 + r) * 3 + t) * 8 + k)] =
                wt[static_cast<size_t>(((k * 3 + (2 - r)) * 3 + (2 - t)) * 8 + c)];
    for (const auto& p : px) {
      for (int64_t c : {int64_t{0}, int64_t{5}}) {
        const double ref = direct_conv(in, flipped, 3, p[0], p[1], p[2], c);
        EXPECT_NEAR(read(out, 8, p[0], p[1], p[2], c), ref, tol_f32)
            << "backward_data at " << p[0] << "," << p[1] << "," << p[2] << "," << c;
      }
    }
  }
  // Backward weight, GEMM path: x and dy = x, masked by y (the last forward, fp32). Three entries and
  // one dbias, each a sum over 285M pixels, recomputed on the host.
  cuda::conv2d_backward_weight(s, ConvMath::f32, x.get(), x.get(), y.get(), dw.get(), dbias.get(),
                               workspace(s, ConvPass::backward_weight).get(), stream);
  {
    std::vector<float> hy(static_cast<size_t>(numel));
    cuda_copy_to_host(kDev, hy.data(), y.get(), numel * 4);
    std::vector<float> got_w(static_cast<size_t>(s.weight_numel())), got_b(8);
    cuda_copy_to_host(kDev, got_w.data(), dw.get(), s.weight_numel() * 4);
    cuda_copy_to_host(kDev, got_b.data(), dbias.get(), 8 * 4);
    struct Entry {
      int64_t k, r, t, c;
    };
    for (const Entry& e : {Entry{0, 0, 0, 0}, Entry{7, 1, 1, 3}, Entry{3, 2, 1, 7}}) {
      double acc = 0, acc_b = 0;
      for (int64_t img = 0; img < s.n; ++img) {
        for (int64_t h = 0; h < s.h; ++h) {
          const int64_t hh = h + e.r - 1;
          for (int64_t w = 0; w < s.w; ++w) {
            const int64_t p = (img * s.h + h) * s.w + w;
            const double g = hy[static_cast<size_t>(p * 8 + e.k)] > 0 ? in.at(img, h, w, e.k) : 0.0;
            acc_b += g;
            const int64_t ww = w + e.t - 1;
            if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
            acc += g * in.at(img, hh, ww, e.c);
          }
        }
      }
      const double got = got_w[static_cast<size_t>(((e.k * 3 + e.r) * 3 + e.t) * 8 + e.c)];
      EXPECT_NEAR(got, acc, 1e-3 * std::fabs(acc) + 0.5) << "backward_weight dw entry k=" << e.k;
      EXPECT_NEAR(got_b[static_cast<size_t>(e.k)], acc_b, 1e-3 * std::fabs(acc_b) + 0.5) << "dbias k=" << e.k;
    }
  }
  // Direct kernels: the 1x1 head (C=8 -> K=1) reads x past 2^31; the input conv (C=1 -> K=8) writes
  // past 2^31 (its input is the first 285M values of x).
  {
    Conv2dShape head = s;
    head.k = 1;
    head.r = 1;
    const auto hw = random_vector(8, 80);
    DevBuf dhw(hw);
    cuda::conv2d_forward(head, ConvMath::f32, x.get(), dhw.get(), nullptr, false, out.get(), nullptr, stream);
    for (const auto& p : px) {
      double ref = 0;
      for (int64_t c = 0; c < 8; ++c)
        ref += static_cast<double>(in.at(p[0], p[1], p[2], c)) * hw[static_cast<size_t>(c)];
      EXPECT_NEAR(read(out, 1, p[0], p[1], p[2], 0), ref, 1e-5 * 8) << "head at " << p[0] << "," << p[1];
    }
    Conv2dShape first = s;
    first.c = 1;
    const auto fw = random_vector(8 * 9, 81);
    DevBuf dfw(fw);
    cuda::conv2d_forward(first, ConvMath::f32, x.get(), dfw.get(), nullptr, false, out.get(), nullptr, stream);
    const int64_t img_px = s.h * s.w;
    for (const auto& p : px) {
      for (int64_t k : {int64_t{0}, int64_t{7}}) {
        double ref = 0;
        for (int64_t dr = 0; dr < 3; ++dr) {
          for (int64_t ds = 0; ds < 3; ++ds) {
            const int64_t hh = p[1] + dr - 1, ww = p[2] + ds - 1;
            if (hh < 0 || hh >= s.h || ww < 0 || ww >= s.w) continue;
            // x viewed as [17, 4096, 4096, 1]: element p of that view is x[p] of the 8-channel layout.
            const int64_t flat = p[0] * img_px + hh * s.w + ww;
            const int64_t img8 = flat / (img_px * 8), rem = flat % (img_px * 8);
            ref += static_cast<double>(in.pool[static_cast<size_t>(img8 * 997 + rem)]) *
                   fw[static_cast<size_t>((k * 3 + dr) * 3 + ds)];
          }
        }
        EXPECT_NEAR(read(out, 8, p[0], p[1], p[2], k), ref, 1e-5 * 9) << "input conv at " << p[0] << "," << p[1];
      }
    }
  }
}

}  // namespace
}  // namespace seis
