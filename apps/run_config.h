// The settings of a training run as config.json keeps them (DESIGN.md, "A training run writes to
// DIR"), and reading them back on --resume: a config.json is a file like any other, so a damaged one
// (a setting of the wrong type, a number out of its flag's range, not JSON at all) is a one-line
// InputError naming the file and the setting, never an exception of the JSON library.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "io/sample_set.h"

namespace seis {

// Every setting of a run, as written to config.json. The names are the flags without "--".
struct TrainSettings {
  std::string data, val, init, out = "seisseg-run", device = "auto", precision = "fp32", conv_backend = "own";
  std::string optimizer = "adam", normalize = "trace", lr_schedule = "constant", save_every = "10m", crop;
  std::string best_by = "iou", direct_io = "auto";
  double val_fraction = 0.1;
  int levels = 7, base = 8, threads = 0, prefetch = 3, max_open_files = SampleSet::kDefaultMaxOpenFiles;
  int64_t batch = 4, epochs = 0, steps = 0, warmup_steps = 0, log_every = 10, val_every = 0, max_shift = 0;
  float lr = 1e-3f, min_lr = 0.0f, momentum = 0.9f, weight_decay = 0.0f, pos_weight = 1.0f, threshold = 0.5f;
  uint64_t seed = 0;
  bool skip_bad_samples = false, flip = false;

  // The config.json "settings" object: every setting of the table below, in its order.
  nlohmann::ordered_json to_json() const;
};

// What a setting accepts, on the command line (as a CLI11 check) and in config.json.
struct SettingCheck {
  enum Kind {
    any,           // any value of the member's type
    range,         // lo..hi
    positive,      // > 0
    non_negative,  // >= 0
    count,         // lo..hi when given; 0, the default, means "not given" (no default in --help)
    one_of,        // one of `names`
  };
  Kind kind = any;
  double lo = 0, hi = 0;           // range and count
  std::vector<std::string> names;  // one_of
};

// Whether a resumed run (--resume DIR) may give the setting a new value or must repeat the old one.
enum class OnResume { must_match, may_change };

// One setting of `seisseg train`: from its row come the flag and its help, the config.json key, the
// checks of both, the resume rule and the run's identity (what a checkpoint must share with the run
// that resumes from it).
struct TrainSetting {
  using Member =
      std::variant<std::string TrainSettings::*, bool TrainSettings::*, int TrainSettings::*, int64_t TrainSettings::*,
                   uint64_t TrainSettings::*, float TrainSettings::*, double TrainSettings::*>;
  const char* flag;  // without "--"; also the config.json key
  Member member;     // a bool is a flag without a value
  SettingCheck check;
  OnResume on_resume;
  bool identity;
  const char* help;
};

// Every setting, in the order of config.json and of --help.
const std::vector<TrainSetting>& train_settings();

// The row of `flag` ("levels"); null for a name that is not a setting.
const TrainSetting* find_train_setting(const std::string& flag);

// The settings of the run's identity, valued as to_json writes them.
nlohmann::ordered_json train_identity(const TrainSettings& s);

// The "settings" object of the config.json at cfg_path (of the run directory resume_dir). InputError
// naming the file when it cannot be opened or is not a seisseg train config.
nlohmann::ordered_json read_run_config(const std::string& cfg_path, const std::string& resume_dir);

// Settings from such an object (missing keys keep their defaults). InputError naming `where` and the
// setting for a value of the wrong type or outside the range its flag accepts.
TrainSettings train_settings_from_json(const nlohmann::ordered_json& j, const std::string& where);

}  // namespace seis
