// The hand-written CUDA kernels against the CPU reference (seis::cpu), on fresh random inputs with
// poisoned outputs; the device runtime (allocator, copies, streams). Compiled by the host compiler:
// only engine/device_runtime.h, engine/cuda_stream.h and the kernel headers are used.
// CudaBig* tests cross 2^31 elements on each indexing path (about 30 GiB of host and 20 GiB of
// device memory); leave them out under compute-sanitizer with --gtest_filter=-CudaBig*.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/cuda_stream.h"
#include "engine/device_runtime.h"
#include "engine/error.h"
#include "kernels/activation.h"
#include "kernels/bce_loss.h"
#include "kernels/bf16.h"
#include "kernels/concat.h"
#include "kernels/elementwise.h"
#include "kernels/metrics.h"
#include "kernels/optimizer_update.h"
#include "kernels/pool.h"
#include "kernels/upsample.h"
#include "test_util.h"

namespace seis {
namespace {

using test::all_close;
using test::random_vector;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kDev = 0;

CUstream_st* stream() { return cuda_compute_stream(kDev); }

// A device array of n elements of T from the caching allocator of device 0.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(int64_t n) : n_(n), p_(static_cast<T*>(cuda_alloc(kDev, bytes()))) {}
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(static_cast<int64_t>(host.size())) {
    upload(host.data());
  }
  ~DeviceArray() { cuda_free(kDev, p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return p_; }
  int64_t size() const { return n_; }
  int64_t bytes() const { return n_ * static_cast<int64_t>(sizeof(T)); }
  void upload(const T* host) { cuda_copy_to_device(kDev, p_, host, bytes()); }
  void download(T* host) const { cuda_copy_to_host(kDev, host, p_, bytes()); }  // after the queued kernels
  std::vector<T> to_host() const {
    std::vector<T> v(static_cast<size_t>(n_));
    download(v.data());
    return v;
  }
  // Fills with `value` through a host copy, so that unwritten outputs show up.
  void poison(T value) { upload(std::vector<T>(static_cast<size_t>(n_), value).data()); }

 private:
  int64_t n_;
  T* p_;
};

std::vector<uint8_t> random_labels(int64_t n, uint64_t seed, double p_positive) {
  std::mt19937_64 gen(seed);
  std::bernoulli_distribution d(p_positive);
  std::vector<uint8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(gen) ? 1 : 0;
  return v;
}

// Values on a coarse grid, so that maxpool sees many ties.
std::vector<float> tied_vector(int64_t n, uint64_t seed) {
  std::vector<float> v = random_vector(n, seed);
  for (auto& x : v) x = std::round(x * 2.0f) / 2.0f;
  return v;
}

::testing::AssertionResult bytes_equal(const uint8_t* got, const uint8_t* ref, int64_t n) {
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (got[i] != ref[i]) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " bytes differ; first at [" << first << "]: got "
                                       << int(got[first]) << " want " << int(ref[first]);
}

struct Nhwc {
  int64_t n, h, w, c;
  int64_t numel() const { return n * h * w * c; }
};
// Tiny, odd H and W, one channel, channels not a multiple of 4, 512 channels, an empty pool output.
const std::vector<Nhwc> kShapes = {{1, 2, 2, 1},   {2, 5, 7, 3}, {1, 6, 9, 1}, {3, 7, 5, 6},   {2, 8, 8, 8},
                                   {1, 4, 6, 512}, {1, 3, 3, 4}, {2, 1, 5, 4}, {1, 33, 17, 5}, {2, 31, 65, 16}};

const std::vector<int64_t> kSizes = {1, 3, 4, 5, 17, 1000, 4099, (int64_t{1} << 20) + 3};

// ---- Device runtime -----------------------------------------------------------------------------

TEST(CudaRuntime, DeviceCountAndDescription) {
  SEIS_NEED_GPU();
  EXPECT_GE(cuda_device_count(), 1);
  EXPECT_EQ(cuda_device_count(), cuda_device_count());
  const std::string d = cuda_device_description(kDev);
  EXPECT_NE(d.find("sm_"), std::string::npos) << d;
  std::printf("device 0: %s\n", d.c_str());
  EXPECT_THROW(cuda_device_description(cuda_device_count()), Error);
}

TEST(CudaRuntime, AllocatorReusesBlocksAndTracksPeak) {
  SEIS_NEED_GPU();
  cuda_synchronize(kDev);
  cuda_release_cached_memory(kDev);
  const int64_t base = cuda_bytes_in_use(kDev);
  void* p = cuda_alloc(kDev, 1000);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(cuda_bytes_in_use(kDev), base + 1000);
  cuda_free(kDev, p);
  EXPECT_EQ(cuda_bytes_in_use(kDev), base);
  void* q = cuda_alloc(kDev, 1000);
  EXPECT_EQ(q, p) << "a freed block of the same size class is reused";
  cuda_free(kDev, q);

  cuda_reset_peak_bytes(kDev);
  EXPECT_EQ(cuda_peak_bytes(kDev), base);
  const int64_t mib = int64_t{1} << 20;
  void* a = cuda_alloc(kDev, 10 * mib);
  void* b = cuda_alloc(kDev, 20 * mib + 3);
  EXPECT_NE(a, b);
  cuda_free(kDev, a);
  cuda_free(kDev, b);
  EXPECT_EQ(cuda_bytes_in_use(kDev), base);
  EXPECT_GE(cuda_peak_bytes(kDev), base + 30 * mib);
  EXPECT_LE(cuda_peak_bytes(kDev), base + 34 * mib);
  EXPECT_GE(cuda_reserved_bytes(kDev), cuda_bytes_in_use(kDev) + 30 * mib) << "freed blocks stay cached";
  cuda_release_cached_memory(kDev);
  EXPECT_EQ(cuda_reserved_bytes(kDev), cuda_bytes_in_use(kDev));

  void* z = cuda_alloc(kDev, 0);
  EXPECT_NE(z, nullptr);
  cuda_free(kDev, z);
  cuda_free(kDev, nullptr);
  int host_value = 0;
  EXPECT_THROW(cuda_free(kDev, &host_value), Error);
  EXPECT_THROW(cuda_alloc(kDev, -1), Error);
  EXPECT_THROW(cuda_alloc(cuda_device_count(), 16), Error);
}

TEST(CudaRuntime, OutOfMemoryThrowsAClearErrorAndRecovers) {
  SEIS_NEED_GPU();
  const int64_t huge = int64_t{1} << 50;  // 1 PiB
  try {
    cuda_alloc(kDev, huge);
    FAIL() << "a 1 PiB allocation succeeded";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("out of memory"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(huge)), std::string::npos) << msg;
  }
  // The failure is not sticky: allocations and kernels still work.
  DeviceArray<float> y(1000);
  cuda::fill(1000, 2.5f, y.get(), stream());
  const std::vector<float> host = y.to_host();
  EXPECT_EQ(host.front(), 2.5f);
  EXPECT_EQ(host.back(), 2.5f);
}

TEST(CudaRuntime, CopiesMemsetAndPinnedMemory) {
  SEIS_NEED_GPU();
  const int64_t n = 123457;
  const std::vector<float> src = random_vector(n, 1);
  float* pinned = static_cast<float*>(pinned_alloc(n * 4));
  ASSERT_NE(pinned, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pinned) % 64, 0u);
  std::memcpy(pinned, src.data(), n * 4);
  DeviceArray<float> a(n), b(n);
  a.upload(pinned);
  cuda_copy_device_to_device(kDev, b.get(), a.get(), n * 4);
  std::memset(pinned, 0, n * 4);
  b.download(pinned);
  EXPECT_EQ(std::memcmp(pinned, src.data(), n * 4), 0);
  pinned_free(pinned);
  pinned_free(nullptr);

  cuda_memset_zero(kDev, b.get(), n * 4);
  const std::vector<float> zeros = b.to_host();
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0.0f; }));
  cuda_copy_to_device(kDev, a.get(), src.data(), 0);  // empty copies are allowed
}

TEST(CudaRuntime, CopyStreamAndEvents) {
  SEIS_NEED_GPU();
  CUstream_st* copy = cuda_copy_stream(kDev);
  ASSERT_NE(copy, nullptr);
  EXPECT_NE(copy, stream());
  EXPECT_EQ(copy, cuda_copy_stream(kDev));
  const int64_t n = 1 << 22;
  DeviceArray<float> y(n);
  cuda::fill(n, 1.5f, y.get(), stream());
  CudaEvent filled(kDev);
  filled.record(stream());
  filled.wait(copy);  // the copy stream now runs after the fill
  cuda::scale_inplace(n, 2.0f, y.get(), copy);
  CudaEvent scaled(kDev);
  scaled.record(copy);
  scaled.synchronize();
  EXPECT_TRUE(scaled.done());
  CudaEvent moved = std::move(scaled);
  EXPECT_TRUE(moved.done());
  cuda_stream_synchronize(copy);
  const std::vector<float> host = y.to_host();
  EXPECT_EQ(host[0], 3.0f);
  EXPECT_EQ(host[n - 1], 3.0f);
}

// ---- Element-wise and activations -----------------------------------------------------------------

// Runs `gpu` and `cpu` on inputs x (and z) of size n, at an offset of one float when `misaligned`
// (the scalar path), and compares outputs.
TEST(CudaElementwise, MatchesCpu) {
  SEIS_NEED_GPU();
  for (bool misaligned : {false, true}) {
    for (int64_t n : kSizes) {
      SCOPED_TRACE("n = " + std::to_string(n) + (misaligned ? " misaligned" : ""));
      const int64_t off = misaligned ? 1 : 0;
      const std::vector<float> x = random_vector(n + off, 10 + n);
      const std::vector<float> y0 = random_vector(n + off, 20 + n);
      DeviceArray<float> dx(x), dy(n + off);

      // relu forward / backward and sigmoid: outputs poisoned, then compared.
      std::vector<float> ref(n + off);
      dy.poison(kNaN);
      cuda::relu_forward(n, dx.get() + off, dy.get() + off, stream());
      cpu::relu_forward(n, x.data() + off, ref.data() + off);
      EXPECT_TRUE(all_close(dy.to_host().data() + off, ref.data() + off, n, 0, 0)) << "relu_forward";

      DeviceArray<float> dgrad(y0), dout(n + off);
      dout.poison(kNaN);
      cuda::relu_backward(n, dy.get() + off, dgrad.get() + off, dout.get() + off, stream());
      std::vector<float> relu_y(ref), ref_dx(n + off);
      cpu::relu_backward(n, relu_y.data() + off, y0.data() + off, ref_dx.data() + off);
      EXPECT_TRUE(all_close(dout.to_host().data() + off, ref_dx.data() + off, n, 0, 0)) << "relu_backward";

      dy.poison(kNaN);
      cuda::sigmoid_forward(n, dx.get() + off, dy.get() + off, stream());
      cpu::sigmoid_forward(n, x.data() + off, ref.data() + off);
      EXPECT_TRUE(all_close(dy.to_host().data() + off, ref.data() + off, n, 2e-7, 2e-6, 1e-12)) << "sigmoid";

      // In-place helpers on y0.
      DeviceArray<float> dacc(y0);
      std::vector<float> acc(y0);
      cuda::add_inplace(n, dx.get() + off, dacc.get() + off, stream());
      cpu::add_inplace(n, x.data() + off, acc.data() + off);
      EXPECT_TRUE(all_close(dacc.to_host().data() + off, acc.data() + off, n, 0, 0)) << "add_inplace";
      cuda::scale_inplace(n, -0.37f, dacc.get() + off, stream());
      cpu::scale_inplace(n, -0.37f, acc.data() + off);
      EXPECT_TRUE(all_close(dacc.to_host().data() + off, acc.data() + off, n, 0, 0)) << "scale_inplace";
      dacc.poison(kNaN);
      cuda::fill(n, 0.625f, dacc.get() + off, stream());
      cpu::fill(n, 0.625f, acc.data() + off);
      EXPECT_TRUE(all_close(dacc.to_host().data() + off, acc.data() + off, n, 0, 0)) << "fill";
      if (off) {
        EXPECT_TRUE(std::isnan(dacc.to_host()[0])) << "fill wrote before its start";
      }
    }
  }
  cuda::relu_forward(0, static_cast<const float*>(nullptr), nullptr, stream());  // n = 0 launches nothing
  cuda_synchronize(kDev);
}

// ---- maxpool, upsample, concat --------------------------------------------------------------------

void check_maxpool(const Nhwc& s, const std::vector<float>& x, uint64_t seed) {
  const int64_t outputs = s.n * (s.h / 2) * (s.w / 2) * s.c;
  DeviceArray<float> dx_in(x), dy_out(std::max<int64_t>(outputs, 1));
  const int64_t arg_bytes = maxpool2d_argmax_bytes(s.n, s.h, s.w, s.c);
  DeviceArray<uint8_t> darg(std::max<int64_t>(arg_bytes, 1));
  dy_out.poison(kNaN);
  darg.poison(0xAB);
  cuda::maxpool2d_forward(s.n, s.h, s.w, s.c, dx_in.get(), dy_out.get(), darg.get(), stream());
  std::vector<float> ref_y(std::max<int64_t>(outputs, 1));
  std::vector<uint8_t> ref_arg(std::max<int64_t>(arg_bytes, 1));
  cpu::maxpool2d_forward(s.n, s.h, s.w, s.c, x.data(), ref_y.data(), ref_arg.data());
  EXPECT_TRUE(all_close(dy_out.to_host().data(), ref_y.data(), outputs, 0, 0)) << "maxpool forward y";
  EXPECT_TRUE(bytes_equal(darg.to_host().data(), ref_arg.data(), arg_bytes)) << "maxpool forward argmax";

  const std::vector<float> g = random_vector(std::max<int64_t>(outputs, 1), seed);
  DeviceArray<float> dg(g), ddx(s.numel());
  ddx.poison(kNaN);
  cuda::maxpool2d_backward(s.n, s.h, s.w, s.c, dg.get(), darg.get(), ddx.get(), false, stream());
  std::vector<float> ref_dx(s.numel());
  cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), ref_arg.data(), ref_dx.data(), false);
  EXPECT_TRUE(all_close(ddx.to_host().data(), ref_dx.data(), s.numel(), 0, 0)) << "maxpool backward";
  // Accumulated into a gradient already there.
  std::vector<float> acc = random_vector(s.numel(), seed + 7);
  DeviceArray<float> dacc(acc);
  cuda::maxpool2d_backward(s.n, s.h, s.w, s.c, dg.get(), darg.get(), dacc.get(), true, stream());
  cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), ref_arg.data(), acc.data(), true);
  EXPECT_TRUE(all_close(dacc.to_host().data(), acc.data(), s.numel(), 0, 0)) << "maxpool backward, accumulated";
}

TEST(CudaPool, MatchesCpu) {
  SEIS_NEED_GPU();
  uint64_t seed = 100;
  for (const Nhwc& s : kShapes) {
    SCOPED_TRACE("NHWC " + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                 std::to_string(s.c));
    seed += 2;
    check_maxpool(s, random_vector(s.numel(), seed), seed + 1);
    SCOPED_TRACE("with ties");
    check_maxpool(s, tied_vector(s.numel(), seed + 1), seed);
  }
}

TEST(CudaPool, TiesTakeTheFirstMaximum) {
  SEIS_NEED_GPU();
  // One 2x2 window, three channels: all equal -> 0; max at (0,1) and (1,1) -> 1; at (1,0) and (1,1) -> 2.
  const std::vector<float> x = {1, 0, 0, /**/ 1, 2, 1, /**/ 1, 1, 5, /**/ 1, 2, 5};  // [1,2,2,3]
  DeviceArray<float> dx(x), dy(3);
  DeviceArray<uint8_t> darg(1);  // three 2-bit positions, the last two bits zero
  darg.poison(0xAB);
  cuda::maxpool2d_forward(1, 2, 2, 3, dx.get(), dy.get(), darg.get(), stream());
  const std::vector<uint8_t> arg = darg.to_host();
  EXPECT_EQ(arg[0] & 3, 0);         // channel 0: 1, 1, 1, 1
  EXPECT_EQ((arg[0] >> 2) & 3, 1);  // channel 1: 0, 2, 1, 2
  EXPECT_EQ((arg[0] >> 4) & 3, 2);  // channel 2: 0, 1, 5, 5
  EXPECT_EQ(arg[0] >> 6, 0);
  const std::vector<float> y = dy.to_host();
  EXPECT_EQ(y, std::vector<float>({1, 2, 5}));
}

TEST(CudaUpsample, MatchesCpu) {
  SEIS_NEED_GPU();
  uint64_t seed = 200;
  for (const Nhwc& s : kShapes) {
    SCOPED_TRACE("NHWC " + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                 std::to_string(s.c));
    const int64_t out = 4 * s.numel();
    const std::vector<float> x = random_vector(s.numel(), ++seed);
    DeviceArray<float> dx(x), dy(out);
    dy.poison(kNaN);
    cuda::upsample2x_forward(s.n, s.h, s.w, s.c, dx.get(), dy.get(), stream());
    std::vector<float> ref_y(out);
    cpu::upsample2x_forward(s.n, s.h, s.w, s.c, x.data(), ref_y.data());
    EXPECT_TRUE(all_close(dy.to_host().data(), ref_y.data(), out, 0, 0)) << "upsample forward";

    const std::vector<float> g = random_vector(out, ++seed);
    DeviceArray<float> dg(g), ddx(s.numel());
    ddx.poison(kNaN);
    cuda::upsample2x_backward(s.n, s.h, s.w, s.c, dg.get(), ddx.get(), stream());
    std::vector<float> ref_dx(s.numel());
    cpu::upsample2x_backward(s.n, s.h, s.w, s.c, g.data(), ref_dx.data());
    // Same summation order as the CPU: exact.
    EXPECT_TRUE(all_close(ddx.to_host().data(), ref_dx.data(), s.numel(), 0, 0)) << "upsample backward";
  }
}

TEST(CudaConcat, MatchesCpu) {
  SEIS_NEED_GPU();
  struct Case {
    int64_t pixels, ca, cb;
  };
  const std::vector<Case> cases = {{1, 1, 1},      {7, 3, 5},  {35, 8, 8}, {35, 4, 12},  {100, 1, 8},
                                   {17, 512, 256}, {19, 8, 0}, {19, 0, 4}, {1000, 6, 2}, {4099, 16, 16}};
  uint64_t seed = 300;
  for (const Case& c : cases) {
    SCOPED_TRACE("pixels " + std::to_string(c.pixels) + " ca " + std::to_string(c.ca) + " cb " + std::to_string(c.cb));
    const int64_t na = c.pixels * c.ca, nb = c.pixels * c.cb, ny = na + nb;
    const std::vector<float> a = random_vector(std::max<int64_t>(na, 1), ++seed);
    const std::vector<float> b = random_vector(std::max<int64_t>(nb, 1), ++seed);
    DeviceArray<float> da(a), db(b), dy(ny);
    dy.poison(kNaN);
    cuda::concat_channels(c.pixels, c.ca, c.cb, da.get(), db.get(), dy.get(), stream());
    std::vector<float> ref_y(ny);
    cpu::concat_channels(c.pixels, c.ca, c.cb, a.data(), b.data(), ref_y.data());
    EXPECT_TRUE(all_close(dy.to_host().data(), ref_y.data(), ny, 0, 0)) << "concat";

    const std::vector<float> g = random_vector(ny, ++seed);
    DeviceArray<float> dg(g);
    da.poison(kNaN);
    db.poison(kNaN);
    cuda::split_channels(c.pixels, c.ca, c.cb, dg.get(), da.get(), db.get(), stream());
    std::vector<float> ref_a(std::max<int64_t>(na, 1)), ref_b(std::max<int64_t>(nb, 1));
    cpu::split_channels(c.pixels, c.ca, c.cb, g.data(), ref_a.data(), ref_b.data());
    EXPECT_TRUE(all_close(da.to_host().data(), ref_a.data(), na, 0, 0)) << "split a";
    EXPECT_TRUE(all_close(db.to_host().data(), ref_b.data(), nb, 0, 0)) << "split b";
  }
}

// ---- BCE, metrics ------------------------------------------------------------------------------

TEST(CudaBce, MatchesCpuAndIsDeterministic) {
  SEIS_NEED_GPU();
  const std::vector<int64_t> sizes = {1, 5, 256, 1000, 4099, 1 << 20, 10'000'019};
  uint64_t seed = 400;
  for (int64_t n : sizes) {
    for (float pw : {1.0f, 3.7f}) {
      SCOPED_TRACE("n = " + std::to_string(n) + " pos_weight " + std::to_string(pw));
      const std::vector<float> x = random_vector(n, ++seed, -8.0f, 8.0f);
      const std::vector<uint8_t> t = random_labels(n, ++seed, 0.3);
      DeviceArray<float> dx(x), dloss(1);
      DeviceArray<uint8_t> dt(t);
      dloss.poison(kNaN);
      cuda::bce_with_logits_forward(n, dx.get(), dt.get(), pw, dloss.get(), stream());
      const float got = dloss.to_host()[0];
      float ref = kNaN;
      cpu::bce_with_logits_forward(n, x.data(), t.data(), pw, &ref);
      EXPECT_NEAR(got, ref, 1e-5 * std::fabs(ref) + 1e-7) << "loss";
      dloss.poison(kNaN);
      cuda::bce_with_logits_forward(n, dx.get(), dt.get(), pw, dloss.get(), stream());
      const float again = dloss.to_host()[0];
      EXPECT_EQ(std::memcmp(&got, &again, sizeof(float)), 0) << "two runs differ: " << got << " vs " << again;

      const float grad_scale = 1.0f / static_cast<float>(2 * n);        // as if the batch were split in two
      const DeviceArray<float> dscale(std::vector<float>{grad_scale});  // dloss / n_total, on the device
      DeviceArray<float> dgrad(n);
      dgrad.poison(kNaN);
      cuda::bce_with_logits_backward(n, dx.get(), dt.get(), pw, dscale.get(), dgrad.get(), stream());
      std::vector<float> ref_grad(n);
      cpu::bce_with_logits_backward(n, x.data(), t.data(), pw, &grad_scale, ref_grad.data());
      EXPECT_TRUE(all_close(dgrad.to_host().data(), ref_grad.data(), n, 4e-7 * pw * grad_scale, 1e-5, 1e-10))
          << "dlogits";
    }
  }
  DeviceArray<float> dloss(1);
  dloss.poison(kNaN);
  cuda::bce_with_logits_forward(0, static_cast<const float*>(nullptr), nullptr, 1.0f, dloss.get(), stream());
  EXPECT_EQ(dloss.to_host()[0], 0.0f) << "the mean of nothing";
}

TEST(CudaMetrics, MatchesCpu) {
  SEIS_NEED_GPU();
  const std::vector<int64_t> sizes = {1, 7, 256, 257, 4099, 1 << 20, 10'000'019};
  uint64_t seed = 500;
  for (int64_t n : sizes) {
    for (float thr : {0.0f, std::log(0.7f / 0.3f)}) {
      SCOPED_TRACE("n = " + std::to_string(n) + " threshold " + std::to_string(thr));
      std::vector<float> x = random_vector(n, ++seed, -3.0f, 3.0f);
      for (int64_t i = 0; i < n; i += 5) x[i] = thr;  // exactly at the threshold counts as positive
      const std::vector<uint8_t> t = random_labels(n, ++seed, 0.2);
      DeviceArray<float> dx(x);
      DeviceArray<uint8_t> dt(t);
      DeviceArray<int64_t> dcounts(3);
      dcounts.poison(-1);
      cuda::confusion_counts(n, dx.get(), dt.get(), thr, dcounts.get(), stream());
      int64_t ref[3] = {-1, -1, -1};
      cpu::confusion_counts(n, x.data(), t.data(), thr, ref);
      const std::vector<int64_t> got = dcounts.to_host();
      EXPECT_EQ(got[0], ref[0]) << "TP";
      EXPECT_EQ(got[1], ref[1]) << "FP";
      EXPECT_EQ(got[2], ref[2]) << "FN";
    }
  }
  DeviceArray<int64_t> dcounts(3);
  dcounts.poison(-1);
  cuda::confusion_counts(0, static_cast<const float*>(nullptr), nullptr, 0.0f, dcounts.get(), stream());
  EXPECT_EQ(dcounts.to_host(), std::vector<int64_t>({0, 0, 0}));
}

// ---- bf16 storage ------------------------------------------------------------------------------------
// The bf16 overloads against their CPU twins (kernels/cpu): both widen on load, compute in fp32 and
// round once to nearest even, so the outputs are bit-identical wherever the fp32 arithmetic is the
// same (ReLU, pooling, upsample, concat, convert, add_inplace, confusion counts). Sigmoid and BCE use
// the device's expf/log1pf, so they get the fp32 tolerances, plus one bf16 ulp where the output is bf16.

constexpr bf16 kNaN16{0x7fc0};
constexpr double kBf16Ulp = 1.0 / 128;  // one bf16 ulp, relative: at most 2^-7 of the value

std::vector<bf16> to_bf16(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = seis::to_bf16(v[i]);
  return out;
}

std::vector<float> widen(const bf16* p, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = to_float(p[i]);
  return out;
}

std::vector<bf16> random_bf16(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return to_bf16(random_vector(n, seed, lo, hi));
}

// Bit equality of float or bf16 arrays (NaN equal to the same NaN), reporting the first mismatches.
template <class T>
::testing::AssertionResult bits_equal(const T* got, const T* ref, int64_t n) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "float or bf16");
  int64_t bad = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < n; ++i) {
    if (std::memcmp(&got[i], &ref[i], sizeof(T)) != 0) {
      if (bad < 10) first << "\n  [" << i << "] got " << to_float(got[i]) << " want " << to_float(ref[i]);
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements differ" << first.str();
}

// Rounding cases for convert f32 -> bf16: ties to even both ways, just above and below a tie, the
// largest values that round to the largest finite bf16 and to infinity, subnormals, zeros, Inf, NaN.
std::vector<float> rounding_cases() {
  const uint32_t bits[] = {0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu, 0xbf808000u, 0xbf818000u,
                           0x7f7f7fffu, 0x7f7f8000u, 0x7f7fffffu, 0x00000001u, 0x00008000u, 0x00018000u,
                           0x80000000u, 0x00000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u};
  std::vector<float> v;
  for (uint32_t b : bits) {
    float f;
    std::memcpy(&f, &b, 4);
    v.push_back(f);
  }
  return v;
}

// At offsets of 0, 1 and 4 elements: the vector path (8-byte bf16x4), the scalar path, and a bf16
// array 8-byte but not 16-byte aligned.
TEST(CudaBf16Elementwise, MatchesCpu) {
  SEIS_NEED_GPU();
  for (int64_t off : {0, 1, 4}) {
    for (int64_t n : kSizes) {
      SCOPED_TRACE("n = " + std::to_string(n) + " offset " + std::to_string(off));
      const std::vector<bf16> x = random_bf16(n + off, 30 + n);
      const std::vector<bf16> y0 = random_bf16(n + off, 40 + n);
      DeviceArray<bf16> dx(x), dy(n + off);

      std::vector<bf16> ref(n + off, kNaN16);
      dy.poison(kNaN16);
      cuda::relu_forward(n, dx.get() + off, dy.get() + off, stream());
      cpu::relu_forward(n, x.data() + off, ref.data() + off);
      const std::vector<bf16> relu_y = dy.to_host();
      EXPECT_TRUE(bits_equal(relu_y.data(), ref.data(), n + off)) << "relu_forward (and nothing before it)";

      DeviceArray<bf16> dgrad(y0), dout(n + off);
      dout.poison(kNaN16);
      cuda::relu_backward(n, dy.get() + off, dgrad.get() + off, dout.get() + off, stream());
      std::vector<bf16> ref_dx(n + off);
      cpu::relu_backward(n, ref.data() + off, y0.data() + off, ref_dx.data() + off);
      EXPECT_TRUE(bits_equal(dout.to_host().data() + off, ref_dx.data() + off, n)) << "relu_backward";

      DeviceArray<float> dprob(n + off);
      dprob.poison(kNaN);
      cuda::sigmoid_forward(n, dx.get() + off, dprob.get() + off, stream());
      std::vector<float> ref_prob(n + off);
      cpu::sigmoid_forward(n, x.data() + off, ref_prob.data() + off);
      EXPECT_TRUE(all_close(dprob.to_host().data() + off, ref_prob.data() + off, n, 2e-7, 2e-6, 1e-12)) << "sigmoid";

      DeviceArray<bf16> dacc(y0);
      std::vector<bf16> acc(y0);
      cuda::add_inplace(n, dx.get() + off, dacc.get() + off, stream());
      cpu::add_inplace(n, x.data() + off, acc.data() + off);
      EXPECT_TRUE(bits_equal(dacc.to_host().data(), acc.data(), n + off)) << "add_inplace";

      // convert both ways, with the rounding cases at the front.
      std::vector<float> wide = random_vector(n + off, 50 + n, -100.0f, 100.0f);
      const std::vector<float> cases = rounding_cases();
      std::copy_n(cases.begin(), std::min<int64_t>(n, static_cast<int64_t>(cases.size())), wide.begin() + off);
      DeviceArray<float> dwide(wide);
      DeviceArray<bf16> dnarrow(n + off);
      dnarrow.poison(kNaN16);
      cuda::convert(n, dwide.get() + off, dnarrow.get() + off, stream());
      std::vector<bf16> ref_narrow(n + off);
      cpu::convert(n, wide.data() + off, ref_narrow.data() + off);
      EXPECT_TRUE(bits_equal(dnarrow.to_host().data() + off, ref_narrow.data() + off, n)) << "convert f32 -> bf16";
      DeviceArray<float> dback(n + off);
      dback.poison(kNaN);
      cuda::convert(n, dnarrow.get() + off, dback.get() + off, stream());
      std::vector<float> ref_back(n + off);
      cpu::convert(n, ref_narrow.data() + off, ref_back.data() + off);
      EXPECT_TRUE(bits_equal(dback.to_host().data() + off, ref_back.data() + off, n)) << "convert bf16 -> f32";
    }
  }
  cuda::relu_forward(0, static_cast<const bf16*>(nullptr), nullptr, stream());  // n = 0 launches nothing
  cuda::convert(0, static_cast<const float*>(nullptr), static_cast<bf16*>(nullptr), stream());
  cuda_synchronize(kDev);
}

void check_maxpool_bf16(const Nhwc& s, const std::vector<bf16>& x, uint64_t seed) {
  const int64_t outputs = s.n * (s.h / 2) * (s.w / 2) * s.c;
  DeviceArray<bf16> dx_in(x), dy_out(std::max<int64_t>(outputs, 1));
  const int64_t arg_bytes = maxpool2d_argmax_bytes(s.n, s.h, s.w, s.c);
  DeviceArray<uint8_t> darg(std::max<int64_t>(arg_bytes, 1));
  dy_out.poison(kNaN16);
  darg.poison(0xAB);
  cuda::maxpool2d_forward(s.n, s.h, s.w, s.c, dx_in.get(), dy_out.get(), darg.get(), stream());
  std::vector<bf16> ref_y(std::max<int64_t>(outputs, 1));
  std::vector<uint8_t> ref_arg(std::max<int64_t>(arg_bytes, 1));
  cpu::maxpool2d_forward(s.n, s.h, s.w, s.c, x.data(), ref_y.data(), ref_arg.data());
  EXPECT_TRUE(bits_equal(dy_out.to_host().data(), ref_y.data(), outputs)) << "maxpool forward y";
  EXPECT_TRUE(bytes_equal(darg.to_host().data(), ref_arg.data(), arg_bytes)) << "maxpool forward argmax";

  const std::vector<bf16> g = random_bf16(std::max<int64_t>(outputs, 1), seed);
  DeviceArray<bf16> dg(g), ddx(s.numel());
  ddx.poison(kNaN16);
  cuda::maxpool2d_backward(s.n, s.h, s.w, s.c, dg.get(), darg.get(), ddx.get(), false, stream());
  std::vector<bf16> ref_dx(s.numel());
  cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), ref_arg.data(), ref_dx.data(), false);
  EXPECT_TRUE(bits_equal(ddx.to_host().data(), ref_dx.data(), s.numel())) << "maxpool backward";
  // Accumulated into a gradient already there (one rounding, as the CPU's).
  std::vector<bf16> acc = random_bf16(s.numel(), seed + 7);
  DeviceArray<bf16> dacc(acc);
  cuda::maxpool2d_backward(s.n, s.h, s.w, s.c, dg.get(), darg.get(), dacc.get(), true, stream());
  cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, g.data(), ref_arg.data(), acc.data(), true);
  EXPECT_TRUE(bits_equal(dacc.to_host().data(), acc.data(), s.numel())) << "maxpool backward, accumulated";
}

TEST(CudaBf16Pool, MatchesCpu) {
  SEIS_NEED_GPU();
  uint64_t seed = 1100;
  for (const Nhwc& s : kShapes) {
    SCOPED_TRACE("NHWC " + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                 std::to_string(s.c));
    seed += 2;
    check_maxpool_bf16(s, random_bf16(s.numel(), seed), seed + 1);
    SCOPED_TRACE("with ties");
    check_maxpool_bf16(s, to_bf16(tied_vector(s.numel(), seed + 1)), seed);
  }
}

TEST(CudaBf16Upsample, MatchesCpu) {
  SEIS_NEED_GPU();
  uint64_t seed = 1200;
  for (const Nhwc& s : kShapes) {
    SCOPED_TRACE("NHWC " + std::to_string(s.n) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + "x" +
                 std::to_string(s.c));
    const int64_t out = 4 * s.numel();
    const std::vector<bf16> x = random_bf16(s.numel(), ++seed);
    DeviceArray<bf16> dx(x), dy(out);
    dy.poison(kNaN16);
    cuda::upsample2x_forward(s.n, s.h, s.w, s.c, dx.get(), dy.get(), stream());
    std::vector<bf16> ref_y(out);
    cpu::upsample2x_forward(s.n, s.h, s.w, s.c, x.data(), ref_y.data());
    EXPECT_TRUE(bits_equal(dy.to_host().data(), ref_y.data(), out)) << "upsample forward";

    const std::vector<bf16> g = random_bf16(out, ++seed);
    DeviceArray<bf16> dg(g), ddx(s.numel());
    ddx.poison(kNaN16);
    cuda::upsample2x_backward(s.n, s.h, s.w, s.c, dg.get(), ddx.get(), stream());
    std::vector<bf16> ref_dx(s.numel());
    cpu::upsample2x_backward(s.n, s.h, s.w, s.c, g.data(), ref_dx.data());
    // The same fp32 sum in the same order, rounded once: exact.
    EXPECT_TRUE(bits_equal(ddx.to_host().data(), ref_dx.data(), s.numel())) << "upsample backward";
  }
}

TEST(CudaBf16Concat, MatchesCpu) {
  SEIS_NEED_GPU();
  struct Case {
    int64_t pixels, ca, cb;
  };
  const std::vector<Case> cases = {{1, 1, 1},      {7, 3, 5},  {35, 8, 8}, {35, 4, 12},  {100, 1, 8},
                                   {17, 512, 256}, {19, 8, 0}, {19, 0, 4}, {1000, 6, 2}, {4099, 16, 16}};
  uint64_t seed = 1300;
  for (const Case& c : cases) {
    SCOPED_TRACE("pixels " + std::to_string(c.pixels) + " ca " + std::to_string(c.ca) + " cb " + std::to_string(c.cb));
    const int64_t na = c.pixels * c.ca, nb = c.pixels * c.cb, ny = na + nb;
    const std::vector<bf16> a = random_bf16(std::max<int64_t>(na, 1), ++seed);
    const std::vector<bf16> b = random_bf16(std::max<int64_t>(nb, 1), ++seed);
    DeviceArray<bf16> da(a), db(b), dy(ny);
    dy.poison(kNaN16);
    cuda::concat_channels(c.pixels, c.ca, c.cb, da.get(), db.get(), dy.get(), stream());
    std::vector<bf16> ref_y(ny);
    cpu::concat_channels(c.pixels, c.ca, c.cb, a.data(), b.data(), ref_y.data());
    EXPECT_TRUE(bits_equal(dy.to_host().data(), ref_y.data(), ny)) << "concat";

    const std::vector<bf16> g = random_bf16(ny, ++seed);
    DeviceArray<bf16> dg(g);
    da.poison(kNaN16);
    db.poison(kNaN16);
    cuda::split_channels(c.pixels, c.ca, c.cb, dg.get(), da.get(), db.get(), stream());
    std::vector<bf16> ref_a(std::max<int64_t>(na, 1)), ref_b(std::max<int64_t>(nb, 1));
    cpu::split_channels(c.pixels, c.ca, c.cb, g.data(), ref_a.data(), ref_b.data());
    EXPECT_TRUE(bits_equal(da.to_host().data(), ref_a.data(), na)) << "split a";
    EXPECT_TRUE(bits_equal(db.to_host().data(), ref_b.data(), nb)) << "split b";
  }
}

TEST(CudaBf16Bce, MatchesCpuAndIsDeterministic) {
  SEIS_NEED_GPU();
  const std::vector<int64_t> sizes = {1, 5, 256, 1000, 4099, 1 << 20, 10'000'019};
  uint64_t seed = 1400;
  for (int64_t n : sizes) {
    for (float pw : {1.0f, 3.7f}) {
      SCOPED_TRACE("n = " + std::to_string(n) + " pos_weight " + std::to_string(pw));
      const std::vector<bf16> x = random_bf16(n, ++seed, -8.0f, 8.0f);
      const std::vector<uint8_t> t = random_labels(n, ++seed, 0.3);
      DeviceArray<bf16> dx(x);
      DeviceArray<float> dloss(1);
      DeviceArray<uint8_t> dt(t);
      dloss.poison(kNaN);
      cuda::bce_with_logits_forward(n, dx.get(), dt.get(), pw, dloss.get(), stream());
      const float got = dloss.to_host()[0];
      float ref = kNaN;
      cpu::bce_with_logits_forward(n, x.data(), t.data(), pw, &ref);
      EXPECT_NEAR(got, ref, 1e-5 * std::fabs(ref) + 1e-7) << "loss";
      dloss.poison(kNaN);
      cuda::bce_with_logits_forward(n, dx.get(), dt.get(), pw, dloss.get(), stream());
      const float again = dloss.to_host()[0];
      EXPECT_EQ(std::memcmp(&got, &again, sizeof(float)), 0) << "two runs differ: " << got << " vs " << again;

      const float grad_scale = 1.0f / static_cast<float>(2 * n);

      const DeviceArray<float> dscale(std::vector<float>{grad_scale});  // dloss / n_total, on the device
      DeviceArray<bf16> dgrad(n);
      dgrad.poison(kNaN16);
      cuda::bce_with_logits_backward(n, dx.get(), dt.get(), pw, dscale.get(), dgrad.get(), stream());
      std::vector<bf16> ref_grad(n);
      cpu::bce_with_logits_backward(n, x.data(), t.data(), pw, &grad_scale, ref_grad.data());
      // The fp32 tolerance, plus one bf16 ulp: fp32 values a few ulp apart may round to neighbours.
      EXPECT_TRUE(all_close(widen(dgrad.to_host().data(), n).data(), widen(ref_grad.data(), n).data(), n,
                            4e-7 * pw * grad_scale, 1e-5 + kBf16Ulp, 1e-8))
          << "dlogits";
    }
  }
  DeviceArray<float> dloss(1);
  dloss.poison(kNaN);
  cuda::bce_with_logits_forward(0, static_cast<const bf16*>(nullptr), nullptr, 1.0f, dloss.get(), stream());
  EXPECT_EQ(dloss.to_host()[0], 0.0f) << "the mean of nothing";
}

TEST(CudaBf16Metrics, MatchesCpu) {
  SEIS_NEED_GPU();
  const std::vector<int64_t> sizes = {1, 7, 256, 257, 4099, 1 << 20, 10'000'019};
  uint64_t seed = 1500;
  for (int64_t n : sizes) {
    // 0 and 0.5 are bf16 values; log(7/3) is not (logits land on both sides of it).
    for (float thr : {0.0f, 0.5f, std::log(0.7f / 0.3f)}) {
      SCOPED_TRACE("n = " + std::to_string(n) + " threshold " + std::to_string(thr));
      std::vector<bf16> x = random_bf16(n, ++seed, -3.0f, 3.0f);
      for (int64_t i = 0; i < n; i += 5) x[i] = seis::to_bf16(thr);  // at (or next to) the threshold
      const std::vector<uint8_t> t = random_labels(n, ++seed, 0.2);
      DeviceArray<bf16> dx(x);
      DeviceArray<uint8_t> dt(t);
      DeviceArray<int64_t> dcounts(3);
      dcounts.poison(-1);
      cuda::confusion_counts(n, dx.get(), dt.get(), thr, dcounts.get(), stream());
      int64_t ref[3] = {-1, -1, -1};
      cpu::confusion_counts(n, x.data(), t.data(), thr, ref);
      const std::vector<int64_t> got = dcounts.to_host();
      EXPECT_EQ(got[0], ref[0]) << "TP";
      EXPECT_EQ(got[1], ref[1]) << "FP";
      EXPECT_EQ(got[2], ref[2]) << "FN";
    }
  }
  DeviceArray<int64_t> dcounts(3);
  dcounts.poison(-1);
  cuda::confusion_counts(0, static_cast<const bf16*>(nullptr), nullptr, 0.0f, dcounts.get(), stream());
  EXPECT_EQ(dcounts.to_host(), std::vector<int64_t>({0, 0, 0}));
}

// ---- BCE and metrics masked by padding traces (f32 and bf16) -----------------------------------

// The masked kernels against their CPU twins on odd [N, H, W] shapes with random trace_valid [N, W]
// (one gather of padding only): loss within the fp32 tolerance and deterministic, gradients close
// and exactly 0 on padding, counts equal.
template <class T>
void check_masked_bce_and_metrics(uint64_t seed) {
  struct Shape3 {
    int64_t n, h, w;
  };
  const std::vector<Shape3> shapes = {{1, 1, 1}, {2, 3, 5}, {3, 257, 129}, {5, 1031, 997}};
  for (const Shape3& sh : shapes) {
    const int64_t n = sh.n * sh.h * sh.w;
    for (float pw : {1.0f, 3.7f}) {
      SCOPED_TRACE("[" + std::to_string(sh.n) + ", " + std::to_string(sh.h) + ", " + std::to_string(sh.w) +
                   "] pos_weight " + std::to_string(pw));
      const std::vector<float> xf = random_vector(n, ++seed, -8.0f, 8.0f);
      std::vector<T> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<T, bf16>) {
          x[i] = seis::to_bf16(xf[i]);
        } else {
          x[i] = xf[i];
        }
      }
      const std::vector<uint8_t> t = random_labels(n, ++seed, 0.3);
      std::vector<uint8_t> valid = random_labels(sh.n * sh.w, ++seed, 0.7);
      valid[0] = 1;                                                                         // at least one real trace
      if (sh.n > 2) std::fill(valid.begin() + sh.w, valid.begin() + 2 * sh.w, uint8_t{0});  // gather 1: padding only
      int64_t real = 0;
      for (uint8_t v : valid) real += v;
      real *= sh.h;
      DeviceArray<T> dx(x);
      DeviceArray<float> dloss(1);
      DeviceArray<uint8_t> dt(t), dv(valid);
      dloss.poison(kNaN);
      cuda::bce_with_logits_masked_forward(n, dx.get(), dt.get(), dv.get(), sh.h, sh.w, pw, real, dloss.get(),
                                           stream());
      const float got = dloss.to_host()[0];
      float ref = kNaN;
      cpu::bce_with_logits_masked_forward(n, x.data(), t.data(), valid.data(), sh.h, sh.w, pw, real, &ref);
      EXPECT_NEAR(got, ref, 1e-5 * std::fabs(ref) + 1e-7) << "loss";
      dloss.poison(kNaN);
      cuda::bce_with_logits_masked_forward(n, dx.get(), dt.get(), dv.get(), sh.h, sh.w, pw, real, dloss.get(),
                                           stream());
      const float again = dloss.to_host()[0];
      EXPECT_EQ(std::memcmp(&got, &again, sizeof(float)), 0) << "two runs differ: " << got << " vs " << again;

      const float grad_scale = 1.0f / static_cast<float>(2 * real);

      const DeviceArray<float> dscale(std::vector<float>{grad_scale});  // dloss / n_total, on the device
      DeviceArray<T> dgrad(n);
      if constexpr (std::is_same_v<T, bf16>) {
        dgrad.poison(kNaN16);
      } else {
        dgrad.poison(kNaN);
      }
      cuda::bce_with_logits_masked_backward(n, dx.get(), dt.get(), dv.get(), sh.h, sh.w, pw, dscale.get(), dgrad.get(),
                                            stream());
      std::vector<T> ref_grad(static_cast<size_t>(n));
      cpu::bce_with_logits_masked_backward(n, x.data(), t.data(), valid.data(), sh.h, sh.w, pw, &grad_scale,
                                           ref_grad.data());
      const std::vector<T> g = dgrad.to_host();
      std::vector<float> gf(static_cast<size_t>(n)), rf(static_cast<size_t>(n));
      int64_t nonzero_padding = 0;
      for (int64_t i = 0; i < n; ++i) {
        gf[i] = to_float(g[i]);
        rf[i] = to_float(ref_grad[i]);
        if (valid[static_cast<size_t>(i / (sh.h * sh.w) * sh.w + i % sh.w)] == 0 && gf[i] != 0.0f) ++nonzero_padding;
      }
      EXPECT_EQ(nonzero_padding, 0) << "padding elements with a gradient";
      const double rtol = std::is_same_v<T, bf16> ? 1e-5 + kBf16Ulp : 1e-5;
      EXPECT_TRUE(all_close(gf.data(), rf.data(), n, 4e-7 * pw * grad_scale, rtol, 1e-8)) << "dlogits";

      for (float thr : {0.0f, std::log(0.7f / 0.3f)}) {
        DeviceArray<int64_t> dcounts(3);
        dcounts.poison(-1);
        cuda::confusion_counts_masked(n, dx.get(), dt.get(), dv.get(), sh.h, sh.w, thr, dcounts.get(), stream());
        int64_t want[3] = {-1, -1, -1};
        cpu::confusion_counts_masked(n, x.data(), t.data(), valid.data(), sh.h, sh.w, thr, want);
        const std::vector<int64_t> counts = dcounts.to_host();
        EXPECT_EQ(counts[0], want[0]) << "TP at " << thr;
        EXPECT_EQ(counts[1], want[1]) << "FP at " << thr;
        EXPECT_EQ(counts[2], want[2]) << "FN at " << thr;
      }
    }
  }
}

TEST(CudaBceMasked, MatchesCpuF32) {
  SEIS_NEED_GPU();
  check_masked_bce_and_metrics<float>(2100);
}

TEST(CudaBceMasked, MatchesCpuBf16) {
  SEIS_NEED_GPU();
  check_masked_bce_and_metrics<bf16>(2200);
}

// ---- Optimizers ---------------------------------------------------------------------------------

TEST(CudaOptimizer, SgdMatchesCpu) {
  SEIS_NEED_GPU();
  const std::vector<SgdParams> configs = {
      {0.1f, 0.0f, 0.0f, true}, {0.05f, 0.9f, 0.0f, true}, {0.01f, 0.9f, 1e-2f, true}};
  for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{1} << 20}) {
    for (const SgdParams& cfg : configs) {
      SCOPED_TRACE("n = " + std::to_string(n) + " momentum " + std::to_string(cfg.momentum) + " wd " +
                   std::to_string(cfg.weight_decay));
      std::vector<float> p = random_vector(n, 600 + n), buf(n, kNaN);  // the first step must not read buf
      DeviceArray<float> dp(p), dbuf(buf);
      SgdParams s = cfg;
      for (int step = 0; step < 3; ++step) {
        s.first_step = step == 0;
        const std::vector<float> g = random_vector(n, 700 + step);
        DeviceArray<float> dg(g);
        cuda::sgd_update(n, s, dp.get(), dg.get(), dbuf.get(), stream());
        cpu::sgd_update(n, s, p.data(), g.data(), buf.data());
      }
      EXPECT_TRUE(all_close(dp.to_host().data(), p.data(), n, 1e-6, 1e-5, 1e-10)) << "param";
      if (cfg.momentum != 0.0f) {
        EXPECT_TRUE(all_close(dbuf.to_host().data(), buf.data(), n, 1e-6, 1e-5, 1e-10)) << "momentum buffer";
      }
    }
  }
}

TEST(CudaOptimizer, AdamAndAdamWMatchCpu) {
  SEIS_NEED_GPU();
  for (int64_t n : {int64_t{1}, int64_t{1001}, int64_t{1} << 20}) {
    for (bool decoupled : {false, true}) {
      for (float wd : {0.0f, 0.05f}) {
        SCOPED_TRACE("n = " + std::to_string(n) + (decoupled ? " AdamW" : " Adam") + " wd " + std::to_string(wd));
        AdamParams a;
        a.lr = 1e-2f;
        a.weight_decay = wd;
        a.decoupled = decoupled;
        std::vector<float> p = random_vector(n, 800 + n), m(n, 0.0f), v(n, 0.0f);
        DeviceArray<float> dp(p), dm(m), dv(v);
        for (int64_t step = 1; step <= 4; ++step) {
          a.step = step;
          const std::vector<float> g = random_vector(n, 900 + step);
          DeviceArray<float> dg(g);
          cuda::adam_update(n, a, dp.get(), dg.get(), dm.get(), dv.get(), stream());
          cpu::adam_update(n, a, p.data(), g.data(), m.data(), v.data());
        }
        // fp32 with different FMA contraction: a few ulp of the update size.
        EXPECT_TRUE(all_close(dp.to_host().data(), p.data(), n, 1e-6, 1e-5, 1e-10)) << "param";
        EXPECT_TRUE(all_close(dm.to_host().data(), m.data(), n, 1e-7, 1e-5, 1e-10)) << "m";
        EXPECT_TRUE(all_close(dv.to_host().data(), v.data(), n, 1e-8, 1e-5, 1e-10)) << "v";
      }
    }
  }
}

// ---- Beyond 2^31 elements -----------------------------------------------------------------------

constexpr int64_t kTwo31 = int64_t{1} << 31;

// Uninitialised host array (std::vector would spend seconds zeroing gigabytes).
template <class T>
std::unique_ptr<T[]> host_array(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(n)]);
}

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [lo, hi), a pure function of (seed, i): fast to fill in parallel.
void fill_random(float* p, int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(splitmix64(seed * 0x100000001B3ull + static_cast<uint64_t>(i)) >> 11) *
                     (1.0 / 9007199254740992.0);
    p[i] = lo + static_cast<float>(u) * (hi - lo);
  }
}

// all_close over gigabytes: a parallel first pass, and the detailed report on a window around the
// first mismatch (and on the last elements, past 2^31).
::testing::AssertionResult big_all_close(const float* got, const float* ref, int64_t n, double atol, double rtol) {
  int64_t bad = 0, first = n;
#pragma omp parallel for schedule(static) reduction(+ : bad) reduction(min : first)
  for (int64_t i = 0; i < n; ++i) {
    const double g = got[i], r = ref[i];
    if (!(std::isfinite(g) && std::fabs(g - r) <= atol + rtol * std::fabs(r))) {
      ++bad;
      first = std::min(first, i);
    }
  }
  const int64_t tail = std::min<int64_t>(n, 4096);
  ::testing::AssertionResult last = all_close(got + n - tail, ref + n - tail, tail, atol, rtol, 1e-6);
  if (bad == 0 && last) return ::testing::AssertionSuccess();
  const int64_t start = bad > 0 ? std::max<int64_t>(0, first - 8) : n - tail;
  const int64_t len = std::min<int64_t>(1000, n - start);
  return ::testing::AssertionFailure() << bad << " of " << n << " elements out of tolerance; first at [" << first
                                       << "]; window from [" << start
                                       << "]: " << all_close(got + start, ref + start, len, atol, rtol).message();
}

// Poisons a device array with NaN by the fill kernel (a host copy of gigabytes would dominate the
// run time) and checks the poison where it is cheap to look.
void poison_big(float* d, int64_t n) {
  cuda::fill(n, kNaN, d, stream());
  float edge[2] = {0, 0};
  cuda_copy_to_host(kDev, &edge[0], d, 4);
  cuda_copy_to_host(kDev, &edge[1], d + n - 1, 4);
  ASSERT_TRUE(std::isnan(edge[0]) && std::isnan(edge[1])) << "poison fill failed";
}

TEST(CudaBig, ReluBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  const int64_t n = kTwo31 + 17;
  auto x = host_array<float>(n + 1);
  fill_random(x.get(), n + 1, 1);
  auto got = host_array<float>(n + 1);
  auto ref = host_array<float>(n + 1);
  DeviceArray<float> dx(n + 1), dy(n + 1);
  dx.upload(x.get());
  // At an offset of one float: the scalar path, whose element index itself crosses 2^31.
  poison_big(dy.get(), n + 1);
  cuda::relu_forward(n, dx.get() + 1, dy.get() + 1, stream());
  dy.download(got.get());
  cpu::relu_forward(n, x.get() + 1, ref.get() + 1);
  EXPECT_TRUE(std::isnan(got[0])) << "wrote before the start";
  EXPECT_TRUE(big_all_close(got.get() + 1, ref.get() + 1, n, 0, 0)) << "relu_forward, scalar path";
  // Aligned: the float4 path and its tail.
  poison_big(dy.get(), n + 1);
  cuda::relu_forward(n, dx.get(), dy.get(), stream());
  dy.download(got.get());
  cpu::relu_forward(n, x.get(), ref.get());
  EXPECT_TRUE(big_all_close(got.get(), ref.get(), n, 0, 0)) << "relu_forward, float4 path";
  EXPECT_TRUE(std::isnan(got[n])) << "wrote past the end";
}

TEST(CudaBig, BceAndMetricsBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  const int64_t n = kTwo31 + 17;
  auto x = host_array<float>(n);
  fill_random(x.get(), n, 2, -6.0f, 6.0f);
  auto t = host_array<uint8_t>(n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) t[i] = (splitmix64(i ^ 0xABCDEFull) % 10) < 3 ? 1 : 0;
  DeviceArray<float> dx(n), dloss(1), dgrad(n);
  DeviceArray<uint8_t> dt(n);
  DeviceArray<int64_t> dcounts(3);
  dx.upload(x.get());
  dt.upload(t.get());
  dloss.poison(kNaN);
  dcounts.poison(-1);
  const float pw = 2.5f;
  cuda::bce_with_logits_forward(n, dx.get(), dt.get(), pw, dloss.get(), stream());
  cuda::confusion_counts(n, dx.get(), dt.get(), 0.25f, dcounts.get(), stream());
  float ref_loss = kNaN;
  cpu::bce_with_logits_forward(n, x.get(), t.get(), pw, &ref_loss);
  EXPECT_NEAR(dloss.to_host()[0], ref_loss, 1e-5 * std::fabs(ref_loss));
  int64_t ref_counts[3];
  cpu::confusion_counts(n, x.get(), t.get(), 0.25f, ref_counts);
  const std::vector<int64_t> counts = dcounts.to_host();
  EXPECT_EQ(counts[0], ref_counts[0]);
  EXPECT_EQ(counts[1], ref_counts[1]);
  EXPECT_EQ(counts[2], ref_counts[2]);
  EXPECT_EQ(counts[0] + counts[2], std::count(t.get(), t.get() + n, uint8_t{1})) << "TP + FN = positives";

  poison_big(dgrad.get(), n);
  const float grad_scale = 1.0f / static_cast<float>(n);
  const DeviceArray<float> dscale(std::vector<float>{grad_scale});  // dloss / n_total, on the device
  cuda::bce_with_logits_backward(n, dx.get(), dt.get(), pw, dscale.get(), dgrad.get(), stream());
  auto got = host_array<float>(n);
  auto ref = host_array<float>(n);
  dgrad.download(got.get());
  cpu::bce_with_logits_backward(n, x.get(), t.get(), pw, &grad_scale, ref.get());
  EXPECT_TRUE(big_all_close(got.get(), ref.get(), n, 4e-7 * pw * grad_scale, 1e-5)) << "dlogits";
}

TEST(CudaBig, MaxpoolBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  // 4097 x 4097 x 129: odd H and W, C not a multiple of 4 (the scalar path), 2.17e9 input elements.
  const Nhwc s{1, 4097, 4097, 129};
  ASSERT_GT(s.numel(), kTwo31);
  const int64_t outputs = s.n * (s.h / 2) * (s.w / 2) * s.c;
  auto x = host_array<float>(s.numel());
  fill_random(x.get(), s.numel(), 3);
  const int64_t arg_bytes = maxpool2d_argmax_bytes(s.n, s.h, s.w, s.c);
  DeviceArray<float> dx(s.numel()), dy(outputs);
  DeviceArray<uint8_t> darg(arg_bytes);
  dx.upload(x.get());
  poison_big(dy.get(), outputs);
  darg.poison(0xAB);
  cuda::maxpool2d_forward(s.n, s.h, s.w, s.c, dx.get(), dy.get(), darg.get(), stream());
  auto got_y = host_array<float>(outputs), ref_y = host_array<float>(outputs);
  auto got_arg = host_array<uint8_t>(arg_bytes), ref_arg = host_array<uint8_t>(arg_bytes);
  dy.download(got_y.get());
  darg.download(got_arg.get());
  cpu::maxpool2d_forward(s.n, s.h, s.w, s.c, x.get(), ref_y.get(), ref_arg.get());
  EXPECT_TRUE(big_all_close(got_y.get(), ref_y.get(), outputs, 0, 0)) << "maxpool forward";
  EXPECT_EQ(std::memcmp(got_arg.get(), ref_arg.get(), static_cast<size_t>(arg_bytes)), 0) << "argmax";

  // Backward with dy = the forward's output (already on the device): dx reuses x's device memory.
  poison_big(dx.get(), s.numel());
  cuda::maxpool2d_backward(s.n, s.h, s.w, s.c, dy.get(), darg.get(), dx.get(), false, stream());
  auto got_dx = host_array<float>(s.numel());
  dx.download(got_dx.get());
  cpu::maxpool2d_backward(s.n, s.h, s.w, s.c, ref_y.get(), ref_arg.get(), x.get(), false);  // x: the reference dx
  EXPECT_TRUE(big_all_close(got_dx.get(), x.get(), s.numel(), 0, 0)) << "maxpool backward";
}

TEST(CudaBig, UpsampleBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  // Output 1 x 26762 x 26762 x 3 = 2.15e9 elements, C = 3 (the scalar path).
  const Nhwc s{1, 13381, 13381, 3};
  const int64_t out = 4 * s.numel();
  ASSERT_GT(out, kTwo31);
  auto x = host_array<float>(s.numel());
  fill_random(x.get(), s.numel(), 4);
  DeviceArray<float> dx(s.numel()), dy(out);
  dx.upload(x.get());
  poison_big(dy.get(), out);
  cuda::upsample2x_forward(s.n, s.h, s.w, s.c, dx.get(), dy.get(), stream());
  auto got = host_array<float>(out), ref = host_array<float>(out);
  dy.download(got.get());
  cpu::upsample2x_forward(s.n, s.h, s.w, s.c, x.get(), ref.get());
  EXPECT_TRUE(big_all_close(got.get(), ref.get(), out, 0, 0)) << "upsample forward";

  // Backward with dy = the forward's output: every dx is 4 x (the input).
  poison_big(dx.get(), s.numel());
  cuda::upsample2x_backward(s.n, s.h, s.w, s.c, dy.get(), dx.get(), stream());
  auto got_dx = host_array<float>(s.numel());
  dx.download(got_dx.get());
  cpu::upsample2x_backward(s.n, s.h, s.w, s.c, ref.get(), x.get());  // x becomes the reference dx
  EXPECT_TRUE(big_all_close(got_dx.get(), x.get(), s.numel(), 0, 0)) << "upsample backward";
}

TEST(CudaBig, ConcatBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  // 270M pixels x (5 + 3) channels = 2.16e9 elements; Ca = 5 takes the scalar path.
  const int64_t pixels = 270'000'000, ca = 5, cb = 3, ny = pixels * (ca + cb);
  ASSERT_GT(ny, kTwo31);
  auto a = host_array<float>(pixels * ca), b = host_array<float>(pixels * cb);
  fill_random(a.get(), pixels * ca, 5);
  fill_random(b.get(), pixels * cb, 6);
  auto got = host_array<float>(ny), ref = host_array<float>(ny);
  cpu::concat_channels(pixels, ca, cb, a.get(), b.get(), ref.get());
  {
    DeviceArray<float> da(pixels * ca), db(pixels * cb), dy(ny);
    da.upload(a.get());
    db.upload(b.get());
    poison_big(dy.get(), ny);
    cuda::concat_channels(pixels, ca, cb, da.get(), db.get(), dy.get(), stream());
    dy.download(got.get());
    EXPECT_TRUE(big_all_close(got.get(), ref.get(), ny, 0, 0)) << "concat";

    // Split the concatenation back: it must give a and b again.
    poison_big(da.get(), pixels * ca);
    poison_big(db.get(), pixels * cb);
    cuda::split_channels(pixels, ca, cb, dy.get(), da.get(), db.get(), stream());
    da.download(got.get());
    db.download(got.get() + pixels * ca);
  }
  EXPECT_TRUE(big_all_close(got.get(), a.get(), pixels * ca, 0, 0)) << "split a";
  EXPECT_TRUE(big_all_close(got.get() + pixels * ca, b.get(), pixels * cb, 0, 0)) << "split b";
}

// bf16 past 2^31 elements: the int64 indices of the templated map kernels (relu_forward), both paths.
TEST(CudaBig, Bf16ReluBeyond2To31) {
  SEIS_NEED_GPU();
  cuda_release_cached_memory(kDev);  // keep device memory within ~20 GiB
  const int64_t n = kTwo31 + 17;     // n + 1 is even: poisoned as floats below
  auto x = host_array<bf16>(n + 1);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n + 1; ++i) {
    const double u = static_cast<double>(splitmix64(0xB16ull * 0x100000001B3ull + static_cast<uint64_t>(i)) >> 11) *
                     (1.0 / 9007199254740992.0);
    x[i] = seis::to_bf16(static_cast<float>(2.0 * u - 1.0));
  }
  auto got = host_array<bf16>(n + 1);
  auto ref = host_array<bf16>(n + 1);
  DeviceArray<bf16> dx(n + 1), dy(n + 1);
  dx.upload(x.get());
  // Two bf16 NaNs per float: the fill kernel poisons the bf16 array.
  uint32_t nan2_bits = 0x7fc07fc0u;
  float nan2;
  std::memcpy(&nan2, &nan2_bits, 4);
  // Bitwise equality of the first n elements, in parallel; then got[0..] checked at the edges.
  auto big_bits_equal = [](const bf16* a, const bf16* b, int64_t len) {
    int64_t bad = 0, first = len;
#pragma omp parallel for schedule(static) reduction(+ : bad) reduction(min : first)
    for (int64_t i = 0; i < len; ++i) {
      if (a[i].bits != b[i].bits) {
        ++bad;
        first = std::min(first, i);
      }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " of " << len << " elements differ; first at [" << first << "]: got "
                                         << to_float(a[first]) << " want " << to_float(b[first]);
  };
  for (int64_t off : {1, 0}) {  // the scalar path (an index past 2^31 itself), then the bf16x4 path and its tail
    SCOPED_TRACE(off ? "scalar path" : "vector path");
    cuda::fill((n + 1) / 2, nan2, reinterpret_cast<float*>(dy.get()), stream());
    cuda::relu_forward(n, dx.get() + off, dy.get() + off, stream());
    dy.download(got.get());
    cpu::relu_forward(n, x.get() + off, ref.get() + off);
    EXPECT_TRUE(big_bits_equal(got.get() + off, ref.get() + off, n)) << "relu_forward bf16";
    EXPECT_EQ(got[off ? 0 : n].bits, kNaN16.bits) << "wrote outside [off, off + n)";
  }
}

}  // namespace
}  // namespace seis
