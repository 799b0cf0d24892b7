// The trace identity that picks.csv and events.csv carry when their input was converted from SEG-Y
// (DESIGN.md, "Picks and events"): picks add ffid,trace_number,source_x,source_y,group_x,group_y
// after the fixed columns, events add ffid (of the gather's first real trace). predict and detect
// share these.
#pragma once
#include <string>
#include <vector>

#include "io/segy_headers.h"

namespace seis {

std::vector<std::string> segy_pick_columns();
// The values of segy_pick_columns for one trace's /headers row.
std::vector<std::string> segy_pick_values(const SegyHeaderRow& row);

std::vector<std::string> segy_event_columns();
// The ffid of the current gather of h (its first real trace); "" when it has none.
std::string segy_gather_ffid(const SegyHeadersFile& h, int64_t width);

}  // namespace seis
