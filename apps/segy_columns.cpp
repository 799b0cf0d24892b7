#include "apps/segy_columns.h"

#include "io/hdf5_util.h"

namespace seis {

std::vector<std::string> segy_pick_columns() {
  return {"ffid", "trace_number", "source_x", "source_y", "group_x", "group_y"};
}

std::vector<std::string> segy_pick_values(const SegyHeaderRow& r) {
  return {std::to_string(r.ffid), std::to_string(r.trace_number),
          num_str(r.source_x),    num_str(r.source_y),
          num_str(r.group_x),     num_str(r.group_y)};
}

std::vector<std::string> segy_event_columns() { return {"ffid"}; }

std::string segy_gather_ffid(const SegyHeadersFile& h, int64_t width) {
  for (int64_t j = 0; j < width; ++j) {
    if (const SegyHeaderRow* r = h.row(j)) return std::to_string(r->ffid);
  }
  return "";
}

}  // namespace seis
