// The settings of a training run as config.json keeps them (DESIGN.md, "A training run writes to
// DIR"), and reading them back on --resume: a config.json is a file like any other, so a damaged one
// (a setting of the wrong type, a number out of its flag's range, not JSON at all) is a one-line
// InputError naming the file and the setting, never an exception of the JSON library.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "io/sample_set.h"

namespace seis {

// Every setting of a run, as written to config.json. The names are the flags without "--".
struct TrainSettings {
  std::string data, val, init, out = "seisseg-run", device = "auto", precision = "fp32", conv_backend = "own";
  std::string optimizer = "adam", normalize = "trace", lr_schedule = "constant", save_every = "10m", crop;
  std::string best_by = "iou";
  double val_fraction = 0.1;
  int levels = 7, base = 8, threads = 0, prefetch = 3, max_open_files = SampleSet::kDefaultMaxOpenFiles;
  int64_t batch = 4, epochs = 0, steps = 0, warmup_steps = 0, log_every = 10, val_every = 0, max_shift = 0;
  float lr = 1e-3f, min_lr = 0.0f, momentum = 0.9f, weight_decay = 0.0f, pos_weight = 1.0f, threshold = 0.5f;
  uint64_t seed = 0;
  bool skip_bad_samples = false, flip = false;

  nlohmann::ordered_json to_json() const {
    return {{"data", data},
            {"val", val},
            {"val-fraction", val_fraction},
            {"levels", levels},
            {"base", base},
            {"batch", batch},
            {"epochs", epochs},
            {"steps", steps},
            {"lr", lr},
            {"lr-schedule", lr_schedule},
            {"warmup-steps", warmup_steps},
            {"min-lr", min_lr},
            {"optimizer", optimizer},
            {"momentum", momentum},
            {"weight-decay", weight_decay},
            {"pos-weight", pos_weight},
            {"normalize", normalize},
            {"precision", precision},
            {"conv-backend", conv_backend},
            {"device", device},
            {"seed", seed},
            {"init", init},
            {"out", out},
            {"log-every", log_every},
            {"val-every", val_every},
            {"save-every", save_every},
            {"threads", threads},
            {"prefetch", prefetch},
            {"max-open-files", max_open_files},
            {"skip-bad-samples", skip_bad_samples},
            {"flip", flip},
            {"max-shift", max_shift},
            {"crop", crop},
            {"threshold", threshold},
            {"best-by", best_by}};
  }
};

// The "settings" object of the config.json at cfg_path (of the run directory resume_dir). InputError
// naming the file when it cannot be opened or is not a seisseg train config.
nlohmann::ordered_json read_run_config(const std::string& cfg_path, const std::string& resume_dir);

// Settings from such an object (missing keys keep their defaults). InputError naming `where` and the
// setting for a value of the wrong type or outside the range its flag accepts.
TrainSettings train_settings_from_json(const nlohmann::ordered_json& j, const std::string& where);

}  // namespace seis
