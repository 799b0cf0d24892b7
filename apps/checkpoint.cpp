#include "apps/checkpoint.h"

#include <cmath>
#include <cstdint>
#include <filesystem>

#include "engine/error.h"
#include "engine/printable.h"
#include "engine/safetensors.h"

namespace seis {

namespace {
constexpr const char* kStateKey = "seisseg.state";

std::string state_name(const std::string& param, size_t slot, OptimizerKind kind) {
  if (kind == OptimizerKind::sgd) return "optimizer." + param + ".momentum";
  return "optimizer." + param + (slot == 0 ? ".exp_avg" : ".exp_avg_sq");
}
}  // namespace

void save_checkpoint(const std::string& path, const UNet& model, Optimizer& optimizer, const CheckpointState& state,
                     const nlohmann::json& identity) {
  std::vector<std::pair<std::string, Tensor>> tensors = model.state_dict();
  const auto& params = model.params();
  const size_t per_param = params.empty() ? 0 : optimizer.state().size() / params.size();
  for (size_t i = 0; i < params.size(); ++i) {
    for (size_t s = 0; s < per_param; ++s) {
      // Optimizer state keeps the engine's layout (KRSC): it is only read back by seisseg.
      tensors.emplace_back(state_name(params[i].name, s, optimizer.config().kind),
                           optimizer.state()[i * per_param + s]);
    }
  }
  const nlohmann::json meta = {{"step", state.progress.step},
                               {"epoch", state.progress.epoch},
                               {"batch", state.progress.batch},
                               {"log_loss_sum", state.progress.log_loss_sum},
                               {"log_steps", state.progress.log_steps},
                               {"best_iou", state.best_iou},
                               {"best_event_f1", state.best_event_f1},
                               {"best_pick_mae_ms", state.best_pick_mae_ms},
                               {"optimizer_steps", optimizer.steps_taken()},
                               {"identity", identity}};
  save_safetensors(path, tensors, {{kStateKey, meta.dump()}});
}

CheckpointState load_checkpoint(const std::string& path, UNet& model, Optimizer& optimizer,
                                const nlohmann::json& identity) {
  if (!std::filesystem::exists(path)) {
    throw InputError(path +
                     ": no checkpoint here (was the run started with this --out directory? One stopped before its "
                     "first checkpoint starts again without --resume)");
  }
  const SafetensorsContents c = load_safetensors(path);
  auto it = c.metadata.find(kStateKey);
  if (it == c.metadata.end()) throw InputError(path + ": not a seisseg training checkpoint (no " + kStateKey + ")");
  const nlohmann::json meta = nlohmann::json::parse(it->second, nullptr, false);
  if (!meta.is_object() || !meta.contains("identity") || !meta.contains("step") || !meta["step"].is_number_integer()) {
    throw InputError(path + ": damaged checkpoint metadata");
  }
  // Counts are non-negative integers and figures numbers (nlohmann's value() would throw its own
  // type_error for a string, and turn 1e300 into an integer: undefined behaviour).
  auto count = [&](const char* key) -> int64_t {
    if (!meta.contains(key)) return 0;
    const nlohmann::json& v = meta[key];
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(INT64_MAX) : v.get<int64_t>() < 0)) {
      throw InputError(path + ": damaged checkpoint metadata: " + key + " is " + printable(v.dump(), 80) +
                       ", not a count");
    }
    return v.get<int64_t>();
  };
  auto figure = [&](const char* key, double absent) -> double {
    if (!meta.contains(key)) return absent;
    const nlohmann::json& v = meta[key];
    if (v.is_null()) return std::nan("");  // how nlohmann writes a NaN or an infinity
    if (!v.is_number()) {
      throw InputError(path + ": damaged checkpoint metadata: " + key + " is " + printable(v.dump(), 80) +
                       ", not a number");
    }
    return v.get<double>();
  };
  CheckpointState st;
  st.progress.step = count("step");
  st.progress.epoch = count("epoch");
  st.progress.batch = count("batch");
  st.progress.log_loss_sum = figure("log_loss_sum", 0.0);
  st.progress.log_steps = count("log_steps");
  st.best_iou = figure("best_iou", -1.0);
  st.best_event_f1 = figure("best_event_f1", -1.0);
  st.best_pick_mae_ms = figure("best_pick_mae_ms", -1.0);
  const int64_t optimizer_steps = count("optimizer_steps");
  for (auto f = identity.begin(); f != identity.end(); ++f) {
    const auto& saved = meta["identity"];
    if (!saved.contains(f.key()) || saved[f.key()] != f.value()) {
      throw InputError(path + ": checkpoint is from another configuration: " + f.key() + " is " + f.value().dump() +
                       " here but " + (saved.contains(f.key()) ? printable(saved[f.key()].dump(), 200) : "absent") +
                       " there");
    }
  }
  for (const auto& p : model.params()) {
    const Tensor* t = c.find(p.name);
    if (t == nullptr || t->shape() != p.stored_shape() || t->dtype() != DType::f32) {
      throw InputError(path + ": damaged checkpoint: tensor '" + p.name + "' missing or of the wrong shape");
    }
  }
  // Weights: the same conversion as UNet::load, from the tensors already read.
  const auto& params = model.params();
  const size_t per_param = params.empty() ? 0 : optimizer.state().size() / params.size();
  for (size_t i = 0; i < params.size(); ++i) {
    for (size_t s = 0; s < per_param; ++s) {
      const std::string name = state_name(params[i].name, s, optimizer.config().kind);
      const Tensor* t = c.find(name);
      Tensor& dst = optimizer.state()[i * per_param + s];
      if (t == nullptr || t->shape() != dst.shape() || t->dtype() != DType::f32) {
        throw InputError(path + ": damaged checkpoint: optimizer state '" + name + "' missing or of the wrong shape");
      }
      dst.copy_from(*t);
    }
  }
  model.load_tensors(c, path);
  optimizer.set_steps_taken(optimizer_steps);
  return st;
}

}  // namespace seis
