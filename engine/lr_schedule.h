// Learning-rate schedules: constant or cosine decay, each with an optional linear warm-up.
// The rate is a pure function of the step, so a resumed run follows the same schedule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace seis {

enum class LrScheduleKind { constant, cosine };
LrScheduleKind parse_lr_schedule(const std::string& s);  // UsageError on anything else
const char* lr_schedule_name(LrScheduleKind k);
std::vector<std::string> lr_schedule_names();  // the allowed names, in --help's order

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::constant;
  float lr = 1e-3f;
  int64_t warmup_steps = 0;  // linear from lr / warmup_steps up to lr over the first steps
  int64_t total_steps = 1;   // cosine reaches min_lr here
  float min_lr = 0.0f;

  // The rate for step `step`, counting from 0.
  float at(int64_t step) const;
};

}  // namespace seis
