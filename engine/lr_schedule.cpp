#include "engine/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/enum_names.h"

namespace seis {

namespace {
constexpr EnumName<LrScheduleKind> kLrScheduleNames[] = {{LrScheduleKind::constant, "constant"},
                                                         {LrScheduleKind::cosine, "cosine"}};
}  // namespace

LrScheduleKind parse_lr_schedule(const std::string& s) { return parse_enum(kLrScheduleNames, s, "--lr-schedule"); }
const char* lr_schedule_name(LrScheduleKind k) { return enum_name(kLrScheduleNames, k); }
std::vector<std::string> lr_schedule_names() { return enum_names(kLrScheduleNames); }

float LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) {
    return lr * static_cast<float>(static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
  }
  if (kind == LrScheduleKind::constant) return lr;
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double t = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(span), 0.0, 1.0);
  return static_cast<float>(min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(3.141592653589793 * t)));
}

}  // namespace seis
