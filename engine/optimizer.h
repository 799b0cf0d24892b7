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
  // The same update in two halves, for a step captured as a CUDA graph and replayed: begin_step
  // counts the step and returns its scalars at `lr`, which the caller copies to device memory before
  // each launch; step_from launches the updates reading them from there (CUDA parameters only; null
  // on a shape-only GPU, which computes nothing). The
  // kernels compute what step(lr) computes, bit for bit.
  UpdateScalars begin_step(float lr);
  void step_from(const UpdateScalars* device_scalars);
  int64_t steps_taken() const { return step_; }
  // State for checkpoints: per parameter, its momentum (SGD) or m and v (Adam), in parameter order.
  std::vector<Tensor>& state() { return state_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  const OptimizerConfig& config() const { return config_; }

 private:
  SgdParams sgd_params(float lr) const;
  AdamParams adam_params(float lr) const;
  // The updates of the parameters with a gradient, then their gradients dropped; the step's scalars
  // by value (from == null) or from device memory.
  void apply(float lr, const UpdateScalars* from);

  OptimizerConfig config_;
  std::vector<Var> params_;
  std::vector<Tensor> state_;
  int64_t step_ = 0;
};

}  // namespace seis
