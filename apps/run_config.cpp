#include "apps/run_config.h"

#include <cfloat>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "engine/error.h"
#include "engine/printable.h"

namespace seis {

namespace {

using json = nlohmann::ordered_json;
constexpr long double kNoLimit = std::numeric_limits<long double>::infinity();

// j[key] into *v when present: of v's type (an integer for an integer, any finite number for a
// float) and within [lo, hi], else InputError naming the file and the setting. (nlohmann's get<T>
// would throw its own type_error, or convert 1e300 to an int: undefined behaviour.)
template <typename T>
void take(const json& j, const char* key, T* v, const std::string& where, long double lo = -kNoLimit,
          long double hi = kNoLimit) {
  if (!j.contains(key)) return;
  const json& x = j[key];
  bool ok = false;
  std::ostringstream want;
  if constexpr (std::is_same_v<T, bool>) {
    ok = x.is_boolean();
    want << "true or false";
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = x.is_string();
    want << "a string";
  } else if constexpr (std::is_integral_v<T>) {
    lo = std::max<long double>(lo, std::numeric_limits<T>::min());
    hi = std::min<long double>(hi, std::numeric_limits<T>::max());
    long double value = 0;
    if (x.is_number_unsigned()) {
      value = static_cast<long double>(x.get<uint64_t>());
    } else if (x.is_number_integer()) {
      value = static_cast<long double>(x.get<int64_t>());
    }
    ok = x.is_number_integer() && value >= lo && value <= hi;
    want << "an integer in " << static_cast<long long>(lo) << ".." << static_cast<unsigned long long>(hi);
  } else {
    static_assert(std::is_floating_point_v<T>);
    lo = std::max<long double>(lo, -std::numeric_limits<T>::max());
    hi = std::min<long double>(hi, std::numeric_limits<T>::max());
    const long double value = x.is_number() ? static_cast<long double>(x.get<double>()) : 0;
    ok = x.is_number() && std::isfinite(value) && value >= lo && value <= hi;
    want << "a number in [" << static_cast<double>(lo) << ", " << static_cast<double>(hi) << "]";
  }
  if (!ok) {
    throw InputError(where + ": setting \"" + printable(key, 64) + "\" is " + printable(x.dump(), 80) + ", not " +
                     want.str());
  }
  *v = x.get<T>();
}

}  // namespace

json read_run_config(const std::string& cfg_path, const std::string& resume_dir) {
  std::ifstream in(cfg_path);
  if (!in) throw InputError(cfg_path + ": cannot open (is " + resume_dir + " a seisseg train output directory?)");
  const json saved_all = json::parse(in, nullptr, false);
  if (!saved_all.is_object() || !saved_all.contains("settings") || !saved_all["settings"].is_object()) {
    throw InputError(cfg_path + ": not a seisseg train config");
  }
  return saved_all["settings"];
}

TrainSettings train_settings_from_json(const json& j, const std::string& where) {
  // The ranges are those of the flags (apps/cmd_train.cpp).
  constexpr long double kPositive = std::numeric_limits<float>::denorm_min();
  TrainSettings s;
  take(j, "data", &s.data, where);
  take(j, "val", &s.val, where);
  take(j, "val-fraction", &s.val_fraction, where, 0.0, 0.9);
  take(j, "levels", &s.levels, where, 1, 12);
  take(j, "base", &s.base, where, 1, 1024);
  take(j, "batch", &s.batch, where, 1, int64_t{1} << 20);
  take(j, "epochs", &s.epochs, where, 0, int64_t{1} << 30);
  take(j, "steps", &s.steps, where, 0, int64_t{1} << 40);
  take(j, "lr", &s.lr, where, kPositive);
  take(j, "lr-schedule", &s.lr_schedule, where);
  take(j, "warmup-steps", &s.warmup_steps, where, 0);
  take(j, "min-lr", &s.min_lr, where, 0);
  take(j, "optimizer", &s.optimizer, where);
  take(j, "momentum", &s.momentum, where, 0, 1);
  take(j, "weight-decay", &s.weight_decay, where, 0);
  take(j, "pos-weight", &s.pos_weight, where, kPositive);
  take(j, "normalize", &s.normalize, where);
  take(j, "precision", &s.precision, where);
  take(j, "conv-backend", &s.conv_backend, where);
  take(j, "device", &s.device, where);
  take(j, "seed", &s.seed, where);
  take(j, "init", &s.init, where);
  take(j, "out", &s.out, where);
  take(j, "log-every", &s.log_every, where, 1, int64_t{1} << 30);
  take(j, "val-every", &s.val_every, where, 0);
  take(j, "save-every", &s.save_every, where);
  take(j, "threads", &s.threads, where, 0, 256);
  take(j, "prefetch", &s.prefetch, where, 1, 64);
  take(j, "max-open-files", &s.max_open_files, where, 1, 65536);
  take(j, "skip-bad-samples", &s.skip_bad_samples, where);
  take(j, "flip", &s.flip, where);
  take(j, "max-shift", &s.max_shift, where, 0);
  take(j, "crop", &s.crop, where);
  take(j, "threshold", &s.threshold, where, 0, 1);
  take(j, "best-by", &s.best_by, where);
  return s;
}

}  // namespace seis
