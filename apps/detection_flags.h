// The flags predict and detect share: windows for the network, and the picker and event
// association that turn probabilities into picks.csv and events.csv (models/picking.h).
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "models/picking.h"
#include "models/windowed_inference.h"

namespace seis {

struct DetectionSettings {
  int64_t window = 0, window_receivers = 0;  // 0: the command's default
  double overlap = 0.5;
  float threshold = 0.5f;         // events: fronts of picks whose peak probability reaches it
  float pick_threshold = 0;       // picks: runs of probability >= it (0: threshold); at most threshold
  double min_separation_ms = 40;  // between two picks of one trace
  double pick_delay_ms = 0;       // subtracted from every pick's time (PickerOptions::delay_ms)
  int64_t min_traces = 0;         // 0: auto, max(8, W / 8)
  int64_t anchor_traces = 0;      // weak picks: kept when chained to strong picks on this many traces (0: min_traces)
  double min_velocity = 1500;     // m/s: slowest apparent velocity along the array (sets the moveout bound)
  double moveout_ms = 0;          // ms per trace; 0: dx / min_velocity
  double event_gap_ms = 500;
  bool fill_moveout = false;  // picks along each event's fitted moveout (models/moveout_fill.h)
  double fill_tolerance_ms = 12;
};

// window_default: what --window means when it is not given, for the help text.
void add_window_flags(CLI::App& app, DetectionSettings& s, const std::string& window_default);
void add_picking_flags(CLI::App& app, DetectionSettings& s);

PickerOptions picker_options(const DetectionSettings& s, double dt);
// `source` names the file in the note printed when dx is unknown (a default moveout is used then);
// `width` is the array's receiver count (the automatic minimum of traces per front).
AssociationOptions association_options(const DetectionSettings& s, double dx, int64_t width, const std::string& source);
MoveoutFillOptions fill_options(const DetectionSettings& s);

}  // namespace seis
