// The paper's UNet (Birnie et al. 2021), DESIGN.md "The model": `levels` levels, base width
// doubling per level; encoder conv3x3+ReLU twice then maxpool; decoder nearest x2 upsample,
// conv3x3+ReLU, concat [skip, up], conv3x3+ReLU twice; 1x1 head to one logit.
// Parameters carry PyTorch's names; checkpoints store OIHW weights.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/safetensors.h"

namespace seis {

struct UNetConfig {
  int levels = 7;
  int base = 8;
  int in_channels = 1;
  int channels(int level) const { return base << level; }
};

struct NamedParam {
  std::string name;          // e.g. "enc.0.conv1.weight"
  Var var;                   // conv weights KRSC [K,R,S,C] inside the engine
  bool conv_weight = false;  // stored OIHW in checkpoints (PyTorch's layout)

  // The shape and layout a checkpoint holds, whatever the engine's: the one place that knows.
  Shape stored_shape() const;
  Tensor stored() const;              // a CPU copy in the checkpoint layout
  void load_stored(const Tensor& t);  // from the checkpoint layout (shape checked by the caller)
};

class UNet {
 public:
  // Fresh seeded initialisation on `device`.
  UNet(const UNetConfig& config, uint64_t seed, Device device);

  // x: [N, H, W, in_channels] -> logits [N, H, W, 1], in the activation storage type
  // (activation_dtype, engine/ops.h), computed as exec() says. Records on `tape` unless it is null.
  Var forward(Tape* tape, const Var& x) const;

  // How forward (and its backward) computes: precision and conv backend; ExecConfig{} (fp32, own
  // kernels) until set. Not part of the weights or the checkpoint.
  void set_exec(const ExecConfig& exec) { exec_ = exec; }
  const ExecConfig& exec() const { return exec_; }

  const UNetConfig& config() const { return config_; }
  const std::vector<NamedParam>& params() const { return params_; }
  std::vector<Var> param_vars() const;
  int64_t num_params() const;
  Device device() const { return device_; }

  // H and W must be divisible by 2^(levels-1): throws UsageError saying so otherwise.
  void check_input_size(int64_t h, int64_t w, const std::string& where) const;

  // PyTorch names and OIHW layouts, on the CPU.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  void save(const std::string& path, const std::map<std::string, std::string>& metadata) const;
  // Loads weights saved by save() (or by PyTorch with the same names). InputError naming the file on
  // a missing name or a shape that does not match this configuration. Returns the file's metadata.
  std::map<std::string, std::string> load(const std::string& path);
  // The same from tensors already read from `path` (named in errors).
  void load_tensors(const SafetensorsContents& contents, const std::string& path);

 private:
  const Var& param(const std::string& name) const;
  void add_conv(const std::string& prefix, int cin, int cout, int r, uint64_t seed);

  UNetConfig config_;
  Device device_;
  ExecConfig exec_;
  std::vector<NamedParam> params_;
  std::map<std::string, size_t> index_;
};

}  // namespace seis
