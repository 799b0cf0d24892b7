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
  float threshold = 0.5f;
  double min_separation_ms = 40;  // between two picks of one trace
  int64_t min_traces = 8;
  double min_velocity = 1500;  // m/s: slowest apparent velocity along the array (sets the moveout bound)
  double moveout_ms = 0;       // ms per trace; 0: dx / min_velocity
  double event_gap_ms = 500;
};

void add_window_flags(CLI::App& app, DetectionSettings& s);
void add_picking_flags(CLI::App& app, DetectionSettings& s);

PickerOptions picker_options(const DetectionSettings& s, double dt);
// `source` names the file in the note printed when dx is unknown (a default moveout is used then).
AssociationOptions association_options(const DetectionSettings& s, double dx, const std::string& source);

}  // namespace seis
