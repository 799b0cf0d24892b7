// Training end to end on the CPU: gradients of the whole UNet against finite differences, loss
// falls, validation beats the trivial masks, and two runs with one seed give identical weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "apps/reader_batch_source.h"
#include "apps/trainer.h"
#include "engine/ops.h"
#include "io/sample_order.h"
#include "sync_batch_source.h"
#include "synth_source.h"
#include "test_util.h"

namespace seis {
namespace {

SynthConfig small_synth(int64_t size) {
  SynthConfig sc;
  sc.height = size;
  sc.width = size;
  sc.seed = 5;
  sc.snr_db_lo = 5;
  sc.snr_db_hi = 15;
  sc.events_min = 1;
  return sc;
}

// The tape's gradient of the mean BCE of a small UNet, against central differences of the loss.
TEST(Train, UNetGradientsMatchFiniteDifferences) {
  UNetConfig cfg;
  cfg.levels = 2;
  cfg.base = 2;
  UNet m(cfg, 3, Device::cpu());
  Tensor x = Tensor::from_vector({2, 6, 4, 1}, test::random_vector(48, 1));
  Tensor y = Tensor::zeros({2, 6, 4}, DType::u8);
  for (int64_t i = 0; i < y.numel(); i += 3) y.data<uint8_t>()[i] = 1;
  auto loss_of = [&]() {
    return static_cast<double>(scalar_value(bce_with_logits(nullptr, m.forward(nullptr, make_var(x)), y, 2.0f)->value));
  };
  Tape tape;
  Var loss = bce_with_logits(&tape, m.forward(&tape, make_var(x)), y, 2.0f);
  tape.backward(loss);
  int checked = 0;
  for (const auto& p : m.params()) {
    ASSERT_TRUE(p.var->grad.defined()) << p.name;
    float* w = p.var->value.data<float>();
    const float* g = p.var->grad.data<float>();
    // A few entries per parameter; eps large enough for float, small enough to stay off ReLU kinks mostly.
    for (int64_t i = 0; i < p.var->value.numel(); i += std::max<int64_t>(1, p.var->value.numel() / 3)) {
      const float keep = w[i];
      const float eps = 1e-2f;
      w[i] = keep + eps;
      const double lp = loss_of();
      w[i] = keep - eps;
      const double lm = loss_of();
      w[i] = keep;
      const double fd = (lp - lm) / (2.0 * eps);
      EXPECT_NEAR(g[i], fd, 2e-3 + 0.05 * std::fabs(fd)) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

TEST(Train, LossFallsAndValidationBeatsTrivialMasks) {
  const SynthConfig sc = small_synth(64);
  SynthSource train_src(sc, 0, 512), val_src(sc, 1 << 20, 32);
  UNetConfig mc;
  mc.levels = 3;
  mc.base = 8;
  OptimizerConfig oc;
  oc.lr = 3e-3f;
  TrainOptions opt;
  opt.batch = 4;
  opt.steps = 200;
  opt.lr.lr = oc.lr;
  opt.log_every = 50;
  UNet m(mc, 2, Device::cpu());
  Optimizer optimizer(oc, m.param_vars());
  SyncBatchSource batches(train_src, opt.batch, 2, opt.normalize, Device::cpu());
  const TrainResult r = train(m, optimizer, batches, &val_src, opt, TrainProgress{});
  ASSERT_EQ(r.losses.size(), 200u);
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) {
    first += r.losses[i];
    last += r.losses[180 + i];
  }
  EXPECT_LT(last, 0.6 * first) << "mean loss of the first 20 steps " << first / 20 << ", last 20 " << last / 20;
  const double all_one_iou = static_cast<double>(r.val.tp + r.val.fn) / static_cast<double>(r.val.pixels);
  // The all-zero mask has IoU 0; the all-one mask has IoU = positive fraction.
  EXPECT_GT(r.val.iou(), all_one_iou + 0.2) << "IoU " << r.val.iou() << ", all-one mask " << all_one_iou;
  EXPECT_GT(r.val.iou(), 0.3);
}

std::vector<std::vector<float>> run_steps(uint64_t seed, int64_t steps, OptimizerKind kind, bool cuda_graph = false) {
  const SynthConfig sc = small_synth(32);
  SynthSource src(sc, 0, 16);
  UNetConfig mc;
  mc.levels = 3;
  mc.base = 4;
  OptimizerConfig oc;
  oc.kind = kind;
  oc.lr = kind == OptimizerKind::sgd ? 0.05f : 1e-3f;
  oc.weight_decay = kind == OptimizerKind::adamw ? 0.01f : 0.0f;
  TrainOptions opt;
  opt.batch = 3;
  opt.steps = steps;
  opt.lr.lr = oc.lr;
  opt.cuda_graph = cuda_graph;
  UNet m(mc, seed, Device::cpu());
  Optimizer optimizer(oc, m.param_vars());
  SyncBatchSource batches(src, opt.batch, seed, opt.normalize, Device::cpu());
  const TrainResult r = train(m, optimizer, batches, nullptr, opt, TrainProgress{});
  EXPECT_EQ(r.graph_steps, 0) << "a CUDA graph on the CPU";
  std::vector<std::vector<float>> w;
  for (const auto& p : m.params()) w.push_back(p.var->value.to_vector());
  return w;
}

TEST(Train, SameSeedGivesBitIdenticalWeights) {
  for (OptimizerKind k : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    const auto a = run_steps(9, 7, k), b = run_steps(9, 7, k), c = run_steps(10, 7, k);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].size(), b[i].size());
      EXPECT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)))
          << optimizer_name(k) << " parameter " << i << " differs between two runs with one seed";
    }
    EXPECT_NE(a, c) << "a different seed must give different weights";
  }
}

// A bf16 run's batches from the reader in bf16 (as seisseg train asks them on a GPU with bf16
// activations: batch_dtype) train to the bits of f32 batches cast by the model: the reader rounds
// as the cast does. The CPU stands in for the GPU here (its bf16 path is the GPU's oracle).
TEST(Train, Bf16BatchesFromTheReaderGiveTheBitsOfF32Batches) {
  const SynthConfig sc = small_synth(32);
  SynthSource src(sc, 0, 16);
  auto run = [&](DType reader_dtype) {
    UNetConfig mc;
    mc.levels = 3;
    mc.base = 4;
    OptimizerConfig oc;
    oc.lr = 1e-3f;
    TrainOptions opt;
    opt.batch = 4;
    opt.steps = 5;
    opt.lr.lr = oc.lr;
    opt.exec.math = ConvMath::bf16;
    UNet m(mc, 3, Device::cpu());
    Optimizer optimizer(oc, m.param_vars());
    SampleReaderOptions ro;
    ro.batch = opt.batch;
    ro.seed = 3;
    ro.normalize = opt.normalize;
    ro.augment.flip_receivers = true;
    ro.augment.max_shift = 4;
    ro.dtype = reader_dtype;
    ReaderBatchSource batches(src, ro);
    const TrainResult r = train(m, optimizer, batches, nullptr, opt, TrainProgress{});
    std::vector<std::vector<float>> w;
    for (const auto& p : m.params()) w.push_back(p.var->value.to_vector());
    return std::make_pair(r.losses, w);
  };
  const auto f32 = run(DType::f32), b16 = run(DType::bf16);
  EXPECT_EQ(b16.first, f32.first);
  ASSERT_EQ(b16.second.size(), f32.second.size());
  for (size_t i = 0; i < f32.second.size(); ++i) EXPECT_EQ(b16.second[i], f32.second[i]) << "parameter " << i;
}

// TrainOptions::cuda_graph (SEIS_CUDA_GRAPH=1) on the CPU: said once, and the eager step's bits.
TEST(Train, CudaGraphOptionOnTheCpuTrainsWithoutAGraph) {
  ::testing::internal::CaptureStderr();
  const auto a = run_steps(9, 4, OptimizerKind::adam, true);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("without a CUDA graph"), std::string::npos) << err;
  EXPECT_EQ(a, run_steps(9, 4, OptimizerKind::adam));
}

// The two halves of an update that a captured step uses: begin_step counts the step and gives the
// scalars step(lr) computes with; step_from needs parameters on a GPU.
TEST(Train, OptimizerBeginStepGivesTheScalarsOfThatStep) {
  UNetConfig mc;
  mc.levels = 2;
  mc.base = 2;
  UNet m(mc, 1, Device::cpu());
  OptimizerConfig oc;
  Optimizer adam(oc, m.param_vars());
  adam.set_steps_taken(4);
  const UpdateScalars s = adam.begin_step(3e-4f);
  EXPECT_EQ(adam.steps_taken(), 5);
  AdamParams ap;
  ap.lr = 3e-4f;
  ap.step = 5;
  const UpdateScalars want = adam_scalars(ap);
  EXPECT_EQ(s.lr, 3e-4f);
  EXPECT_EQ(s.step_size, want.step_size);
  EXPECT_EQ(s.bias_correction2_sqrt, want.bias_correction2_sqrt);
  EXPECT_FLOAT_EQ(s.step_size, static_cast<float>(3e-4 / (1 - std::pow(0.9, 5))));
  EXPECT_THROW(adam.step_from(&s), Error);
  oc.kind = OptimizerKind::sgd;
  Optimizer sgd(oc, m.param_vars());
  EXPECT_EQ(sgd.begin_step(0.1f).first_step, 1);
  EXPECT_EQ(sgd.begin_step(0.1f).first_step, 0);
}

TEST(Train, EpochPermutationIsSeededAndComplete) {
  const auto p = epoch_permutation(100, 4, 0), q = epoch_permutation(100, 4, 0), r = epoch_permutation(100, 4, 1);
  EXPECT_EQ(p, q);
  EXPECT_NE(p, r);
  std::vector<int> seen(100, 0);
  for (int64_t i : p) ++seen[static_cast<size_t>(i)];
  for (int s : seen) EXPECT_EQ(s, 1);
}

}  // namespace
}  // namespace seis
