// Feeds: the input as a training checkpoint (state.safetensors) to apps/checkpoint.cpp
// (load_checkpoint, as `seisseg train --resume` calls it): the safetensors container, the JSON of
// its "seisseg.state" metadata (position, best figures, the run's identity), then every weight and
// optimizer state tensor into a 2-level UNet of base 2 and its Adam state. Seeds: checkpoints of
// that model written by save_checkpoint. Asserts: no crash or sanitizer report, only
// seis::InputError / seis::Error thrown (a JSON value of the wrong type included).
#include <memory>

#include "apps/checkpoint.h"
#include "fuzz_util.h"

namespace {

std::unique_ptr<seis::UNet> g_model;
std::unique_ptr<seis::Optimizer> g_optimizer;
nlohmann::json g_identity;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  seis::UNetConfig cfg;
  cfg.levels = 2;
  cfg.base = 2;
  g_model = std::make_unique<seis::UNet>(cfg, 7, seis::Device::cpu());
  g_optimizer = std::make_unique<seis::Optimizer>(seis::OptimizerConfig{}, g_model->param_vars());
  g_identity = {{"levels", 2}, {"base", 2}, {"optimizer", "adam"}, {"seed", 7}, {"data", "a.h5"}};
  if (seis::fuzz::seed_dir() != nullptr) {
    const std::string tmp = seis::fuzz::work_dir() + "/seed.safetensors";
    seis::CheckpointState st;
    st.progress.step = 12;
    st.progress.epoch = 1;
    st.progress.batch = 3;
    st.progress.log_loss_sum = 0.25;
    st.progress.log_steps = 2;
    st.best_iou = 0.5;
    seis::save_checkpoint(tmp, *g_model, *g_optimizer, st, g_identity);
    seis::fuzz::write_seed("state.safetensors", seis::fuzz::read_file(tmp));
    st = seis::CheckpointState{};
    seis::save_checkpoint(tmp, *g_model, *g_optimizer, st, {{"levels", 2}});
    seis::fuzz::write_seed("state_other_identity.safetensors", seis::fuzz::read_file(tmp));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seis::fuzz::input_file(data, size);
  seis::fuzz::expect_clean([&] { seis::load_checkpoint(path, *g_model, *g_optimizer, g_identity); });
  return 0;
}
