// The communicator and the gradient buckets across ranks. Registered to run under mpirun with 2
// and with 4 ranks (tests/CMakeLists.txt); alone it runs as one rank (SingleComm).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/communicator.h"
#include "engine/error.h"
#include "engine/grad_buckets.h"
#include "engine/ops.h"
#include "io/sample_reader.h"
#include "io/sample_set.h"
#include "models/unet.h"
#include "test_util.h"

namespace seis {
namespace {

Communicator& comm() {
  static std::unique_ptr<Communicator> c = make_communicator(Device::cpu());
  return *c;
}

TEST(MpiComm, WorldMatchesTheLauncher) {
  const LaunchInfo li = detect_launch();
  EXPECT_EQ(comm().world(), li.world);
  EXPECT_EQ(comm().rank(), li.rank);
  EXPECT_EQ(std::string(comm().backend()), li.launched ? "mpi" : "single");
}

TEST(MpiComm, AsyncAllreducesBroadcastAndHostSums) {
  Communicator& c = comm();
  const int w = c.world(), r = c.rank();
  // Several reductions in flight at once, waited for in reverse order; sizes 0, odd and large.
  const std::vector<int64_t> sizes = {0, 1, 7, 1000, 300001};
  std::vector<std::vector<float>> bufs;
  for (int64_t n : sizes) {
    std::vector<float> b(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) b[static_cast<size_t>(i)] = static_cast<float>(r + 1) + 0.5f * (i % 5);
    bufs.push_back(std::move(b));
  }
  std::vector<int64_t> handles;
  for (auto& b : bufs)
    handles.push_back(c.allreduce_sum_async(b.data(), static_cast<int64_t>(b.size()), Device::cpu()));
  for (size_t k = handles.size(); k-- > 0;) c.wait(handles[k]);
  for (size_t k = 0; k < bufs.size(); ++k) {
    for (int64_t i = 0; i < sizes[k]; ++i) {
      const float want = static_cast<float>(w * (w + 1) / 2) + 0.5f * static_cast<float>(w) * (i % 5);
      ASSERT_EQ(bufs[k][static_cast<size_t>(i)], want) << "buffer " << k << " element " << i;
    }
  }
  std::vector<float> bc(33, static_cast<float>(r));
  c.broadcast(bc.data(), 33, Device::cpu(), w - 1);
  for (float v : bc) ASSERT_EQ(v, static_cast<float>(w - 1));
  int64_t counts[2] = {r, 1};
  c.allreduce_sum_host(counts, 2);
  EXPECT_EQ(counts[0], int64_t{w} * (w - 1) / 2);
  EXPECT_EQ(counts[1], w);
  double d = 0.25 * r;
  c.allreduce_sum_host(&d, 1);
  EXPECT_DOUBLE_EQ(d, 0.25 * w * (w - 1) / 2);
  c.barrier();
}

// Rank q's batch and labels: a pure function of q, so every rank can compute every rank's gradient.
void rank_batch(int q, Tensor* x, Tensor* y) {
  const int64_t n = 2, h = 8, w = 8;
  *x = Tensor::from_vector({n, h, w, 1}, test::random_vector(n * h * w, 100 + static_cast<uint64_t>(q)));
  *y = Tensor::empty({n, h, w}, DType::u8);
  const std::vector<float> u = test::random_vector(n * h * w, 200 + static_cast<uint64_t>(q), 0.0f, 1.0f);
  for (int64_t i = 0; i < n * h * w; ++i) y->data<uint8_t>()[i] = u[static_cast<size_t>(i)] > 0.7f ? 1 : 0;
}

TEST(MpiComm, BucketedGradientsEqualTheSumOfEveryRanksGradient) {
  Communicator& c = comm();
  const int w = c.world();
  UNetConfig cfg;
  cfg.levels = 3;
  cfg.base = 2;
  UNet m(cfg, 7, Device::cpu());
  const std::vector<Var> params = m.param_vars();
  // The reference: every rank's partial gradient (mean over the global batch), summed in rank order.
  std::vector<std::vector<float>> want(params.size());
  for (int q = 0; q < w; ++q) {
    Tensor x, y;
    rank_batch(q, &x, &y);
    Tape tape;
    Var loss = bce_with_logits(&tape, m.forward(&tape, make_var(x)), y, 1.5f, y.numel() * w);
    tape.backward(loss);
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor& g = params[k]->grad;
      if (q == 0)
        want[k].assign(g.data<float>(), g.data<float>() + g.numel());
      else
        for (int64_t i = 0; i < g.numel(); ++i) want[k][static_cast<size_t>(i)] += g.data<float>()[i];
      params[k]->grad = Tensor();
    }
  }
  // 1 KiB buckets: many buckets, each started during backward.
  GradBucketer buckets(c, params, 1024);
  ASSERT_GT(buckets.num_buckets(), 3);
  for (int step = 0; step < 2; ++step) {  // twice: the buckets reset between steps
    Tensor x, y;
    rank_batch(c.rank(), &x, &y);
    Tape tape;
    Var loss = bce_with_logits(&tape, m.forward(&tape, make_var(x)), y, 1.5f, y.numel() * w);
    tape.backward(loss);
    buckets.finish();
    EXPECT_EQ(buckets.started_in_backward(), buckets.num_buckets());
    for (size_t k = 0; k < params.size(); ++k) {
      const Tensor& g = params[k]->grad;
      ASSERT_TRUE(g.defined()) << m.params()[k].name;
      // Float sums of W partials in another order than the reference's: a few ulp.
      EXPECT_TRUE(test::all_close(g.data<float>(), want[k].data(), g.numel(), 1e-9, 1e-5, 1e-10))
          << m.params()[k].name << " step " << step;
      params[k]->grad = Tensor();
    }
  }
}

TEST(MpiComm, ASecondGradientForABucketedParameterIsAnError) {
  UNetConfig cfg;
  cfg.levels = 1;
  cfg.base = 2;
  UNet m(cfg, 1, Device::cpu());
  GradBucketer buckets(comm(), m.param_vars());
  VarImpl& p = *m.param_vars()[0];
  Tensor g = Tensor::zeros(p.value.shape());
  accumulate_grad(p, g.clone());
  EXPECT_THROW(accumulate_grad(p, g.clone()), Error);
  buckets.finish();
}

// Every sample of an epoch's global batches is read by exactly one rank, and the ranks' shares
// form the single-rank reader's global batches.
TEST(MpiComm, EachSampleIsSeenOncePerEpochAcrossRanks) {
  Communicator& c = comm();
  const int w = c.world(), r = c.rank();
  char dir[256] = {0};
  if (r == 0) {
    std::snprintf(dir, sizeof dir, "%s/seis_mpi_XXXXXX", ::testing::TempDir().c_str());
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string cmd = std::string(SEISSEG_BIN) + " synth --out " + dir +
                            "/s.h5 --samples 22 --height 16 --width 8 --seed 4 >/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  c.broadcast_host_bytes(dir, sizeof dir, 0);
  SampleSet set({std::string(dir) + "/s.h5"});
  const int64_t n = set.size(), B = 4, epochs = 2;
  const int64_t per_epoch = n / B;
  SampleReaderOptions o;
  o.batch = B;
  o.world = w;
  o.rank = r;
  o.seed = 9;
  o.threads = 1;
  SampleReader reader(set, o);
  std::vector<int64_t> seen(static_cast<size_t>(epochs * n), 0);
  std::vector<int64_t> order(static_cast<size_t>(epochs * per_epoch * B), 0);  // global position -> sample
  for (int64_t e = 0; e < epochs; ++e) {
    for (int64_t b = 0; b < per_epoch; ++b) {
      const HostBatch hb = reader.next_host();
      ASSERT_EQ(hb.epoch, e);
      ASSERT_EQ(hb.size, B / w);
      for (int64_t i = 0; i < hb.size; ++i) {
        ++seen[static_cast<size_t>(e * n + hb.samples[static_cast<size_t>(i)])];
        order[static_cast<size_t>((e * per_epoch + b) * B + r * (B / w) + i)] = hb.samples[static_cast<size_t>(i)] + 1;
      }
    }
  }
  c.allreduce_sum_host(seen.data(), static_cast<int64_t>(seen.size()));
  c.allreduce_sum_host(order.data(), static_cast<int64_t>(order.size()));
  for (int64_t e = 0; e < epochs; ++e) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_LE(seen[static_cast<size_t>(e * n + i)], 1) << "sample " << i << " epoch " << e;
      total += seen[static_cast<size_t>(e * n + i)];
    }
    EXPECT_EQ(total, per_epoch * B) << "epoch " << e;
  }
  // The union of the rank batches is the one-rank global batch, position by position.
  SampleReaderOptions one = o;
  one.world = 1;
  one.rank = 0;
  SampleReader single(set, one);
  for (int64_t k = 0; k < epochs * per_epoch; ++k) {
    const HostBatch hb = single.next_host();
    for (int64_t i = 0; i < B; ++i)
      ASSERT_EQ(order[static_cast<size_t>(k * B + i)] - 1, hb.samples[static_cast<size_t>(i)]) << "batch " << k;
  }
  c.barrier();
  if (r == 0) std::system(("rm -rf " + std::string(dir)).c_str());
}

}  // namespace
}  // namespace seis
