#include "engine/autograd.h"

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/elementwise.h"

namespace seis {

Var make_var(Tensor value, bool requires_grad) {
  auto v = std::make_shared<VarImpl>();
  v->value = std::move(value);
  v->requires_grad = requires_grad;
  return v;
}

void accumulate_grad(VarImpl& v, Tensor g) {
  SEIS_CHECK(g.shape() == v.value.shape() && g.dtype() == v.value.dtype(),
             "gradient " << shape_str(g.shape()) << " " << dtype_name(g.dtype()) << " for value "
                         << shape_str(v.value.shape()) << " " << dtype_name(v.value.dtype()));
  if (!v.grad.defined()) {
    v.grad = std::move(g);
    if (v.on_grad_ready) v.on_grad_ready(v);
    return;
  }
  SEIS_CHECK(!v.on_grad_ready,
             "a second gradient for a parameter whose first was already sent for allreduce: "
             "gradient buckets need every parameter used once per forward");
  with_activation_type(g.dtype(), [&](auto tag) {
    using T = decltype(tag);
    SEIS_DISPATCH(v.grad, add_inplace, g.numel(), g.data<T>(), v.grad.data<T>());
  });
}

void Tape::backward(const Var& root, float seed) {
  SEIS_CHECK(root && root->value.numel() == 1, "backward needs a scalar root");
  if (root->requires_grad) root->grad = Tensor::full(root->value.shape(), seed, root->value.device());
  // Each rule is destroyed right after it runs, releasing the activations it saved.
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    (*it)();
    *it = nullptr;
  }
  rules_.clear();
}

}  // namespace seis
