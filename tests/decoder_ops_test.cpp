// conv2d_concat and conv2d_upsampled (engine/ops.h) against the compositions they replace,
// concat_channels + conv2d and upsample2x + conv2d, and conv2d_pair_recomputed against two conv2d:
// the same values and every gradient bit for bit, in f32 and bf16 storage (and tf32 operands), on
// odd, one-channel and 1x1 shapes, while the joined and middle tensors are not kept for backward and
// (the CPU kernels reading the joined inputs in place) never exist in the step's peak; and the
// pooled convs against the conv, then maxpool2d.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "engine/memory.h"
#include "engine/ops.h"
#include "test_util.h"

namespace seis {
namespace {

Var param(const Shape& shape, uint64_t seed) {
  return make_var(Tensor::from_vector(shape, test::random_vector(shape_numel(shape), seed, -0.5f, 0.5f)), true);
}

Var input(const Shape& shape, uint64_t seed, DType dtype) {
  return make_var(
      cast(nullptr, make_var(Tensor::from_vector(shape, test::random_vector(shape_numel(shape), seed))), dtype)->value,
      true);
}

struct Outcome {
  std::vector<float> y, grads;
  int64_t held_after_forward = 0;  // host bytes alive between forward and backward
  int64_t peak = 0;                // the most host bytes alive during forward and backward
};

// loss = BCE(head(f(...))) so that every gradient is exercised; returns y and all gradients.
Outcome run(const ExecConfig& exec, const std::function<Var(Tape*, const std::vector<Var>&)>& f,
            const std::vector<Var>& inputs, const Var& w, const Var& b) {
  for (const Var& v : inputs) v->grad = Tensor();
  w->grad = Tensor();
  b->grad = Tensor();
  Outcome o;
  const int64_t before = memory_in_use(Device::cpu());
  reset_memory_peak(Device::cpu());
  Tape tape;
  Var y = f(&tape, inputs);
  const Var hw = make_var(Tensor::full({1, 1, 1, y->value.dim(3)}, 0.25f), false);
  const Var logits = conv2d(&tape, exec, y, hw, Var(), false);
  const Tensor labels = Tensor::zeros({logits->value.dim(0), logits->value.dim(1), logits->value.dim(2)}, DType::u8);
  const Var loss = bce_with_logits(&tape, logits, labels, 1.0f);
  o.held_after_forward = memory_in_use(Device::cpu()) - before;
  tape.backward(loss);
  o.peak = memory_peak(Device::cpu()) - before;
  o.y = y->value.to_vector();
  for (const Var& v : inputs) {
    const auto g = v->grad.to_vector();
    o.grads.insert(o.grads.end(), g.begin(), g.end());
  }
  for (const Var& v : {w, b}) {
    const auto g = v->grad.to_vector();
    o.grads.insert(o.grads.end(), g.begin(), g.end());
  }
  return o;
}

class DecoderOps : public ::testing::TestWithParam<ConvMath> {
 protected:
  void SetUp() override { exec.math = GetParam(); }
  DType dtype() const { return activation_dtype(exec, Device::cpu()); }
  ExecConfig exec;
};

// (n, h, w, channels of a / x, channels of b, k, r)
struct Case {
  int64_t n, h, w, ca, cb, k, r;
  // Whether the joined tensor outweighs the kernels' per-thread column buffers, so that the peaks
  // can be compared (on the small shapes those buffers are most of either peak).
  bool large() const { return h * w >= 1000; }
};
const Case kCases[] = {{2, 6, 10, 3, 5, 4, 3}, {1, 5, 7, 1, 1, 1, 3},  {3, 4, 9, 2, 6, 5, 1},
                       {1, 1, 1, 4, 3, 2, 3},  {1, 13, 3, 7, 1, 3, 3}, {2, 40, 48, 8, 8, 4, 3}};

// The joined op against the composition: the same output and every gradient bit for bit, `joined`
// bytes (the concatenated or upsampled tensor) fewer kept for backward, and on a large shape a peak
// lower by at least half of them.
void expect_joined_matches(const Outcome& fused, const Outcome& plain, int64_t joined, const Case& c) {
  EXPECT_EQ(fused.y, plain.y);
  EXPECT_EQ(fused.grads, plain.grads);
  EXPECT_LE(fused.held_after_forward + joined, plain.held_after_forward);
  if (c.large()) {
    EXPECT_LT(fused.peak + joined / 2, plain.peak);
  }
}

TEST_P(DecoderOps, ConcatConvEqualsConcatThenConv) {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    for (bool relu : {true, false}) {
      SCOPED_TRACE(testing::Message() << "a [" << c.n << "," << c.h << "," << c.w << "," << c.ca << "] b " << c.cb
                                      << " k " << c.k << " r " << c.r << " relu " << relu);
      const Var a = input({c.n, c.h, c.w, c.ca}, seed++, dtype()), b = input({c.n, c.h, c.w, c.cb}, seed++, dtype());
      const Var w = param({c.k, c.r, c.r, c.ca + c.cb}, seed++), bias = param({c.k}, seed++);
      const Outcome fused = run(
          exec,
          [&](Tape* t, const std::vector<Var>& in) { return conv2d_concat(t, exec, in[0], in[1], w, bias, relu); },
          {a, b}, w, bias);
      const Outcome plain = run(
          exec,
          [&](Tape* t, const std::vector<Var>& in) {
            return conv2d(t, exec, concat_channels(t, in[0], in[1]), w, bias, relu);
          },
          {a, b}, w, bias);
      // The [a | b] tensor is not kept for backward, and neither it nor its gradient is ever made.
      expect_joined_matches(fused, plain, c.n * c.h * c.w * (c.ca + c.cb) * dtype_size(dtype()), c);
    }
  }
}

TEST_P(DecoderOps, UpsampledConvEqualsUpsampleThenConv) {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    for (bool relu : {true, false}) {
      SCOPED_TRACE(testing::Message() << "x [" << c.n << "," << c.h << "," << c.w << "," << c.ca << "] k " << c.k
                                      << " r " << c.r << " relu " << relu);
      const Var x = input({c.n, c.h, c.w, c.ca}, seed++, dtype());
      const Var w = param({c.k, c.r, c.r, c.ca}, seed++), bias = param({c.k}, seed++);
      const Outcome fused = run(
          exec, [&](Tape* t, const std::vector<Var>& in) { return conv2d_upsampled(t, exec, in[0], w, bias, relu); },
          {x}, w, bias);
      const Outcome plain = run(
          exec,
          [&](Tape* t, const std::vector<Var>& in) { return conv2d(t, exec, upsample2x(t, in[0]), w, bias, relu); },
          {x}, w, bias);
      expect_joined_matches(fused, plain, c.n * 4 * c.h * c.w * c.ca * dtype_size(dtype()), c);
    }
  }
}

TEST_P(DecoderOps, RecomputedPairEqualsTwoConvs) {
  uint64_t seed = 200;
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::Message() << "x [" << c.n << "," << c.h << "," << c.w << "," << c.ca << "] mid " << c.cb
                                    << " k " << c.k << " r " << c.r);
    const Var x = input({c.n, c.h, c.w, c.ca}, seed++, dtype());
    const Var w1 = param({c.cb, c.r, c.r, c.ca}, seed++), b1 = param({c.cb}, seed++);
    const Var w2 = param({c.k, c.r, c.r, c.cb}, seed++), b2 = param({c.k}, seed++);
    // Every gradient: x's, w1's and b1's through `inputs`, w2's and b2's as the outcome's own.
    const Outcome fused = run(
        exec,
        [&](Tape* t, const std::vector<Var>& in) {
          return conv2d_pair_recomputed(t, exec, in[0], in[1], in[2], w2, b2);
        },
        {x, w1, b1}, w2, b2);
    const Outcome plain = run(
        exec,
        [&](Tape* t, const std::vector<Var>& in) {
          return conv2d(t, exec, conv2d(t, exec, in[0], in[1], in[2], true), w2, b2, true);
        },
        {x, w1, b1}, w2, b2);
    EXPECT_EQ(fused.y, plain.y);
    EXPECT_EQ(fused.grads, plain.grads);
    const int64_t mid = c.n * c.h * c.w * c.cb * dtype_size(dtype());
    EXPECT_LE(fused.held_after_forward + mid, plain.held_after_forward);
  }
}

// conv2d_pooled and conv2d_pair_recomputed_pooled (the encoder's second conv and its maxpool: one
// kernel on CUDA where the halo forward takes it) against the conv, then maxpool2d: the same values
// and gradients, bit for bit. Both outputs reach the loss: [y | upsample2x(pooled)] on even sizes,
// the pooled tensor alone on odd ones (its last row or column pools into nothing).
TEST_P(DecoderOps, PooledConvsEqualTheConvThenTheMaxpool) {
  uint64_t seed = 300;
  int cases = 0;
  for (const Case& c : kCases) {
    if (c.h < 2 || c.w < 2) continue;
    ++cases;
    SCOPED_TRACE(testing::Message() << "x [" << c.n << "," << c.h << "," << c.w << "," << c.ca << "] mid " << c.cb
                                    << " k " << c.k << " r " << c.r);
    const bool even = c.h % 2 == 0 && c.w % 2 == 0;
    auto out = [&](Tape* t, const PooledConv& o) {
      return even ? concat_channels(t, o.y, upsample2x(t, o.pooled)) : o.pooled;
    };
    auto then_pool = [&](Tape* t, const Var& y) { return PooledConv{y, maxpool2d(t, y)}; };
    const Var x = input({c.n, c.h, c.w, c.ca}, seed++, dtype());
    const Var w1 = param({c.cb, c.r, c.r, c.ca}, seed++), b1 = param({c.cb}, seed++);
    const Var w2 = param({c.k, c.r, c.r, c.cb}, seed++), b2 = param({c.k}, seed++);
    const Outcome fused = run(
        exec, [&](Tape* t, const std::vector<Var>& in) { return out(t, conv2d_pooled(t, exec, in[0], w1, b1, true)); },
        {x}, w1, b1);
    const Outcome plain = run(
        exec,
        [&](Tape* t, const std::vector<Var>& in) { return out(t, then_pool(t, conv2d(t, exec, in[0], w1, b1, true))); },
        {x}, w1, b1);
    EXPECT_EQ(fused.y, plain.y);
    EXPECT_EQ(fused.grads, plain.grads);
    const Outcome pair_fused = run(
        exec,
        [&](Tape* t, const std::vector<Var>& in) {
          return out(t, conv2d_pair_recomputed_pooled(t, exec, in[0], in[1], in[2], w2, b2));
        },
        {x, w1, b1}, w2, b2);
    const Outcome pair_plain = run(
        exec,
        [&](Tape* t, const std::vector<Var>& in) {
          return out(t, then_pool(t, conv2d_pair_recomputed(t, exec, in[0], in[1], in[2], w2, b2)));
        },
        {x, w1, b1}, w2, b2);
    EXPECT_EQ(pair_fused.y, pair_plain.y);
    EXPECT_EQ(pair_fused.grads, pair_plain.grads);
    EXPECT_FALSE(pair_fused.grads.empty());
  }
  EXPECT_EQ(cases, 5);
}

INSTANTIATE_TEST_SUITE_P(Precision, DecoderOps, ::testing::Values(ConvMath::f32, ConvMath::tf32, ConvMath::bf16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

}  // namespace
}  // namespace seis
