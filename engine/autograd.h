// Autograd: a tape of backward rules, one per recorded op, walked in reverse.
// A Var holds a value and, after backward, its gradient. Closures own what they saved, so a
// saved activation is released as soon as its rule has run.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"

namespace seis {

struct VarImpl {
  Tensor value;
  Tensor grad;  // undefined until some gradient reaches it
  bool requires_grad = false;
  // Called by accumulate_grad when `grad` is first set (engine/grad_buckets.h starts the
  // allreduce of a parameter's bucket). A hooked Var must get exactly one gradient per backward
  // (each UNet parameter is used once per forward): a second one is an error, not a sum.
  std::function<void(VarImpl&)> on_grad_ready;
};
using Var = std::shared_ptr<VarImpl>;

Var make_var(Tensor value, bool requires_grad = false);

// grad += g, taking g as the gradient itself when there is none yet (no copy); then on_grad_ready.
void accumulate_grad(VarImpl& v, Tensor g);

class Tape {
 public:
  void record(std::function<void()> backward_rule) { rules_.push_back(std::move(backward_rule)); }
  // Sets root's gradient to `seed` (root must be a scalar) and runs the rules in reverse.
  void backward(const Var& root, float seed = 1.0f);
  size_t size() const { return rules_.size(); }
  void clear() { rules_.clear(); }

 private:
  std::vector<std::function<void()>> rules_;
};

}  // namespace seis
