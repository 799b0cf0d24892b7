// Optimizers over fp32 parameters: SGD (momentum), Adam and AdamW, PyTorch's formulas.
// step() applies the fused update kernel to every parameter with a gradient, then drops the gradients.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "kernels/optimizer_update.h"

namespace seis {

enum class OptimizerKind { sgd, adam, adamw };
OptimizerKind parse_optimizer(const std::string& s);  // UsageError on an unknown name
const char* optimizer_name(OptimizerKind k);
std::vector<std::string> optimizer_names();  // the allowed names, in --help's order

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float lr = 1e-3f;
  float momentum = 0.9f;  // SGD
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;
};

class Optimizer {
 public:
  Optimizer(const OptimizerConfig& config, std::vector<Var> params);
  // One update at learning rate `lr` (the schedule's value for this step).
  void step(float lr);
  int64_t steps_taken() const { return step_; }
  // State for checkpoints: per parameter, its momentum (SGD) or m and v (Adam), in parameter order.
  std::vector<Tensor>& state() { return state_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  const OptimizerConfig& config() const { return config_; }

 private:
  OptimizerConfig config_;
  std::vector<Var> params_;
  std::vector<Tensor> state_;
  int64_t step_ = 0;
};

}  // namespace seis
