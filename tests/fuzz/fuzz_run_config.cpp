// Feeds: the input as a run directory's config.json to apps/run_config.cpp (read_run_config and
// train_settings_from_json, as `seisseg train --resume DIR` reads it back). Seeds: configs as
// `seisseg train` writes them (defaults, and settings changed). Asserts: no crash or sanitizer
// report, only seis::InputError / seis::Error thrown (never nlohmann's type_error), and settings
// read back within the ranges of their flags.
#include "apps/run_config.h"
#include "fuzz_util.h"

namespace {

std::string config_text(const seis::TrainSettings& s) {
  const nlohmann::ordered_json j = {{"version", "0.1.0"},
                                    {"command", "train"},
                                    {"settings", s.to_json()},
                                    {"resolved", {{"device", "cpu"}, {"parameters", 1234}, {"total_steps", 10}}}};
  return j.dump(2) + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (seis::fuzz::seed_dir() == nullptr) return 0;
  seis::TrainSettings s;
  s.data = "train.h5";
  seis::fuzz::write_seed("config_defaults.json", config_text(s));
  s.levels = 3;
  s.base = 4;
  s.batch = 2;
  s.steps = 20;
  s.lr = 2e-3f;
  s.optimizer = "sgd";
  s.seed = 18446744073709551615ull;
  s.flip = true;
  s.crop = "64x64";
  s.threshold = 0.4f;
  s.best_by = "event_f1";
  seis::fuzz::write_seed("config_changed.json", config_text(s));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = seis::fuzz::input_file(data, size);
  seis::fuzz::expect_clean([&] {
    const seis::TrainSettings s = seis::train_settings_from_json(seis::read_run_config(path, "run"), path);
    if (s.levels < 1 || s.levels > 12 || s.base < 1 || s.base > 1024 || s.batch < 1 || s.prefetch < 1 ||
        !(s.threshold >= 0 && s.threshold <= 1) || !(s.lr > 0)) {
      std::fprintf(stderr, "fuzz finding: a setting outside its flag's range was accepted\n");
      std::abort();
    }
  });
  return 0;
}
