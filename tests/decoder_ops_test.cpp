// conv2d_concat and conv2d_upsampled (engine/ops.h) against the compositions they replace,
// concat_channels + conv2d and upsample2x + conv2d: the same values and every gradient bit for bit,
// in f32 and bf16 storage, while the concatenated and upsampled tensors are not kept for backward.
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
};

// loss = BCE(head(f(...))) so that every gradient is exercised; returns y and all gradients.
Outcome run(const ExecConfig& exec, const std::function<Var(Tape*, const std::vector<Var>&)>& f,
            const std::vector<Var>& inputs, const Var& w, const Var& b) {
  for (const Var& v : inputs) v->grad = Tensor();
  w->grad = Tensor();
  b->grad = Tensor();
  Outcome o;
  const int64_t before = memory_in_use(Device::cpu());
  Tape tape;
  Var y = f(&tape, inputs);
  const Var hw = make_var(Tensor::full({1, 1, 1, y->value.dim(3)}, 0.25f), false);
  const Var logits = conv2d(&tape, exec, y, hw, Var(), false);
  const Tensor labels = Tensor::zeros({logits->value.dim(0), logits->value.dim(1), logits->value.dim(2)}, DType::u8);
  const Var loss = bce_with_logits(&tape, logits, labels, 1.0f);
  o.held_after_forward = memory_in_use(Device::cpu()) - before;
  tape.backward(loss);
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

TEST_P(DecoderOps, ConcatConvEqualsConcatThenConv) {
  const Var a = input({2, 6, 10, 3}, 1, dtype()), b = input({2, 6, 10, 5}, 2, dtype());
  const Var w = param({4, 3, 3, 8}, 3), bias = param({4}, 4);
  const Outcome fused = run(
      exec, [&](Tape* t, const std::vector<Var>& in) { return conv2d_concat(t, exec, in[0], in[1], w, bias, true); },
      {a, b}, w, bias);
  const Outcome plain = run(
      exec,
      [&](Tape* t, const std::vector<Var>& in) {
        return conv2d(t, exec, concat_channels(t, in[0], in[1]), w, bias, true);
      },
      {a, b}, w, bias);
  EXPECT_EQ(fused.y, plain.y);
  EXPECT_EQ(fused.grads, plain.grads);
  // The [a | b] tensor (2*6*10*8 elements) is not kept for backward.
  EXPECT_LE(fused.held_after_forward + 2 * 6 * 10 * 8 * dtype_size(dtype()), plain.held_after_forward);
}

TEST_P(DecoderOps, UpsampledConvEqualsUpsampleThenConv) {
  const Var x = input({2, 3, 5, 6}, 5, dtype());
  const Var w = param({3, 3, 3, 6}, 6), bias = param({3}, 7);
  const Outcome fused = run(
      exec, [&](Tape* t, const std::vector<Var>& in) { return conv2d_upsampled(t, exec, in[0], w, bias, true); }, {x},
      w, bias);
  const Outcome plain = run(
      exec, [&](Tape* t, const std::vector<Var>& in) { return conv2d(t, exec, upsample2x(t, in[0]), w, bias, true); },
      {x}, w, bias);
  EXPECT_EQ(fused.y, plain.y);
  EXPECT_EQ(fused.grads, plain.grads);
  EXPECT_LE(fused.held_after_forward + 2 * 6 * 10 * 6 * dtype_size(dtype()), plain.held_after_forward);
}

INSTANTIATE_TEST_SUITE_P(Precision, DecoderOps, ::testing::Values(ConvMath::f32, ConvMath::bf16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

}  // namespace
}  // namespace seis
