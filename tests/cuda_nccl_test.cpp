// NcclComm with one rank and no launcher (no MPI at all): allreduce and broadcast results, and a
// bucketed training step on the GPU equal to the unbucketed one. Multi-GPU runs wait for a
// machine with several GPUs (tests/mpi_train_cli_test.cpp runs the CPU path with 2 and 4 ranks).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "engine/communicator.h"
#include "engine/grad_buckets.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "models/unet.h"
#include "test_util.h"

namespace seis {
namespace {

TEST(CudaNccl, OneRankAllreduceAndBroadcastWithoutALauncher) {
  SEIS_NEED_GPU();
  ASSERT_FALSE(detect_launch().launched) << "run this test without mpirun";
  std::unique_ptr<Communicator> c = make_communicator(Device::cuda(0), /*nccl_for_single=*/true);
  ASSERT_STREQ(c->backend(), "nccl");
  ASSERT_EQ(c->world(), 1);
  const std::vector<float> v = test::random_vector(100003, 5);
  Tensor a = Tensor::from_vector({100003}, v).to(Device::cuda(0));
  Tensor b = Tensor::from_vector({7}, std::vector<float>(v.begin(), v.begin() + 7)).to(Device::cuda(0));
  const int64_t ha = c->allreduce_sum_async(a.data<float>(), a.numel(), a.device());
  const int64_t hb = c->allreduce_sum_async(b.data<float>(), b.numel(), b.device());
  c->wait(hb);
  c->wait(ha);
  c->broadcast(b.data<float>(), b.numel(), b.device(), 0);
  const Tensor ah = a.to(Device::cpu()), bh = b.to(Device::cpu());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(ah.data<float>()[i], v[static_cast<size_t>(i)]) << i;
  for (int64_t i = 0; i < b.numel(); ++i) ASSERT_EQ(bh.data<float>()[i], v[static_cast<size_t>(i)]) << i;
  double d = 2.5;
  int64_t n = 3;
  c->allreduce_sum_host(&d, 1);
  c->allreduce_sum_host(&n, 1);
  EXPECT_EQ(d, 2.5);
  EXPECT_EQ(n, 3);
  c->barrier();
}

TEST(CudaNccl, BucketedStepEqualsTheUnbucketedStep) {
  SEIS_NEED_GPU();
  std::unique_ptr<Communicator> c = make_communicator(Device::cuda(0), /*nccl_for_single=*/true);
  const Device dev = Device::cuda(0);
  UNetConfig cfg;
  cfg.levels = 3;
  cfg.base = 4;
  const int64_t n = 2, h = 32, w = 32;
  const Tensor x = Tensor::from_vector({n, h, w, 1}, test::random_vector(n * h * w, 11)).to(dev);
  Tensor yh = Tensor::empty({n, h, w}, DType::u8);
  const std::vector<float> u = test::random_vector(n * h * w, 12, 0.0f, 1.0f);
  for (int64_t i = 0; i < n * h * w; ++i) yh.data<uint8_t>()[i] = u[static_cast<size_t>(i)] > 0.7f ? 1 : 0;
  const Tensor y = yh.to(dev);
  auto step = [&](bool bucketed) {
    UNet m(cfg, 3, dev);
    Optimizer opt(OptimizerConfig{}, m.param_vars());
    std::unique_ptr<GradBucketer> buckets;
    if (bucketed) buckets = std::make_unique<GradBucketer>(*c, m.param_vars(), 4096);  // several buckets
    for (int s = 0; s < 2; ++s) {
      Tape tape;
      Var loss = bce_with_logits(&tape, m.forward(&tape, make_var(x)), y, 1.0f);
      tape.backward(loss);
      if (buckets) {
        buckets->finish();
        EXPECT_EQ(buckets->started_in_backward(), buckets->num_buckets());
      }
      opt.step(1e-3f);
    }
    std::vector<std::vector<float>> out;
    for (const Var& p : m.param_vars()) {
      const Tensor t = p->value.to(Device::cpu());
      out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
    }
    return out;
  };
  const auto plain = step(false), bucketed = step(true);
  ASSERT_EQ(plain.size(), bucketed.size());
  for (size_t k = 0; k < plain.size(); ++k) {
    // A one-rank sum is a copy: equal (bit-identical but for atomics in the GPU kernels).
    EXPECT_TRUE(
        test::all_close(bucketed[k].data(), plain[k].data(), static_cast<int64_t>(plain[k].size()), 0, 1e-6, 1e-12))
        << "parameter " << k;
  }
}

}  // namespace
}  // namespace seis
