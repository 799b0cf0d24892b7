// The CUDA graph step's stages (apps/graph_step.h) on a shape-only GPU, which goes through the
// memory of recording, capturing and launching without a GPU: the first run records, the next
// captures and launches, later ones launch; a reset captures again from the same record; a batch
// of another shape records again; the allocator is left with no arena blocks and no mode on.
#include "apps/graph_step.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/error.h"
#include "engine/memory.h"
#include "engine/ops.h"

namespace seis {
namespace {

TEST(GraphStep, RecordsThenCapturesThenLaunchesOnAShapeOnlyGpu) {
  const Device d = Device::shape_only_of(Device::cuda(0));
  reset_shape_only(d);
  ASSERT_EQ(setenv("SEIS_CUDA_BF16_STORAGE", "1", 1), 0);  // bf16 activations on the GPU
  {
    UNetConfig mc;
    mc.levels = 3;
    mc.base = 4;
    UNet net(mc, 1, d);
    ExecConfig exec;
    exec.math = ConvMath::bf16;
    net.set_exec(exec);
    Optimizer opt(OptimizerConfig{}, net.param_vars());
    GraphStep g(net, opt, 1.0f);
    auto step = [&](int64_t batch, DType dtype) {
      Tensor data = Tensor::empty({batch, 64, 32, 1}, dtype, d);
      Tensor label = Tensor::empty({batch, 64, 32}, DType::u8, d);
      const GraphStep::Result r = g.run(&data, &label, 1e-3f);
      EXPECT_FALSE(data.defined()) << "the batch is released";
      EXPECT_FALSE(label.defined());
      EXPECT_TRUE(r.gave_up.empty()) << r.gave_up;
      return r.launched;
    };
    EXPECT_FALSE(step(2, DType::f32)) << "the first run records";
    ASSERT_NE(g.plan(), nullptr);
    const int64_t arena = g.plan()->bytes;
    EXPECT_GE(arena, g.plan()->live_peak);
    EXPECT_GT(g.plan()->live_peak, 0);
    EXPECT_TRUE(step(2, DType::f32)) << "the second captures and launches";
    const int64_t held = memory_in_use(d);
    EXPECT_TRUE(step(2, DType::f32));
    EXPECT_EQ(memory_in_use(d), held) << "a launch allocates nothing";
    g.reset();
    EXPECT_LE(memory_in_use(d), held - arena) << "a reset returns the arena";
    EXPECT_TRUE(step(2, DType::f32)) << "after a reset: a capture from the same record";
    EXPECT_EQ(g.plan()->bytes, arena);
    EXPECT_FALSE(step(3, DType::f32)) << "another batch size records again";
    EXPECT_TRUE(step(3, DType::f32));
    // Batches in the activation type (the reader's bf16 batches on a GPU): the same plan, as the
    // inputs are unchanged; batches of another type are refused.
    ASSERT_EQ(activation_dtype(exec, d), DType::bf16);
    EXPECT_TRUE(step(3, DType::bf16));
    Tensor bad = Tensor::empty({3, 64, 32, 1}, DType::u8, d), label = Tensor::empty({3, 64, 32}, DType::u8, d);
    EXPECT_THROW(g.run(&bad, &label, 1e-3f), Error);
    EXPECT_EQ(memory_arena_live_blocks(d), 0);
  }
  EXPECT_EQ(memory_in_use(d), 0) << "everything freed, the arena included";
  reset_shape_only(d);
  ASSERT_EQ(unsetenv("SEIS_CUDA_BF16_STORAGE"), 0);
}

// Without a capture (SEIS_CUDA_ARENA=1): the first run records, every later one runs eagerly from
// the arena, which stays allocated between steps; the same arena as the graph's.
TEST(GraphStep, WithoutACaptureTheArenaServesEagerSteps) {
  const Device d = Device::shape_only_of(Device::cuda(0));
  reset_shape_only(d);
  {
    UNetConfig mc;
    mc.levels = 3;
    mc.base = 4;
    UNet net(mc, 1, d);
    Optimizer opt(OptimizerConfig{}, net.param_vars());
    GraphStep g(net, opt, 1.0f, /*capture=*/false);
    auto step = [&]() {
      Tensor data = Tensor::empty({2, 64, 32, 1}, DType::f32, d);
      Tensor label = Tensor::empty({2, 64, 32}, DType::u8, d);
      const GraphStep::Result r = g.run(&data, &label, 1e-3f);
      EXPECT_TRUE(r.gave_up.empty()) << r.gave_up;
      EXPECT_FALSE(r.launched) << "nothing is captured";
      return r.arena;
    };
    EXPECT_FALSE(step()) << "the first run records";
    ASSERT_NE(g.plan(), nullptr);
    EXPECT_TRUE(step());
    const int64_t held = memory_in_use(d), blocks = memory_reserved(d);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(step());
    EXPECT_EQ(memory_in_use(d), held) << "the arena stays; nothing else is left";
    EXPECT_EQ(memory_reserved(d), blocks) << "no block is made during a step from the arena";
    g.reset();
    EXPECT_LE(memory_in_use(d), held - g.plan()->bytes) << "a reset returns the arena";
    EXPECT_TRUE(step());
    EXPECT_EQ(memory_arena_live_blocks(d), 0);
  }
  EXPECT_EQ(memory_in_use(d), 0);
  reset_shape_only(d);
}

}  // namespace
}  // namespace seis
