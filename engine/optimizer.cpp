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

void Optimizer::step(float lr) {
  ++step_;
  const bool sgd = config_.kind == OptimizerKind::sgd;
  for (size_t i = 0; i < params_.size(); ++i) {
    VarImpl& p = *params_[i];
    if (!p.grad.defined()) continue;
    const int64_t n = p.value.numel();
    float* param = p.value.data<float>();
    const float* grad = p.grad.data<float>();
    if (sgd) {
      SgdParams sp;
      sp.lr = lr;
      sp.momentum = config_.momentum;
      sp.weight_decay = config_.weight_decay;
      sp.first_step = step_ == 1;
      float* buf = state_[i].data<float>();
      SEIS_DISPATCH(p.value, sgd_update, n, sp, param, grad, buf);
    } else {
      AdamParams ap;
      ap.lr = lr;
      ap.beta1 = config_.beta1;
      ap.beta2 = config_.beta2;
      ap.eps = config_.eps;
      ap.weight_decay = config_.weight_decay;
      ap.decoupled = config_.kind == OptimizerKind::adamw;
      ap.step = step_;
      float* m = state_[2 * i].data<float>();
      float* v = state_[2 * i + 1].data<float>();
      SEIS_DISPATCH(p.value, adam_update, n, ap, param, grad, m, v);
    }
    p.grad = Tensor();
  }
}

}  // namespace seis
