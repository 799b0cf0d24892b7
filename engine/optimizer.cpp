#include "engine/optimizer.h"

#include "engine/dispatch.h"
#include "engine/enum_names.h"
#include "engine/error.h"

namespace seis {

namespace {
constexpr EnumName<OptimizerKind> kOptimizerNames[] = {
    {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"}, {OptimizerKind::sgd, "sgd"}};
}  // namespace

OptimizerKind parse_optimizer(const std::string& s) { return parse_enum(kOptimizerNames, s, "--optimizer"); }
const char* optimizer_name(OptimizerKind k) { return enum_name(kOptimizerNames, k); }
std::vector<std::string> optimizer_names() { return enum_names(kOptimizerNames); }

Optimizer::Optimizer(const OptimizerConfig& config, std::vector<Var> params)
    : config_(config), params_(std::move(params)) {
  const int per_param = config_.kind == OptimizerKind::sgd ? 1 : 2;
  for (const Var& p : params_) {
    for (int i = 0; i < per_param; ++i)
      state_.push_back(Tensor::zeros(p->value.shape(), DType::f32, p->value.device()));
  }
}

SgdParams Optimizer::sgd_params(float lr) const {
  SgdParams sp;
  sp.lr = lr;
  sp.momentum = config_.momentum;
  sp.weight_decay = config_.weight_decay;
  sp.first_step = step_ == 1;
  return sp;
}

AdamParams Optimizer::adam_params(float lr) const {
  AdamParams ap;
  ap.lr = lr;
  ap.beta1 = config_.beta1;
  ap.beta2 = config_.beta2;
  ap.eps = config_.eps;
  ap.weight_decay = config_.weight_decay;
  ap.decoupled = config_.kind == OptimizerKind::adamw;
  ap.step = step_;
  return ap;
}

void Optimizer::step(float lr) {
  ++step_;
  apply(lr, nullptr);
}

UpdateScalars Optimizer::begin_step(float lr) {
  ++step_;
  return config_.kind == OptimizerKind::sgd ? sgd_scalars(sgd_params(lr)) : adam_scalars(adam_params(lr));
}

void Optimizer::step_from(const UpdateScalars* device_scalars) {
  for (const Var& p : params_) {
    const Device d = p->value.device();
    SEIS_CHECK(d.is_cuda(), "step scalars in device memory need parameters on a GPU, not " << d.str());
    // (a shape-only GPU has no device memory to read them from, and computes nothing)
    SEIS_CHECK(device_scalars != nullptr || d.shape_only, "Optimizer::step_from: null step scalars");
  }
  apply(0.0f, device_scalars);
}

void Optimizer::apply(float lr, const UpdateScalars* from) {
  const bool sgd = config_.kind == OptimizerKind::sgd;
  const SgdParams sp = sgd_params(lr);
  const AdamParams ap = adam_params(lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    VarImpl& p = *params_[i];
    if (!p.grad.defined()) continue;
    const int64_t n = p.value.numel();
    float* param = p.value.data<float>();
    const float* grad = p.grad.data<float>();
    float* s0 = state_[sgd ? i : 2 * i].data<float>();
    float* s1 = sgd ? nullptr : state_[2 * i + 1].data<float>();
    if (from != nullptr) {
#if SEIS_HAVE_CUDA
      const Device d = p.value.device();
      if (sgd) {
        cuda::sgd_update_from(n, sp, from, param, grad, s0, cuda_compute_stream(d.index));
      } else {
        cuda::adam_update_from(n, ap, from, param, grad, s0, s1, cuda_compute_stream(d.index));
      }
#endif
    } else if (sgd) {
      SEIS_DISPATCH(p.value, sgd_update, n, sp, param, grad, s0);
    } else {
      SEIS_DISPATCH(p.value, adam_update, n, ap, param, grad, s0, s1);
    }
    p.grad = Tensor();
  }
}

}  // namespace seis
