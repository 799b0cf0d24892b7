#include "apps/run_config.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "engine/error.h"
#include "engine/lr_schedule.h"
#include "engine/ops.h"
#include "engine/optimizer.h"
#include "engine/printable.h"
#include "io/normalize.h"

namespace seis {

namespace {

using json = nlohmann::ordered_json;
constexpr long double kNoLimit = std::numeric_limits<long double>::infinity();

// The numbers a setting accepts in config.json: those of its flag, and 0 ("not given") for a count.
void json_range(const SettingCheck& c, long double* lo, long double* hi) {
  *lo = -kNoLimit;
  *hi = kNoLimit;
  switch (c.kind) {
    case SettingCheck::range:
      *lo = c.lo;
      *hi = c.hi;
      break;
    case SettingCheck::count:
      *lo = 0;
      *hi = c.hi;
      break;
    case SettingCheck::positive:
      *lo = std::numeric_limits<float>::denorm_min();
      break;
    case SettingCheck::non_negative:
      *lo = 0;
      break;
    case SettingCheck::any:
    case SettingCheck::one_of:
      break;
  }
}

// "a, b or c"
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 < names.size() ? ", " : " or ") + names[i];
  return out;
}

// j[setting] into *v when present: of v's type (an integer for an integer, any finite number for a
// float) and accepted by the setting's check, else InputError naming the file and the setting.
// (nlohmann's get<T> would throw its own type_error, or convert 1e300 to an int: undefined behaviour.)
template <typename T>
void take(const json& j, const TrainSetting& setting, T* v, const std::string& where) {
  const char* key = setting.flag;
  if (!j.contains(key)) return;
  const json& x = j[key];
  long double lo = 0, hi = 0;
  json_range(setting.check, &lo, &hi);
  bool ok = false;
  std::ostringstream want;
  if constexpr (std::is_same_v<T, bool>) {
    ok = x.is_boolean();
    want << "true or false";
  } else if constexpr (std::is_same_v<T, std::string>) {
    const std::vector<std::string>& names = setting.check.names;
    if (setting.check.kind == SettingCheck::one_of) {
      ok = x.is_string() && std::find(names.begin(), names.end(), x.get<std::string>()) != names.end();
      want << name_list(names);
    } else {
      ok = x.is_string();
      want << "a string";
    }
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

// The checks of the table.
SettingCheck any() { return {}; }
SettingCheck range(double lo, double hi) { return {SettingCheck::range, lo, hi, {}}; }
SettingCheck positive() { return {SettingCheck::positive, 0, 0, {}}; }
SettingCheck non_negative() { return {SettingCheck::non_negative, 0, 0, {}}; }
SettingCheck count(double hi) { return {SettingCheck::count, 1, hi, {}}; }
SettingCheck one_of(std::vector<std::string> names) { return {SettingCheck::one_of, 0, 0, std::move(names)}; }

}  // namespace

const std::vector<TrainSetting>& train_settings() {
  using S = TrainSettings;
  constexpr OnResume must_match = OnResume::must_match, may_change = OnResume::may_change;
  constexpr bool yes = true, no = false;
  // clang-format off
  static const std::vector<TrainSetting> table = {
    // flag                member                check                                    on resume   identity
    //     help
    {"data",             &S::data,             any(),                                   must_match, yes,
       "training files: F.h5[,G.h5...], each item a file, a directory (its .h5 files), a quoted glob "
       "('shots/*.h5') or a list file (@LIST or LIST.txt, one per line)"},
    {"val",              &S::val,              any(),                                   must_match, no,
       "validation files, in the forms of --data (instead of --val-fraction)"},
    {"val-fraction",     &S::val_fraction,     range(0.0, 0.9),                         must_match, yes,
       "fraction of --data held out for validation (0: none)"},
    {"levels",           &S::levels,           range(1, 12),                            must_match, yes,
       "UNet levels"},
    {"base",             &S::base,             range(1, 1024),                          must_match, yes,
       "UNet base channels"},
    // On the command line also "auto" (apps/cmd_train.cpp).
    {"batch",            &S::batch,            range(1, 1 << 30),                       must_match, yes,
       "global batch (split across ranks), or auto: the largest whose planned step fits 90% of each "
       "rank's free device memory (seisseg plan)"},
    {"epochs",           &S::epochs,           count(1 << 30),                          may_change, no,
       "total epochs of the run"},
    {"steps",            &S::steps,            count(int64_t{1} << 40),                 may_change, no,
       "total steps of the run (instead of --epochs)"},
    {"lr",               &S::lr,               positive(),                              must_match, no,
       "learning rate"},
    {"lr-schedule",      &S::lr_schedule,      one_of(lr_schedule_names()),             must_match, no,
       "constant or cosine"},
    {"warmup-steps",     &S::warmup_steps,     non_negative(),                          must_match, no,
       "linear warm-up steps"},
    {"min-lr",           &S::min_lr,           non_negative(),                          must_match, no,
       "cosine's final rate"},
    {"optimizer",        &S::optimizer,        one_of(optimizer_names()),               must_match, yes,
       "adam, adamw or sgd"},
    {"momentum",         &S::momentum,         range(0.0, 1.0),                         must_match, no,
       "SGD momentum"},
    {"weight-decay",     &S::weight_decay,     non_negative(),                          must_match, no,
       ""},
    {"pos-weight",       &S::pos_weight,       positive(),                              must_match, no,
       "BCE weight of the positive class"},
    {"normalize",        &S::normalize,        one_of(normalize_names()),               must_match, yes,
       "trace, sample or none"},
    {"precision",        &S::precision,        one_of(precision_names()),               must_match, no,
       kPrecisionHelp},
    {"conv-backend",     &S::conv_backend,     one_of(conv_backend_names()),            may_change, no,
       "GPU convs: own or cudnn"},
    {"device",           &S::device,           any(),                                   may_change, no,
       "auto, cpu, cuda or cuda:N"},
    {"seed",             &S::seed,             any(),                                   must_match, yes,
       "seed of the initialisation and the data order"},
    {"init",             &S::init,             any(),                                   must_match, no,
       "start from these weights (safetensors)"},
    {"out",              &S::out,              any(),                                   may_change, no,
       "output directory"},
    {"log-every",        &S::log_every,        range(1, 1 << 30),                       may_change, no,
       "steps per log line"},
    {"val-every",        &S::val_every,        non_negative(),                          may_change, no,
       "steps between validations (0: each epoch)"},
    {"save-every",       &S::save_every,       any(),                                   may_change, no,
       "checkpoint every N steps or every N minutes (e.g. 10m)"},
    {"threads",          &S::threads,          range(0, 256),                           may_change, no,
       "reader threads (0: automatic)"},
    {"prefetch",         &S::prefetch,         range(1, 64),                            may_change, no,
       "batches in flight"},
    {"max-open-files",   &S::max_open_files,   range(1, 65536),                         may_change, no,
       "data files kept open at once (more are reopened as the reader reaches them)"},
    {"direct-io",        &S::direct_io,        one_of({"auto", "on", "off"}),           may_change, no,
       "read the training data around the page cache (O_DIRECT, 4 MiB blocks); auto: when the training set "
       "is larger than the memory available, which could not keep it for the next epoch"},
    {"skip-bad-samples", &S::skip_bad_samples, any(),                                   must_match, no,
       "skip (and count) gathers holding NaN or Inf or that cannot be read"},
    {"flip",             &S::flip,             any(),                                   must_match, no,
       "augment: flip the receiver axis at random"},
    {"max-shift",        &S::max_shift,        non_negative(),                          must_match, no,
       "augment: random time shift of up to N samples"},
    {"crop",             &S::crop,             any(),                                   must_match, no,
       "augment: random crop HxW"},
    {"threshold",        &S::threshold,        range(0.0, 1.0),                         must_match, no,
       "probability threshold of the metrics"},
    {"best-by",          &S::best_by,          one_of({"iou", "event_f1", "pick_mae"}), must_match, no,
       "the validation figure best.safetensors keeps: iou, event_f1 or pick_mae (lowest); the last two "
       "need validation data with ground truth (seisseg synth)"},
  };
  // clang-format on
  return table;
}

const TrainSetting* find_train_setting(const std::string& flag) {
  for (const TrainSetting& t : train_settings()) {
    if (flag == t.flag) return &t;
  }
  return nullptr;
}

json TrainSettings::to_json() const {
  json j = json::object();
  for (const TrainSetting& t : train_settings()) {
    std::visit([&](auto member) { j[t.flag] = this->*member; }, t.member);
  }
  return j;
}

json train_identity(const TrainSettings& s) {
  const json all = s.to_json();
  json id = json::object();
  for (const TrainSetting& t : train_settings()) {
    if (t.identity) id[t.flag] = all[t.flag];
  }
  return id;
}

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
  TrainSettings s;
  for (const TrainSetting& t : train_settings()) {
    std::visit([&](auto member) { take(j, t, &(s.*member), where); }, t.member);
  }
  return s;
}

}  // namespace seis
