#include "models/unet.h"

#include "engine/error.h"
#include "engine/init.h"
#include "engine/ops.h"
#include "engine/safetensors.h"

namespace seis {

UNet::UNet(const UNetConfig& config, uint64_t seed, Device device) : config_(config), device_(device) {
  if (config.levels < 1 || config.levels > 12)
    throw UsageError("--levels must be in 1..12, got " + std::to_string(config.levels));
  if (config.base < 1 || config.base > 1024)
    throw UsageError("--base must be in 1..1024, got " + std::to_string(config.base));
  const int L = config.levels;
  for (int l = 0; l < L; ++l) {
    const int cin = l == 0 ? config.in_channels : config.channels(l - 1);
    add_conv("enc." + std::to_string(l) + ".conv1", cin, config.channels(l), 3, seed);
    add_conv("enc." + std::to_string(l) + ".conv2", config.channels(l), config.channels(l), 3, seed);
  }
  for (int l = L - 2; l >= 0; --l) {
    add_conv("up." + std::to_string(l), config.channels(l + 1), config.channels(l), 3, seed);
    add_conv("dec." + std::to_string(l) + ".conv1", 2 * config.channels(l), config.channels(l), 3, seed);
    add_conv("dec." + std::to_string(l) + ".conv2", config.channels(l), config.channels(l), 3, seed);
  }
  add_conv("head", config.channels(0), 1, 1, seed);
}

void UNet::add_conv(const std::string& prefix, int cin, int cout, int r, uint64_t seed) {
  // Each parameter draws from its own stream, numbered in creation order.
  Tensor w = Tensor::empty({cout, r, r, cin});
  init_conv_weight(w, seed, params_.size());
  index_[prefix + ".weight"] = params_.size();
  params_.push_back({prefix + ".weight", make_var(w.to(device_), true), true});
  Tensor b = Tensor::empty({cout});
  init_conv_bias(b, static_cast<int64_t>(cin) * r * r, seed, params_.size());
  index_[prefix + ".bias"] = params_.size();
  params_.push_back({prefix + ".bias", make_var(b.to(device_), true)});
}

const Var& UNet::param(const std::string& name) const {
  auto it = index_.find(name);
  SEIS_CHECK(it != index_.end(), "no parameter " << name);
  return params_[it->second].var;
}

Var UNet::forward(Tape* tape, const Var& x) const {
  SEIS_CHECK(x->value.rank() == 4 && x->value.dim(3) == config_.in_channels,
             "UNet input must be [N, H, W, " << config_.in_channels << "], got " << shape_str(x->value.shape()));
  check_input_size(x->value.dim(1), x->value.dim(2), "UNet input");
  auto conv = [&](const std::string& p, const Var& in, bool relu) {
    return conv2d(tape, exec_, in, param(p + ".weight"), param(p + ".bias"), relu);
  };
  const int L = config_.levels;
  std::vector<Var> skips(L);
  // Activations in the storage type of the precision (bf16 under --precision bf16).
  Var h = cast(tape, x, activation_dtype(exec_, x->value.device()));
  for (int l = 0; l < L; ++l) {
    const std::string p = "enc." + std::to_string(l);
    const Var &w2 = param(p + ".conv2.weight"), &b2 = param(p + ".conv2.bias");
    // Every level but the last pools its second conv's output (one kernel where the CUDA forward
    // pools in its epilogue); the unpooled output is the level's skip connection.
    const bool pool = l + 1 < L;
    PooledConv out;
    if (l == 0) {
      // The first conv reads the in_channels-channel input: its output is recomputed in backward
      // rather than stored through the whole step.
      const Var &w1 = param(p + ".conv1.weight"), &b1 = param(p + ".conv1.bias");
      out = pool ? conv2d_pair_recomputed_pooled(tape, exec_, h, w1, b1, w2, b2)
                 : PooledConv{conv2d_pair_recomputed(tape, exec_, h, w1, b1, w2, b2), Var()};
    } else {
      h = conv(p + ".conv1", h, true);
      out =
          pool ? conv2d_pooled(tape, exec_, h, w2, b2, true) : PooledConv{conv2d(tape, exec_, h, w2, b2, true), Var()};
    }
    skips[l] = out.y;
    h = pool ? out.pooled : out.y;
  }
  for (int l = L - 2; l >= 0; --l) {
    // The upsampled input of the up conv and the [skip, up] input of conv1 are never stored.
    const std::string u = "up." + std::to_string(l), p = "dec." + std::to_string(l);
    const Var up = conv2d_upsampled(tape, exec_, h, param(u + ".weight"), param(u + ".bias"), true);
    h = conv2d_concat(tape, exec_, skips[l], up, param(p + ".conv1.weight"), param(p + ".conv1.bias"), true);
    skips[l].reset();
    h = conv(p + ".conv2", h, true);
  }
  return conv("head", h, false);
}

std::vector<Var> UNet::param_vars() const {
  std::vector<Var> v;
  for (const auto& p : params_) v.push_back(p.var);
  return v;
}

int64_t UNet::num_params() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.var->value.numel();
  return n;
}

void UNet::check_input_size(int64_t h, int64_t w, const std::string& where) const {
  const int64_t m = int64_t{1} << (config_.levels - 1);
  if (h <= 0 || w <= 0 || h % m != 0 || w % m != 0) {
    throw UsageError(where + ": height " + std::to_string(h) + " and width " + std::to_string(w) +
                     " must be positive multiples of 2^(levels-1) = " + std::to_string(m) + " for a " +
                     std::to_string(config_.levels) + "-level UNet");
  }
}

Shape NamedParam::stored_shape() const {
  const Tensor& v = var->value;
  return conv_weight ? Shape{v.dim(0), v.dim(3), v.dim(1), v.dim(2)} : v.shape();
}

Tensor NamedParam::stored() const { return conv_weight ? krsc_to_oihw(var->value) : var->value.to(Device::cpu()); }

void NamedParam::load_stored(const Tensor& t) { var->value.copy_from(conv_weight ? oihw_to_krsc(t) : t); }

std::vector<std::pair<std::string, Tensor>> UNet::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& p : params_) out.emplace_back(p.name, p.stored());
  return out;
}

void UNet::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  std::map<std::string, std::string> md = metadata;
  md["seisseg.levels"] = std::to_string(config_.levels);
  md["seisseg.base"] = std::to_string(config_.base);
  md["seisseg.in_channels"] = std::to_string(config_.in_channels);
  save_safetensors(path, state_dict(), md);
}

std::map<std::string, std::string> UNet::load(const std::string& path) {
  SafetensorsContents c = load_safetensors(path);
  load_tensors(c, path);
  return c.metadata;
}

void UNet::load_tensors(const SafetensorsContents& c, const std::string& path) {
  for (auto& p : params_) {
    const Tensor* t = c.find(p.name);
    if (t == nullptr) throw InputError(path + ": no tensor '" + p.name + "' (weights of another network?)");
    const Shape want = p.stored_shape();
    if (t->shape() != want || t->dtype() != DType::f32) {
      throw InputError(path + ": tensor '" + p.name + "' is " + shape_str(t->shape()) + " " + dtype_name(t->dtype()) +
                       ", this " + std::to_string(config_.levels) + "-level, base-" + std::to_string(config_.base) +
                       " UNet needs " + shape_str(want) + " f32");
    }
    p.load_stored(*t);
  }
}

}  // namespace seis
